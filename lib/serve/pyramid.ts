/**
 * A decimated pyramid in memory for a raster without overviews, so zoomed-out tiles do not decode
 * the whole file each time. Built once by streaming the full-resolution image one block row at a
 * time (at most a few decoded blocks alive), straight into the first stored level (factor F, a
 * power of two), then 2 x 2 down to a level that fits one tile. Only the bands in use are kept.
 *
 * Memory bound: the stored levels total at most `budgetBytes` (the first level gets 3/4 of it, the
 * coarser ones sum to under a third of the first), so F is the smallest power of two whose level
 * fits; tiles between full resolution and F read full-resolution blocks (at most 256·F source
 * pixels across). While building: the decoded blocks in flight plus one row of accumulators per
 * pending output row (width/F · bands · 12 bytes).
 *
 * Decimation: `average` (imagery) is the mean of the valid source pixels of each F x F box;
 * `nearest` (classes) takes the box's centre pixel (what GDAL's nearest downsampling picks). No-data
 * stays no-data: a box without valid pixels gets the raster's no-data value.
 */
import {
  CTORS,
  SAMPLE_BYTES,
  type BandArray,
  type BlockRef,
  type DecodedBlock,
  type ImageBlocks,
} from '../raster/blocks.js';
import type { SampleType } from '../raster/info.js';

/** Factors and sizes of the levels a pyramid would store. */
export interface PyramidPlan {
  /** Factor of the first (finest) stored level. */
  readonly firstFactor: number;
  /** Factors of every stored level, finest first. */
  readonly factors: readonly number[];
  readonly bytes: number;
}

/**
 * The levels to store for a `width` x `height` raster of `bands` bands in use within
 * `budgetBytes`, down to one that fits a `tileSize` tile; undefined when the raster already fits
 * one tile (nothing to gain).
 */
export function pyramidPlan(
  width: number,
  height: number,
  bands: number,
  dtype: SampleType,
  budgetBytes: number,
  tileSize: number,
): PyramidPlan | undefined {
  if (Math.max(width, height) <= tileSize) return undefined;
  const bytesAt = (f: number): number =>
    Math.ceil(width / f) * Math.ceil(height / f) * bands * SAMPLE_BYTES[dtype];
  let first = 2;
  while (bytesAt(first) > budgetBytes * 0.75 && Math.max(width, height) / first > tileSize) first *= 2;
  if (bytesAt(first) > budgetBytes * 0.75) return undefined;
  const factors = [first];
  while (Math.max(Math.ceil(width / factors.at(-1)!), Math.ceil(height / factors.at(-1)!)) > tileSize) {
    factors.push(factors.at(-1)! * 2);
  }
  return { firstFactor: first, factors, bytes: factors.reduce((s, f) => s + bytesAt(f), 0) };
}

/** One stored level: a single block holding every pixel, pixel-interleaved, the bands in use only. */
export class PyramidLevel implements ImageBlocks {
  readonly blockWidth: number;
  readonly blockHeight: number;
  readonly blocksAcross = 1;
  readonly blocksDown = 1;
  readonly mode = 'blocks' as const;
  /** Band indices to read this level with (0..bands-1: the source bands in use, in order). */
  readonly bandIndices: readonly number[];

  constructor(
    readonly width: number,
    readonly height: number,
    readonly bands: number,
    readonly dtype: SampleType,
    readonly factor: readonly [number, number],
    readonly data: BandArray,
  ) {
    this.blockWidth = width;
    this.blockHeight = height;
    this.bandIndices = Array.from({ length: bands }, (_, i) => i);
  }

  get bytes(): number {
    return this.data.byteLength;
  }

  blocksInRows(y0: number, y1: number): BlockRef[] {
    return y1 > y0 && y0 < this.height ? [{ bx: 0, by: 0 }] : [];
  }

  blockRect(): { col: number; row: number; width: number; height: number } {
    return { col: 0, row: 0, width: this.width, height: this.height };
  }

  readBlocks(
    blocks: readonly BlockRef[],
    bands: readonly number[],
    onBlock: (block: DecodedBlock) => void,
  ): Promise<void> {
    for (const b of bands) {
      if (!Number.isInteger(b) || b < 0 || b >= this.bands) {
        return Promise.reject(
          new RangeError(`pyramid level band ${b} is out of range (0..${this.bands - 1})`),
        );
      }
    }
    for (let i = 0; i < blocks.length; i++) {
      onBlock({
        col: 0,
        row: 0,
        width: this.width,
        height: this.height,
        bands: bands.map((b) => ({
          data: this.data,
          offset: b,
          pixelStride: this.bands,
          rowStride: this.width * this.bands,
        })),
      });
    }
    return Promise.resolve();
  }
}

export interface BuildPyramidOptions {
  readonly method: 'average' | 'nearest';
  readonly signal?: AbortSignal;
  /** Called for every source block decoded. */
  readonly onBlock?: () => void;
}

/** Builds the levels of `plan` from `level0`, reading source bands `bands` (0-based). */
export async function buildPyramid(
  level0: ImageBlocks,
  bands: readonly number[],
  nodata: number | null,
  plan: PyramidPlan,
  options: BuildPyramidOptions,
): Promise<PyramidLevel[]> {
  const first = await decimateSource(level0, bands, nodata, plan.firstFactor, options);
  const levels = [first];
  for (let i = 1; i < plan.factors.length; i++) levels.push(halve(levels.at(-1)!, nodata, options.method));
  return levels;
}

function isInteger(dtype: SampleType): boolean {
  return !dtype.startsWith('float');
}

async function decimateSource(
  level0: ImageBlocks,
  bands: readonly number[],
  nodata: number | null,
  f: number,
  options: BuildPyramidOptions,
): Promise<PyramidLevel> {
  const { width, height, dtype } = level0;
  const n = bands.length;
  const ow = Math.ceil(width / f);
  const oh = Math.ceil(height / f);
  const out = new CTORS[dtype](new ArrayBuffer(ow * oh * n * SAMPLE_BYTES[dtype]), 0, ow * oh * n);
  const fill = nodata ?? (isInteger(dtype) ? 0 : NaN);
  const round = isInteger(dtype);
  const nd = nodata ?? NaN;
  const hasNodata = nodata !== null;
  // accumulators of the output rows the current block row touches
  const sums = new Map<number, { sum: Float64Array; count: Uint32Array }>();
  const rowAcc = (r: number): { sum: Float64Array; count: Uint32Array } => {
    let acc = sums.get(r);
    if (!acc) {
      acc = { sum: new Float64Array(ow * n), count: new Uint32Array(ow) };
      sums.set(r, acc);
    }
    return acc;
  };
  const finish = (r: number): void => {
    const acc = sums.get(r);
    for (let c = 0; c < ow; c++) {
      const count = acc ? acc.count[c]! : 0;
      for (let b = 0; b < n; b++) {
        const v = count > 0 ? acc!.sum[c * n + b]! / count : fill;
        out[(r * ow + c) * n + b] = round && count > 0 ? Math.round(v) : v;
      }
    }
    sums.delete(r);
  };
  const half = Math.floor(f / 2);
  const nearest = options.method === 'nearest';
  const px = new Float64Array(n);
  let nextRow = 0;
  for (let by = 0; by < level0.blocksDown; by++) {
    options.signal?.throwIfAborted();
    const y0 = by * level0.blockHeight;
    const y1 = Math.min(height, y0 + level0.blockHeight);
    await level0.readBlocks(
      level0.blocksInRows(y0, y1),
      bands,
      (block) => {
        options.onBlock?.();
        for (let r = 0; r < block.height; r++) {
          const sy = block.row + r;
          const oy = Math.floor(sy / f);
          // nearest: only the centre row and column of each box (clipped to the image)
          if (nearest && sy !== Math.min(height - 1, oy * f + half)) continue;
          const acc = rowAcc(oy);
          for (let c = 0; c < block.width; c++) {
            const sx = block.col + c;
            const ox = Math.floor(sx / f);
            if (nearest && sx !== Math.min(width - 1, ox * f + half)) continue;
            let allNodata = hasNodata;
            let nan = false;
            for (let b = 0; b < n; b++) {
              const view = block.bands[b]!;
              const v = view.data[view.offset + r * view.rowStride + c * view.pixelStride]!;
              px[b] = v;
              if (v !== v) nan = true;
              if (v !== nd) allNodata = false;
            }
            if (nan || allNodata) continue;
            acc.count[ox]!++;
            for (let b = 0; b < n; b++) acc.sum[ox * n + b] = acc.sum[ox * n + b]! + px[b]!;
          }
        }
      },
      options.signal ? { signal: options.signal } : {},
    );
    // output rows whose boxes end within this block row are complete
    const done = y1 >= height ? oh : Math.floor(y1 / f);
    for (; nextRow < done; nextRow++) finish(nextRow);
  }
  return new PyramidLevel(ow, oh, n, dtype, [f, f], out);
}

function halve(level: PyramidLevel, nodata: number | null, method: 'average' | 'nearest'): PyramidLevel {
  const { width, height, bands: n, dtype, data } = level;
  const ow = Math.ceil(width / 2);
  const oh = Math.ceil(height / 2);
  const out = new CTORS[dtype](new ArrayBuffer(ow * oh * n * SAMPLE_BYTES[dtype]), 0, ow * oh * n);
  const fill = nodata ?? (isInteger(dtype) ? 0 : NaN);
  const round = isInteger(dtype);
  const nd = nodata ?? NaN;
  const hasNodata = nodata !== null;
  const validAt = (i: number): boolean => {
    let allNodata = hasNodata;
    for (let b = 0; b < n; b++) {
      const v = data[i + b]!;
      if (v !== v) return false;
      if (v !== nd) allNodata = false;
    }
    return !allNodata;
  };
  const sums = new Float64Array(n);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      const o = (oy * ow + ox) * n;
      if (method === 'nearest') {
        const i = (Math.min(height - 1, oy * 2 + 1) * width + Math.min(width - 1, ox * 2 + 1)) * n;
        for (let b = 0; b < n; b++) out[o + b] = data[i + b]!;
        continue;
      }
      let count = 0;
      sums.fill(0);
      for (let k = 0; k < 4; k++) {
        const sx = ox * 2 + (k & 1);
        const sy = oy * 2 + (k >> 1);
        if (sx >= width || sy >= height) continue;
        const i = (sy * width + sx) * n;
        if (!validAt(i)) continue;
        count++;
        for (let b = 0; b < n; b++) sums[b] = sums[b]! + data[i + b]!;
      }
      for (let b = 0; b < n; b++) {
        out[o + b] = count === 0 ? fill : round ? Math.round(sums[b]! / count) : sums[b]! / count;
      }
    }
  }
  return new PyramidLevel(ow, oh, n, dtype, [level.factor[0] * 2, level.factor[1] * 2], out);
}
