/** Parameters of the `chip` job (jobs/chip.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';

export const chipParams = z
  .object({
    image: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Stage whose output is each item's image (e.g. rgb: <run>/rgb/<item>.tif). Default: the item's own file.",
      ),
    coco: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Stage whose output is each item's COCO shard (<run>/<stage>/<item>.json, e.g. a labels or labels-xview stage; list it under needs). Default: no labels.",
      ),
    size: z.number().int().min(1).max(100_000).default(300).describe('Slice width and height in pixels.'),
    overlap: z
      .number()
      .min(0)
      .lt(1)
      .default(0.2)
      .describe('Overlap ratio in [0, 1); step = size - floor(overlap * size).'),
    minAreaRatio: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe('Keep a clipped annotation when trunc(clipped area) / trunc(area) is at least this.'),
    ignoreNegatives: z
      .boolean()
      .default(false)
      .describe('Leave out (and do not write) slices without annotations.'),
    format: z.enum(['jpeg', 'png']).default('jpeg').describe('Chip format.'),
    quality: z.number().int().min(1).max(100).default(90).describe('JPEG quality.'),
  })
  .strict();

export type ChipJobParams = z.output<typeof chipParams>;
