/**
 * Band statistics from a bounded sample: the smallest overview that still has enough pixels,
 * or a grid of small windows when the file has no overviews, so memory and time do not grow
 * with the image.
 */
import type { GeoTIFF, GeoTIFFImage } from 'geotiff';
import type { ImageBlocks, OpenRaster } from './blocks.js';

export interface BandStats {
  readonly band: number;
  readonly valid: number;
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  readonly std: number | null;
  /** 2nd and 98th percentiles of the sample (the default stretch of `rgb`). */
  readonly p2: number | null;
  readonly p98: number | null;
}

export interface SampleStatsOptions {
  /** Use every n-th pixel of every n-th row of what is read. @default 1 */
  readonly step?: number;
  /** Pixels on the long side of the overview to read, at least. @default 512 */
  readonly minSide?: number;
  readonly nodata?: number | null;
  readonly signal?: AbortSignal;
}

type Bands = ArrayLike<number>[];

async function readBands(
  image: GeoTIFFImage,
  window: [number, number, number, number] | undefined,
  signal?: AbortSignal,
): Promise<Bands> {
  const ycbcr = Number(image.getFileDirectory().getValue('PhotometricInterpretation' as never)) === 6;
  const options = {
    ...(window ? { window } : {}),
    interleave: false as const,
    ...(signal ? { signal } : {}),
  };
  const data = ycbcr ? await image.readRGB(options) : await image.readRasters(options);
  return Array.from(data as unknown as ArrayLike<ArrayLike<number>>);
}

/** Reads a bounded sample of every band and summarises it. */
export async function sampleBandStats(
  tiff: GeoTIFF,
  options: SampleStatsOptions = {},
): Promise<{ stats: BandStats[]; sampledFrom: string }> {
  const minSide = options.minSide ?? 512;
  const count = await tiff.getImageCount();
  const full = await tiff.getImage(0);
  let chosen = full;
  for (let i = 1; i < count; i++) {
    const ov = await tiff.getImage(i);
    if (ov.getSamplesPerPixel() !== full.getSamplesPerPixel() || ov.getWidth() >= full.getWidth()) continue;
    if (Math.max(ov.getWidth(), ov.getHeight()) >= minSide && ov.getWidth() < chosen.getWidth()) chosen = ov;
  }
  const chunks: Bands[] = [];
  let sampledFrom: string;
  const w = chosen.getWidth();
  const h = chosen.getHeight();
  if (chosen !== full || w * h <= 2048 * 2048) {
    chunks.push(await readBands(chosen, undefined, options.signal));
    sampledFrom = chosen === full ? `full image ${w}x${h}` : `overview ${w}x${h}`;
  } else {
    const grid = 4;
    const size = 256;
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        const x0 = Math.floor(((w - size) * (gx + 0.5)) / grid);
        const y0 = Math.floor(((h - size) * (gy + 0.5)) / grid);
        chunks.push(await readBands(full, [x0, y0, x0 + size, y0 + size], options.signal));
      }
    }
    sampledFrom = `${grid * grid} windows of ${size}x${size}`;
  }
  return { stats: summarise(chunks, full.getSamplesPerPixel(), options), sampledFrom };
}

/** Statistics of each band over the sampled chunks. */
function summarise(chunks: readonly Bands[], bands: number, options: SampleStatsOptions): BandStats[] {
  const step = Math.max(1, options.step ?? 1);
  const nodata = options.nodata ?? null;
  const stats: BandStats[] = [];
  for (let b = 0; b < bands; b++) {
    const values: number[] = [];
    for (const chunk of chunks) {
      const data = chunk[b];
      if (!data) continue;
      for (let i = 0; i < data.length; i += step) {
        const v = data[i]!;
        if (Number.isNaN(v) || v === nodata) continue;
        values.push(v);
      }
    }
    if (values.length === 0) {
      stats.push({ band: b + 1, valid: 0, min: null, max: null, mean: null, std: null, p2: null, p98: null });
      continue;
    }
    const sorted = Float64Array.from(values).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    const mean = sum / sorted.length;
    let sq = 0;
    for (const v of sorted) sq += (v - mean) ** 2;
    const pick = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * (sorted.length - 1)))]!;
    stats.push({
      band: b + 1,
      valid: sorted.length,
      min: sorted[0]!,
      max: sorted[sorted.length - 1]!,
      mean,
      std: Math.sqrt(sq / sorted.length),
      p2: pick(2),
      p98: pick(98),
    });
  }
  return stats;
}

/** The pixels of a window of a level, one array per band. */
async function readLevelWindow(
  level: ImageBlocks,
  x0: number,
  y0: number,
  w: number,
  h: number,
  signal?: AbortSignal,
): Promise<Bands> {
  const bands = Array.from({ length: level.bands }, (_, b) => b);
  const out = bands.map(() => new Float64Array(w * h));
  const refs = level.blocksInRows(y0, y0 + h).filter((ref) => {
    const r = level.blockRect(ref);
    return r.col < x0 + w && r.col + r.width > x0;
  });
  await level.readBlocks(
    refs,
    bands,
    (block) => {
      const c0 = Math.max(x0, block.col);
      const c1 = Math.min(x0 + w, block.col + block.width);
      const r0 = Math.max(y0, block.row);
      const r1 = Math.min(y0 + h, block.row + block.height);
      block.bands.forEach((v, b) => {
        const dst = out[b]!;
        for (let r = r0; r < r1; r++) {
          const base = v.offset + (r - block.row) * v.rowStride;
          for (let c = c0; c < c1; c++)
            dst[(r - y0) * w + (c - x0)] = v.data[base + (c - block.col) * v.pixelStride]!;
        }
      });
    },
    signal ? { signal, concurrency: 1 } : { concurrency: 1 },
  );
  return out;
}

/**
 * {@link sampleBandStats} for any open raster (the JPEG 2000 reader's): the smallest overview
 * (resolution level) with enough pixels, or the whole image when small, else 16 windows.
 */
export async function sampleRasterStats(
  raster: OpenRaster,
  options: SampleStatsOptions = {},
): Promise<{ stats: BandStats[]; sampledFrom: string }> {
  const minSide = options.minSide ?? 512;
  const full = await raster.level(0);
  let chosen = full;
  for (const index of raster.overviewIndices) {
    const ov = await raster.level(index);
    if (Math.max(ov.width, ov.height) >= minSide && ov.width < chosen.width) chosen = ov;
  }
  const chunks: Bands[] = [];
  let sampledFrom: string;
  const w = chosen.width;
  const h = chosen.height;
  if (chosen !== full || w * h <= 2048 * 2048) {
    chunks.push(await readLevelWindow(chosen, 0, 0, w, h, options.signal));
    sampledFrom = chosen === full ? `full image ${w}x${h}` : `overview ${w}x${h}`;
  } else {
    const grid = 4;
    const size = 256;
    for (let gy = 0; gy < grid; gy++) {
      for (let gx = 0; gx < grid; gx++) {
        const x0 = Math.floor(((w - size) * (gx + 0.5)) / grid);
        const y0 = Math.floor(((h - size) * (gy + 0.5)) / grid);
        chunks.push(await readLevelWindow(full, x0, y0, size, size, options.signal));
      }
    }
    sampledFrom = `${grid * grid} windows of ${size}x${size}`;
  }
  return { stats: summarise(chunks, full.bands, options), sampledFrom };
}
