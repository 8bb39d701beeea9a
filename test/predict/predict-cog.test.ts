// predict --cog: the segmentation class raster as a Cloud Optimized GeoTIFF, checked with GDAL's
// COG validator and against GDAL's own nearest overviews of the same classes.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openPredictor, predictScene, type Predictor } from '../../lib/predict/predict.js';
import { PredictError } from '../../lib/predict/errors.js';
import { predictParams } from '../../jobs/predict-params.js';
import { createStorage } from '../../lib/storage/index.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { gdalCog, gdalOverviewSizes, validateCog, validatorSkip } from '../raster/cog-gdal.js';
import { gdalPixels } from '../raster/scene-fixtures.js';
import { gdalinfo, writeScene } from './helpers.js';

const storage = createStorage();
let dir: string;
let segmentation: Predictor;
let detection: Predictor;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geobatch-predict-cog-'));
  segmentation = await openPredictor(storage, await untrainedModel({ task: 'segmentation' }));
  detection = await openPredictor(storage, await untrainedModel({ task: 'detection' }));
});

after(async () => {
  await Promise.all([segmentation.close(), detection.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('predict --cog', { skip: validatorSkip }, () => {
  test('the class raster is a valid COG (full check) with nearest overviews equal to GDAL nearest, full resolution as without --cog', async () => {
    const scene = await writeScene(join(dir, 'seg.tif'), 1100, 600, { nodata: [0, 0, 200, 120] });
    const out = join(dir, 'cog');
    const plainOut = join(dir, 'plain');
    await predictScene(storage, scene, { model: segmentation, out, cog: true });
    await predictScene(storage, scene, { model: segmentation, out: plainOut });
    const tif = join(out, 'seg.classes.tif');
    const plain = join(plainOut, 'seg.classes.tif');
    validateCog(tif);
    const info = gdalinfo(tif);
    assert.equal(info.metadata.IMAGE_STRUCTURE?.LAYOUT, 'COG');
    assert.deepEqual(info.geoTransform, gdalinfo(plain).geoTransform);
    assert.equal(info.bands[0]!.noDataValue, 255);
    const sizes = gdalOverviewSizes(tif);
    assert.deepEqual(sizes, [
      [550, 300],
      [275, 150],
    ]);
    const full = gdalPixels(tif, 'uint8');
    assert.deepEqual(full, gdalPixels(plain, 'uint8'));
    const classes = new Set(full);
    const reference = join(dir, 'gdal.tif');
    gdalCog(plain, reference, 'NEAREST', 512);
    assert.deepEqual(gdalOverviewSizes(reference), sizes);
    for (let i = 0; i < sizes.length; i++) {
      const ours = gdalPixels(tif, 'uint8', ['-ovr', String(i)]);
      assert.deepEqual(ours, gdalPixels(reference, 'uint8', ['-ovr', String(i)]), `overview ${i}`);
      for (const v of new Set(ours))
        assert.ok(classes.has(v), `overview ${i}: value ${v} is a class of the scene`);
    }
    assert.deepEqual(
      (await readdir(out)).filter((f) => f.startsWith('.')),
      [],
    );
  });

  test('a detection model with --cog is refused with one clear error; the job parameter defaults to false', async () => {
    const scene = await writeScene(join(dir, 'det.tif'), 200, 200);
    await assert.rejects(
      predictScene(storage, scene, { model: detection, out: join(dir, 'det'), cog: true }),
      (e: Error) =>
        e instanceof PredictError && /--cog: .* is a detection model; only segmentation/.test(e.message),
    );
    assert.equal(predictParams.parse({ model: 'train' }).cog, false);
    assert.equal(predictParams.parse({ model: 'train', cog: true }).cog, true);
    assert.throws(() => predictParams.parse({ model: 'train', cog: 'yes' }));
  });
});
