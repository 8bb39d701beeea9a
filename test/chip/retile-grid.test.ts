// The gdal_retile tile grid: counts, windows, names and option checks (pure, no I/O).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  retileGrid,
  retileStem,
  tileCount,
  tileName,
  validateRetileOptions,
} from '../../lib/chip/retile-grid.js';

describe('retile grid', () => {
  it('counts tiles as gdal_retile does: 1 + ceil((extent - size) / (size - overlap))', () => {
    const cases: [extent: number, size: number, overlap: number, count: number][] = [
      [100, 100, 0, 1],
      [50, 100, 0, 1],
      [101, 100, 0, 2],
      [200, 100, 0, 2],
      [201, 100, 0, 3],
      [2658, 1000, 100, 3],
      [1900, 1000, 100, 2],
      [1901, 1000, 100, 3],
      [50_000, 5120, 0, 10],
      [50_000, 5120, 256, 11],
      [10, 6, 5, 5],
    ];
    for (const [extent, size, overlap, count] of cases) {
      assert.equal(tileCount(extent, size, overlap), count, `${extent} px, size ${size}, overlap ${overlap}`);
    }
  });

  it('steps origins by size - overlap and truncates the last row and column', () => {
    const grid = retileGrid(250, 120, 'scene', { size: 100, overlap: 20 });
    assert.equal(grid.cols, 3);
    assert.equal(grid.rows, 2);
    assert.deepEqual(
      grid.tiles.map((t) => [t.name, t.window.col, t.window.row, t.window.width, t.window.height]),
      [
        ['scene_1_1.tif', 0, 0, 100, 100],
        ['scene_1_2.tif', 80, 0, 100, 100],
        ['scene_1_3.tif', 160, 0, 90, 100],
        ['scene_2_1.tif', 0, 80, 100, 40],
        ['scene_2_2.tif', 80, 80, 100, 40],
        ['scene_2_3.tif', 160, 80, 90, 40],
      ],
    );
  });

  it('covers every pixel and no tile reaches past the image', () => {
    for (const [w, h, size, overlap] of [
      [1000, 777, 128, 0],
      [999, 1001, 100, 33],
      [17, 5, 4, 3],
    ] as const) {
      const grid = retileGrid(w, h, 's', { size, overlap });
      const covered = new Uint8Array(w * h);
      for (const t of grid.tiles) {
        const { col, row, width, height } = t.window;
        assert.ok(width >= 1 && height >= 1 && col + width <= w && row + height <= h, t.name);
        for (let y = row; y < row + height; y++) covered.fill(1, y * w + col, y * w + col + width);
      }
      assert.ok(
        covered.every((v) => v === 1),
        `${w} x ${h} size ${size} overlap ${overlap}`,
      );
    }
  });

  it('zero-pads row and column to the digits of the larger count, 1-based', () => {
    assert.equal(tileName('a', 1, 1, 9), 'a_1_1.tif');
    assert.equal(tileName('a', 1, 10, 10), 'a_01_10.tif');
    assert.equal(tileName('a', 3, 7, 123), 'a_003_007.tif');
    const grid = retileGrid(1100, 100, 'x', { size: 100 });
    assert.equal(grid.tiles[0]!.name, 'x_01_01.tif');
    assert.equal(grid.tiles.at(-1)!.name, 'x_01_11.tif');
  });

  it('takes the stem as gdal_retile does (last extension only)', () => {
    assert.equal(retileStem('scene.tif'), 'scene');
    assert.equal(retileStem('a.b.tiff'), 'a.b');
    assert.equal(retileStem('noext'), 'noext');
  });

  it('refuses a size <= 0, an overlap < 0 or >= size, naming the option and the valid range', () => {
    const bad: [options: { size: number; overlap?: number }, message: RegExp][] = [
      [{ size: 0 }, /retile size: expected a positive integer number of pixels but got 0/],
      [{ size: -5 }, /retile size: .* but got -5/],
      [{ size: 2.5 }, /retile size: .* but got 2.5/],
      [
        { size: 100, overlap: 100 },
        /retile overlap: expected an integer number of pixels in \[0, 99\] \(less than size 100\) but got 100/,
      ],
      [{ size: 100, overlap: -1 }, /retile overlap: .* but got -1/],
      [{ size: 100, overlap: 1.5 }, /retile overlap: .* but got 1.5/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => validateRetileOptions(options), { name: 'RasterError', message });
      assert.throws(() => retileGrid(500, 500, 's', options), { message });
    }
    assert.deepEqual(validateRetileOptions({ size: 100, overlap: 99 }), { size: 100, overlap: 99 });
  });
});
