/**
 * `geobatch labels xview` on a generated xView-like GeoJSON of 600,000 features (~300 MB, with
 * the real file's dirt: a missing image, noise type ids 75 and 82, boxes outside or partly
 * outside their image, zero-area boxes) over 847 header-only 3,000 px images. Beside it, what
 * the usual converter starts with: Python's json.load of the whole file.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import { XVIEW_CLASSES } from '../lib/labels/categories.js';
import { benchDataDir } from './generated-scene.js';
import { formatMeasured, measure } from './measure.js';
import type { Measured } from './measure.js';
import { createRandom } from '../lib/demo/noise.js';
import { tiffWithEntries, type TiffEntry } from '../test/helpers/tiny-tiff.js';

const repo = resolve(import.meta.dirname, '..');
const FEATURES = Number(process.env.BENCH_XVIEW_FEATURES ?? 600_000);
const IMAGES = 847;
const SIDE = 3000;

/** A TIFF header (no pixels) that says it is SIDE x SIDE, one uint8 band: enough for label conversion. */
function headerOnlyTiff(): Buffer {
  const entries: TiffEntry[] = [
    [256, 4, SIDE],
    [257, 4, SIDE],
    [258, 3, 8],
    [259, 3, 1],
    [262, 3, 1],
    [273, 4, 0],
    [277, 3, 1],
    [278, 4, SIDE],
    [279, 4, 0],
  ];
  return tiffWithEntries(entries);
}

/** Writes the images folder and the GeoJSON (once; kept for later runs). */
async function generate(dir: string): Promise<string> {
  const images = join(dir, 'images');
  const geojson = join(dir, `xview-${FEATURES}.geojson`);
  if (existsSync(geojson)) return geojson;
  await mkdir(images, { recursive: true });
  const header = headerOnlyTiff();
  for (let i = 0; i < IMAGES; i++) await writeFile(join(images, `${100 + i}.tif`), header);
  const random = createRandom(2018);
  const typeIds = [...XVIEW_CLASSES.map(([id]) => id), 75, 82];
  const out = createWriteStream(`${geojson}.tmp`);
  const write = (text: string): Promise<void> | undefined =>
    out.write(text) ? undefined : new Promise((r) => out.once('drain', () => r()));
  await write(
    '{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}},"features":[\n',
  );
  for (let i = 0; i < FEATURES; i++) {
    // one image id in 400 is missing (as 1395.tif in the real file)
    const image = random() < 0.0025 ? '1395.tif' : `${100 + Math.floor(random() * IMAGES)}.tif`;
    const w = Math.floor(5 + random() * 60);
    const h = Math.floor(random() < 0.001 ? 0 : 5 + random() * 60);
    const x = Math.floor(random() * (SIDE + 40)) - 20;
    const y = Math.floor(random() * (SIDE + 40)) - 20;
    const lon = 39.7 + x * 3e-6;
    const lat = 21.4 - y * 3e-6;
    const ring = [
      [lon, lat],
      [lon + w * 3e-6, lat],
      [lon + w * 3e-6, lat - h * 3e-6],
      [lon, lat - h * 3e-6],
      [lon, lat],
    ]
      .map(([a, b]) => `[${a!.toFixed(13)},${b!.toFixed(13)}]`)
      .join(',');
    const type = typeIds[Math.floor(random() * typeIds.length)]!;
    const feature =
      `{"type":"Feature","properties":{"bounds_imcoords":"${x},${y},${x + w},${y + h}","edited_by":"wwoscarbecerril",` +
      `"cat_id":1040010028371A00,"type_id":${type},"ingest_time":"2017/07/24 12:49:09.118+00",` +
      `"index_right":2356,"image_id":"${image}","point_geom":"0101000020E6100000005CA4A4B8E04240C1C6BB8399A23540",` +
      `"feature_id":${374000 + i},"grade":1},"geometry":{"type":"Polygon","coordinates":[[${ring}]]}}`;
    await write(feature.replace(/"cat_id":(\w+)/, '"cat_id":"$1"') + (i + 1 < FEATURES ? ',\n' : '\n'));
  }
  await write(']}\n');
  out.end();
  await finished(out);
  const { rename } = await import('node:fs/promises');
  await rename(`${geojson}.tmp`, geojson);
  return geojson;
}

export interface XviewBench {
  readonly features: number;
  readonly ours: Measured;
  readonly pythonJsonLoad: Measured | null;
}

/** Runs the benchmark and prints its figures. */
export async function benchLabelsXview(): Promise<XviewBench> {
  const dir = join(benchDataDir, 'xview');
  console.log(
    `labels xview: generating ${FEATURES.toLocaleString('en-US')} features under ${dir} (kept for later runs)`,
  );
  const geojson = await generate(dir);
  const out = join(dir, 'shards');
  await rm(out, { recursive: true, force: true });
  const ours = await measure(process.execPath, [
    '--import',
    'tsx',
    join(repo, 'bin/geobatch.ts'),
    'labels',
    'xview',
    geojson,
    '--images',
    join(dir, 'images'),
    '--out',
    out,
    '--json',
  ]);
  const summary = JSON.parse(ours.stdout) as { counts: Record<string, number> };
  let pythonJsonLoad: Measured | null = null;
  try {
    pythonJsonLoad = await measure('python3', [
      '-c',
      'import json,sys; json.load(open(sys.argv[1]))',
      geojson,
    ]);
  } catch (error) {
    console.log(`  (python3 not run: ${(error as Error).message.split('\n')[0]})`);
  }
  const size = (await import('node:fs')).statSync(geojson).size;
  console.log(
    `labels xview on a generated ${FEATURES.toLocaleString('en-US')}-feature file (${(size / 1e6).toFixed(0)} MB, ${IMAGES} images; target: under 30 s and 2 GB)`,
  );
  console.log(
    `  geobatch labels xview (streamed, ${IMAGES} COCO shards written)          ${formatMeasured(ours)}`,
  );
  if (pythonJsonLoad)
    console.log(
      `  reference: python3 json.load of the whole file (parsing only)          ${formatMeasured(pythonJsonLoad)}`,
    );
  console.log(`  counts ${JSON.stringify(summary.counts)}`);
  await rm(out, { recursive: true, force: true });
  return { features: FEATURES, ours, pythonJsonLoad };
}
