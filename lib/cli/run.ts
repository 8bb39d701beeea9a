import { Command, Option } from 'commander';
import { loadPipeline, prepareRun } from '../runners/prepare.js';
import { UsageError } from './errors.js';
import { collect } from './options.js';
import { executeLocally, parseConcurrency } from './execute.js';
import { cliStorage } from './storage.js';

export const runCommand = new Command('run')
  .description(
    'Run a pipeline: validate it, list its inputs, write the run plan, then execute the job graph.\n' +
      'Without --run, the latest run of the same pipeline over the same inputs is continued: finished\n' +
      'tasks are skipped, so only unfinished work runs. Otherwise (or with --new) a new run is created\n' +
      'under <output>/<pipeline name>/.\n' +
      "With --runner batch --env <name>, the plan is uploaded to S3 (the environment's runs bucket unless the\n" +
      "pipeline's output or --run is an s3:// location) and the graph is submitted to AWS Batch, one job per\n" +
      'stage; the command returns once the jobs are submitted (follow them with geobatch status --watch).',
  )
  .argument('<file>', 'pipeline file (YAML)')
  .addOption(new Option('--runner <runner>', 'where tasks run').choices(['local', 'batch']).default('local'))
  .addOption(new Option('--env <name>', 'platform environment (batch runner)').env('GEOBATCH_ENV'))
  .option('--run <uri>', 'run location (local dir or s3:// prefix); continued when it exists')
  .option('--new', 'start a new run even when the latest one has the same pipeline and inputs', false)
  .option('--concurrency <n>', 'tasks in flight at once (default: number of cores)', parseConcurrency)
  .option(
    '--image-tag <tag>',
    "batch: run this tag of the environment's job images (registers job-definition revisions)",
  )
  .option('--tag <key=value>', 'batch: a cost-allocation tag for every job (repeatable)', collect, [])
  .option('--json', 'print JSON lines (one event per line) instead of progress bars', false)
  .action(
    async (
      file: string,
      opts: {
        runner: string;
        env?: string;
        run?: string;
        new: boolean;
        concurrency?: number;
        json: boolean;
        imageTag?: string;
        tag: string[];
      },
    ) => {
      if (opts.runner === 'batch') {
        const { runOnBatch } = await import('./batch.js');
        await runOnBatch(file, opts);
        return;
      }
      if (opts.imageTag !== undefined || opts.tag.length > 0) {
        throw new UsageError(
          `${opts.imageTag !== undefined ? '--image-tag' : '--tag'} applies to --runner batch only`,
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
