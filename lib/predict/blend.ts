/**
 * Stitching segmentation windows into one class raster (issue 14, item 3): each window's logits
 * are added, weighted, to the scene pixels it covers, and a pixel's class is the argmax of the
 * weighted sum. Streaming, top to bottom, so a 40,000 px scene never sits in memory. Pure, no I/O.
 */
import { PredictError } from './errors.js';

/**
 * `average`: every window counts the same at every pixel it covers. `edge`: a window's weight
 * falls off linearly from its centre to its edges (a tent in x times a tent in y, taken at pixel
 * centres: 1 - |x + 0.5 - w/2| / (w/2), so 1/w at an edge pixel, never 0), so that in an overlap
 * the window whose centre is nearer wins, where models are most reliable; a pixel that only one
 * window covers (a scene edge) keeps that window's logits.
 */
export type BlendMode = 'average' | 'edge';

export const BLEND_MODES: readonly BlendMode[] = ['average', 'edge'];

export interface BlendOptions {
  /** Scene width in pixels. */
  readonly width: number;
  /** Scene height in pixels. */
  readonly height: number;
  /** Logit channels (background first), 1 to 256 so that a class fits a byte. */
  readonly channels: number;
  readonly mode: BlendMode;
}

/** The tent weights of a window side of `n` pixels, at pixel centres. */
function tent(n: number): Float64Array {
  const out = new Float64Array(n);
  const half = n / 2;
  for (let i = 0; i < n; i++) out[i] = 1 - Math.abs(i + 0.5 - half) / half;
  return out;
}

/** Pixels across one piece of an open row. */
const PIECE = 512;

interface Piece {
  /** Weighted logit sums, pixel-major from the piece's left: [x * channels + c]. */
  readonly sums: Float32Array;
  /** Sum of the weights that reached each pixel (0 = no window covered it). */
  readonly weights: Float32Array;
}

/** An open row, in pieces of {@link PIECE} pixels across, each made when a window first reaches it. */
type OpenRow = (Piece | undefined)[];

/**
 * Accumulates window logits over a scene, in rows of windows, top to bottom.
 *
 * Memory: only open rows are held — from the first row not yet taken to the lowest window
 * bottom added so far — each up to `width * (channels + 1) * 4` bytes, in pieces of 512 px
 * across. A caller that adds a row of windows and then takes up to the next row's top keeps at
 * most window-height rows open; one that also takes the finished rows' left part as the row's
 * windows go right ({@link takeLeft}) holds full-width rows only where the next row of windows
 * overlaps this one, e.g. 26 rows x 40,000 px x (4 + 1) x 4 B = 21 MB for a 128 px window with
 * 20 % overlap and 3 classes (instead of 128 rows, 102 MB).
 *
 * Pixels no window covered get class 0.
 */
export class LogitBlender {
  private readonly width: number;
  private readonly height: number;
  private readonly channels: number;
  private readonly mode: BlendMode;
  private top = 0;
  /** Columns [0, left) of rows [top, leftBottom) are taken already (by {@link takeLeft}). */
  private left = 0;
  private leftBottom = 0;
  private readonly open = new Map<number, OpenRow>();

  constructor(options: BlendOptions) {
    const { width, height, channels, mode } = options;
    for (const [name, value] of [
      ['width', width],
      ['height', height],
    ] as const) {
      if (!Number.isInteger(value) || value <= 0) {
        throw new PredictError(`Expected positive integer for blend ${name} but received ${String(value)}`);
      }
    }
    if (!Number.isInteger(channels) || channels < 1 || channels > 256) {
      throw new PredictError(
        `Expected integer in [1, 256] for blend channels but received ${String(channels)}`,
      );
    }
    if (!BLEND_MODES.includes(mode)) {
      throw new PredictError(
        `Expected blend mode one of ${BLEND_MODES.join(', ')} but received ${JSON.stringify(mode)}`,
      );
    }
    this.width = width;
    this.height = height;
    this.channels = channels;
    this.mode = mode;
  }

  /** Rows currently held in memory (see the class comment for the bound). */
  get openRows(): number {
    return this.open.size;
  }

  /** The first row that has not been taken yet. */
  get nextRow(): number {
    return this.top;
  }

  /**
   * Adds one window's logits [channels, h, w] (already at the window's own size, h = y1 - y0,
   * w = x1 - x0). Throws a PredictError when the window is not inside the scene, starts above a
   * row already taken, or the logits have the wrong length.
   */
  add(window: readonly [number, number, number, number], logits: Float32Array): void {
    const [x0, y0, x1, y1] = window;
    const inside =
      window.length === 4 &&
      window.every((v) => Number.isInteger(v)) &&
      x0 >= 0 &&
      y0 >= 0 &&
      x1 > x0 &&
      y1 > y0 &&
      x1 <= this.width &&
      y1 <= this.height;
    if (!inside) {
      throw new PredictError(
        `Expected window [x0, y0, x1, y1] of integers inside the ${this.width} x ${this.height} scene (0 <= x0 < x1 <= ${this.width}, 0 <= y0 < y1 <= ${this.height}) but received ${JSON.stringify(window)}`,
      );
    }
    if (y0 < this.top) {
      throw new PredictError(
        `Expected window ${JSON.stringify(window)} to start at row ${this.top} or below, since rows up to ${this.top} are already taken`,
      );
    }
    if (this.left > 0 && y0 < this.leftBottom && x0 < this.left) {
      throw new PredictError(
        `Expected window ${JSON.stringify(window)} to start at column ${this.left} or right of it, since columns up to ${this.left} of rows ${this.top}..${this.leftBottom} are already taken`,
      );
    }
    const w = x1 - x0;
    const h = y1 - y0;
    const C = this.channels;
    if (!(logits instanceof Float32Array) || logits.length !== C * h * w) {
      throw new PredictError(
        `Expected ${C} x ${h} x ${w} = ${C * h * w} logits for window ${JSON.stringify(window)} but received ${logits?.length ?? String(logits)}`,
      );
    }
    const wx = this.mode === 'edge' ? tent(w) : null;
    const wy = this.mode === 'edge' ? tent(h) : null;
    const plane = h * w;
    for (let j = 0; j < h; j++) {
      const row = this.row(y0 + j);
      const ry = wy ? wy[j]! : 1;
      for (let k = Math.floor(x0 / PIECE); k * PIECE < x1; k++) {
        const { sums, weights } = this.piece(row, k);
        const base = k * PIECE;
        // window columns [a, b) fall in this piece
        const a = Math.max(x0, base) - x0;
        const b = Math.min(x1, base + PIECE) - x0;
        const at = x0 - base;
        for (let i = a; i < b; i++) weights[at + i]! += wx ? ry * wx[i]! : 1;
        for (let c = 0; c < C; c++) {
          const from = c * plane + j * w;
          if (wx) {
            for (let i = a; i < b; i++) sums[(at + i) * C + c]! += ry * wx[i]! * logits[from + i]!;
          } else {
            for (let i = a; i < b; i++) sums[(at + i) * C + c]! += logits[from + i]!;
          }
        }
      }
    }
  }

  /**
   * Argmax (channel index, ties to the lower) of pixel rows [top, bottom), which no later
   * window may touch; releases them. Rows must be taken in order: `top` is where the previous
   * take ended (0 at first); `bottom` in [top, height]. `classes` is row-major,
   * (bottom - top) x width.
   */
  take(bottom: number): { readonly top: number; readonly bottom: number; readonly classes: Uint8Array } {
    const top = this.top;
    if (!Number.isInteger(bottom) || bottom < top || bottom > this.height) {
      throw new PredictError(
        `Expected take(bottom) with an integer bottom in [${top}, ${this.height}] (rows are taken in order and rows up to ${top} are already taken) but received ${String(bottom)}`,
      );
    }
    if (this.left > 0) {
      throw new PredictError(
        `Expected takeLeft(${this.leftBottom}, ...) to reach the scene's right edge (${this.width}) before take(${bottom}); it reached column ${this.left}`,
      );
    }
    const classes = new Uint8Array((bottom - top) * this.width);
    this.argmax(top, bottom, 0, this.width, classes, this.width);
    for (let y = top; y < bottom; y++) this.open.delete(y);
    this.top = bottom;
    return { top, bottom, classes };
  }

  /**
   * Argmax of columns [left, right) of pixel rows [top, bottom), where `left` is where the
   * previous takeLeft of these rows ended (0 at first), and no later window may touch them;
   * releases the pieces of those rows wholly left of `right`. When `right` reaches the width the
   * rows are taken, as by {@link take}. Between takeLeft(bottom, ...) calls `bottom` stays the
   * same. `classes` is row-major, (bottom - top) x (right - left).
   */
  takeLeft(
    bottom: number,
    right: number,
  ): { readonly top: number; readonly bottom: number; readonly left: number; readonly classes: Uint8Array } {
    const top = this.top;
    const left = this.left;
    if (
      !Number.isInteger(bottom) ||
      bottom < top ||
      bottom > this.height ||
      (left > 0 && bottom !== this.leftBottom)
    ) {
      throw new PredictError(
        `Expected takeLeft(bottom, right) with an integer bottom ${left > 0 ? `of ${this.leftBottom} (columns up to ${left} of those rows are taken)` : `in [${top}, ${this.height}]`} but received ${String(bottom)}`,
      );
    }
    if (!Number.isInteger(right) || right < left || right > this.width) {
      throw new PredictError(
        `Expected takeLeft(bottom, right) with an integer right in [${left}, ${this.width}] but received ${String(right)}`,
      );
    }
    const classes = new Uint8Array((bottom - top) * (right - left));
    this.argmax(top, bottom, left, right, classes, right - left);
    if (right === this.width) {
      for (let y = top; y < bottom; y++) this.open.delete(y);
      this.top = bottom;
      this.left = 0;
      this.leftBottom = 0;
    } else {
      const done = Math.floor(right / PIECE);
      for (let y = top; y < bottom; y++) {
        const row = this.open.get(y);
        if (row) for (let k = Math.floor(left / PIECE); k < done && k < row.length; k++) row[k] = undefined;
      }
      this.left = right;
      this.leftBottom = bottom;
    }
    return { top, bottom, left, classes };
  }

  /** Channel argmax of columns [x0, x1) of rows [y0, y1) into `classes` (row stride `stride`, from (x0, y0)). */
  private argmax(y0: number, y1: number, x0: number, x1: number, classes: Uint8Array, stride: number): void {
    const C = this.channels;
    for (let y = y0; y < y1; y++) {
      const row = this.open.get(y);
      if (!row) continue;
      const out = (y - y0) * stride - x0;
      for (let k = Math.floor(x0 / PIECE); k * PIECE < x1; k++) {
        const piece = row[k];
        if (!piece) continue;
        const { sums, weights } = piece;
        const base = k * PIECE;
        const end = Math.min(x1, base + PIECE);
        for (let x = Math.max(x0, base); x < end; x++) {
          const i = x - base;
          if (weights[i] === 0) continue;
          let best = 0;
          let value = sums[i * C]!;
          for (let c = 1; c < C; c++) {
            const v = sums[i * C + c]!;
            if (v > value) {
              value = v;
              best = c;
            }
          }
          classes[out + x] = best;
        }
      }
    }
  }

  private row(y: number): OpenRow {
    let row = this.open.get(y);
    if (row) return row;
    row = [];
    this.open.set(y, row);
    return row;
  }

  private piece(row: OpenRow, k: number): Piece {
    let piece = row[k];
    if (piece) return piece;
    const n = Math.min(PIECE, this.width - k * PIECE);
    piece = { sums: new Float32Array(n * this.channels), weights: new Float32Array(n) };
    row[k] = piece;
    return piece;
  }
}

function checkSize(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new PredictError(
      `Expected positive integer for resizeLogits ${name} but received ${String(value)}`,
    );
  }
}

/**
 * Per target index: the source index, the next one (clamped at the edge) and their float32
 * weights, by torch's align_corners=false rule as torch 1.13 computes it for float tensors: the
 * scale source / target rounded to float32 (which moves the weights by up to ~1e-6, enough to
 * matter at 1e-5), the source position in double, the weights rounded to float32.
 */
function axis(
  source: number,
  target: number,
): { index: Int32Array; next: Int32Array; w0: Float32Array; w1: Float32Array } {
  const index = new Int32Array(target);
  const next = new Int32Array(target);
  const w0 = new Float32Array(target);
  const w1 = new Float32Array(target);
  const scale = Math.fround(source / target);
  for (let t = 0; t < target; t++) {
    const s = Math.max(0, scale * (t + 0.5) - 0.5);
    const i = Math.floor(s);
    index[t] = i;
    next[t] = i < source - 1 ? i + 1 : i;
    w1[t] = s - i;
    w0[t] = 1 - (s - i);
  }
  return { index, next, w0, w1 };
}

/**
 * Resizes [channels, sh, sw] logits bilinearly to [channels, th, tw] with half-pixel centres,
 * as torch's `F.interpolate(mode='bilinear', align_corners=False)` without a scale factor:
 * target pixel t samples source position max(0, (t + 0.5) * s / t_size - 0.5), clamped at the
 * last pixel, with torch's float32 rounding of the scale and the weights. Same sizes give a copy.
 */
export function resizeLogits(
  logits: Float32Array,
  channels: number,
  sw: number,
  sh: number,
  tw: number,
  th: number,
): Float32Array {
  checkSize('channels', channels);
  checkSize('source width', sw);
  checkSize('source height', sh);
  checkSize('target width', tw);
  checkSize('target height', th);
  if (logits.length !== channels * sh * sw) {
    throw new PredictError(
      `Expected ${channels} x ${sh} x ${sw} = ${channels * sh * sw} logits to resize but received ${logits.length}`,
    );
  }
  if (sw === tw && sh === th) return logits.slice();
  const xs = axis(sw, tw);
  const ys = axis(sh, th);
  const out = new Float32Array(channels * th * tw);
  for (let c = 0; c < channels; c++) {
    const src = c * sh * sw;
    const dst = c * th * tw;
    for (let ty = 0; ty < th; ty++) {
      const r0 = src + ys.index[ty]! * sw;
      const r1 = src + ys.next[ty]! * sw;
      const ly0 = ys.w0[ty]!;
      const ly1 = ys.w1[ty]!;
      for (let tx = 0; tx < tw; tx++) {
        const i0 = xs.index[tx]!;
        const i1 = xs.next[tx]!;
        const lx0 = xs.w0[tx]!;
        const lx1 = xs.w1[tx]!;
        const top = lx0 * logits[r0 + i0]! + lx1 * logits[r0 + i1]!;
        const bottom = lx0 * logits[r1 + i0]! + lx1 * logits[r1 + i1]!;
        out[dst + ty * tw + tx] = ly0 * top + ly1 * bottom;
      }
    }
  }
  return out;
}
