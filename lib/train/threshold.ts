/**
 * The detection score threshold of the model bundle, chosen on validation: model.onnx is run with
 * onnxruntime-node on the validation images (read and resized to the input size as the trainer
 * does), its detections matched to the ground truth at IoU >= 0.5, and the threshold of
 * 0.05..0.95 (step 0.05) with the highest F1 wins, ties going to the one nearest 0.5 (the rule the
 * trainer uses for the classification threshold).
 *
 * Matching is greedy by score and one-to-one per class: each detection, highest score first, takes
 * the unmatched truth box of its class it overlaps most (IoU >= 0.5, areas without COCO's +1, as
 * the trainer's AP). A detection's match depends only on higher-scored ones, so one matching of
 * all detections serves every threshold: TP(t) = matched detections scoring >= t.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { TrainError } from './errors.js';
import { resizeBilinearLikePil } from '../raster/pil-resize.js';

import { boxIou, type Box, type ScoredBox, type TruthBox } from '../eval/matching.js';

// one box IoU and one box shape for eval and the validation threshold
export { boxIou, type Box, type ScoredBox, type TruthBox };

/** The detections of one image, each marked true or false positive, and its number of truth boxes. */
export interface ImageMatch {
  readonly scores: readonly number[];
  readonly matched: readonly boolean[];
  readonly truth: number;
}

/** Candidate thresholds 0.05, 0.10, ... 0.95. */
export const THRESHOLDS: readonly number[] = Array.from(
  { length: 19 },
  (_, i) => Math.round((i + 1) * 5) / 100,
);

/** Minimum IoU of a true positive. */
export const MATCH_IOU = 0.5;

/** Validation images run at most, spread evenly over the split. @default */
export const MAX_THRESHOLD_IMAGES = 200;

/** Marks each detection of one image as matched or not (see the module comment); pure. */
export function matchImage(
  detections: readonly ScoredBox[],
  truth: readonly TruthBox[],
  minIou = MATCH_IOU,
): ImageMatch {
  // stable: equal scores keep their order, so the result does not depend on the sort
  const order = detections.map((_, i) => i).sort((a, b) => detections[b]!.score - detections[a]!.score);
  const used = new Uint8Array(truth.length);
  const scores: number[] = [];
  const matched: boolean[] = [];
  for (const i of order) {
    const d = detections[i]!;
    let best = -1;
    let bestIou = minIou;
    for (let j = 0; j < truth.length; j++) {
      if (used[j] || truth[j]!.label !== d.label) continue;
      const iou = boxIou(d.box, truth[j]!.box);
      if (iou >= bestIou && (best < 0 || iou > bestIou)) {
        best = j;
        bestIou = iou;
      }
    }
    if (best >= 0) used[best] = 1;
    scores.push(d.score);
    matched.push(best >= 0);
  }
  return { scores, matched, truth: truth.length };
}

export interface ThresholdChoice {
  readonly threshold: number;
  readonly f1: number;
  readonly precision: number;
  readonly recall: number;
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
}

/**
 * The threshold of {@link THRESHOLDS} with the highest F1 over `images` (ties to the one nearest
 * 0.5, then the lower); undefined when there is no truth box at all. Pure.
 */
export function chooseThreshold(images: readonly ImageMatch[]): ThresholdChoice | undefined {
  const truth = images.reduce((a, m) => a + m.truth, 0);
  if (truth === 0) return undefined;
  let best: ThresholdChoice | undefined;
  for (const t of [...THRESHOLDS].sort((a, b) => Math.abs(a - 0.5) - Math.abs(b - 0.5) || a - b)) {
    let tp = 0;
    let fp = 0;
    for (const m of images) {
      m.scores.forEach((s, i) => {
        if (s < t) return;
        if (m.matched[i]) tp++;
        else fp++;
      });
    }
    const fn = truth - tp;
    const f1 = (2 * tp) / (2 * tp + fp + fn);
    if (best === undefined || f1 > best.f1 + 1e-12) {
      best = {
        threshold: t,
        f1,
        precision: tp + fp > 0 ? tp / (tp + fp) : 0,
        recall: tp / truth,
        tp,
        fp,
        fn,
      };
    }
  }
  return best;
}

/**
 * Reads an image as the trainer's `load_image` does: RGB (grey replicated, alpha dropped), resized
 * to size x size as Pillow's bilinear resize when it is not that size; returns CHW float32 in
 * [0, 1] and the scale factors applied to x and y.
 */
export async function readTrainerImage(
  path: string,
  size: number,
): Promise<{ data: Float32Array; sx: number; sy: number }> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(path)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new TrainError('data', `image ${path} is not readable (${(error as Error).message})`);
  }
  const { width, height, channels } = decoded.info;
  const rgb =
    width === size && height === size
      ? decoded.data
      : resizeBilinearLikePil(decoded.data, width, height, channels, size, size);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = rgb[p * channels + Math.min(c, channels - 1)]! / 255;
  }
  return { data: out, sx: size / width, sy: size / height };
}

interface CocoVal {
  readonly images?: readonly { readonly id: unknown; readonly file_name: string }[];
  readonly annotations?: readonly {
    readonly image_id: unknown;
    readonly category_id: unknown;
    readonly bbox?: readonly number[];
  }[];
}

/** The images to run: all, or `max` spread evenly over the split (in file order). */
function spread<T>(list: readonly T[], max: number): T[] {
  if (list.length <= max) return [...list];
  return Array.from({ length: max }, (_, i) => list[Math.floor((i * list.length) / max)]!);
}

export interface DetectionThresholdOptions {
  /** The exported model.onnx (batch 1, input `image` [1, 3, size, size]). */
  readonly onnx: string;
  /** The validation COCO file and the folder its file names are relative to. */
  readonly val: string;
  readonly imagesDir: string;
  /** Category ids in the trainer's order: class index k is label k + 1. */
  readonly classIds: readonly number[];
  readonly size: number;
  /** @default {@link MAX_THRESHOLD_IMAGES} */
  readonly maxImages?: number;
  readonly signal?: AbortSignal;
}

export interface DetectionThreshold {
  readonly scoreThreshold: number;
  readonly thresholdFrom: string;
  readonly choice?: ThresholdChoice;
  readonly images: number;
}

function asBox(value: unknown): Box | undefined {
  return Array.isArray(value) && value.length === 4 && value.every((v) => Number.isFinite(v))
    ? (value as unknown as Box)
    : undefined;
}

/** Runs the detector over the validation images and chooses the threshold (see the module comment). */
export async function detectionThreshold(options: DetectionThresholdOptions): Promise<DetectionThreshold> {
  const { size } = options;
  const coco = JSON.parse(await readFile(options.val, 'utf8')) as CocoVal;
  const images = coco.images ?? [];
  if (images.length === 0) {
    return {
      scoreThreshold: 0.5,
      thresholdFrom: 'default 0.5: the validation split has no images',
      images: 0,
    };
  }
  const index = new Map(options.classIds.map((id, k) => [id, k]));
  const truthOf = new Map<unknown, { label: number; bbox: readonly number[] }[]>();
  let truthCount = 0;
  for (const a of coco.annotations ?? []) {
    const k = index.get(a.category_id as number);
    if (k === undefined || !Array.isArray(a.bbox) || a.bbox.length !== 4) continue;
    const list = truthOf.get(a.image_id) ?? [];
    list.push({ label: k, bbox: a.bbox });
    truthOf.set(a.image_id, list);
    truthCount++;
  }
  if (truthCount === 0) {
    return {
      scoreThreshold: 0.5,
      thresholdFrom: `default 0.5: the ${images.length} validation image(s) have no ground truth boxes`,
      images: 0,
    };
  }
  const chosen = spread(images, options.maxImages ?? MAX_THRESHOLD_IMAGES);
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(options.onnx);
  const matches: ImageMatch[] = [];
  try {
    for (const image of chosen) {
      options.signal?.throwIfAborted();
      const { data, sx, sy } = await readTrainerImage(join(options.imagesDir, image.file_name), size);
      const out = await session.run({ image: new ort.Tensor('float32', data, [1, 3, size, size]) });
      const boxes = out['boxes']?.data as Float32Array | undefined;
      const labels = out['labels']?.data as BigInt64Array | undefined;
      const scores = out['scores']?.data as Float32Array | undefined;
      if (!boxes || !labels || !scores) {
        throw new TrainError(
          'onnx',
          `${options.onnx}: expected the detection outputs boxes, labels and scores, got ${Object.keys(out).join(', ')}`,
        );
      }
      const detections: ScoredBox[] = [];
      for (let i = 0; i < scores.length; i++) {
        detections.push({
          box: [boxes[4 * i]!, boxes[4 * i + 1]!, boxes[4 * i + 2]!, boxes[4 * i + 3]!],
          score: scores[i]!,
          label: Number(labels[i]!) - 1,
        });
      }
      // truth scaled and clipped to the input as the trainer's dataset does; slivers < 1 px dropped
      const truth: TruthBox[] = [];
      for (const t of truthOf.get(image.id) ?? []) {
        const b = asBox(t.bbox);
        if (!b) continue;
        const [x, y, w, h] = b;
        const x1 = Math.max(0, x * sx);
        const y1 = Math.max(0, y * sy);
        const x2 = Math.min(size, (x + w) * sx);
        const y2 = Math.min(size, (y + h) * sy);
        if (x2 - x1 < 1 || y2 - y1 < 1) continue;
        truth.push({ box: [x1, y1, x2, y2], label: t.label });
      }
      matches.push(matchImage(detections, truth));
    }
  } finally {
    await session.release();
  }
  const choice = chooseThreshold(matches);
  const of = chosen.length < images.length ? ` of ${images.length}` : '';
  if (!choice) {
    return {
      scoreThreshold: 0.5,
      thresholdFrom: `default 0.5: the ${chosen.length}${of} validation chips run have no ground truth boxes`,
      images: chosen.length,
    };
  }
  return {
    scoreThreshold: choice.threshold,
    thresholdFrom: `max F1 at IoU ${MATCH_IOU} on ${chosen.length}${of} validation chips (F1 ${choice.f1.toFixed(2)}, precision ${choice.precision.toFixed(2)}, recall ${choice.recall.toFixed(2)})`,
    choice,
    images: chosen.length,
  };
}
