/**
 * The tile grid of `chip retile`, as gdal_retile.py lays it out: tile origins step by
 * `size - overlap` pixels from the top-left corner, the last column and row are truncated at the
 * image edge, and tiles are numbered from 1 (`<stem>_<row>_<col>`, zero-padded to the digits of
 * the larger tile count, so names sort in grid order). Pure planning, no I/O.
 *
 * @see https://gdal.org/programs/gdal_retile.html
 */
import type { PixelWindow } from '../geo/affine.js';
import { RasterError } from '../raster/errors.js';

export interface RetileGridOptions {
  /** Tile width and height in pixels. */
  readonly size: number;
  /** Pixels shared by neighbouring tiles (0 <= overlap < size). @default 0 */
  readonly overlap?: number;
}

/** One tile of the grid. */
export interface RetileTile {
  /** `<stem>_<row>_<col>.tif` */
  readonly name: string;
  /** 1-based row of the grid. */
  readonly row: number;
  /** 1-based column of the grid. */
  readonly col: number;
  /** The tile's pixels in the source image. */
  readonly window: PixelWindow;
}

export interface RetileGrid {
  readonly rows: number;
  readonly cols: number;
  /** Tiles row by row, left to right. */
  readonly tiles: readonly RetileTile[];
}

/** Throws a {@link RasterError} naming the option, the bad value and the rule when size or overlap is invalid. */
export function validateRetileOptions(options: RetileGridOptions): { size: number; overlap: number } {
  const { size } = options;
  const overlap = options.overlap ?? 0;
  if (typeof size !== 'number' || !Number.isInteger(size) || size <= 0) {
    throw new RasterError(
      `retile size: expected a positive integer number of pixels but got ${String(size)}`,
    );
  }
  if (typeof overlap !== 'number' || !Number.isInteger(overlap) || overlap < 0 || overlap >= size) {
    throw new RasterError(
      `retile overlap: expected an integer number of pixels in [0, ${size - 1}] (less than size ${size}) but got ${String(overlap)}`,
    );
  }
  return { size, overlap };
}

/** How many tiles of `size` stepping by `size - overlap` cover `extent` pixels (gdal_retile's count). */
export function tileCount(extent: number, size: number, overlap: number): number {
  if (extent <= size) return 1;
  return 1 + Math.ceil((extent - size) / (size - overlap));
}

/** The tile name gdal_retile gives tile (row, col) of a grid whose larger count is `maxCount`. */
export function tileName(stem: string, row: number, col: number, maxCount: number): string {
  const digits = String(maxCount).length;
  return `${stem}_${String(row).padStart(digits, '0')}_${String(col).padStart(digits, '0')}.tif`;
}

/** The name without its last extension, as gdal_retile takes it (`a.b.tif` -> `a.b`). */
export function retileStem(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  return dot > 0 ? fileName.slice(0, dot) : fileName;
}

/** The tiles of a `width` x `height` image. */
export function retileGrid(
  width: number,
  height: number,
  stem: string,
  options: RetileGridOptions,
): RetileGrid {
  const { size, overlap } = validateRetileOptions(options);
  const step = size - overlap;
  const cols = tileCount(width, size, overlap);
  const rows = tileCount(height, size, overlap);
  const maxCount = Math.max(rows, cols);
  const tiles: RetileTile[] = [];
  for (let r = 1; r <= rows; r++) {
    const y = (r - 1) * step;
    for (let c = 1; c <= cols; c++) {
      const x = (c - 1) * step;
      tiles.push({
        name: tileName(stem, r, c, maxCount),
        row: r,
        col: c,
        window: { col: x, row: y, width: Math.min(size, width - x), height: Math.min(size, height - y) },
      });
    }
  }
  return { rows, cols, tiles };
}
