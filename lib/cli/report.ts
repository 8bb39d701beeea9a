import { Command } from 'commander';
import { writeRunReport } from '../report/report.js';
import { readRunPlan } from '../runners/prepare.js';
import { cliStorage } from './storage.js';

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
  .action(async (run: string, opts: { out?: string; json: boolean }) => {
    const storage = cliStorage();
    const plan = await readRunPlan(storage, run);
    const written = await writeRunReport(storage, plan, opts.out ? { out: opts.out } : {});
    if (opts.json) {
      process.stdout.write(
        JSON.stringify({ report: written.uri, embedded: written.embedded, ...written.facts }, null, 2) + '\n',
      );
      return;
    }
    process.stdout.write(`report: ${written.uri}\n`);
  });
