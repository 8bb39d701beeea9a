/**
 * `geobatch-job <plan-uri> <stage> [--index N | --indexes <ranges>]`: the container entry point.
 * On Batch the index comes from AWS_BATCH_JOB_ARRAY_INDEX (0 for a job that is not an array);
 * a resumed array, which runs only some tasks, passes `--indexes` so that array child k runs
 * the k-th task listed. Logs go to stdout (CloudWatch) as well as to the run.
 */
import { Command } from 'commander';
import type { BatchTaskIdentity } from '../runners/records.js';
import { executeTask } from '../runners/task.js';
import { parseTaskRanges } from '../runners/task-indexes.js';
import type { Storage } from '../storage/types.js';
import { handleError, UsageError } from './errors.js';
import { cliStorage } from './storage.js';

function parseIndex(value: string, source: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${source}: expected a task index >= 0 but got '${value}'`);
  return n;
}

/** The task index: `--index` wins, then AWS_BATCH_JOB_ARRAY_INDEX, else 0. */
export function resolveTaskIndex(option: string | undefined, env: NodeJS.ProcessEnv): number {
  if (option !== undefined) return parseIndex(option, '--index');
  const fromBatch = env.AWS_BATCH_JOB_ARRAY_INDEX;
  if (fromBatch !== undefined && fromBatch !== '') return parseIndex(fromBatch, 'AWS_BATCH_JOB_ARRAY_INDEX');
  return 0;
}

/**
 * The task index when the job runs a list of tasks (`--indexes 3-5,9`, or `@<uri>` of a file
 * holding such a list): the entry at the array index.
 */
export async function resolveListedTaskIndex(
  indexes: string,
  env: NodeJS.ProcessEnv,
  storage: Storage,
): Promise<number> {
  const text = indexes.startsWith('@') ? (await storage.read(indexes.slice(1))).toString('utf8') : indexes;
  let list: number[];
  try {
    list = parseTaskRanges(text, indexes.startsWith('@') ? indexes.slice(1) : '--indexes');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const arrayIndex = resolveTaskIndex(undefined, env);
  const index = list[arrayIndex];
  if (index === undefined) {
    throw new UsageError(
      `array index ${arrayIndex} is out of range: --indexes lists ${list.length} task(s) (array indexes 0 to ${list.length - 1})`,
    );
  }
  return index;
}

/**
 * On Batch, the job this attempt runs as (AWS_BATCH_JOB_ID, `<id>:<k>` for an array child) and
 * its CloudWatch Logs stream, from the ECS task metadata endpoint (the container's own
 * `awslogs-stream`). Best effort: without the endpoint the stream is left out (`geobatch logs`
 * then asks DescribeJobs). Undefined off Batch.
 */
export async function readBatchIdentity(
  env: NodeJS.ProcessEnv,
  fetchImpl: typeof fetch = fetch,
): Promise<BatchTaskIdentity | undefined> {
  const id = env.AWS_BATCH_JOB_ID;
  if (!id) return undefined;
  // an array child's job id is `<array job id>:<index>`; add the index should Batch leave it out
  const arrayIndex = env.AWS_BATCH_JOB_ARRAY_INDEX;
  const jobId = arrayIndex && !id.includes(':') ? `${id}:${arrayIndex}` : id;
  const endpoint = env.ECS_CONTAINER_METADATA_URI_V4;
  if (!endpoint) return { jobId };
  try {
    const response = await fetchImpl(endpoint, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) return { jobId };
    const metadata = (await response.json()) as { LogOptions?: Record<string, unknown> };
    const stream = metadata.LogOptions?.['awslogs-stream'];
    return typeof stream === 'string' && stream ? { jobId, logStreamName: stream } : { jobId };
  } catch {
    return { jobId };
  }
}

/** Parses the arguments and runs one task; sets the exit code. */
export async function runJobCommand(argv: string[]): Promise<void> {
  const program = new Command('geobatch-job')
    .description('Run one task of a geobatch run (the entry point of every runner and container).')
    .argument('<plan-uri>', "the run's plan.json (local path or s3:// URI)")
    .argument('<stage>', 'stage name')
    .option('--index <n>', 'task index (default: AWS_BATCH_JOB_ARRAY_INDEX, else 0)')
    .option(
      '--indexes <ranges>',
      "the tasks of a resumed array ('0-9,17', or '@<uri>' of a file with them): array child k runs the k-th",
    )
    .exitOverride()
    .action(async (planUri: string, stage: string, opts: { index?: string; indexes?: string }) => {
      if (opts.index !== undefined && opts.indexes !== undefined) {
        throw new UsageError('--index and --indexes exclude each other');
      }
      const index =
        opts.indexes !== undefined
          ? await resolveListedTaskIndex(opts.indexes, process.env, cliStorage())
          : resolveTaskIndex(opts.index, process.env);
      const controller = new AbortController();
      const stop = () => controller.abort(new Error('terminated'));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const attempt = Number(process.env.AWS_BATCH_JOB_ATTEMPT ?? '1') || 1;
      const outcome = await executeTask({
        storage: cliStorage(),
        planUri,
        stage,
        index,
        signal: controller.signal,
        attempt,
        batchIdentity: () => readBatchIdentity(process.env),
        onLog: (line) => process.stdout.write(line + '\n'),
      });
      process.stdout.write(
        outcome.status === 'skipped'
          ? `${stage}[${index}] already done (marker from ${outcome.marker.finishedAt}); nothing to do\n`
          : `${stage}[${index}] done in ${outcome.marker.durationMs} ms\n`,
      );
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    handleError(error);
  }
}
