import { Command } from 'commander';
import { readBatchRecord } from '../runners/batch-record.js';
import { runLayout } from '../runners/layout.js';
import { readRunPlan } from '../runners/prepare.js';
import { readTaskMarker } from '../runners/state.js';
import { findStage } from '../runners/task.js';
import { StorageError } from '../storage/errors.js';
import { UsageError } from './errors.js';
import { parseTaskIndex } from './options.js';
import { cliStorage } from './storage.js';

function parseAttempt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 10)
    throw new UsageError(`--attempt: expected an integer in [1, 10] but got '${value}'`);
  return n;
}

export const logsCommand = new Command('logs')
  .description(
    "Print one task's log. For a run on AWS Batch, from its CloudWatch Logs stream (--follow streams\n" +
      'it until the task finishes, waiting for it to start if need be); for a local run, the log the task\n' +
      'left in <run>/logs/.',
  )
  .argument('<run>', 'run location (local dir or s3:// prefix)')
  .argument('<stage>', 'stage name')
  .option('--index <n>', 'task index within the stage', parseTaskIndex, 0)
  .option(
    '--attempt <n>',
    'Batch attempt whose log to print, of the job that finished the task when it is done (default: the attempt that finished it, else the latest)',
    parseAttempt,
  )
  .option('-f, --follow', 'keep printing new lines until the task finishes (Batch runs)', false)
  .action(
    async (run: string, stageName: string, opts: { index: number; attempt?: number; follow: boolean }) => {
      const storage = cliStorage();
      const plan = await readRunPlan(storage, run);
      const stage = findStage(plan.graph, stageName);
      const record = await readBatchRecord(storage, plan.runUri);
      if (!record) {
        if (opts.index >= stage.taskCount) {
          throw new UsageError(
            `stage '${stage.name}' has ${stage.taskCount} task(s): --index must be < ${stage.taskCount}`,
          );
        }
        const uri = runLayout(plan.runUri).log(stage.name, opts.index);
        try {
          process.stdout.write(await storage.read(uri));
        } catch (error) {
          if (error instanceof StorageError && error.code === 'NotFound') {
            throw new UsageError(
              `${stage.name}[${opts.index}] has no log yet (${uri}): the task has not run`,
            );
          }
          throw error;
        }
        return;
      }
      const [{ BatchApi, createBatchClient }, { createLogsClient, streamTaskLogs }] = await Promise.all([
        import('../runners/batch.js'),
        import('../runners/batch-logs.js'),
      ]);
      const marker =
        opts.index < stage.taskCount
          ? await readTaskMarker(storage, plan, stage.name, opts.index)
          : undefined;
      await streamTaskLogs({
        plan,
        record,
        stage: stage.name,
        index: opts.index,
        ...(marker ? { marker } : {}),
        ...(opts.attempt !== undefined ? { attempt: opts.attempt } : {}),
        follow: opts.follow,
        api: new BatchApi(createBatchClient(record.region), record.env),
        logs: createLogsClient(record.region),
        write: (line) => process.stdout.write(line + '\n'),
        notice: (message) => process.stderr.write(message + '\n'),
      });
    },
  );
