/**
 * `npm run bench -- predict` (issue 14, item 6).
 *
 * 1. Inference: windows per second of the model's ONNX in onnxruntime-node (the project's
 *    session, lib/predict/session.ts) against PyTorch eval (torch.inference_mode) of the same
 *    network (the seeded untrained smoke models of test/helpers/onnx-models.ts, whose
 *    state_dict PyTorch loads) on the same windows (cut from a real photo,
 *    ../shared/data/coco/terrain1.jpg, written once as float32 so both sides read identical
 *    tensors), one window per run, threads = cores on both sides, after two warm-up windows,
 *    in alternating rounds of a few windows (the machine may be shared: both sides see its load).
 *    The first window's outputs of the two are compared, to show that it is the same network.
 * 2. predict on generated 3-band uint8 scenes (bench/rgb-scene.ts), each in a child process:
 *    windows per second of the whole predict (reading, converting, inference, merging or
 *    blending, outputs) and the peak resident memory (VmHWM polled from /proc, and the child's
 *    own getrusage maxRSS). See `sceneRuns` for which rows of windows are run.
 *
 * `--quick` (or BENCH_PREDICT_QUICK=1): fewer windows, and the 40,000 px scene only if cached.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { sliceWindows } from '../lib/labels/slice.js';
import { readBundle, type BundleTask } from '../lib/predict/bundle.js';
import { windowInput } from '../lib/predict/input.js';
import { openSession, type ModelSession, type RunOutputs } from '../lib/predict/session.js';
import { createStorage } from '../lib/storage/index.js';
import { pythonPath, trainerDir } from '../lib/train/python.js';
import { DEFAULT_CLASSES, SMOKE_MODEL, untrainedModel } from '../test/helpers/onnx-models.js';
import { benchDataDir } from './generated-scene.js';
import { measure } from './measure.js';
import { classScene, freeBytes, rgbScene } from './rgb-scene.js';

const repo = resolve(import.meta.dirname, '..');
const PHOTO = resolve(repo, '../shared/data/coco/terrain1.jpg');
const TORCH_PYTHON = process.env.BENCH_TORCH_PYTHON ?? '/usr/bin/python3';

// a PyTorch server: loads the network and the windows, warms up, prints the first window's
// outputs, then runs the windows [from, to) of each line it reads and prints the seconds
const TORCH_EVAL = `
import json, sys, time
import numpy as np, torch
from geobatch_trainer.models import build_model
from geobatch_trainer.export import export_module
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
model, _ = build_model(cfg["task"], cfg["model"], cfg["classes"], "none", False, cfg["size"], lambda m: None)
model.load_state_dict(torch.load(cfg["state"], map_location="cpu"))
module = export_module(model, cfg["task"])
s, n = cfg["size"], cfg["windows"]
x = torch.from_numpy(np.fromfile(cfg["input"], dtype="<f4").reshape(n, 1, 3, s, s))
def out(line):
    sys.stdout.write(json.dumps(line) + "\\n")
    sys.stdout.flush()
with torch.inference_mode():
    for i in range(min(2, n)):
        first = module(x[i])
    first = module(x[0])
    first = first if isinstance(first, tuple) else (first,)
    out({"torch": torch.__version__, "threads": torch.get_num_threads(),
         "first": [o.float().flatten().tolist() for o in first], "shapes": [list(o.shape) for o in first]})
    for line in sys.stdin:
        a, b = json.loads(line)
        t0 = time.perf_counter()
        for i in range(a, b):
            module(x[i])
        out({"seconds": time.perf_counter() - t0})
`;

export interface InferenceFigures {
  readonly task: BundleTask;
  readonly model: string;
  readonly size: number;
  readonly windows: number;
  readonly threads: number;
  /** ONNX Runtime as predict runs it: "<runs in flight> x <threads each>". */
  readonly ortRuns: string;
  readonly ortPerSecond: number;
  /** ONNX Runtime one run at a time on every core. */
  readonly ortSinglePerSecond: number;
  readonly torchPerSecond: number | null;
  readonly torchVersion: string | null;
  /** Largest absolute difference of the first window's outputs (null when they cannot be compared). */
  readonly maxDifference: number | null;
  readonly note: string;
}

/** `count` windows of `size` px from the photo, as float32 [count, 3, size, size] in [0, 1]. */
async function photoWindows(size: number, count: number): Promise<{ data: Float32Array; count: number }> {
  const { data, info } = await sharp(PHOTO).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const windows = sliceWindows(info.width, info.height, size, 0.2).slice(0, count);
  const plane = 3 * size * size;
  const out = new Float32Array(windows.length * plane);
  windows.forEach(([x0, y0, x1, y1], i) => {
    const pixels = {
      data: data.subarray((y0 * info.width + x0) * 3),
      width: x1 - x0,
      height: y1 - y0,
      channels: 3,
      stride: info.width,
    };
    windowInput(pixels, size, out, i * plane);
  });
  return { data: out, count: windows.length };
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** onnxruntime-node and PyTorch on the same windows of the same network. */
export async function benchInference(task: BundleTask, count: number): Promise<InferenceFigures> {
  const storage = createStorage();
  const threads = availableParallelism();
  const dir = await untrainedModel({ task, stateDict: true });
  const loaded = await readBundle(storage, dir);
  const size = loaded.bundle.input.size;
  const windows = await photoWindows(size, count);
  const plane = 3 * size * size;
  await mkdir(benchDataDir, { recursive: true });
  const input = join(benchDataDir, `predict-windows-${task}-${size}-${windows.count}.f32`);
  await writeFile(input, Buffer.from(windows.data.buffer, windows.data.byteOffset, windows.data.byteLength));

  const base = { task, model: SMOKE_MODEL[task], size, windows: windows.count, threads };
  const config = {
    task,
    model: SMOKE_MODEL[task],
    classes: DEFAULT_CLASSES.length,
    size,
    state: join(dir, 'model.pt'),
    input,
    windows: windows.count,
    threads,
  };
  const py = spawn(TORCH_PYTHON, ['-c', TORCH_EVAL, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONPATH: pythonPath(trainerDir()) },
  });
  let stderr = '';
  py.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
  const nextLine = async <T>(): Promise<T> => {
    const line = await lines.next();
    if (line.done) throw new Error(`PyTorch side failed: ${stderr.trim().split('\n').pop() ?? 'no output'}`);
    return JSON.parse(line.value) as T;
  };
  // as predict opens it (its default: two one-thread runs in flight for a batch-1 model), and
  // one run at a time on every core, for reference
  const session = await openSession(storage, loaded, { batch: 1 });
  const single = await openSession(storage, loaded, { batch: 1, concurrency: 1, threads });
  let first: RunOutputs | undefined;
  let ortSeconds = 0;
  let singleSeconds = 0;
  let torchSeconds = 0;
  let torch: { torch: string; first: number[][]; shapes: number[][] };
  const runAll = async (s: ModelSession, from: number, to: number): Promise<number> => {
    const t0 = performance.now();
    let next = from;
    const worker = async (): Promise<void> => {
      while (next < to) {
        const i = next++;
        await s.run(windows.data.subarray(i * plane, (i + 1) * plane), 1);
      }
    };
    await Promise.all(Array.from({ length: s.concurrency }, worker));
    return (performance.now() - t0) / 1000;
  };
  try {
    torch = await nextLine();
    for (const s of [session, single]) await runAll(s, 0, Math.min(2 * s.concurrency, windows.count));
    first = await session.run(windows.data.subarray(0, plane), 1);
    // rounds of a few windows, each run by ONNX Runtime then by PyTorch (never both at once), so
    // that load from other processes on the machine falls on both sides alike
    const chunk = Math.max(2, Math.ceil(windows.count / 8));
    for (let from = 0; from < windows.count; from += chunk) {
      const to = Math.min(windows.count, from + chunk);
      ortSeconds += await runAll(session, from, to);
      singleSeconds += await runAll(single, from, to);
      py.stdin.write(JSON.stringify([from, to]) + '\n');
      torchSeconds += (await nextLine<{ seconds: number }>()).seconds;
    }
  } catch (error) {
    return {
      ...base,
      ortRuns: '',
      ortPerSecond: ortSeconds > 0 ? windows.count / ortSeconds : 0,
      ortSinglePerSecond: singleSeconds > 0 ? windows.count / singleSeconds : 0,
      torchPerSecond: null,
      torchVersion: null,
      maxDifference: null,
      note: (error as Error).message,
    };
  } finally {
    py.stdin.end();
    py.kill();
    await session.close();
    await single.close();
  }
  const ortPerSecond = windows.count / ortSeconds;
  const names = loaded.bundle.outputs;
  let maxDifference: number | null = 0;
  let note = '';
  names.forEach((name, k) => {
    const ours = first![name]!;
    const theirs = torch.first[k]!;
    if (ours.data.length !== theirs.length) {
      maxDifference = null;
      note = `${name}: ${ours.dims.join('x')} from ONNX, ${torch.shapes[k]!.join('x')} from PyTorch`;
    } else if (maxDifference !== null) {
      maxDifference = Math.max(maxDifference, maxAbsDifference(ours.data, theirs));
    }
  });
  if (task === 'detection' && !note) note = `${first!.boxes!.dims[0]} boxes on the first window`;
  return {
    ...base,
    ortRuns: `${session.concurrency} x ${Math.max(1, Math.floor(threads / session.concurrency))}`,
    ortPerSecond,
    ortSinglePerSecond: windows.count / singleSeconds,
    torchPerSecond: windows.count / torchSeconds,
    torchVersion: torch.torch,
    maxDifference,
    note,
  };
}

/** A predict run on a generated scene: the whole scene, or a band of rows of windows in its middle. */
export interface SceneRun {
  readonly task: BundleTask;
  /** Scene width and height in pixels. */
  readonly size: number;
  /** Rows of windows to run (at least; a part of the scene's rows), or the whole scene. */
  readonly rowsOfWindows: number | 'all';
}

/**
 * What the benchmark runs. A whole 40,000 px detection pass is about 24,000 windows (hours on two
 * cores), so that scene is measured over a full-width band of rows of windows (predict's `part`):
 * the memory a row-by-row predict needs is that of one row of windows across the whole width,
 * plus what it accumulates over the rows (detections), which a band does not show.
 */
export function sceneRuns(quick: boolean): SceneRun[] {
  return quick
    ? [
        { task: 'detection', size: 10_000, rowsOfWindows: 1 },
        { task: 'detection', size: 40_000, rowsOfWindows: 1 },
        { task: 'segmentation', size: 10_000, rowsOfWindows: 2 },
        { task: 'segmentation', size: 40_000, rowsOfWindows: 1 },
      ]
    : [
        { task: 'detection', size: 10_000, rowsOfWindows: 'all' },
        { task: 'detection', size: 40_000, rowsOfWindows: 2 },
        { task: 'segmentation', size: 10_000, rowsOfWindows: 8 },
        { task: 'segmentation', size: 40_000, rowsOfWindows: 2 },
      ];
}

export interface SceneFigures {
  readonly run: SceneRun;
  /** What was run, in words. */
  readonly what: string;
  readonly windows: number;
  readonly computed: number;
  readonly windowsPerSecond: number;
  readonly wallSeconds: number;
  /** VmHWM polled from /proc while the child ran. */
  readonly peakRssMiB: number | null;
  /** The child's getrusage maxRSS. */
  readonly maxRssMiB: number;
}

interface ChildFigures {
  readonly windows: number;
  readonly rows: number;
  readonly computed: number;
  readonly windowsPerSecond: number;
  readonly maxRssMiB: number;
}

/** Runs predict on a generated scene in a child process and measures it. */
export async function benchScene(run: SceneRun): Promise<SceneFigures> {
  const storage = createStorage();
  const model = await untrainedModel({ task: run.task });
  const bundle = (await readBundle(storage, model)).bundle;
  const scene = await rgbScene(run.size);
  const windows = sliceWindows(run.size, run.size, bundle.windows.size, bundle.windows.overlap);
  const rows = new Set(windows.map((w) => w[1])).size;
  let part: { index: number; count: number } | undefined;
  let what = `whole scene, ${rows} rows of windows`;
  if (run.rowsOfWindows !== 'all' && run.rowsOfWindows < rows) {
    const count = Math.floor(rows / run.rowsOfWindows);
    part = { index: Math.floor(count / 2), count };
    const first = Math.floor((part.index * rows) / count);
    const last = Math.floor(((part.index + 1) * rows) / count);
    what = `rows ${first + 1}-${last} of ${rows} rows of windows (part ${part.index + 1} of ${count}), full width`;
  }
  const child = join(repo, 'bench', 'predict-child.ts');
  const measured = await measure(process.execPath, [
    '--import',
    'tsx',
    child,
    JSON.stringify({ model, scene, ...(part ? { part } : {}) }),
  ]);
  const figures = JSON.parse(measured.stdout.trim().split('\n').pop()!) as ChildFigures;
  if (figures.rows !== rows) what += ` (predict counts ${figures.rows} rows of windows)`;
  return {
    run,
    what,
    windows: figures.windows,
    computed: figures.computed,
    windowsPerSecond: figures.windowsPerSecond,
    wallSeconds: measured.seconds,
    peakRssMiB: measured.peakRssMiB,
    maxRssMiB: figures.maxRssMiB,
  };
}

interface PolygonizeFigures {
  readonly polygons: number;
  readonly rings: number;
  readonly vertices: number;
  readonly seconds: number;
  readonly maxRssMiB: number;
}

/** Prints polygonizeClasses beside gdal_polygonize.py (4-connected, into GDAL's Memory driver) on generated class rasters. */
async function benchPolygonize(sizes: readonly number[]): Promise<void> {
  console.log(
    'polygonize (lib/predict/polygonize.ts) on generated uint8 class rasters (3 classes, blobs with holes), vs gdal_polygonize.py -f Memory',
  );
  console.log(
    `  ${'raster'.padEnd(10)} ${'polygons'.padStart(8)} ${'vertices'.padStart(10)} ${'ours s'.padStart(7)} ${'peak RSS'.padStart(9)} ${'GDAL s'.padStart(7)} ${'GDAL RSS'.padStart(9)}`,
  );
  const gdal = spawnSync('gdal_polygonize.py', ['--help'], { encoding: 'utf8' }).status === 0;
  for (const size of sizes) {
    const path = await classScene(size);
    const ours = await measure(process.execPath, [
      '--import',
      'tsx',
      join(repo, 'bench', 'polygonize-child.ts'),
      path,
    ]);
    const f = JSON.parse(ours.stdout.trim().split('\n').pop()!) as PolygonizeFigures;
    // GDAL keeps every polygon in its Memory layer: its figure is a reference at 10,000 px only
    const theirs =
      gdal && size <= 10_000
        ? await measure('gdal_polygonize.py', ['-q', path, '-f', 'Memory', 'mem', 'out', 'DN'])
        : undefined;
    const peak = Math.max(ours.peakRssMiB ?? 0, f.maxRssMiB);
    console.log(
      `  ${`${size} px`.padEnd(10)} ${String(f.polygons).padStart(8)} ${String(f.vertices).padStart(10)} ${f.seconds.toFixed(1).padStart(7)} ${`${peak.toFixed(0)} MiB`.padStart(9)} ${(theirs ? theirs.seconds.toFixed(1) : '-').padStart(7)} ${(theirs?.peakRssMiB ? `${theirs.peakRssMiB.toFixed(0)} MiB` : '-').padStart(9)}`,
    );
  }
}

function quickMode(): boolean {
  return process.argv.includes('--quick') || process.env.BENCH_PREDICT_QUICK === '1';
}

/** Prints every figure of the predict benchmark. */
export async function benchPredict(): Promise<void> {
  const quick = quickMode();
  if (!existsSync(PHOTO)) {
    console.log(`predict: ${PHOTO} is missing (the shared sample data); inference figures skipped`);
  } else {
    const cores = availableParallelism();
    console.log(
      `predict, inference: onnxruntime-node vs PyTorch eval, same network (seeded smoke model), same windows of terrain1.jpg, ${cores} cores; PyTorch: one window per call on ${cores} threads; ORT: as predict runs it (runs in flight x threads each), and one run at a time on ${cores} threads`,
    );
    console.log(
      `  ${'task'.padEnd(13)} ${'model'.padEnd(38)} ${'px'.padStart(4)} ${'windows'.padStart(7)} ${'ORT runs'.padStart(8)} ${'ORT w/s'.padStart(8)} ${'torch w/s'.padStart(9)} ${'ratio'.padStart(6)} ${`ORT 1x${cores}`.padStart(8)} ${'ratio'.padStart(6)}  max |ORT-torch|, first window`,
    );
    for (const [task, count] of [
      ['detection', quick ? 12 : 48],
      ['segmentation', quick ? 40 : 200],
    ] as const) {
      const r = await benchInference(task, count);
      const ratio = (v: number): string =>
        (r.torchPerSecond === null ? 'n/a' : `${(v / r.torchPerSecond).toFixed(2)}x`).padStart(6);
      console.log(
        `  ${r.task.padEnd(13)} ${r.model.padEnd(38)} ${String(r.size).padStart(4)} ${String(r.windows).padStart(7)} ${r.ortRuns.padStart(8)} ${r.ortPerSecond.toFixed(1).padStart(8)} ${(r.torchPerSecond?.toFixed(1) ?? 'n/a').padStart(9)} ${ratio(r.ortPerSecond)} ${r.ortSinglePerSecond.toFixed(1).padStart(8)} ${ratio(r.ortSinglePerSecond)}  ${r.maxDifference === null ? 'n/a' : r.maxDifference.toExponential(1)}${r.note ? ` (${r.note})` : ''}`,
      );
    }
    console.log(`  goal: ratio >= 1.5x (torch ${'from ' + TORCH_PYTHON})`);
  }
  await benchPolygonize(quick ? [10_000] : [10_000, 40_000]);
  const free = freeBytes(tmpdir());
  console.log(
    `predict on generated 3-band uint8 scenes (tiled 512, DEFLATE; ${benchDataDir}), one child process each, output to a temporary folder`,
  );
  console.log(
    `  ${'task'.padEnd(13)} ${'scene'.padStart(8)} ${'windows'.padStart(7)} ${'run'.padStart(6)} ${'w/s'.padStart(6)} ${'wall s'.padStart(7)} ${'peak RSS'.padStart(9)} ${'maxRSS'.padStart(7)}  what ran`,
  );
  for (const run of sceneRuns(quick)) {
    const path = join(benchDataDir, `scene-${run.size}-rgb-uint8.tif`);
    if (!existsSync(path) && (quick || free < run.size * run.size * 3)) {
      console.log(
        `  ${run.task.padEnd(13)} ${`${run.size} px`.padStart(8)}  skipped: ${quick ? 'not generated yet (run without --quick once)' : `${(free / 1e9).toFixed(1)} GB free under ${tmpdir()}`}`,
      );
      continue;
    }
    const r = await benchScene(run);
    const mib = (v: number | null): string => (v === null ? 'n/a' : `${v.toFixed(0)} MiB`);
    console.log(
      `  ${run.task.padEnd(13)} ${`${run.size} px`.padStart(8)} ${String(r.windows).padStart(7)} ${String(r.computed).padStart(6)} ${r.windowsPerSecond.toFixed(1).padStart(6)} ${r.wallSeconds.toFixed(0).padStart(7)} ${mib(r.peakRssMiB).padStart(9)} ${mib(r.maxRssMiB).padStart(7)}  ${r.what}`,
    );
  }
  console.log(
    '  goal: peak RSS < 1 GB at 40,000 px; w/s = windows computed per second of predict (reading, inference, merging, outputs)',
  );
}
