/**
 * Detection matching and COCO-style scores, pure and without I/O. Matching follows the COCO
 * evaluation protocol (pycocotools' `evaluateImg`/`accumulate`, re-implemented): per image and
 * class, detections in descending score order each take the still unmatched truth box of the
 * highest IoU at or above the threshold; no crowd regions, one area range (all). Average
 * precision interpolates precision at 101 recall points (0, 0.01, ..., 1). Unlike COCO's default
 * of 100 detections per image, there is no cap unless `maxDets` is given: our images are whole
 * scenes with thousands of objects.
 */
import { BoxIndex } from '../labels/box-index.js';

/** [x0, y0, x1, y1] in scene pixels. */
export type Box = readonly [number, number, number, number];

/** A detection: a box, its score and its class (index into the evaluation's classes). */
export interface ScoredBox {
  readonly box: Box;
  readonly score: number;
  readonly label: number;
}

/** A truth object: a box and its class. */
export interface TruthBox {
  readonly box: Box;
  readonly label: number;
}

/** `numpy.linspace(start, stop, n)` to the last bit (i * step + start, the last exactly stop), as COCO makes its thresholds. */
function linspace(start: number, stop: number, n: number): number[] {
  const step = (stop - start) / (n - 1);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? stop : i * step + start));
}

/** The IoU thresholds of COCO's AP@[.5:.95]: 0.50, 0.55, ..., 0.95 (as numpy computes them). */
export const IOU_THRESHOLDS: readonly number[] = linspace(0.5, 0.95, 10);

/** COCO's 101 recall points 0, 0.01, ..., 1 (as numpy computes them). */
export const RECALL_POINTS: readonly number[] = linspace(0, 1, 101);

/** Intersection over union of two xyxy boxes (0 when either has no area). */
export function boxIou(a: Box, b: Box): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** What the matching of one image's detections of one class against its truth found. */
export interface ImageClassMatch {
  /** Indexes into the detections, in the order COCO considers them (score descending, stable). */
  readonly order: readonly number[];
  /** Per IoU threshold, per position in `order`: the matched truth index, or -1. */
  readonly matches: readonly Int32Array[];
  /** Per IoU threshold, per truth object: the matched detection index, or -1. */
  readonly truthMatches: readonly Int32Array[];
  /** Per detection (by its own index): the highest IoU with any truth object. */
  readonly bestIouOfDetection: Float64Array;
  /** Per truth object: the highest IoU with any detection. */
  readonly bestIouOfTruth: Float64Array;
}

/**
 * COCO's greedy matching of one image's detections of one class against its truth boxes, at
 * each threshold of `thresholds`. Candidate pairs come from a grid index, so thousands of
 * objects per scene stay fast.
 */
export function matchImageClass(
  detections: readonly ScoredBox[],
  truth: readonly TruthBox[],
  thresholds: readonly number[] = IOU_THRESHOLDS,
  maxDets?: number,
): ImageClassMatch {
  const all = detections
    .map((_, i) => i)
    .sort((a, b) => detections[b]!.score - detections[a]!.score || a - b);
  const order = maxDets === undefined ? all : all.slice(0, maxDets);
  const bestD = new Float64Array(detections.length);
  const bestT = new Float64Array(truth.length);
  // candidate truth objects of each detection with their IoU, truth index ascending
  const cell = typicalSize(truth.map((t) => t.box));
  const index = new BoxIndex(cell);
  for (const t of truth) index.insert(t.box);
  const pairs = new Map<number, { t: number; iou: number }[]>();
  for (const d of order) {
    const box = detections[d]!.box;
    const list: { t: number; iou: number }[] = [];
    for (const t of index.candidates(box)) {
      const iou = boxIou(box, truth[t]!.box);
      if (iou <= 0) continue;
      list.push({ t, iou });
      if (iou > bestD[d]!) bestD[d] = iou;
      if (iou > bestT[t]!) bestT[t] = iou;
    }
    pairs.set(d, list);
  }
  const matches: Int32Array[] = [];
  const truthMatches: Int32Array[] = [];
  for (const threshold of thresholds) {
    const m = new Int32Array(order.length).fill(-1);
    const tm = new Int32Array(truth.length).fill(-1);
    order.forEach((d, k) => {
      // as pycocotools: the best IoU starts just under the threshold, so >= threshold matches
      let best = Math.min(threshold, 1 - 1e-10);
      let match = -1;
      for (const { t, iou } of pairs.get(d)!) {
        if (tm[t] !== -1 || iou < best) continue;
        best = iou;
        match = t;
      }
      if (match >= 0) {
        m[k] = match;
        tm[match] = d;
      }
    });
    matches.push(m);
    truthMatches.push(tm);
  }
  return { order, matches, truthMatches, bestIouOfDetection: bestD, bestIouOfTruth: bestT };
}

/** A grid cell size near the median object size (at least 1 px). */
function typicalSize(boxes: readonly Box[]): number {
  if (boxes.length === 0) return 256;
  const sizes = boxes.map((b) => Math.max(b[2] - b[0], b[3] - b[1])).sort((a, b) => a - b);
  return Math.max(1, sizes[Math.floor(sizes.length / 2)]! * 2);
}

/** Counts at one IoU threshold, and the ratios made from them (null when 0 / 0). */
export interface Counts {
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly f1: number | null;
}

/** Precision, recall and F1 of TP, FP and FN counts (null where the denominator is 0). */
export function countsOf(tp: number, fp: number, fn: number): Counts {
  return {
    tp,
    fp,
    fn,
    precision: tp + fp > 0 ? tp / (tp + fp) : null,
    recall: tp + fn > 0 ? tp / (tp + fn) : null,
    f1: tp + fp + fn > 0 ? (2 * tp) / (2 * tp + fp + fn) : null,
  };
}

/**
 * Accumulates, for one class, the detections' scores and whether each matched at each IoU
 * threshold, over as many images as are added; then scores them the way COCO's `accumulate` does.
 */
export class ClassAccumulator {
  private readonly scores: number[] = [];
  private readonly hits: number[][];
  /** Truth objects seen. */
  truth = 0;

  constructor(readonly thresholds: readonly number[] = IOU_THRESHOLDS) {
    this.hits = thresholds.map(() => []);
  }

  /** Adds one image's matching of this class. */
  add(detections: readonly ScoredBox[], match: ImageClassMatch, truthCount: number): void {
    this.truth += truthCount;
    match.order.forEach((d, k) => {
      this.scores.push(detections[d]!.score);
      this.thresholds.forEach((_, t) => this.hits[t]!.push(match.matches[t]![k]! >= 0 ? 1 : 0));
    });
  }

  /** Adds every record of another accumulator (e.g. a scene's into the whole run's). */
  merge(other: ClassAccumulator): void {
    this.truth += other.truth;
    this.scores.push(...other.scores);
    other.hits.forEach((h, t) => this.hits[t]!.push(...h));
  }

  /** Detections seen. */
  get detections(): number {
    return this.scores.length;
  }

  /**
   * Interpolated precision at the 101 recall points for threshold index `t`, or null when there
   * is no truth of this class (COCO's -1: the class does not count in means).
   */
  precisionAtRecall(t: number): number[] | null {
    if (this.truth === 0) return null;
    const n = this.scores.length;
    // stable descending sort by score, as numpy's mergesort on -score
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => this.scores[b]! - this.scores[a]! || a - b,
    );
    const hits = this.hits[t]!;
    const precision = new Float64Array(n);
    const recall = new Float64Array(n);
    let tp = 0;
    let fp = 0;
    order.forEach((i, k) => {
      if (hits[i]) tp++;
      else fp++;
      recall[k] = tp / this.truth;
      precision[k] = tp / (tp + fp);
    });
    for (let k = n - 1; k > 0; k--) if (precision[k]! > precision[k - 1]!) precision[k - 1] = precision[k]!;
    return RECALL_POINTS.map((r) => {
      // first position whose recall reaches r (numpy searchsorted, side left)
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (recall[mid]! < r) lo = mid + 1;
        else hi = mid;
      }
      return lo < n ? precision[lo]! : 0;
    });
  }

  /** AP at threshold index `t` (mean of the interpolated precision), null without truth. */
  averagePrecision(t: number): number | null {
    const p = this.precisionAtRecall(t);
    return p === null ? null : p.reduce((a, b) => a + b, 0) / p.length;
  }

  /** AP@0.5 (the threshold 0.5 must be in the list) and AP@[.5:.95] (the mean over the thresholds). */
  scores50And5095(): { ap50: number | null; ap: number | null } {
    const i50 = this.thresholds.indexOf(0.5);
    const aps = this.thresholds.map((_, t) => this.averagePrecision(t));
    if (aps.some((a) => a === null)) return { ap50: null, ap: null };
    const values = aps as number[];
    return {
      ap50: i50 >= 0 ? values[i50]! : null,
      ap: values.reduce((a, b) => a + b, 0) / values.length,
    };
  }
}

/** The mean of the non-null values, or null when there are none (COCO's mean over classes with truth). */
export function meanOf(values: readonly (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
