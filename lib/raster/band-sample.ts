/**
 * Band histograms from a bounded sample of valid pixels: the whole image when it is small,
 * else the smallest overview with at least a million pixels (COGs), else blocks spread evenly
 * over the image, so time and memory do not grow with the image.
 */
import type { OpenRaster, ImageBlocks, BlockRef, DecodedBlock } from './reader.js';
import { BandHistogram } from './stretch.js';

export interface SampleBandsOptions {
  /** No-data value: pixels whose every sampled band equals it are left out. */
  readonly nodata: number | null;
  /** Upper bound of pixels read. @default 4,194,304 (2048 x 2048) */
  readonly maxPixels?: number;
  readonly signal?: AbortSignal;
}

export interface BandSample {
  /** One histogram per requested band, in the order requested. */
  readonly histograms: BandHistogram[];
  /** e.g. "full image 900x900", "overview 665x667", "24 of 400 blocks". */
  readonly sampledFrom: string;
  /** Pixels read, and those of them that were valid. */
  readonly pixels: number;
  readonly validPixels: number;
}

/** Blocks of a level spread evenly over it, about `wanted` of them (rows and columns both sampled). */
export function spreadBlocks(
  level: Pick<ImageBlocks, 'blocksAcross' | 'blocksDown'>,
  wanted: number,
): BlockRef[] {
  const { blocksAcross: nx, blocksDown: ny } = level;
  if (wanted >= nx * ny) {
    const all: BlockRef[] = [];
    for (let by = 0; by < ny; by++) for (let bx = 0; bx < nx; bx++) all.push({ bx, by });
    return all;
  }
  const ky = Math.max(1, Math.min(ny, wanted, Math.round(Math.sqrt((wanted * ny) / nx))));
  const kx = Math.max(1, Math.min(nx, Math.ceil(wanted / ky)));
  const refs: BlockRef[] = [];
  for (let j = 0; j < ky; j++) {
    const by = Math.floor(((j + 0.5) * ny) / ky);
    for (let i = 0; i < kx; i++) {
      // stagger columns from row to row so that a regular pattern in the image is not hit every time
      const bx = Math.floor((((i + 0.5 + (j % 2) * 0.5) % kx) * nx) / kx);
      refs.push({ bx, by });
    }
  }
  return refs;
}

/** Adds the valid pixels of a block to the histograms (no-data in every band, or NaN in any, is invalid). */
export function addBlockToHistograms(
  block: DecodedBlock,
  histograms: BandHistogram[],
  nodata: number | null,
): number {
  const n = block.bands.length;
  const values = new Float64Array(n);
  let valid = 0;
  for (let r = 0; r < block.height; r++) {
    for (let c = 0; c < block.width; c++) {
      let allNodata = nodata !== null;
      let nan = false;
      for (let b = 0; b < n; b++) {
        const view = block.bands[b]!;
        const v = view.data[view.offset + r * view.rowStride + c * view.pixelStride]!;
        values[b] = v;
        if (v !== v) nan = true;
        if (v !== nodata) allNodata = false;
      }
      if (nan || allNodata) continue;
      valid++;
      for (let b = 0; b < n; b++) histograms[b]!.add(values[b]!);
    }
  }
  return valid;
}

/** Samples `bands` (0-based, as the reader delivers them) of a raster into histograms. */
export async function sampleBands(
  raster: OpenRaster,
  bands: readonly number[],
  options: SampleBandsOptions,
): Promise<BandSample> {
  const maxPixels = options.maxPixels ?? 2048 * 2048;
  const full = await raster.level(0);
  let level = full;
  let what = 'full image';
  if (full.width * full.height > maxPixels) {
    // overviews are listed largest first: the last one that is still big enough
    for (const index of raster.overviewIndices) {
      const ov = await raster.level(index);
      if (ov.width * ov.height >= 1024 * 1024 && ov.width * ov.height < level.width * level.height) {
        level = ov;
        what = 'overview';
      }
    }
  }
  const blockPixels = level.blockWidth * level.blockHeight;
  const total = level.blocksAcross * level.blocksDown;
  const wanted = Math.max(1, Math.floor(maxPixels / blockPixels));
  const blocks = spreadBlocks(level, wanted);
  const unique = [...new Map(blocks.map((b) => [`${b.bx},${b.by}`, b])).values()];
  // histograms are per requested band; a band asked for twice (grey) is sampled once
  const distinct = [...new Set(bands)];
  const histograms = distinct.map(() => new BandHistogram(level.dtype));
  let pixels = 0;
  let validPixels = 0;
  await level.readBlocks(
    unique,
    distinct,
    (block) => {
      pixels += block.width * block.height;
      validPixels += addBlockToHistograms(block, histograms, options.nodata);
    },
    { ...(options.signal ? { signal: options.signal } : {}) },
  );
  const size = `${level.width}x${level.height}`;
  const sampledFrom =
    unique.length === total
      ? `${what} ${size}`
      : `${unique.length} of ${total} blocks of the ${what} ${size}`;
  return {
    histograms: bands.map((b) => histograms[distinct.indexOf(b)]!),
    sampledFrom,
    pixels,
    validPixels,
  };
}
