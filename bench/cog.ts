/**
 * `geobatch rgb --cog` on a generated 8-bit RGB scene (BENCH_COG_SIZE px square, default 20,000)
 * beside `gdal_translate -of COG` on the same input with the same settings (512 px tiles,
 * DEFLATE, predictor 2, average overviews): time and peak RSS of each, as child processes.
 * 8-bit input needs no stretch, so both do the same work: read, tile, overviews, assemble.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GeoTiffWriter } from '../lib/raster/geotiff-writer.js';
import { benchDataDir } from './generated-scene.js';
import { formatMeasured, measure } from './measure.js';
import type { Measured } from './measure.js';

const repo = resolve(import.meta.dirname, '..');
const SIZE = Number(process.env.BENCH_COG_SIZE ?? 20_000);

/** An 8-bit RGB scene of `size` px square with texture (so DEFLATE has work), written once. */
async function rgbScene(size: number): Promise<string> {
  await mkdir(benchDataDir, { recursive: true });
  const path = join(benchDataDir, `rgb-${size}-uint8.tif`);
  if (existsSync(path)) return path;
  const writer = await GeoTiffWriter.open(path, {
    width: size,
    height: size,
    bands: 3,
    dtype: 'uint8',
    tileSize: 512,
    deflateLevel: 1,
    geotransform: [455904, 0.5, 0, 5732523, 0, -0.5],
    epsg: 32633,
    nodata: 0,
  });
  const rows = 512;
  const buffer = new Uint8Array(rows * size * 3);
  for (let y0 = 0; y0 < size; y0 += rows) {
    const n = Math.min(rows, size - y0);
    for (let r = 0; r < n; r++) {
      const y = y0 + r;
      for (let x = 0; x < size; x++) {
        const i = (r * size + x) * 3;
        const field = ((x >> 7) * 31 + (y >> 7) * 17) & 63;
        const noise = (x * 2654435761 + y * 40503) >>> 27;
        const corner = x + y < size / 8;
        buffer[i] = corner ? 0 : 1 + ((60 + field + noise + ((x * 3) >> 6)) & 127);
        buffer[i + 1] = corner ? 0 : 1 + ((80 + field * 2 + noise) & 127);
        buffer[i + 2] = corner ? 0 : 1 + ((40 + field + (noise >> 1) + ((y * 5) >> 7)) & 127);
      }
    }
    await writer.writeRows(buffer.subarray(0, n * size * 3));
  }
  await writer.close();
  return path;
}

export interface CogBench {
  readonly size: number;
  readonly ours: Measured & { readonly bytes: number };
  readonly gdal: (Measured & { readonly bytes: number }) | null;
}

/** Runs the benchmark and prints its figures. */
export async function benchCog(): Promise<CogBench> {
  console.log(`cog: generating a ${SIZE} px RGB scene under ${benchDataDir} (kept for later runs)`);
  const input = await rgbScene(SIZE);
  const out = join(benchDataDir, 'cog-ours.tif');
  const ref = join(benchDataDir, 'cog-gdal.tif');
  await rm(out, { force: true });
  await rm(ref, { force: true });
  const ours = await measure(process.execPath, [
    '--import',
    'tsx',
    join(repo, 'bin/geobatch.ts'),
    'rgb',
    input,
    out,
    '--cog',
    '--json',
  ]);
  const oursBytes = (await stat(out)).size;
  let gdal: (Measured & { bytes: number }) | null = null;
  try {
    const m = await measure('gdal_translate', [
      '-q',
      '-of',
      'COG',
      '-co',
      'BLOCKSIZE=512',
      '-co',
      'COMPRESS=DEFLATE',
      '-co',
      'PREDICTOR=YES',
      '-co',
      'RESAMPLING=AVERAGE',
      '-co',
      'NUM_THREADS=1',
      input,
      ref,
    ]);
    gdal = { ...m, bytes: (await stat(ref)).size };
  } catch (error) {
    console.log(`  (gdal_translate not run: ${(error as Error).message.split('\n')[0]})`);
  }
  console.log(
    `cog: ${SIZE} x ${SIZE} 8-bit RGB -> COG (512 px tiles, DEFLATE, predictor 2, average overviews)`,
  );
  console.log(`  geobatch rgb --cog        ${formatMeasured(ours)}, ${(oursBytes / 2 ** 20).toFixed(0)} MiB`);
  if (gdal) {
    console.log(
      `  gdal_translate -of COG    ${formatMeasured(gdal)}, ${(gdal.bytes / 2 ** 20).toFixed(0)} MiB`,
    );
  }
  return { size: SIZE, ours: { ...ours, bytes: oursBytes }, gdal };
}
