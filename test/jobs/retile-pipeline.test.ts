// The retile job as a pipeline stage through `geobatch run`: demo scenes cut into tiles directly
// and from an rgb stage's output, and stage parameters checked before anything runs.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RetileIndex } from '../../lib/chip/retile.js';
import { geobatch } from '../helpers/cli.js';

const pipeline = (params: string) => `version: 1
name: tiles
output: runs
inputs:
  scenes: data/*.tif
stages:
  rgb:
    job: rgb
    foreach: scenes
  tiles:
    job: retile
    foreach: scenes
    params: { size: 128, overlap: 16 }
  rgbtiles:
    job: retile
    foreach: rgb
    params: ${params}
`;

async function latestRun(dir: string): Promise<string> {
  const runs = (await readdir(join(dir, 'runs/tiles'))).filter((n) => n !== 'latest.json').sort();
  return join(dir, 'runs/tiles', runs.at(-1)!);
}

describe('retile stage in a pipeline', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-retile-job-'));
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '300', '--scenes', '2']);
    assert.equal(made.code, 0, made.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('cuts each scene, and each rgb output, into <stage>/<item>/ tiles with tiles.json', async () => {
    await writeFile(join(dir, 'tiles.yaml'), pipeline('{ image: rgb, size: 200, compress: none }'));
    const r = await geobatch(['run', join(dir, 'tiles.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const run = await latestRun(dir);
    assert.deepEqual((await readdir(join(run, 'tiles'))).sort(), ['demo-001', 'demo-002']);
    const index = JSON.parse(await readFile(join(run, 'tiles/demo-001/tiles.json'), 'utf8')) as RetileIndex;
    // 300 px, size 128, overlap 16: origins 0, 112, 224 -> 3 x 3 tiles, the last 76 px wide
    assert.deepEqual([index.rows, index.cols, index.size, index.overlap], [3, 3, 128, 16]);
    assert.deepEqual(index.tiles.at(-1)!.window, { col: 224, row: 224, width: 76, height: 76 });
    assert.equal(index.tiles[0]!.name, 'demo-001_1_1.tif');
    assert.ok(index.tiles.every((t) => t.geotransform !== null));
    const files = (await readdir(join(run, 'tiles/demo-001'))).sort();
    assert.deepEqual(files, [...index.tiles.map((t) => t.name), 'tiles.json'].sort());

    const rgb = JSON.parse(await readFile(join(run, 'rgbtiles/demo-002/tiles.json'), 'utf8')) as RetileIndex;
    assert.deepEqual([rgb.rows, rgb.cols, rgb.bands, rgb.dtype, rgb.compress], [2, 2, 3, 'uint8', 'none']);
    assert.match(rgb.source, /rgb\/demo-002\.tif$/);
  });

  it('refuses overlap >= size and size 0 before running, naming the parameter', async () => {
    await writeFile(join(dir, 'bad.yaml'), pipeline('{ image: rgb, size: 100, overlap: 100 }'));
    const r = await geobatch(['run', join(dir, 'bad.yaml')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /stages\.rgbtiles\.params\.overlap.*expected overlap < size/s);

    await writeFile(join(dir, 'bad2.yaml'), pipeline('{ size: 0 }'));
    const r2 = await geobatch(['run', join(dir, 'bad2.yaml')]);
    assert.equal(r2.code, 2, r2.stderr);
    assert.match(r2.stderr, /stages\.rgbtiles\.params\.size/);
  });
});
