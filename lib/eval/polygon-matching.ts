/**
 * The SpaceNet building F1: predicted polygons against truth polygons, a true positive when the
 * polygon IoU is at least 0.5, one-to-one. As SpaceNet's scorer does it, proposals are taken in
 * turn (here in descending score order, stable) and each takes the still unmatched truth polygon
 * of the highest IoU; a proposal without one at >= 0.5 is a false positive, truth left over are
 * false negatives. Intersections are exact polygon clipping (the polygon-clipping package: a
 * Martinez-Rueda sweep line with robust predicates, holes and multipolygons included).
 * Pure, no I/O.
 */
import polygonClipping from 'polygon-clipping';
import type { Pair, Polygon as ClipPolygon } from 'polygon-clipping';
import { BoxIndex } from '../labels/box-index.js';
import { polygonArea, polygonsBounds } from '../labels/geometry.js';
import type { Polygon } from '../labels/geometry.js';
import { boxIou } from './matching.js';
import type { Box } from './matching.js';

/** A shape to match: polygons (outer ring then holes) in scene pixels, a class and a score. */
export interface Shape {
  readonly polygons: readonly Polygon[];
  readonly label: number;
  readonly score: number;
}

/** The corners of an xyxy box as a polygon. */
export function boxPolygon(box: Box): Polygon {
  const [x0, y0, x1, y1] = box;
  return [
    [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
    ],
  ];
}

function toClip(polygons: readonly Polygon[]): ClipPolygon[] {
  return polygons.map((p) => p.map((r) => r.map(([x, y]): Pair => [x, y])));
}

function areaOf(polygons: readonly Polygon[]): number {
  return polygons.reduce((s, p) => s + polygonArea(p), 0);
}

/**
 * IoU of two shapes given as polygon lists. Overlapping parts within one list are unioned first,
 * so a shape's area is never counted twice.
 */
export function polygonIou(a: readonly Polygon[], b: readonly Polygon[]): number {
  const ra = asRectangle(a);
  const rb = asRectangle(b);
  if (ra && rb) return boxIou(ra, rb);
  const ua = a.length === 1 ? toClip(a) : polygonClipping.union(toClip(a));
  const ub = b.length === 1 ? toClip(b) : polygonClipping.union(toClip(b));
  const inter = clippedArea(polygonClipping.intersection(ua, ub));
  if (inter <= 0) return 0;
  const union = areaOf(a.length === 1 ? a : fromClip(ua)) + areaOf(b.length === 1 ? b : fromClip(ub)) - inter;
  return union > 0 ? inter / union : 0;
}

function fromClip(m: ClipPolygon[]): Polygon[] {
  return m.map((p) => p.map((r) => r.slice(0, -1)));
}

function clippedArea(m: ClipPolygon[]): number {
  return areaOf(fromClip(m));
}

/** The box of a shape that is one axis-aligned rectangle without holes (boxes as predicted), else undefined. */
function asRectangle(shape: readonly Polygon[]): Box | undefined {
  if (shape.length !== 1 || shape[0]!.length !== 1) return undefined;
  const r = shape[0]![0]!;
  const n =
    r.length > 4 && r[0]![0] === r[r.length - 1]![0] && r[0]![1] === r[r.length - 1]![1]
      ? r.length - 1
      : r.length;
  if (n !== 4) return undefined;
  for (let i = 0; i < 4; i++) {
    const p = r[i]!;
    const q = r[(i + 1) % 4]!;
    if (p[0] !== q[0] && p[1] !== q[1]) return undefined;
  }
  const [x0, y0, x1, y1] = polygonsBounds([shape[0]!]);
  return x1 > x0 && y1 > y0 ? [x0, y0, x1, y1] : undefined;
}

/** What the one-to-one polygon matching of one scene and class found. */
export interface PolygonMatch {
  /** Per prediction: the matched truth index, or -1. */
  readonly predictionMatches: Int32Array;
  /** Per truth: the matched prediction index, or -1. */
  readonly truthMatches: Int32Array;
  readonly bestIouOfPrediction: Float64Array;
  readonly bestIouOfTruth: Float64Array;
}

/** SpaceNet's greedy one-to-one matching at `threshold` (IoU >= threshold), all of one class. */
export function matchPolygons(
  predictions: readonly Shape[],
  truth: readonly Shape[],
  threshold = 0.5,
): PolygonMatch {
  const boxes = truth.map((t) => polygonsBounds(t.polygons as Polygon[]));
  const sizes = boxes.map((b) => Math.max(b[2] - b[0], b[3] - b[1])).sort((x, y) => x - y);
  const index = new BoxIndex(Math.max(1, (sizes[Math.floor(sizes.length / 2)] ?? 128) * 2));
  for (const b of boxes) index.insert(b);
  const pm = new Int32Array(predictions.length).fill(-1);
  const tm = new Int32Array(truth.length).fill(-1);
  const bestP = new Float64Array(predictions.length);
  const bestT = new Float64Array(truth.length);
  const order = predictions
    .map((_, i) => i)
    .sort((a, b) => predictions[b]!.score - predictions[a]!.score || a - b);
  for (const p of order) {
    const pb = polygonsBounds(predictions[p]!.polygons as Polygon[]);
    let best = -1;
    let bestIou = 0;
    for (const t of index.candidates(pb)) {
      const tb = boxes[t]!;
      if (tb[0] >= pb[2] || tb[2] <= pb[0] || tb[1] >= pb[3] || tb[3] <= pb[1]) continue;
      const iou = polygonIou(predictions[p]!.polygons, truth[t]!.polygons);
      if (iou > bestP[p]!) bestP[p] = iou;
      if (iou > bestT[t]!) bestT[t] = iou;
      if (tm[t] === -1 && iou >= threshold && iou > bestIou) {
        best = t;
        bestIou = iou;
      }
    }
    if (best >= 0) {
      pm[p] = best;
      tm[best] = p;
    }
  }
  return { predictionMatches: pm, truthMatches: tm, bestIouOfPrediction: bestP, bestIouOfTruth: bestT };
}
