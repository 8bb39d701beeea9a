import { Command, Option } from 'commander';
import { describeGraph } from '../pipeline/index.js';
import { loadPipeline } from '../runners/prepare.js';
import { UsageError } from './errors.js';
import { cliStorage } from './storage.js';

export const planCommand = new Command('plan')
  .description(
    'Show the job graph a pipeline compiles to, without running anything: stages, task counts\n' +
      '(items x items per task), dependencies (N_TO_N per item, or FAN_IN), queue and resources.',
  )
  .argument('<file>', 'pipeline file (YAML)')
  .addOption(
    new Option('--runner <runner>', 'which runner to plan for').choices(['local', 'batch']).default('local'),
  )
  .option('--json', 'print the graph as JSON', false)
  .action(async (file: string, opts: { runner: string; json: boolean }) => {
    if (opts.runner === 'batch') {
      throw new UsageError('--runner batch: the Batch submission plan is not available in this version yet');
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
