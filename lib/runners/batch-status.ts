/**
 * The state of a run on AWS Batch: per stage, how many tasks are pending, runnable, starting,
 * running, succeeded, failed or blocked (failed because a task they wait for failed), and each
 * failed task with Batch's status reason and the container's exit code. Array parents give
 * per-state counts (`statusSummary`); failed children come from ListJobs.
 */
import type { ItemPart } from '../pipeline/types.js';
import type { Storage } from '../storage/types.js';
import type { BatchApi, ChildFailure, JobState, JobView } from './batch.js';
import { latestJobs } from './batch-record.js';
import type { BatchRecord, SubmittedJob } from './batch-record.js';
import type { RunPlan } from './records.js';
import { readDoneTasks } from './state.js';
import { itemsOfTask, partOfTask } from './task.js';
import { parseTaskRanges } from './task-indexes.js';

export type TaskColumn =
  'pending' | 'runnable' | 'starting' | 'running' | 'succeeded' | 'failed' | 'blocked' | 'unknown';

export const taskColumns: readonly TaskColumn[] = [
  'pending',
  'runnable',
  'starting',
  'running',
  'succeeded',
  'failed',
  'blocked',
  'unknown',
];

export type TaskCounts = Record<TaskColumn, number>;

export interface BatchTaskFailure {
  /** The plan's task index (what `geobatch logs --index` takes). */
  readonly index: number;
  readonly items: readonly string[];
  /** The part of its item the task does, for a stage that splits items (`tasksPerItem`). */
  readonly part?: ItemPart;
  readonly jobId: string;
  readonly statusReason?: string;
  readonly exitCode?: number;
  /** The container's own reason (e.g. OutOfMemoryError: Container killed due to memory usage). */
  readonly reason?: string;
}

export interface BatchStageStatus {
  readonly name: string;
  readonly job: string;
  readonly tasks: number;
  /** The stage's job in the latest submission that ran it. */
  readonly jobId?: string;
  readonly jobName?: string;
  /** `succeeded` counts the tasks with a completion marker, whatever Batch says of their job. */
  readonly counts: TaskCounts;
  /** Tasks with a completion marker (= counts.succeeded): what `resume` leaves out. */
  readonly done: number;
  /** Tasks the latest job of the stage did not run (finished by earlier submissions). */
  readonly earlier: number;
  /** Failed tasks, except those only blocked by a failed dependency. */
  readonly failures: readonly BatchTaskFailure[];
}

export interface BatchRunStatus {
  readonly runId: string;
  readonly runUri: string;
  readonly pipeline: string;
  readonly env: string;
  readonly region: string;
  /**
   * `incomplete`: nothing runs and no task failed, but some have no completion marker (tasks
   * blocked by a dependency that failed after finishing its work, a submission that was
   * interrupted): `resume` runs them.
   */
  readonly state: 'running' | 'succeeded' | 'failed' | 'cancelled' | 'incomplete';
  /** Every task has a completion marker: `resume` has nothing to submit. */
  readonly complete: boolean;
  /** 1 + the number of resumes. */
  readonly submissions: number;
  /** The latest submission, when it did not go through (refused, or interrupted while submitting). */
  readonly submissionProblem?: {
    readonly number: number;
    readonly state: 'submitting' | 'failed';
    readonly error?: string;
  };
  readonly stages: readonly BatchStageStatus[];
  readonly checkedAt: string;
}

const dependencyFailed = /^Dependent Job failed/i;

function column(state: JobState): TaskColumn {
  switch (state) {
    case 'SUBMITTED':
    case 'PENDING':
      return 'pending';
    case 'RUNNABLE':
      return 'runnable';
    case 'STARTING':
      return 'starting';
    case 'RUNNING':
      return 'running';
    case 'SUCCEEDED':
      return 'succeeded';
    case 'FAILED':
      return 'failed';
    default:
      return 'unknown';
  }
}

function emptyCounts(): TaskCounts {
  return {
    pending: 0,
    runnable: 0,
    starting: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    blocked: 0,
    unknown: 0,
  };
}

/**
 * Counts the tasks of one stage's job from its DescribeJobs view and, for an array, its failed
 * children. Children Batch has not created yet (a parent still SUBMITTED or PENDING, or failed
 * before they ran) are counted in the parent's state.
 */
export function stageCounts(
  job: SubmittedJob,
  view: JobView,
  failedChildren: readonly ChildFailure[],
): { counts: TaskCounts; failures: ChildFailure[] } {
  const counts = emptyCounts();
  const size = job.arraySize ?? 1;
  const failures: ChildFailure[] = [];
  if (job.arraySize === undefined) {
    const col = column(view.status);
    if (col === 'failed' && view.statusReason && dependencyFailed.test(view.statusReason)) counts.blocked = 1;
    else counts[col] = 1;
    if (col === 'failed' && counts.failed === 1) {
      const last = view.attempts[view.attempts.length - 1];
      const exitCode = view.exitCode ?? last?.exitCode;
      const reason = view.reason ?? last?.reason;
      failures.push({
        arrayIndex: 0,
        jobId: view.jobId,
        ...(view.statusReason ? { statusReason: view.statusReason } : {}),
        ...(exitCode !== undefined ? { exitCode } : {}),
        ...(reason ? { reason } : {}),
      });
    }
    return { counts, failures };
  }
  let counted = 0;
  for (const [state, n] of Object.entries(view.statusSummary ?? {})) {
    if (!n) continue;
    counts[column(state as JobState)] += n;
    counted += n;
  }
  const blockedChildren = failedChildren.filter(
    (f) => f.statusReason && dependencyFailed.test(f.statusReason),
  );
  const moved = Math.min(blockedChildren.length, counts.failed);
  counts.failed -= moved;
  counts.blocked += moved;
  if (counted < size) {
    const col = column(view.status);
    const rest = size - counted;
    if (col === 'failed' && view.statusReason && dependencyFailed.test(view.statusReason))
      counts.blocked += rest;
    else counts[col] += rest;
  }
  failures.push(...failedChildren.filter((f) => !(f.statusReason && dependencyFailed.test(f.statusReason))));
  return { counts, failures };
}

/** Whether nothing in these counts will change any more. */
function settled(c: TaskCounts): boolean {
  return c.pending + c.runnable + c.starting + c.running === 0;
}

/** Columns a task without a marker may be in, most likely to be stale first. */
const overcounted: readonly TaskColumn[] = [
  'unknown',
  'running',
  'starting',
  'runnable',
  'pending',
  'blocked',
  'failed',
];

/**
 * Reconciles Batch's counts of a stage with its completion markers, which are the truth that
 * `resume` goes by: a task with a marker is done whatever its container's exit (it may be killed
 * after writing the marker), so `succeeded` is the number of markers; failed and blocked tasks
 * that have one are taken out of those columns; Batch counts that would make the total exceed
 * the stage's tasks (a task done but its job not finished yet) are taken off, stalest first;
 * and tasks Batch counts as succeeded without a marker are `unknown`, to be run again.
 */
export function reconcileCounts(
  batchCounts: TaskCounts,
  taskCount: number,
  done: number,
  doneInColumn: Partial<Record<'failed' | 'blocked', number>> = {},
): TaskCounts {
  const counts: TaskCounts = { ...batchCounts, succeeded: done };
  counts.failed -= Math.min(counts.failed, doneInColumn.failed ?? 0);
  counts.blocked -= Math.min(counts.blocked, doneInColumn.blocked ?? 0);
  let excess = taskColumns.reduce((n, c) => n + counts[c], 0) - taskCount;
  for (const c of overcounted) {
    if (excess <= 0) break;
    const cut = Math.min(excess, counts[c]);
    counts[c] -= cut;
    excess -= cut;
  }
  if (excess < 0) counts.unknown -= excess;
  return counts;
}

/**
 * Reads the state of every stage's latest job (DescribeJobs in batches of 100, ListJobs for the
 * failed children of arrays) and reconciles it with the run's completion markers (one listing):
 * jobs Batch no longer describes (it keeps finished jobs for a few days) are counted from the
 * markers alone.
 */
export async function readBatchStatus(options: {
  readonly plan: RunPlan;
  readonly record: BatchRecord;
  readonly api: Pick<BatchApi, 'describeJobs' | 'listFailedChildren'>;
  readonly storage: Storage;
  readonly now?: () => Date;
}): Promise<BatchRunStatus> {
  const { plan, record, api } = options;
  const latest = latestJobs(record);
  const jobs = [...latest.values()].map((l) => l.job);
  const [described, markers] = await Promise.all([
    api.describeJobs(jobs.map((j) => j.jobId)),
    readDoneTasks(options.storage, plan),
  ]);
  const views = new Map(described.map((v) => [v.jobId, v]));
  const failedOf = new Map<string, ChildFailure[]>();
  await Promise.all(
    jobs.map(async (job) => {
      const view = views.get(job.jobId);
      if (!view || job.arraySize === undefined) return;
      const failed = (view.statusSummary?.FAILED ?? 0) > 0;
      if (failed) failedOf.set(job.jobId, await api.listFailedChildren(job.jobId));
    }),
  );

  const stages: BatchStageStatus[] = [];
  // what Batch runs: a run whose tasks all have markers is still running until its jobs end
  let active = false;
  for (const stage of plan.graph.stages) {
    const doneSet = markers.get(stage.name) ?? new Set<number>();
    const done = [...doneSet].filter((i) => i < stage.taskCount).length;
    const entry = latest.get(stage.name);
    const base = { name: stage.name, job: stage.job, tasks: stage.taskCount, done };
    if (!entry) {
      const counts = reconcileCounts({ ...emptyCounts(), unknown: stage.taskCount }, stage.taskCount, done);
      stages.push({ ...base, counts, earlier: 0, failures: [] });
      continue;
    }
    const { job } = entry;
    const tasks = parseTaskRanges(job.tasks, `${record.runUri}/batch.json: ${stage.name}.tasks`);
    const earlier = stage.taskCount - tasks.length;
    const view = views.get(job.jobId);
    let batchCounts: TaskCounts;
    let failures: BatchTaskFailure[] = [];
    const doneIn = { failed: 0, blocked: 0 };
    if (!view) {
      batchCounts = { ...emptyCounts(), unknown: tasks.length };
    } else {
      const failedChildren = failedOf.get(job.jobId) ?? [];
      const result = stageCounts(job, view, failedChildren);
      batchCounts = result.counts;
      const taskOf = (arrayIndex: number) => tasks[arrayIndex] ?? arrayIndex;
      for (const f of failedChildren) {
        if (!doneSet.has(taskOf(f.arrayIndex))) continue;
        if (f.statusReason && dependencyFailed.test(f.statusReason)) doneIn.blocked++;
        else doneIn.failed++;
      }
      if (job.arraySize === undefined && doneSet.has(tasks[0] ?? 0)) {
        doneIn.failed += batchCounts.failed;
        doneIn.blocked += batchCounts.blocked;
      }
      failures = result.failures
        .filter((f) => !doneSet.has(taskOf(f.arrayIndex)))
        .map((f) => {
          const index = taskOf(f.arrayIndex);
          const known = index < stage.taskCount;
          const part = known ? partOfTask(stage, index) : undefined;
          return {
            index,
            items: known ? itemsOfTask(plan.graph, stage, index).map((i) => i.id) : [],
            ...(part ? { part } : {}),
            jobId: f.jobId,
            ...(f.statusReason ? { statusReason: f.statusReason } : {}),
            ...(f.exitCode !== undefined ? { exitCode: f.exitCode } : {}),
            ...(f.reason ? { reason: f.reason } : {}),
          };
        });
    }
    // tasks of earlier submissions are not in this job's counts: Batch says nothing of them now
    batchCounts.unknown += earlier;
    if (!settled(batchCounts)) active = true;
    const counts = reconcileCounts(batchCounts, stage.taskCount, done, doneIn);
    stages.push({ ...base, jobId: job.jobId, jobName: job.jobName, counts, earlier, failures });
  }

  const last = record.submissions[record.submissions.length - 1];
  const allSettled = !active && stages.every((s) => settled(s.counts));
  const complete = stages.every((s) => s.done >= s.tasks);
  const anyFailed = stages.some((s) => s.counts.failed > 0) || last?.state === 'failed';
  const state: BatchRunStatus['state'] = !allSettled
    ? 'running'
    : complete
      ? 'succeeded'
      : last?.cancelledAt
        ? 'cancelled'
        : anyFailed
          ? 'failed'
          : 'incomplete';
  const problem =
    last && (last.state === 'failed' || last.state === 'submitting')
      ? {
          submissionProblem: {
            number: last.number,
            state: last.state,
            ...(last.error ? { error: last.error } : {}),
          },
        }
      : {};
  return {
    runId: plan.runId,
    runUri: plan.runUri,
    pipeline: plan.pipeline.name,
    env: record.env,
    region: record.region,
    state,
    complete,
    submissions: record.submissions.length,
    ...problem,
    stages,
    checkedAt: (options.now ?? (() => new Date()))().toISOString(),
  };
}

/** Whether a status will not change any more (what `--watch` stops on). */
export function isFinished(status: BatchRunStatus): boolean {
  return status.state !== 'running';
}
