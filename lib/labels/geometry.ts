/**
 * GeoJSON geometries checked and turned into polygons (rings of points), and the polygon
 * arithmetic labels need: transforming, clipping to an image rectangle, area and bounds.
 * Pure, no I/O.
 */
import { LabelError } from './errors.js';

export type Point = [number, number];
/** A ring as a list of points; closed or not (the first point is not repeated by the functions here). */
export type Ring = Point[];
/** An outer ring followed by its holes. */
export type Polygon = Ring[];

/** What a feature's geometry is, for labels: polygons, or a geometry type labels cannot use. */
export type FeatureShape =
  | { readonly kind: 'polygons'; readonly polygons: Polygon[] }
  | { readonly kind: 'unsupported'; readonly type: string };

const UNSUPPORTED = new Set(['Point', 'MultiPoint', 'LineString', 'MultiLineString']);

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'string')
    return value === 'NaN' || /^-?Infinity$/.test(value) ? value : JSON.stringify(value);
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function position(value: unknown, path: string, where: string): Point {
  if (!Array.isArray(value) || value.length < 2) {
    throw new LabelError(`${where}: ${path} is ${describe(value)}; expected a position [x, y]`);
  }
  const out: number[] = [];
  for (let k = 0; k < 2; k++) {
    const v: unknown = value[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new LabelError(`${where}: ${path}[${k}] is ${describe(v)}; expected finite numbers`);
    }
    out.push(v);
  }
  return [out[0]!, out[1]!];
}

function ring(value: unknown, path: string, where: string): Ring {
  if (!Array.isArray(value) || value.length < 3) {
    throw new LabelError(
      `${where}: ${path} is ${Array.isArray(value) ? `a ring of ${value.length} positions` : describe(value)}; expected a linear ring of at least 4 positions`,
    );
  }
  const points = value.map((p: unknown, i: number) => position(p, `${path}[${i}]`, where));
  const first = points[0]!;
  const last = points[points.length - 1]!;
  if (points.length > 1 && first[0] === last[0] && first[1] === last[1]) points.pop();
  return points;
}

function polygon(value: unknown, path: string, where: string): Polygon {
  if (!Array.isArray(value) || value.length === 0) {
    throw new LabelError(`${where}: ${path} is ${describe(value)}; expected an array of linear rings`);
  }
  return value.map((r: unknown, i: number) => ring(r, `${path}[${i}]`, where));
}

function shapeOf(geometry: unknown, path: string, where: string): FeatureShape {
  if (typeof geometry !== 'object' || geometry === null || Array.isArray(geometry)) {
    throw new LabelError(`${where}: ${path} is ${describe(geometry)}; expected a GeoJSON geometry object`);
  }
  const g = geometry as { type?: unknown; coordinates?: unknown; geometries?: unknown };
  switch (g.type) {
    case 'Polygon':
      return { kind: 'polygons', polygons: [polygon(g.coordinates, `${path}.coordinates`, where)] };
    case 'MultiPolygon':
      if (!Array.isArray(g.coordinates)) {
        throw new LabelError(
          `${where}: ${path}.coordinates is ${describe(g.coordinates)}; expected an array of polygons`,
        );
      }
      return {
        kind: 'polygons',
        polygons: g.coordinates.map((p: unknown, i: number) =>
          polygon(p, `${path}.coordinates[${i}]`, where),
        ),
      };
    case 'GeometryCollection': {
      if (!Array.isArray(g.geometries)) {
        throw new LabelError(
          `${where}: ${path}.geometries is ${describe(g.geometries)}; expected an array of geometries`,
        );
      }
      const polygons: Polygon[] = [];
      const types: string[] = [];
      g.geometries.forEach((child: unknown, i: number) => {
        const shape = shapeOf(child, `${path}.geometries[${i}]`, where);
        if (shape.kind === 'polygons') polygons.push(...shape.polygons);
        else types.push(shape.type);
      });
      return polygons.length
        ? { kind: 'polygons', polygons }
        : { kind: 'unsupported', type: `GeometryCollection of ${types.join(', ') || 'nothing'}` };
    }
    default:
      if (typeof g.type === 'string' && UNSUPPORTED.has(g.type)) return { kind: 'unsupported', type: g.type };
      throw new LabelError(
        `${where}: ${path}.type is ${describe(g.type)}; expected Polygon or MultiPolygon (Point and LineString types are counted and skipped)`,
      );
  }
}

/**
 * The polygons of a parsed GeoJSON feature. Throws a {@link LabelError} naming the file, the
 * feature and the field for a missing geometry, bad coordinates (NaN, infinities, strings) or an
 * unknown geometry type; point and line geometries come back as `unsupported`.
 */
export function featureShape(feature: unknown, index: number, file: string): FeatureShape {
  const where = `${file}: feature ${index}`;
  if (typeof feature !== 'object' || feature === null || Array.isArray(feature)) {
    throw new LabelError(`${where} is ${describe(feature)}; expected a GeoJSON Feature object`);
  }
  const geometry = (feature as { geometry?: unknown }).geometry;
  if (geometry === undefined || geometry === null) {
    throw new LabelError(
      `${where} has no geometry ('geometry' is ${geometry === null ? 'null' : 'missing'}); expected a Polygon or MultiPolygon`,
    );
  }
  return shapeOf(geometry, 'geometry', where);
}

/** The feature's properties object (empty when absent). */
export function featureProperties(feature: unknown): Record<string, unknown> {
  const p = (feature as { properties?: unknown }).properties;
  return typeof p === 'object' && p !== null && !Array.isArray(p) ? (p as Record<string, unknown>) : {};
}

/** Applies `fn` to every point. */
export function mapPolygons(polygons: readonly Polygon[], fn: (x: number, y: number) => Point): Polygon[] {
  return polygons.map((p) => p.map((r) => r.map(([x, y]) => fn(x, y))));
}

/** Signed area of a ring (shoelace; positive when counter-clockwise with y up, i.e. clockwise on screen). */
export function signedArea(r: Ring): number {
  let sum = 0;
  for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
    sum += (r[j]![0] - r[i]![0]) * (r[j]![1] + r[i]![1]);
  }
  return sum / 2;
}

/** Area of a polygon: its outer ring less its holes. */
export function polygonArea(p: Polygon): number {
  let area = 0;
  p.forEach((r, i) => (area += (i === 0 ? 1 : -1) * Math.abs(signedArea(r))));
  return Math.max(0, area);
}

/** [minX, minY, maxX, maxY] of the outer rings. */
export function polygonsBounds(polygons: readonly Polygon[]): [number, number, number, number] {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const p of polygons) {
    for (const [x, y] of p[0] ?? []) {
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  return [minX, minY, maxX, maxY];
}

/** Clips a ring to the rectangle [0, width] x [0, height] (Sutherland-Hodgman; the result may be empty). */
export function clipRing(r: Ring, width: number, height: number): Ring {
  const edges: [(p: Point) => boolean, (a: Point, b: Point) => Point][] = [
    [(p) => p[0] >= 0, (a, b) => lerpAt(a, b, 0, 0)],
    [(p) => p[0] <= width, (a, b) => lerpAt(a, b, 0, width)],
    [(p) => p[1] >= 0, (a, b) => lerpAt(a, b, 1, 0)],
    [(p) => p[1] <= height, (a, b) => lerpAt(a, b, 1, height)],
  ];
  let out = r;
  for (const [inside, cross] of edges) {
    if (out.length === 0) break;
    const input = out;
    out = [];
    for (let i = 0; i < input.length; i++) {
      const cur = input[i]!;
      const prev = input[(i + input.length - 1) % input.length]!;
      if (inside(cur)) {
        if (!inside(prev)) out.push(cross(prev, cur));
        out.push(cur);
      } else if (inside(prev)) out.push(cross(prev, cur));
    }
  }
  return out;
}

function lerpAt(a: Point, b: Point, axis: 0 | 1, value: number): Point {
  const t = (value - a[axis]) / (b[axis] - a[axis]);
  const p: Point = [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
  p[axis] = value;
  return p;
}

/**
 * Clips a ring to [0, width] x [0, height] and returns the clipped AREA as separate rings, one per
 * piece. Sutherland-Hodgman alone leaves zero-width parts along the window's edges: spikes where
 * an edge of the ring lies on a window edge (they widen the bbox) and bridges joining the pieces
 * of a concave ring. Those parts all lie on the four window lines, so the edges on a line are
 * split at every vertex of the ring on that line, opposite edges cancel out, and the rest is
 * walked back into rings (repeated points and straight-through vertices on a line dropped, rings
 * of zero area dropped). The signed area is unchanged.
 */
export function clipRingParts(r: Ring, width: number, height: number): Ring[] {
  const clipped = withoutRepeats(clipRing(r, width, height));
  if (clipped.length < 3) return [];
  const lineOf = (a: Point, b: Point): number => {
    if (a[0] === b[0] && (a[0] === 0 || a[0] === width)) return a[0] === 0 ? 0 : 1;
    if (a[1] === b[1] && (a[1] === 0 || a[1] === height)) return a[1] === 0 ? 2 : 3;
    return -1;
  };
  if (!clipped.some((p, i) => lineOf(p, clipped[(i + 1) % clipped.length]!) >= 0)) return [clipped];
  // the coordinate along each window line of the ring's vertices on it, sorted
  const stops: number[][] = [[], [], [], []];
  for (const p of clipped) {
    if (p[0] === 0) stops[0]!.push(p[1]);
    if (p[0] === width) stops[1]!.push(p[1]);
    if (p[1] === 0) stops[2]!.push(p[0]);
    if (p[1] === height) stops[3]!.push(p[0]);
  }
  for (const s of stops) s.sort((a, b) => a - b);
  // directed edges in ring order, those on a window line split at the stops strictly inside them
  const edges: [Point, Point][] = [];
  for (let i = 0; i < clipped.length; i++) {
    const a = clipped[i]!;
    const b = clipped[(i + 1) % clipped.length]!;
    const line = lineOf(a, b);
    if (line < 0) {
      edges.push([a, b]);
      continue;
    }
    const along = line < 2 ? 1 : 0;
    const from = a[along];
    const to = b[along];
    const inside = stops[line]!.filter((v) => v > Math.min(from, to) && v < Math.max(from, to));
    if (from > to) inside.reverse();
    let prev = a;
    for (const v of inside) {
      const p: Point = along === 1 ? [a[0], v] : [v, a[1]];
      if (p[along] !== prev[along]) edges.push([prev, p]);
      prev = p;
    }
    edges.push([prev, b]);
  }
  // opposite edges on a window line cancel out
  const key = (a: Point, b: Point) => `${a[0]},${a[1]}>${b[0]},${b[1]}`;
  const open = new Map<string, number[]>();
  const alive = edges.map(() => true);
  edges.forEach(([a, b], i) => {
    if (lineOf(a, b) < 0) return;
    const reverse = open.get(key(b, a));
    if (reverse && reverse.length > 0) {
      alive[reverse.pop()!] = false;
      alive[i] = false;
      return;
    }
    const k = key(a, b);
    const list = open.get(k);
    if (list) list.push(i);
    else open.set(k, [i]);
  });
  // walk the remaining edges back into rings, following the original order where it goes on
  const from = new Map<string, number[]>();
  edges.forEach(([a], i) => {
    if (!alive[i]) return;
    const k = `${a[0]},${a[1]}`;
    const list = from.get(k);
    if (list) list.push(i);
    else from.set(k, [i]);
  });
  const used = edges.map((_, i) => !alive[i]);
  const take = (i: number) => {
    used[i] = true;
    const [a] = edges[i]!;
    const list = from.get(`${a[0]},${a[1]}`)!;
    list.splice(list.indexOf(i), 1);
  };
  const parts: Ring[] = [];
  for (let start = 0; start < edges.length; start++) {
    if (used[start]) continue;
    const origin = edges[start]![0];
    const ring: Ring = [];
    let i = start;
    for (;;) {
      take(i);
      ring.push(edges[i]![0]);
      const end = edges[i]![1];
      if (end[0] === origin[0] && end[1] === origin[1]) break;
      const next = (i + 1) % edges.length;
      const e = edges[next]!;
      if (!used[next] && e[0][0] === end[0] && e[0][1] === end[1]) i = next;
      else {
        const candidates = from.get(`${end[0]},${end[1]}`);
        if (!candidates || candidates.length === 0) break;
        i = candidates[0]!;
      }
    }
    const simple = straightened(ring, lineOf);
    if (simple.length >= 3 && signedArea(simple) !== 0) parts.push(simple);
  }
  return parts;
}

function withoutRepeats(r: Ring): Ring {
  const out = r.filter((p, i) => {
    const q = r[(i + r.length - 1) % r.length]!;
    return i === 0 || p[0] !== q[0] || p[1] !== q[1];
  });
  while (out.length > 1 && out[0]![0] === out[out.length - 1]![0] && out[0]![1] === out[out.length - 1]![1]) {
    out.pop();
  }
  return out;
}

/** Drops vertices that a window line runs straight through (left by splitting edges there). */
function straightened(r: Ring, lineOf: (a: Point, b: Point) => number): Ring {
  let out = r;
  for (let changed = true; changed && out.length >= 3;) {
    changed = false;
    for (let i = 0; i < out.length && out.length >= 3; i++) {
      const p = out[(i + out.length - 1) % out.length]!;
      const v = out[i]!;
      const q = out[(i + 1) % out.length]!;
      const line = lineOf(p, v);
      if (line >= 0 && line === lineOf(v, q)) {
        out = [...out.slice(0, i), ...out.slice(i + 1)];
        changed = true;
        i--;
      }
    }
  }
  return out;
}

/**
 * Clips a polygon (outer ring and holes) to [0, width] x [0, height]: one polygon per piece of the
 * outer ring (see {@link clipRingParts}), each with the pieces of the holes inside it; empty when
 * nothing is left.
 */
export function clipPolygon(p: Polygon, width: number, height: number): Polygon[] {
  const outers = clipRingParts(p[0]!, width, height);
  if (outers.length === 0) return [];
  const out: Polygon[] = outers.map((o) => [o]);
  for (const hole of p.slice(1)) {
    for (const h of clipRingParts(hole, width, height)) {
      const at = outers.length === 1 ? 0 : outers.findIndex((o) => containsRing(o, h));
      out[Math.max(0, at)]!.push(h);
    }
  }
  return out;
}

/** Whether the midpoint of some edge of `inner` not on `outer`'s outline is inside `outer`. */
function containsRing(outer: Ring, inner: Ring): boolean {
  for (let i = 0; i < inner.length; i++) {
    const a = inner[i]!;
    const b = inner[(i + 1) % inner.length]!;
    const m: Point = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const inside = pointInRing(outer, m);
    if (inside !== undefined) return inside;
  }
  return false;
}

/** Even-odd test; undefined when the point is on the ring. */
function pointInRing(r: Ring, [x, y]: Point): boolean | undefined {
  let inside = false;
  for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
    const [xi, yi] = r[i]!;
    const [xj, yj] = r[j]!;
    const cross = (xj - xi) * (y - yi) - (yj - yi) * (x - xi);
    if (
      cross === 0 &&
      x >= Math.min(xi, xj) &&
      x <= Math.max(xi, xj) &&
      y >= Math.min(yi, yj) &&
      y <= Math.max(yi, yj)
    ) {
      return undefined;
    }
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
