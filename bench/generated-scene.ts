/**
 * Benchmark inputs made with the project's own GeoTIFF writer: a square 4-band (blue, green,
 * red, NIR) uint16 scene in UTM 33N with smooth terrain, field-like blocks, sensor noise and a
 * no-data corner, like a WorldView tile. Written once per size and reused from os.tmpdir().
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeoTiffWriter } from '../lib/raster/geotiff-writer.js';

/** Folder benchmark inputs are kept in between runs. */
export const benchDataDir = join(tmpdir(), 'geobatch-bench');

const BASE = [420, 510, 600, 1400];
const AMPLITUDE = [250, 300, 380, 700];

export interface GeneratedSceneOptions {
  /** Peak-to-peak sensor noise in counts (a power of 2). @default 64 */
  readonly noise?: number;
}

/** Path of the generated scene of `size` px square, written if missing. */
export async function generatedScene(size: number, options: GeneratedSceneOptions = {}): Promise<string> {
  const noise = options.noise ?? 64;
  await mkdir(benchDataDir, { recursive: true });
  const path = join(benchDataDir, `scene-${size}-4band-uint16-noise${noise}.tif`);
  if (existsSync(path)) return path;
  const tile = 512;
  const writer = await GeoTiffWriter.open(path, {
    width: size,
    height: size,
    bands: 4,
    dtype: 'uint16',
    tileSize: tile,
    deflateLevel: 1,
    geotransform: [455904, 0.5, 0, 5732523, 0, -0.5],
    epsg: 32633,
    nodata: 0,
  });
  // separable terms, so that a 40,000 px scene does not cost 1.6 billion sin() calls
  const sx = Float64Array.from({ length: size }, (_, x) => Math.sin(x / 731));
  const s1 = Float64Array.from({ length: size }, (_, x) => Math.sin(x / 157));
  const c1 = Float64Array.from({ length: size }, (_, x) => Math.cos(x / 157));
  const rows = new Uint16Array(tile * size * 4);
  const corner = Math.floor(size / 20);
  const mask = noise - 1;
  for (let y0 = 0; y0 < size; y0 += tile) {
    const n = Math.min(tile, size - y0);
    for (let r = 0; r < n; r++) {
      const y = y0 + r;
      const cy = Math.cos(y / 613);
      const s2 = Math.sin((2 * y) / 157);
      const c2 = Math.cos((2 * y) / 157);
      for (let x = 0; x < size; x++) {
        const k = (r * size + x) * 4;
        if (x + y < corner) {
          rows.fill(0, k, k + 4);
          continue;
        }
        // sin((x + 2y) / 157) by the angle-sum formula
        const terrain = sx[x]! * cy + 0.5 * (s1[x]! * c2 + c1[x]! * s2);
        const field = (((x >> 7) * 7 + (y >> 7) * 13) % 5) / 5;
        let h = Math.imul(x, 73856093) ^ Math.imul(y, 19349663);
        h = Math.imul(h ^ (h >>> 13), 0x5bd1e995);
        for (let b = 0; b < 4; b++) {
          const jitter = ((h >>> (b * 6)) & mask) - noise / 2;
          rows[k + b] = Math.max(1, Math.round(BASE[b]! + AMPLITUDE[b]! * (0.5 * terrain + field) + jitter));
        }
      }
    }
    await writer.writeRows(rows.subarray(0, n * size * 4));
  }
  await writer.close();
  return path;
}
