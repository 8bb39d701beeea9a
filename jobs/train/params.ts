/** Parameters of the `train` job (jobs/train/job.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';
import { MODELS } from '../../lib/train/config.js';

export const trainParams = z
  .object({
    dataset: z
      .string()
      .min(1)
      .describe(
        'Stage whose output is the dataset (a merge stage: <run>/<stage>/dataset.json, train.json, val.json; list it under needs).',
      ),
    task: z
      .enum(['detection', 'segmentation', 'classification'])
      .describe(
        'detection (boxes), segmentation (class masks from polygons) or classification (multi-label per chip).',
      ),
    model: z
      .string()
      .min(1)
      .optional()
      .describe(
        'detection: fasterrcnn_resnet50_fpn (default), fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_mobilenet_v3_large_320_fpn; segmentation: deeplabv3_resnet50 (default), fcn_resnet50, unet; classification: resnet50 (default), resnet18.',
      ),
    weights: z
      .enum(['default', 'none'])
      .default('default')
      .describe(
        "Start from torchvision's default pretrained weights (baked into the GPU image), or from scratch.",
      ),
    allowScratch: z
      .boolean()
      .default(false)
      .describe(
        'When the pretrained weights cannot be loaded, warn and train from scratch instead of failing.',
      ),
    epochs: z.number().int().min(1).max(10_000).default(10).describe('Training epochs.'),
    batchSize: z.number().int().min(1).max(4096).default(4).describe('Images per batch and per GPU.'),
    lr: z
      .number()
      .gt(0)
      .max(10)
      .optional()
      .describe('Learning rate. Default: 0.01 for sgd, 0.001 for adamw.'),
    optimizer: z.enum(['sgd', 'adamw']).default('sgd').describe('Optimizer.'),
    imageSize: z
      .number()
      .int()
      .min(32)
      .max(4096)
      .optional()
      .describe(
        "Chips are resized to imageSize x imageSize. Default: the model's (224 for classification, 512 else, 320 for the 320 detector).",
      ),
    workers: z
      .number()
      .int()
      .min(0)
      .max(64)
      .optional()
      .describe('DataLoader worker processes per GPU. Default: 2, or 0 in smoke mode.'),
    seed: z.number().int().min(0).default(0).describe('Random seed (CPU runs are deterministic for a seed).'),
    smoke: z
      .boolean()
      .default(false)
      .describe(
        "Check the setup cheaply: 2 epochs of 4 steps, batches of 2, the task's CPU-sized model unless model is set.",
      ),
  })
  .strict()
  .superRefine((p, ctx) => {
    const models = MODELS[p.task];
    if (p.model !== undefined && !models.includes(p.model)) {
      ctx.addIssue({
        code: 'custom',
        path: ['model'],
        message: `expected a ${p.task} model (${models.join(', ')}) but got '${p.model}'`,
      });
    }
  });

export type TrainJobParams = z.output<typeof trainParams>;
