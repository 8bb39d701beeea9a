// Pixel data for the writer tests, generated from a seed (no binary fixtures are checked in).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PixelArray, RasterDType } from '../../lib/raster/geotiff-writer.js';
import { createRandom } from '../../lib/demo/noise.js';

const CTORS: Record<RasterDType, new (n: number) => PixelArray> = {
  uint8: Uint8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

const RANGES: Record<RasterDType, [number, number]> = {
  uint8: [0, 255],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
  float32: [-1e6, 1e6],
  float64: [-1e12, 1e12],
};

/** The demo scene's seeded PRNG (mulberry32), returning [0, 1). */
export const prng = createRandom;

/**
 * `n` samples of `dtype`: a smooth ramp (what imagery looks like to the predictor) with every
 * 7th sample random over the whole range (so predictor differences wrap around), and for
 * floats a few NaN, infinities and -0.
 */
export function samples(dtype: RasterDType, n: number, seed: number): PixelArray {
  const out = new CTORS[dtype](n);
  const random = prng(seed);
  const [min, max] = RANGES[dtype];
  const float = dtype.startsWith('float');
  for (let i = 0; i < n; i++) {
    const v =
      i % 7 === 0
        ? min + random() * (max - min)
        : min + ((Math.sin(i / 97) + 1) / 2) * (max - min) * 0.5 + (i % 13);
    out[i] = float ? v : Math.max(min, Math.min(max, Math.round(v)));
  }
  if (float) {
    const specials = [Number.NaN, Infinity, -Infinity, -0, 1e-30];
    specials.forEach((s, k) => (out[(k * 7919 + 3) % n] = s));
  }
  return out;
}

/** Byte view of a typed array, for exact (NaN-safe) comparisons. */
export function bytesOf(a: PixelArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** A fresh temporary folder and its cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `geobatch-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
