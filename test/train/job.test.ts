import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { catalog } from '../../jobs/catalog.js';
import { loadJob } from '../../jobs/registry.js';
import type { JobContext } from '../../jobs/types.js';
import { readBundle } from '../../lib/predict/bundle.js';
import { createStorage } from '../../lib/storage/index.js';
import { findPython } from '../../lib/train/python.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { stage } from '../helpers/plans.js';
import { writeFakeTrainer } from './fake-trainer.js';
import { TINY_CLASSES, writeTinyDataset } from './tiny-dataset.js';

describe('the train job', () => {
  let dir: string;
  const saved = { python: process.env['GEOBATCH_PYTHON'], trainer: process.env['GEOBATCH_TRAINER_DIR'] };
  let onnxDir: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-trainjob-'));
    // exported with the real Python before the stand-in takes its place
    const torch = await findPython().then(
      () => true,
      () => false,
    );
    onnxDir = torch ? await untrainedModel({ task: 'classification', classes: TINY_CLASSES }) : undefined;
    // the harness with a stand-in trainer: this test is about parameters and the run layout
    process.env['GEOBATCH_TRAINER_DIR'] = await writeFakeTrainer(join(dir, 'fake'));
    process.env['GEOBATCH_PYTHON'] = 'python3';
  });
  after(async () => {
    for (const [key, value] of [
      ['GEOBATCH_PYTHON', saved.python],
      ['GEOBATCH_TRAINER_DIR', saved.trainer],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('is a whole-stage GPU job with the catalog resources', () => {
    const entry = catalog.train;
    assert.deepEqual(
      [
        entry.queue,
        entry.granularity,
        entry.vcpus,
        entry.memoryMiB,
        entry.gpus,
        entry.sharedMemoryMiB,
        entry.timeoutSeconds,
      ],
      ['gpu', 'stage', 4, 15000, 1, 8192, 86400],
    );
  });

  it('validates its parameters: defaults, a model of the task, no unknown keys', () => {
    const params = catalog.train.params;
    const parsed = params.parse({ dataset: 'merge', task: 'detection' });
    assert.deepEqual(
      [parsed.weights, parsed.allowScratch, parsed.epochs, parsed.batchSize, parsed.optimizer, parsed.smoke],
      ['default', false, 10, 4, 'sgd', false],
    );
    const wrong = params.safeParse({ dataset: 'merge', task: 'segmentation', model: 'resnet50' });
    assert.equal(wrong.success, false);
    assert.match(
      wrong.error!.issues[0]!.message,
      /expected a segmentation model \(deeplabv3_resnet50, fcn_resnet50, unet\) but got 'resnet50'/,
    );
    assert.equal(params.safeParse({ dataset: 'merge', task: 'detection', epoch: 3 }).success, false);
    assert.equal(params.safeParse({ dataset: 'merge', task: 'detection', lr: 0 }).success, false);
  });

  it("trains on the dataset stage's output and writes to <run>/<stage>/", async () => {
    const run = join(dir, 'run');
    await writeTinyDataset(join(dir, 'ds'));
    await cp(join(dir, 'ds'), join(run, 'merge'), { recursive: true });
    const progress: [number, number][] = [];
    const logs: string[] = [];
    const ctx: JobContext = {
      storage: createStorage(),
      run: {
        uri: run,
        id: 'r1',
        graph: {
          pipeline: 'p',
          items: {},
          stages: [stage('merge', { job: 'merge' }), stage('model', { job: 'train' })],
        },
        stageUri: (s) => join(run, s),
      },
      stage: 'model',
      index: 0,
      items: [],
      tmpDir: join(dir, 'tmp'),
      log: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
      progress: (d, t) => progress.push([d, t]),
      signal: new AbortController().signal,
    };
    const job = await loadJob('train');
    const params = catalog.train.params.parse({
      dataset: 'merge',
      task: 'classification',
      epochs: 2,
      weights: 'none',
    });
    const result = await job.run(params, ctx);
    assert.ok(result);
    assert.deepEqual(
      [...(result.outputs ?? [])].sort(),
      ['MODEL_CARD.md', 'curves.png', 'metrics.json', 'model.pt'].map((f) => join(run, 'model', f)),
    );
    assert.equal(result.summary?.['epochs'], 2);
    assert.deepEqual(progress.at(-1), [4, 4]);
    assert.ok(
      logs.some((l) =>
        l.includes(`checkpoint of epoch 2 -> ${join(run, 'model', 'checkpoints', 'epoch-0002.pt')}`),
      ),
    );

    // no chip stage behind the merge: bundle.json would get the defaults (no ONNX here, no bundle)
    assert.ok(
      logs.some((l) =>
        l.includes("model bundle: stage 'undefined' (the chips of merge stage 'merge') is not in the graph"),
      ),
    );

    const missing = catalog.train.params.parse({ dataset: 'chips', task: 'classification' });
    await assert.rejects(
      job.run(missing, ctx),
      /stages\.model\.params\.dataset: expected a stage of this pipeline \(merge, model\) but got 'chips'/,
    );
  });

  it('records in bundle.json how the chips of the run were made (rgb stage -> chip -> merge)', async (t) => {
    const run = join(dir, 'run-bundle');
    await writeTinyDataset(join(run, 'merge'));
    // the fake trainer hands over an untrained export of the trainer's code as its model.onnx
    if (onnxDir === undefined) return t.skip('no Python with torch to export a model');
    process.env['FAKE_ONNX_DIR'] = onnxDir;
    t.after(() => delete process.env['FAKE_ONNX_DIR']);
    const logs: string[] = [];
    const ms = resolve(import.meta.dirname, '../../../shared/data/spacenet/ms1.tif');
    const ctx: JobContext = {
      storage: createStorage(),
      run: {
        uri: run,
        id: 'r2',
        graph: {
          pipeline: 'p',
          items: { scenes: [{ id: 'ms1', uri: ms }] },
          stages: [
            stage('rgb', {
              job: 'rgb',
              itemsFrom: 'scenes',
              count: 1,
              params: { bands: [3, 2, 1], stretch: 'percentile', percentiles: [2, 98], format: 'gtiff' },
            }),
            stage('chips', {
              job: 'chip',
              itemsFrom: 'scenes',
              count: 1,
              params: { image: 'rgb', size: 200, overlap: 0.1, percentiles: [2, 98] },
            }),
            stage('merge', { job: 'merge', params: { chips: 'chips' } }),
            stage('model', { job: 'train' }),
          ],
        },
        stageUri: (s) => join(run, s),
      },
      stage: 'model',
      index: 0,
      items: [],
      tmpDir: join(dir, 'tmp-bundle'),
      log: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
      progress: () => undefined,
      signal: new AbortController().signal,
    };
    const job = await loadJob('train');
    const params = catalog.train.params.parse({
      dataset: 'merge',
      task: 'classification',
      epochs: 1,
      weights: 'none',
    });
    const result = await job.run(params, ctx);
    assert.ok(result?.outputs?.includes(join(run, 'model', 'bundle.json')));
    const { bundle } = await readBundle(ctx.storage, join(run, 'model'));
    assert.deepEqual(bundle.windows, { size: 200, overlap: 0.1 });
    assert.deepEqual(bundle.conversion, {
      sourceBands: 4,
      sourceType: 'float64',
      bands: [3, 2, 1],
      stretch: { kind: 'percentile', low: 2, high: 98 },
      description: 'stage rgb (rgb): bands 3,2,1, percentile 2-98, from 4-band float64 scenes',
    });
    assert.deepEqual(bundle.classes, TINY_CLASSES);
    assert.deepEqual([bundle.input.size, bundle.input.batch], [128, null]);
    // the stand-in trainer records no threshold
    assert.deepEqual(
      [bundle.scoreThreshold, bundle.thresholdFrom],
      [0.5, 'default 0.5: the trainer recorded no threshold'],
    );
    assert.equal(result?.summary?.['scoreThreshold'], 0.5);
    assert.ok(
      logs.some((l) => l.startsWith('model bundle: input 128 px, batch dynamic, windows 200 px overlap 0.1')),
    );
  });
});
