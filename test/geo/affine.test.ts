import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  boundsToWindow,
  invertGeoTransform,
  isRotated,
  northUpGeoTransform,
  pixelToWorld,
  scaleGeoTransform,
  windowBounds,
  windowGeoTransform,
  worldToPixel,
} from '../../lib/geo/affine.js';
import type { GeoTransform } from '../../lib/geo/affine.js';

const UTM: GeoTransform = [600000, 0.5, 0, 5340000, 0, -0.5];
const LONLAT: GeoTransform = [16.3, 0.0001, 0, 48.3, 0, -0.0001];
// 30 degrees rotation, 2 m pixels: rotX/rotY non-zero.
const cos30 = Math.cos(Math.PI / 6);
const sin30 = Math.sin(Math.PI / 6);
const ROTATED: GeoTransform = [1000, 2 * cos30, 2 * sin30, 2000, 2 * sin30, -2 * cos30];
const SHEARED: GeoTransform = [10, 1, 0.25, 20, 0, -1];
const SOUTH_UP: GeoTransform = [0, 1, 0, 0, 0, 1];

function close(actual: readonly number[], expected: readonly number[], tol = 1e-9): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - (expected[i] as number)) <= tol, `[${i}] ${v} != ${expected[i]}`),
  );
}

describe('pixelToWorld', () => {
  const cases: [string, GeoTransform, number, number, number, number][] = [
    ['origin is the top-left corner', UTM, 0, 0, 600000, 5340000],
    ['centre of the first pixel', UTM, 0.5, 0.5, 600000.25, 5339999.75],
    ['far corner of a 3000 px image', UTM, 3000, 3000, 601500, 5338500],
    ['lon/lat degrees', LONLAT, 100, 200, 16.31, 48.28],
    ['rotated: one pixel right', ROTATED, 1, 0, 1000 + 2 * cos30, 2000 + 2 * sin30],
    ['rotated: one pixel down', ROTATED, 0, 1, 1000 + 2 * sin30, 2000 - 2 * cos30],
    ['sheared', SHEARED, 4, 8, 16, 12],
    ['south-up', SOUTH_UP, 3, 4, 3, 4],
  ];
  for (const [name, gt, col, row, x, y] of cases) {
    it(name, () => close(pixelToWorld(gt, col, row), [x, y]));
  }
});

describe('worldToPixel inverts pixelToWorld', () => {
  const points: [number, number][] = [
    [0, 0],
    [0.5, 0.5],
    [123.25, 987.75],
    [-10, 40000],
  ];
  for (const [name, gt] of Object.entries({ UTM, LONLAT, ROTATED, SHEARED, SOUTH_UP })) {
    it(name, () => {
      for (const [col, row] of points) {
        const [x, y] = pixelToWorld(gt, col, row);
        close(worldToPixel(gt, x, y), [col, row], 1e-6);
      }
    });
  }
});

describe('invertGeoTransform', () => {
  it('north-up inverse is exact', () => {
    assert.deepEqual(invertGeoTransform(UTM), [-1200000, 2, 0, 10680000, 0, -2]);
  });
  it('inverse of the inverse is the original', () => {
    for (const gt of [UTM, ROTATED, SHEARED]) close(invertGeoTransform(invertGeoTransform(gt)), gt, 1e-6);
  });
  const singular: [string, GeoTransform][] = [
    ['zero pixel size', [0, 0, 0, 0, 0, -1]],
    ['collinear axes', [0, 1, 2, 0, 2, 4]],
    ['NaN', [0, Number.NaN, 0, 0, 0, -1]],
  ];
  for (const [name, gt] of singular) {
    it(`throws on a singular transform: ${name}`, () =>
      assert.throws(() => invertGeoTransform(gt), /Expected an invertible geotransform/));
  }
});

describe('windowGeoTransform', () => {
  const cases: [string, GeoTransform, number, number, GeoTransform][] = [
    ['north-up window', UTM, 512, 1024, [600256, 0.5, 0, 5339488, 0, -0.5]],
    ['window at the origin is unchanged', UTM, 0, 0, UTM],
    [
      'rotated window keeps the rotation',
      ROTATED,
      1,
      1,
      [
        1000 + 2 * cos30 + 2 * sin30,
        2 * cos30,
        2 * sin30,
        2000 + 2 * sin30 - 2 * cos30,
        2 * sin30,
        -2 * cos30,
      ],
    ],
  ];
  for (const [name, gt, col, row, expected] of cases) {
    it(name, () => close(windowGeoTransform(gt, col, row), expected));
  }
  it('a pixel of the window maps to the same world point as in the image', () => {
    const sub = windowGeoTransform(ROTATED, 37, 91);
    close(pixelToWorld(sub, 5.5, 2.5), pixelToWorld(ROTATED, 42.5, 93.5));
  });
});

describe('scaleGeoTransform', () => {
  it('an overview of factor 2 doubles the pixel size and keeps the origin', () => {
    assert.deepEqual(scaleGeoTransform(UTM, 2), [600000, 1, 0, 5340000, 0, -1]);
  });
});

describe('windowBounds', () => {
  const cases: [string, GeoTransform, [number, number, number, number], [number, number, number, number]][] =
    [
      ['north-up', UTM, [0, 0, 512, 256], [600000, 5339872, 600256, 5340000]],
      ['offset window', UTM, [100, 200, 10, 20], [600050, 5339890, 600055, 5339900]],
      ['south-up', SOUTH_UP, [1, 2, 3, 4], [1, 2, 4, 6]],
      // The four corners of a rotated window spread wider than its width and height.
      [
        'rotated',
        ROTATED,
        [0, 0, 1, 1],
        [1000, 2000 - 2 * cos30, 1000 + 2 * cos30 + 2 * sin30, 2000 + 2 * sin30],
      ],
    ];
  for (const [name, gt, [col, row, width, height], [minX, minY, maxX, maxY]] of cases) {
    it(name, () => {
      const b = windowBounds(gt, { col, row, width, height });
      close([b.minX, b.minY, b.maxX, b.maxY], [minX, minY, maxX, maxY]);
    });
  }
});

describe('boundsToWindow', () => {
  it('bounds on pixel edges give exactly those pixels', () => {
    const window = { col: 100, row: 200, width: 10, height: 20 };
    assert.deepEqual(boundsToWindow(UTM, windowBounds(UTM, window), 3000, 3000), window);
  });
  it('partial pixels are included and the window is clipped to the image', () => {
    assert.deepEqual(
      boundsToWindow(UTM, { minX: 599990, minY: 5339999.6, maxX: 600000.3, maxY: 5340100 }, 3000, 3000),
      {
        col: 0,
        row: 0,
        width: 1,
        height: 1,
      },
    );
  });
  it('bounds outside the image give undefined', () => {
    assert.equal(boundsToWindow(UTM, { minX: 0, minY: 0, maxX: 1, maxY: 1 }, 3000, 3000), undefined);
  });
});

describe('isRotated and northUpGeoTransform', () => {
  const cases: [GeoTransform, boolean][] = [
    [UTM, false],
    [LONLAT, false],
    [SOUTH_UP, false],
    [ROTATED, true],
    [SHEARED, true],
    [[0, 1, 0, 0, 1e-12, -1], true],
  ];
  for (const [gt, expected] of cases)
    it(`[${gt.join(', ')}] -> ${expected}`, () => assert.equal(isRotated(gt), expected));
  it('northUpGeoTransform builds the GDAL order', () => {
    assert.deepEqual(northUpGeoTransform(600000, 5340000, 0.5), UTM);
    assert.deepEqual(northUpGeoTransform(0, 0, 2, 3), [0, 2, 0, 0, 0, -3]);
  });
});
