/** Parameters of the `merge` job (jobs/merge.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';

export const mergeParams = z
  .object({
    chips: z
      .string()
      .min(1)
      .describe(
        "Stage whose output is one chip folder per scene (<run>/<stage>/<item>/annotations.json + images/, e.g. a chip stage; list it under needs). Its items are the dataset's scenes.",
      ),
    valFraction: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.2)
      .describe(
        'Share of scenes in val, in (0, 1): round(n * f), at least 1 with 2 or more scenes. One scene: all train, val empty, a warning.',
      ),
    testFraction: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe('Share of scenes in test, in [0, 1); valFraction + testFraction < 1. 0 writes no test.json.'),
    seed: z.number().int().min(0).max(0xffffffff).default(0).describe('Seed of the scene shuffle.'),
    contactSheet: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(24)
      .describe('Chips drawn on contact-sheet.png with their boxes and masks (0: no sheet).'),
    copyImages: z
      .boolean()
      .default(false)
      .describe('Copy the chips into <stage>/images/<scene>/ instead of referencing them in the chip stage.'),
    categories: z
      .enum(['used', 'all'])
      .default('used')
      .describe(
        'Keep the categories with annotations, or every category the shards list (e.g. all 60 xView classes).',
      ),
  })
  .strict()
  .refine((p) => p.valFraction + p.testFraction < 1, {
    error: 'expected valFraction + testFraction < 1 (some scenes must stay in train)',
    path: ['testFraction'],
  });

export type MergeJobParams = z.output<typeof mergeParams>;
