/**
 * A square 3-band uint8 RGB scene for the predict benchmark, as an orthophoto tile would come:
 * tiled 512, DEFLATE, UTM 33N at 0.3 m, smooth terrain with field-like blocks and a little noise,
 * no no-data. Written by rows of tiles with the project's streaming GeoTIFF writer (memory: one
 * row of tiles, about 61 MB at 40,000 px), once per size, and reused from os.tmpdir().
 */
import { existsSync, statfsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GeoTiffWriter } from '../lib/raster/geotiff-writer.js';
import { benchDataDir } from './generated-scene.js';

const BASE = [110, 120, 95];
const AMPLITUDE = [60, 55, 50];

/** Free bytes on the file system of `dir`. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Path of the generated RGB scene of `size` px square, written if missing. */
export async function rgbScene(size: number): Promise<string> {
  await mkdir(benchDataDir, { recursive: true });
  const path = join(benchDataDir, `scene-${size}-rgb-uint8.tif`);
  if (existsSync(path)) return path;
  // DEFLATE makes it about a third of the raw size; ask for the raw size to be safe
  const need = size * size * 3;
  if (freeBytes(benchDataDir) < need) {
    throw new Error(
      `not enough disk under ${benchDataDir} for a ${size} px scene: need ${(need / 1e9).toFixed(1)} GB, have ${(freeBytes(benchDataDir) / 1e9).toFixed(1)} GB`,
    );
  }
  const tile = 512;
  const writer = await GeoTiffWriter.open(path, {
    width: size,
    height: size,
    bands: 3,
    dtype: 'uint8',
    tileSize: tile,
    deflateLevel: 1,
    geotransform: [455904, 0.3, 0, 5732523, 0, -0.3],
    epsg: 32633,
  });
  // separable terms: a 40,000 px scene would otherwise cost 1.6 billion sin() calls
  const sx = Float64Array.from({ length: size }, (_, x) => Math.sin(x / 431));
  const s1 = Float64Array.from({ length: size }, (_, x) => Math.sin(x / 97));
  const c1 = Float64Array.from({ length: size }, (_, x) => Math.cos(x / 97));
  const rows = new Uint8Array(tile * size * 3);
  for (let y0 = 0; y0 < size; y0 += tile) {
    const n = Math.min(tile, size - y0);
    for (let r = 0; r < n; r++) {
      const y = y0 + r;
      const cy = Math.cos(y / 383);
      const s2 = Math.sin((2 * y) / 97);
      const c2 = Math.cos((2 * y) / 97);
      for (let x = 0; x < size; x++) {
        const k = (r * size + x) * 3;
        const terrain = sx[x]! * cy + 0.5 * (s1[x]! * c2 + c1[x]! * s2);
        const field = (((x >> 6) * 7 + (y >> 6) * 13) % 5) / 5 - 0.4;
        let h = Math.imul(x, 73856093) ^ Math.imul(y, 19349663);
        h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
        for (let b = 0; b < 3; b++) {
          const v = BASE[b]! + AMPLITUDE[b]! * (0.6 * terrain + field) + ((h >>> (b * 5)) & 7) - 4;
          rows[k + b] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
      }
    }
    await writer.writeRows(rows.subarray(0, n * size * 3));
  }
  await writer.close();
  return path;
}

/**
 * Path of a generated uint8 class raster of `size` px square (classes 1..3 as blobs with holes
 * on background 0, no-data 255 along a diagonal band), tiled 512, DEFLATE; written if missing.
 */
export async function classScene(size: number): Promise<string> {
  await mkdir(benchDataDir, { recursive: true });
  const path = join(benchDataDir, `classes-${size}-uint8.tif`);
  if (existsSync(path)) return path;
  const tile = 512;
  const writer = await GeoTiffWriter.open(path, {
    width: size,
    height: size,
    bands: 1,
    dtype: 'uint8',
    tileSize: tile,
    deflateLevel: 1,
    nodata: 255,
  });
  const sx = Float64Array.from({ length: size }, (_, x) => Math.sin(x / 37));
  const s2 = Float64Array.from({ length: size }, (_, x) => Math.sin(x / 91));
  const c2 = Float64Array.from({ length: size }, (_, x) => Math.cos(x / 91));
  const rows = new Uint8Array(tile * size);
  for (let y0 = 0; y0 < size; y0 += tile) {
    const n = Math.min(tile, size - y0);
    for (let r = 0; r < n; r++) {
      const y = y0 + r;
      const cy = Math.cos(y / 53);
      const sy = Math.sin(y / 91);
      const cyy = Math.cos(y / 91);
      for (let x = 0; x < size; x++) {
        // sin((x + y) / 91) by the angle-sum formula
        const v = sx[x]! * cy + 0.5 * (s2[x]! * cyy + c2[x]! * sy);
        const d = (x - y) % 5000;
        rows[r * size + x] = d >= 0 && d < 3 ? 255 : v > 0.9 ? 3 : v > 0.4 ? 1 : v < -0.7 ? 2 : 0;
      }
    }
    await writer.writeRows(rows.subarray(0, n * size));
  }
  await writer.close();
  return path;
}
