import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { catalog } from '../../jobs/catalog.js';
import { compilePipeline, parsePipeline } from '../../lib/pipeline/index.js';
import { planSubmission, targetFromDescriptor } from '../../lib/runners/batch-plan.js';
import { geobatch } from '../helpers/cli.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { runId, testDescriptor } from '../runners/batch-fixtures.js';
import { filesUnder, writeScene } from './helpers.js';

describe('predict in the Batch plan', () => {
  const text = [
    'version: 1',
    'name: preds',
    'inputs:',
    '  scenes: [data/*.tif]',
    'stages:',
    '  cpu:',
    '    job: predict',
    '    foreach: scenes',
    '    params: { model: s3://models/train }',
    '  gpu:',
    '    job: predict',
    '    foreach: scenes',
    '    tasksPerItem: 2',
    '    resources: { gpus: 1 }',
    '    params: { model: s3://models/train, merge: nms }',
    '',
  ].join('\n');

  test('runs on the CPU queue by default, and as predict-gpu on the GPU queue with resources.gpus: 1', () => {
    const parsed = parsePipeline(text, 'preds.yaml');
    const items = [1, 2].map((i) => ({ id: `s${i}`, uri: `s3://raw/s${i}.tif` }));
    const graph = compilePipeline(parsed.spec, { scenes: items }, parsed.source);
    const descriptor = testDescriptor();
    const arn = (job: string) => `arn:aws:batch:us-east-1:123456789012:job-definition/geobatch-test-${job}:1`;
    const withPredict = {
      ...descriptor,
      jobDefinitions: {
        ...descriptor.jobDefinitions,
        predict: { name: 'geobatch-test-predict', arn: arn('predict'), queue: 'cpu' as const },
        'predict-gpu': { name: 'geobatch-test-predict-gpu', arn: arn('predict-gpu'), queue: 'gpu' as const },
      },
    };
    const plan = planSubmission({
      run: { runId, runUri: 's3://runs/r', graph },
      target: targetFromDescriptor(withPredict),
    });
    const byStage = Object.fromEntries(plan.jobs.map((j) => [j.stage, j]));
    const cpu = byStage.cpu!.request;
    const gpu = byStage.gpu!.request;
    assert.match(String(cpu.jobQueue), /geobatch-test-cpu$/);
    assert.match(String(cpu.jobDefinition), /geobatch-test-predict:1$/);
    assert.equal(cpu.arrayProperties?.size, 2);
    assert.ok(!cpu.containerOverrides.resourceRequirements!.some((r) => r.type === 'GPU'));
    assert.match(String(gpu.jobQueue), /geobatch-test-gpu$/);
    assert.match(String(gpu.jobDefinition), /geobatch-test-predict-gpu:1$/);
    assert.equal(gpu.arrayProperties?.size, 4);
    assert.deepEqual(
      gpu.containerOverrides.resourceRequirements!.find((r) => r.type === 'GPU'),
      { type: 'GPU', value: '1' },
    );
    // the task runs the stage's job, predict, on the GPU image
    assert.deepEqual(gpu.containerOverrides.command!.slice(0, 3), [
      'geobatch-job',
      's3://runs/r/plan.json',
      'gpu',
    ]);
    assert.equal(byStage.gpu!.job, 'predict-gpu');
    assert.equal(catalog['predict-gpu'].queue, 'gpu');
    assert.equal(catalog.predict.queue, 'cpu');
  });
});

describe('predict stages in a local run', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-predict-job-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('one task per scene and a stage split in 2 tasks per scene give the same files', async () => {
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeScene(join(dir, 'data', 'a.tif'), 180, 300, { seed: 3 });
    await writeScene(join(dir, 'data', 'b.tif'), 200, 150, { seed: 4 });
    const model = await untrainedModel({ task: 'segmentation' });
    await writeFile(
      join(dir, 'p.yaml'),
      [
        'version: 1',
        'name: p',
        'inputs:',
        '  scenes: [data/*.tif]',
        'stages:',
        '  whole:',
        '    job: predict',
        '    foreach: scenes',
        `    params: { model: ${model}, blend: edge }`,
        '  split:',
        '    job: predict',
        '    foreach: scenes',
        '    tasksPerItem: 2',
        `    params: { model: ${model}, blend: edge }`,
        '  bad:',
        '    job: predict',
        '    foreach: scenes',
        '    needs: [whole]',
        '    params: { model: whole }',
        '',
      ].join('\n'),
    );
    const r = await geobatch(['run', join(dir, 'p.yaml')], { cwd: dir });
    assert.notEqual(r.code, 0, 'the bad stage fails');
    const runs = join(dir, 'runs', 'p');
    const run = join(
      runs,
      (await readdir(runs)).find((n) => n !== 'latest.json')!,
    );
    const whole = await filesUnder(join(run, 'whole'));
    assert.deepEqual(
      whole.filter((f) => !f.startsWith('_') && !f.startsWith('.')),
      ['a.classes.tif', 'a.geojson', 'a.predict.json', 'b.classes.tif', 'b.geojson', 'b.predict.json'],
    );
    for (const f of ['a.classes.tif', 'b.classes.tif', 'a.geojson']) {
      assert.deepEqual(await readFile(join(run, 'split', f)), await readFile(join(run, 'whole', f)), f);
    }
    assert.deepEqual(
      (await filesUnder(join(run, 'split'))).filter((f) => !f.startsWith('_') && !f.startsWith('.')),
      whole.filter((f) => !f.startsWith('_') && !f.startsWith('.')),
    );
    assert.match(
      r.stdout + r.stderr,
      /params\.model: stage 'whole' runs job 'predict', which writes no model/,
    );
  });

  test("split: val predicts only the dataset's validation scenes; split without dataset is refused", async () => {
    const base = join(dir, 'split-run');
    await mkdir(join(base, 'data'), { recursive: true });
    await mkdir(join(base, 'ds'), { recursive: true });
    await writeScene(join(base, 'data', 'a.tif'), 120, 100, { seed: 5 });
    await writeScene(join(base, 'data', 'b.tif'), 100, 120, { seed: 6 });
    await writeFile(
      join(base, 'ds', 'dataset.json'),
      JSON.stringify({ scenes: { train: ['a'], val: ['b'] } }),
    );
    const model = await untrainedModel({ task: 'segmentation' });
    const pipeline = (params: string) =>
      [
        'version: 1',
        'name: s',
        'inputs:',
        '  scenes: [data/*.tif]',
        'stages:',
        '  val:',
        '    job: predict',
        '    foreach: scenes',
        `    params: { model: ${model}, ${params} }`,
        '',
      ].join('\n');
    await writeFile(join(base, 'bad.yaml'), pipeline('split: val'));
    const bad = await geobatch(['validate', join(base, 'bad.yaml')], { cwd: base });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout + bad.stderr, /stages\.val\.params\.dataset.*'split' needs 'dataset'/);
    await writeFile(join(base, 's.yaml'), pipeline(`dataset: ${join(base, 'ds')}, split: val`));
    const r = await geobatch(['run', join(base, 's.yaml')], { cwd: base });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const runs = join(base, 'runs', 's');
    const run = join(
      runs,
      (await readdir(runs)).find((n) => n !== 'latest.json')!,
    );
    assert.deepEqual(
      (await filesUnder(join(run, 'val'))).filter((f) => !f.startsWith('_') && !f.startsWith('.')),
      ['b.classes.tif', 'b.geojson', 'b.predict.json'],
    );
  });
});
