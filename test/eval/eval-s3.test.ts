// evaluate() with every input and output on S3 (s3rver on loopback): predictions and truth listed
// and read through lib/storage, class rasters by byte ranges, results uploaded.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evaluate } from '../../lib/eval/eval.js';
import type { EvalReport } from '../../lib/eval/eval.js';
import { rasterizeMask } from '../../lib/labels/geo-labels.js';
import { createStorage } from '../../lib/storage/index.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { FEATURES, geoLabelsText, writePredictFolder, writeScene } from './fixtures.js';

describe('eval on S3', () => {
  let server: S3rverHandle;
  let dir: string;
  before(async () => {
    server = await startS3rver();
    dir = await mkdtemp(join(tmpdir(), 'geobatch-eval-s3-'));
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('scores a segmentation predict folder on S3 against geo-labels and masks on S3', async () => {
    const local = createStorage();
    const scene = await writeScene(join(dir, 'scenes'), 's1');
    await mkdir(join(dir, 'labels'), { recursive: true });
    await writeFile(join(dir, 'labels', 's1.geojson'), geoLabelsText(FEATURES));
    await rasterizeMask(local, join(dir, 'labels', 's1.geojson'), scene, join(dir, 'masks', 's1.tif'), {
      burnField: 'class_id',
    });
    await writePredictFolder(join(dir, 'pred'), 's1', {
      task: 'segmentation',
      classesTif: join(dir, 'masks', 's1.tif'),
      geojson: geoLabelsText(FEATURES),
    });
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 'cache') });
    const bucket = await server.createBucket();
    for (const folder of ['labels', 'masks', 'pred']) {
      for (const name of await readdir(join(dir, folder))) {
        await s3.writeAtomic(`s3://${bucket}/${folder}/${name}`, await readFile(join(dir, folder, name)));
      }
    }
    for (const truth of ['labels', 'masks']) {
      const out = `s3://${bucket}/eval-${truth}`;
      const report = await evaluate(s3, {
        predictions: `s3://${bucket}/pred`,
        truth: `s3://${bucket}/${truth}`,
        out,
      });
      assert.equal(report.overall.segmentation!.meanIou, 1, truth);
      assert.equal(report.overall.segmentation!.perClass.building!.tp, 6600, truth);
      const names: string[] = [];
      for await (const o of s3.list(`${out}/`)) names.push(o.uri.slice(out.length + 1));
      assert.deepEqual(names.sort(), ['confusion.png', 'errors.geojson', 'eval.json', 'eval.md'], truth);
      const written = JSON.parse((await s3.read(`${out}/eval.json`)).toString()) as EvalReport;
      assert.deepEqual(written.overall, report.overall);
    }
  });
});
