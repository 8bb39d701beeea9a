import { Command } from 'commander';
import { readRunPlan } from '../runners/prepare.js';
import { readRunStatus } from '../runners/status.js';
import type { RunStatus } from '../runners/status.js';
import { cliStorage } from './storage.js';

function ms(v: number): string {
  return v < 1000
    ? `${Math.round(v)}ms`
    : v < 60_000
      ? `${(v / 1000).toFixed(1)}s`
      : `${(v / 60_000).toFixed(1)}m`;
}

/** The text table `geobatch status` prints. */
export function formatRunStatus(status: RunStatus): string {
  const rows = [['stage', 'job', 'tasks', 'done', 'failed', 'pending', 'duration (min/median/max)']];
  for (const s of status.stages) {
    const d = s.durationMs
      ? `${ms(s.durationMs.min)} / ${ms(s.durationMs.median)} / ${ms(s.durationMs.max)}`
      : '-';
    rows.push([s.name, s.job, String(s.tasks), String(s.done), String(s.failed), String(s.pending), d]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = [
    `run ${status.runId} (${status.pipeline}) ${status.state}${status.complete ? ', complete' : ''}`,
    status.runUri,
    '',
  ];
  for (const r of rows)
    lines.push(
      r
        .map((v, c) => (c >= 2 && c <= 5 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    );
  const failures = status.stages.flatMap((s) => s.failures.map((f) => ({ stage: s.name, ...f })));
  if (failures.length) {
    lines.push('', 'failures:');
    for (const f of failures.slice(0, 20)) {
      lines.push(
        `  ${f.stage}[${f.index}]${f.items.length ? ` (${f.items.join(', ')})` : ''}: ${f.error}`,
        `    log: ${f.log}`,
      );
    }
    if (failures.length > 20) lines.push(`  ... and ${failures.length - 20} more (--json lists all)`);
  }
  return lines.join('\n');
}

export const statusCommand = new Command('status')
  .description(
    'Show a run: per stage, tasks done / failed / pending, task durations, and failures with their first error line.',
  )
  .argument('<run>', 'run location (local dir or s3:// prefix)')
  .option('--json', 'print the status as JSON', false)
  .action(async (run: string, opts: { json: boolean }) => {
    const storage = cliStorage();
    const plan = await readRunPlan(storage, run);
    const status = await readRunStatus(storage, plan);
    process.stdout.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : formatRunStatus(status) + '\n');
  });
