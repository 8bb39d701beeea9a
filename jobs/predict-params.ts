/** Parameters of the `predict` job (jobs/predict.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';

export const predictParams = z
  .object({
    model: z
      .string()
      .min(1)
      .describe(
        'The model: a train stage of this pipeline (list it under needs), or the URI of a train output folder, its bundle.json or its model.onnx.',
      ),
    images: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Stage whose output is each item's scene (e.g. rgb: <run>/rgb/<item>.tif). Default: the item's own file.",
      ),
    dataset: z
      .string()
      .min(1)
      .optional()
      .describe(
        'With split: the dataset whose split says which scenes to predict: a merge stage of this pipeline (list it under needs), or the URI of a dataset folder or its dataset.json.',
      ),
    split: z
      .enum(['train', 'val', 'test'])
      .optional()
      .describe(
        "Predict only the items that are scenes of this split of the dataset (e.g. val: scenes the model never trained on); the others are skipped and logged. Needs 'dataset'.",
      ),
    task: z
      .enum(['detection', 'segmentation', 'classification'])
      .optional()
      .describe('Refuse a model of another task.'),
    windowSize: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .optional()
      .describe("Window size in pixels. Default: the training chips' (bundle.json)."),
    overlap: z
      .number()
      .min(0)
      .lt(1)
      .optional()
      .describe("Window overlap in [0, 1). Default: the training chips'."),
    batch: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(8)
      .describe('Windows per model run when the model allows it (a fixed batch in the model wins).'),
    merge: z
      .enum(['nms', 'nmm', 'greedy-nmm', 'none'])
      .default('greedy-nmm')
      .describe('Detection: how boxes of overlapping windows are merged.'),
    matchMetric: z
      .enum(['iou', 'ios'])
      .default('ios')
      .describe('Detection: overlap measure; ios = intersection over the smaller box.'),
    matchThreshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.5)
      .describe('Detection: boxes match above this overlap.'),
    classAgnostic: z.boolean().default(false).describe('Detection: merge boxes of different classes too.'),
    keepRaw: z
      .boolean()
      .default(false)
      .describe('Detection: also write every per-window detection (<item>.raw.geojson).'),
    scoreThreshold: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .describe("Drop scores below it. Default: the bundle's, chosen on validation."),
    blend: z
      .enum(['average', 'edge'])
      .default('average')
      .describe(
        "Segmentation: blending of overlapping logits; edge: a weight that falls off to the window's edge.",
      ),
    cog: z
      .boolean()
      .default(false)
      .describe(
        'Segmentation: write <item>.classes.tif as a Cloud Optimized GeoTIFF (nearest overviews, class ids kept) for viewers and byte-range readers.',
      ),
    lowMemory: z
      .boolean()
      .default(false)
      .describe(
        'ONNX Runtime without its CPU memory arena: about a third less memory, about a fifth slower (a 40,000 px U-Net scene: 487 vs 718 MiB).',
      ),
    device: z
      .enum(['cpu', 'cuda'])
      .optional()
      .describe('Execution provider. Default: GEOBATCH_DEVICE (cuda in the GPU image), else cpu.'),
  })
  .strict()
  .refine((p) => p.split === undefined || p.dataset !== undefined, {
    error: "'split' needs 'dataset' (the merge stage or dataset whose split it names)",
    path: ['dataset'],
  });

export type PredictJobParams = z.output<typeof predictParams>;
