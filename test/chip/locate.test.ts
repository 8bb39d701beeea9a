// `chip locate`: chip names back to cells and source scenes, through the library and the CLI.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { locateChip, parseGridChipName } from '../../lib/chip/locate.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';

const data = resolve(import.meta.dirname, '../../../shared/data/cog');
const storage = createStorage();

describe('chip locate', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-locate-'));
    await copyFile(join(data, 'cog_nodata.tif'), join(dir, 'cog_nodata.tif'));
    await copyFile(join(data, 'cog.tif'), join(dir, 'other.tif'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives an ARD cell its UTM and lon/lat bounds, level and size', async () => {
    const loc = await locateChip(storage, 'out/Z21-011331111_cognodata.png');
    assert.equal(loc.grid, 'ard');
    assert.equal(loc.cell, 'Z21-011331111');
    assert.equal(loc.level, 9);
    assert.equal(loc.cellSize, 40_000);
    assert.equal(loc.epsg, 32621);
    // quadkey 011331111: col 0b011111111? x bits 0,1,1,1,1,1,1,1,1 -> 255; y bits 0,0,0,1,1,0,0,0,0 -> 48
    assert.deepEqual(loc.bounds, {
      xmin: -9_740_000 + 255 * 40_000,
      ymin: 10_240_000 - 49 * 40_000,
      xmax: -9_740_000 + 256 * 40_000,
      ymax: 10_240_000 - 48 * 40_000,
    });
    // the cell's east edge is easting 500,000: the zone's central meridian, 57 W
    assert.ok(Math.abs(loc.lonLat.east - -57) < 1e-9);
    assert.ok(loc.lonLat.south > 74 && loc.lonLat.north < 75.1);
  });

  it('finds the source scene by catalog id and the pixel window the cell covers', async () => {
    // cell Z21-011331132: x 460-500 km, y 8200-8240 km lies wholly inside the scene (373185..639015, 8019285..8286015)
    const loc = await locateChip(storage, 'Z21-011331132_cognodata.tif', { sources: dir });
    assert.equal(loc.sources?.length, 1);
    const s = loc.sources![0]!;
    assert.match(s.uri, /cog_nodata\.tif$/);
    assert.equal(s.whole, true);
    // GDAL's origin (gdalinfo: 373185, 8286015; the stored tie point is half a pixel further in)
    const x0 = 373185;
    const y0 = 8286015;
    const b = loc.bounds;
    assert.equal(s.window.col, Math.floor((b.xmin - x0) / 100.011267573448933));
    assert.equal(s.window.row, Math.floor((y0 - b.ymax) / 100.011267573448933));
    assert.ok(Math.abs(s.window.width - 40_000 / 100.011267573448933) <= 2);
  });

  it('parses web-mercator paths', async () => {
    const p = parseGridChipName('runs/x/9/168/68.png');
    assert.deepEqual(p, { grid: 'webmercator', tile: { z: 9, x: 168, y: 68 } });
    const loc = await locateChip(storage, '9/168/68.png', { sources: dir });
    assert.equal(loc.quadkey.length, 9);
    assert.equal(loc.lonLat.west, -61.875);
    // both scenes (no catalog id on tiles) are candidates; this tile lies north of them
    assert.deepEqual(loc.sources, []);
  });

  it('rejects unreadable names on the command line with exit code 1', async () => {
    for (const name of ['foo.png', 'Z21-0113_', 'Z99-0113_abc.png', '9/999/68.png', '30/1/1']) {
      const r = await geobatch(['chip', 'locate', name]);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, /geobatch: Expected /, name);
    }
  });

  it('prints JSON with --json', async () => {
    const r = await geobatch(['chip', 'locate', 'Z21-011331132_cognodata.png', '--sources', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const loc = JSON.parse(r.stdout) as { cell: string; sources: { uri: string }[] };
    assert.equal(loc.cell, 'Z21-011331132');
    assert.equal(loc.sources.length, 1);
  });
});
