/**
 * Bilinear resizing of 8-bit images as Pillow's `Image.resize(size, BILINEAR)` does it, the
 * trainer's resize (jobs/train/geobatch_trainer/data.py): a triangle filter whose support grows
 * with the reduction factor (so downscaling averages, not samples), pixel centres at +0.5,
 * horizontal pass first, each pass in 22-bit fixed point rounded back to 8 bits. Matches Pillow to
 * the byte in the tests; sharp's `linear` kernel differs by tens of levels when enlarging.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

interface Coefficients {
  /** Per output pixel: the first input pixel, the count, the offset of its weights in `weights`. */
  readonly bounds: Int32Array;
  readonly weights: Float64Array;
  readonly ksize: number;
}

function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the bilinear filter's support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Float64Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterScale;
    // C's (int) cast truncates toward zero
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1 ? 1 - t : 0;
      pre[x] = w;
      total += w;
    }
    for (let x = 0; x < ksize; x++) {
      const w = x < xmax && total !== 0 ? pre[x]! / total : 0;
      // Pillow rounds each normalised weight to fixed point, half away from zero
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

const clip8 = (v: number) => {
  const q = Math.floor(v / ONE);
  return q < 0 ? 0 : q > 255 ? 255 : q;
};

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
  let current = pixels;
  let w = width;
  if (targetWidth !== width) {
    const { bounds, weights, ksize } = coefficients(width, targetWidth);
    const out = new Uint8Array(targetWidth * height * channels);
    for (let y = 0; y < height; y++) {
      for (let xx = 0; xx < targetWidth; xx++) {
        const xmin = bounds[xx * 2]!;
        const xmax = bounds[xx * 2 + 1]!;
        for (let c = 0; c < channels; c++) {
          let ss = ONE / 2;
          for (let x = 0; x < xmax; x++)
            ss += current[(y * w + x + xmin) * channels + c]! * weights[xx * ksize + x]!;
          out[(y * targetWidth + xx) * channels + c] = clip8(ss);
        }
      }
    }
    current = out;
    w = targetWidth;
  }
  if (targetHeight !== height) {
    const { bounds, weights, ksize } = coefficients(height, targetHeight);
    const out = new Uint8Array(w * targetHeight * channels);
    for (let yy = 0; yy < targetHeight; yy++) {
      const ymin = bounds[yy * 2]!;
      const ymax = bounds[yy * 2 + 1]!;
      for (let i = 0; i < w * channels; i++) {
        let ss = ONE / 2;
        for (let y = 0; y < ymax; y++)
          ss += current[(y + ymin) * w * channels + i]! * weights[yy * ksize + y]!;
        out[yy * w * channels + i] = clip8(ss);
      }
    }
    current = out;
  }
  return current;
}
