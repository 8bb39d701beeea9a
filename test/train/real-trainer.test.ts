// End to end with the real PyTorch trainer (jobs/train/geobatch_trainer): `geobatch train --smoke`
// on a tiny dataset, then the ONNX verification of its export, honest and tampered.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { TrainError } from '../../lib/train/errors.js';
import { assertOnnxMatches, compareDetections, compareOutput, verifyOnnx } from '../../lib/train/onnx.js';
import { readBundle } from '../../lib/predict/bundle.js';
import { createStorage } from '../../lib/storage/index.js';
import { findPython } from '../../lib/train/python.js';
import { geobatch, isolatedEnv } from '../helpers/cli.js';
import { TINY_CLASSES, writeTinyDataset } from './tiny-dataset.js';

/** A 4-band float64 GeoTIFF (SpaceNet multispectral) standing for the scenes of the chips. */
const MS = resolve(import.meta.dirname, '../../../shared/data/spacenet/ms1.tif');

let skip: string | false = false;
try {
  await findPython();
} catch (error) {
  skip = `no Python with torch to run the real trainer: ${(error as Error).message}`;
}

describe('onnx output comparison', () => {
  it('needs equal shapes (detection: as many boxes) and values within 1e-3', () => {
    const a = Float64Array.from([1, 2, 3, 4]);
    assert.equal(compareOutput('boxes', a, [1, 4], Float64Array.from([1.0005, 2, 3, 4]), [1, 4]).ok, true);
    const off = compareOutput('boxes', a, [1, 4], Float64Array.from([1, 2, 3.1, 4]), [1, 4]);
    assert.equal(off.ok, false);
    assert.match(off.problem!, /element 2: onnxruntime 3.1, PyTorch 3/);
    const fewer = compareOutput('boxes', a, [1, 4], new Float64Array(0), [0, 4]);
    assert.equal(fewer.ok, false);
    assert.match(fewer.problem!, /shape \[0, 4\] from onnxruntime, \[1, 4\] from PyTorch/);
    assert.equal(compareOutput('x', Float64Array.from([NaN]), [1], Float64Array.from([NaN]), [1]).ok, false);
  });

  it('matches detections regardless of their order, by label, box and score', () => {
    const torch = {
      boxes: Float64Array.from([0, 0, 10, 10, 20, 20, 30, 30]),
      labels: Float64Array.from([1, 2]),
      scores: Float64Array.from([0.5, 0.5]),
    };
    const swapped = {
      boxes: Float64Array.from([20, 20, 30.01, 30, 0, 0, 10, 10]),
      labels: Float64Array.from([2, 1]),
      scores: Float64Array.from([0.5004, 0.5]),
    };
    const same = compareDetections(torch, swapped);
    assert.deepEqual(
      same.map((o) => o.ok),
      [true, true, true],
    );
    assert.ok(Math.abs(same[0]!.maxAbsDiff - 0.01) < 1e-9);
    const relabelled = compareDetections(torch, { ...swapped, labels: Float64Array.from([1, 1]) });
    assert.equal(relabelled[0]!.ok, false);
    assert.match(
      relabelled[0]!.problem!,
      /1 of 2 PyTorch detections have no onnxruntime match \(first: label 2, score 0.50000, box \[20.00, 20.00, 30.00, 30.00\]/,
    );
    const moved = compareDetections(torch, {
      ...swapped,
      boxes: Float64Array.from([20, 20, 31, 30, 0, 0, 10, 10]),
    });
    assert.equal(moved[0]!.ok, false);
    // an untrained detector: 40 detections of near-equal score, one differs (an NMS order flip)
    const n = 40;
    const tiedTorch = {
      boxes: Float64Array.from({ length: 4 * n }, (_, i) => Math.floor(i / 4) * 10 + (i % 4)),
      labels: new Float64Array(n).fill(1),
      scores: Float64Array.from({ length: n }, (_, i) => 0.33 - i * 1e-4),
    };
    const flipped = { ...tiedTorch, boxes: Float64Array.from(tiedTorch.boxes) };
    flipped.boxes[4 * 39] = 999;
    const flip = compareDetections(tiedTorch, flipped);
    assert.equal(flip[0]!.ok, true);
    assert.match(
      flip[0]!.note!,
      /1 of 40 PyTorch detections have no onnxruntime match .* accepted as an NMS order flip/,
    );
    // the same with scores far apart is a mismatch
    const apart = { ...tiedTorch, scores: Float64Array.from({ length: n }, (_, i) => 0.99 - i * 0.02) };
    assert.equal(compareDetections(apart, { ...apart, boxes: flipped.boxes })[0]!.ok, false);
    // and so are 3 of 40 even when tied
    const three = Float64Array.from(flipped.boxes);
    three[0] = 999;
    three[4] = 999;
    assert.equal(compareDetections(tiedTorch, { ...tiedTorch, boxes: three })[0]!.ok, false);
    const fewer = compareDetections(torch, {
      boxes: torch.boxes.subarray(0, 4),
      labels: torch.labels.subarray(0, 1),
      scores: torch.scores.subarray(0, 1),
    });
    assert.match(fewer[0]!.problem!, /1 detections from onnxruntime, 2 from PyTorch/);
  });
});

describe('geobatch train with the real trainer', { skip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-realtrain-'));
    await writeTinyDataset(join(dir, 'data'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('trains a smoke classification model, writes verified artifacts, and resumes on a rerun', async () => {
    const out = join(dir, 'out');
    const env = isolatedEnv({ GEOBATCH_CACHE_DIR: join(dir, 'cache') });
    const args = [
      'train',
      '--dataset',
      join(dir, 'data'),
      '--out',
      out,
      '--task',
      'classification',
      '--smoke',
      '--weights',
      'none',
      // how the chips were made, for bundle.json
      '--window-size',
      '64',
      '--window-overlap',
      '0.25',
      '--scene',
      MS,
      '--bands',
      '4,3,2',
      '--stretch',
      'percentile',
      '--percentiles',
      '1,99',
      '--json',
    ];
    const run = await geobatch(args, { env });
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.model, 'resnet18');
    assert.equal(result.epochs, 2);
    assert.equal(result.resumedFrom, null);
    assert.equal(result.onnx.ok, true);
    assert.ok(result.onnx.outputs[0].maxAbsDiff < 1e-3);
    assert.ok(result.imagesPerSecond > 0);
    assert.deepEqual(Object.keys(result.metrics).sort(), ['f1Macro', 'f1Samples', 'perClass', 'threshold']);
    assert.deepEqual(Object.keys(result.metrics.perClass), ['building', 'vehicle']);
    for (const name of [
      'model.pt',
      'model.onnx',
      'metrics.json',
      'curves.png',
      'MODEL_CARD.md',
      'onnx-check.json',
      'onnx-check-input.bin',
      'onnx-check-scores.bin',
      'onnx-check-embedding.bin',
      'bundle.json',
      'checkpoints/epoch-0001.pt',
      'checkpoints/epoch-0002.pt',
    ]) {
      assert.equal(result.artifacts[name] ?? join(out, name), join(out, name));
      await readFile(join(out, name));
    }
    const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8'));
    assert.equal(metrics.epochs.length, 2);
    assert.equal(metrics.onnxCheck.ok, true);
    const png = await sharp(join(out, 'curves.png')).metadata();
    assert.deepEqual([png.format, png.width, png.height], ['png', 960, 540]);
    const card = await readFile(join(out, 'MODEL_CARD.md'), 'utf8');
    assert.match(card, /^# Model card: classification, resnet18/);
    assert.match(card, /\| 1 \| building \| 4 \| 2 \|/);
    assert.match(card, /## ONNX check\n\nPassed/);

    // the model bundle: uploaded after model.onnx, before the model card; what predict reads
    const uploaded = Object.keys(result.artifacts);
    assert.deepEqual(uploaded.slice(-3), ['bundle.json', 'MODEL_CARD.md', 'checkpoints']);
    assert.ok(uploaded.indexOf('model.onnx') < uploaded.indexOf('bundle.json'));
    const { bundle, onnxUri } = await readBundle(createStorage(), out);
    assert.equal(onnxUri, join(out, 'model.onnx'));
    assert.equal(bundle.task, 'classification');
    assert.equal(bundle.model, 'resnet18');
    assert.deepEqual(bundle.classes, TINY_CLASSES);
    // the smoke input size of classification, and the dynamic batch of the export
    assert.deepEqual(bundle.input, {
      name: 'image',
      size: 128,
      batch: null,
      range: [0, 1],
      layout: 'NCHW',
      resize: 'bilinear',
      normalization: 'inside the model (ImageNet mean and std)',
    });
    assert.deepEqual(bundle.outputs, ['scores', 'embedding']);
    // resnet18's pooled features, the input of its fc
    assert.deepEqual(bundle.embedding, { output: 'embedding', dim: 512 });
    assert.deepEqual(bundle.windows, { size: 64, overlap: 0.25 });
    assert.deepEqual(bundle.conversion, {
      sourceBands: 4,
      sourceType: 'float64',
      bands: [4, 3, 2],
      stretch: { kind: 'percentile', low: 1, high: 99 },
      description: `as given to geobatch train (--scene ${MS}): bands 4,3,2, percentile 1-99, from 4-band float64 scenes`,
    });
    assert.equal(bundle.scoreThreshold, metrics.threshold);
    assert.equal(typeof bundle.scoreThreshold, 'number');
    assert.match(
      bundle.thresholdFrom,
      /^max sample F1 on 2 validation chips, the trainer's search \(F1 \d\.\d\d\)$/,
    );
    assert.deepEqual(bundle.metrics, metrics.final);
    assert.ok(Math.abs(Date.parse(bundle.createdAt) - Date.now()) < 3_600_000);
    assert.match(card, /## Model bundle\n/);
    assert.match(card, new RegExp(`\\| score threshold \\| ${bundle.scoreThreshold} \\(max sample F1`));
    assert.match(card, /\| windows \| 64 px, overlap 0\.25 /);
    assert.match(card, /\| band conversion \| as given to geobatch train .*bands 4,3,2, percentile 1-99/);
    assert.match(card, /input `image` float32 \[N, 3, 128, 128\]/);

    // a rerun finds both checkpoints done: no training, the artifacts rewritten
    const again = await geobatch(args, { env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).resumedFrom, 2);
    assert.deepEqual(JSON.parse(again.stdout).bundle.conversion, bundle.conversion);
  });

  it('refuses --bands without the --scene whose header they refer to', async () => {
    const run = await geobatch(
      [
        'train',
        '--dataset',
        join(dir, 'data'),
        '--out',
        join(dir, 'never'),
        '--task',
        'detection',
        '--bands',
        '3,2,1',
      ],
      { env: isolatedEnv({ GEOBATCH_CACHE_DIR: join(dir, 'cache') }) },
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /--bands \/ --stretch \/ --range: expected --scene <one of the scenes the chips were cut from> as well/,
    );
  });

  it('verifies a one-step export and reports a tampered PyTorch output as a mismatch', async () => {
    const python = await findPython();
    const work = join(dir, 'onnx');
    await mkdir(join(work, 'ck'), { recursive: true });
    await mkdir(join(work, 'out'), { recursive: true });
    const config = {
      version: 1,
      task: 'classification',
      model: 'resnet18',
      weights: 'none',
      data: { root: join(dir, 'data'), train: 'train.json', val: 'val.json', imagesDir: 'images' },
      classes: [
        { id: 1, name: 'building' },
        { id: 7, name: 'vehicle' },
      ],
      epochs: 1,
      batchSize: 2,
      imageSize: 64,
      maxStepsPerEpoch: 1,
      threads: 2,
      checkpointDir: join(work, 'ck'),
      outputDir: join(work, 'out'),
    };
    await writeFile(join(work, 'config.json'), JSON.stringify(config));
    const { launchTrainer, trainFailure } = await import('../../lib/train/process.js');
    const result = await launchTrainer({
      python: python.python,
      trainerDir: python.trainerDir,
      configPath: join(work, 'config.json'),
      onEvent: () => undefined,
      onLog: () => undefined,
    });
    assert.equal(trainFailure(result), undefined);
    const outDir = join(work, 'out');
    const honest = await verifyOnnx(outDir);
    assert.equal(honest.ok, true);
    assert.deepEqual(honest.inputShape, [1, 3, 64, 64]);
    assert.deepEqual(
      honest.outputs.map((o) => [o.name, o.shape]),
      [
        ['scores', [1, 2]],
        ['embedding', [1, 512]],
      ],
    );
    // the embedding is compared too: one element moved by 0.01 is a mismatch
    const embedding = join(outDir, 'onnx-check-embedding.bin');
    await copyFile(embedding, `${embedding}.orig`);
    const vector = await readFile(embedding);
    vector.writeFloatLE(vector.readFloatLE(4 * 7) + 0.01, 4 * 7);
    await writeFile(embedding, vector);
    const movedEmbedding = await verifyOnnx(outDir);
    assert.equal(movedEmbedding.ok, false);
    assert.match(
      movedEmbedding.outputs.find((o) => o.name === 'embedding')!.problem!,
      /^element 7: onnxruntime /,
    );
    await copyFile(`${embedding}.orig`, embedding);

    // tamper with the PyTorch side: the first score moves by 0.01
    const file = join(outDir, 'onnx-check-scores.bin');
    await copyFile(file, `${file}.orig`);
    const bytes = await readFile(file);
    bytes.writeFloatLE(bytes.readFloatLE(0) + 0.01, 0);
    await writeFile(file, bytes);
    const tampered = await verifyOnnx(outDir);
    assert.equal(tampered.ok, false);
    assert.throws(
      () => assertOnnxMatches(tampered, join(outDir, 'model.onnx')),
      (error: unknown) => {
        assert.ok(error instanceof TrainError);
        assert.equal(error.kind, 'onnx');
        assert.match(
          error.message,
          /model\.onnx does not match the PyTorch model \(tolerance 0\.001 relative \+ 0\.001 absolute\): scores: element 0/,
        );
        return true;
      },
    );
    // a truncated output file is an error naming it
    await writeFile(file, bytes.subarray(0, 4));
    await assert.rejects(
      verifyOnnx(outDir),
      /onnx-check-scores\.bin: 4 bytes, expected 8 for shape \[1, 2\]/,
    );
  });
});
