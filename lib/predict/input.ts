/**
 * A window's pixels as the network's input: RGB, resized to size x size with the same bilinear
 * filter as Pillow's `Image.resize(..., BILINEAR)` (the trainer's resize): a triangle filter whose
 * support widens with the scale when shrinking (antialiased), coefficients in 22-bit fixed point,
 * a horizontal pass then a vertical one, each rounded and clipped to 8 bits. Then [0, 1] float32
 * planes (NCHW), as the trainer's to_tensor divides by 255.
 */
import type { ChipPixels } from '../chip/jpeg.js';

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coefficients {
  /** First source index of each output index. */
  readonly start: Int32Array;
  /** Taps of each output index. */
  readonly count: Int32Array;
  /** `taps` fixed-point weights per output index. */
  readonly weights: Int32Array;
  readonly taps: number;
}

const cache = new Map<string, Coefficients>();

function coefficients(inSize: number, outSize: number): Coefficients {
  const key = `${inSize}:${outSize}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const w = new Float64Array(taps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      const x = Math.abs((k + lo - center + 0.5) / filterScale);
      w[k] = x < 1 ? 1 - x : 0;
      sum += w[k]!;
    }
    for (let k = 0; k < n; k++) {
      const v = sum !== 0 ? w[k]! / sum : 0;
      weights[i * taps + k] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    start[i] = lo;
    count[i] = n;
  }
  const c = { start, count, weights, taps };
  if (cache.size > 64) cache.clear();
  cache.set(key, c);
  return c;
}

function clip8(v: number): number {
  const r = Math.floor(v / ONE);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/** A window's pixels (1 grey, 2 grey+alpha, 3 RGB or 4 RGBA channels) as packed RGB, as Pillow's convert('RGB'). */
export function toRgb(pixels: ChipPixels): Uint8Array {
  const { width, height, channels, stride, data } = pixels;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    let s = y * stride * channels;
    let d = y * width * 3;
    for (let x = 0; x < width; x++, s += channels, d += 3) {
      if (channels >= 3) {
        out[d] = data[s]!;
        out[d + 1] = data[s + 1]!;
        out[d + 2] = data[s + 2]!;
      } else {
        out[d] = out[d + 1] = out[d + 2] = data[s]!;
      }
    }
  }
  return out;
}

/** Pillow's BILINEAR resize of packed RGB `width` x `height` to `size` x `size`. */
export function resizeRgbBilinear(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  if (width === size && height === size) return rgb;
  let src = rgb;
  let w = width;
  if (width !== size) {
    const c = coefficients(width, size);
    const tmp = new Uint8Array(size * height * 3);
    for (let y = 0; y < height; y++) {
      const row = y * width * 3;
      for (let x = 0; x < size; x++) {
        const lo = c.start[x]!;
        const n = c.count[x]!;
        const base = x * c.taps;
        let r = HALF;
        let g = HALF;
        let b = HALF;
        for (let k = 0; k < n; k++) {
          const wt = c.weights[base + k]!;
          const p = row + (lo + k) * 3;
          r += src[p]! * wt;
          g += src[p + 1]! * wt;
          b += src[p + 2]! * wt;
        }
        const d = (y * size + x) * 3;
        tmp[d] = clip8(r);
        tmp[d + 1] = clip8(g);
        tmp[d + 2] = clip8(b);
      }
    }
    src = tmp;
    w = size;
  }
  if (height === size) return src;
  const c = coefficients(height, size);
  const out = new Uint8Array(size * w * 3);
  const rowBytes = w * 3;
  for (let y = 0; y < size; y++) {
    const lo = c.start[y]!;
    const n = c.count[y]!;
    const base = y * c.taps;
    for (let i = 0; i < rowBytes; i++) {
      let v = HALF;
      for (let k = 0; k < n; k++) v += src[(lo + k) * rowBytes + i]! * c.weights[base + k]!;
      out[y * rowBytes + i] = clip8(v);
    }
  }
  return out;
}

/**
 * Writes a window as the network's input: planes R, G, B of `size` x `size` float32 in [0, 1] at
 * `out[offset..offset + 3 * size * size)`.
 */
export function windowInput(pixels: ChipPixels, size: number, out: Float32Array, offset: number): void {
  const rgb = resizeRgbBilinear(toRgb(pixels), pixels.width, pixels.height, size);
  const plane = size * size;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[offset + i] = rgb[p]! / 255;
    out[offset + plane + i] = rgb[p + 1]! / 255;
    out[offset + 2 * plane + i] = rgb[p + 2]! / 255;
  }
}
