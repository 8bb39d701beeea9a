/**
 * `chip slice` on several cores: the bands of windows of one image are split into contiguous
 * runs, one per worker thread; each worker opens the image itself (local file or S3 byte ranges,
 * with the scene's statistics computed once here), decodes only its rows and writes its chips
 * with the same code as the single-threaded path (slice-bands.ts), so the files are identical.
 * A single thread spends ~40 % of its time converting blocks to 8-bit and ~20 % issuing encodes
 * and writes (10,000 px bench scene); workers spread that over more cores.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { LabelError } from '../labels/errors.js';
import { RasterError } from '../raster/errors.js';
import type { RgbChannelMaps } from '../raster/rgb.js';
import type { Stretch } from '../raster/stretch.js';
import type { CreateStorageOptions } from '../storage/index.js';
import type { ChipOutput, PlannedBand } from './slice-bands.js';
import type { SliceResample } from './slice-resample.js';

/** What one worker does (structured-cloneable). */
export interface SliceWorkerTask {
  readonly storage: CreateStorageOptions;
  readonly uri: string;
  readonly open: {
    readonly bands?: readonly number[];
    readonly stretch?: Stretch;
    readonly bandBytes?: number;
    readonly maps?: RgbChannelMaps;
    readonly resample?: SliceResample;
  };
  readonly bands: readonly PlannedBand[];
  readonly output: ChipOutput;
}

/** Messages from a worker. */
export type SliceWorkerMessage =
  | { readonly type: 'band'; readonly chips: number }
  /** Every chip of the task's band with this index is written. */
  | { readonly type: 'written'; readonly band: number }
  | { readonly type: 'done' }
  | { readonly type: 'error'; readonly name: string; readonly message: string; readonly code?: unknown };

/**
 * Worker threads `chip slice` uses by default: half the cores, at most 4. One thread already keeps
 * about two cores busy (its own converting blocks, libuv's pool inflating blocks and encoding
 * JPEGs): on 2 cores a second thread only added overhead (RGB bench scene: 5.2 s on one thread,
 * 6.2 s on two; uint16 with stretch: 9.8 s and 9.2 s).
 */
export function defaultSliceWorkers(cores = availableParallelism()): number {
  return Math.max(1, Math.min(4, Math.floor(cores / 2)));
}

/**
 * Splits bands into at most `parts` contiguous runs with about the same number of chips each
 * (never an empty run).
 */
export function splitBands(bands: readonly PlannedBand[], parts: number): PlannedBand[][] {
  const total = bands.reduce((n, b) => n + b.chips.length, 0);
  const runs: PlannedBand[][] = [];
  let chips = 0;
  for (const band of bands) {
    const target = Math.floor((total * (runs.length || 1)) / parts);
    const run = runs[runs.length - 1];
    if (!run || (chips >= target && runs.length < parts && run.length > 0)) runs.push([band]);
    else run.push(band);
    chips += band.chips.length;
  }
  return runs;
}

/** The worker entry: the compiled .js next to this module, or the .ts source when run through tsx. */
function startWorker(task: SliceWorkerTask): Worker {
  const source = import.meta.url.endsWith('.ts');
  const entry = new URL(source ? './slice-worker.ts' : './slice-worker.js', import.meta.url);
  if (!source) return new Worker(entry, { workerData: task });
  // tsx's loader does not reach worker threads by itself on Node 20: register it in the worker
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`,
    { eval: true, workerData: task },
  );
}

/** The error a worker reported, as the class it was thrown as where the class is known. */
function reviveError(message: Extract<SliceWorkerMessage, { type: 'error' }>): Error {
  if (message.name === 'RasterError') return new RasterError(message.message);
  if (message.name === 'LabelError') return new LabelError(message.message);
  if (message.name === 'AbortError') return new DOMException(message.message, 'AbortError');
  const error = new Error(message.message);
  error.name = message.name;
  if (message.code !== undefined) (error as Error & { code?: unknown }).code = message.code;
  return error;
}

/**
 * Runs the tasks in worker threads at once; `onBand` gets each band's chip count as it is queued,
 * `onWritten` each band whose chips are all written (task index, band index in the task).
 * The first failure stops the other workers (they finish the chips in flight, then stop) and is
 * rethrown; an abort of `signal` stops them all.
 */
export async function runSliceWorkers(
  tasks: readonly SliceWorkerTask[],
  hooks: {
    readonly onBand?: (chips: number) => void;
    readonly onWritten?: (task: number, band: number) => void;
    readonly signal?: AbortSignal;
  } = {},
): Promise<void> {
  const { onBand, onWritten, signal } = hooks;
  signal?.throwIfAborted();
  const workers = tasks.map(startWorker);
  let failure: Error | undefined;
  const stopAll = (): void => {
    for (const w of workers) w.postMessage('stop');
  };
  signal?.addEventListener('abort', stopAll, { once: true });
  try {
    await Promise.all(
      workers.map(
        (worker, task) =>
          new Promise<void>((resolve) => {
            let finished = false;
            worker.on('message', (message: SliceWorkerMessage) => {
              if (message.type === 'band') onBand?.(message.chips);
              else if (message.type === 'written') onWritten?.(task, message.band);
              else if (message.type === 'done') finished = true;
              else {
                failure ??= reviveError(message);
                stopAll();
              }
            });
            worker.on('error', (error) => {
              failure ??= error;
              stopAll();
            });
            worker.on('exit', (code) => {
              if (!finished && !failure)
                failure = new Error(`a chip slice worker stopped (exit code ${code})`);
              resolve();
            });
          }),
      ),
    );
  } finally {
    signal?.removeEventListener('abort', stopAll);
  }
  signal?.throwIfAborted();
  if (failure) throw failure;
}
