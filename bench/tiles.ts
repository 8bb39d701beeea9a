/**
 * The tile engine (lib/serve/tiles.ts) on a generated 8,192 px square 4-band uint16 scene made an
 * 8-bit RGB COG by GDAL (BENCH_TILES_SIZE to change): tiles per second, cold (no rendered-tile cache), for
 * the zoom where the scene fits one tile (overviews) and the full-resolution zoom, beside
 * `gdal2tiles.py --xyz -r bilinear --processes 1` rendering the same zoom. Then the same
 * zoomed-out tiles from the raw uint16 GeoTIFF (stretched; no overviews: the pyramid is built on
 * the first one).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tilesCovering } from '../lib/geo/web-mercator.js';
import { openTileLayer, type TileLayer } from '../lib/serve/tiles.js';
import { createStorage } from '../lib/storage/index.js';
import { benchDataDir, generatedScene } from './generated-scene.js';

const SIZE = Number(process.env.BENCH_TILES_SIZE ?? 8192);
/** Full-resolution tiles rendered (a sample from the middle of the scene). */
const SAMPLE = 64;

function countPngs(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) n += countPngs(path);
    else if (name.endsWith('.png')) n++;
  }
  return n;
}

async function ours(layer: TileLayer, z: number, limit: number): Promise<{ tiles: number; seconds: number }> {
  const [w, s, e, n] = layer.bounds;
  const all = tilesCovering({ west: w, south: s, east: e, north: n }, z);
  const from = Math.max(0, Math.floor(all.length / 2 - limit / 2));
  const tiles = all.slice(from, from + limit);
  const started = performance.now();
  let rendered = 0;
  for (const t of tiles) if (await layer.tile(t.z, t.x, t.y)) rendered++;
  return { tiles: rendered, seconds: (performance.now() - started) / 1000 };
}

function gdal(input: string, z: number): { tiles: number; seconds: number } {
  const out = join(benchDataDir, `gdal2tiles-${z}`);
  execFileSync('rm', ['-rf', out]);
  const started = performance.now();
  execFileSync('gdal2tiles.py', [
    '--xyz',
    '-q',
    '-x',
    '-w',
    'none',
    '--processes',
    '1',
    '-r',
    'bilinear',
    '-z',
    String(z),
    input,
    out,
  ]);
  const seconds = (performance.now() - started) / 1000;
  const tiles = countPngs(out);
  execFileSync('rm', ['-rf', out]);
  return { tiles, seconds };
}

const rate = (r: { tiles: number; seconds: number }): string =>
  `${(r.tiles / r.seconds).toFixed(1).padStart(7)} tiles/s  (${r.tiles} tiles in ${r.seconds.toFixed(2)} s)`;

/** Runs the benchmark and prints its figures. */
export async function benchTiles(): Promise<void> {
  console.log(`tiles: generating inputs under ${benchDataDir} (kept for later runs)`);
  const plain = await generatedScene(SIZE);
  const cog = join(benchDataDir, `scene-${SIZE}-rgb8-cog.tif`);
  if (!existsSync(cog)) {
    // gdal2tiles takes 8-bit input only: both engines render the same 8-bit RGB COG
    execFileSync('gdal_translate', [
      '-q',
      '-of',
      'COG',
      '-ot',
      'Byte',
      '-scale',
      '0',
      '3000',
      '0',
      '255',
      '-b',
      '3',
      '-b',
      '2',
      '-b',
      '1',
      '-co',
      'COMPRESS=DEFLATE',
      '-co',
      'OVERVIEW_RESAMPLING=AVERAGE',
      plain,
      cog,
    ]);
  }
  const storage = createStorage();
  const layer = await openTileLayer(storage, cog, { cacheBytes: 0 });
  console.log(
    `tiles: ${SIZE} px 8-bit RGB COG (${layer.source.overviews} overviews), zooms ${layer.minZoom}..${layer.maxZoom}, cold (no tile cache), one process`,
  );
  try {
    const low = await ours(layer, layer.minZoom, 16);
    console.log(`  zoom ${layer.minZoom} (overviews)   geobatch   ${rate(low)}`);
    console.log(`  zoom ${layer.minZoom} (overviews)   gdal2tiles ${rate(gdal(cog, layer.minZoom))}`);
    const high = await ours(layer, layer.maxZoom, SAMPLE);
    console.log(`  zoom ${layer.maxZoom} (full res)    geobatch   ${rate(high)}`);
    console.log(`  zoom ${layer.maxZoom} (full res)    gdal2tiles ${rate(gdal(cog, layer.maxZoom))}`);
  } finally {
    await layer.close();
  }
  // the raw 4-band uint16 scene, no overviews: stretched, and the pyramid built on the first tile
  const noOverviews = await openTileLayer(storage, plain, { cacheBytes: 0 });
  try {
    const first = await ours(noOverviews, noOverviews.minZoom, 1);
    const rest = await ours(noOverviews, noOverviews.minZoom, 16);
    const stats = noOverviews.stats();
    console.log(
      `  uint16, no overviews: first zoom-${noOverviews.minZoom} tile ${first.seconds.toFixed(2)} s (pyramid of ${(stats.pyramidBytes / 2 ** 20).toFixed(1)} MiB from ${stats.blocksDecoded} blocks), then ${rate(rest)}`,
    );
  } finally {
    await noOverviews.close();
  }
  await rm(join(benchDataDir, 'gdal2tiles'), { recursive: true, force: true });
}
