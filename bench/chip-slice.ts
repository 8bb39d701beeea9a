/**
 * `geobatch chip slice` on a generated 10,000 px square 8-bit RGB GeoTIFF (1,764 chips of 300 px
 * at overlap 0.2, JPEG quality 90) beside a Python rasterio + PIL loop over the same windows;
 * then the planning of a 6,000 px scene with 2,000 annotations, with the spatial index and with
 * SAHI's every-annotation-against-every-window test. BENCH_CHIP_BIG=40000 adds a 40,000 px
 * scene (peak RSS). The Python side is skipped with a message when rasterio or PIL is missing
 * (apt python3-rasterio python3-pil).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BoxIndex } from '../lib/labels/box-index.js';
import { prepareAnnotations, sliceAnnotations, sliceWindows, indexAnnotations } from '../lib/labels/slice.js';
import { convertToRgb } from '../lib/raster/rgb.js';
import { createStorage } from '../lib/storage/index.js';
import { benchDataDir, generatedScene } from './generated-scene.js';
import { formatMeasured, measure, type Measured } from './measure.js';

const repo = resolve(import.meta.dirname, '..');
const SIZE = Number(process.env.BENCH_CHIP_SIZE ?? 10_000);
const BIG = Number(process.env.BENCH_CHIP_BIG ?? 0);

// the same windows as lib/labels/slice.ts (SAHI 0.11), read with rasterio, written with PIL
const PYTHON_LOOP = `
import sys, rasterio
from rasterio.windows import Window
from PIL import Image
src, out, size, overlap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def spans(extent):
    step = size - int(overlap * size); res = []; start = 0; end = 0
    while end < extent:
        end = start + size; e = min(extent, end); res.append((max(0, e - size), e)); start += step
    return res
n = 0
with rasterio.open(src) as ds:
    for y0, y1 in spans(ds.height):
        for x0, x1 in spans(ds.width):
            a = ds.read([1, 2, 3], window=Window(x0, y0, x1 - x0, y1 - y0))
            Image.fromarray(a.transpose(1, 2, 0)).save(f"{out}/{x0}_{y0}_{x1}_{y1}.jpg", quality=90)
            n += 1
print(n)
`;

/** A Python with rasterio and PIL, or why there is none. */
function findPython(): { python: string } | { missing: string } {
  for (const python of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(python, ['-c', 'import rasterio, PIL'], { encoding: 'utf8' });
    if (r.status === 0) return { python };
  }
  return { missing: 'no python3 with rasterio and PIL (apt-get install python3-rasterio python3-pil)' };
}

/** An 8-bit RGB GeoTIFF of `size` px, made from the generated 4-band scene by `geobatch rgb`. */
async function rgbScene(size: number): Promise<string> {
  const path = join(benchDataDir, `scene-${size}-rgb8.tif`);
  if (!existsSync(path)) await convertToRgb(createStorage(), await generatedScene(size), path, {});
  return path;
}

function chipsPerSecond(chips: number, m: Measured): string {
  return `${(chips / m.seconds).toFixed(0).padStart(6)} chips/s`;
}

async function geobatchSlice(input: string, out: string): Promise<{ m: Measured; chips: number }> {
  await rm(out, { recursive: true, force: true });
  const m = await measure(process.execPath, [
    '--import',
    'tsx',
    join(repo, 'bin/geobatch.ts'),
    'chip',
    'slice',
    '--images',
    input,
    '--out',
    out,
    '--quality',
    '90',
    '--json',
  ]);
  const chips = (JSON.parse(m.stdout) as { chips: number }).chips;
  await rm(out, { recursive: true, force: true });
  return { m, chips };
}

function planningBench(): void {
  const size = 6000;
  let seed = 42;
  const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const annotations = Array.from({ length: 2000 }, () => ({
    category_id: 1,
    bbox: [
      Math.floor(rand() * (size - 120)),
      Math.floor(rand() * (size - 120)),
      20 + Math.floor(rand() * 100),
      20 + Math.floor(rand() * 100),
    ],
  }));
  const prepared = prepareAnnotations(annotations, 'bench').annotations;
  const windows = sliceWindows(size, size, 300, 0.2);
  const run = (index: BoxIndex): { ms: number; kept: number; positives: number } => {
    const started = performance.now();
    let kept = 0;
    let positives = 0;
    for (const w of windows) {
      const n = sliceAnnotations(prepared, index, w, 0.1).length;
      kept += n;
      if (n) positives++;
    }
    return { ms: performance.now() - started, kept, positives };
  };
  const brute = new BoxIndex(1e12);
  prepared.forEach((a) => brute.insert(a.bounds));
  // a first pass of each warms the JIT; the second is reported
  run(indexAnnotations(prepared, 300));
  run(brute);
  const indexed = run(indexAnnotations(prepared, 300));
  const all = run(brute);
  console.log(
    `chip slice planning: ${size} px scene, 2,000 annotations, ${windows.length} windows -> ${indexed.kept} kept in ${indexed.positives} slices`,
  );
  console.log(
    `  spatial index (grid of 300 px cells)            ${(indexed.ms / 1000).toFixed(3)} s   (target < 6 s)`,
  );
  console.log(`  every annotation against every window (SAHI)   ${(all.ms / 1000).toFixed(3)} s`);
}

/** Runs the benchmark and prints its figures. */
export async function benchChipSlice(): Promise<void> {
  console.log(`chip slice: generating inputs under ${benchDataDir} (kept for later runs)`);
  const input = await rgbScene(SIZE);
  const ours = await geobatchSlice(input, join(benchDataDir, 'chip-slice-out'));
  console.log(
    `chip slice on a generated ${SIZE} x ${SIZE} 8-bit RGB GeoTIFF (300 px, overlap 0.2, JPEG q90)`,
  );
  console.log(
    `  geobatch chip slice (bands of rows, 8 encodes in flight)   ${formatMeasured(ours.m)} ${chipsPerSecond(ours.chips, ours.m)}`,
  );
  const py = findPython();
  if ('missing' in py) {
    console.log(`  Python rasterio + PIL loop: skipped (${py.missing})`);
  } else {
    const out = join(benchDataDir, 'chip-slice-py');
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    const m = await measure(py.python, ['-c', PYTHON_LOOP, input, out, '300', '0.2']);
    const chips = (await readdir(out)).length;
    await rm(out, { recursive: true, force: true });
    console.log(
      `  Python rasterio + PIL loop (same windows)                 ${formatMeasured(m)} ${chipsPerSecond(chips, m)}`,
    );
    console.log(`  speed-up: ${(m.seconds / ours.m.seconds).toFixed(2)}x   (target >= 1.5x)`);
  }
  planningBench();
  if (BIG > 0) {
    const big = await geobatchSlice(await rgbScene(BIG), join(benchDataDir, 'chip-slice-big'));
    console.log(`chip slice on a generated ${BIG} x ${BIG} 8-bit RGB GeoTIFF (peak RSS target: under 1 GB)`);
    console.log(`  geobatch chip slice   ${formatMeasured(big.m)} ${chipsPerSecond(big.chips, big.m)}`);
  } else {
    console.log('  (40,000 px scene skipped: set BENCH_CHIP_BIG=40000 to run it)');
  }
}
