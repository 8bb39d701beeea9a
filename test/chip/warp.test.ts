// The approximate transformer against the exact mapping, and the samplers on small arrays.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planGridCells, SceneGridMapping } from '../../lib/chip/grid-cells.js';
import { approximateMap, resampleChip, windowMap, type SourcePixels } from '../../lib/chip/warp.js';

describe('approximateMap', () => {
  it('stays within 0.125 source px of the exact UTM -> web-mercator mapping over whole chips', () => {
    // cog.tif's georeferencing: 2658 x 2667 px of 100 m in EPSG:32621 at 72-75 N
    const scene = {
      uri: 'cog.tif',
      width: 2658,
      height: 2667,
      geotransform: [373185, 100.011267573448933, 0, 8286015, 0, -100.011267573448933] as const,
      epsg: 32621,
    };
    const mapping = new SceneGridMapping(scene);
    let worst = 0;
    for (const level of [6, 9]) {
      const cells = planGridCells(scene, { grid: 'webmercator', level, tileSize: 256 });
      for (const cell of cells.slice(0, 6)) {
        const exact = mapping.chipToScene(cell);
        const map = approximateMap(exact, 256, 256);
        assert.ok(map.exactPoints < (256 * 256) / 4, `${map.exactPoints} exact points`);
        for (let r = 0; r < 256; r++) {
          for (let c = 0; c < 256; c++) {
            const [x, y] = exact(c + 0.5, r + 0.5);
            const i = r * 256 + c;
            worst = Math.max(worst, Math.abs(map.xs[i]! - x), Math.abs(map.ys[i]! - y));
          }
        }
      }
    }
    assert.ok(worst <= 0.125, `max error ${worst}`);
  });

  it('is exact for an affine mapping with a handful of exact points', () => {
    const map = approximateMap((c, r) => [3 + 0.5 * c, 7 - 0.25 * r + 0.1 * c], 512, 512);
    assert.ok(map.exactPoints <= 9);
    assert.ok(Math.abs(map.xs[511 * 512 + 511]! - (3 + 0.5 * 511.5)) < 1e-9);
  });

  it('subdivides down to exact points where the mapping has no value', () => {
    const map = approximateMap((c, r) => (c > 100 ? [NaN, NaN] : [c, r]), 256, 256);
    assert.ok(Number.isNaN(map.xs[200]!));
    assert.ok(Math.abs(map.xs[50]! - 50.5) < 1e-9);
  });
});

describe('resampleChip', () => {
  // a 4 x 4 source, one band, value = 10 * row + col, no-data 0 at (0, 0)
  const source: SourcePixels = {
    read: (col, row, dst) => {
      dst[0] = 10 * row + col;
    },
  };
  it('nearest copies pixels, marks no-data and outside pixels invalid', () => {
    const map = windowMap(-1, 0, 3, 2);
    const out = new Float64Array(6);
    const valid = new Uint8Array(6);
    const n = resampleChip(map, source, 1, 4, 4, 0, 'nearest', out, valid);
    assert.deepEqual([...valid], [0, 0, 1, 0, 1, 1]);
    assert.equal(n, 3);
    assert.deepEqual([out[2], out[4], out[5]], [1, 10, 11]);
  });
  it('bilinear interpolates and renormalises over valid neighbours', () => {
    const map = {
      width: 1,
      height: 1,
      xs: Float64Array.of(2),
      ys: Float64Array.of(2),
      maxError: 0,
      exactPoints: 0,
    };
    const out = new Float64Array(1);
    const valid = new Uint8Array(1);
    resampleChip(map, source, 1, 4, 4, null, 'bilinear', out, valid);
    assert.equal(out[0], (11 + 12 + 21 + 22) / 4);
    const corner = { ...map, xs: Float64Array.of(1), ys: Float64Array.of(1) };
    resampleChip(corner, source, 1, 4, 4, 0, 'bilinear', out, valid);
    assert.equal(out[0], (1 + 10 + 11) / 3);
  });
});
