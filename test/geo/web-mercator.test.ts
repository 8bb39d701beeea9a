import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseQuadkey, quadkey } from '../../lib/geo/quadkey.js';
import {
  MERCATOR_HALF,
  quadkeyTile,
  tileBounds,
  tileForLngLat,
  tileForMercator,
  tileMercatorBounds,
  tileQuadkey,
  tilesCovering,
} from '../../lib/geo/web-mercator.js';

// Vectors from mercantile 1.2 (REFERENCE §3): [lng, lat, z, x, y, quadkey]
const POINTS: [string, number, number, number, number, number, string | undefined][] = [
  ['Greece', 20.6852, 40.1222, 9, 285, 193, undefined],
  ['origin', 0, 0, 10, 512, 512, '3000000000'],
  ['Berlin', 13.405, 52.52, 12, 2200, 1343, '120210233222'],
  ['Statue of Liberty', -74.0445, 40.6892, 17, 38577, 49291, '03201011030112023'],
  ['Sydney', 151.2093, -33.8688, 15, 30147, 19663, '311230133002233'],
];

describe('web-mercator tiles (mercantile vectors)', () => {
  for (const [name, lng, lat, z, x, y, key] of POINTS) {
    it(`${name} z${z} -> (${x}, ${y})`, () => {
      const tile = tileForLngLat(lng, lat, z);
      assert.deepEqual(tile, { x, y, z });
      if (key !== undefined) assert.equal(tileQuadkey(tile), key);
      // the point lies inside its tile's bounds
      const b = tileBounds(tile);
      assert.ok(b.west <= lng && lng < b.east && b.south < lat && lat <= b.north);
    });
  }

  it('quadkeys of (3,5,3) and (486,332,10), and back', () => {
    assert.equal(tileQuadkey({ x: 3, y: 5, z: 3 }), '213');
    assert.equal(tileQuadkey({ x: 486, y: 332, z: 10 }), '0313102310');
    assert.deepEqual(quadkeyTile('0313102310'), { x: 486, y: 332, z: 10 });
    assert.deepEqual(quadkeyTile(''), { x: 0, y: 0, z: 0 });
  });

  it('every tile of zoom 0..6 round-trips through its quadkey', () => {
    for (let z = 0; z <= 6; z++) {
      const n = 2 ** z;
      for (let y = 0; y < n; y++) {
        for (let x = 0; x < n; x++) {
          const key = quadkey(x, y, z);
          assert.equal(key.length, z);
          assert.deepEqual(parseQuadkey(key), { x, y, level: z });
        }
      }
    }
  });

  it('bounds of (486, 332, 10)', () => {
    const b = tileBounds({ x: 486, y: 332, z: 10 });
    assert.ok(Math.abs(b.west - -9.140625) < 1e-9);
    assert.ok(Math.abs(b.east - -8.7890625) < 1e-9);
    assert.ok(Math.abs(b.south - 53.1204053) < 1e-7);
    assert.ok(Math.abs(b.north - 53.330873) < 1e-7);
  });

  it('clamps beyond the map and at the antimeridian; rejects the poles', () => {
    assert.deepEqual(tileForLngLat(0, 89, 3), { x: 4, y: 0, z: 3 });
    assert.deepEqual(tileForLngLat(0, -89, 3), { x: 4, y: 7, z: 3 });
    assert.deepEqual(tileForLngLat(180, 0, 3), { x: 7, y: 4, z: 3 });
    assert.deepEqual(tileForLngLat(-180, 0, 3), { x: 0, y: 4, z: 3 });
    assert.throws(() => tileForLngLat(0, 90, 3), {
      name: 'GridError',
      message: /latitude in \(-90, 90\) but received 90/,
    });
    assert.throws(() => tileForLngLat(0, -90, 3), { name: 'GridError' });
  });

  it('mercator bounds and the inverse lookup agree', () => {
    const t = { x: 486, y: 332, z: 10 };
    const m = tileMercatorBounds(t);
    assert.deepEqual(tileForMercator((m.left + m.right) / 2, (m.top + m.bottom) / 2, 10), t);
    assert.deepEqual(tileMercatorBounds({ x: 0, y: 0, z: 0 }), {
      left: -MERCATOR_HALF,
      bottom: -MERCATOR_HALF,
      right: MERCATOR_HALF,
      top: MERCATOR_HALF,
    });
  });

  it('tiles covering a box, rows outer; a box ending on a tile edge stops there', () => {
    const b = tileBounds({ x: 486, y: 332, z: 10 });
    assert.deepEqual(tilesCovering(b, 10), [{ x: 486, y: 332, z: 10 }]);
    assert.deepEqual(tilesCovering({ west: -10, south: -10, east: 10, north: 10 }, 2), [
      { x: 1, y: 1, z: 2 },
      { x: 2, y: 1, z: 2 },
      { x: 1, y: 2, z: 2 },
      { x: 2, y: 2, z: 2 },
    ]);
  });

  const invalid: [string, () => unknown, RegExp][] = [
    ['level 31', () => tileForLngLat(0, 0, 31), /Expected integer in \[0, 30\] for level but received 31/],
    ['level 1.5', () => tileForLngLat(0, 0, 1.5), /level but received 1.5/],
    ['level -1', () => tileForLngLat(0, 0, -1), /level but received -1/],
    ['quadkey digit 4', () => quadkeyTile('0124'), /quadkey of at most 30 digits 0-3 but received "0124"/],
    [
      'cell outside the level',
      () => quadkey(8, 0, 3),
      /cell x, y in \[0, 7\] at level 3 but received \(8, 0\)/,
    ],
    ['NaN longitude', () => tileForLngLat(Number.NaN, 0, 3), /finite longitude but received NaN/],
  ];
  for (const [name, fn, message] of invalid) {
    it(`rejects ${name}`, () => assert.throws(fn, { name: 'GridError', message }));
  }
});
