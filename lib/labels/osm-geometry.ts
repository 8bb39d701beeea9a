/**
 * Geometry for OSM labels, in CRS84 [lon, lat]: multipolygon rings assembled from member ways
 * (joined end to end, reversed where needed), inner rings put in the outer ring that holds
 * them, and clipping of polygons, lines and points to a convex quadrilateral (a scene's or a
 * chip's footprint: its four corners in CRS84). Pure.
 */
import polygonClipping from 'polygon-clipping';
import type { Polygon as ClipPolygon, MultiPolygon as ClipMultiPolygon } from 'polygon-clipping';
import type { LonLat } from './osm-elements.js';

export type Ring = LonLat[];
export type PolygonCoords = Ring[];

/** A way's coordinates with the keys of its end nodes (node ids, or the coordinates when unknown). */
export interface WayPiece {
  readonly coords: readonly LonLat[];
  readonly startKey: string;
  readonly endKey: string;
}

export function ringArea(r: readonly LonLat[]): number {
  let a = 0;
  for (let i = 0, j = r.length - 1; i < r.length; j = i++) a += (r[j]![0] - r[i]![0]) * (r[j]![1] + r[i]![1]);
  return a / 2;
}

/** Counter-clockwise (outer) or clockwise (inner), as RFC 7946 asks. */
function oriented(r: Ring, ccw: boolean): Ring {
  return ringArea(r) > 0 === ccw ? r : [...r].reverse();
}

/** Ray casting; points on the boundary may go either way. */
export function pointInRing(p: LonLat, r: readonly LonLat[]): boolean {
  let inside = false;
  for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
    const [xi, yi] = r[i]!;
    const [xj, yj] = r[j]!;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Joins way pieces end to end into closed rings; undefined when some piece cannot be closed. */
export function assembleRings(pieces: readonly WayPiece[]): Ring[] | undefined {
  const left = [...pieces];
  const rings: Ring[] = [];
  while (left.length > 0) {
    const first = left.shift()!;
    const coords: LonLat[] = [...first.coords];
    const startKey = first.startKey;
    let endKey = first.endKey;
    while (endKey !== startKey || coords.length < 4) {
      const i = left.findIndex((p) => p.startKey === endKey || p.endKey === endKey);
      if (i < 0) return undefined;
      const next = left.splice(i, 1)[0]!;
      const forward = next.startKey === endKey;
      const add = forward ? next.coords : [...next.coords].reverse();
      coords.push(...add.slice(1));
      endKey = forward ? next.endKey : next.startKey;
      if (endKey === startKey && coords.length < 4) return undefined;
    }
    rings.push(coords);
  }
  return rings;
}

/** Outer rings (counter-clockwise) each with the inner rings (clockwise) inside it. */
export function nestRings(outers: readonly Ring[], inners: readonly Ring[]): PolygonCoords[] | undefined {
  const polygons: PolygonCoords[] = outers.map((o) => [oriented(o, true)]);
  for (const inner of inners) {
    const holder = polygons.findIndex((p) => inner.some((v) => pointInRing(v, p[0]!)));
    if (holder < 0) return undefined;
    polygons[holder]!.push(oriented(inner, false));
  }
  return polygons;
}

/** A ring of a single closed way, counter-clockwise. */
export function wayPolygon(coords: readonly LonLat[]): PolygonCoords {
  return [oriented([...coords], true)];
}

/** A convex quadrilateral (closed ring of 5 points), counter-clockwise. */
export type Quad = readonly LonLat[];

export function makeQuad(corners: readonly LonLat[]): Quad {
  const ring = corners.slice(0, 4);
  ring.push(ring[0]!);
  return oriented(ring, true);
}

export function insideQuad(p: LonLat, q: Quad): boolean {
  for (let i = 0; i < 4; i++) {
    const [ax, ay] = q[i]!;
    const [bx, by] = q[i + 1]!;
    if ((bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) < 0) return false;
  }
  return true;
}

export function quadBounds(q: Quad): [number, number, number, number] {
  const xs = q.map((p) => p[0]);
  const ys = q.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** Polygons clipped to the quad; polygons wholly inside are returned unchanged. */
export function clipPolygons(polygons: readonly PolygonCoords[], q: Quad): PolygonCoords[] {
  if (polygons.every((p) => p.every((r) => r.every((v) => insideQuad(v, q))))) return polygons.map((p) => p);
  const result: ClipMultiPolygon = polygonClipping.intersection(polygons as ClipPolygon[], [q as LonLat[]]);
  return result.map((p) => p.map((r) => r.map(([x, y]) => [x, y] as LonLat)));
}

/** The part of segment a-b inside the quad (Cyrus-Beck), as parameters [t0, t1], or undefined. */
function clipSegment(a: LonLat, b: LonLat, q: Quad): [number, number] | undefined {
  let t0 = 0;
  let t1 = 1;
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  for (let i = 0; i < 4; i++) {
    const [ex, ey] = q[i]!;
    const nx = -(q[i + 1]![1] - ey);
    const ny = q[i + 1]![0] - ex;
    // inside: n . (p - e) >= 0
    const num = nx * (a[0] - ex) + ny * (a[1] - ey);
    const den = nx * dx + ny * dy;
    if (den === 0) {
      if (num < 0) return undefined;
    } else {
      const t = -num / den;
      if (den > 0) t0 = Math.max(t0, t);
      else t1 = Math.min(t1, t);
    }
    if (t0 > t1) return undefined;
  }
  return [t0, t1];
}

/** A line clipped to the quad: the pieces inside, each with at least two points. */
export function clipLine(line: readonly LonLat[], q: Quad): LonLat[][] {
  if (line.every((v) => insideQuad(v, q))) return [[...line]];
  const pieces: LonLat[][] = [];
  let current: LonLat[] | undefined;
  const at = (a: LonLat, b: LonLat, t: number): LonLat =>
    t === 0 ? a : t === 1 ? b : [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
  for (let i = 0; i + 1 < line.length; i++) {
    const a = line[i]!;
    const b = line[i + 1]!;
    const span = clipSegment(a, b, q);
    if (!span || span[0] === span[1]) {
      current = undefined;
      continue;
    }
    const p0 = at(a, b, span[0]);
    const p1 = at(a, b, span[1]);
    if (current && span[0] === 0) current.push(p1);
    else {
      current = [p0, p1];
      pieces.push(current);
    }
    if (span[1] !== 1) current = undefined;
  }
  return pieces;
}
