import { Command, Option } from 'commander';
import { describeGraph } from '../pipeline/index.js';
import { loadPipeline } from '../runners/prepare.js';
import { collect } from './options.js';
import { cliStorage } from './storage.js';

export const planCommand = new Command('plan')
  .description(
    'Show the job graph a pipeline compiles to, without running anything: stages, task counts\n' +
      '(items x items per task), dependencies (N_TO_N per item, or FAN_IN), queue and resources.\n' +
      'With --runner batch --env <name>: the exact SubmitJob calls a run would make (queue, job definition,\n' +
      'array size, dependencies, command, resources, tags), without calling AWS.',
  )
  .argument('<file>', 'pipeline file (YAML)')
  .addOption(
    new Option('--runner <runner>', 'which runner to plan for').choices(['local', 'batch']).default('local'),
  )
  .addOption(new Option('--env <name>', 'platform environment (batch runner)').env('GEOBATCH_ENV'))
  .option('--tag <key=value>', 'batch: a cost-allocation tag for every job (repeatable)', collect, [])
  .option('--json', 'print the graph (or, with --runner batch, the SubmitJob inputs) as JSON', false)
  .action(async (file: string, opts: { runner: string; json: boolean; env?: string; tag: string[] }) => {
    if (opts.runner === 'batch') {
      const { planOnBatch } = await import('./batch.js');
      await planOnBatch(file, opts);
      return;
    }
    const loaded = await loadPipeline(cliStorage(), file);
    if (opts.json) {
      process.stdout.write(
        JSON.stringify(
          { pipeline: loaded.spec.name, file: loaded.file, runsRoot: loaded.runsRoot, graph: loaded.graph },
          null,
          2,
        ) + '\n',
      );
    } else {
      process.stdout.write(
        `pipeline ${loaded.spec.name} (${loaded.file})\nruns go to ${loaded.runsRoot}\n\n`,
      );
      process.stdout.write(describeGraph(loaded.graph) + '\n');
    }
  });

export const validateCommand = new Command('validate')
  .description(
    'Check a pipeline file: schema, job parameters, stage references, cycles, and that every input matches files.',
  )
  .argument('<file>', 'pipeline file (YAML)')
  .option('--json', 'print the result as JSON', false)
  .action(async (file: string, opts: { json: boolean }) => {
    const loaded = await loadPipeline(cliStorage(), file);
    const tasks = loaded.graph.stages.reduce((n, s) => n + s.taskCount, 0);
    const items = Object.fromEntries(Object.entries(loaded.graph.items).map(([k, v]) => [k, v.length]));
    if (opts.json)
      process.stdout.write(
        JSON.stringify({ ok: true, file: loaded.file, stages: loaded.graph.stages.length, tasks, items }) +
          '\n',
      );
    else
      process.stdout.write(
        `${file}: ok (${loaded.graph.stages.length} stages, ${tasks} tasks, inputs: ${Object.entries(items)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')})\n`,
      );
  });
