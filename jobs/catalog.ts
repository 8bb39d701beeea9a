/**
 * The job catalog: every job geobatch can run, with the resources a task of it needs and the
 * schema of its parameters. Light on purpose (zod only): the CDK app reads it to make one
 * Batch job definition per entry, and the CLI reads it to validate pipeline files, neither
 * of which may load image libraries. The code of each job is loaded lazily by
 * `jobs/registry.ts`.
 */
import { z } from 'zod';
import type { Queue } from '../lib/pipeline/types.js';

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
} as const satisfies Record<string, CatalogEntry>;

export type JobName = keyof typeof catalog;
export const jobNames = Object.keys(catalog) as JobName[];

export type JobParams<N extends JobName> = z.output<(typeof catalog)[N]['params']>;

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(catalog, name);
}
