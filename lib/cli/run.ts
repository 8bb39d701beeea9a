import { Command, Option } from 'commander';
import { loadPipeline, prepareRun } from '../runners/prepare.js';
import { UsageError } from './errors.js';
import { executeLocally, parseConcurrency } from './execute.js';
import { cliStorage } from './storage.js';

export const runCommand = new Command('run')
  .description(
    'Run a pipeline: validate it, list its inputs, write the run plan, then execute the job graph.\n' +
      'Without --run, the latest run of the same pipeline over the same inputs is continued: finished\n' +
      'tasks are skipped, so only unfinished work runs. Otherwise (or with --new) a new run is created\n' +
      'under <output>/<pipeline name>/.',
  )
  .argument('<file>', 'pipeline file (YAML)')
  .addOption(new Option('--runner <runner>', 'where tasks run').choices(['local', 'batch']).default('local'))
  .addOption(new Option('--env <name>', 'platform environment (batch runner)').env('GEOBATCH_ENV'))
  .option('--run <uri>', 'run location (local dir or s3:// prefix); continued when it exists')
  .option('--new', 'start a new run even when the latest one has the same pipeline and inputs', false)
  .option('--concurrency <n>', 'tasks in flight at once (default: number of cores)', parseConcurrency)
  .option('--json', 'print JSON lines (one event per line) instead of progress bars', false)
  .action(
    async (
      file: string,
      opts: { runner: string; env?: string; run?: string; new: boolean; concurrency?: number; json: boolean },
    ) => {
      if (opts.runner === 'batch') {
        throw new UsageError(
          '--runner batch: submitting to AWS Batch is not available in this version yet; use --runner local (the default)',
        );
      }
      const storage = cliStorage();
      const loaded = await loadPipeline(storage, file);
      const { plan, continued } = await prepareRun(storage, loaded, {
        ...(opts.run ? { runUri: opts.run } : {}),
        fresh: opts.new,
      });
      await executeLocally(storage, plan, { concurrency: opts.concurrency, json: opts.json, continued });
    },
  );
