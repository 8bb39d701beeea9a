// The trainer's ONNX export has a dynamic batch axis for segmentation and classification (so that
// predict can run several windows at once) and a fixed batch of 1 for detection: checked here with
// onnxruntime-node on the export of the trainer's own code (python onnxruntime is not installed).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { findPython } from '../../lib/train/python.js';
import { untrainedModel } from '../helpers/onnx-models.js';

let skip: string | false = false;
try {
  await findPython();
} catch (error) {
  skip = `no Python with torch to export a model: ${(error as Error).message}`;
}

/** A deterministic image [3, size, size] in [0, 1], different for each seed. */
function image(size: number, seed: number): Float32Array {
  const out = new Float32Array(3 * size * size);
  for (let i = 0; i < out.length; i++) out[i] = 0.5 + 0.5 * Math.sin(i * (0.013 + seed * 0.007) + seed);
  return out;
}

function inputShape(session: ort.InferenceSession): readonly (number | string)[] {
  const meta = session.inputMetadata[0]!;
  assert.ok(meta.isTensor);
  return meta.shape;
}

describe('the ONNX export batch axis', { skip }, () => {
  for (const task of ['segmentation', 'classification'] as const) {
    it(`${task}: a batch of 2 gives each image its batch-1 output`, async () => {
      const dir = await untrainedModel({ task });
      const size = 128;
      const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
      try {
        assert.deepEqual(inputShape(session), ['batch', 3, size, size]);
        const output = session.outputNames[0]!;
        const a = image(size, 1);
        const b = image(size, 2);
        const one = async (x: Float32Array) =>
          (await session.run({ image: new ort.Tensor('float32', x, [1, 3, size, size]) }))[output]!;
        const both = new Float32Array(a.length * 2);
        both.set(a, 0);
        both.set(b, a.length);
        const batch = (await session.run({ image: new ort.Tensor('float32', both, [2, 3, size, size]) }))[
          output
        ]!;
        const [ra, rb] = [await one(a), await one(b)];
        assert.deepEqual(batch.dims, [2, ...ra.dims.slice(1)]);
        const data = batch.data as Float32Array;
        const per = ra.data.length;
        let diff = 0;
        let apart = 0;
        for (let i = 0; i < per; i++) {
          diff = Math.max(diff, Math.abs(data[i]! - (ra.data as Float32Array)[i]!));
          diff = Math.max(diff, Math.abs(data[per + i]! - (rb.data as Float32Array)[i]!));
          apart = Math.max(apart, Math.abs((ra.data as Float32Array)[i]! - (rb.data as Float32Array)[i]!));
        }
        assert.ok(diff <= 1e-4, `max |batch - single| = ${diff}`);
        // the two images give different outputs, so a batch that repeated one would fail
        assert.ok(apart > 1e-3, `the two images' outputs differ by only ${apart}`);
      } finally {
        await session.release();
      }
    });
  }

  it('detection: the batch stays fixed at 1', async () => {
    const dir = await untrainedModel({ task: 'detection' });
    const session = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    try {
      assert.deepEqual(inputShape(session), [1, 3, 320, 320]);
    } finally {
      await session.release();
    }
  });
});
