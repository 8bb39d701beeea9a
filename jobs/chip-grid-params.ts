/** Parameters of the `chip-grid` job (jobs/chip-grid.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';
import { cocoStageParam } from './common-params.js';

export const chipGridParams = z
  .object({
    grid: z
      .enum(['ard', 'webmercator'])
      .describe("Tile grid: Maxar ARD cells of the scene's UTM zone, or web-mercator XYZ tiles."),
    level: z.number().int().min(1).max(24).describe('ARD level or web-mercator zoom.'),
    tileSize: z
      .union([z.literal(256), z.literal(512)])
      .optional()
      .describe('Chip width and height in pixels. Default: 512 for ard, 256 for webmercator.'),
    format: z
      .enum(['png', 'jpeg', 'tif'])
      .default('png')
      .describe('Chip format (tif: georeferenced GeoTIFF).'),
    resampling: z.enum(['nearest', 'bilinear']).default('nearest').describe('Resampling of warped chips.'),
    overviews: z
      .boolean()
      .default(true)
      .describe(
        "Sample the source's overview closest to the chips' resolution (never coarser) when chips are coarser than the source; false: always full resolution.",
      ),
    skipEmpty: z
      .boolean()
      .default(true)
      .describe('Write no chip for cells without valid pixels (they stay in nodata-index.json).'),
    catalogId: z
      .string()
      .regex(/^[A-Za-z0-9]+$/)
      .optional()
      .describe("ARD chips' catalog id. Default: the image's file stem, letters and digits only."),
    image: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Stage whose output is each item's image (a GeoTIFF, e.g. rgb with format tif). Default: the item's own file.",
      ),
    coco: cocoStageParam,
  })
  .strict();

export type ChipGridJobParams = z.output<typeof chipGridParams>;
