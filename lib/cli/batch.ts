/**
 * What `run`, `resume` and `plan` share for the AWS Batch runner: submission and its output.
 * Commands import this module lazily (`await import`), so that the AWS SDK clients it loads
 * cost nothing to commands that never reach AWS Batch.
 */
import { catalog } from '../../jobs/catalog.js';
import type { PlatformDescriptor } from '../config/descriptor.js';
import { BatchApi, createBatchClient, resumeOnBatch, submitToBatch } from '../runners/batch.js';
import { checkBucketAccess } from '../runners/batch-access.js';
import type { SubmitResult } from '../runners/batch.js';
import { BatchError } from '../runners/batch-errors.js';
import {
  conventionalTarget,
  describeSubmission,
  parseTagOptions,
  planSubmission,
  submitJobInput,
} from '../runners/batch-plan.js';
import { readBatchRecord } from '../runners/batch-record.js';
import type { BatchRecord } from '../runners/batch-record.js';
import { discoverPlatform } from '../runners/platform.js';
import { loadPipeline, prepareRun } from '../runners/prepare.js';
import type { LoadedPipeline } from '../runners/prepare.js';
import type { RunPlan } from '../runners/records.js';
import type { JobGraph } from '../pipeline/types.js';
import { isS3Uri, joinUri } from '../storage/uri.js';
import type { Storage } from '../storage/types.js';
import { UsageError } from './errors.js';
import { cliStorage } from './storage.js';

/** The environment a Batch command works in, or a usage error saying how to name one. */
export function requireEnv(env: string | undefined, what: string): string {
  if (!env) {
    throw new UsageError(
      `${what} needs --env <name> (or GEOBATCH_ENV): the platform environment whose queues and buckets to use, e.g. dev`,
    );
  }
  return env;
}

export interface BatchSubmitOptions {
  readonly env?: string;
  readonly run?: string;
  readonly new?: boolean;
  readonly imageTag?: string;
  readonly tag?: string[];
  readonly json?: boolean;
}

function requireS3Run(run: string | undefined, what: string): void {
  if (run !== undefined && !isS3Uri(run)) {
    throw new UsageError(
      `${what}: a run on AWS Batch must be on S3, where its containers read the plan and write results, but got '${run}'; give an s3:// location, or leave --run out to use the environment's runs bucket`,
    );
  }
}

/** Where runs of a pipeline go on Batch: its `output` when that is on S3, else the environment's runs bucket. */
export function batchRunsRoot(
  loaded: Pick<LoadedPipeline, 'spec' | 'runsRoot'>,
  descriptor: PlatformDescriptor,
): string {
  if (isS3Uri(loaded.spec.output)) return loaded.runsRoot;
  const { name, prefix } = descriptor.buckets.runs;
  return joinUri(`s3://${name}`, prefix, loaded.spec.name);
}

/** Containers cannot read this machine's files: every item must be on S3. */
export function checkItemsOnS3(graph: JobGraph, env: string, descriptor?: PlatformDescriptor): void {
  for (const [set, items] of Object.entries(graph.items)) {
    const local = items.filter((i) => !isS3Uri(i.uri));
    if (local.length === 0) continue;
    const where = descriptor ? ` (e.g. to s3://${descriptor.buckets.raw.name}/)` : '';
    throw new BatchError(
      `inputs.${set}: ${local.length} of ${items.length} item(s) are files on this machine (e.g. ${local[0]!.uri}), which containers on AWS Batch (environment '${env}') cannot read; upload them${where} and point the pipeline at their s3:// location`,
    );
  }
}

/** `geobatch run <file> --runner batch`: prepares the run on S3 and submits it (or what is left of it). */
export async function runOnBatch(file: string, options: BatchSubmitOptions): Promise<void> {
  const env = requireEnv(options.env, '--runner batch');
  requireS3Run(options.run, '--run');
  const costTags = parseTagOptions(options.tag ?? []);
  const storage = cliStorage();
  const loaded = await loadPipeline(storage, file);
  const descriptor = await discoverPlatform(env);
  checkItemsOnS3(loaded.graph, env, descriptor);
  // before plan.json is written: a run its jobs cannot read or write is not created
  const runsRoot = batchRunsRoot(loaded, descriptor);
  checkBucketAccess(
    {
      graph: loaded.graph,
      runUri: options.run ?? runsRoot,
      run: options.run ? '--run' : isS3Uri(loaded.spec.output) ? 'output' : 'run',
    },
    descriptor,
  );
  const { plan, continued } = await prepareRun(
    storage,
    { ...loaded, runsRoot },
    { ...(options.run ? { runUri: options.run } : {}), fresh: options.new === true },
  );
  const api = new BatchApi(createBatchClient(descriptor.region), env);
  if (!continued) {
    const result = await submitToBatch({
      storage,
      plan,
      descriptor,
      api,
      costTags,
      ...(options.imageTag !== undefined ? { imageTag: options.imageTag } : {}),
    });
    printSubmission(plan, result, options.json === true);
    return;
  }
  await resumeAndPrint(storage, plan, descriptor, api, await readBatchRecord(storage, plan.runUri), {
    ...options,
    costTags,
    note: 'continuing the latest run of this pipeline (same file and inputs; --new starts another): ',
  });
}

/** `geobatch resume <run>` on Batch: resubmits the unfinished tasks. */
export async function resumeOnBatchCommand(
  storage: Storage,
  plan: RunPlan,
  options: BatchSubmitOptions,
): Promise<void> {
  if (!isS3Uri(plan.runUri)) {
    throw new UsageError(
      `${plan.runUri}: this run is on this machine, where containers on AWS Batch cannot read it; resume it here with --runner local`,
    );
  }
  const record = await readBatchRecord(storage, plan.runUri);
  const env = requireEnv(options.env ?? record?.env, `resuming ${plan.runUri} on AWS Batch`);
  const last = record?.submissions[record.submissions.length - 1];
  const costTags = options.tag?.length ? parseTagOptions(options.tag) : (last?.tags ?? {});
  const descriptor = await discoverPlatform(env);
  checkItemsOnS3(plan.graph, env, descriptor);
  const api = new BatchApi(createBatchClient(descriptor.region), env);
  await resumeAndPrint(storage, plan, descriptor, api, record, {
    ...options,
    ...(options.imageTag === undefined && last?.imageTag ? { imageTag: last.imageTag } : {}),
    costTags,
    note: '',
  });
}

async function resumeAndPrint(
  storage: Storage,
  plan: RunPlan,
  descriptor: PlatformDescriptor,
  api: BatchApi,
  record: BatchRecord | undefined,
  options: BatchSubmitOptions & { costTags: Record<string, string>; note: string },
): Promise<void> {
  const resumed = await resumeOnBatch({
    storage,
    plan,
    descriptor,
    api,
    costTags: options.costTags,
    ...(record ? { record } : {}),
    ...(options.imageTag !== undefined ? { imageTag: options.imageTag } : {}),
  });
  if (!resumed.submitted) {
    if (options.json)
      process.stdout.write(
        JSON.stringify({ type: 'complete', runId: plan.runId, runUri: plan.runUri }) + '\n',
      );
    else
      process.stdout.write(
        `${options.note}run ${plan.runId} is complete: every task has a completion marker; nothing to submit\n${plan.runUri}\n`,
      );
    return;
  }
  if (!options.json && options.note) process.stdout.write(options.note + 'submitting its unfinished tasks\n');
  printSubmission(plan, resumed.submitted, options.json === true);
}

/** Prints what was submitted, and how to follow, read and stop it. */
export function printSubmission(
  plan: RunPlan,
  result: SubmitResult,
  json: boolean,
  out: NodeJS.WritableStream = process.stdout,
): void {
  const { record, submission } = result;
  if (json) {
    out.write(
      JSON.stringify({
        type: 'submitted',
        runId: plan.runId,
        runUri: plan.runUri,
        env: record.env,
        region: record.region,
        submission: submission.number,
        jobs: submission.jobs,
      }) + '\n',
    );
    return;
  }
  const verb = submission.number === 0 ? 'submitted run' : `resubmitted (resume ${submission.number}) run`;
  const lines = [
    `${verb} ${plan.runId} of pipeline ${plan.pipeline.name} to AWS Batch (environment ${record.env}, ${record.region}): ${submission.jobs.length} job(s)${submission.imageTag ? `, image tag ${submission.imageTag}` : ''}`,
    `  ${plan.runUri}`,
  ];
  const width = Math.max(...submission.jobs.map((j) => j.stage.length));
  for (const job of submission.jobs) {
    const stage = plan.graph.stages.find((s) => s.name === job.stage);
    const size = job.arraySize ?? 1;
    const what = job.arraySize ? `array of ${size} tasks` : '1 task';
    const partial = stage && size < stage.taskCount ? ` (of ${stage.taskCount}: tasks ${job.tasks})` : '';
    lines.push(`  ${job.stage.padEnd(width)}  ${what}${partial} on ${job.jobQueue}  job ${job.jobId}`);
  }
  const first = submission.jobs[0]!;
  lines.push(
    `follow it:     geobatch status ${plan.runUri} --watch`,
    `a task's log:  geobatch logs ${plan.runUri} ${first.stage} --index ${first.tasks.split(/[-,]/)[0]} --follow`,
    `stop it:       geobatch cancel ${plan.runUri}`,
  );
  out.write(lines.join('\n') + '\n');
}

/** A run id that reads as the format of the id the submission will create. */
const placeholderRunId = 'YYYYMMDD-HHMMSS-xxxx';

/**
 * `geobatch plan <file> --runner batch --env <env>`: the SubmitJob calls a run would make, with
 * names the environment's stack gives its queues and job definitions, without calling AWS.
 */
export async function planOnBatch(
  file: string,
  options: { env?: string; json?: boolean; tag?: string[] },
): Promise<void> {
  const env = requireEnv(options.env, '--runner batch');
  const costTags = parseTagOptions(options.tag ?? []);
  const loaded = await loadPipeline(cliStorage(), file);
  const runsRoot = isS3Uri(loaded.spec.output)
    ? loaded.runsRoot
    : joinUri(`s3://runs-bucket-of-${env}`, 'runs', loaded.spec.name);
  const runUri = joinUri(runsRoot, placeholderRunId);
  const target = conventionalTarget(env, catalog);
  const planned = planSubmission({
    run: { runId: placeholderRunId, runUri, graph: loaded.graph },
    target,
    costTags,
  });
  const ids = new Map(planned.jobs.map((j) => [j.stage, `<job id of ${j.stage}>`]));
  const local = Object.entries(loaded.graph.items).filter(([, items]) => items.some((i) => !isS3Uri(i.uri)));
  if (options.json) {
    process.stdout.write(
      JSON.stringify(
        {
          pipeline: loaded.spec.name,
          env,
          runUri,
          calls: planned.jobs.map((j) => ({
            api: 'SubmitJob',
            stage: j.stage,
            input: submitJobInput(j, ids),
          })),
          ...(local.length ? { localInputs: local.map(([set]) => set) } : {}),
        },
        null,
        2,
      ) + '\n',
    );
    return;
  }
  const lines = [
    `pipeline ${loaded.spec.name} (${loaded.file}) on AWS Batch, environment ${env}: ${planned.jobs.length} SubmitJob call(s); nothing is sent (no AWS call is made)`,
    `run ${runUri}`,
    isS3Uri(loaded.spec.output)
      ? ''
      : `  (the bucket is the environment's runs bucket and the run id is made at submission; 'run' reads both from /geobatch/${env}/platform)`,
    '',
    describeSubmission(planned, target),
  ];
  if (local.length) {
    lines.push(
      '',
      `note: inputs ${local.map(([s]) => s).join(', ')} are files on this machine; 'geobatch run --runner batch' needs them on S3`,
    );
  }
  process.stdout.write(lines.filter((l, i) => l !== '' || i > 1).join('\n') + '\n');
}
