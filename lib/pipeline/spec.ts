/**
 * The pipeline file schema: what a user may write in `pipeline.yaml`, before the catalog
 * validates each stage's `params` and before the graph rules (foreach/needs targets, cycles,
 * Batch limits) are checked by `validate.ts`.
 */
import { z } from 'zod';
import { jobNames } from '../../jobs/catalog.js';

/** AWS Batch limits the compiler enforces. @see https://docs.aws.amazon.com/batch/latest/userguide/array_jobs.html */
export const BATCH_LIMITS = {
  /** Children of one array job. */
  maxArraySize: 10_000,
  /** Job ids in one job's `dependsOn`. */
  maxDependencies: 20,
  /** `retryStrategy.attempts` range. */
  minAttempts: 1,
  maxAttempts: 10,
} as const;

/** Ranges a stage's `resources` overrides must fall in. */
export const RESOURCE_LIMITS = {
  vcpus: { min: 0.25, max: 256 },
  memoryMiB: { min: 128 },
  gpus: { min: 0, max: 8 },
  timeoutSeconds: { min: 60 },
  sharedMemoryMiB: { min: 1 },
} as const;

/** Stage and input set names. */
export const NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
/** Pipeline names (they end up in Batch job names and S3 keys). */
export const PIPELINE_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/;

const S3_URI_PATTERN = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/;

/** Whether `location` is a local path or a well-formed `s3://bucket[/key]` URI. */
function isLocation(location: string): boolean {
  return !/^s3:/i.test(location) || S3_URI_PATTERN.test(location);
}

// Messages that start with 'expected ' are completed with ' but got <value>' by issues.ts.
const location = z
  .string()
  .min(1)
  .refine(isLocation, { error: 'expected a local path or an s3://bucket/prefix URI' });

const setName = z
  .string()
  .regex(NAME_PATTERN, {
    error: 'expected an input set name (a lowercase letter, then up to 31 lowercase letters, digits, _ or -)',
  })
  .describe('Input set name.');

/** Folders of a run that hold its own records (`lib/runners/layout.ts`), so no stage may write there. */
export const RESERVED_STAGE_NAMES = ['markers', 'failures', 'logs'] as const;

const stageName = z
  .string()
  .regex(NAME_PATTERN, {
    error: 'expected a stage name (a lowercase letter, then up to 31 lowercase letters, digits, _ or -)',
  })
  .refine((name) => !(RESERVED_STAGE_NAMES as readonly string[]).includes(name), {
    error: `expected a stage name other than ${RESERVED_STAGE_NAMES.join(', ')} (the run keeps its own records in those folders)`,
  })
  .describe('Stage name.');

const stacInput = z
  .object({
    stac: location.describe(
      'A STAC ItemCollection file (as `geobatch stac search` saves it, or any FeatureCollection of STAC Items, or one Item): a local path relative to the pipeline file, an s3:// URI or an https:// URL.',
    ),
    asset: z
      .string()
      .min(1)
      .optional()
      .describe(
        "The asset key every item contributes (e.g. visual). Default: the one GeoTIFF asset with role 'data', else the one GeoTIFF asset, else the one 'data' asset with a .tif/.tiff/.jp2 href; several or none is an error.",
      ),
  })
  .strict()
  .describe(
    'STAC Items as items: one item per STAC Item, its id the item id (characters other than A-Z a-z 0-9 . _ - become _), its file the chosen asset (relative hrefs resolve against the file).',
  );

/** An input set given as a STAC ItemCollection file. */
export type StacInputSpec = z.output<typeof stacInput>;

const datasetInput = z
  .object({
    dataset: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, {
        error:
          'expected a dataset tag (a lowercase letter or digit, then up to 63 lowercase letters, digits, ., _ or -)',
      })
      .describe('The tag of a dataset in the registry (datasets.yaml).'),
    files: z
      .enum(['images', 'labels', 'masks'])
      .default('images')
      .describe("Which of the dataset's file lists are the items. Default: images."),
    registry: location
      .optional()
      .describe(
        'The registry file: a local path relative to the pipeline file, an s3:// URI or an https:// URL. Default: $GEOBATCH_DATASETS, else ./datasets.yaml in the working directory.',
      ),
  })
  .strict()
  .describe(
    "A registered dataset's files as items (read from the registry when the run is planned; the plan records the files): one item per file, its id the file stem.",
  );

/** An input set given as a dataset of the registry. */
export type DatasetInputSpec = z.output<typeof datasetInput>;

// One flat union, so that an error inside one form (a number in a list, a bad `stac:`) is reported
// at its own path rather than as "none of the forms matched".
const inputSet = z
  .union([
    location.describe('One local path, glob, or s3:// prefix or glob.'),
    z.array(location.describe('A local path, glob, or s3:// prefix or glob.')).min(1),
    stacInput,
    datasetInput,
  ])
  .transform((value) => (typeof value === 'string' ? [value] : value))
  .describe(
    'Where the items of this input set are: local paths or globs (relative to the pipeline file) and s3:// prefixes or globs, one item per matching file; or { stac: items.json, asset: key }, one item per STAC Item; or { dataset: tag, files: images }, the files of a registered dataset.',
  );

/** One input set as validated: a list of patterns, a STAC ItemCollection file, or a registered dataset. */
export type InputSetSpec = z.output<typeof inputSet>;

/** True when an input set is a STAC ItemCollection file (`{ stac: ... }`). */
export function isStacInput(input: InputSetSpec): input is StacInputSpec {
  // by its key, not by "not a list", so that another mapping form can join the union
  return !Array.isArray(input) && 'stac' in input;
}

/** True when an input set names a dataset of the registry (`{ dataset: tag }`). */
export function isDatasetInput(input: InputSetSpec): input is DatasetInputSpec {
  return !Array.isArray(input) && 'dataset' in input;
}

/** What an input set names, for messages: its patterns, `stac <file> (asset <key>)` or `dataset <tag> (<files>)`. */
export function describeInputSet(input: InputSetSpec): string {
  if (isDatasetInput(input)) return `dataset ${input.dataset} (${input.files})`;
  if (!isStacInput(input)) return input.join(', ');
  return `stac ${input.stac}${input.asset === undefined ? '' : ` (asset ${input.asset})`}`;
}

export const resourcesSpecSchema = z
  .object({
    vcpus: z
      .number()
      .min(RESOURCE_LIMITS.vcpus.min)
      .max(RESOURCE_LIMITS.vcpus.max)
      .optional()
      .describe('vCPUs per task (fractions only on Fargate).'),
    memoryMiB: z
      .number()
      .int()
      .min(RESOURCE_LIMITS.memoryMiB.min)
      .optional()
      .describe('Memory per task, MiB.'),
    gpus: z
      .number()
      .int()
      .min(RESOURCE_LIMITS.gpus.min)
      .max(RESOURCE_LIMITS.gpus.max)
      .optional()
      .describe('GPUs per task; more than 0 runs the stage on the GPU queue, 0 on the CPU queue.'),
    timeoutSeconds: z
      .number()
      .int()
      .min(RESOURCE_LIMITS.timeoutSeconds.min)
      .optional()
      .describe('Time limit per task, seconds (AWS Batch minimum: 60). A timed-out task is not retried.'),
    sharedMemoryMiB: z
      .number()
      .int()
      .min(RESOURCE_LIMITS.sharedMemoryMiB.min)
      .optional()
      .describe('Shared memory (/dev/shm) per task, MiB; data loaders of training jobs need it.'),
  })
  .strict()
  .describe("Overrides of the catalog job's resources for this stage.");

export const stageSpecSchema = z
  .object({
    job: z.enum(jobNames).describe('The catalog job this stage runs.'),
    foreach: z
      .string()
      .min(1)
      .optional()
      .describe(
        'What the stage runs over: an input set (one item per file) or another stage (the same items, task i waits for task i of that stage). Required by per-item jobs, not allowed for whole-stage jobs.',
      ),
    needs: z
      .array(z.string().min(1).describe('A stage name.'))
      .default([])
      .describe('Stages whose every task must finish before any task of this stage starts.'),
    params: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("The job's parameters; each job documents its own."),
    resources: resourcesSpecSchema.optional(),
    itemsPerTask: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Items one task handles. Default 1, or ceil(items / 10000) above 10,000 items (AWS Batch arrays hold at most 10,000 tasks). A stage that runs over another stage inherits its value.',
      ),
    tasksPerItem: z
      .number()
      .int()
      .min(1)
      .max(BATCH_LIMITS.maxArraySize)
      .optional()
      .describe(
        'Tasks one item is split into; each task handles one part (e.g. a band of rows of windows of a huge scene). Default 1. Only for jobs that support parts (chip), with foreach and one item per task; items x tasksPerItem is at most 10,000 (the AWS Batch array limit). No stage can run over a split stage (foreach): wait for it with needs.',
      ),
    retries: z
      .number()
      .int()
      .min(BATCH_LIMITS.minAttempts)
      .max(BATCH_LIMITS.maxAttempts)
      .optional()
      .describe(
        "Attempts per task on AWS Batch, 1..10, counting the first one (1 = never retry). Default: the runner's.",
      ),
  })
  .strict()
  .describe('One stage: a job run as an array of tasks.');

export const pipelineSpecSchema = z
  .object({
    version: z.literal(1).describe('Pipeline file format version: 1.'),
    name: z
      .string()
      .regex(PIPELINE_NAME_PATTERN, {
        error: 'expected a pipeline name (1 to 40 lowercase letters, digits or -, not starting with -)',
      })
      .describe(
        'Pipeline name: 1 to 40 lowercase letters, digits or -; it prefixes run ids and Batch job names.',
      ),
    description: z.string().optional().describe('What the pipeline does, for people.'),
    output: location
      .default('runs')
      .describe(
        'Where runs are created: a local folder (relative to the pipeline file) or an s3://bucket/prefix URI. Default: runs.',
      ),
    inputs: z
      .record(setName, inputSet)
      .default({})
      .describe('Named input sets; stages run over them with foreach.'),
    stages: z
      .record(stageName, stageSpecSchema)
      .refine((stages) => Object.keys(stages).length > 0, { error: 'expected at least one stage' })
      .meta({ minProperties: 1 })
      .describe('The stages, by name; order in the file breaks ties in the run order.'),
  })
  .strict()
  .describe('A geobatch pipeline file.');

/** A validated pipeline file (inputs as lists, defaults filled, params validated by the catalog). */
export type PipelineSpec = z.output<typeof pipelineSpecSchema>;
export type StageSpec = z.output<typeof stageSpecSchema>;
export type ResourcesSpec = z.output<typeof resourcesSpecSchema>;
