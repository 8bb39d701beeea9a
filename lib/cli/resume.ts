import { Command } from 'commander';
import { readRunPlan } from '../runners/prepare.js';
import { executeLocally, parseConcurrency } from './execute.js';
import { cliStorage } from './storage.js';

export const resumeCommand = new Command('resume')
  .description(
    'Continue a run: tasks with a completion marker are skipped, failed and unfinished ones run again.',
  )
  .argument('<run>', 'run location (local dir or s3:// prefix)')
  .option('--concurrency <n>', 'tasks in flight at once (default: number of cores)', parseConcurrency)
  .option('--json', 'print JSON lines instead of progress bars', false)
  .action(async (run: string, opts: { concurrency?: number; json: boolean }) => {
    const storage = cliStorage();
    const plan = await readRunPlan(storage, run);
    await executeLocally(storage, plan, { concurrency: opts.concurrency, json: opts.json, continued: true });
  });
