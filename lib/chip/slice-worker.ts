/**
 * Worker thread entry of `chip slice` (slice-workers.ts): opens the image, cuts its share of
 * bands and writes their chips, reporting each band; 'stop' from the parent aborts it (the
 * chips in flight finish or are removed, never left half written).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createStorage } from '../storage/index.js';
import { cutBands } from './slice-bands.js';
import { openSliceRows } from './slice-resample.js';
import type { SliceWorkerMessage, SliceWorkerTask } from './slice-workers.js';

const port = parentPort!;
const task = workerData as SliceWorkerTask;
const controller = new AbortController();
port.on('message', (message) => {
  if (message === 'stop') controller.abort();
});
const send = (message: SliceWorkerMessage): void => port.postMessage(message);

try {
  const storage = createStorage(task.storage);
  const rows = await openSliceRows(storage, task.uri, { ...task.open, signal: controller.signal });
  try {
    await cutBands(storage, rows, task.bands, task.output, {
      onBand: (chips) => send({ type: 'band', chips }),
      onWritten: (band) => send({ type: 'written', band }),
      signal: controller.signal,
    });
  } finally {
    await rows.close();
  }
  send({ type: 'done' });
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  const code = (e as Error & { code?: unknown }).code;
  send({ type: 'error', name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) });
} finally {
  // let the thread end once the messages above are delivered
  port.unref();
}
