/**
 * `geobatch chip retile` on a generated 20,000 px square 4-band uint16 scene (50,000 px with
 * BENCH_RETILE_BIG=50000) into 5,120 px tiles, beside gdal_retile.py on the same scene with the
 * same tile encoding (DEFLATE, predictor 2, 512 px internal tiles) in the same run; where
 * gdal_retile.py is missing (apt python3-gdal), one gdal_translate -srcwin per tile instead.
 * Seconds and peak RSS of each.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { retileGrid } from '../lib/chip/retile-grid.js';
import { benchDataDir, generatedScene } from './generated-scene.js';
import { formatMeasured, measure, type Measured } from './measure.js';

const repo = resolve(import.meta.dirname, '..');
const SIZE = Number(process.env.BENCH_RETILE_BIG ?? 20_000);
const TILE = 5120;
const GDAL_CREATION = ['-co', 'COMPRESS=DEFLATE', '-co', 'PREDICTOR=2', '-co', 'TILED=YES'];

function has(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.error === undefined && /GDAL/.test(r.stdout ?? '');
}

async function geobatchRetile(input: string, out: string): Promise<{ m: Measured; tiles: number }> {
  await rm(out, { recursive: true, force: true });
  const m = await measure(process.execPath, [
    '--import',
    'tsx',
    join(repo, 'bin/geobatch.ts'),
    'chip',
    'retile',
    input,
    '--out',
    out,
    '--size',
    String(TILE),
    '--json',
  ]);
  const tiles = (JSON.parse(m.stdout) as { written: number }).written;
  await rm(out, { recursive: true, force: true });
  return { m, tiles };
}

async function gdalRetile(input: string, out: string): Promise<{ m: Measured; tiles: number }> {
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const m = await measure('gdal_retile.py', [
    '-q',
    '-ps',
    String(TILE),
    String(TILE),
    ...GDAL_CREATION,
    '-targetDir',
    out,
    input,
  ]);
  const tiles = (await readdir(out)).filter((n) => n.endsWith('.tif')).length;
  await rm(out, { recursive: true, force: true });
  return { m, tiles };
}

/** One gdal_translate -srcwin per tile, one after the other: total seconds, largest peak RSS. */
async function gdalTranslateLoop(input: string, out: string): Promise<{ m: Measured; tiles: number }> {
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const grid = retileGrid(SIZE, SIZE, 'scene', { size: TILE });
  let seconds = 0;
  let peak: number | null = null;
  for (const t of grid.tiles) {
    const { col, row, width, height } = t.window;
    const m = await measure('gdal_translate', [
      '-q',
      '-srcwin',
      String(col),
      String(row),
      String(width),
      String(height),
      ...GDAL_CREATION,
      input,
      join(out, t.name),
    ]);
    seconds += m.seconds;
    if (m.peakRssMiB !== null) peak = Math.max(peak ?? 0, m.peakRssMiB);
  }
  await rm(out, { recursive: true, force: true });
  return { m: { seconds, peakRssMiB: peak, stdout: '' }, tiles: grid.tiles.length };
}

/** Runs the benchmark and prints its figures. */
export async function benchRetile(): Promise<void> {
  console.log(`chip retile: generating inputs under ${benchDataDir} (kept for later runs)`);
  const input = await generatedScene(SIZE);
  console.log(
    `chip retile on a generated ${SIZE} x ${SIZE} 4-band uint16 GeoTIFF into ${TILE} px tiles (DEFLATE, predictor 2, 512 px blocks)`,
  );
  const ours = await geobatchRetile(input, join(benchDataDir, 'retile-out'));
  console.log(
    `  geobatch chip retile (streamed by rows of tiles)   ${formatMeasured(ours.m)}  ${ours.tiles} tiles`,
  );
  if (has('gdal_retile.py', ['--version'])) {
    const gdal = await gdalRetile(input, join(benchDataDir, 'retile-gdal'));
    console.log(
      `  gdal_retile.py                                    ${formatMeasured(gdal.m)}  ${gdal.tiles} tiles`,
    );
    console.log(`  speed-up: ${(gdal.m.seconds / ours.m.seconds).toFixed(2)}x`);
  } else if (has('gdal_translate', ['--version'])) {
    const gdal = await gdalTranslateLoop(input, join(benchDataDir, 'retile-gdal'));
    console.log(
      `  gdal_translate -srcwin per tile (gdal_retile.py missing: apt-get install python3-gdal)   ${formatMeasured(gdal.m)}  ${gdal.tiles} tiles`,
    );
    console.log(`  speed-up: ${(gdal.m.seconds / ours.m.seconds).toFixed(2)}x`);
  } else {
    console.log(
      '  GDAL reference skipped: neither gdal_retile.py nor gdal_translate found (apt-get install gdal-bin python3-gdal)',
    );
  }
  if (SIZE < 50_000) console.log('  (50,000 px scene skipped: set BENCH_RETILE_BIG=50000 to run it)');
}
