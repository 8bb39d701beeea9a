/**
 * `chip slice` at a target ground sampling distance: a {@link ChipRows} source whose rows are
 * those of another source resampled so that one pixel is `gsd` metres, as `gdalwarp -tr gsd gsd`
 * gives on the same origin (size rounded as gdalwarp rounds it). The scene is an axis-aligned
 * scale of its pixel grid, so each output row and column reads a few source rows and columns
 * with fixed weights (area-weighted average, bilinear or nearest); the source is read in chunks of
 * rows through its own reader, and only the output rows the planned bands cover are held.
 *
 * The 8-bit pixels are resampled (after the bands / stretch conversion), so for 8-bit RGB input
 * the chips are gdalwarp's pixels; for other input, the stretch is applied before resampling.
 * `chip grid` (warp.ts) maps every output pixel through a CRS transformation; for a pure scale
 * its per-pixel maps would cost more and it has no area average, hence this separable form.
 */
import type { GeoTransform } from '../geo/affine.js';
import type { SliceSourceAnnotation, SliceWindow } from '../labels/slice.js';
import { RasterError } from '../raster/errors.js';
import type { ChipPixels } from './jpeg.js';
import {
  cutRing,
  viewRing,
  openChipRows,
  type ChipGeoreference,
  type ChipRows,
  type OpenChipRowsOptions,
  type RowBand,
} from './slice-readers.js';
import type { Storage } from '../storage/types.js';

/** How pixels are resampled: GDAL's `-r average` (area-weighted), `-r bilinear`, `-r near`. */
export type SliceResampling = 'average' | 'bilinear' | 'nearest';

export const SLICE_RESAMPLINGS: readonly SliceResampling[] = ['average', 'bilinear', 'nearest'];

/** Resample to this ground sampling distance before slicing. */
export interface SliceResample {
  /** Metres per output pixel (> 0); the scene's CRS must be projected, in metres. */
  readonly gsd: number;
  /** @default 'average' when every axis gets coarser, else 'bilinear' */
  readonly resampling?: SliceResampling;
}

/** The output grid of a resampling. */
export interface ResampleGrid {
  readonly width: number;
  readonly height: number;
  readonly gt: GeoTransform;
  /** Source pixels per output pixel, across and down. */
  readonly fx: number;
  readonly fy: number;
  readonly resampling: SliceResampling;
}

/** Checks a gsd and resampling; throws a RasterError naming the bad value. */
export function validateResample(resample: SliceResample): void {
  const { gsd, resampling } = resample;
  if (typeof gsd !== 'number' || !Number.isFinite(gsd) || gsd <= 0) {
    throw new RasterError(`gsd: expected metres per pixel > 0 but got ${JSON.stringify(gsd)}`);
  }
  if (resampling !== undefined && !SLICE_RESAMPLINGS.includes(resampling)) {
    throw new RasterError(
      `resampling: expected ${SLICE_RESAMPLINGS.join(', ')} but got ${JSON.stringify(resampling)}`,
    );
  }
}

/**
 * The grid of a scene resampled to `gsd`: same origin, pixel size `gsd` (signs kept), size
 * round(extent / gsd) as gdalwarp computes it for -tr. Throws for scenes without georeferencing
 * or in a geographic CRS (degrees, not metres).
 */
export function resampleGrid(
  uri: string,
  geo: ChipGeoreference | undefined,
  width: number,
  height: number,
  resample: SliceResample,
): ResampleGrid {
  validateResample(resample);
  if (!geo) {
    throw new RasterError(
      `${uri}: gsd ${resample.gsd} needs a georeferenced image (a GeoTIFF with a geotransform in a projected CRS); this one has none`,
    );
  }
  if (geo.crsKind === 'geographic') {
    throw new RasterError(
      `${uri}: gsd ${resample.gsd} is in metres but the scene's CRS (${geo.epsg !== null ? `EPSG:${geo.epsg}` : 'user-defined'}) is geographic, in degrees; reproject it to a projected CRS first (e.g. gdalwarp -t_srs EPSG:<UTM zone code>)`,
    );
  }
  const { gsd } = resample;
  const gt = geo.gt;
  const sx = Math.abs(gt[1]);
  const sy = Math.abs(gt[5]);
  const out: GeoTransform = [gt[0], Math.sign(gt[1]) * gsd, 0, gt[3], 0, Math.sign(gt[5]) * gsd];
  const fx = gsd / sx;
  const fy = gsd / sy;
  return {
    width: Math.max(1, Math.round((width * sx) / gsd)),
    height: Math.max(1, Math.round((height * sy) / gsd)),
    gt: out,
    fx,
    fy,
    resampling: resample.resampling ?? (fx > 1 && fy > 1 ? 'average' : 'bilinear'),
  };
}

/** Source indices and weights of every output index along one axis (compressed rows). */
interface Taps {
  /** Output i reads taps [start[i], start[i + 1]). */
  readonly start: Int32Array;
  readonly index: Int32Array;
  readonly weight: Float64Array;
}

/** Positions within this of a whole pixel count as on it (floating-point noise of f * i). */
const EPS = 1e-9;

/** The taps of `count` output pixels of `f` source pixels each over `source` pixels. */
function axisTaps(count: number, source: number, f: number, method: SliceResampling): Taps {
  const start = new Int32Array(count + 1);
  const index: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < count; i++) {
    start[i] = index.length;
    if (method === 'nearest') {
      index.push(Math.min(source - 1, Math.max(0, Math.floor((i + 0.5) * f + EPS))));
      weight.push(1);
    } else if (method === 'bilinear' && f > 1) {
      // downsampling: the triangle widened to f source pixels, as gdalwarp does (no aliasing)
      const x = (i + 0.5) * f - 0.5;
      for (let k = Math.max(0, Math.ceil(x - f)); k <= Math.min(source - 1, Math.floor(x + f)); k++) {
        const w = 1 - Math.abs(k - x) / f;
        if (w > EPS) {
          index.push(k);
          weight.push(w);
        }
      }
      if (index.length === start[i]) {
        index.push(Math.min(source - 1, Math.max(0, Math.round(x))));
        weight.push(1);
      }
    } else if (method === 'bilinear') {
      const x = (i + 0.5) * f - 0.5;
      let i0 = Math.floor(x + EPS);
      let u = x - i0;
      if (Math.abs(u) < EPS) u = 0;
      for (const [k, w] of [
        [i0, 1 - u],
        [i0 + 1, u],
      ] as const) {
        if (w > 0 && k >= 0 && k < source) {
          index.push(k);
          weight.push(w);
        }
      }
      // both neighbours outside the source: the nearest edge pixel
      if (index.length === start[i]) {
        i0 = Math.min(source - 1, Math.max(0, Math.floor(x + 0.5)));
        index.push(i0);
        weight.push(1);
      }
    } else {
      const lo = Math.max(0, i * f);
      const hi = Math.min(source, (i + 1) * f);
      for (let k = Math.max(0, Math.floor(lo + EPS)); k < Math.min(source, Math.ceil(hi - EPS)); k++) {
        const w = Math.min(k + 1, hi) - Math.max(k, lo);
        if (w > EPS) {
          index.push(k);
          weight.push(w);
        }
      }
      if (index.length === start[i]) {
        index.push(Math.min(source - 1, Math.floor(lo)));
        weight.push(1);
      }
    }
  }
  start[count] = index.length;
  return { start, index: Int32Array.from(index), weight: Float64Array.from(weight) };
}

/** A chunk of output rows and the source rows they read. */
interface Chunk {
  readonly outTop: number;
  readonly outBottom: number;
  readonly top: number;
  readonly bottom: number;
}

/** Output rows computed from one read of source rows, at most. */
const CHUNK_ROWS = 32;
/** Source rows one chunk reads, at most (a chunk always has at least one output row). */
const CHUNK_SOURCE_ROWS = 512;

/** Rows from one band's top to the next band's bottom, plus one (as RasterRows keeps them). */
function ringRowsFor(bands: readonly RowBand[]): number {
  let reach = 1;
  for (let i = 0; i < bands.length; i++) {
    reach = Math.max(reach, (bands[i + 1] ?? bands[i]!).bottom - bands[i]!.top);
  }
  return reach + 1;
}

/** A source's rows resampled to a target gsd; see the module comment. */
export class ResampledRows implements ChipRows {
  readonly width: number;
  readonly height: number;
  readonly geo: ChipGeoreference;
  readonly conversion: string;
  private readonly rowTaps: Taps;
  private readonly colTaps: Taps;
  private chunks: Chunk[] = [];
  private chunk = -1;
  private ring: Uint8Array | undefined;
  private ringRows = 0;
  /** Output rows [.., computed) are in the ring. */
  private computed = 0;
  private sourceColumns: [number, number] = [0, 0];
  private columns: [number, number] = [0, 0];

  constructor(
    private readonly source: ChipRows,
    readonly grid: ResampleGrid,
    gsd: number,
  ) {
    this.width = grid.width;
    this.height = grid.height;
    this.geo = { ...source.geo!, gt: grid.gt };
    this.rowTaps = axisTaps(grid.height, source.height, grid.fy, grid.resampling);
    this.colTaps = axisTaps(grid.width, source.width, grid.fx, grid.resampling);
    this.conversion = `${source.conversion}, resampled to ${gsd} m per pixel (${grid.resampling}, ${source.width} x ${source.height} -> ${grid.width} x ${grid.height} px)`;
  }

  get uri(): string {
    return this.source.uri;
  }
  get channels(): number {
    return this.source.channels;
  }
  get alpha(): boolean {
    return this.source.alpha;
  }
  get nodata(): number | undefined {
    return this.source.nodata;
  }
  get warnings(): readonly string[] {
    return this.source.warnings;
  }

  /** The source whose rows are resampled. */
  get inner(): ChipRows {
    return this.source;
  }

  /** Output pixels per source pixel, across and down (annotations scale by these). */
  get scale(): [number, number] {
    return [1 / this.grid.fx, 1 / this.grid.fy];
  }

  private sourceRows(outTop: number, outBottom: number): [number, number] {
    const t = this.rowTaps;
    let top = Infinity;
    let bottom = -Infinity;
    for (let k = t.start[outTop]!; k < t.start[outBottom]!; k++) {
      top = Math.min(top, t.index[k]!);
      bottom = Math.max(bottom, t.index[k]! + 1);
    }
    return [top, bottom];
  }

  /** The chunks computing the output rows the bands cover, in order, each row once. */
  private chunksFor(bands: readonly RowBand[]): Chunk[] {
    const chunks: Chunk[] = [];
    let next = 0;
    for (const band of bands) {
      let row = Math.max(next, band.top);
      while (row < band.bottom) {
        const last = chunks[chunks.length - 1];
        // grow the last chunk when this row follows it and it stays small enough
        if (last && last.outBottom === row && last.outBottom - last.outTop < CHUNK_ROWS) {
          const [top, bottom] = this.sourceRows(last.outTop, row + 1);
          if (bottom - top <= CHUNK_SOURCE_ROWS) {
            chunks[chunks.length - 1] = { outTop: last.outTop, outBottom: row + 1, top, bottom };
            row++;
            continue;
          }
        }
        const [top, bottom] = this.sourceRows(row, row + 1);
        chunks.push({ outTop: row, outBottom: row + 1, top, bottom });
        row++;
      }
      next = Math.max(next, band.bottom);
    }
    return chunks;
  }

  plan(bands: readonly RowBand[], columns: readonly [number, number]): void {
    this.chunks = this.chunksFor(bands);
    this.chunk = -1;
    this.computed = 0;
    this.ringRows = ringRowsFor(bands);
    this.ring = new Uint8Array((this.ringRows + 1) * this.width * this.channels);
    const c0 = Math.max(0, Math.min(columns[0], this.width));
    const c1 = Math.max(c0, Math.min(columns[1], this.width));
    this.columns = [c0, c1];
    const t = this.colTaps;
    let first = this.source.width;
    let end = 0;
    for (let k = t.start[c0]!; k < t.start[c1]!; k++) {
      first = Math.min(first, t.index[k]!);
      end = Math.max(end, t.index[k]! + 1);
    }
    this.sourceColumns = end > first ? [first, end] : [0, 0];
    this.source.plan(this.chunks, this.sourceColumns);
  }

  bytesFor(bands: readonly RowBand[]): number {
    return (
      (ringRowsFor(bands) + 1) * this.width * this.channels + this.source.bytesFor(this.chunksFor(bands))
    );
  }

  async load(band: RowBand): Promise<void> {
    const ring = this.ring;
    if (!ring) throw new Error('ResampledRows.load before plan');
    for (let row = Math.max(this.computed, band.top); row < band.bottom;) {
      while (this.chunk + 1 < this.chunks.length && this.chunks[this.chunk + 1]!.outTop <= row) {
        this.chunk++;
      }
      const chunk = this.chunks[this.chunk];
      if (!chunk || row < chunk.outTop || row >= chunk.outBottom) {
        throw new Error(`ResampledRows.load: rows ${band.top}..${band.bottom} were not planned`);
      }
      await this.source.load(chunk);
      const [sc0, sc1] = this.sourceColumns;
      const pixels = this.source.view([sc0, chunk.top, sc1, chunk.bottom]);
      const end = Math.min(band.bottom, chunk.outBottom);
      for (let r = row; r < end; r++) this.computeRow(r, pixels, chunk.top, sc0);
      row = end;
      this.computed = Math.max(this.computed, end);
    }
  }

  /** Output row `r` (the planned columns) into the ring, from source rows viewed at (top, sc0). */
  private computeRow(r: number, pixels: ChipPixels, top: number, sc0: number): void {
    const ring = this.ring!;
    const ch = this.channels;
    const { data, stride } = pixels;
    const rt = this.rowTaps;
    const ct = this.colTaps;
    const nodata = this.source.nodata === 0;
    const acc = new Float64Array(ch);
    const base = (r % this.ringRows) * this.width * ch;
    const [c0, c1] = this.columns;
    if (!nodata && ch === 3) {
      // the common case (RGB without no-data), without the per-channel arrays: ~3x faster
      const r0 = rt.start[r]!;
      const r1 = rt.start[r + 1]!;
      for (let c = c0; c < c1; c++) {
        let a0 = 0;
        let a1 = 0;
        let a2 = 0;
        let total = 0;
        const j0 = ct.start[c]!;
        const j1 = ct.start[c + 1]!;
        for (let i = r0; i < r1; i++) {
          const rowOff = (rt.index[i]! - top) * stride - sc0;
          const wy = rt.weight[i]!;
          for (let j = j0; j < j1; j++) {
            const p = (rowOff + ct.index[j]!) * 3;
            const w = wy * ct.weight[j]!;
            total += w;
            a0 += w * data[p]!;
            a1 += w * data[p + 1]!;
            a2 += w * data[p + 2]!;
          }
        }
        const o = base + c * 3;
        ring[o] = Math.min(255, Math.floor(a0 / total + 0.5));
        ring[o + 1] = Math.min(255, Math.floor(a1 / total + 0.5));
        ring[o + 2] = Math.min(255, Math.floor(a2 / total + 0.5));
      }
      return;
    }
    for (let c = c0; c < c1; c++) {
      acc.fill(0);
      let total = 0;
      for (let i = rt.start[r]!; i < rt.start[r + 1]!; i++) {
        const rowOff = (rt.index[i]! - top) * stride;
        const wy = rt.weight[i]!;
        for (let j = ct.start[c]!; j < ct.start[c + 1]!; j++) {
          const p = (rowOff + ct.index[j]! - sc0) * ch;
          if (nodata) {
            let any = false;
            for (let b = 0; b < ch; b++) if (data[p + b] !== 0) any = true;
            if (!any) continue;
          }
          const w = wy * ct.weight[j]!;
          total += w;
          for (let b = 0; b < ch; b++) acc[b] = acc[b]! + w * data[p + b]!;
        }
      }
      const o = base + c * ch;
      if (total === 0) {
        for (let b = 0; b < ch; b++) ring[o + b] = 0;
        continue;
      }
      for (let b = 0; b < ch; b++) {
        const v = Math.floor(acc[b]! / total + 0.5);
        // no-data stays 0 only where every source pixel was no-data
        ring[o + b] = nodata ? Math.max(1, Math.min(255, v)) : Math.min(255, v);
      }
    }
  }

  cut(window: SliceWindow): Buffer {
    return cutRing(this.ring!, this.ringRows, this.width, this.channels, window);
  }

  view(window: SliceWindow): ChipPixels {
    return viewRing(this.ring!, this.ringRows, this.width, this.channels, window);
  }

  async close(): Promise<void> {
    this.ring = undefined;
    await this.source.close();
  }
}

/**
 * COCO annotations in source pixels scaled to the resampled image: bbox and polygon coordinates
 * times `sx` across and `sy` down (areas follow, as they are computed from the geometry). Values
 * that are not numbers are left for the annotation checks to report.
 */
export function scaleAnnotations(
  annotations: readonly SliceSourceAnnotation[],
  sx: number,
  sy: number,
): SliceSourceAnnotation[] {
  const scale = (flat: unknown): unknown =>
    Array.isArray(flat)
      ? flat.map((v: unknown, i) => (typeof v === 'number' ? v * (i % 2 === 0 ? sx : sy) : v))
      : flat;
  return annotations.map((a) => ({
    ...a,
    bbox: Array.isArray(a.bbox)
      ? a.bbox.map((v, i) => (typeof v === 'number' ? v * (i % 2 === 0 ? sx : sy) : v))
      : a.bbox,
    ...(Array.isArray(a.segmentation) ? { segmentation: a.segmentation.map(scale) } : {}),
  }));
}

/**
 * Opens an image for slicing (openChipRows), resampled to `resample.gsd` when given (and when
 * that changes the pixel size).
 */
export async function openSliceRows(
  storage: Storage,
  uri: string,
  options: OpenChipRowsOptions & { readonly resample?: SliceResample },
): Promise<ChipRows> {
  const { resample, ...open } = options;
  if (resample) validateResample(resample);
  const rows = await openChipRows(storage, uri, open);
  if (!resample) return rows;
  try {
    const grid = resampleGrid(uri, rows.geo, rows.width, rows.height, resample);
    if (grid.fx === 1 && grid.fy === 1) return rows;
    return new ResampledRows(rows, grid, resample.gsd);
  } catch (error) {
    await rows.close();
    throw error;
  }
}
