import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ardCellAt,
  ardCellBounds,
  ardCellId,
  ardCellSize,
  ardCellsCovering,
  ardChipName,
  ardContains,
  ardIsSouth,
  parseArdCellId,
  parseArdChipName,
} from '../../lib/geo/ard-grid.js';
import { lonLatToUtm } from '../../lib/geo/utm.js';

// Expected cells computed independently with a few lines of Python integer arithmetic from the
// grid definition of REFERENCE §3 (col = (E + 9,740,000) // size, row = (10,240,000 - y) // size).
describe('Maxar ARD grid', () => {
  it('cell sizes: level 12 = 5,000 m, 17 = 156.25 m, 18 = 78.125 m', () => {
    assert.equal(ardCellSize(12), 5000);
    assert.equal(ardCellSize(17), 156.25);
    assert.equal(ardCellSize(18), 78.125);
    assert.equal(ardCellSize(0), 20_480_000);
  });

  it('a northern point at level 12', () => {
    const cell = ardCellAt(40, true, 300_000, 2_700_000, 12);
    assert.deepEqual(cell, { zone: 40, quadkey: '031333211200' });
    assert.equal(ardCellId(cell), 'Z40-031333211200');
    assert.deepEqual(ardCellBounds(cell), {
      epsg: 32640,
      xmin: 300_000,
      ymin: 2_695_000,
      xmax: 305_000,
      ymax: 2_700_000,
    });
  });

  it('a southern point (Sydney, zone 56 south) at levels 12 and 17', () => {
    const [e, n] = [334368.633648097, 6250948.345385009];
    const cell = ardCellAt(56, false, e, n, 12);
    assert.equal(cell.quadkey, '213133213312');
    assert.ok(ardIsSouth(cell.quadkey));
    assert.deepEqual(ardCellBounds(cell), {
      epsg: 32756,
      xmin: 330_000,
      ymin: 6_250_000,
      xmax: 335_000,
      ymax: 6_255_000,
    });
    const fine = ardCellAt(56, false, e, n, 17);
    assert.equal(fine.quadkey, '21313321331233013');
    assert.ok(ardContains(cell, fine));
    assert.ok(!ardContains(fine, cell));
    assert.ok(!ardContains({ zone: 55, quadkey: cell.quadkey }, fine));
  });

  it('agrees with the UTM projection: Berlin falls in its own cell bounds', () => {
    const [e, n] = lonLatToUtm(13.405, 52.52, { zone: 33, north: true });
    for (const level of [1, 5, 12, 17, 18, 24]) {
      const b = ardCellBounds(ardCellAt(33, true, e, n, level));
      assert.equal(b.epsg, 32633);
      assert.ok(b.xmin <= e && e < b.xmax && b.ymin < n && n <= b.ymax, `level ${level}`);
      assert.equal(b.xmax - b.xmin, ardCellSize(level));
    }
  });

  it('level-1 cells: 0/1 north, 2/3 south; easting 500,000 sits left of the centre line', () => {
    assert.equal(ardCellAt(31, true, 400_000, 10, 1).quadkey, '0');
    assert.equal(ardCellAt(31, true, 600_000, 10, 1).quadkey, '1');
    assert.equal(ardCellAt(31, false, 400_000, 9_999_990, 1).quadkey, '2');
    assert.equal(ardCellAt(31, false, 600_000, 9_999_990, 1).quadkey, '3');
    // the grid's vertical centre line is at easting 500,000 (-9,740,000 + 10,240,000)
    assert.equal(ardCellAt(31, true, 499_999, 10, 1).quadkey, '0');
    assert.equal(ardCellAt(31, true, 500_000, 10, 1).quadkey, '1');
  });

  it('cells covering a box, rows outer; shared edges do not count', () => {
    const cells = ardCellsCovering(
      40,
      true,
      { xmin: 300_000, ymin: 2_690_000, xmax: 310_000, ymax: 2_700_000 },
      12,
    );
    assert.deepEqual(
      cells.map((c) => ardCellBounds(c)).map((b) => [b.xmin, b.ymax]),
      [
        [300_000, 2_700_000],
        [305_000, 2_700_000],
        [300_000, 2_695_000],
        [305_000, 2_695_000],
      ],
    );
    const south = ardCellsCovering(
      56,
      false,
      { xmin: 331_000, ymin: 6_251_000, xmax: 332_000, ymax: 6_252_000 },
      12,
    );
    assert.deepEqual(south, [{ zone: 56, quadkey: '213133213312' }]);
  });

  it('every level-3 cell: bounds round-trip through ardCellAt at their centres', () => {
    for (let i = 0; i < 64; i++) {
      const key = [4, 2, 1].map((b) => String(Math.floor(i / (b * b)) % 4)).join('');
      const b = ardCellBounds({ zone: 12, quadkey: key });
      const north = b.epsg === 32612;
      assert.equal(ardCellAt(12, north, (b.xmin + b.xmax) / 2, (b.ymin + b.ymax) / 2, 3).quadkey, key);
    }
  });

  it('chip names round-trip', () => {
    const name = ardChipName({ zone: 40, quadkey: '3012302221' }, '10300100ABCDEF00', 'tif');
    assert.equal(name, 'Z40-3012302221_10300100ABCDEF00.tif');
    assert.deepEqual(parseArdChipName(`s3://b/chips/${name}`), {
      cell: { zone: 40, quadkey: '3012302221' },
      catalogId: '10300100ABCDEF00',
    });
    assert.equal(ardCellId({ zone: 4, quadkey: '0' }), 'Z04-0');
    assert.deepEqual(parseArdCellId('Z04-0'), { zone: 4, quadkey: '0' });
  });

  const invalid: [string, () => unknown, RegExp][] = [
    ['zone 61', () => ardCellAt(61, true, 0, 0, 3), /integer in \[1, 60\] for UTM zone but received 61/],
    ['level 25', () => ardCellAt(1, true, 0, 0, 31), /integer in \[0, 30\] for level but received 31/],
    ['a point outside the grid', () => ardCellAt(1, true, 11_000_000, 0, 3), /inside the ARD grid of zone 1/],
    ['a bad cell id', () => parseArdCellId('Z4-01'), /ARD cell id like Z40-3012302221 but received "Z4-01"/],
    ['a bad chip name', () => parseArdChipName('tile.tif'), /ARD chip name like .* but received "tile.tif"/],
    [
      'a catalog id with a slash',
      () => ardChipName({ zone: 1, quadkey: '0' }, 'a/b'),
      /alphanumeric catalog id/,
    ],
    ['the level-0 cell bounds', () => ardCellBounds({ zone: 1, quadkey: '' }), /level 1 or more/],
    [
      'an empty box',
      () => ardCellsCovering(1, true, { xmin: 1, ymin: 0, xmax: 1, ymax: 5 }, 3),
      /xmin < xmax/,
    ],
  ];
  for (const [name, fn, message] of invalid) {
    it(`rejects ${name}`, () => assert.throws(fn, { name: 'GridError', message }));
  }
});
