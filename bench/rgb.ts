/**
 * `geobatch rgb` on a generated 10,000 px square 4-band uint16 scene, beside `gdal_translate
 * -ot Byte -scale` with the same per-band ranges and the same output (tiled 512, DEFLATE,
 * predictor 2, no-data 0); then peak memory on a 40,000 px scene (BENCH_RGB_BIG=0 skips it).
 * Both tools run as child processes; peak RSS is the kernel's high-water mark.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { RgbResult } from '../lib/raster/rgb.js';
import { benchDataDir, generatedScene } from './generated-scene.js';
import { formatMeasured, measure } from './measure.js';
import type { Measured } from './measure.js';

const repo = resolve(import.meta.dirname, '..');
const SIZE = Number(process.env.BENCH_RGB_SIZE ?? 10_000);
const BIG = Number(process.env.BENCH_RGB_BIG ?? 40_000);

function geobatchRgb(input: string, output: string): Promise<Measured> {
  return measure(process.execPath, [
    '--import',
    'tsx',
    join(repo, 'bin/geobatch.ts'),
    'rgb',
    input,
    output,
    '--json',
  ]);
}

export interface RgbBench {
  readonly size: number;
  readonly ours: Measured;
  readonly gdal: Measured | null;
  readonly big: { readonly size: number; readonly ours: Measured } | null;
}

/** Runs the benchmark and prints its figures. */
export async function benchRgb(): Promise<RgbBench> {
  console.log(`rgb: generating inputs under ${benchDataDir} (kept for later runs)`);
  const input = await generatedScene(SIZE);
  const out = join(benchDataDir, 'rgb-out.tif');
  const ours = await geobatchRgb(input, out);
  const result = JSON.parse(ours.stdout) as RgbResult & { seconds: number };
  const scale = result.ranges.flatMap(([lo, hi], i) => [
    `-scale_${i + 1}`,
    String(lo),
    String(hi),
    '1',
    '255',
  ]);
  let gdal: Measured | null = null;
  try {
    gdal = await measure('gdal_translate', [
      '-q',
      '-ot',
      'Byte',
      ...result.bands.flatMap((b) => ['-b', String(b)]),
      ...scale,
      '-a_nodata',
      '0',
      '-co',
      'TILED=YES',
      '-co',
      'BLOCKXSIZE=512',
      '-co',
      'BLOCKYSIZE=512',
      '-co',
      'COMPRESS=DEFLATE',
      '-co',
      'PREDICTOR=2',
      input,
      join(benchDataDir, 'gdal-out.tif'),
    ]);
  } catch (error) {
    console.log(`  (gdal_translate not run: ${(error as Error).message.split('\n')[0]})`);
  }
  console.log(
    `rgb on a generated ${SIZE} x ${SIZE} 4-band uint16 scene (ranges ${JSON.stringify(result.ranges)})`,
  );
  console.log(
    `  geobatch rgb (percentile stretch from a sample, tiled DEFLATE output)   ${formatMeasured(ours)}`,
  );
  if (gdal)
    console.log(
      `  gdal_translate -ot Byte -scale_1..3 (same ranges and output options)   ${formatMeasured(gdal)}`,
    );
  await rm(join(benchDataDir, 'gdal-out.tif'), { force: true });
  await rm(out, { force: true });

  let big: RgbBench['big'] = null;
  if (BIG > 0) {
    // less noise compresses better: the same pixels per second to decode, less disk
    const bigInput = await generatedScene(BIG, { noise: 8 });
    const bigOut = join(benchDataDir, 'rgb-big-out.tif');
    const m = await geobatchRgb(bigInput, bigOut);
    await rm(bigOut, { force: true });
    big = { size: BIG, ours: m };
    console.log(`rgb on a generated ${BIG} x ${BIG} 4-band uint16 scene (peak RSS target: under 1 GB)`);
    console.log(
      `  geobatch rgb                                                           ${formatMeasured(m)}`,
    );
  }
  return { size: SIZE, ours, gdal, big };
}
