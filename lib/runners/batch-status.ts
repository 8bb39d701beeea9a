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
import { readTaskStates } from './state.js';
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
  readonly counts: TaskCounts;
  /** Tasks finished by earlier submissions (counted as succeeded). */
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
  readonly state: 'running' | 'succeeded' | 'failed' | 'cancelled';
  /** 1 + the number of resumes. */
  readonly submissions: number;
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

/**
 * Reads the state of every stage's latest job (DescribeJobs in batches of 100, ListJobs for the
 * failed children of arrays). Jobs Batch no longer describes (it keeps finished jobs for a few
 * days) are counted from the run's completion markers instead.
 */
export async function readBatchStatus(options: {
  readonly plan: RunPlan;
  readonly record: BatchRecord;
  readonly api: Pick<BatchApi, 'describeJobs' | 'listFailedChildren'>;
  readonly storage?: Storage;
  readonly now?: () => Date;
}): Promise<BatchRunStatus> {
  const { plan, record, api } = options;
  const latest = latestJobs(record);
  const jobs = [...latest.values()].map((l) => l.job);
  const views = new Map((await api.describeJobs(jobs.map((j) => j.jobId))).map((v) => [v.jobId, v]));
  const failedOf = new Map<string, ChildFailure[]>();
  await Promise.all(
    jobs.map(async (job) => {
      const view = views.get(job.jobId);
      if (!view || job.arraySize === undefined) return;
      const failed = (view.statusSummary?.FAILED ?? 0) > 0;
      if (failed) failedOf.set(job.jobId, await api.listFailedChildren(job.jobId));
    }),
  );
  const missing = jobs.some((j) => !views.has(j.jobId));
  const markers = missing && options.storage ? (await readTaskStates(options.storage, plan)).done : undefined;

  const stages: BatchStageStatus[] = [];
  for (const stage of plan.graph.stages) {
    const entry = latest.get(stage.name);
    const base = { name: stage.name, job: stage.job, tasks: stage.taskCount };
    if (!entry) {
      stages.push({
        ...base,
        counts: { ...emptyCounts(), unknown: stage.taskCount },
        earlier: 0,
        failures: [],
      });
      continue;
    }
    const { job } = entry;
    const tasks = parseTaskRanges(job.tasks, `${record.runUri}/batch.json: ${stage.name}.tasks`);
    const earlier = stage.taskCount - tasks.length;
    const view = views.get(job.jobId);
    let counts: TaskCounts;
    let failures: BatchTaskFailure[] = [];
    if (!view) {
      const done = markers?.get(stage.name)?.size ?? 0;
      counts = { ...emptyCounts(), succeeded: done - earlier, unknown: tasks.length - (done - earlier) };
      if (!markers) counts = { ...emptyCounts(), unknown: tasks.length };
    } else {
      const result = stageCounts(job, view, failedOf.get(job.jobId) ?? []);
      counts = result.counts;
      failures = result.failures.map((f) => {
        const index = tasks[f.arrayIndex] ?? f.arrayIndex;
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
    counts.succeeded += earlier;
    stages.push({ ...base, jobId: job.jobId, jobName: job.jobName, counts, earlier, failures });
  }

  const last = record.submissions[record.submissions.length - 1];
  const allSettled = stages.every((s) => settled(s.counts));
  const anyFailed = stages.some((s) => s.counts.failed + s.counts.blocked > 0);
  const state: BatchRunStatus['state'] = !allSettled
    ? 'running'
    : last?.cancelledAt
      ? 'cancelled'
      : anyFailed || stages.some((s) => s.counts.unknown > 0)
        ? 'failed'
        : 'succeeded';
  return {
    runId: plan.runId,
    runUri: plan.runUri,
    pipeline: plan.pipeline.name,
    env: record.env,
    region: record.region,
    state,
    submissions: record.submissions.length,
    stages,
    checkedAt: (options.now ?? (() => new Date()))().toISOString(),
  };
}

/** Whether a status will not change any more (what `--watch` stops on). */
export function isFinished(status: BatchRunStatus): boolean {
  return status.state !== 'running';
}
