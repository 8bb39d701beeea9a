// The rgb, labels-xview, labels and mask jobs as pipeline stages, through `geobatch run`, over
// two small demo scenes made by `geobatch demo-data` (the quickstart's stages, smaller).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { geobatch } from '../helpers/cli.js';
import { epsgOfWkt, gdalinfo, gdalSkip } from '../raster/gdal-tools.js';

const stages = `stages:
  rgb:
    job: rgb
    foreach: scenes
  labels:
    job: labels-xview
    needs: [rgb]
    params: { labels: xview, images: rgb }
  polygons:
    job: labels
    foreach: rgb
    params: { labels: outlines, image: rgb, categoryField: class }
  masks:
    job: mask
    foreach: rgb
    params:
      labels: outlines
      image: rgb
      burnField: class
      categories: { building: 1, vehicle: 2, storage_tank: 3 }
`;

const pipeline = (body: string): string => `version: 1
name: prep
output: runs
inputs:
  scenes: data/*.tif
  xview: data/labels/xview_demo.geojson
  outlines: data/labels/demo-*.geojson
${body}`;

describe('preprocessing stages in a pipeline', { skip: gdalSkip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-prep-'));
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '320', '--scenes', '2']);
    assert.equal(made.code, 0, made.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rgb -> xView COCO shards, polygon COCO shards and masks, one per scene', async () => {
    await writeFile(join(dir, 'prep.yaml'), pipeline(stages));
    const r = await geobatch(['run', join(dir, 'prep.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const run = join(
      dir,
      'runs/prep',
      (await readdir(join(dir, 'runs/prep'))).find((n) => n !== 'latest.json')!,
    );
    assert.deepEqual((await readdir(join(run, 'rgb'))).sort(), ['demo-001.tif', 'demo-002.tif']);
    assert.deepEqual((await readdir(join(run, 'labels'))).sort(), [
      'demo-001.json',
      'demo-002.json',
      'summary.json',
    ]);
    assert.deepEqual((await readdir(join(run, 'polygons'))).sort(), ['demo-001.json', 'demo-002.json']);
    assert.deepEqual((await readdir(join(run, 'masks'))).sort(), ['demo-001.tif', 'demo-002.tif']);

    const scene = gdalinfo(join(dir, 'data/demo-001.tif'));
    const rgb = gdalinfo(join(run, 'rgb/demo-001.tif'));
    assert.deepEqual(rgb.geoTransform, scene.geoTransform);
    assert.equal(epsgOfWkt(rgb.coordinateSystem!.wkt), epsgOfWkt(scene.coordinateSystem!.wkt));
    assert.deepEqual(
      rgb.bands.map((b) => b.type),
      ['Byte', 'Byte', 'Byte'],
    );
    assert.deepEqual(gdalinfo(join(run, 'masks/demo-001.tif')).geoTransform, scene.geoTransform);

    const summary = JSON.parse(await readFile(join(run, 'labels/summary.json'), 'utf8')) as {
      counts: { features: number; kept: number; missingImage: number; unmappedCategory: number };
    };
    const xview = JSON.parse(await readFile(join(dir, 'data/labels/xview_demo.geojson'), 'utf8')) as {
      features: unknown[];
    };
    assert.equal(summary.counts.features, xview.features.length);
    assert.equal(summary.counts.missingImage, 0);
    assert.equal(summary.counts.unmappedCategory, 0);

    const shard = JSON.parse(await readFile(join(run, 'labels/demo-001.json'), 'utf8')) as {
      images: { file_name: string; uri: string; width: number }[];
      annotations: unknown[];
    };
    // the shard points at the RGB image the next stage reads
    assert.equal(shard.images[0]!.file_name, 'demo-001.tif');
    assert.equal(shard.images[0]!.uri, join(run, 'rgb/demo-001.tif'));
    assert.equal(shard.images[0]!.width, 320);
    const polygons = JSON.parse(await readFile(join(run, 'polygons/demo-001.json'), 'utf8')) as {
      annotations: { segmentation: number[][] }[];
      categories: { name: string }[];
    };
    for (const c of polygons.categories)
      assert.ok(['building', 'storage_tank', 'vehicle'].includes(c.name), c.name);
    assert.ok(
      polygons.annotations.length > 0 && polygons.annotations.every((a) => a.segmentation.length >= 1),
    );
    assert.equal(
      shard.annotations.length,
      polygons.annotations.length,
      'the same objects, as boxes and as outlines',
    );
  });

  it("a stage that reads another stage's images must wait for it", async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      pipeline(`stages:
  rgb:
    job: rgb
    foreach: scenes
  labels:
    job: labels-xview
    params: { labels: xview, images: rgb }
`),
    );
    const r = await geobatch(['run', join(dir, 'bad.yaml'), '--json']);
    assert.equal(r.code, 1);
    assert.match(
      r.stdout,
      /stages\.labels\.params\.images: stage 'rgb' must finish first: add needs: \[rgb\] to stage 'labels'/,
    );
  });
});
