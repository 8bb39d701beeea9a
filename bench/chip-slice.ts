/**
 * `geobatch chip slice` on a generated 10,000 px square 8-bit RGB GeoTIFF (1,764 chips of 300 px
 * at overlap 0.2, JPEG quality 90), with worker threads and on one thread, beside a Python
 * rasterio + PIL loop over the same windows; the
 * same on the 4-band uint16 scene with the rgb stretch applied on the fly (Python: rasterio +
 * numpy percentiles + PIL); the planning of a 6,000 px scene with 2,000 annotations, with the
 * spatial index and with SAHI's every-annotation-against-every-window test; the bytes read from
 * S3 (s3rver) to chip one 512 px window of a 4,096 px COG. BENCH_CHIP_BIG=40000 adds a 40,000 px
 * uint16 scene (peak RSS). The Python side is skipped with a message when rasterio or PIL is
 * missing (apt python3-rasterio python3-pil).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { sliceImages } from '../lib/chip/slice-images.js';
import { BoxIndex } from '../lib/labels/box-index.js';
import { prepareAnnotations, sliceAnnotations, sliceWindows, indexAnnotations } from '../lib/labels/slice.js';
import { convertToRgb } from '../lib/raster/rgb.js';
import { createStorage } from '../lib/storage/index.js';
import { countingStorage } from '../test/helpers/counting-storage.js';
import { startS3rver } from '../test/helpers/s3rver.js';
import { benchDataDir, generatedScene } from './generated-scene.js';
import { formatMeasured, measure, type Measured } from './measure.js';

const repo = resolve(import.meta.dirname, '..');
const SIZE = Number(process.env.BENCH_CHIP_SIZE ?? 10_000);
const BIG = Number(process.env.BENCH_CHIP_BIG ?? 0);

// the windows of lib/labels/slice.ts (SAHI 0.11) for the Python loops, which read with
// rasterio and write with PIL
const PYTHON_WINDOWS = `
import sys, rasterio, numpy as np
from rasterio.windows import Window
from PIL import Image
src, out, size, overlap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def spans(extent):
    step = size - int(overlap * size); res = []; start = 0; end = 0
    while end < extent:
        end = start + size; e = min(extent, end); res.append((max(0, e - size), e)); start += step
    return res
n = 0
`;

const PYTHON_LOOP = `${PYTHON_WINDOWS}with rasterio.open(src) as ds:
    for y0, y1 in spans(ds.height):
        for x0, x1 in spans(ds.width):
            a = ds.read([1, 2, 3], window=Window(x0, y0, x1 - x0, y1 - y0))
            Image.fromarray(a.transpose(1, 2, 0)).save(f"{out}/{x0}_{y0}_{x1}_{y1}.jpg", quality=90)
            n += 1
print(n)
`;

// the same windows on a 4-band uint16 scene: bands 3,2,1, percentiles 2-98 of valid pixels of a
// decimated read (once per scene), no-data 0 kept as 0, as geobatch rgb / chip slice do
const PYTHON_STRETCH_LOOP = `${PYTHON_WINDOWS}with rasterio.open(src) as ds:
    f = max(1, ds.width // 2048)
    s = ds.read([3, 2, 1], out_shape=(3, ds.height // f, ds.width // f)).astype(np.float64)
    valid = ~np.all(s == 0, axis=0)
    lo = [np.percentile(b[valid], 2) for b in s]; hi = [np.percentile(b[valid], 98) for b in s]
    scale = np.array([254.0 / (h - l) for l, h in zip(lo, hi)])[:, None, None]
    offset = np.array([1 - l * 254.0 / (h - l) for l, h in zip(lo, hi)])[:, None, None]
    for y0, y1 in spans(ds.height):
        for x0, x1 in spans(ds.width):
            a = ds.read([3, 2, 1], window=Window(x0, y0, x1 - x0, y1 - y0))
            v = np.clip(np.floor(a * scale + offset + 0.5), 1, 255).astype(np.uint8)
            v[:, np.all(a == 0, axis=0)] = 0
            Image.fromarray(v.transpose(1, 2, 0)).save(f"{out}/{x0}_{y0}_{x1}_{y1}.jpg", quality=90)
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

/**
 * The compiled CLI, as `npx geobatch` runs it, built from the current sources once per bench
 * run: through tsx every run would also pay ~2 s of CPU compiling TypeScript, which the Python
 * side does not pay.
 */
let builtCli: string | undefined;
function cli(): string {
  if (builtCli) return builtCli;
  const build = spawnSync('npm', ['run', '--silent', 'build'], { cwd: repo, stdio: 'inherit' });
  if (build.status !== 0) throw new Error(`npm run build failed (exit ${build.status})`);
  builtCli = join(repo, 'dist/bin/geobatch.js');
  return builtCli;
}

async function geobatchSlice(
  input: string,
  out: string,
  extra: readonly string[] = [],
): Promise<{ m: Measured; chips: number; threads: number }> {
  await rm(out, { recursive: true, force: true });
  const m = await measure(process.execPath, [
    cli(),
    'chip',
    'slice',
    '--images',
    input,
    '--out',
    out,
    '--quality',
    '90',
    ...extra,
    '--json',
  ]);
  const { chips, threads } = JSON.parse(m.stdout) as { chips: number; threads: number };
  await rm(out, { recursive: true, force: true });
  return { m, chips, threads };
}

function threadsOf(run: { threads: number }): string {
  return run.threads === 1 ? 'one thread' : `${run.threads} worker threads`;
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
  // the other choice of threads beside the default: two workers where the default is one thread
  const otherWorkers = ours.threads === 1 ? 2 : 1;
  const other = await geobatchSlice(input, join(benchDataDir, 'chip-slice-out'), [
    '--workers',
    String(otherWorkers),
  ]);
  const label = (text: string): string => `  ${text}`.padEnd(62);
  console.log(
    `chip slice on a generated ${SIZE} x ${SIZE} 8-bit RGB GeoTIFF (300 px, overlap 0.2, JPEG q90)`,
  );
  console.log(
    `${label(`geobatch chip slice (built CLI, default: ${threadsOf(ours)})`)}${formatMeasured(ours.m)} ${chipsPerSecond(ours.chips, ours.m)}`,
  );
  console.log(
    `${label(`geobatch chip slice --workers ${otherWorkers} (${threadsOf(other)})`)}${formatMeasured(other.m)} ${chipsPerSecond(other.chips, other.m)}`,
  );
  const py = findPython();
  const python = async (script: string, scene: string): Promise<Measured | undefined> => {
    if ('missing' in py) {
      console.log(`  Python rasterio + PIL loop: skipped (${py.missing})`);
      return undefined;
    }
    const out = join(benchDataDir, 'chip-slice-py');
    await rm(out, { recursive: true, force: true });
    await mkdir(out, { recursive: true });
    const m = await measure(py.python, ['-c', script, scene, out, '300', '0.2']);
    const chips = (await readdir(out)).length;
    await rm(out, { recursive: true, force: true });
    console.log(
      `${'  Python loop over the same windows'.padEnd(62)}${formatMeasured(m)} ${chipsPerSecond(chips, m)}`,
    );
    return m;
  };
  const pyRgb = await python(PYTHON_LOOP, input);
  if (pyRgb) {
    console.log(
      `  speed-up: ${(pyRgb.seconds / ours.m.seconds).toFixed(2)}x   (target >= 1.5x); --workers ${otherWorkers}: ${(pyRgb.seconds / other.m.seconds).toFixed(2)}x`,
    );
  }

  const scene16 = await generatedScene(SIZE);
  const ours16 = await geobatchSlice(scene16, join(benchDataDir, 'chip-slice-out16'));
  console.log(
    `chip slice on the generated ${SIZE} x ${SIZE} 4-band uint16 GeoTIFF, rgb stretch on the fly (bands 3,2,1, percentile 2-98)`,
  );
  console.log(
    `${`  geobatch chip slice (LUT stretch, ${threadsOf(ours16)})`.padEnd(62)}${formatMeasured(ours16.m)} ${chipsPerSecond(ours16.chips, ours16.m)}`,
  );
  const py16 = await python(PYTHON_STRETCH_LOOP, scene16);
  if (py16) console.log(`  speed-up: ${(py16.seconds / ours16.m.seconds).toFixed(2)}x`);

  planningBench();
  await s3WindowBench();
  if (BIG > 0) {
    const big = await geobatchSlice(await generatedScene(BIG), join(benchDataDir, 'chip-slice-big'));
    console.log(
      `chip slice on a generated ${BIG} x ${BIG} 4-band uint16 GeoTIFF, stretch on the fly (peak RSS target: under 1 GB)`,
    );
    console.log(`  geobatch chip slice   ${formatMeasured(big.m)} ${chipsPerSecond(big.chips, big.m)}`);
  } else {
    console.log('  (40,000 px scene skipped: set BENCH_CHIP_BIG=40000 to run it)');
  }
}

/** Bytes read from s3rver to chip one 512 px window of a 4,096 px 8-bit RGB COG (tiled 512). */
async function s3WindowBench(): Promise<void> {
  const cog = await rgbScene(4096);
  const size = (await readFile(cog)).length;
  const server = await startS3rver();
  try {
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(benchDataDir, 's3-cache') });
    const bucket = await server.createBucket();
    const uri = `s3://${bucket}/scene.tif`;
    await s3.writeAtomic(uri, await readFile(cog));
    const counted = countingStorage(s3);
    const started = performance.now();
    await sliceImages(counted.storage, {
      images: uri,
      out: `s3://${bucket}/chips`,
      size: 512,
      overlap: 0,
      windowGrid: { rows: [3, 4], cols: [3, 4] },
    });
    const seconds = (performance.now() - started) / 1000;
    const read = counted.bytes();
    console.log(`chip slice: one 512 px window of a 4,096 px 8-bit RGB COG on S3 (s3rver), tiled 512`);
    console.log(
      `  bytes read ${(read / 1024).toFixed(0)} KiB of ${(size / 1024).toFixed(0)} KiB (${((100 * read) / size).toFixed(1)} %) in ${seconds.toFixed(2)} s`,
    );
  } finally {
    await server.stop();
  }
}
