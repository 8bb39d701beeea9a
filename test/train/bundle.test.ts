// The model bundle of a finished run, built from untrained exports of the trainer's own code:
// what the ONNX declares, the threshold per task, the defaults, and a size that disagrees.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bundleSchema } from '../../lib/predict/bundle.js';
import { createStorage } from '../../lib/storage/index.js';
import { buildBundle, UNKNOWN_CONVERSION } from '../../lib/train/bundle.js';
import { trainerConfig } from '../../lib/train/config.js';
import { prepareDataset, type PreparedDataset } from '../../lib/train/dataset.js';
import { TrainError } from '../../lib/train/errors.js';
import type { TrainTask } from '../../lib/train/events.js';
import type { MetricsFile } from '../../lib/train/model-card.js';
import { findPython } from '../../lib/train/python.js';
import { THRESHOLDS } from '../../lib/train/threshold.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { TINY_CLASSES, writeTinyDataset } from './tiny-dataset.js';

let skip: string | false = false;
try {
  await findPython();
} catch (error) {
  skip = `no Python with torch to export a model: ${(error as Error).message}`;
}

function metrics(task: TrainTask, final: Record<string, unknown>, imageSize?: number): MetricsFile {
  return {
    task,
    model: 'm',
    epochs: [],
    final,
    bestEpoch: 1,
    ...(imageSize !== undefined ? { config: { imageSize } } : {}),
  } as MetricsFile;
}

describe('the model bundle of a run', { skip }, () => {
  let dir: string;
  let dataset: PreparedDataset;
  const dirs = { checkpointDir: '/unused/ck', outputDir: '/unused/out' };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-bundle-'));
    await writeTinyDataset(join(dir, 'data'), { nVal: 3 });
    dataset = await prepareDataset(createStorage(), join(dir, 'data'), { cacheDir: join(dir, 'cache') });
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('detection: batch 1, the three outputs, a threshold chosen on the validation chips', async () => {
    const outputDir = await untrainedModel({ task: 'detection', classes: TINY_CLASSES });
    const config = trainerConfig({ task: 'detection', smoke: true }, dataset, dirs);
    const bundle = await buildBundle({
      config,
      dataset,
      metrics: metrics('detection', { mAP50: 0.01, mAP: 0.005 }, 320),
      outputDir,
      createdAt: new Date('2026-02-03T04:05:06Z'),
    });
    assert.equal(bundleSchema.safeParse(bundle).success, true);
    assert.equal(bundle.task, 'detection');
    assert.equal(bundle.model, 'fasterrcnn_mobilenet_v3_large_320_fpn');
    assert.deepEqual(bundle.classes, TINY_CLASSES);
    assert.deepEqual([bundle.input.name, bundle.input.size, bundle.input.batch], ['image', 320, 1]);
    assert.deepEqual(bundle.outputs, ['boxes', 'labels', 'scores']);
    assert.ok(THRESHOLDS.includes(bundle.scoreThreshold!));
    assert.match(bundle.thresholdFrom, /^max F1 at IoU 0\.5 on 3 validation chips \(F1 \d\.\d\d, /);
    assert.deepEqual(bundle.windows, { size: 320, overlap: 0.2 });
    assert.deepEqual(bundle.conversion, UNKNOWN_CONVERSION);
    assert.deepEqual(bundle.metrics, { mAP50: 0.01, mAP: 0.005 });
    assert.equal(bundle.createdAt, '2026-02-03T04:05:06.000Z');
  });

  it('segmentation: a dynamic batch, logits, no threshold; known windows kept', async () => {
    const outputDir = await untrainedModel({ task: 'segmentation', classes: TINY_CLASSES });
    const config = trainerConfig({ task: 'segmentation', smoke: true }, dataset, dirs);
    const bundle = await buildBundle({
      config,
      dataset,
      metrics: metrics('segmentation', { mIoU: 0.1 }),
      outputDir,
      provenance: { windows: { overlap: 0.5 } },
    });
    assert.deepEqual([bundle.input.size, bundle.input.batch], [128, null]);
    assert.deepEqual(bundle.outputs, ['logits']);
    assert.deepEqual([bundle.scoreThreshold, bundle.thresholdFrom], [null, 'argmax: no threshold']);
    assert.deepEqual(bundle.windows, { size: 128, overlap: 0.5 });
  });

  it('refuses an export whose input size is not the one trained at', async () => {
    const outputDir = await untrainedModel({ task: 'segmentation', classes: TINY_CLASSES });
    const config = trainerConfig({ task: 'segmentation', smoke: true }, dataset, dirs);
    await assert.rejects(
      buildBundle({ config, dataset, metrics: metrics('segmentation', {}, 256), outputDir }),
      (error: unknown) =>
        error instanceof TrainError &&
        error.kind === 'onnx' &&
        /model\.onnx: input size 128, but the trainer trained at imageSize 256$/.test(error.message),
    );
  });
});
