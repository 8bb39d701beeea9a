import { Command } from 'commander';
import { z } from 'zod';
import { catalog } from '../../jobs/catalog.js';

export const jobsCommand = new Command('jobs')
  .description('List the jobs a pipeline stage can run, with their default resources and parameters.')
  .option('--json', 'print the catalog as JSON (parameters as JSON Schema)', false)
  .action((opts: { json: boolean }) => {
    const entries = Object.entries(catalog).map(([name, e]) => ({
      name,
      description: e.description,
      queue: e.queue,
      granularity: e.granularity,
      resources: { vcpus: e.vcpus, memoryMiB: e.memoryMiB, gpus: e.gpus, timeoutSeconds: e.timeoutSeconds },
      params: z.toJSONSchema(e.params, { io: 'input' }),
    }));
    if (opts.json) {
      process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
      return;
    }
    for (const e of entries) {
      process.stdout.write(
        `${e.name}  (${e.granularity === 'item' ? 'per item' : 'one task per stage'}; ${e.queue}, ${e.resources.vcpus} vCPU, ${e.resources.memoryMiB} MiB${e.resources.gpus ? `, ${e.resources.gpus} GPU` : ''})\n  ${e.description}\n`,
      );
      const props =
        (e.params as { properties?: Record<string, { description?: string; default?: unknown }> })
          .properties ?? {};
      for (const [key, p] of Object.entries(props)) {
        process.stdout.write(
          `    params.${key}${p.default !== undefined ? ` = ${JSON.stringify(p.default)}` : ''}: ${p.description ?? ''}\n`,
        );
      }
    }
  });
