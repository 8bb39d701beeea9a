// The chip job as a pipeline stage through `geobatch run`: demo scenes -> rgb -> xView COCO
// shards -> SAHI-style slices of each RGB scene with its shard.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chipPipeline } from '../helpers/chip-pipeline.js';
import { geobatch } from '../helpers/cli.js';

const pipeline = chipPipeline('chips');

describe('chip stage in a pipeline', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-chip-'));
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '320', '--scenes', '2']);
    assert.equal(made.code, 0, made.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('slices each RGB scene with its COCO shard into <stage>/<item>/', async () => {
    await writeFile(join(dir, 'chips.yaml'), pipeline);
    const r = await geobatch(['run', join(dir, 'chips.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const run = join(
      dir,
      'runs/chips',
      (await readdir(join(dir, 'runs/chips'))).find((n) => n !== 'latest.json')!,
    );
    assert.deepEqual((await readdir(join(run, 'chips'))).sort(), ['demo-001', 'demo-002']);
    const coco = JSON.parse(await readFile(join(run, 'chips/demo-001/annotations.json'), 'utf8')) as {
      images: { file_name: string; crs?: string }[];
      annotations: { image_id: number }[];
      categories: unknown[];
    };
    assert.ok(coco.images.length > 0 && coco.annotations.length >= coco.images.length);
    assert.ok(coco.categories.length > 0);
    assert.match(coco.images[0]!.file_name, /^demo-001_\d+_\d+_\d+_\d+\.jpg$/);
    assert.match(coco.images[0]!.crs ?? '', /^EPSG:\d+$/);
    const chips = await readdir(join(run, 'chips/demo-001/images'));
    assert.equal(chips.length, coco.images.length);
    const index = JSON.parse(await readFile(join(run, 'chips/demo-001/chips.geojson'), 'utf8')) as {
      features: unknown[];
    };
    assert.equal(index.features.length, coco.images.length);
  });

  it('chips the 4-band uint16 scenes directly, stretched on the fly, as georeferenced GeoTIFFs', async () => {
    await writeFile(
      join(dir, 'direct.yaml'),
      `version: 1
name: direct
output: runs
inputs:
  scenes: data/*.tif
stages:
  chips:
    job: chip
    foreach: scenes
    params: { size: 160, overlap: 0, format: tif, bands: [3, 2, 1], stretch: percentile, percentiles: [2, 98] }
`,
    );
    const r = await geobatch(['run', join(dir, 'direct.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const run = join(
      dir,
      'runs/direct',
      (await readdir(join(dir, 'runs/direct'))).find((n) => n !== 'latest.json')!,
    );
    const coco = JSON.parse(await readFile(join(run, 'chips/demo-002/annotations.json'), 'utf8')) as {
      images: { file_name: string; geotransform: number[]; crs: string }[];
    };
    // 320 px scenes in 160 px chips, no overlap: 2 x 2
    assert.deepEqual(
      coco.images.map((i) => i.file_name),
      [
        'demo-002_0_0_160_160.tif',
        'demo-002_160_0_320_160.tif',
        'demo-002_0_160_160_320.tif',
        'demo-002_160_160_320_320.tif',
      ],
    );
    const chip = await readFile(join(run, 'chips/demo-002/images/demo-002_160_160_320_320.tif'));
    // little-endian TIFF, 8-bit RGB chips made from the uint16 scene
    assert.equal(chip.subarray(0, 4).toString('hex'), '49492a00');
    const { fromArrayBuffer } = await import('geotiff');
    const tiff = await fromArrayBuffer(chip.buffer.slice(chip.byteOffset, chip.byteOffset + chip.byteLength));
    const image = await tiff.getImage();
    assert.equal(image.getSamplesPerPixel(), 3);
    assert.equal(image.getBitsPerSample(), 8);
    const [ox, px, , oy, , py] = coco.images[3]!.geotransform;
    assert.deepEqual(image.getOrigin().slice(0, 2), [ox, oy]);
    assert.deepEqual(image.getResolution().slice(0, 2), [px, py]);
    assert.match(coco.images[3]!.crs, /^EPSG:\d+$/);
  });
});
