/** What `run` and `resume` share: progress display, Ctrl-C handling and the final report. */
import { runLayout } from '../runners/layout.js';
import { runLocal } from '../runners/local.js';
import type { RunEvent, TaskFailureBrief } from '../runners/local.js';
import type { RunPlan, RunSummary } from '../runners/records.js';
import type { Storage } from '../storage/types.js';
import { InterruptedError, ReportedFailure, UsageError } from './errors.js';
import { jsonLinesView, terminalView } from './progress.js';

export interface ExecuteOptions {
  readonly concurrency?: number;
  readonly json?: boolean;
  readonly continued?: boolean;
}

/** Parses `--concurrency`: a positive integer. */
export function parseConcurrency(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    throw new UsageError(`--concurrency: expected an integer in [1, 1024] but got '${value}'`);
  }
  return n;
}

/** Runs a prepared plan on this machine, showing progress; throws when tasks failed or on Ctrl-C. */
export async function executeLocally(
  storage: Storage,
  plan: RunPlan,
  options: ExecuteOptions,
): Promise<RunSummary> {
  const tty = !options.json && process.stdout.isTTY === true;
  const view = tty ? terminalView(process.stdout) : jsonLinesView(process.stdout);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\nstopping: waiting for running tasks to stop (Ctrl-C again to kill them)\n');
      controller.abort(new InterruptedError('interrupted'));
    } else {
      process.stderr.write('killing running tasks\n');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  if (tty && options.continued)
    process.stdout.write(`continuing unfinished run (finished tasks are skipped)\n`);
  let failures: TaskFailureBrief[] = [];
  let summary: RunSummary;
  let reportUri: string | undefined;
  try {
    summary = await runLocal({
      storage,
      plan,
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      signal: controller.signal,
      onEvent: (event: RunEvent) => {
        if (event.type === 'run-finished') {
          failures = event.failures;
          if (event.report && 'error' in event.report)
            process.stderr.write(`warning: run report not written: ${event.report.error}\n`);
          else if (event.report && tty) reportUri = event.report.uri;
        }
        view.onEvent(event);
      },
    });
  } finally {
    view.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  if (tty) printSummary(plan, summary, failures);
  if (reportUri) process.stdout.write(`report: ${reportUri}\n`);
  if (summary.state === 'interrupted') {
    throw new InterruptedError(
      `interrupted; finished tasks are kept. Continue with: geobatch resume ${plan.runUri}`,
    );
  }
  if (summary.state === 'failed') {
    const n = failures.length;
    throw new ReportedFailure(
      `${n} task(s) failed; logs under ${runLayout(plan.runUri).root}/logs. Fix and rerun (finished tasks are skipped): geobatch resume ${plan.runUri}`,
    );
  }
  return summary;
}

function printSummary(plan: RunPlan, summary: RunSummary, failures: TaskFailureBrief[]): void {
  const out = process.stdout;
  for (const f of failures.slice(0, 10))
    out.write(`  ✗ ${f.stage}[${f.index}]: ${f.error}\n    log: ${f.log}\n`);
  if (failures.length > 10)
    out.write(`  ... and ${failures.length - 10} more (geobatch status ${plan.runUri})\n`);
  if (summary.state === 'succeeded') out.write(`✓ run ${plan.runId} succeeded: ${plan.runUri}\n`);
}
