/**
 * Segmentation scores: a confusion matrix of a predicted class raster against a truth raster (or
 * truth polygons rasterised on the same grid), streamed by bands of rows so that a 40,000 px
 * scene needs two bands of rows in memory, never the scene; then IoU and F1 per class.
 */
import { ScanlineRasterizer } from '../labels/rasterize.js';
import type { BurnShape } from '../labels/rasterize.js';
import { openRaster } from '../raster/reader.js';
import type { OpenRaster } from '../raster/reader.js';
import type { Storage } from '../storage/types.js';
import { EvalError } from './errors.js';
import { countsOf } from './matching.js';
import type { Counts } from './matching.js';

/** Rows of a single-band uint8 image, read top to bottom. */
export interface RowSource {
  /** Fills `out` (row-major, width per row) with rows [y0, y1). */
  readRows(y0: number, y1: number, out: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** Rows of band 1 of a raster, read block row by block row. */
export async function rasterRows(storage: Storage, uri: string, signal?: AbortSignal): Promise<RowSource> {
  const raster: OpenRaster = await openRaster(storage, uri, signal ? { signal } : {});
  const level = await raster.level(0);
  const width = level.width;
  return {
    async readRows(y0, y1, out) {
      await level.readBlocks(
        level.blocksInRows(y0, y1),
        [0],
        (block) => {
          const v = block.bands[0]!;
          const top = Math.max(y0, block.row);
          const bottom = Math.min(y1, block.row + block.height);
          for (let y = top; y < bottom; y++) {
            const src = v.offset + (y - block.row) * v.rowStride;
            const dst = (y - y0) * width + block.col;
            if (v.pixelStride === 1 && v.data instanceof Uint8Array) {
              out.set(v.data.subarray(src, src + block.width), dst);
            } else {
              for (let c = 0; c < block.width; c++) out[dst + c] = v.data[src + c * v.pixelStride]!;
            }
          }
        },
        signal ? { signal } : {},
      );
    },
    close: () => raster.close(),
  };
}

/** Rows of shapes burned on a width x height grid (0 where none is). */
export function shapeRows(shapes: readonly BurnShape[], width: number, height: number): RowSource {
  const rasterizer = new ScanlineRasterizer(shapes, width, height, false);
  return {
    readRows(y0, y1, out) {
      out.fill(0, 0, (y1 - y0) * width);
      rasterizer.fillRows(y0, y1, out);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

/** A confusion matrix over background (index 0) and the classes (1..K): rows truth, columns predicted. */
export interface Confusion {
  /** Names of the rows and columns: 'background', then the classes. */
  readonly labels: readonly string[];
  /** counts[truth][predicted], in pixels. */
  readonly counts: readonly (readonly number[])[];
  /** Pixels where the prediction is no-data (255), not counted. */
  readonly nodataPixels: number;
}

/**
 * Counts pixels of `predicted` against `truth` (both width x height), `bandRows` rows at a time.
 * Pixel values are category ids: `ids[k]` is class k's, 0 background; a predicted 255 is no-data
 * and skipped. Values that are no class are an EvalError naming them and where they came from.
 */
export async function confusionOf(
  predicted: RowSource,
  truth: RowSource,
  grid: { readonly width: number; readonly height: number },
  classes: readonly { readonly id: number; readonly name: string }[],
  where: { readonly predicted: string; readonly truth: string },
  options: { readonly bandRows?: number; readonly signal?: AbortSignal } = {},
): Promise<Confusion> {
  const k = classes.length + 1;
  const lut = new Int16Array(256).fill(-1);
  lut[0] = 0;
  classes.forEach((c, i) => {
    if (c.id >= 1 && c.id <= 255) lut[c.id] = i + 1;
  });
  const predLut = Int16Array.from(lut);
  if (predLut[255] === -1) predLut[255] = -2;
  const counts = new Float64Array(k * k);
  // 512: the block height predict and the mask stage write, so each block is decoded once
  const rows = Math.max(1, options.bandRows ?? 512);
  const { width, height } = grid;
  const p = new Uint8Array(rows * width);
  const t = new Uint8Array(rows * width);
  const badPred = new Map<number, number>();
  const badTruth = new Map<number, number>();
  let nodata = 0;
  for (let y0 = 0; y0 < height; y0 += rows) {
    options.signal?.throwIfAborted();
    const y1 = Math.min(height, y0 + rows);
    await Promise.all([predicted.readRows(y0, y1, p), truth.readRows(y0, y1, t)]);
    const n = (y1 - y0) * width;
    for (let i = 0; i < n; i++) {
      const pc = predLut[p[i]!]!;
      const tc = lut[t[i]!]!;
      if (pc === -2) {
        nodata++;
        continue;
      }
      if (pc < 0) {
        badPred.set(p[i]!, (badPred.get(p[i]!) ?? 0) + 1);
        continue;
      }
      if (tc < 0) {
        badTruth.set(t[i]!, (badTruth.get(t[i]!) ?? 0) + 1);
        continue;
      }
      counts[tc * k + pc]!++;
    }
  }
  const known = `0 (background), ${classes.map((c) => `${c.id} (${c.name})`).join(', ')}`;
  const list = (m: Map<number, number>) => [...m].map(([v, c]) => `${v} (${c} px)`).join(', ');
  if (badPred.size > 0) {
    throw new EvalError(
      `predictions ${where.predicted}: pixel values ${list(badPred)} are no class id; expected ${known} or 255 (no data)`,
    );
  }
  if (badTruth.size > 0) {
    throw new EvalError(
      `truth ${where.truth}: pixel values ${list(badTruth)} are no class id of the predictions; expected ${known}${badTruth.has(255) ? " (255 is the mask stage's burn value without categories: give it the model's categories)" : ''}`,
    );
  }
  const matrix = Array.from({ length: k }, (_, r) => Array.from(counts.subarray(r * k, (r + 1) * k)));
  return { labels: ['background', ...classes.map((c) => c.name)], counts: matrix, nodataPixels: nodata };
}

/** Adds confusion matrices of the same labels. */
export function addConfusion(a: Confusion, b: Confusion): Confusion {
  return {
    labels: a.labels,
    counts: a.counts.map((row, r) => row.map((v, c) => v + b.counts[r]![c]!)),
    nodataPixels: a.nodataPixels + b.nodataPixels,
  };
}

/** Per-class pixel scores of a confusion matrix. */
export interface PixelScores extends Counts {
  /** TP / (TP + FP + FN), null when the class is in neither raster. */
  readonly iou: number | null;
}

/** Pixel TP/FP/FN, IoU, precision, recall and F1 of class index `i` (0 background). */
export function pixelScores(confusion: Confusion, i: number): PixelScores {
  const m = confusion.counts;
  const tp = m[i]![i]!;
  let fp = 0;
  let fn = 0;
  m.forEach((row, r) => {
    if (r !== i) fp += row[i]!;
  });
  m[i]!.forEach((v, c) => {
    if (c !== i) fn += v;
  });
  return { ...countsOf(tp, fp, fn), iou: tp + fp + fn > 0 ? tp / (tp + fp + fn) : null };
}
