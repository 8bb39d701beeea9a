import { Command, Option } from 'commander';
import { readBatchRecord } from '../runners/batch-record.js';
import { readRunPlan } from '../runners/prepare.js';
import { UsageError } from './errors.js';
import { executeLocally, parseConcurrency } from './execute.js';
import { collect } from './options.js';
import { cliStorage } from './storage.js';

export const resumeCommand = new Command('resume')
  .description(
    'Continue a run: tasks with a completion marker are skipped, failed and unfinished ones run again.\n' +
      'A run submitted to AWS Batch is resumed there (one job per stage over the unfinished tasks only);\n' +
      '--runner local runs what is left on this machine instead.',
  )
  .argument('<run>', 'run location (local dir or s3:// prefix)')
  .addOption(
    new Option(
      '--runner <runner>',
      'where to run what is left (default: where the run was submitted)',
    ).choices(['local', 'batch']),
  )
  .addOption(
    new Option('--env <name>', 'batch: platform environment (default: the one the run was submitted to)').env(
      'GEOBATCH_ENV',
    ),
  )
  .option('--image-tag <tag>', "batch: run this tag of the environment's job images (default: the run's)")
  .option(
    '--tag <key=value>',
    "batch: a cost-allocation tag for every job (repeatable; default: the run's)",
    collect,
    [],
  )
  .option('--concurrency <n>', 'local: tasks in flight at once (default: number of cores)', parseConcurrency)
  .option('--json', 'print JSON lines instead of progress bars', false)
  .action(
    async (
      run: string,
      opts: {
        runner?: string;
        env?: string;
        imageTag?: string;
        tag: string[];
        concurrency?: number;
        json: boolean;
      },
    ) => {
      const storage = cliStorage();
      const plan = await readRunPlan(storage, run);
      const runner = opts.runner ?? ((await readBatchRecord(storage, plan.runUri)) ? 'batch' : 'local');
      if (runner === 'batch') {
        const { resumeOnBatchCommand } = await import('./batch.js');
        await resumeOnBatchCommand(storage, plan, opts);
        return;
      }
      if (opts.imageTag !== undefined || opts.tag.length > 0) {
        throw new UsageError(
          `${opts.imageTag !== undefined ? '--image-tag' : '--tag'} applies to --runner batch only`,
        );
      }
      await executeLocally(storage, plan, {
        concurrency: opts.concurrency,
        json: opts.json,
        continued: true,
      });
    },
  );
