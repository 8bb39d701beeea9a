/**
 * Window reads across a large tiled JPEG 2000 file: a 20,000 px square 8-bit JP2 in 1,024 px
 * tiles (made here with gdal_translate from cog.tif scaled up, or BENCH_JP2=<file>), read in a
 * child process three ways — 64 windows of 512 px spread over the image, every tile once (a full
 * sweep, as rgb and retile read), and resolution level 3 whole (as overview reads do). Seconds
 * and peak RSS of each.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Jp2Raster } from '../lib/raster/jp2-reader.js';
import { openRaster } from '../lib/raster/reader.js';
import type { ImageBlocks } from '../lib/raster/reader.js';
import { createStorage } from '../lib/storage/index.js';
import { benchDataDir } from './generated-scene.js';
import { formatMeasured, measure } from './measure.js';

const repo = resolve(import.meta.dirname, '..');

async function child(file: string, mode: string): Promise<void> {
  const raster = await openRaster(createStorage(), file);
  const started = performance.now();
  let samples = 0;
  const count = (level: ImageBlocks, refs: ReturnType<ImageBlocks['blocksInRows']>) =>
    level.readBlocks(refs, [0], (b) => (samples += b.width * b.height));
  if (mode === 'windows') {
    const level = await raster.level(0);
    for (let i = 0; i < 64; i++) {
      const x = Math.floor(((level.width - 512) * ((i % 8) + 0.5)) / 8);
      const y = Math.floor(((level.height - 512) * (Math.floor(i / 8) + 0.5)) / 8);
      const refs = level.blocksInRows(y, y + 512).filter((r) => {
        const rect = level.blockRect(r);
        return rect.col < x + 512 && rect.col + rect.width > x;
      });
      await count(level, refs);
    }
  } else if (mode === 'sweep') {
    const level = await raster.level(0);
    for (let by = 0; by < level.blocksDown; by++) {
      await count(level, level.blocksInRows(by * level.blockHeight, (by + 1) * level.blockHeight));
    }
  } else {
    const level = await raster.level(3);
    await count(level, level.blocksInRows(0, level.height));
  }
  const stats = raster instanceof Jp2Raster ? raster.stats : { decodes: 0, bytes: 0 };
  console.log(
    JSON.stringify({
      mode,
      seconds: (performance.now() - started) / 1000,
      tilesDecoded: stats.decodes,
      bytes: stats.bytes,
      samples,
    }),
  );
  await raster.close();
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3]!, process.argv[4]!);
  let file = process.env.BENCH_JP2;
  if (!file) {
    const dir = benchDataDir;
    mkdirSync(dir, { recursive: true });
    file = join(dir, 'big-20000.jp2');
    if (!existsSync(file)) {
      const tif = join(dir, 'big-20000.tif');
      const cog = join(repo, '../shared/data/cog/cog.tif');
      const run = (args: string[]) => {
        const r = spawnSync('gdal_translate', ['-q', ...args], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`gdal_translate ${args.join(' ')}: ${r.stderr}`);
      };
      run(['-ot', 'Byte', '-scale', '-outsize', '20000', '20000', '-r', 'bilinear', cog, tif]);
      run([
        '-of',
        'JP2OpenJPEG',
        '-co',
        'BLOCKXSIZE=1024',
        '-co',
        'BLOCKYSIZE=1024',
        '-co',
        'QUALITY=50',
        tif,
        file,
      ]);
    }
  }
  for (const mode of ['windows', 'sweep', 'level3']) {
    const m = await measure(process.execPath, [
      '--import',
      'tsx',
      import.meta.filename,
      '--child',
      file,
      mode,
    ]);
    console.log(`${mode}: ${formatMeasured(m)} ${m.stdout.trim()}`);
  }
}

await main();
