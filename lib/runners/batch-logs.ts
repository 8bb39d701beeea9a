/**
 * The log of one task of a run on AWS Batch: its CloudWatch Logs stream (named by DescribeJobs),
 * read page by page and, with `follow`, polled until the task finishes, backing off when
 * CloudWatch Logs throttles. The only module that imports the CloudWatch Logs client.
 */
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { awsAccessError, BatchError } from './batch-errors.js';
import { isFinalState } from './batch.js';
import type { BatchApi, JobView } from './batch.js';
import type { BatchRecord, SubmittedJob } from './batch-record.js';
import type { RunPlan, TaskMarker } from './records.js';
import { findStage } from './task.js';
import { parseTaskRanges } from './task-indexes.js';

/** A client in the environment's region. */
export function createLogsClient(region: string): CloudWatchLogsClient {
  return new CloudWatchLogsClient({ region });
}

/** The Batch job that runs task `index` of `stage` in the latest submission that included it. */
export function locateTask(
  record: BatchRecord,
  plan: RunPlan,
  stageName: string,
  index: number,
): { job: SubmittedJob; jobId: string; arrayIndex?: number } {
  const stage = findStage(plan.graph, stageName);
  if (!Number.isInteger(index) || index < 0 || index >= stage.taskCount) {
    throw new BatchError(
      `stage '${stage.name}' has ${stage.taskCount} task(s): --index must be an integer in [0, ${stage.taskCount - 1}] but got ${index}`,
    );
  }
  for (const submission of [...record.submissions].reverse()) {
    const job = submission.jobs.find((j) => j.stage === stage.name);
    if (!job) continue;
    const k = parseTaskRanges(job.tasks).indexOf(index);
    if (k < 0) continue;
    if (job.arraySize === undefined) return { job, jobId: job.jobId };
    return { job, jobId: `${job.jobId}:${k}`, arrayIndex: k };
  }
  throw new BatchError(`${stage.name}[${index}] was never submitted to Batch in run ${record.runUri}`);
}

export interface BackoffOptions {
  /** First wait after a throttled call, ms. @default 500 */
  readonly baseMs?: number;
  /** Longest wait, ms. @default 20000 */
  readonly maxMs?: number;
  /** Throttled calls retried before giving up. @default 10 */
  readonly maxRetries?: number;
  /** @default Math.random (waits are between half and all of the exponential delay) */
  readonly random?: () => number;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Waits `ms`, or rejects when `signal` aborts. */
export const sleep: Sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function isThrottling(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return (
    error.name === 'ThrottlingException' ||
    error.name === 'TooManyRequestsException' ||
    error.name === 'LimitExceededException' ||
    status === 429
  );
}

/** Calls `send`, waiting exponentially longer (with jitter) after each throttling error. */
export async function withBackoff<T>(
  send: () => Promise<T>,
  options: BackoffOptions & { readonly sleep?: Sleep; readonly signal?: AbortSignal } = {},
): Promise<T> {
  const baseMs = options.baseMs ?? 500;
  const maxMs = options.maxMs ?? 20_000;
  const maxRetries = options.maxRetries ?? 10;
  const random = options.random ?? Math.random;
  const wait = options.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      if (!isThrottling(error) || attempt >= maxRetries) throw error;
      const delay = Math.min(maxMs, baseMs * 2 ** attempt);
      await wait(Math.round(delay / 2 + (random() * delay) / 2), options.signal);
    }
  }
}

export interface TaskLogsOptions {
  readonly plan: RunPlan;
  readonly record: BatchRecord;
  readonly stage: string;
  readonly index: number;
  /**
   * The task's completion marker, when it has one: a task done on Batch is shown from the job and
   * attempt that wrote it, not from a later submission's attempt that found it done.
   */
  readonly marker?: TaskMarker;
  /**
   * 1-based attempt whose log to show, of the job that wrote the marker when there is one.
   * @default the attempt that wrote the marker, else the latest
   */
  readonly attempt?: number;
  /** Keep reading until the task finishes (waits for it to start, too). */
  readonly follow?: boolean;
  readonly api: Pick<BatchApi, 'describeJobs'>;
  readonly logs: CloudWatchLogsClient;
  /** Receives each log line. */
  readonly write: (line: string) => void;
  /** Receives notes for people (waiting for the task to start, a new attempt). */
  readonly notice?: (message: string) => void;
  readonly signal?: AbortSignal;
  /** Between polls while following, ms. @default 2000 */
  readonly pollMs?: number;
  readonly sleep?: Sleep;
  readonly backoff?: BackoffOptions;
}

/** Where a task's log is: the stream of the chosen attempt, or undefined when it has not started. */
function streamOf(view: JobView, attempt: number | undefined): string | undefined {
  if (attempt === undefined)
    return view.logStreamName ?? view.attempts[view.attempts.length - 1]?.logStreamName;
  // `attempts` lists finished attempts only: a running job's current one is the container's
  const current = attempt === view.attempts.length + 1 && !isFinalState(view.status);
  return view.attempts[attempt - 1]?.logStreamName ?? (current ? view.logStreamName : undefined);
}

/** Prints the log of one task; with `follow`, until the task has finished. Returns the lines written. */
export async function streamTaskLogs(options: TaskLogsOptions): Promise<number> {
  const { record, plan, api, logs, follow = false } = options;
  const wait = options.sleep ?? sleep;
  const pollMs = options.pollMs ?? 2000;
  const task = `${options.stage}[${options.index}]`;
  const latest = locateTask(record, plan, options.stage, options.index);
  const wrote = options.marker?.batch;
  const jobId = wrote?.jobId ?? latest.jobId;
  const attempt = options.attempt ?? (wrote ? options.marker!.attempt : undefined);
  if (wrote && wrote.jobId !== latest.jobId) {
    options.notice?.(
      `${task} was done by job ${wrote.jobId} (attempt ${options.marker!.attempt}); showing its log, not that of the later job ${latest.jobId}, which found it done`,
    );
  }
  const env = record.env;

  const describe = async (): Promise<JobView> => {
    const [view] = await withBackoff(() => api.describeJobs([jobId]), {
      ...options.backoff,
      sleep: wait,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // Batch forgets finished jobs after a few days; the marker still names the stream
    if (!view && wrote?.logStreamName && options.attempt === undefined) {
      const n = options.marker!.attempt;
      const stream = wrote.logStreamName;
      return {
        jobId,
        jobName: jobId,
        status: 'SUCCEEDED',
        attempts: Array.from({ length: n }, (_, i) => (i === n - 1 ? { logStreamName: stream } : {})),
        logStreamName: stream,
      };
    }
    if (!view) {
      throw new BatchError(
        `Batch no longer knows job ${jobId} (${task}); it keeps finished jobs for a few days. The task's log is also kept in the run: ${record.runUri}/logs/${options.stage}/${options.index}.log`,
      );
    }
    return view;
  };
  // the marker's attempt when Batch lists it, else the stream the marker names, else the latest
  const streamFor = (view: JobView): string | undefined =>
    streamOf(view, attempt) ??
    (options.attempt === undefined && wrote ? (wrote.logStreamName ?? streamOf(view, undefined)) : undefined);

  let view = await describe();
  if (attempt !== undefined && !follow && !streamFor(view)) {
    throw new BatchError(`${task} has no attempt ${attempt} with a log (it has had ${view.attempts.length})`);
  }
  let waitingNoted = false;
  while (!streamFor(view)) {
    if (isFinalState(view.status)) {
      throw new BatchError(
        `${task} ${view.status} without starting${view.statusReason ? ` (${view.statusReason})` : ''}, so it has no log`,
      );
    }
    if (!follow) {
      throw new BatchError(
        `${task} has not started yet (${view.status}): its log appears once it runs; add --follow to wait for it`,
      );
    }
    if (!waitingNoted)
      options.notice?.(`${task} has not started yet (${view.status}); waiting for it to start`);
    waitingNoted = true;
    await wait(pollMs, options.signal);
    view = await describe();
  }

  let stream = streamFor(view)!;
  const group = view.logGroup ?? record.logGroup;
  let token: string | undefined;
  let lines = 0;
  let finished = isFinalState(view.status);
  let nextStream: string | undefined;
  for (;;) {
    const sent = token;
    let page: { events: { message?: string }[]; next?: string };
    try {
      const out = await withBackoff(
        () =>
          logs.send(
            new GetLogEventsCommand({
              logGroupName: group,
              logStreamName: stream,
              startFromHead: true,
              ...(sent ? { nextToken: sent } : {}),
            }),
            options.signal ? { abortSignal: options.signal } : {},
          ),
        { ...options.backoff, sleep: wait, ...(options.signal ? { signal: options.signal } : {}) },
      );
      page = { events: out.events ?? [], ...(out.nextForwardToken ? { next: out.nextForwardToken } : {}) };
    } catch (error) {
      const access = awsAccessError(error, env, `read the log of ${task}`);
      if (access) throw access;
      // the stream is created by the container's first line; until then it does not exist
      if (!(error instanceof Error && error.name === 'ResourceNotFoundException')) throw error;
      if (!follow || finished) {
        throw new BatchError(
          `${task}: no log stream ${stream} in log group ${group} (the task has written nothing yet)`,
          {
            cause: error,
          },
        );
      }
      page = { events: [], ...(sent ? { next: sent } : {}) };
    }
    for (const event of page.events) {
      options.write((event.message ?? '').replace(/\n$/, ''));
      lines++;
    }
    const atEnd = page.next === undefined || page.next === sent;
    token = page.next ?? sent;
    if (!atEnd) continue;
    if (nextStream) {
      options.notice?.(`${task}: a new attempt started (log stream ${nextStream})`);
      stream = nextStream;
      nextStream = undefined;
      token = undefined;
      continue;
    }
    if (!follow || finished) return lines;
    await wait(pollMs, options.signal);
    view = await describe();
    finished = isFinalState(view.status);
    const current = streamFor(view);
    // a retry writes to a new stream: read the old one to its end first
    if (current && current !== stream) nextStream = current;
  }
}
