import { Command } from 'commander';
import type { ItemPart } from '../pipeline/types.js';
import type { BatchRunStatus } from '../runners/batch-status.js';
import { readBatchRecord } from '../runners/batch-record.js';
import { readRunPlan } from '../runners/prepare.js';
import { readRunStatus } from '../runners/status.js';
import type { RunStatus } from '../runners/status.js';
import { parseInterval } from './options.js';
import { cliStorage } from './storage.js';
import { watchStatus } from './watch.js';

function ms(v: number): string {
  return v < 1000
    ? `${Math.round(v)}ms`
    : v < 60_000
      ? `${(v / 1000).toFixed(1)}s`
      : `${(v / 60_000).toFixed(1)}m`;
}

/** ` part 2/3` for a task of a stage that splits items (1-based, as people count), else nothing. */
function partText(part: ItemPart | undefined): string {
  return part ? ` part ${part.index + 1}/${part.count}` : '';
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
        `  ${f.stage}[${f.index}]${f.items.length ? ` (${f.items.join(', ')}${partText(f.part)})` : ''}: ${f.error}`,
        `    log: ${f.log}`,
      );
    }
    if (failures.length > 20) lines.push(`  ... and ${failures.length - 20} more (--json lists all)`);
  }
  return lines.join('\n');
}

const batchColumns = [
  'pending',
  'runnable',
  'starting',
  'running',
  'succeeded',
  'failed',
  'blocked',
  'unknown',
] as const;

/** The text table `geobatch status` prints for a run on AWS Batch. */
export function formatBatchStatus(status: BatchRunStatus): string {
  const shown = batchColumns.filter(
    (c) => c !== 'unknown' || status.stages.some((s) => s.counts.unknown > 0),
  );
  const rows = [['stage', 'job', 'tasks', ...shown]];
  for (const s of status.stages)
    rows.push([s.name, s.job, String(s.tasks), ...shown.map((c) => String(s.counts[c]))]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const resumed = status.submissions > 1 ? `, resumed ${status.submissions - 1} time(s)` : '';
  const lines = [
    `run ${status.runId} (${status.pipeline}) on AWS Batch (${status.env}, ${status.region}): ${status.state}${resumed}`,
    status.runUri,
    '',
  ];
  for (const r of rows) {
    lines.push(
      r
        .map((v, c) => (c >= 2 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    );
  }
  const failures = status.stages.flatMap((s) => s.failures.map((f) => ({ stage: s.name, ...f })));
  if (failures.length) {
    lines.push('', 'failures:');
    for (const f of failures.slice(0, 20)) {
      const exit = f.exitCode !== undefined ? `exit ${f.exitCode}: ` : '';
      const why = [f.statusReason, f.reason].filter(Boolean).join('; ') || 'no reason given';
      lines.push(
        `  ${f.stage}[${f.index}]${f.items.length ? ` (${f.items.slice(0, 3).join(', ')}${f.items.length > 3 ? ', ...' : ''}${partText(f.part)})` : ''}: ${exit}${why}`,
        `    geobatch logs ${status.runUri} ${f.stage} --index ${f.index}`,
      );
    }
    if (failures.length > 20) lines.push(`  ... and ${failures.length - 20} more (--json lists all)`);
  }
  const blocked = status.stages.reduce((n, s) => n + s.counts.blocked, 0);
  if (blocked) lines.push('', `${blocked} task(s) blocked: a task they wait for failed`);
  const problem = status.submissionProblem;
  if (problem) {
    const which = problem.number === 0 ? 'the submission' : `resume ${problem.number}`;
    lines.push(
      '',
      problem.state === 'failed'
        ? `${which} failed: ${problem.error ?? 'no reason recorded'}`
        : `${which} has not finished submitting (still submitting, or interrupted: then 'geobatch resume' submits what is left)`,
    );
  }
  if (status.state === 'incomplete') {
    const left = status.stages.reduce((n, s) => n + s.tasks - s.done, 0);
    lines.push('', `incomplete: ${left} task(s) have no completion marker and nothing of the run is running`);
  }
  if (status.state === 'failed' || status.state === 'cancelled' || status.state === 'incomplete') {
    lines.push('', `rerun what did not finish: geobatch resume ${status.runUri}`);
  }
  return lines.join('\n');
}

/** Prints a status once (text or JSON), or keeps refreshing it with --watch until `done`; returns the last. */
async function show<S>(
  read: () => Promise<S>,
  format: (status: S) => string,
  done: (status: S) => boolean,
  opts: { json: boolean; watch: boolean; interval: number },
): Promise<S> {
  if (!opts.watch) {
    const status = await read();
    process.stdout.write(opts.json ? JSON.stringify(status, null, 2) + '\n' : format(status) + '\n');
    return status;
  }
  return watchStatus({ read, format, done, intervalMs: opts.interval * 1000, json: opts.json });
}

export const statusCommand = new Command('status')
  .description(
    'Show a run: per stage, tasks done / failed / pending, task durations, and failures with their first error line.\n' +
      'For a run on AWS Batch: per stage, tasks by Batch state (DescribeJobs, ListJobs for failed array\n' +
      'children), and each failed task with its status reason and exit code.',
  )
  .argument('<run>', 'run location (local dir or s3:// prefix)')
  .option('--json', 'print the status as JSON', false)
  .option(
    '--watch',
    'refresh until the run finishes: redraws on a terminal, prints JSON lines otherwise',
    false,
  )
  .option('--interval <seconds>', 'seconds between refreshes with --watch', parseInterval, 10)
  .option(
    '--no-report',
    'batch: do not write <run>/report/index.html when the run is seen finished (it is written once per final state)',
  )
  .action(async (run: string, opts: { json: boolean; watch: boolean; interval: number; report: boolean }) => {
    const storage = cliStorage();
    const plan = await readRunPlan(storage, run);
    const record = await readBatchRecord(storage, plan.runUri);
    if (record) {
      const [{ BatchApi, createBatchClient }, { readBatchStatus, isFinished }] = await Promise.all([
        import('../runners/batch.js'),
        import('../runners/batch-status.js'),
      ]);
      const api = new BatchApi(createBatchClient(record.region), record.env);
      const last = await show(
        () => readBatchStatus({ plan, record, api, storage }),
        formatBatchStatus,
        isFinished,
        opts,
      );
      // A Batch run finishes in the cloud: the first status that sees it finished writes its report.
      if (opts.report && isFinished(last)) {
        const { writeBatchRunReport } = await import('../report/report.js');
        try {
          const report = await writeBatchRunReport(storage, plan, last);
          const line = `report: ${report.uri}${report.written ? '' : ' (up to date)'}\n`;
          // stdout stays parseable where it carries JSON (--json, or --watch into a pipe)
          const json = opts.json || (opts.watch && process.stdout.isTTY !== true);
          (json ? process.stderr : process.stdout).write(line);
        } catch (error) {
          process.stderr.write(
            `warning: the run report could not be written (${error instanceof Error ? error.message : String(error)}); try 'geobatch report ${plan.runUri}'\n`,
          );
        }
      }
      return;
    }
    await show(
      () => readRunStatus(storage, plan),
      formatRunStatus,
      (s) => s.complete || s.state === 'succeeded' || s.state === 'failed' || s.state === 'interrupted',
      opts,
    );
  });
