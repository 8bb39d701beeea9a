import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { countValidPixels, nodataClass } from '../../lib/chip/nodata.js';
import { buildNodataIndex, type NodataIndex } from '../../lib/chip/nodata-index.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';

describe('nodataClass and countValidPixels', () => {
  const classes: [number, number, string][] = [
    [4, 4, 'all data'],
    [0, 4, 'no data'],
    [1, 4, 'partial data'],
    [3, 4, 'partial data'],
  ];
  for (const [valid, total, expected] of classes) {
    it(`${valid} of ${total} valid is ${expected}`, () => assert.equal(nodataClass(valid, total), expected));
  }
  it('rejects impossible counts', () => {
    assert.throws(() => nodataClass(5, 4), RangeError);
    assert.throws(() => nodataClass(0, 0), RangeError);
  });

  it('a pixel is valid when any band differs from no-data, or by alpha when there is one', () => {
    const rgb = Uint8Array.from([0, 0, 0, 0, 0, 1, 7, 7, 7, 0, 0, 0]);
    assert.equal(countValidPixels(rgb, 3, { alpha: false, nodata: 0 }), 2);
    assert.equal(countValidPixels(rgb, 3, { alpha: false, nodata: 7 }), 3);
    assert.equal(countValidPixels(rgb, 3, { alpha: false, nodata: null }), 4);
    const rgba = Uint8Array.from([9, 9, 9, 0, 0, 0, 0, 255]);
    assert.equal(countValidPixels(rgba, 4, { alpha: true, nodata: 0 }), 1);
  });
});

describe('buildNodataIndex', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodata-index-'));
    await mkdir(join(dir, 'images'));
    const chip = (fill: (x: number, y: number) => number): Buffer => {
      const b = Buffer.alloc(8 * 8 * 3);
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++) b.fill(fill(x, y), (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
      return b;
    };
    const write = (name: string, pixels: Buffer) =>
      sharp(pixels, { raw: { width: 8, height: 8, channels: 3 } })
        .png()
        .toFile(join(dir, 'images', name));
    await write(
      'a_full.png',
      chip(() => 100),
    );
    await write(
      'b_empty.png',
      chip(() => 0),
    );
    await write(
      'c_half.png',
      chip((x) => (x < 4 ? 0 : 50)),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('classifies every chip and writes nodata-index.json', async () => {
    const index = await buildNodataIndex(createStorage(), dir);
    assert.deepEqual(index.counts, { 'all data': 1, 'partial data': 1, 'no data': 1 });
    assert.deepEqual(index.chips, [
      { chip: 'images/a_full.png', class: 'all data', validFraction: 1 },
      { chip: 'images/b_empty.png', class: 'no data', validFraction: 0 },
      { chip: 'images/c_half.png', class: 'partial data', validFraction: 0.5 },
    ]);
    const written = JSON.parse(await readFile(join(dir, 'nodata-index.json'), 'utf8')) as NodataIndex;
    assert.deepEqual(written, index);
  });

  it('with no no-data value every pixel is valid', async () => {
    const index = await buildNodataIndex(createStorage(), dir, { nodata: null });
    assert.deepEqual(index.counts, { 'all data': 3, 'partial data': 0, 'no data': 0 });
  });

  it('refuses a folder without chips, naming it', async () => {
    await assert.rejects(buildNodataIndex(createStorage(), join(dir, 'missing')), {
      name: 'RasterError',
      message: /missing: no chips found/,
    });
  });

  it('geobatch chip nodata-index prints the counts; a bad --nodata exits 2', async () => {
    const ok = await geobatch(['chip', 'nodata-index', dir, '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), {
      nodata: 0,
      counts: { 'all data': 1, 'partial data': 1, 'no data': 1 },
    });
    const bad = await geobatch(['chip', 'nodata-index', dir, '--nodata', '300']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--nodata: expected an integer in \[0, 255\] or 'none' but got '300'/);
  });
});
