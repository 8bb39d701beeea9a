/** One unit of work of a stage: an input file (image/scene), named by a stable id. */
export interface Item {
  /** Stable, unique within its input set, safe in file names (e.g. the file stem). */
  readonly id: string;
  /** Where the item's input lives (absolute local path, s3:// URI, or http(s):// URL from a STAC asset). */
  readonly uri: string;
}

/** One part of an item, for a stage that splits each item over several tasks (`tasksPerItem`). */
export interface ItemPart {
  /** 0-based, < count. */
  readonly index: number;
  /** The stage's tasksPerItem. */
  readonly count: number;
}

export type Queue = 'cpu' | 'gpu';

export interface Resources {
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly gpus: number;
  readonly timeoutSeconds: number;
  /** Shared memory for the container (/dev/shm), MiB; training data loaders need it. */
  readonly sharedMemoryMiB?: number;
}

/**
 * How a stage waits for another.
 * - `N_TO_N`: task i waits for task i of the other stage (same items, same grouping).
 * - `FAN_IN`: every task waits for the whole other stage.
 */
export type DependencyType = 'N_TO_N' | 'FAN_IN';

export interface StageDependency {
  readonly stage: string;
  readonly type: DependencyType;
  /**
   * Set when a split stage (`tasksPerItem` > 1) runs over `stage` (foreach): its tasks are parts
   * of items, not one per item, so it waits for the whole stage (FAN_IN) instead of task for task.
   * @default false
   */
  readonly split?: true;
}

export interface GraphStage {
  readonly name: string;
  /** Catalog job name (`jobs/catalog.ts`). */
  readonly job: string;
  /** Validated job parameters. */
  readonly params: Record<string, unknown>;
  /** Name of the input set whose items this stage runs over; undefined for a single-task stage. */
  readonly itemsFrom?: string;
  /** Number of items (0 for a single-task stage). */
  readonly itemCount: number;
  /** Items handled by one task (1 unless there are more than 10,000 items). */
  readonly itemsPerTask: number;
  /**
   * Tasks one item is split into (1 unless the stage sets `tasksPerItem`). Task i then handles
   * part i % tasksPerItem of item floor(i / tasksPerItem); itemsPerTask is 1.
   */
  readonly tasksPerItem: number;
  /**
   * Number of tasks: ceil(itemCount / itemsPerTask), itemCount * tasksPerItem for a split stage,
   * or 1 for a single-task stage.
   */
  readonly taskCount: number;
  readonly dependsOn: readonly StageDependency[];
  readonly queue: Queue;
  readonly resources: Resources;
  /**
   * Attempts per task on AWS Batch (`retryStrategy.attempts`, 1..10), from the stage's `retries`.
   * @default the runner's
   */
  readonly attempts?: number;
}

export interface JobGraph {
  readonly pipeline: string;
  /** Stages in a dependency order: each stage comes after every stage it depends on. */
  readonly stages: readonly GraphStage[];
  /** Resolved items of each input set, in a stable order. */
  readonly items: Readonly<Record<string, readonly Item[]>>;
}
