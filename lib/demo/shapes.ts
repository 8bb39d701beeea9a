/**
 * Planar shapes in pixel coordinates (x right, y down) for drawing the demo scene, and their
 * coverage of a pixel. Pure, no I/O.
 */

export type Point = readonly [x: number, y: number];

/** A filled shape: a polygon (any simple ring), a disc, or a capsule (a thick segment, for roads). */
export type Shape =
  | {
      readonly kind: 'polygon';
      readonly points: readonly Point[];
      /** The same points as flat x and y arrays (what the coverage test reads). */
      readonly xs: Float64Array;
      readonly ys: Float64Array;
    }
  | { readonly kind: 'disc'; readonly cx: number; readonly cy: number; readonly r: number }
  | {
      readonly kind: 'capsule';
      readonly ax: number;
      readonly ay: number;
      readonly bx: number;
      readonly by: number;
      readonly r: number;
    };

/** Axis-aligned box [minX, minY, maxX, maxY]. */
export type Box = readonly [minX: number, minY: number, maxX: number, maxY: number];

/** An oriented rectangle: centre, half length along `angle`, half width across it. */
export interface OrientedRect {
  readonly cx: number;
  readonly cy: number;
  readonly halfLength: number;
  readonly halfWidth: number;
  /** Radians, direction of the length axis. */
  readonly angle: number;
}

/** Corners of an oriented rectangle, in order around it. */
export function rectCorners(r: OrientedRect): Point[] {
  const ux = Math.cos(r.angle);
  const uy = Math.sin(r.angle);
  const lx = ux * r.halfLength;
  const ly = uy * r.halfLength;
  const wx = -uy * r.halfWidth;
  const wy = ux * r.halfWidth;
  return [
    [r.cx - lx - wx, r.cy - ly - wy],
    [r.cx + lx - wx, r.cy + ly - wy],
    [r.cx + lx + wx, r.cy + ly + wy],
    [r.cx - lx + wx, r.cy - ly + wy],
  ];
}

/** Maps local coordinates (u along the length axis, v across) of a rectangle frame to pixels. */
export function fromLocal(r: Pick<OrientedRect, 'cx' | 'cy' | 'angle'>, u: number, v: number): Point {
  const ux = Math.cos(r.angle);
  const uy = Math.sin(r.angle);
  return [r.cx + u * ux - v * uy, r.cy + u * uy + v * ux];
}

/** Local coordinates (u along, v across) of a pixel point in a rectangle frame. */
export function toLocal(r: Pick<OrientedRect, 'cx' | 'cy' | 'angle'>, x: number, y: number): Point {
  const ux = Math.cos(r.angle);
  const uy = Math.sin(r.angle);
  const dx = x - r.cx;
  const dy = y - r.cy;
  return [dx * ux + dy * uy, -dx * uy + dy * ux];
}

/** A polygon shape from its points. */
export function polygon(points: readonly Point[]): Shape {
  return {
    kind: 'polygon',
    points,
    xs: Float64Array.from(points, (p) => p[0]),
    ys: Float64Array.from(points, (p) => p[1]),
  };
}

/** Even-odd point-in-polygon test over flat coordinate arrays. */
function insideFlat(xs: Float64Array, ys: Float64Array, x: number, y: number): boolean {
  let inside = false;
  const n = xs.length;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = xs[i] as number;
    const yi = ys[i] as number;
    const yj = ys[j] as number;
    if (yi > y !== yj > y && x < (((xs[j] as number) - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Bounding box of a shape. */
export function shapeBox(shape: Shape): Box {
  if (shape.kind === 'disc')
    return [shape.cx - shape.r, shape.cy - shape.r, shape.cx + shape.r, shape.cy + shape.r];
  if (shape.kind === 'capsule') {
    return [
      Math.min(shape.ax, shape.bx) - shape.r,
      Math.min(shape.ay, shape.by) - shape.r,
      Math.max(shape.ax, shape.bx) + shape.r,
      Math.max(shape.ay, shape.by) + shape.r,
    ];
  }
  return pointsBox(shape.points);
}

/** Bounding box of points. */
export function pointsBox(points: readonly Point[]): Box {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of points) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  return [minX, minY, maxX, maxY];
}

/** Even-odd point-in-polygon test. */
export function pointInPolygon(points: readonly Point[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i] as Point;
    const [xj, yj] = points[j] as Point;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Distance from (x, y) to the segment a-b. */
export function segmentDistance(
  x: number,
  y: number,
  ax: number,
  ay: number,
  bx: number,
  by: number,
): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len2));
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy));
}

/**
 * Fraction of pixel (col, row) that the shape covers: analytic for discs and capsules
 * (distance to the edge, one pixel of ramp), 2 x 2 samples for polygons.
 */
export function pixelCoverage(shape: Shape, col: number, row: number): number {
  if (shape.kind === 'polygon') {
    const { xs, ys } = shape;
    let inside = 0;
    if (insideFlat(xs, ys, col + 0.25, row + 0.25)) inside++;
    if (insideFlat(xs, ys, col + 0.75, row + 0.25)) inside++;
    if (insideFlat(xs, ys, col + 0.25, row + 0.75)) inside++;
    if (insideFlat(xs, ys, col + 0.75, row + 0.75)) inside++;
    return inside / 4;
  }
  const x = col + 0.5;
  const y = row + 0.5;
  const d =
    shape.kind === 'disc'
      ? Math.hypot(x - shape.cx, y - shape.cy)
      : segmentDistance(x, y, shape.ax, shape.ay, shape.bx, shape.by);
  return Math.max(0, Math.min(1, shape.r - d + 0.5));
}

/** True when two oriented rectangles overlap (separating axis test). */
export function rectsOverlap(a: OrientedRect, b: OrientedRect): boolean {
  const ca = rectCorners(a);
  const cb = rectCorners(b);
  for (const angle of [a.angle, a.angle + Math.PI / 2, b.angle, b.angle + Math.PI / 2]) {
    const ux = Math.cos(angle);
    const uy = Math.sin(angle);
    const pa = ca.map(([x, y]) => x * ux + y * uy);
    const pb = cb.map(([x, y]) => x * ux + y * uy);
    if (Math.max(...pa) <= Math.min(...pb) || Math.max(...pb) <= Math.min(...pa)) return false;
  }
  return true;
}

/** Convex hull (Andrew's monotone chain), counter-clockwise in a y-up frame. */
export function convexHull(points: readonly Point[]): Point[] {
  const sorted = [...points].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  if (sorted.length < 3) return sorted;
  const cross = (o: Point, a: Point, b: Point): number =>
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Point[] = [];
  for (const p of sorted) {
    while (
      lower.length >= 2 &&
      cross(lower[lower.length - 2] as Point, lower[lower.length - 1] as Point, p) <= 0
    ) {
      lower.pop();
    }
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = sorted.length - 1; i >= 0; i--) {
    const p = sorted[i] as Point;
    while (
      upper.length >= 2 &&
      cross(upper[upper.length - 2] as Point, upper[upper.length - 1] as Point, p) <= 0
    ) {
      upper.pop();
    }
    upper.push(p);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

/** Signed area of a ring (positive when counter-clockwise in a y-up frame). */
export function ringArea(points: readonly Point[]): number {
  let sum = 0;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i] as Point;
    const [xj, yj] = points[j] as Point;
    sum += xj * yi - xi * yj;
  }
  return sum / 2;
}

function orientation(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): number {
  return Math.sign((bx - ax) * (cy - ay) - (by - ay) * (cx - ax));
}

/** Distance between the segment a-b and a polygon (0 when they touch or overlap). */
export function segmentPolygonDistance(
  ax: number,
  ay: number,
  bx: number,
  by: number,
  points: readonly Point[],
): number {
  if (pointInPolygon(points, ax, ay) || pointInPolygon(points, bx, by)) return 0;
  let best = Infinity;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [px, py] = points[j] as Point;
    const [qx, qy] = points[i] as Point;
    const crosses =
      orientation(ax, ay, bx, by, px, py) !== orientation(ax, ay, bx, by, qx, qy) &&
      orientation(px, py, qx, qy, ax, ay) !== orientation(px, py, qx, qy, bx, by);
    if (crosses) return 0;
    best = Math.min(
      best,
      segmentDistance(px, py, ax, ay, bx, by),
      segmentDistance(ax, ay, px, py, qx, qy),
      segmentDistance(bx, by, px, py, qx, qy),
    );
  }
  return best;
}
