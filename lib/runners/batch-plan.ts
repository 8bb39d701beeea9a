/**
 * From a run's job graph to the exact `SubmitJob` requests the Batch runner sends: one job per
 * stage (an array job when it has two or more tasks), `N_TO_N` dependencies between per-item
 * stages, plain ones for fan-in, the environment's queue and job definition of each stage's
 * catalog job, the job entry point as the command. Pure: no AWS, no storage, so `geobatch plan
 * --runner batch` prints what `run` would send, and tests assert it field by field.
 */
import type { PlatformDescriptor } from '../config/descriptor.js';
import { maxCostTags } from '../config/schema.js';
import type { GraphStage, JobGraph, Queue } from '../pipeline/types.js';
import { joinUri } from '../storage/uri.js';
import { BatchError, deployHint, PlatformError } from './batch-errors.js';
import { runLayout } from './layout.js';
import { formatTaskRanges, isAllTasks } from './task-indexes.js';

/** Batch's limits. @see https://docs.aws.amazon.com/batch/latest/userguide/service_limits.html */
export const batchLimits = {
  maxArraySize: 10_000,
  maxDependencies: 20,
  maxJobNameLength: 128,
  /** Job tags plus the job definition's, when propagated. */
  maxTags: 50,
} as const;

/**
 * Tags the runner may put on a job: the job definitions carry the environment's cost tags
 * (at most `maxCostTags`, checked by the configuration schema) and Batch fails a job whose
 * propagated tags exceed 50 in total.
 */
export const maxJobTags = batchLimits.maxTags - maxCostTags;

/** Task index lists longer than this go to a file under the run instead of the command line. */
export const maxInlineIndexesLength = 4000;

/**
 * The retry rules of every job definition (lib/infra/job-definitions.ts): retry spot reclaims,
 * exit on anything else. A `SubmitJob` retry strategy replaces the definition's whole strategy,
 * so a stage that sets its own attempts must repeat these rules.
 */
export const retryRules: RetryRule[] = [
  { action: 'RETRY', onStatusReason: 'Host EC2*' },
  { action: 'EXIT', onReason: '*' },
];

export interface RetryRule {
  action: 'RETRY' | 'EXIT';
  onStatusReason?: string;
  onReason?: string;
  onExitCode?: string;
}

/** The fields of Batch's SubmitJob request that the runner sets (assignable to the SDK's input). */
export interface SubmitJobRequest {
  jobName: string;
  jobQueue: string;
  jobDefinition: string;
  arrayProperties?: { size: number };
  dependsOn?: { jobId: string; type?: 'N_TO_N' }[];
  containerOverrides: {
    command: string[];
    environment: { name: string; value: string }[];
    resourceRequirements: { type: 'VCPU' | 'MEMORY' | 'GPU'; value: string }[];
  };
  retryStrategy?: { attempts: number; evaluateOnExit: RetryRule[] };
  timeout: { attemptDurationSeconds: number };
  tags: Record<string, string>;
  propagateTags: boolean;
}

/** Where jobs go: the queue names and job definitions of one environment. */
export interface BatchTarget {
  readonly env: string;
  /** Queue name per class. */
  readonly queues: Readonly<Record<Queue, string>>;
  /** Catalog job -> job definition (an ARN with its revision, or a name) and the queue it belongs on. */
  readonly jobDefinitions: Readonly<Record<string, { readonly ref: string; readonly queue: Queue }>>;
  /** True when the names were derived offline by convention rather than read from the environment. */
  readonly offline?: boolean;
}

/**
 * The environment's queues and job definitions as the platform descriptor names them. Job
 * definitions are pinned to the revision the stack deployed (by ARN): a name alone would pick
 * the latest revision, which may be one registered by `--image-tag`.
 */
export function targetFromDescriptor(descriptor: PlatformDescriptor): BatchTarget {
  return {
    env: descriptor.env,
    queues: { cpu: descriptor.queues.cpu.name, gpu: descriptor.queues.gpu.name },
    jobDefinitions: Object.fromEntries(
      Object.entries(descriptor.jobDefinitions).map(([job, d]) => [job, { ref: d.arn, queue: d.queue }]),
    ),
  };
}

/**
 * The names the platform stack gives an environment's queues (`geobatch-<env>-<cpu|gpu>`) and job
 * definitions (`geobatch-<env>-<job>`), for planning without AWS access. A contract test checks
 * them against the synthesised stack.
 */
export function conventionalTarget(
  env: string,
  jobs: Readonly<Record<string, { readonly queue: Queue }>>,
): BatchTarget {
  const prefix = `geobatch-${env}`;
  return {
    env,
    queues: { cpu: `${prefix}-cpu`, gpu: `${prefix}-gpu` },
    jobDefinitions: Object.fromEntries(
      Object.entries(jobs).map(([job, entry]) => [job, { ref: `${prefix}-${job}`, queue: entry.queue }]),
    ),
    offline: true,
  };
}

/** `<pipeline>-<stage>-<runid>[-r<n>]`, made valid for Batch: [A-Za-z0-9_-], alphanumeric first, <= 128. */
export function batchJobName(pipeline: string, stage: string, runId: string, submission = 0): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9_-]+/g, '-');
  const tail = `-${clean(runId)}${submission > 0 ? `-r${submission}` : ''}`;
  let head = `${clean(pipeline)}-${clean(stage)}`.replace(/^[^A-Za-z0-9]+/, '');
  if (head === '') head = 'geobatch';
  return head.slice(0, batchLimits.maxJobNameLength - tail.length) + tail;
}

const tagKeyPattern = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
const tagValuePattern = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;

/** Parses `--tag key=value` options into cost tags, checking AWS's tag rules and geobatch's reserved keys. */
export function parseTagOptions(values: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    const tagValue = eq < 0 ? '' : value.slice(eq + 1);
    if (eq < 0 || !tagKeyPattern.test(key) || /^aws:/i.test(key) || key.startsWith('geobatch:')) {
      throw new BatchError(
        `--tag ${value}: expected key=value with a key of 1-128 tag characters, not starting with 'aws:' or 'geobatch:'`,
      );
    }
    if (!tagValuePattern.test(tagValue)) {
      throw new BatchError(
        `--tag ${value}: the value must be at most 256 tag characters (letters, digits, _ . : / = + - @ and spaces)`,
      );
    }
    tags[key] = tagValue;
  }
  return tags;
}

/** The tags of one stage's job: the run's identity plus the given cost tags. */
export function jobTags(
  identity: { readonly runId: string; readonly pipeline: string; readonly stage: string },
  costTags: Readonly<Record<string, string>>,
): Record<string, string> {
  const tags = {
    'geobatch:run': identity.runId,
    'geobatch:stage': identity.stage,
    'geobatch:pipeline': identity.pipeline,
    ...costTags,
  };
  const count = Object.keys(tags).length;
  if (count > maxJobTags) {
    throw new BatchError(
      `${count} tags on each job (3 geobatch:* tags + ${count - 3} --tag) but at most ${maxJobTags} fit: the job definitions carry up to ${maxCostTags} cost tags and Batch fails jobs with more than ${batchLimits.maxTags} propagated tags`,
    );
  }
  return tags;
}

/** A run as the planner needs it: identity, location and graph. */
export interface PlannedRun {
  readonly runId: string;
  readonly runUri: string;
  readonly graph: JobGraph;
}

export interface PlanSubmissionInput {
  readonly run: PlannedRun;
  readonly target: BatchTarget;
  /** Per stage, the task indexes to submit (increasing); absent: every task of every stage. */
  readonly tasks?: ReadonlyMap<string, readonly number[]>;
  /** 0 for the run, n for its n-th resume (job names get `-r<n>`). */
  readonly submission?: number;
  readonly costTags?: Readonly<Record<string, string>>;
}

/** One stage's job, before earlier stages' job ids are known. */
export interface PlannedJob {
  readonly stage: string;
  /**
   * The catalog job whose job definition runs the stage (one definition per job): the stage's
   * job, or its GPU twin `<job>-gpu` when the stage asks for GPUs. The task runs the stage's job.
   */
  readonly job: string;
  /** The plan's task indexes this job runs: array child k runs `tasks[k]`. */
  readonly tasks: readonly number[];
  /**
   * Stages this job waits for, and whether child i waits for child i only; `split`: the stage
   * runs over that stage but splits its items (`tasksPerItem`), so it waits for the whole job.
   */
  readonly dependsOn: readonly { readonly stage: string; readonly type?: 'N_TO_N'; readonly split?: true }[];
  /** The request, without `dependsOn` (filled in by {@link submitJobInput}). */
  readonly request: Omit<SubmitJobRequest, 'dependsOn'>;
}

export interface PlannedSubmission {
  readonly jobs: readonly PlannedJob[];
  /** Task index lists too long for a command line: write these before submitting. */
  readonly indexFiles: readonly { readonly uri: string; readonly body: string }[];
}

function resourceRequirements(
  stage: GraphStage,
): SubmitJobRequest['containerOverrides']['resourceRequirements'] {
  const { vcpus, memoryMiB, gpus } = stage.resources;
  if (!Number.isInteger(vcpus) || vcpus < 1) {
    throw new BatchError(
      `stage '${stage.name}': resources.vcpus = ${vcpus} cannot run on AWS Batch's EC2 compute environments, which take whole vCPUs; use an integer >= 1`,
    );
  }
  return [
    { type: 'VCPU', value: String(vcpus) },
    { type: 'MEMORY', value: String(memoryMiB) },
    ...(gpus > 0 ? [{ type: 'GPU' as const, value: String(gpus) }] : []),
  ];
}

function sameTasks(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The jobs that submit `tasks` of the graph (all of it by default), in dependency order. */
export function planSubmission(input: PlanSubmissionInput): PlannedSubmission {
  const { run, target } = input;
  const submission = input.submission ?? 0;
  const planUri = runLayout(run.runUri).plan;
  const jobs: PlannedJob[] = [];
  const indexFiles: { uri: string; body: string }[] = [];
  const planned = new Map<string, PlannedJob>();

  for (const stage of run.graph.stages) {
    const tasks = input.tasks ? input.tasks.get(stage.name) : allTaskIndexes(stage);
    if (!tasks || tasks.length === 0) continue;
    if (tasks.length > batchLimits.maxArraySize) {
      throw new BatchError(
        `stage '${stage.name}': ${tasks.length} tasks exceed Batch's array limit of ${batchLimits.maxArraySize}; set itemsPerTask`,
      );
    }
    // a CPU job with a GPU twin (`<job>-gpu`, e.g. predict) runs as the twin in a stage that asks for GPUs
    const twin = stage.queue === 'gpu' ? target.jobDefinitions[`${stage.job}-gpu`] : undefined;
    const definitionJob = twin?.queue === 'gpu' ? `${stage.job}-gpu` : stage.job;
    const definition = target.jobDefinitions[definitionJob];
    if (!definition) {
      const known = Object.keys(target.jobDefinitions).sort().join(', ') || 'none';
      throw new PlatformError(
        `environment '${target.env}' has no job definition for job '${stage.job}' (stage '${stage.name}'; it has: ${known}); ${deployHint(target.env)} with this version of geobatch`,
      );
    }
    if (definition.queue !== stage.queue) {
      throw new BatchError(
        `stage '${stage.name}' needs the ${stage.queue} queue (resources.gpus = ${stage.resources.gpus}) but job '${stage.job}' runs on the ${definition.queue} queue, whose image and instances its job definition uses; ${stage.queue === 'gpu' ? 'use a GPU job' : 'leave resources.gpus at the job default'}`,
      );
    }

    const dependsOn: { stage: string; type?: 'N_TO_N'; split?: true }[] = [];
    for (const dep of stage.dependsOn) {
      const upstream = planned.get(dep.stage);
      // a stage with nothing left to do (resume) is complete: nothing to wait for
      if (!upstream) continue;
      const perItem =
        dep.type === 'N_TO_N' &&
        tasks.length >= 2 &&
        upstream.tasks.length >= 2 &&
        sameTasks(tasks, upstream.tasks);
      dependsOn.push(
        perItem
          ? { stage: dep.stage, type: 'N_TO_N' }
          : { stage: dep.stage, ...(dep.split ? { split: true as const } : {}) },
      );
    }
    if (dependsOn.length > batchLimits.maxDependencies) {
      throw new BatchError(
        `stage '${stage.name}' depends on ${dependsOn.length} stages but a Batch job may have at most ${batchLimits.maxDependencies} dependencies`,
      );
    }

    const command = ['geobatch-job', planUri, stage.name];
    if (tasks.length === 1) {
      if (tasks[0] !== 0) command.push('--index', String(tasks[0]));
    } else if (!isAllTasks(tasks, stage.taskCount)) {
      const ranges = formatTaskRanges(tasks);
      if (ranges.length <= maxInlineIndexesLength) {
        command.push('--indexes', ranges);
      } else {
        const uri = joinUri(run.runUri, 'batch.tasks', `${submission}-${stage.name}.txt`);
        indexFiles.push({ uri, body: ranges + '\n' });
        command.push('--indexes', `@${uri}`);
      }
    }

    const request: Omit<SubmitJobRequest, 'dependsOn'> = {
      jobName: batchJobName(run.graph.pipeline, stage.name, run.runId, submission),
      jobQueue: target.queues[definition.queue],
      jobDefinition: definition.ref,
      ...(tasks.length >= 2 ? { arrayProperties: { size: tasks.length } } : {}),
      containerOverrides: {
        command,
        environment: [
          { name: 'GEOBATCH_RUN_ID', value: run.runId },
          { name: 'GEOBATCH_RUN_URI', value: run.runUri },
          { name: 'GEOBATCH_STAGE', value: stage.name },
        ],
        resourceRequirements: resourceRequirements(stage),
      },
      ...(stage.attempts !== undefined
        ? { retryStrategy: { attempts: stage.attempts, evaluateOnExit: retryRules.map((r) => ({ ...r })) } }
        : {}),
      timeout: { attemptDurationSeconds: stage.resources.timeoutSeconds },
      tags: jobTags(
        { runId: run.runId, pipeline: run.graph.pipeline, stage: stage.name },
        input.costTags ?? {},
      ),
      propagateTags: true,
    };
    const job: PlannedJob = { stage: stage.name, job: definitionJob, tasks, dependsOn, request };
    planned.set(stage.name, job);
    jobs.push(job);
  }
  return { jobs, indexFiles };
}

function allTaskIndexes(stage: GraphStage): number[] {
  return Array.from({ length: stage.taskCount }, (_, i) => i);
}

/** The final request of a planned job, once the job ids of the stages it waits for are known. */
export function submitJobInput(job: PlannedJob, jobIds: ReadonlyMap<string, string>): SubmitJobRequest {
  if (job.dependsOn.length === 0) return { ...job.request };
  const dependsOn = job.dependsOn.map((d) => {
    const jobId = jobIds.get(d.stage);
    if (!jobId) throw new Error(`stage '${job.stage}' depends on '${d.stage}', which has no job id yet`);
    return d.type ? { jobId, type: d.type } : { jobId };
  });
  return { ...job.request, dependsOn };
}

/**
 * What a resume submits: per stage, the tasks without a completion marker. Stages joined by
 * per-item (`N_TO_N`) dependencies get the union of their unfinished tasks, so that array child
 * k is the same task index in each and child k still waits only for child k; a task in that
 * union that had finished skips itself through its marker in a second.
 */
export function resumeTasks(
  graph: JobGraph,
  done: ReadonlyMap<string, ReadonlySet<number>>,
): Map<string, number[]> {
  const parent = new Map<string, string>(graph.stages.map((s) => [s.name, s.name]));
  const find = (name: string): string => {
    let root = name;
    while (parent.get(root) !== root) root = parent.get(root)!;
    parent.set(name, root);
    return root;
  };
  for (const stage of graph.stages) {
    for (const dep of stage.dependsOn) {
      if (dep.type === 'N_TO_N' && parent.has(dep.stage)) parent.set(find(stage.name), find(dep.stage));
    }
  }
  const unfinished = new Map<string, number[]>();
  for (const stage of graph.stages) {
    const finished = done.get(stage.name);
    const left = allTaskIndexes(stage).filter((i) => !finished?.has(i));
    if (left.length > 0) unfinished.set(stage.name, left);
  }
  const unions = new Map<string, Set<number>>();
  for (const [name, left] of unfinished) {
    const root = find(name);
    let set = unions.get(root);
    if (!set) unions.set(root, (set = new Set()));
    for (const i of left) set.add(i);
  }
  const out = new Map<string, number[]>();
  for (const stage of graph.stages) {
    if (!unfinished.has(stage.name)) continue;
    const union = [...unions.get(find(stage.name))!].filter((i) => i < stage.taskCount).sort((a, b) => a - b);
    out.set(stage.name, union);
  }
  return out;
}

function dependencyText(dep: PlannedJob['dependsOn'][number]): string {
  if (dep.type === 'N_TO_N') return 'N_TO_N: child i after child i';
  if (!dep.split) return 'whole job';
  return `whole job, not N_TO_N: this stage splits each item into tasks (tasksPerItem), so its children do not pair with ${dep.stage}'s`;
}

/** A readable listing of the calls a submission makes, for `geobatch plan --runner batch`. */
export function describeSubmission(planned: PlannedSubmission, target: BatchTarget): string {
  const lines: string[] = [];
  const ids = new Map(planned.jobs.map((j) => [j.stage, `<job id of ${j.stage}>`]));
  planned.jobs.forEach((job, n) => {
    const r = submitJobInput(job, ids);
    const res = r.containerOverrides.resourceRequirements.map((q) => `${q.type}=${q.value}`).join(' ');
    const deps = job.dependsOn.length
      ? job.dependsOn.map((d) => `${d.stage} (${dependencyText(d)})`).join(', ')
      : '-';
    lines.push(
      `${n + 1}. SubmitJob ${job.stage}`,
      `     jobName        ${r.jobName}`,
      `     jobQueue       ${r.jobQueue}`,
      `     jobDefinition  ${r.jobDefinition}${target.offline ? ` (the revision deployed in '${target.env}')` : ''}`,
      `     array          ${r.arrayProperties ? `${r.arrayProperties.size} children` : 'no (one task)'}`,
      `     dependsOn      ${deps}`,
      `     command        ${r.containerOverrides.command.join(' ')}`,
      `     resources      ${res}, timeout ${r.timeout.attemptDurationSeconds} s`,
      `     retryStrategy  ${r.retryStrategy ? `${r.retryStrategy.attempts} attempts (spot reclaims retried, other failures exit)` : "the job definition's"}`,
      `     tags           ${Object.entries(r.tags)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')} (propagated)`,
    );
  });
  for (const f of planned.indexFiles) lines.push(`writes ${f.uri} (task indexes of a resubmitted stage)`);
  return lines.join('\n');
}
