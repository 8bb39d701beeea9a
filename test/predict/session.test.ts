import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readBundle } from '../../lib/predict/bundle.js';
import { PredictError } from '../../lib/predict/errors.js';
import { cudaAvailable, openSession, requestedDevice } from '../../lib/predict/session.js';
import { createStorage } from '../../lib/storage/index.js';
import { untrainedModel } from '../helpers/onnx-models.js';

test('CUDA asked for where onnxruntime-node has no CUDA provider: the CPU runs it, and a line says so', async (t) => {
  if (cudaAvailable()) return t.skip('this onnxruntime-node has its CUDA provider');
  const storage = createStorage();
  const loaded = await readBundle(storage, await untrainedModel({ task: 'classification' }));
  const lines: string[] = [];
  const session = await openSession(storage, loaded, { device: 'cuda', log: (l) => lines.push(l) });
  try {
    assert.equal(session.device, 'cpu');
    assert.deepEqual(lines.length, 1);
    assert.match(
      lines[0]!,
      /CUDA asked for, but onnxruntime-node has no CUDA execution provider here: running on the CPU/,
    );
    const size = loaded.bundle.input.size;
    const out = await session.run(new Float32Array(3 * size * size).fill(0.5), 1);
    assert.deepEqual(out.scores!.dims, [1, 3]);
    assert.equal(session.runs, 1);
  } finally {
    await session.close();
  }
});

test('GEOBATCH_DEVICE picks the device; a bad value is refused', () => {
  const saved = process.env.GEOBATCH_DEVICE;
  try {
    process.env.GEOBATCH_DEVICE = 'cuda';
    assert.equal(requestedDevice(), 'cuda');
    assert.equal(requestedDevice('cpu'), 'cpu');
    process.env.GEOBATCH_DEVICE = 'tpu';
    assert.throws(
      () => requestedDevice(),
      (e: Error) => e instanceof PredictError && /GEOBATCH_DEVICE=tpu: expected cpu or cuda/.test(e.message),
    );
    delete process.env.GEOBATCH_DEVICE;
    assert.equal(requestedDevice(), 'cpu');
  } finally {
    if (saved === undefined) delete process.env.GEOBATCH_DEVICE;
    else process.env.GEOBATCH_DEVICE = saved;
  }
});
