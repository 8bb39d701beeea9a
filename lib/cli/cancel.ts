import { Command } from 'commander';
import { userInfo } from 'node:os';
import { readBatchRecord } from '../runners/batch-record.js';
import { readRunPlan } from '../runners/prepare.js';
import { UsageError } from './errors.js';
import { cliStorage } from './storage.js';

function whoami(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown user';
  }
}

export const cancelCommand = new Command('cancel')
  .description(
    'Stop every AWS Batch job of a run: queued jobs are cancelled, running ones terminated (on an array\n' +
      'job, every child). Finished tasks keep their results and markers: geobatch resume <run> later\n' +
      'resubmits only what did not finish.',
  )
  .argument('<run>', 'run location (s3:// prefix)')
  .option('--reason <text>', 'why, recorded with each job', undefined)
  .option('--json', 'print the result as JSON', false)
  .action(async (run: string, opts: { reason?: string; json: boolean }) => {
    const storage = cliStorage();
    const plan = await readRunPlan(storage, run);
    const record = await readBatchRecord(storage, plan.runUri);
    if (!record) {
      throw new UsageError(
        `${plan.runUri} was not submitted to AWS Batch (no batch.json): a local run is stopped with Ctrl-C in the terminal that runs it`,
      );
    }
    const { BatchApi, createBatchClient, cancelOnBatch } = await import('../runners/batch.js');
    const result = await cancelOnBatch({
      storage,
      record,
      api: new BatchApi(createBatchClient(record.region), record.env),
      reason: opts.reason ?? `cancelled with geobatch cancel by ${whoami()}`,
    });
    if (opts.json) {
      process.stdout.write(
        JSON.stringify({
          runId: plan.runId,
          runUri: plan.runUri,
          terminated: result.terminated.map((j) => ({ stage: j.stage, jobId: j.jobId })),
          finished: result.finished,
        }) + '\n',
      );
      return;
    }
    if (result.terminated.length === 0) {
      process.stdout.write(`run ${plan.runId}: every job had already finished; nothing to cancel\n`);
      return;
    }
    process.stdout.write(
      `run ${plan.runId}: stopped ${result.terminated.length} job(s) (${result.terminated.map((j) => j.stage).join(', ')})` +
        `${result.finished ? `; ${result.finished} had already finished` : ''}\n` +
        `finished tasks keep their results; resubmit the rest with: geobatch resume ${plan.runUri}\n`,
    );
  });
