/**
 * The AWS Batch runner: submits a run's job graph (one SubmitJob per stage), reads its jobs'
 * states, cancels and resumes it. The only module that imports `@aws-sdk/client-batch`; what it
 * sends is planned by `batch-plan.ts` (pure) and what it learns is summarised by
 * `batch-status.ts`. Every run keeps its job ids in `<run>/batch.json` (`batch-record.ts`).
 */
import {
  BatchClient,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  ListJobsCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
} from '@aws-sdk/client-batch';
import type { JobDefinition, JobDetail, RegisterJobDefinitionCommandInput } from '@aws-sdk/client-batch';
import type { PlatformDescriptor } from '../config/descriptor.js';
import type { Storage } from '../storage/types.js';
import { checkBucketAccess } from './batch-access.js';
import { awsAccessError, BatchError, deployHint, PlatformError } from './batch-errors.js';
import { planSubmission, submitJobInput, targetFromDescriptor, resumeTasks } from './batch-plan.js';
import type { PlannedSubmission, SubmitJobRequest } from './batch-plan.js';
import { batchRecordVersion, writeBatchRecord } from './batch-record.js';
import type { BatchRecord, BatchSubmission, SubmittedJob } from './batch-record.js';
import { runLayout } from './layout.js';
import type { RunPlan } from './records.js';
import { readTaskStates } from './state.js';
import { formatTaskRanges } from './task-indexes.js';

export type JobState = 'SUBMITTED' | 'PENDING' | 'RUNNABLE' | 'STARTING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export const jobStates: readonly JobState[] = [
  'SUBMITTED',
  'PENDING',
  'RUNNABLE',
  'STARTING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
];

/** Whether a job in this state will not change any more. */
export function isFinalState(state: JobState): boolean {
  return state === 'SUCCEEDED' || state === 'FAILED';
}

/** One attempt of a job: where its log went and how it ended. */
export interface AttemptView {
  readonly logStreamName?: string;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly statusReason?: string;
  readonly startedAt?: number;
  readonly stoppedAt?: number;
}

/** What the runner needs of a DescribeJobs answer. */
export interface JobView {
  readonly jobId: string;
  readonly jobName: string;
  readonly status: JobState;
  readonly statusReason?: string;
  /** Array parents: the number of children, and how many are in each state. */
  readonly arraySize?: number;
  readonly statusSummary?: Partial<Record<JobState, number>>;
  /** The current (or last) attempt's container. */
  readonly logStreamName?: string;
  readonly logGroup?: string;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly attempts: readonly AttemptView[];
  readonly startedAt?: number;
  readonly stoppedAt?: number;
}

/** A failed child of an array job, from ListJobs. */
export interface ChildFailure {
  readonly arrayIndex: number;
  readonly jobId: string;
  readonly statusReason?: string;
  readonly exitCode?: number;
  readonly reason?: string;
}

/** A client in the environment's region (credentials from the default provider chain). */
export function createBatchClient(region: string): BatchClient {
  return new BatchClient({ region });
}

const describeBatchSize = 100;
const listPageSize = 1000;

/** Every Batch call the runner makes, with AWS errors turned into messages naming the environment. */
export class BatchApi {
  constructor(
    readonly client: BatchClient,
    readonly env: string,
  ) {}

  private async call<T>(doing: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw awsAccessError(error, this.env, doing) ?? error;
    }
  }

  /** Checks that the queues exist and take jobs (one DescribeJobQueues call). */
  async checkQueues(names: readonly string[]): Promise<void> {
    const unique = [...new Set(names)];
    if (unique.length === 0) return;
    const out = await this.call('describe the job queues', () =>
      this.client.send(new DescribeJobQueuesCommand({ jobQueues: unique })),
    );
    for (const name of unique) {
      const queue = out.jobQueues?.find((q) => q.jobQueueName === name || q.jobQueueArn === name);
      if (!queue || queue.status === 'DELETED' || queue.status === 'DELETING') {
        throw new PlatformError(
          `job queue ${name} of environment '${this.env}' does not exist: ${deployHint(this.env)}`,
        );
      }
      if (queue.state !== 'ENABLED') {
        throw new PlatformError(
          `job queue ${name} of environment '${this.env}' is ${queue.state ?? 'not enabled'}: enable it ('aws batch update-job-queue --job-queue ${name} --state ENABLED') or redeploy the environment`,
        );
      }
      if (queue.status === 'INVALID') {
        throw new PlatformError(
          `job queue ${name} of environment '${this.env}' is INVALID (${queue.statusReason ?? 'no reason given'}): fix and redeploy the environment`,
        );
      }
    }
  }

  /** DescribeJobDefinitions of these ARNs (100 per call); ARNs Batch does not know are left out. */
  async describeJobDefinitions(arns: readonly string[]): Promise<JobDefinition[]> {
    const described: JobDefinition[] = [];
    for (let i = 0; i < arns.length; i += describeBatchSize) {
      const chunk = arns.slice(i, i + describeBatchSize);
      const out = await this.call('describe the job definitions', () =>
        this.client.send(new DescribeJobDefinitionsCommand({ jobDefinitions: chunk })),
      );
      described.push(...(out.jobDefinitions ?? []));
    }
    return described;
  }

  /**
   * Registers a revision of `definition` that runs `image` instead (Batch cannot override the
   * image per job). Returns the new revision's ARN.
   */
  async registerImageRevision(definition: JobDefinition, image: string): Promise<string> {
    let registered;
    try {
      registered = await this.call('register a job definition revision', () =>
        this.client.send(new RegisterJobDefinitionCommand(derivedRevision(definition, image))),
      );
    } catch (error) {
      if (error instanceof PlatformError) throw error;
      const detail = error instanceof Error ? error.message : String(error);
      throw new BatchError(
        `--image-tag: RegisterJobDefinition of a revision of ${definition.jobDefinitionName ?? definition.jobDefinitionArn} (environment '${this.env}') running ${image} failed: ${detail}; nothing was submitted`,
        { cause: error },
      );
    }
    if (!registered.jobDefinitionArn)
      throw new BatchError(`RegisterJobDefinition returned no ARN for ${definition.jobDefinitionArn}`);
    return registered.jobDefinitionArn;
  }

  /** One SubmitJob call; returns the job id. */
  async submitJob(request: SubmitJobRequest): Promise<string> {
    const out = await this.call(`submit job ${request.jobName}`, () =>
      this.client.send(new SubmitJobCommand(request)),
    );
    if (!out.jobId) throw new BatchError(`SubmitJob returned no job id for ${request.jobName}`);
    return out.jobId;
  }

  /** DescribeJobs in batches of 100; jobs Batch no longer knows (expired after 7 days) are left out. */
  async describeJobs(jobIds: readonly string[]): Promise<JobView[]> {
    const views: JobView[] = [];
    for (let i = 0; i < jobIds.length; i += describeBatchSize) {
      const chunk = jobIds.slice(i, i + describeBatchSize);
      const out = await this.call("describe the run's jobs", () =>
        this.client.send(new DescribeJobsCommand({ jobs: chunk })),
      );
      for (const job of out.jobs ?? []) views.push(jobView(job));
    }
    return views;
  }

  /** The failed children of an array job (ListJobs by array job id, 1,000 per page). */
  async listFailedChildren(arrayJobId: string): Promise<ChildFailure[]> {
    const failures: ChildFailure[] = [];
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const out = await this.call('list the failed tasks', () =>
        this.client.send(
          new ListJobsCommand({
            arrayJobId,
            jobStatus: 'FAILED',
            maxResults: listPageSize,
            ...(token ? { nextToken: token } : {}),
          }),
        ),
      );
      for (const s of out.jobSummaryList ?? []) {
        const index = s.arrayProperties?.index;
        if (index === undefined || !s.jobId) continue;
        failures.push({
          arrayIndex: index,
          jobId: s.jobId,
          ...(s.statusReason ? { statusReason: s.statusReason } : {}),
          ...(s.container?.exitCode !== undefined ? { exitCode: s.container.exitCode } : {}),
          ...(s.container?.reason ? { reason: s.container.reason } : {}),
        });
      }
      nextToken = out.nextToken;
    } while (nextToken);
    return failures.sort((a, b) => a.arrayIndex - b.arrayIndex);
  }

  /** Terminates a job (cancels it if it has not started); on an array parent, every child. */
  async terminateJob(jobId: string, reason: string): Promise<void> {
    await this.call(`terminate job ${jobId}`, () =>
      this.client.send(new TerminateJobCommand({ jobId, reason })),
    );
  }
}

function jobView(job: JobDetail): JobView {
  const attempts: AttemptView[] = (job.attempts ?? []).map((a) => ({
    ...(a.container?.logStreamName ? { logStreamName: a.container.logStreamName } : {}),
    ...(a.container?.exitCode !== undefined ? { exitCode: a.container.exitCode } : {}),
    ...(a.container?.reason ? { reason: a.container.reason } : {}),
    ...(a.statusReason ? { statusReason: a.statusReason } : {}),
    ...(a.startedAt !== undefined ? { startedAt: a.startedAt } : {}),
    ...(a.stoppedAt !== undefined ? { stoppedAt: a.stoppedAt } : {}),
  }));
  const summary = job.arrayProperties?.statusSummary;
  const container = job.container;
  const logGroup = container?.logConfiguration?.options?.['awslogs-group'];
  return {
    jobId: job.jobId ?? '',
    jobName: job.jobName ?? '',
    status: (job.status ?? 'SUBMITTED') as JobState,
    ...(job.statusReason ? { statusReason: job.statusReason } : {}),
    ...(job.arrayProperties?.size !== undefined ? { arraySize: job.arrayProperties.size } : {}),
    ...(summary ? { statusSummary: summary as Partial<Record<JobState, number>> } : {}),
    ...(container?.logStreamName ? { logStreamName: container.logStreamName } : {}),
    ...(logGroup ? { logGroup } : {}),
    ...(container?.exitCode !== undefined ? { exitCode: container.exitCode } : {}),
    ...(container?.reason ? { reason: container.reason } : {}),
    attempts,
    ...(job.startedAt !== undefined ? { startedAt: job.startedAt } : {}),
    ...(job.stoppedAt !== undefined ? { stoppedAt: job.stoppedAt } : {}),
  };
}

/** The RegisterJobDefinition input for a copy of `definition` that runs `image`. */
export function derivedRevision(definition: JobDefinition, image: string): RegisterJobDefinitionCommandInput {
  if (definition.type !== 'container' || !definition.containerProperties) {
    throw new BatchError(
      `job definition ${definition.jobDefinitionArn} is not a single-container job definition; --image-tag cannot derive a revision from it`,
    );
  }
  // CloudFormation tags what it creates with aws:cloudformation:*; keys starting with aws: are
  // reserved, and RegisterJobDefinition refuses them
  const tags = definition.tags
    ? Object.fromEntries(Object.entries(definition.tags).filter(([key]) => !/^aws:/i.test(key)))
    : undefined;
  return {
    jobDefinitionName: definition.jobDefinitionName,
    type: 'container',
    containerProperties: { ...definition.containerProperties, image },
    ...(definition.parameters ? { parameters: definition.parameters } : {}),
    ...(definition.schedulingPriority !== undefined
      ? { schedulingPriority: definition.schedulingPriority }
      : {}),
    ...(definition.retryStrategy ? { retryStrategy: definition.retryStrategy } : {}),
    ...(definition.propagateTags !== undefined ? { propagateTags: definition.propagateTags } : {}),
    ...(definition.timeout ? { timeout: definition.timeout } : {}),
    ...(tags && Object.keys(tags).length ? { tags } : {}),
    ...(definition.platformCapabilities ? { platformCapabilities: definition.platformCapabilities } : {}),
  };
}

const imageTagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export interface SubmitOptions {
  readonly storage: Storage;
  readonly plan: RunPlan;
  readonly descriptor: PlatformDescriptor;
  readonly api: BatchApi;
  /** The run's Batch record so far (resume); a first submission starts one. */
  readonly record?: BatchRecord;
  /** Per stage, the task indexes to submit; default: all. */
  readonly tasks?: ReadonlyMap<string, readonly number[]>;
  /** Run the jobs with this tag of the environment's images (derived job-definition revisions). */
  readonly imageTag?: string;
  readonly costTags?: Readonly<Record<string, string>>;
  readonly now?: () => Date;
}

export interface SubmitResult {
  readonly record: BatchRecord;
  readonly submission: BatchSubmission;
}

/** What an error of a submission says after it: the run is kept as a Batch run, and how to retry it. */
function retryHint(runUri: string): string {
  return `run ${runUri} stays a Batch run (see its batch.json): once the cause is fixed, retry with 'geobatch resume ${runUri}'`;
}

function withRetryHint(error: unknown, runUri: string, undo = ''): Error {
  const hint = `${undo}; ${retryHint(runUri)}`;
  if (error instanceof PlatformError) return new PlatformError(`${error.message}${hint}`, { cause: error });
  if (error instanceof BatchError) return new BatchError(`${error.message}${hint}`, { cause: error });
  const detail = error instanceof Error ? error.message : String(error);
  return new BatchError(`${detail}${hint}`, { cause: error });
}

/**
 * Submits the run's graph (or the given tasks of it): checks the queues, registers image
 * revisions when asked (or reuses the run's), writes long task lists, sends one SubmitJob per
 * stage in dependency order. `<run>/batch.json` is written before the first call to AWS (state
 * `submitting`) and after each job, so that a run prepared for Batch stays one whatever fails:
 * a refused call leaves the submission `failed`, and the jobs already submitted are terminated
 * and recorded as cancelled.
 */
export async function submitToBatch(options: SubmitOptions): Promise<SubmitResult> {
  const { storage, plan, descriptor, api } = options;
  const now = options.now ?? (() => new Date());
  const number = options.record ? options.record.submissions.length : 0;
  const costTags = options.costTags ?? {};
  let target = targetFromDescriptor(descriptor);
  const planInput = {
    run: plan,
    ...(options.tasks ? { tasks: options.tasks } : {}),
    submission: number,
    costTags,
  };
  // planning checks everything it can before the first call to AWS
  let planned = planSubmission({ ...planInput, target });
  if (planned.jobs.length === 0) {
    throw new BatchError(`${plan.runUri}: nothing to submit: every task has a completion marker`);
  }
  if (options.imageTag !== undefined) checkImageTag(options.imageTag);
  checkBucketAccess({ graph: plan.graph, runUri: plan.runUri, run: 'run' }, descriptor);

  const base: BatchRecord = options.record ?? {
    version: batchRecordVersion,
    runId: plan.runId,
    runUri: plan.runUri,
    planUri: runLayout(plan.runUri).plan,
    env: descriptor.env,
    region: descriptor.region,
    logGroup: descriptor.logGroup.name,
    submissions: [],
  };
  const submittedAt = now().toISOString();
  const jobs: SubmittedJob[] = [];
  const jobIds = new Map<string, string>();
  let revisions: ReadonlyMap<string, string> = new Map();
  const submission = (
    state: NonNullable<BatchSubmission['state']>,
    extra: Partial<BatchSubmission> = {},
  ): BatchSubmission => ({
    number,
    kind: number === 0 ? 'run' : 'resume',
    submittedAt,
    ...(options.imageTag !== undefined ? { imageTag: options.imageTag } : {}),
    tags: { ...costTags },
    jobs: [...jobs],
    state,
    ...(revisions.size ? { jobDefinitions: Object.fromEntries(revisions) } : {}),
    ...extra,
  });
  const save = async (s: BatchSubmission): Promise<BatchRecord> => {
    const record: BatchRecord = { ...base, submissions: [...base.submissions, s] };
    await writeBatchRecord(storage, record);
    return record;
  };
  const failed = (error: unknown, extra: Partial<BatchSubmission> = {}) =>
    save(
      submission('failed', { error: error instanceof Error ? error.message : String(error), ...extra }),
    ).catch(() => undefined);

  await save(submission('submitting'));
  try {
    await api.checkQueues(planned.jobs.map((j) => j.request.jobQueue));
    if (options.imageTag !== undefined) {
      revisions = await imageRevisions(api, descriptor, planned, options.imageTag, base);
      target = {
        ...target,
        jobDefinitions: Object.fromEntries(
          Object.entries(target.jobDefinitions).map(([job, d]) => [
            job,
            { ...d, ref: revisions.get(d.ref) ?? d.ref },
          ]),
        ),
      };
      planned = planSubmission({ ...planInput, target });
    }
    for (const file of planned.indexFiles) await storage.writeAtomic(file.uri, file.body);
  } catch (error) {
    await failed(error);
    throw withRetryHint(error, plan.runUri);
  }

  let record = base;
  for (const [n, job] of planned.jobs.entries()) {
    const request = submitJobInput(job, jobIds);
    let jobId: string;
    try {
      jobId = await api.submitJob(request);
    } catch (error) {
      const cause =
        error instanceof PlatformError
          ? error
          : new BatchError(
              `SubmitJob for stage '${job.stage}' failed: ${error instanceof Error ? error.message : String(error)}`,
              { cause: error },
            );
      const cancelled = await terminateAll(api, jobs, `geobatch: submission of stage '${job.stage}' failed`);
      await failed(cause, jobs.length ? { cancelledAt: now().toISOString() } : {});
      const undo = jobs.length
        ? cancelled
          ? `; the ${jobs.length} job(s) already submitted were terminated`
          : `; terminating the ${jobs.length} job(s) already submitted failed: run 'geobatch cancel ${plan.runUri}'`
        : '; nothing was submitted';
      throw withRetryHint(cause, plan.runUri, undo);
    }
    jobIds.set(job.stage, jobId);
    jobs.push({
      stage: job.stage,
      jobId,
      jobName: request.jobName,
      jobQueue: request.jobQueue,
      jobDefinition: request.jobDefinition,
      ...(request.arrayProperties ? { arraySize: request.arrayProperties.size } : {}),
      tasks: formatTaskRanges(job.tasks),
    });
    // recorded at once: a job batch.json does not name would be out of reach of cancel and resume
    record = await save(submission(n === planned.jobs.length - 1 ? 'submitted' : 'submitting'));
  }
  return { record, submission: record.submissions[record.submissions.length - 1]! };
}

function checkImageTag(imageTag: string): void {
  if (!imageTagPattern.test(imageTag)) {
    throw new BatchError(
      `--image-tag ${imageTag}: expected a Docker tag (letters, digits, _ . -, at most 128, not starting with . or -)`,
    );
  }
}

/**
 * For each job definition the planned jobs use, the revision that runs `imageTag`: the one an
 * earlier submission of the run registered for the same tag while it is still ACTIVE with that
 * image, else a new one. Returns deployed ARN -> revision ARN.
 */
async function imageRevisions(
  api: BatchApi,
  descriptor: PlatformDescriptor,
  planned: PlannedSubmission,
  imageTag: string,
  record: BatchRecord,
): Promise<Map<string, string>> {
  const used = new Map<string, string>();
  for (const job of planned.jobs) {
    const definition = descriptor.jobDefinitions[job.job]!;
    used.set(definition.arn, `${descriptor.repositories[definition.queue].uri}:${imageTag}`);
  }
  const earlier = new Map<string, string>();
  for (const s of record.submissions) {
    if (s.imageTag !== imageTag) continue;
    for (const [deployed, revision] of Object.entries(s.jobDefinitions ?? {}))
      earlier.set(deployed, revision);
  }
  const out = new Map<string, string>();
  const candidates = [...used.keys()].filter((arn) => earlier.has(arn)).map((arn) => earlier.get(arn)!);
  if (candidates.length) {
    const described = await api.describeJobDefinitions(candidates);
    for (const [deployed, image] of used) {
      const revision = earlier.get(deployed);
      const d = revision ? described.find((x) => x.jobDefinitionArn === revision) : undefined;
      if (d && d.status === 'ACTIVE' && d.containerProperties?.image === image) out.set(deployed, revision!);
    }
  }
  const missing = [...used.keys()].filter((arn) => !out.has(arn));
  if (missing.length === 0) return out;
  const described = await api.describeJobDefinitions(missing);
  for (const arn of missing) {
    const definition = described.find((d) => d.jobDefinitionArn === arn);
    if (!definition) {
      throw new PlatformError(
        `job definition ${arn} of environment '${descriptor.env}' does not exist: ${deployHint(descriptor.env)}`,
      );
    }
    out.set(arn, await api.registerImageRevision(definition, used.get(arn)!));
  }
  return out;
}

async function terminateAll(api: BatchApi, jobs: readonly SubmittedJob[], reason: string): Promise<boolean> {
  const results = await Promise.allSettled(jobs.map((j) => api.terminateJob(j.jobId, reason)));
  return results.every((r) => r.status === 'fulfilled');
}

/** Every job of the run not known to be finished (jobs Batch no longer describes are finished). */
async function activeJobs(
  api: BatchApi,
  record: BatchRecord,
): Promise<{ job: SubmittedJob; view: JobView }[]> {
  const jobs = record.submissions.flatMap((s) => s.jobs);
  const views = new Map((await api.describeJobs(jobs.map((j) => j.jobId))).map((v) => [v.jobId, v]));
  const out: { job: SubmittedJob; view: JobView }[] = [];
  for (const job of jobs) {
    const view = views.get(job.jobId);
    if (view && !isFinalState(view.status)) out.push({ job, view });
  }
  return out;
}

export interface ResumeOptions extends Omit<SubmitOptions, 'tasks'> {
  /** Refuse when jobs of the run are still queued or running (default true). */
  readonly requireIdle?: boolean;
}

export interface ResumeResult {
  /** Per stage, the task indexes resubmitted (empty: the run is complete). */
  readonly tasks: ReadonlyMap<string, readonly number[]>;
  readonly submitted?: SubmitResult;
}

/**
 * Resubmits what did not finish: reads the run's completion markers (one listing), then submits
 * a graph of the unfinished tasks only ({@link resumeTasks}). Refuses while jobs of the run are
 * still active, so that no task runs twice at once.
 */
export async function resumeOnBatch(options: ResumeOptions): Promise<ResumeResult> {
  const { storage, plan, api, record } = options;
  if (record && options.requireIdle !== false) {
    const active = await activeJobs(api, record);
    if (active.length > 0) {
      const list = active.map((a) => `${a.job.stage} ${a.view.status}`).join(', ');
      throw new BatchError(
        `${plan.runUri}: ${active.length} job(s) of this run are still active (${list}); wait for them ('geobatch status ${plan.runUri} --watch') or stop them ('geobatch cancel ${plan.runUri}') before resuming`,
      );
    }
  }
  const states = await readTaskStates(storage, plan);
  const tasks = resumeTasks(plan.graph, states.done);
  if (tasks.size === 0) return { tasks };
  const submitted = await submitToBatch({ ...options, tasks });
  return { tasks, submitted };
}

export interface CancelResult {
  /** Jobs that were queued or running and were terminated. */
  readonly terminated: readonly SubmittedJob[];
  /** Jobs that had already finished. */
  readonly finished: number;
  readonly record: BatchRecord;
}

/**
 * Stops every job of the run: TerminateJob on each job not yet finished (which cancels queued
 * ones, stops running ones, and on an array parent does so for every child). Recorded in
 * `<run>/batch.json`.
 */
export async function cancelOnBatch(options: {
  readonly storage: Storage;
  readonly record: BatchRecord;
  readonly api: BatchApi;
  readonly reason: string;
  readonly now?: () => Date;
}): Promise<CancelResult> {
  const { storage, record, api } = options;
  const active = await activeJobs(api, record);
  // dependents first, so none of them is failed as "Dependent Job failed" instead of cancelled
  for (const { job } of [...active].reverse()) await api.terminateJob(job.jobId, options.reason);
  const at = (options.now ?? (() => new Date()))().toISOString();
  const stopped = new Set(active.map((a) => a.job.jobId));
  const updated: BatchRecord = {
    ...record,
    submissions: record.submissions.map((s) =>
      s.jobs.some((j) => stopped.has(j.jobId)) ? { ...s, cancelledAt: at } : s,
    ),
  };
  if (active.length > 0) await writeBatchRecord(storage, updated);
  const total = record.submissions.reduce((n, s) => n + s.jobs.length, 0);
  return { terminated: active.map((a) => a.job), finished: total - active.length, record: updated };
}
