/**
 * Inverse mapping for grid chips: where each output pixel centre of a chip falls in the source
 * image, computed with an approximate transformer as GDAL's `GDALApproxTransform` does it (the
 * exact transformation on a coarse lattice, bilinear interpolation in between, and subdivision
 * until the interpolation error at check points is below a tolerance), and nearest / bilinear
 * sampling of decoded source blocks at those positions. Pure, no I/O.
 */

/**
 * Exact mapping of output pixel-corner coordinates (col, row) to source pixel-corner coordinates;
 * returns NaN for points that have no source position (outside a projection's domain).
 */
export type PixelMapping = (col: number, row: number) => [number, number];

/** Source pixel-corner positions of every output pixel centre, row by row. */
export interface ChipMap {
  readonly width: number;
  readonly height: number;
  /** Source column (pixel-corner coordinates) of output pixel (c, r) at `r * width + c`. */
  readonly xs: Float64Array;
  readonly ys: Float64Array;
  /** Largest interpolation error seen at the check points, source pixels. */
  readonly maxError: number;
  /** Exact transformations computed. */
  readonly exactPoints: number;
}

/** GDAL's default error threshold for gdalwarp, in source pixels. */
export const DEFAULT_MAX_ERROR = 0.125;

/**
 * The source position of every pixel centre of a `width` x `height` output. A rectangle of output
 * pixels is transformed exactly at its four corner pixels, and interpolated bilinearly in between
 * when the interpolation misses the exact result by at most `maxError` source pixels at five check
 * points (centre and edge midpoints); otherwise it is split in four. Rectangles of 2 x 2 pixels or
 * less are transformed exactly.
 */
export function approximateMap(
  exact: PixelMapping,
  width: number,
  height: number,
  maxError: number = DEFAULT_MAX_ERROR,
): ChipMap {
  const xs = new Float64Array(width * height);
  const ys = new Float64Array(width * height);
  let exactPoints = 0;
  let worst = 0;
  const at = (c: number, r: number): [number, number] => {
    exactPoints++;
    return exact(c + 0.5, r + 0.5);
  };
  const fillExact = (c0: number, r0: number, c1: number, r1: number): void => {
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const [x, y] = at(c, r);
        xs[r * width + c] = x;
        ys[r * width + c] = y;
      }
    }
  };
  // c1, r1 inclusive
  const fill = (c0: number, r0: number, c1: number, r1: number): void => {
    const w = c1 - c0;
    const h = r1 - r0;
    if (w <= 1 && h <= 1) {
      fillExact(c0, r0, c1, r1);
      return;
    }
    const tl = at(c0, r0);
    const tr = at(c1, r0);
    const bl = at(c0, r1);
    const br = at(c1, r1);
    const interp = (c: number, r: number): [number, number] => {
      const u = w === 0 ? 0 : (c - c0) / w;
      const v = h === 0 ? 0 : (r - r0) / h;
      const x = (1 - v) * ((1 - u) * tl[0] + u * tr[0]) + v * ((1 - u) * bl[0] + u * br[0]);
      const y = (1 - v) * ((1 - u) * tl[1] + u * tr[1]) + v * ((1 - u) * bl[1] + u * br[1]);
      return [x, y];
    };
    const cm = Math.floor((c0 + c1) / 2);
    const rm = Math.floor((r0 + r1) / 2);
    const checks: [number, number][] = [
      [cm, rm],
      [cm, r0],
      [cm, r1],
      [c0, rm],
      [c1, rm],
    ];
    let error = 0;
    for (const [c, r] of checks) {
      const e = at(c, r);
      const i = interp(c, r);
      const d = Math.max(Math.abs(e[0] - i[0]), Math.abs(e[1] - i[1]));
      // NaN (no source position somewhere) forces subdivision down to exact points
      error = d > error || d !== d ? (d !== d ? Infinity : d) : error;
    }
    if (![tl, tr, bl, br].every((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]))) error = Infinity;
    if (error <= maxError) {
      if (error > worst) worst = error;
      for (let r = r0; r <= r1; r++) {
        for (let c = c0; c <= c1; c++) {
          const [x, y] = interp(c, r);
          xs[r * width + c] = x;
          ys[r * width + c] = y;
        }
      }
      return;
    }
    // split the longer side (both when square-ish), sharing no pixels between the parts
    if (w >= 2 && h >= 2) {
      fill(c0, r0, cm, rm);
      fill(cm + 1, r0, c1, rm);
      fill(c0, rm + 1, cm, r1);
      fill(cm + 1, rm + 1, c1, r1);
    } else if (w >= 2) {
      fill(c0, r0, cm, r1);
      fill(cm + 1, r0, c1, r1);
    } else {
      fill(c0, r0, c1, rm);
      fill(c0, rm + 1, c1, r1);
    }
  };
  if (width > 0 && height > 0) fill(0, 0, width - 1, height - 1);
  return { width, height, xs, ys, maxError: worst, exactPoints };
}

/** The source positions of an output that is a plain pixel window of the source (no resampling). */
export function windowMap(col: number, row: number, width: number, height: number): ChipMap {
  const xs = new Float64Array(width * height);
  const ys = new Float64Array(width * height);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      xs[r * width + c] = col + c + 0.5;
      ys[r * width + c] = row + r + 0.5;
    }
  }
  return { width, height, xs, ys, maxError: 0, exactPoints: 0 };
}

export type Resampling = 'nearest' | 'bilinear';

/** The source pixels (whole pixels, inclusive) a chip's samples read, or undefined when none lie in the source. */
export function mapSourceWindow(
  map: ChipMap,
  sourceWidth: number,
  sourceHeight: number,
  resampling: Resampling,
): { col0: number; row0: number; col1: number; row1: number } | undefined {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  const { xs, ys } = map;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    if (!(x >= 0 && x < sourceWidth && y >= 0 && y < sourceHeight)) continue;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  if (minX === Infinity) return undefined;
  const pad = resampling === 'bilinear' ? 1 : 0;
  return {
    col0: Math.max(0, Math.floor(minX) - pad),
    row0: Math.max(0, Math.floor(minY) - pad),
    col1: Math.min(sourceWidth - 1, Math.floor(maxX) + pad),
    row1: Math.min(sourceHeight - 1, Math.floor(maxY) + pad),
  };
}

/** Source samples of the bands in use, read pixel by pixel at source pixels the caller made available. */
export interface SourcePixels {
  /** Writes the samples of every band in use at (col, row) into `dst[0..bands)`. */
  read(col: number, row: number, dst: Float64Array): void;
}

/**
 * Samples `bands` source bands at every position of `map` into `out` (band-sequential,
 * `bands * width * height` values) and sets `valid[i]` to 1 for valid output pixels; returns the
 * count of valid pixels. An output pixel is invalid when its centre falls outside the source or
 * (nearest) its source pixel is no-data: every band equals `nodata`, or any is NaN. Bilinear
 * weights the valid ones of the four neighbours and renormalises; with none valid the pixel is
 * invalid.
 */
export function resampleChip(
  map: ChipMap,
  source: SourcePixels,
  bands: number,
  sourceWidth: number,
  sourceHeight: number,
  nodata: number | null,
  resampling: Resampling,
  out: Float64Array,
  valid: Uint8Array,
): number {
  const n = map.width * map.height;
  const nd = nodata ?? NaN;
  const hasNodata = nodata !== null;
  const px = new Float64Array(bands);
  const pixelValid = (): boolean => {
    let allNodata = hasNodata;
    for (let b = 0; b < bands; b++) {
      const v = px[b]!;
      if (v !== v) return false;
      if (v !== nd) allNodata = false;
    }
    return !allNodata;
  };
  const { xs, ys } = map;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const x = xs[i]!;
    const y = ys[i]!;
    valid[i] = 0;
    if (!(x >= 0 && x < sourceWidth && y >= 0 && y < sourceHeight)) continue;
    if (resampling === 'nearest') {
      source.read(Math.floor(x), Math.floor(y), px);
      if (!pixelValid()) continue;
      for (let b = 0; b < bands; b++) out[b * n + i] = px[b]!;
    } else {
      const fx = x - 0.5;
      const fy = y - 0.5;
      const c0 = Math.floor(fx);
      const r0 = Math.floor(fy);
      const u = fx - c0;
      const v = fy - r0;
      let total = 0;
      for (let b = 0; b < bands; b++) out[b * n + i] = 0;
      for (let k = 0; k < 4; k++) {
        const col = c0 + (k & 1);
        const row = r0 + (k >> 1);
        const weight = ((k & 1) === 1 ? u : 1 - u) * (k >> 1 === 1 ? v : 1 - v);
        if (weight === 0 || col < 0 || row < 0 || col >= sourceWidth || row >= sourceHeight) continue;
        source.read(col, row, px);
        if (!pixelValid()) continue;
        total += weight;
        for (let b = 0; b < bands; b++) out[b * n + i] = out[b * n + i]! + weight * px[b]!;
      }
      if (total === 0) continue;
      for (let b = 0; b < bands; b++) out[b * n + i] = out[b * n + i]! / total;
    }
    valid[i] = 1;
    count++;
  }
  return count;
}
