/**
 * Parameter schemas several jobs share (zod only, so the light catalog and the jobs' own params
 * files can import them without importing each other).
 */
import { z } from 'zod';

/** `image: <stage>`: the stage whose output is each item's image. */
export const imageStageParam = z
  .string()
  .min(1)
  .optional()
  .describe(
    "Stage whose output is each item's image (e.g. rgb: <run>/rgb/<item>.tif). Default: the item's own file.",
  );

/** `coco: <stage>`: the stage whose output is each item's COCO shard. */
export const cocoStageParam = z
  .string()
  .min(1)
  .optional()
  .describe(
    "Stage whose output is each item's COCO shard (<run>/<stage>/<item>.json, e.g. a labels or labels-xview stage; list it under needs). Default: no labels.",
  );

/** How bands become 8-bit RGB: the parameters of the rgb job that chipping jobs share. */
export const rgbConversionParams = {
  bands: z
    .array(z.number().int().min(1))
    .min(1)
    .max(3)
    .refine((b) => b.length === 1 || b.length === 3, { error: 'expected 1 band (grey) or 3 (R, G, B)' })
    .optional()
    .describe(
      'Source bands for R, G, B counted from 1 (e.g. [5, 3, 2]), or one band for grey. Default by band count: 1 band grey, 3 bands 1,2,3, 4 bands (B,G,R,NIR) 3,2,1, 8 bands (WorldView) 5,3,2.',
    ),
  stretch: z
    .enum(['percentile', 'minmax', 'range', 'none'])
    .optional()
    .describe('How values become 0..255, per band. Default: percentile, or none for 8-bit input.'),
  percentiles: z
    .tuple([z.number().min(0).max(100), z.number().min(0).max(100)])
    .refine(([lo, hi]) => lo < hi, { error: 'expected [low, high] with low < high' })
    .default([2, 98])
    .describe(
      'Percentiles of the percentile stretch, from a sample of valid pixels computed once per scene.',
    ),
  range: z
    .array(z.number())
    .refine((r) => r.length === 2 || r.length === 6, {
      error: 'expected [min, max] or [min, max] for each of R, G, B',
    })
    .optional()
    .describe('Fixed range [min, max] for every band, or six numbers for R, G, B; implies stretch range.'),
};
