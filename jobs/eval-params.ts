/** Parameters of the `eval` job (jobs/eval.ts), kept apart so the light catalog can import them. */
import { z } from 'zod';

/** The `params` of an eval stage. */
export const evalParams = z
  .object({
    predictions: z
      .string()
      .min(1)
      .describe(
        'What is scored: a predict stage of this pipeline (its <run>/<stage>/*.predict.json; list it under needs), an input set of COCO / GeoJSON files, or an absolute path / s3:// URI of such a folder.',
      ),
    truth: z
      .string()
      .min(1)
      .describe(
        'The truth: a stage writing COCO shards (labels, labels-xview) or masks (mask), an input set of geo-labels GeoJSON (one per scene, or one for all) or masks, or an absolute path / s3:// URI.',
      ),
    images: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Scene rasters (<scene>.tif: a stage such as rgb, an input set or a URI) giving each scene's pixel grid when neither predictions nor truth have one (GeoJSON on both sides, or COCO against geo-labels).",
      ),
    classField: z
      .string()
      .min(1)
      .default('class')
      .describe(
        'Property of geo-label truth features that names the class (matched to the model classes by name).',
      ),
    truthCrs: z
      .string()
      .min(1)
      .optional()
      .describe(
        "CRS of geo-label coordinates, e.g. EPSG:32633, over the file's crs member. Default: the file's, else CRS84.",
      ),
    truthLayer: z
      .string()
      .min(1)
      .optional()
      .describe(
        'GeoPackage table (or shapefile in a .zip) of geo-label truth. Default: the only one; a file with several needs it.',
      ),
    maxDets: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        "Cap of detections per scene and class for AP, as COCO's maxDets (COCO's default is 100). Default: no cap.",
      ),
    scenes: z
      .enum(['all', 'predicted'])
      .default('all')
      .describe(
        'all: a truth scene without predictions counts every truth object missed; predicted: only scenes with predictions are scored (after a predict stage with split: val), the others listed as not scored.',
      ),
  })
  .strict();

export type EvalJobParams = z.output<typeof evalParams>;
