import { Command } from 'commander';
import { writeBatchRunReport, writeRunReport } from '../report/report.js';
import { isFinished } from '../runners/batch-status.js';
import type { BatchRunStatus } from '../runners/batch-status.js';
import { readBatchRecord } from '../runners/batch-record.js';
import type { RunPlan } from '../runners/records.js';
import type { Storage } from '../storage/types.js';
import { readRunPlan } from '../runners/prepare.js';
import { cliStorage } from './storage.js';

/**
 * For a run submitted to AWS Batch: its task states as Batch tells them. Batch forgets jobs some
 * days after they finish; then (or without credentials) the report shows the records alone.
 */
async function batchStatusOf(storage: Storage, plan: RunPlan): Promise<BatchRunStatus | undefined> {
  const record = await readBatchRecord(storage, plan.runUri);
  if (!record) return undefined;
  const [{ BatchApi, createBatchClient }, { readBatchStatus }] = await Promise.all([
    import('../runners/batch.js'),
    import('../runners/batch-status.js'),
  ]);
  try {
    return await readBatchStatus({
      plan,
      record,
      api: new BatchApi(createBatchClient(record.region), record.env),
      storage,
    });
  } catch (error) {
    process.stderr.write(
      `warning: AWS Batch could not be asked for the states of ${plan.runUri} (${error instanceof Error ? error.message : String(error)}); the report shows the completion markers only\n`,
    );
    return undefined;
  }
}

export const reportCommand = new Command('report')
  .description(
    "Write a run's HTML report (default <run>/report/index.html): the job graph coloured by state, " +
      'per-stage timings and task duration charts, failures with their first error line and log, ' +
      'dataset statistics and pictures, training curves and metrics, evaluation, links to the outputs. ' +
      'One file, no scripts, nothing fetched from the network: pictures up to 3 MiB are embedded, ' +
      'larger ones and the outputs are linked relative to the run folder. Local runs write it when ' +
      'they finish; for a run on S3 this reads the records through S3 and writes the page there.',
  )
  .argument('<run>', 'run location (local dir or s3:// prefix)')
  .option('--out <file>', 'where to write the page (local path or s3:// URI)')
  .option('--json', 'print the facts the page shows as JSON (the page is still written)', false)
  .option(
    '--no-batch',
    "a run on AWS Batch: show only the run's records (completion markers), without asking Batch for task states",
  )
  .action(async (run: string, opts: { out?: string; json: boolean; batch: boolean }) => {
    const storage = cliStorage();
    const plan = await readRunPlan(storage, run);
    const batch = opts.batch ? await batchStatusOf(storage, plan) : undefined;
    // a finished Batch run's own report also records the state it shows (status then leaves it be)
    const written =
      batch && !opts.out && isFinished(batch)
        ? (await writeBatchRunReport(storage, plan, batch, { force: true })).report!
        : await writeRunReport(storage, plan, {
            ...(opts.out ? { out: opts.out } : {}),
            ...(batch ? { batch } : {}),
          });
    if (opts.json) {
      process.stdout.write(
        JSON.stringify({ report: written.uri, embedded: written.embedded, ...written.facts }, null, 2) + '\n',
      );
      return;
    }
    process.stdout.write(`report: ${written.uri}\n`);
  });
