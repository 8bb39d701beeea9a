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

/** Clips a polygon (outer ring and holes) to [0, width] x [0, height]; undefined when nothing is left. */
export function clipPolygon(p: Polygon, width: number, height: number): Polygon | undefined {
  const outer = clipRing(p[0]!, width, height);
  if (outer.length < 3 || Math.abs(signedArea(outer)) === 0) return undefined;
  const holes = p
    .slice(1)
    .map((h) => clipRing(h, width, height))
    .filter((h) => h.length >= 3);
  return [outer, ...holes];
}
