/**
 * The job catalog: every job geobatch can run, with the resources a task of it needs and the
 * schema of its parameters. Light on purpose (zod only): the CDK app reads it to make one
 * Batch job definition per entry, and the CLI reads it to validate pipeline files, neither
 * of which may load image libraries. The code of each job is loaded lazily by
 * `jobs/registry.ts`.
 */
import { z } from 'zod';
import type { Queue } from '../lib/pipeline/types.js';
import { chipGridParams } from './chip-grid-params.js';
import { chipParams } from './chip-params.js';
import { imageStageParam, rgbConversionParams } from './common-params.js';
import { embedParams } from './embed-params.js';
import { evalParams } from './eval-params.js';
import { mergeParams } from './merge-params.js';
import { predictParams } from './predict-params.js';
import { retileParams } from './retile-params.js';
import { trainParams } from './train/params.js';

export interface CatalogEntry {
  /** One line for `--help`, `geobatch plan` and the job definition's description. */
  readonly description: string;
  /** `gpu` jobs run on the GPU queue and compute environment; everything else on `cpu`. */
  readonly queue: Queue;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly gpus: number;
  /** Per task (per array child on Batch); Batch's minimum is 60 s. */
  readonly timeoutSeconds: number;
  /** /dev/shm for the container, MiB. @default none */
  readonly sharedMemoryMiB?: number;
  /**
   * Whether one task handles one item (`item`) of the stage's input set or the whole stage at
   * once (`stage`, e.g. fan-in merges and training).
   */
  readonly granularity: 'item' | 'stage';
  /**
   * Whether a task can do one part of an item (`ctx.part`: e.g. a band of rows of windows of a
   * huge scene), so that a stage may split each item over several tasks (`tasksPerItem`).
   * @default false
   */
  readonly parts?: boolean;
  /** Parameters a pipeline stage may set under `params`. Unknown keys are errors. */
  readonly params: z.ZodObject;
}

const smokeParams = z
  .object({
    sleepMs: z.number().int().min(0).max(3_600_000).default(0).describe('Milliseconds each item waits.'),
    failItems: z
      .array(z.string())
      .default([])
      .describe('Item ids whose task fails on purpose, to rehearse failure handling.'),
    crashItems: z
      .array(z.string())
      .default([])
      .describe(
        'Item ids whose task kills its own process (as an out-of-memory kill would), to rehearse crashes.',
      ),
  })
  .strict();

const inspectParams = z
  .object({
    sampleStep: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(8)
      .describe('Band statistics read every n-th pixel of every n-th row of the smallest fitting overview.'),
  })
  .strict();

const rgbParams = z
  .object({
    ...rgbConversionParams,
    srcNodata: z
      .union([z.number(), z.literal('none')])
      .optional()
      .describe("Input no-data value, or 'none' to ignore the file's. Default: the file's."),
    alpha: z
      .boolean()
      .optional()
      .describe('Mark no-data with an alpha band instead of 0 (default: only for PNG with no-data).'),
    format: z
      .enum(['gtiff', 'png', 'jpeg'])
      .default('gtiff')
      .describe('Output format: <stage>/<item>.tif, .png or .jpg (PNG/JPEG with a world file).'),
    quality: z.number().int().min(1).max(100).default(90).describe('JPEG quality.'),
    cog: z
      .boolean()
      .default(false)
      .describe(
        'Write a Cloud Optimized GeoTIFF (average overviews, IFDs first) for viewers and byte-range readers; GeoTIFF format only.',
      ),
  })
  .strict()
  .refine((p) => !p.cog || p.format === 'gtiff', {
    error: "'cog' applies to format 'gtiff' only",
    path: ['cog'],
  });

const categoryMapParam = z
  .record(
    z.string(),
    z.union([
      z.string().min(1),
      z.number().int().min(1),
      z.object({ id: z.number().int().min(1), name: z.string().min(1) }).strict(),
      z.null(),
    ]),
  )
  .describe(
    'Source value -> category: a name, {id, name}, an id, or null to exclude the value on purpose. Unknown values are counted, not silently dropped.',
  );

const labelsSetParam = z
  .string()
  .min(1)
  .describe(
    "Input set with the labels: its only file, or the file with the same id as the stage's item (one per image): GeoJSON, Shapefile (.shp with .dbf and .prj beside it, or zipped), GeoPackage (.gpkg) or FlatGeobuf (.fgb). Or a labels-osm stage (list it under needs): its <stage>/<item>.geojson.",
  );

const layerParam = z
  .string()
  .min(1)
  .optional()
  .describe(
    'GeoPackage table (layer) or shapefile in a .zip to read. Default: the only one; a file with several needs it.',
  );

const crsParam = z
  .string()
  .min(1)
  .optional()
  .describe(
    "CRS of the labels' coordinates (e.g. EPSG:32633). Default: the file's (GeoJSON: its 'crs' member, else CRS84; a shapefile's .prj; a GeoPackage's or FlatGeobuf's own).",
  );

const labelsParams = z
  .object({
    labels: labelsSetParam,
    image: imageStageParam,
    categoryField: z.string().min(1).optional().describe('Feature property whose value is the category.'),
    category: z
      .string()
      .min(1)
      .optional()
      .describe('One category for every feature (instead of categoryField).'),
    categories: categoryMapParam.optional(),
    crs: crsParam,
    layer: layerParam,
  })
  .strict();

const xviewParams = z
  .object({
    labels: z.string().min(1).describe('Input set with the xView GeoJSON (one file).'),
    images: z
      .string()
      .min(1)
      .describe(
        "Input set or stage whose items are the images (e.g. rgb: its outputs, list the stage under needs). Labels find their image by xView image_id = the item's file name.",
      ),
    categories: categoryMapParam
      .optional()
      .describe('type_id -> category. Default: the 60 xView classes, COCO ids 1..60.'),
  })
  .strict();

const maskParams = z
  .object({
    labels: labelsSetParam,
    image: imageStageParam,
    burnField: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Feature property whose value (an integer 0..255, or mapped by categories) is burned. Default: 255.',
      ),
    categories: categoryMapParam.optional(),
    allTouched: z
      .boolean()
      .default(false)
      .describe('Burn every pixel a polygon touches, not only those whose centre it contains.'),
    crs: crsParam,
    layer: layerParam,
  })
  .strict();

const osmClassParam = z.union([
  z.string().min(1),
  z.array(z.string().min(1)).min(1),
  z
    .object({
      match: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
      lines: z.boolean().optional().describe('Keep open ways (lines) of this class too.'),
    })
    .strict(),
]);

const osmParams = z
  .object({
    osm: z
      .string()
      .min(1)
      .describe(
        'Input set with the OSM data (one file): an .osm.pbf extract, OSM XML (.osm) or a saved Overpass JSON answer (.json).',
      ),
    classes: z
      .record(z.string(), osmClassParam)
      .refine((c) => Object.keys(c).length > 0, { error: 'expected at least one class' })
      .describe(
        "Class name -> tag filter (key, key=*, key=v1|v2, key!=v1|v2, joined by &), a list of them, or {match, lines: true} to keep open ways; an element takes the first class it matches, e.g. { building: 'building=*', road: { match: 'highway=residential|primary', lines: true } }.",
      ),
    images: z
      .string()
      .min(1)
      .describe(
        'Input set or stage (e.g. rgb: list it under needs) whose items are the scenes: one <stage>/<item>.geojson per scene, clipped to its footprint.',
      ),
    chips: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Chip stage (chip or chip-grid, list it under needs) over the same items: per-chip multi-labels labels.csv and labels.jsonl from each <chips>/<item>/chips.geojson.',
      ),
  })
  .strict();

// the stages to gather are the `inspect` stages this stage `needs`: naming them there is what
// makes the catalog wait for them, so no parameter repeats it
const catalogParams = z.object({}).strict();

export const catalog = {
  smoke: {
    description: 'Does nothing but prove the plumbing: waits, optionally fails for chosen items.',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 512,
    gpus: 0,
    timeoutSeconds: 600,
    granularity: 'item',
    params: smokeParams,
  },
  inspect: {
    description:
      'Reads a raster header and samples band statistics: size, bands, type, CRS, geotransform, nodata.',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 2048,
    gpus: 0,
    timeoutSeconds: 1800,
    granularity: 'item',
    params: inspectParams,
  },
  catalog: {
    description: 'Gathers per-item metadata into one catalog (JSON + GeoJSON footprints).',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 2048,
    gpus: 0,
    timeoutSeconds: 1800,
    granularity: 'stage',
    params: catalogParams,
  },
  rgb: {
    description:
      'Converts a GeoTIFF to 8-bit RGB: bands chosen, stretched per band, no-data and georeferencing kept (<stage>/<item>.tif).',
    queue: 'cpu',
    vcpus: 2,
    memoryMiB: 2048,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'item',
    params: rgbParams,
  },
  labels: {
    description:
      "Converts map polygons in any CRS (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) to a COCO shard on the item's image (<stage>/<item>.json).",
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 2048,
    gpus: 0,
    timeoutSeconds: 1800,
    granularity: 'item',
    params: labelsParams,
  },
  'labels-xview': {
    description:
      'Converts xView labels to one COCO shard per image in one pass (<stage>/<item>.json, summary.json).',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'stage',
    params: xviewParams,
  },
  'labels-osm': {
    description:
      'Turns an OpenStreetMap extract (.osm.pbf, .osm, Overpass JSON) into class-labelled CRS84 GeoJSON per scene, clipped to its footprint, in one pass (<stage>/<item>.geojson; with chips labels.csv, labels.jsonl; summary.json).',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'stage',
    params: osmParams,
  },
  mask: {
    description:
      "Rasterises map polygons (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) into a uint8 mask aligned with the item's image (<stage>/<item>.tif).",
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 2048,
    gpus: 0,
    timeoutSeconds: 1800,
    granularity: 'item',
    params: maskParams,
  },
  chip: {
    description:
      "Slices the item's image (and its COCO shard) into SAHI-compatible chips: <stage>/<item>/images/*, annotations.json.",
    queue: 'cpu',
    vcpus: 2,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'item',
    parts: true,
    params: chipParams,
  },
  'chip-grid': {
    description:
      "Cuts the item's GeoTIFF (and its COCO shard) into ARD or web-mercator grid chips: <stage>/<item>/, nodata-index.json.",
    queue: 'cpu',
    vcpus: 2,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'item',
    params: chipGridParams,
  },
  retile: {
    description:
      "Cuts the item's image into GeoTIFF tiles on the gdal_retile grid: <stage>/<item>/<stem>_<row>_<col>.tif, tiles.json.",
    queue: 'cpu',
    vcpus: 2,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'item',
    params: retileParams,
  },
  merge: {
    description:
      'Merges the per-scene chip folders of a chip stage into a dataset split by scene: train/val(/test) COCO, multi-label CSV, stats and pictures, dataset.json.',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'stage',
    params: mergeParams,
  },
  train: {
    description:
      'Trains a detection, segmentation or multi-label classification model on a dataset stage (PyTorch, every GPU): <stage>/model.pt, model.onnx, bundle.json (what predict needs: classes, input, windows, band conversion, score threshold), metrics.json, curves.png, MODEL_CARD.md, checkpoints/.',
    queue: 'gpu',
    vcpus: 4,
    memoryMiB: 15000,
    gpus: 1,
    timeoutSeconds: 86400,
    sharedMemoryMiB: 8192,
    granularity: 'stage',
    params: trainParams,
  },
  eval: {
    description:
      'Scores predictions against COCO, geo-label or mask truth (fan-in): <stage>/eval.json, errors.geojson, pr-curves.png or confusion.png, eval.md.',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 3600,
    granularity: 'stage',
    params: evalParams,
  },
  predict: {
    description:
      "Applies a trained model to the item's scene in overlapping windows (ONNX Runtime): <stage>/<item>.predict.json with GeoJSON + COCO detections, a class GeoTIFF + polygons, or window scores.",
    queue: 'cpu',
    vcpus: 2,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 86400,
    granularity: 'item',
    parts: true,
    params: predictParams,
  },
  'predict-gpu': {
    description:
      'The predict job on the GPU queue (CUDA execution provider): taken by a predict stage with resources.gpus >= 1.',
    queue: 'gpu',
    vcpus: 4,
    memoryMiB: 15000,
    gpus: 1,
    timeoutSeconds: 86400,
    granularity: 'item',
    parts: true,
    params: predictParams,
  },
  embed: {
    description:
      "Embeds every chip of a dataset or chip stage with a trained classifier's pooled features (ONNX Runtime, fan-in): <stage>/vectors.f32 (unit float32 rows), chips.jsonl, embed.json, for geobatch similar.",
    queue: 'cpu',
    vcpus: 2,
    memoryMiB: 4096,
    gpus: 0,
    timeoutSeconds: 86400,
    granularity: 'stage',
    params: embedParams,
  },
  'embed-gpu': {
    description:
      'The embed job on the GPU queue (CUDA execution provider): taken by an embed stage with resources.gpus >= 1.',
    queue: 'gpu',
    vcpus: 4,
    memoryMiB: 15000,
    gpus: 1,
    timeoutSeconds: 86400,
    granularity: 'stage',
    params: embedParams,
  },
} as const satisfies Record<string, CatalogEntry>;

export type JobName = keyof typeof catalog;
export const jobNames = Object.keys(catalog) as JobName[];

export type JobParams<N extends JobName> = z.output<(typeof catalog)[N]['params']>;

/** The jobs whose tasks can do one part of an item (`parts: true`), in catalog order. */
export const jobsWithParts = jobNames.filter(
  (name) => (catalog as Record<string, CatalogEntry>)[name]!.parts === true,
);

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(catalog, name);
}
