/** The state of a run from its records: per stage done / failed / pending, durations, failures. */
import type { ItemPart } from '../pipeline/types.js';
import type { Storage } from '../storage/types.js';
import { runLayout } from './layout.js';
import type { RunPlan, RunSummary } from './records.js';
import { readFailures, readMarkers, readTaskStates } from './state.js';

export interface StageStatus {
  readonly name: string;
  readonly job: string;
  readonly tasks: number;
  readonly done: number;
  readonly failed: number;
  readonly pending: number;
  /** Task durations of finished tasks, ms. */
  readonly durationMs?: {
    readonly min: number;
    readonly median: number;
    readonly max: number;
    readonly total: number;
  };
  readonly failures: readonly {
    readonly index: number;
    readonly items: readonly string[];
    /** The part of its item the task was doing, for a stage that splits items (`tasksPerItem`). */
    readonly part?: ItemPart;
    readonly error: string;
    readonly log: string;
  }[];
}

export interface RunStatus {
  readonly runId: string;
  readonly runUri: string;
  readonly pipeline: string;
  /** From run.json when a runner wrote one. */
  readonly state: RunSummary['state'] | 'unknown';
  readonly complete: boolean;
  readonly stages: readonly StageStatus[];
}

/** min / median (lower middle) / max / total of task durations, or undefined for none. */
export function durationStats(values: readonly number[]): StageStatus['durationMs'] {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return {
    min: sorted[0]!,
    median,
    max: sorted[sorted.length - 1]!,
    total: sorted.reduce((a, b) => a + b, 0),
  };
}

/** Reads a run's records and summarises them per stage. */
export async function readRunStatus(
  storage: Storage,
  plan: RunPlan,
  options: { durations?: boolean } = {},
): Promise<RunStatus> {
  const layout = runLayout(plan.runUri);
  const [states, failures, summaryText] = await Promise.all([
    readTaskStates(storage, plan),
    readFailures(storage, plan),
    storage.exists(layout.summary).then((e) => (e ? storage.read(layout.summary) : undefined)),
  ]);
  const summary = summaryText ? (JSON.parse(summaryText.toString('utf8')) as RunSummary) : undefined;
  const stages: StageStatus[] = [];
  for (const stage of plan.graph.stages) {
    const done = states.done.get(stage.name)?.size ?? 0;
    const failedSet = states.failed.get(stage.name) ?? new Set<number>();
    const markers =
      options.durations === false || done === 0 ? [] : await readMarkers(storage, plan, stage.name);
    const stageFailures = failures
      .filter((f) => f.stage === stage.name && failedSet.has(f.index))
      .sort((a, b) => a.index - b.index)
      .map((f) => ({
        index: f.index,
        items: f.items,
        ...(f.part ? { part: f.part } : {}),
        error: f.error,
        log: f.log,
      }));
    const durationMs = durationStats(markers.map((m) => m.durationMs));
    stages.push({
      name: stage.name,
      job: stage.job,
      tasks: stage.taskCount,
      done,
      failed: failedSet.size,
      pending: stage.taskCount - done - failedSet.size,
      ...(durationMs ? { durationMs } : {}),
      failures: stageFailures,
    });
  }
  return {
    runId: plan.runId,
    runUri: plan.runUri,
    pipeline: plan.pipeline.name,
    state: summary?.state ?? 'unknown',
    complete: stages.every((s) => s.done === s.tasks),
    stages,
  };
}
