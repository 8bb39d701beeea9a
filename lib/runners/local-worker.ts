/**
 * A local runner's worker process: runs tasks one at a time through the job entry point
 * (`executeTask`), so a task that crashes its process (native abort, out of memory,
 * `process.exit`) takes down only this worker, never the runner.
 */
import { createStorage } from '../storage/index.js';
import type { FromWorker, ToWorker } from './local-protocol.js';
import { executeTask } from './task.js';

const storage = createStorage();
let current: AbortController | undefined;

function send(message: FromWorker): void {
  process.send?.(message);
}

// Ctrl-C reaches the whole process group: the runner decides what happens, this worker only
// stops its task when told to (or when the runner goes away).
process.on('SIGINT', () => undefined);
process.on('disconnect', () => {
  current?.abort(new Error('runner went away'));
  setTimeout(() => process.exit(1), 2000).unref();
});

process.on('message', (raw: ToWorker) => {
  if (raw.type === 'abort') {
    current?.abort(new Error('interrupted'));
    return;
  }
  const { id, planUri, stage, index } = raw;
  const controller = new AbortController();
  current = controller;
  const started = performance.now();
  executeTask({
    storage,
    planUri,
    stage,
    index,
    signal: controller.signal,
    onProgress: (done, total) => send({ type: 'progress', id, done, total }),
  })
    .then(
      (outcome) =>
        send({ type: 'result', id, status: outcome.status, durationMs: performance.now() - started }),
      (error: unknown) =>
        send({
          type: 'result',
          id,
          status: controller.signal.aborted ? 'interrupted' : 'failed',
          durationMs: performance.now() - started,
          error: error instanceof Error ? error.message : String(error),
        }),
    )
    .finally(() => {
      if (current === controller) current = undefined;
    });
});

send({ type: 'ready' });
