import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { PredictError } from '../../lib/predict/errors.js';
import { openPredictor, predictScene, type Predictor } from '../../lib/predict/predict.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { filesUnder, gdalBytes, writeScene } from './helpers.js';

const storage = createStorage();
const UINT16_SCENE = join(import.meta.dirname, '../../../shared/data/spacenet/sample_geotiff.tif');
let dir: string;
let segmentation: Predictor;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geobatch-predict-input-'));
  segmentation = await openPredictor(storage, await untrainedModel({ task: 'segmentation' }));
});

after(async () => {
  await segmentation.close();
  await rm(dir, { recursive: true, force: true });
});

/** Runs predict, expects a PredictError matching `pattern` on one line, and nothing written to `out`. */
async function refused(run: (out: string) => Promise<unknown>, pattern: RegExp, name: string): Promise<void> {
  const out = join(dir, `refused-${name}`);
  await assert.rejects(run(out), (error: Error) => {
    assert.ok(error instanceof PredictError, `${error.name}: ${error.message}`);
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });
  assert.deepEqual(await filesUnder(out), [], 'nothing written');
}

describe('bad input', () => {
  test('a model folder without bundle.json', async () => {
    const model = join(dir, 'no-bundle');
    await mkdir(model, { recursive: true });
    await copyFile(
      join(await untrainedModel({ task: 'segmentation' }), 'model.onnx'),
      join(model, 'model.onnx'),
    );
    const scene = await writeScene(join(dir, 'ok.tif'), 100, 100);
    await refused(
      (out) => predictScene(storage, scene, { model, out }),
      /bundle\.json: not found: .*model\.onnx has no model bundle/,
      'no-bundle',
    );
  });

  test('a model of another task than asked for', async () => {
    const scene = await writeScene(join(dir, 'ok2.tif'), 100, 100);
    await refused(
      (out) => predictScene(storage, scene, { model: segmentation, out, task: 'detection' }),
      /a segmentation model \(unet\), but predict --task detection needs a detection model/,
      'task',
    );
  });

  test('a scene with other bands than the model was trained on', async () => {
    await refused(
      (out) => predictScene(storage, UINT16_SCENE, { model: segmentation, out }),
      /sample_geotiff\.tif: 1 band\(s\) of uint16, but the model .* was trained on chips from 8-bit RGB/,
      'bands',
    );
  });

  test('an unreadable scene and a missing one', async () => {
    const bad = join(dir, 'garbage.tif');
    await writeFile(bad, Buffer.from('this is not a TIFF at all, just text'));
    await refused(
      (out) => predictScene(storage, bad, { model: segmentation, out }),
      /garbage\.tif: cannot read the scene: /,
      'garbage',
    );
    await refused(
      (out) => predictScene(storage, join(dir, 'missing.tif'), { model: segmentation, out }),
      /missing\.tif: the scene does not exist/,
      'missing',
    );
  });

  test('an all no-data scene is an empty result (all 255), with a warning, not an error; no window is run', async () => {
    const scene = await writeScene(join(dir, 'empty.tif'), 150, 140, { nodata: [0, 0, 150, 140] });
    const out = join(dir, 'empty-out');
    const result = await predictScene(storage, scene, { model: segmentation, out });
    assert.equal(result.runs, 0);
    assert.equal(result.empty, result.windows);
    assert.match(result.warnings.join('\n'), /empty\.tif: no valid pixels \(the scene is all no-data\)/);
    const values = gdalBytes(join(out, 'empty.classes.tif'), dir);
    assert.ok(values.every((v) => v === 255));
    assert.deepEqual(await filesUnder(out), ['empty.classes.tif', 'empty.geojson', 'empty.predict.json']);
  });
});

describe('S3', () => {
  let server: S3rverHandle;
  before(async () => {
    server = await startS3rver();
  });
  after(async () => {
    await server.stop();
  });

  test('a scene and a model on S3 (byte ranges), outputs to S3: the same files as a local run', async () => {
    const bucket = await server.createBucket();
    const client = new S3Client(server.clientConfig);
    const scene = await writeScene(join(dir, 's3scene.tif'), 260, 200, { nodata: [200, 150, 260, 200] });
    const model = await untrainedModel({ task: 'segmentation' });
    for (const [key, path] of [
      ['scenes/s3scene.tif', scene],
      ['train/model.onnx', join(model, 'model.onnx')],
      ['train/bundle.json', join(model, 'bundle.json')],
    ] as const) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(path) }));
    }
    client.destroy();
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 'cache') });
    const local = join(dir, 's3-local');
    await predictScene(storage, scene, { model: segmentation, out: local });
    const result = await predictScene(s3, `s3://${bucket}/scenes/s3scene.tif`, {
      model: `s3://${bucket}/train`,
      out: `s3://${bucket}/preds`,
    });
    assert.equal(result.status, 'done');
    const keys: string[] = [];
    for await (const info of s3.list(`s3://${bucket}/preds/`)) keys.push(info.uri.split('/preds/')[1]!);
    assert.deepEqual(keys.sort(), ['s3scene.classes.tif', 's3scene.geojson', 's3scene.predict.json']);
    assert.deepEqual(
      await s3.read(`s3://${bucket}/preds/s3scene.classes.tif`),
      await readFile(join(local, 's3scene.classes.tif')),
    );
    assert.equal(
      (await s3.read(`s3://${bucket}/preds/s3scene.geojson`)).toString(),
      await readFile(join(local, 's3scene.geojson'), 'utf8'),
    );
  });
});

describe('geobatch predict', () => {
  test('--help explains the outputs and options', async () => {
    const r = await geobatch(['predict', '--help']);
    assert.equal(r.code, 0);
    for (const flag of [
      '--model',
      '--images',
      '--out',
      '--window-size',
      '--merge',
      '--match-metric',
      '--blend',
      '--device',
      '--keep-raw',
      '--part',
    ]) {
      assert.ok(r.stdout.includes(flag), flag);
    }
    assert.match(r.stdout, /classes\.tif/);
  });

  test('a folder of scenes end to end, --json summary; a bad model is one line and exit 1', async () => {
    const scenes = join(dir, 'cli-scenes');
    await mkdir(scenes, { recursive: true });
    await writeScene(join(scenes, 'a.tif'), 140, 130, { seed: 2 });
    await writeScene(join(scenes, 'b.tif'), 130, 150, { seed: 4, epsg: null });
    const out = join(dir, 'cli-out');
    const model = await untrainedModel({ task: 'classification' });
    const r = await geobatch(['predict', '--model', model, '--images', scenes, '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { scenes: { id: string; status: string; windows: number }[] };
    assert.deepEqual(
      summary.scenes.map((s) => [s.id, s.status]),
      [
        ['a', 'done'],
        ['b', 'done'],
      ],
    );
    assert.match(r.stderr, /ONNX Runtime CPU \(\d+ run\(s\) of \d+ thread\(s\)\) execution provider/);
    // b has no georeferencing: no GeoJSON
    assert.deepEqual(await filesUnder(out), [
      'a.geojson',
      'a.predict.json',
      'a.scores.csv',
      'b.predict.json',
      'b.scores.csv',
    ]);
    const text = await geobatch(['predict', '--model', model, '--images', scenes, '--out', out]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /a: .*done by an earlier run, skipped/);

    const bad = await geobatch([
      'predict',
      '--model',
      dir,
      '--images',
      scenes,
      '--out',
      join(dir, 'cli-bad'),
    ]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    assert.match(bad.stderr, /^geobatch: .*not a trained model/);
  });
});
