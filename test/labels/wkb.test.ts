// GeoPackage geometry blobs and WKB, written byte by byte here (ISO Z, big-endian, EWKB flags).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeGpkgGeometry, decodeWkb, WkbError } from '../../lib/labels/wkb.js';

/** WKB of a polygon with rings of [x, y, (z)] points. */
function polygonWkb(rings: number[][][], type: number, little = true): Buffer {
  const dims = rings[0]![0]!.length;
  const size = 9 + rings.reduce((n, r) => n + 4 + r.length * dims * 8, 0);
  const b = Buffer.alloc(size);
  let o = 0;
  b[o++] = little ? 1 : 0;
  const u32 = (v: number): void => {
    if (little) b.writeUInt32LE(v, o);
    else b.writeUInt32BE(v, o);
    o += 4;
  };
  const f64 = (v: number): void => {
    if (little) b.writeDoubleLE(v, o);
    else b.writeDoubleBE(v, o);
    o += 8;
  };
  u32(type);
  u32(rings.length);
  for (const r of rings) {
    u32(r.length);
    for (const p of r) p.forEach(f64);
  }
  return b;
}

function gpkg(wkb: Buffer, flags = 0x01 | (1 << 1), envelope = 32): Buffer {
  const header = Buffer.alloc(8 + envelope);
  header.write('GP', 0, 'latin1');
  header[3] = flags;
  header.writeInt32LE(4326, 4);
  return Buffer.concat([header, wkb]);
}

const square = [
  [0, 0],
  [4, 0],
  [4, 4],
  [0, 4],
  [0, 0],
];

describe('WKB and GeoPackage geometry', () => {
  it('a polygon, little- and big-endian, with an envelope in the header', () => {
    for (const little of [true, false]) {
      assert.deepEqual(decodeGpkgGeometry(gpkg(polygonWkb([square], 3, little))), {
        type: 'Polygon',
        coordinates: [square],
      });
    }
  });

  it('Z values dropped, ISO (1003) and EWKB (0x80000003) types alike', () => {
    const z = [square.map(([x, y]) => [x!, y!, 9])];
    for (const type of [1003, 0x80000003]) {
      assert.deepEqual(decodeWkb(polygonWkb(z, type)), { type: 'Polygon', coordinates: [square] });
    }
  });

  it('a multipolygon of two parts', () => {
    const part = polygonWkb([square], 3);
    const head = Buffer.alloc(9);
    head[0] = 1;
    head.writeUInt32LE(6, 1);
    head.writeUInt32LE(2, 5);
    assert.deepEqual(decodeWkb(Buffer.concat([head, part, part])), {
      type: 'MultiPolygon',
      coordinates: [[square], [square]],
    });
  });

  it("empty geometries (the header's flag, or no rings) are null", () => {
    assert.equal(decodeGpkgGeometry(gpkg(polygonWkb([square], 3), 0x01 | 0x10, 0)), null);
    const none = Buffer.alloc(9);
    none[0] = 1;
    none.writeUInt32LE(3, 1);
    assert.equal(decodeGpkgGeometry(gpkg(none, 0x01, 0)), null);
  });

  it('bad blobs: not GP, truncated, unknown type', () => {
    assert.throws(() => decodeGpkgGeometry(Buffer.from('XX000000000')), WkbError);
    assert.throws(() => decodeGpkgGeometry(gpkg(polygonWkb([square], 3).subarray(0, 30))), /truncated/);
    assert.throws(() => decodeWkb(polygonWkb([square], 99)), /type code 99 is not a WKB geometry type/);
  });
});
