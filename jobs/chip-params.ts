/** Parameters of the `chip` job (jobs/chip.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';
import { cocoStageParam, imageStageParam, rgbConversionParams } from './common-params.js';

export const chipParams = z
  .object({
    image: imageStageParam,
    coco: cocoStageParam,
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
    format: z
      .enum(['jpeg', 'png', 'tif'])
      .default('jpeg')
      .describe("Chip format; tif: GeoTIFF chips with the window's geotransform and the scene's CRS."),
    quality: z.number().int().min(1).max(100).default(90).describe('JPEG quality.'),
    gsd: z
      .number()
      .positive()
      .optional()
      .describe(
        'Resample the scene to this many metres per pixel before slicing (projected CRS in metres; same origin, as gdalwarp -tr gsd gsd); size and windows are in output pixels, annotations and geotransforms follow.',
      ),
    resampling: z
      .enum(['average', 'bilinear', 'nearest'])
      .optional()
      .describe(
        "With gsd: how pixels are resampled, as gdalwarp's -r; default average when coarser on both axes, else bilinear.",
      ),
    ...rgbConversionParams,
  })
  .strict();

export type ChipJobParams = z.output<typeof chipParams>;
