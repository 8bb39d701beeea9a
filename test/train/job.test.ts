import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { catalog } from '../../jobs/catalog.js';
import { loadJob } from '../../jobs/registry.js';
import type { JobContext } from '../../jobs/types.js';
import { createStorage } from '../../lib/storage/index.js';
import { stage } from '../helpers/plans.js';
import { writeFakeTrainer } from './fake-trainer.js';
import { writeTinyDataset } from './tiny-dataset.js';

describe('the train job', () => {
  let dir: string;
  const saved = { python: process.env['GEOBATCH_PYTHON'], trainer: process.env['GEOBATCH_TRAINER_DIR'] };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-trainjob-'));
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

    const missing = catalog.train.params.parse({ dataset: 'chips', task: 'classification' });
    await assert.rejects(
      job.run(missing, ctx),
      /stages\.model\.params\.dataset: expected a stage of this pipeline \(merge, model\) but got 'chips'/,
    );
  });
});
