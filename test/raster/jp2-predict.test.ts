// predict reads a JP2 scene as it reads the GeoTIFF it was made from: same windows, same classes.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openPredictor, predictScene, type Predictor } from '../../lib/predict/predict.js';
import { createStorage } from '../../lib/storage/index.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { tempDir } from './fixtures.js';
import { jp2Skip, SHARED } from './jp2-fixtures.js';
import { gdal, gdalPixels } from './scene-fixtures.js';

const storage = createStorage();

describe('predict on a JPEG 2000 scene', { skip: jp2Skip }, () => {
  const tmp = tempDir('jp2-predict');
  let model: Predictor;
  before(async () => {
    model = await openPredictor(storage, await untrainedModel({ task: 'segmentation' }));
  });
  after(async () => {
    await model.close();
    tmp.cleanup();
  });

  it('segmentation classes and sizes from the JP2 equal those from the GeoTIFF', async () => {
    mkdirSync(join(tmp.dir, 'a'));
    mkdirSync(join(tmp.dir, 'b'));
    const tif = join(tmp.dir, 'a', 'scene.tif');
    const jp2 = join(tmp.dir, 'b', 'scene.jp2');
    copyFileSync(join(SHARED, 'spacenet/rgb_unmasked.tif'), tif);
    gdal('gdal_translate', [
      '-q',
      '-of',
      'JP2OpenJPEG',
      '-co',
      'QUALITY=100',
      '-co',
      'REVERSIBLE=YES',
      '-co',
      'BLOCKXSIZE=128',
      '-co',
      'BLOCKYSIZE=128',
      tif,
      jp2,
    ]);
    const a = await predictScene(storage, tif, { model, out: join(tmp.dir, 'out-a') });
    const b = await predictScene(storage, jp2, { model, out: join(tmp.dir, 'out-b') });
    assert.equal(b.status, 'done');
    assert.deepEqual([b.width, b.height, b.windows, b.empty], [a.width, a.height, a.windows, a.empty]);
    assert.deepEqual(b.counts, a.counts);
    const classes = (dir: string) => gdalPixels(join(dir, 'scene.classes.tif'), 'uint8');
    assert.deepEqual(classes(join(tmp.dir, 'out-b')), classes(join(tmp.dir, 'out-a')));
  });
});
