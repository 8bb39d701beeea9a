// The chip-grid job as a pipeline stage through `geobatch run`, and its parameter schema.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { catalog } from '../../jobs/catalog.js';
import { geobatch } from '../helpers/cli.js';

const data = resolve(import.meta.dirname, '../../../shared/data/cog');

describe('chip-grid stage in a pipeline', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-chip-grid-'));
    await mkdir(join(dir, 'scenes'));
    await copyFile(join(data, 'cog_nodata.tif'), join(dir, 'scenes', 'cog_nodata.tif'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('validates params: defaults, level range, tile size', () => {
    const params = catalog['chip-grid'].params;
    const ok = params.parse({ grid: 'webmercator', level: 7 });
    assert.deepEqual(ok, {
      grid: 'webmercator',
      level: 7,
      format: 'png',
      resampling: 'nearest',
      overviews: true,
      skipEmpty: true,
    });
    assert.equal(params.safeParse({ grid: 'ard', level: 25 }).success, false);
    assert.equal(params.safeParse({ grid: 'ard', level: 9, tileSize: 300 }).success, false);
    assert.equal(params.safeParse({ grid: 'hex', level: 9 }).success, false);
    assert.equal(params.safeParse({ grid: 'ard', level: 9, catalogId: 'a_b' }).success, false);
    assert.equal(catalog['chip-grid'].granularity, 'item');
  });

  it('cuts each scene into <stage>/<item>/ with its index', async () => {
    await writeFile(
      join(dir, 'grid.yaml'),
      `version: 1
name: grid
output: runs
inputs:
  scenes: scenes/*.tif
stages:
  tiles:
    job: chip-grid
    foreach: scenes
    params: { grid: webmercator, level: 7, format: jpeg }
`,
    );
    const r = await geobatch(['run', join(dir, 'grid.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const runs = join(dir, 'runs/grid');
    const run = join(
      runs,
      (await readdir(runs)).find((n) => n !== 'latest.json')!,
    );
    const items = await readdir(join(run, 'tiles'));
    const item = items.find((n) => !n.startsWith('.') && !n.endsWith('.json'))!;
    const index = JSON.parse(await readFile(join(run, 'tiles', item, 'nodata-index.json'), 'utf8')) as {
      counts: Record<string, number>;
      chips: { chip: string; written: boolean }[];
    };
    assert.ok(index.chips.length > 0);
    assert.ok(index.chips.some((c) => c.written && /^7\/\d+\/\d+\.jpg$/.test(c.chip)));
  });
});
