/**
 * The model bundle a training run writes next to model.onnx (`bundleSchema`, lib/predict/bundle.ts):
 * what the ONNX file itself declares (input size, batch axis, output names, read back with
 * onnxruntime), the dataset's classes in the trainer's order, how the chips were made (windows
 * and band conversion: the caller's provenance, else the defaults below) and the score threshold
 * chosen on validation (lib/train/threshold.ts for detection).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUNDLE_FORMAT, bundleSchema, type ModelBundle } from '../predict/bundle.js';
import type { TrainerConfig } from './config.js';
import type { PreparedDataset } from './dataset.js';
import { TrainError } from './errors.js';
import type { MetricsFile } from './model-card.js';
import { detectionThreshold, MAX_THRESHOLD_IMAGES } from './threshold.js';

/** How the training chips were made: the windows they were cut with and how scenes became 8-bit RGB. */
export interface ChipProvenance {
  readonly windows: ModelBundle['windows'];
  readonly conversion: ModelBundle['conversion'];
}

/** What a caller knows of how the chips were made; the rest takes the defaults. */
export interface ProvenanceOptions {
  /** @default the input size, overlap {@link DEFAULT_WINDOW_OVERLAP} */
  readonly windows?: { readonly size?: number; readonly overlap?: number };
  /** @default {@link UNKNOWN_CONVERSION} */
  readonly conversion?: ModelBundle['conversion'];
}

/** Overlap of the default windows (the chip job's default). */
export const DEFAULT_WINDOW_OVERLAP = 0.2;

/** The conversion recorded when nothing says how the chips were made. */
export const UNKNOWN_CONVERSION: ModelBundle['conversion'] = {
  sourceBands: null,
  sourceType: null,
  bands: null,
  stretch: null,
  description: '8-bit RGB chips taken as they were (how the chips were made was not recorded)',
};

/** Windows of the input size with the chip job's default overlap, and chips taken as 8-bit RGB. */
export function defaultProvenance(imageSize: number): ChipProvenance {
  return { windows: { size: imageSize, overlap: DEFAULT_WINDOW_OVERLAP }, conversion: UNKNOWN_CONVERSION };
}

/** What model.onnx declares: input name and shape [B, 3, S, S], output names. */
export interface OnnxSignature {
  readonly input: string;
  /** A fixed batch, or null for a dynamic (named) axis. */
  readonly batch: number | null;
  readonly size: number;
  readonly outputs: readonly string[];
}

/** Reads the signature of an ONNX model with onnxruntime-node (loads it; runs nothing). */
export async function readOnnxSignature(path: string): Promise<OnnxSignature> {
  const ort = await import('onnxruntime-node');
  let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  try {
    session = await ort.InferenceSession.create(path);
  } catch (error) {
    throw new TrainError('onnx', `${path}: onnxruntime cannot load it: ${(error as Error).message}`);
  }
  try {
    const meta = session.inputMetadata[0];
    const shape = meta?.isTensor ? meta.shape : [];
    const [batch, channels, height, width] = shape;
    if (
      shape.length !== 4 ||
      channels !== 3 ||
      typeof height !== 'number' ||
      height !== width ||
      (typeof batch === 'number' && batch < 1)
    ) {
      throw new TrainError(
        'onnx',
        `${path}: input '${meta?.name ?? '?'}' has shape [${shape.join(', ')}], expected [batch, 3, S, S] with a fixed S`,
      );
    }
    return {
      input: meta!.name,
      batch: typeof batch === 'number' ? batch : null,
      size: height,
      outputs: [...session.outputNames],
    };
  } finally {
    await session.release();
  }
}

export interface ScoreThreshold {
  readonly scoreThreshold: number | null;
  readonly thresholdFrom: string;
}

export interface BuildBundleInput {
  readonly config: TrainerConfig;
  readonly dataset: PreparedDataset;
  /** metrics.json as completed by the harness. */
  readonly metrics: MetricsFile;
  /** The trainer's output folder, with model.onnx. */
  readonly outputDir: string;
  /** @default {@link defaultProvenance} of the input size */
  readonly provenance?: ProvenanceOptions;
  /** Validation images the detection threshold runs on at most. @default {@link MAX_THRESHOLD_IMAGES} */
  readonly maxThresholdImages?: number;
  /** @default now */
  readonly createdAt?: Date;
  readonly signal?: AbortSignal;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** The score threshold of the task (see the module comment). */
export async function scoreThresholdFor(input: BuildBundleInput, size: number): Promise<ScoreThreshold> {
  const { config, dataset, metrics } = input;
  if (config.task === 'segmentation') return { scoreThreshold: null, thresholdFrom: 'argmax: no threshold' };
  if (config.task === 'classification') {
    const t = num(metrics.threshold) ?? num(metrics.final['threshold']);
    if (t === undefined)
      return { scoreThreshold: 0.5, thresholdFrom: 'default 0.5: the trainer recorded no threshold' };
    const f1 = num(metrics.final['f1Samples']);
    return {
      scoreThreshold: t,
      thresholdFrom: `max sample F1 on ${dataset.splits.val.images} validation chips, the trainer's search${f1 !== undefined ? ` (F1 ${f1.toFixed(2)})` : ''}`,
    };
  }
  const d = dataset.data;
  const chosen = await detectionThreshold({
    onnx: join(input.outputDir, 'model.onnx'),
    val: join(d.root, d.val),
    imagesDir: join(d.root, d.imagesDir),
    classIds: config.classes.map((c) => c.id),
    size,
    maxImages: input.maxThresholdImages ?? MAX_THRESHOLD_IMAGES,
    ...(input.signal ? { signal: input.signal } : {}),
  });
  return { scoreThreshold: chosen.scoreThreshold, thresholdFrom: chosen.thresholdFrom };
}

/** The input size the trainer used: metrics.json's config, else the trainer config's. */
export function trainedImageSize(config: TrainerConfig, metrics: MetricsFile): number | undefined {
  const fromMetrics = num((metrics as { config?: Record<string, unknown> }).config?.['imageSize']);
  return fromMetrics ?? config.imageSize ?? undefined;
}

/** The output name of the embedding the trainer exports (jobs/train/geobatch_trainer/export.py). */
export const EMBEDDING_OUTPUT = 'embedding';

/**
 * The embedding of model.onnx, when it has the output: its length, from the trainer's check of it
 * (onnx-check.json, shape [1, dim], which the ONNX check has just compared with onnxruntime's).
 */
export async function embeddingOf(
  outputDir: string,
  signature: OnnxSignature,
): Promise<ModelBundle['embedding']> {
  if (!signature.outputs.includes(EMBEDDING_OUTPUT)) return undefined;
  const path = join(outputDir, 'onnx-check.json');
  const check = JSON.parse(await readFile(path, 'utf8')) as {
    outputs?: { name?: unknown; shape?: unknown }[];
  };
  const shape = check.outputs?.find((o) => o.name === EMBEDDING_OUTPUT)?.shape;
  const dim = Array.isArray(shape) && shape.length === 2 ? shape[1] : undefined;
  if (!Number.isInteger(dim) || (dim as number) < 1) {
    throw new TrainError(
      'onnx',
      `${path}: the '${EMBEDDING_OUTPUT}' output has shape ${JSON.stringify(shape)}, expected [1, dim]`,
    );
  }
  return { output: EMBEDDING_OUTPUT, dim: dim as number };
}

/** Builds and checks the bundle of a finished run (reads model.onnx; detection runs it on validation). */
export async function buildBundle(input: BuildBundleInput): Promise<ModelBundle> {
  const { config, metrics } = input;
  const onnxPath = join(input.outputDir, 'model.onnx');
  const signature = await readOnnxSignature(onnxPath);
  const trained = trainedImageSize(config, metrics);
  if (trained !== undefined && trained !== signature.size) {
    throw new TrainError(
      'onnx',
      `${onnxPath}: input size ${signature.size}, but the trainer trained at imageSize ${trained}`,
    );
  }
  const known = input.provenance ?? {};
  const defaults = defaultProvenance(signature.size);
  const provenance: ChipProvenance = {
    windows: {
      size: known.windows?.size ?? defaults.windows.size,
      overlap: known.windows?.overlap ?? defaults.windows.overlap,
    },
    conversion: known.conversion ?? defaults.conversion,
  };
  const threshold = await scoreThresholdFor(input, signature.size);
  const embedding = await embeddingOf(input.outputDir, signature);
  const bundle: ModelBundle = {
    format: BUNDLE_FORMAT,
    version: 1,
    task: config.task,
    model: config.model,
    onnx: 'model.onnx',
    // the trainer's order: class index k is label k + 1 (data.py's index_of)
    classes: config.classes.map((c) => ({ id: c.id, name: c.name })),
    input: {
      name: signature.input,
      size: signature.size,
      batch: signature.batch,
      range: [0, 1],
      layout: 'NCHW',
      resize: 'bilinear',
      normalization: 'inside the model (ImageNet mean and std)',
    },
    outputs: [...signature.outputs],
    ...(embedding ? { embedding } : {}),
    windows: provenance.windows,
    conversion: provenance.conversion,
    scoreThreshold: threshold.scoreThreshold,
    thresholdFrom: threshold.thresholdFrom,
    metrics: metrics.final,
    createdAt: (input.createdAt ?? new Date()).toISOString(),
  };
  const parsed = bundleSchema.safeParse(bundle);
  if (!parsed.success) {
    // a bug of ours or a bad provenance from the caller: never write a bundle predict would refuse
    throw new TrainError(
      'config',
      `bundle.json would not be valid: ${parsed.error.issues.map((i) => `'${i.path.join('.')}': ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}
