/**
 * The model bundle: `bundle.json`, written by `train` next to `model.onnx`, says everything
 * prediction needs to apply the model to a new scene exactly as it saw its training chips: the
 * task and classes, the network's input (size, value range, where normalisation happens), the
 * windows the chips were cut with, how the source scenes became 8-bit RGB (bands and stretch),
 * and the score threshold chosen on validation. `predict` refuses a model without one.
 */
import { z } from 'zod';
import type { SampleType } from '../raster/info.js';
import type { Stretch } from '../raster/stretch.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, dirnameUri, joinUri } from '../storage/uri.js';
import { PredictError } from './errors.js';

export const BUNDLE_FILE = 'bundle.json';
export const BUNDLE_FORMAT = 'geobatch-model-bundle';

export type BundleTask = 'detection' | 'segmentation' | 'classification';

const sampleTypes = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'float64'] as const;

const stretchSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('percentile'),
    low: z.number().min(0).max(100),
    high: z.number().min(0).max(100),
  }),
  z.object({ kind: z.literal('minmax') }),
  z.object({
    kind: z.literal('range'),
    ranges: z.array(z.tuple([z.number(), z.number()])).min(1),
  }),
  z.object({ kind: z.literal('none') }),
]);

export const bundleSchema = z
  .object({
    format: z.literal(BUNDLE_FORMAT),
    version: z.literal(1),
    task: z.enum(['detection', 'segmentation', 'classification']),
    /** The trainer's model name, e.g. fasterrcnn_mobilenet_v3_large_320_fpn. */
    model: z.string().min(1),
    /** The ONNX file, relative to the bundle. */
    onnx: z.string().min(1),
    /**
     * Index k of this list is detection label k + 1, segmentation logit channel k + 1 (0 is
     * background) and classification score k; `id` is the COCO category id of the dataset.
     */
    classes: z.array(z.object({ id: z.number().int(), name: z.string().min(1) }).strict()).min(1),
    input: z
      .object({
        name: z.string().min(1),
        /** The network sees size x size pixels: every window is resized to it (bilinear). */
        size: z.number().int().min(1),
        /** Images per run: a fixed batch size, or null when the batch axis is dynamic. */
        batch: z.number().int().min(1).nullable(),
        /** RGB as float32 NCHW in [0, 1]; mean/std normalisation happens inside the model. */
        range: z.tuple([z.literal(0), z.literal(1)]),
        layout: z.literal('NCHW'),
        resize: z.literal('bilinear'),
        normalization: z.string(),
      })
      .strict(),
    outputs: z.array(z.string().min(1)).min(1),
    /**
     * The output with one L2-normalised vector per image (`geobatch embed`): a classifier's pooled
     * backbone features, `dim` long. Absent in bundles written before embeddings were exported,
     * and for detection and segmentation models.
     */
    embedding: z
      .object({ output: z.string().min(1), dim: z.number().int().min(1) })
      .strict()
      .optional(),
    /** The windows the training chips were cut with: predict uses them unless told otherwise. */
    windows: z.object({ size: z.number().int().min(1), overlap: z.number().min(0).lt(1) }).strict(),
    /**
     * How the scenes the chips came from became 8-bit RGB. `sourceBands`/`sourceType` null: the
     * chips were cut from 8-bit RGB images taken as they were.
     */
    conversion: z
      .object({
        sourceBands: z.number().int().min(1).nullable(),
        sourceType: z.enum(sampleTypes).nullable(),
        /** 1-based source bands for R, G, B; null: the default for the band count (as `rgb`). */
        bands: z.array(z.number().int().min(1)).length(3).nullable(),
        /** null: the default for the sample type (none for 8-bit, percentile 2-98 else). */
        stretch: stretchSchema.nullable(),
        /** Where this was found, e.g. "stage rgb: bands 3,2,1, percentile 2-98". */
        description: z.string(),
      })
      .strict(),
    /** Scores below it are dropped by default (detection, classification); null for segmentation. */
    scoreThreshold: z.number().min(0).max(1).nullable(),
    /** How the threshold was chosen, e.g. "max F1 at IoU 0.5 on 12 validation chips". */
    thresholdFrom: z.string(),
    /** The final validation metrics of the training run. */
    metrics: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
  })
  .strict();

export type ModelBundle = z.output<typeof bundleSchema>;

export interface LoadedBundle {
  readonly bundle: ModelBundle;
  /** The bundle.json read. */
  readonly uri: string;
  /** The ONNX file it names. */
  readonly onnxUri: string;
}

/** Where the bundle of a model given as a train folder, its bundle.json or its model.onnx is. */
export function bundleUriOf(model: string): string {
  const name = basenameUri(model);
  if (name === BUNDLE_FILE) return model;
  if (/\.onnx$/i.test(name)) return joinUri(dirnameUri(model), BUNDLE_FILE);
  return joinUri(model, BUNDLE_FILE);
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `'${issue.path.join('.') || '(root)'}': ${issue.message}`).join('; ');
}

/** Reads and checks a model bundle; every problem names the file and the field. */
export async function readBundle(
  storage: Storage,
  model: string,
  options: { readonly signal?: AbortSignal } = {},
): Promise<LoadedBundle> {
  const uri = bundleUriOf(model);
  if (!(await storage.exists(uri, options))) {
    const onnx = joinUri(dirnameUri(uri), 'model.onnx');
    const hasOnnx = await storage.exists(onnx, options);
    throw new PredictError(
      hasOnnx
        ? `${uri}: not found: ${onnx} has no model bundle, so geobatch cannot know its classes, input size, band conversion or score threshold; train it again with geobatch train (or a train stage), which writes ${BUNDLE_FILE}`
        : `${model}: not a trained model: expected a train output folder with ${BUNDLE_FILE} and model.onnx (e.g. runs/<pipeline>/<run>/train)`,
    );
  }
  const text = (await storage.read(uri, options)).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PredictError(`${uri}: not JSON: ${(error as Error).message}`);
  }
  const parsed = bundleSchema.safeParse(json);
  if (!parsed.success) {
    throw new PredictError(`${uri}: not a geobatch model bundle: ${describeIssues(parsed.error)}`);
  }
  const bundle = parsed.data;
  if (bundle.outputs.length === 0) throw new PredictError(`${uri}: 'outputs' is empty`);
  const onnxUri = joinUri(dirnameUri(uri), bundle.onnx);
  if (!(await storage.exists(onnxUri, options))) {
    throw new PredictError(`${uri}: 'onnx' names ${onnxUri}, which does not exist`);
  }
  return { bundle, uri, onnxUri };
}

/** Refuses a model of another task than the one asked for (e.g. a segmentation model for detection eval). */
export function expectTask(loaded: LoadedBundle, task: BundleTask, purpose: string): void {
  if (loaded.bundle.task !== task) {
    throw new PredictError(
      `${loaded.uri}: a ${loaded.bundle.task} model (${loaded.bundle.model}), but ${purpose} needs a ${task} model`,
    );
  }
}

/** What a scene predict reads is made of (its header). */
export interface SceneBands {
  readonly uri: string;
  readonly bands: number;
  readonly dtype: SampleType;
}

/** How to read a scene so that its windows look like the training chips. */
export interface SceneConversion {
  /** 1-based bands for R, G, B, or undefined for the default of the band count. */
  readonly bands?: readonly number[];
  readonly stretch?: Stretch;
  /** One line for logs and summaries. */
  readonly description: string;
}

function describeSource(b: ModelBundle): string {
  const c = b.conversion;
  return c.sourceBands === null
    ? '8-bit RGB images taken as they were'
    : `${c.sourceBands}-band ${c.sourceType ?? ''} scenes`.replace('  ', ' ') + ` (${c.description})`;
}

/**
 * The conversion for a scene: the training scenes' bands and stretch when the scene has as many
 * bands of the same type; as it is when it is already 8-bit RGB (an `rgb` output); else an error
 * that says what the model was trained on.
 */
export function sceneConversion(loaded: LoadedBundle, scene: SceneBands): SceneConversion {
  const b = loaded.bundle;
  const c = b.conversion;
  const rgb8 = scene.dtype === 'uint8' && (scene.bands === 3 || scene.bands === 4);
  if (c.sourceBands !== null && scene.bands === c.sourceBands && scene.dtype === c.sourceType) {
    return {
      ...(c.bands ? { bands: c.bands } : {}),
      ...(c.stretch ? { stretch: c.stretch } : {}),
      description: `as the training scenes: ${c.description}`,
    };
  }
  if (rgb8) {
    return {
      bands: [1, 2, 3],
      stretch: { kind: 'none' },
      description: 'bands 1,2,3 of an 8-bit RGB scene, as they are',
    };
  }
  throw new PredictError(
    `${scene.uri}: ${scene.bands} band(s) of ${scene.dtype}, but the model ${loaded.onnxUri} was trained on chips from ${describeSource(b)}; give a scene with those bands, or its 8-bit RGB (geobatch rgb)`,
  );
}
