/** Parameters of the `retile` job (jobs/retile.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';
import { imageStageParam } from './common-params.js';

export const retileParams = z
  .object({
    image: imageStageParam,
    size: z.number().int().min(1).max(1_000_000).default(5120).describe('Tile width and height in pixels.'),
    overlap: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Pixels shared by neighbouring tiles (less than size); tile origins step by size - overlap.'),
    compress: z.enum(['deflate', 'none']).default('deflate').describe('Tile compression.'),
  })
  .strict()
  .refine((p) => p.overlap < p.size, {
    error: 'expected overlap < size (tile origins step by size - overlap)',
    path: ['overlap'],
  });

export type RetileJobParams = z.output<typeof retileParams>;
