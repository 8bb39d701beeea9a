/**
 * Bilinear resizing of 8-bit images as Pillow's `Image.resize(size, BILINEAR)` does it, the
 * trainer's resize (jobs/train/geobatch_trainer/data.py), shared by the validation threshold
 * (lib/train) and prediction (lib/predict) so that both feed the network what training did: a
 * triangle filter whose support grows with the reduction factor (so downscaling averages, not
 * samples), pixel centres at +0.5, horizontal pass first, each pass in 22-bit fixed point rounded
 * back to 8 bits. Matches Pillow to the byte in the tests; sharp's `linear` kernel differs by tens
 * of levels when enlarging.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coefficients {
  /** First source index of each output index. */
  readonly start: Int32Array;
  /** Taps used by each output index. */
  readonly count: Int32Array;
  /** `taps` fixed-point weights per output index. */
  readonly weights: Int32Array;
  readonly taps: number;
}

// prediction resizes every window with the same two sizes: compute the weights once
const cache = new Map<string, Coefficients>();

function coefficients(inSize: number, outSize: number): Coefficients {
  const key = `${inSize}:${outSize}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the bilinear filter's support is 1
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const pre = new Float64Array(taps);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // C's (int) cast truncates toward zero
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const n = Math.min(Math.trunc(center + support + 0.5), inSize) - lo;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const t = Math.abs((k + lo - center + 0.5) / filterScale);
      pre[k] = t < 1 ? 1 - t : 0;
      total += pre[k]!;
    }
    for (let k = 0; k < n; k++) {
      const w = total !== 0 ? pre[k]! / total : 0;
      // Pillow rounds each normalised weight to fixed point, half away from zero
      weights[i * taps + k] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
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
  const q = Math.floor(v / ONE);
  return q < 0 ? 0 : q > 255 ? 255 : q;
}

/** Resizes interleaved 8-bit pixels (`channels` per pixel) from w x h to tw x th. Pure. */
export function resizeBilinearLikePil(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  targetWidth: number,
  targetHeight: number,
): Uint8Array {
  if (pixels.length !== width * height * channels) {
    throw new RangeError(
      `expected ${width * height * channels} bytes for ${width}x${height}x${channels}, got ${pixels.length}`,
    );
  }
  let src = pixels;
  let w = width;
  if (targetWidth !== width) {
    const c = coefficients(width, targetWidth);
    const out = new Uint8Array(targetWidth * height * channels);
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let x = 0; x < targetWidth; x++) {
        const lo = c.start[x]!;
        const n = c.count[x]!;
        const base = x * c.taps;
        const d = (y * targetWidth + x) * channels;
        for (let ch = 0; ch < channels; ch++) {
          let v = HALF;
          for (let k = 0; k < n; k++) v += src[row + (lo + k) * channels + ch]! * c.weights[base + k]!;
          out[d + ch] = clip8(v);
        }
      }
    }
    src = out;
    w = targetWidth;
  }
  if (targetHeight !== height) {
    const c = coefficients(height, targetHeight);
    const rowBytes = w * channels;
    const out = new Uint8Array(rowBytes * targetHeight);
    for (let y = 0; y < targetHeight; y++) {
      const lo = c.start[y]!;
      const n = c.count[y]!;
      const base = y * c.taps;
      for (let i = 0; i < rowBytes; i++) {
        let v = HALF;
        for (let k = 0; k < n; k++) v += src[(lo + k) * rowBytes + i]! * c.weights[base + k]!;
        out[y * rowBytes + i] = clip8(v);
      }
    }
    src = out;
  }
  return src;
}
