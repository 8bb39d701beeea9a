import type { Item, ItemPart, JobGraph } from '../lib/pipeline/types.js';
import type { Storage } from '../lib/storage/types.js';

export interface JobLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Where a run lives and how to find other stages' outputs. */
export interface RunRef {
  /** The run's root URI (local path or s3://). */
  readonly uri: string;
  readonly id: string;
  readonly graph: JobGraph;
  /** `<run>/<stage>`: the folder a stage writes its outputs under. */
  stageUri(stage: string): string;
}

/** What every job receives; the same on the local runner and on Batch. */
export interface JobContext {
  readonly storage: Storage;
  readonly run: RunRef;
  readonly stage: string;
  /** Task index within the stage (array index on Batch). */
  readonly index: number;
  /** Items this task handles (empty for a single-task stage). */
  readonly items: readonly Item[];
  /**
   * Present only when the stage splits each item over several tasks (`tasksPerItem` > 1): this
   * task does part `index` (0-based) of `count` of its one item. Only jobs whose catalog entry
   * says `parts: true` run in such stages.
   */
  readonly part?: ItemPart;
  /** A private scratch folder, removed after the task. */
  readonly tmpDir: string;
  readonly log: JobLogger;
  /** Reports progress of this task (units are the job's choice). */
  progress(done: number, total: number): void;
  readonly signal: AbortSignal;
}

export interface JobResult {
  /** URIs this task wrote, recorded in its completion marker. */
  readonly outputs?: readonly string[];
  /** Small facts worth keeping (counts, timings) recorded in the marker. */
  readonly summary?: Record<string, unknown>;
}

export interface JobModule<P> {
  run(params: P, ctx: JobContext): Promise<JobResult | void>;
}
