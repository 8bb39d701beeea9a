/**
 * An ONNX Runtime session for a model bundle's ONNX file. onnxruntime-node is imported lazily,
 * on the first session, so the control plane (which never predicts) does not load its native
 * library. The execution provider is CUDA when asked for and present (the GPU image installs
 * its CUDA parts), else the CPU one; which one runs is said once in a log line.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import type * as OrtModule from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import type { LoadedBundle } from './bundle.js';
import { PredictError } from './errors.js';
import type { Storage } from '../storage/types.js';

export type Device = 'cpu' | 'cuda';
export const DEVICES: readonly Device[] = ['cpu', 'cuda'];

/** Images per run when the model's batch axis is dynamic and none is asked for. */
export const DEFAULT_BATCH = 8;

export interface SessionOptions {
  /** @default GEOBATCH_DEVICE, else 'cpu' */
  readonly device?: Device;
  /** Images per run; ignored when the bundle fixes the batch. @default 8 */
  readonly batch?: number;
  /**
   * Runs in flight at once. @default 2 when the model's batch is fixed at 1 (two one-image runs
   * on one thread each beat one run on two threads: 147 vs 266 ms per 320 px detection window
   * on 2 cores), else 1
   */
  readonly concurrency?: number;
  /** Intra-op threads per run. @default the cores / concurrency */
  readonly threads?: number;
  /**
   * ONNX Runtime's CPU memory arena: it keeps the largest run's activations for the session's
   * life (faster runs) instead of freeing them after each run. Off saves memory at some speed: a
   * 128 px U-Net at batch 8 across a 40,000 px scene peaked at 718 vs 487 MiB, at 27.9 vs 22.2
   * windows/s, on 2 cores. @default true
   */
  readonly memoryArena?: boolean;
  /** Where the line saying which provider runs goes. @default nowhere */
  readonly log?: (line: string) => void;
  readonly signal?: AbortSignal;
}

/** The outputs of one run, by name, as flat float32 (int64 labels converted). */
export type RunOutputs = Record<string, { readonly data: Float32Array; readonly dims: readonly number[] }>;

/** A session that runs batches of float32 NCHW images. */
export interface ModelSession {
  /** The execution provider that runs ('cuda' or 'cpu'). */
  readonly device: Device;
  /** Images per run. */
  readonly batch: number;
  /** Whether the batch is the model's fixed one (1 for the detection export). */
  readonly fixedBatch: boolean;
  /** Runs worth having in flight at once (each on its share of the threads). */
  readonly concurrency: number;
  /** Runs made so far (each is one call of the model). */
  readonly runs: number;
  /** Runs `count` images of `size` x `size` (float32 [count, 3, size, size], count <= batch). */
  run(images: Float32Array, count: number): Promise<RunOutputs>;
  close(): Promise<void>;
}

type Ort = typeof OrtModule;
let ortModule: Promise<Ort> | undefined;

function loadOrt(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

/** Whether onnxruntime-node was installed with its CUDA execution provider (its shared library is there). */
export function cudaAvailable(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = join(root, 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(dir, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

/** The device asked for: the option, else GEOBATCH_DEVICE, else the CPU. */
export function requestedDevice(device?: Device): Device {
  if (device) return device;
  const env = process.env.GEOBATCH_DEVICE?.trim().toLowerCase();
  if (env === undefined || env === '') return 'cpu';
  if (env === 'cpu' || env === 'cuda' || env === 'gpu') return env === 'cpu' ? 'cpu' : 'cuda';
  throw new PredictError(`GEOBATCH_DEVICE=${process.env.GEOBATCH_DEVICE}: expected cpu or cuda`);
}

function toFloat32(tensor: Tensor): Float32Array {
  const data = tensor.data;
  if (data instanceof Float32Array) return data;
  if (data instanceof BigInt64Array) return Float32Array.from(data, (v) => Number(v));
  if (Array.isArray(data)) return Float32Array.from(data, (v) => Number(v));
  return Float32Array.from(data as ArrayLike<number>);
}

/** Opens a session for a bundle's ONNX (local, or downloaded through the storage cache). */
export async function openSession(
  storage: Storage,
  loaded: LoadedBundle,
  options: SessionOptions = {},
): Promise<ModelSession> {
  const asked = requestedDevice(options.device);
  let cuda = asked === 'cuda' && cudaAvailable();
  const cores = availableParallelism();
  const concurrency = Math.max(
    1,
    Math.floor(options.concurrency ?? (loaded.bundle.input.batch === 1 && cores >= 2 ? 2 : 1)),
  );
  const threads = options.threads ?? Math.max(1, Math.floor(cores / concurrency));
  const path = await storage.localPath(loaded.onnxUri, options.signal ? { signal: options.signal } : {});
  const ort = await loadOrt();
  const create = (providers: string[]): Promise<InferenceSession> =>
    ort.InferenceSession.create(path, {
      executionProviders: providers,
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      // the outputs are the same either way (SessionOptions.memoryArena)
      enableCpuMemArena: options.memoryArena ?? true,
      graphOptimizationLevel: 'all',
    });
  let session: InferenceSession | undefined;
  let why = asked === 'cuda' && !cuda ? 'onnxruntime-node has no CUDA execution provider here' : undefined;
  try {
    if (cuda) {
      try {
        session = await create(['cuda', 'cpu']);
      } catch (error) {
        // e.g. no GPU, or the CUDA / cuDNN libraries missing: the CPU still gives the same results
        why = `the CUDA execution provider did not start (${(error as Error).message.split('\n')[0]})`;
        cuda = false;
      }
    }
    session ??= await create(['cpu']);
  } catch (error) {
    throw new PredictError(`${loaded.onnxUri}: cannot load the ONNX model: ${(error as Error).message}`);
  }
  const live = session;
  const device: Device = cuda ? 'cuda' : 'cpu';
  options.log?.(
    why
      ? `predict: CUDA asked for, but ${why}: running on the CPU (${concurrency} x ${threads} threads)`
      : `predict: ONNX Runtime ${device === 'cuda' ? 'CUDA' : `CPU (${concurrency} run(s) of ${threads} thread(s))`} execution provider`,
  );
  const fixed = loaded.bundle.input.batch;
  const batch = fixed ?? Math.max(1, Math.floor(options.batch ?? DEFAULT_BATCH));
  const size = loaded.bundle.input.size;
  const inputName = loaded.bundle.input.name;
  let runs = 0;
  return {
    device,
    batch,
    fixedBatch: fixed !== null,
    concurrency,
    get runs() {
      return runs;
    },
    async run(images: Float32Array, count: number): Promise<RunOutputs> {
      if (count < 1 || count > batch) throw new Error(`ModelSession.run: ${count} images, batch ${batch}`);
      const n = fixed ?? count;
      const plane = 3 * size * size;
      let data = images.subarray(0, n * plane);
      if (data.length < n * plane) {
        const padded = new Float32Array(n * plane);
        padded.set(data);
        data = padded;
      }
      const feeds = { [inputName]: new ort.Tensor('float32', data, [n, 3, size, size]) };
      runs++;
      const result = await live.run(feeds);
      const out: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
      for (const [name, tensor] of Object.entries(result)) {
        out[name] = { data: toFloat32(tensor), dims: tensor.dims };
      }
      return out;
    },
    async close(): Promise<void> {
      await live.release();
    },
  };
}
