/** The JSON records a run keeps: its plan, task completion markers, failures and the summary. */
import { z } from 'zod';
import type { GraphStage, ItemPart, JobGraph } from '../pipeline/types.js';

export const planVersion = 1;

/** `<run>/plan.json`: everything a task needs to know, written once before any task runs. */
export interface RunPlan {
  readonly version: typeof planVersion;
  readonly runId: string;
  readonly runUri: string;
  readonly createdAt: string;
  readonly pipeline: {
    readonly name: string;
    /** Where the pipeline file was read from. */
    readonly file: string;
    /** sha256 of the resolved spec and items: two plans with the same fingerprint do the same work. */
    readonly fingerprint: string;
    /** The validated pipeline spec, with defaults applied. */
    readonly spec: unknown;
  };
  readonly graph: JobGraph;
}

const runPlanShape = z.object({
  version: z.literal(planVersion),
  runId: z.string(),
  runUri: z.string(),
  createdAt: z.string(),
  pipeline: z.object({ name: z.string(), file: z.string(), fingerprint: z.string(), spec: z.unknown() }),
  graph: z.object({
    pipeline: z.string(),
    stages: z.array(
      z.looseObject({
        name: z.string(),
        job: z.string(),
        taskCount: z.number(),
        tasksPerItem: z.number().int().min(1).optional(),
      }),
    ),
    items: z.record(z.string(), z.array(z.object({ id: z.string(), uri: z.string() }))),
  }),
});

/**
 * Checks the outline of a plan read back from storage; the graph was validated when it was made.
 * Plans written before stages could split items have no `tasksPerItem`: they read as 1.
 */
export function parseRunPlan(json: unknown, uri: string): RunPlan {
  const result = runPlanShape.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join('.') || '(root)';
    throw new Error(`${uri}: not a geobatch plan (version ${planVersion}): ${where}: ${issue?.message}`);
  }
  const plan = json as RunPlan;
  const stages = plan.graph.stages as readonly (Omit<GraphStage, 'tasksPerItem'> & {
    tasksPerItem?: number;
  })[];
  if (stages.every((s) => s.tasksPerItem !== undefined)) return plan;
  return {
    ...plan,
    graph: { ...plan.graph, stages: stages.map((s) => ({ ...s, tasksPerItem: s.tasksPerItem ?? 1 })) },
  };
}

/** `<run>/markers/<stage>/<index>.json`: the task finished; its outputs are complete. */
export interface TaskMarker {
  readonly stage: string;
  readonly index: number;
  readonly items: readonly string[];
  /** The part of its item the task did, for a stage that splits items (`tasksPerItem`). */
  readonly part?: ItemPart;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly outputs: readonly string[];
  readonly summary?: Record<string, unknown>;
  readonly host: string;
  /** Batch attempt number when known (retries), else 1. */
  readonly attempt: number;
  /** Where the task ran when it ran on AWS Batch: what `geobatch logs` reads. */
  readonly batch?: BatchTaskIdentity;
}

/** The Batch job (an array child is `<array job id>:<k>`) and log stream of a task's attempt. */
export interface BatchTaskIdentity {
  readonly jobId: string;
  readonly logStreamName?: string;
}

/** `<run>/failures/<stage>/<index>.json`: the last failed attempt of a task. */
export interface TaskFailure {
  readonly stage: string;
  readonly index: number;
  readonly items: readonly string[];
  /** The part of its item the task was doing, for a stage that splits items (`tasksPerItem`). */
  readonly part?: ItemPart;
  readonly startedAt: string;
  readonly failedAt: string;
  /** The error's first line, for status tables. */
  readonly error: string;
  /** Full message and stack. */
  readonly detail: string;
  readonly log: string;
  readonly host: string;
  readonly attempt: number;
}

export type StageState = 'pending' | 'running' | 'done' | 'failed' | 'blocked';

/** `<run>/run.json`: the runner's summary of the run, rewritten as it goes. */
export interface RunSummary {
  readonly runId: string;
  readonly pipeline: string;
  readonly runner: 'local' | 'batch';
  readonly state: 'running' | 'succeeded' | 'failed' | 'interrupted';
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly finishedAt?: string;
  readonly stages: Record<
    string,
    { readonly tasks: number; readonly done: number; readonly failed: number; readonly skipped: number }
  >;
}

/** The first non-empty line of an error message, for one-line displays. */
export function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? ''
  );
}
