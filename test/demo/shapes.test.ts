import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRandom, hash3, unitHash } from '../../lib/demo/noise.js';
import {
  convexHull,
  fromLocal,
  pixelCoverage,
  pointInPolygon,
  polygon,
  rectCorners,
  rectsOverlap,
  ringArea,
  segmentPolygonDistance,
  shapeBox,
  toLocal,
} from '../../lib/demo/shapes.js';
import type { OrientedRect, Point, Shape } from '../../lib/demo/shapes.js';

const SQUARE: Point[] = [
  [0, 0],
  [10, 0],
  [10, 10],
  [0, 10],
];
// An L: the square without its top-right quarter (y down).
const L_SHAPE: Point[] = [
  [0, 0],
  [5, 0],
  [5, 5],
  [10, 5],
  [10, 10],
  [0, 10],
];

describe('pointInPolygon', () => {
  const cases: [string, Point[], number, number, boolean][] = [
    ['inside a square', SQUARE, 5, 5, true],
    ['outside a square', SQUARE, 11, 5, false],
    ['in the arm of an L', L_SHAPE, 2, 2, true],
    ['in the notch of an L', L_SHAPE, 7, 2, false],
    ['in the foot of an L', L_SHAPE, 8, 8, true],
  ];
  for (const [name, points, x, y, expected] of cases)
    it(name, () => assert.equal(pointInPolygon(points, x, y), expected));
});

describe('pixelCoverage', () => {
  const cases: [string, Shape, number, number, number][] = [
    ['pixel inside a polygon', polygon(SQUARE), 3, 3, 1],
    ['pixel outside a polygon', polygon(SQUARE), 12, 3, 0],
    [
      'pixel half over a polygon edge',
      polygon([
        [0, 0],
        [10.5, 0],
        [10.5, 10],
        [0, 10],
      ]),
      10,
      3,
      0.5,
    ],
    ['disc centre', { kind: 'disc', cx: 5, cy: 5, r: 3 }, 4, 4, 1],
    ['disc edge (pixel centre on the circle)', { kind: 'disc', cx: 0.5, cy: 0.5, r: 3 }, 3, 0, 0.5],
    ['far from a disc', { kind: 'disc', cx: 5, cy: 5, r: 3 }, 20, 20, 0],
    ['on a capsule', { kind: 'capsule', ax: 0, ay: 0.5, bx: 100, by: 0.5, r: 4 }, 50, 2, 1],
    ['beyond a capsule', { kind: 'capsule', ax: 0, ay: 0.5, bx: 100, by: 0.5, r: 4 }, 50, 6, 0],
  ];
  for (const [name, shape, col, row, expected] of cases) {
    it(name, () => assert.equal(pixelCoverage(shape, col, row), expected));
  }
  it('boxes of shapes', () => {
    assert.deepEqual(shapeBox({ kind: 'disc', cx: 5, cy: 6, r: 2 }), [3, 4, 7, 8]);
    assert.deepEqual(shapeBox({ kind: 'capsule', ax: 0, ay: 10, bx: 20, by: 0, r: 1 }), [-1, -1, 21, 11]);
    assert.deepEqual(shapeBox(polygon(L_SHAPE)), [0, 0, 10, 10]);
  });
});

describe('oriented rectangles', () => {
  const a: OrientedRect = { cx: 0, cy: 0, halfLength: 5, halfWidth: 2, angle: 0 };
  const cases: [string, OrientedRect, boolean][] = [
    ['the same', a, true],
    ['far away', { ...a, cx: 20 }, false],
    ['touching end to end', { ...a, cx: 10 }, false],
    ['crossing at right angles', { ...a, angle: Math.PI / 2 }, true],
    [
      'rotated 45 degrees, just clear of a corner',
      { cx: 9, cy: 5, halfLength: 2, halfWidth: 2, angle: Math.PI / 4 },
      false,
    ],
    [
      'rotated 45 degrees, over the corner',
      { cx: 6.5, cy: 3, halfLength: 2, halfWidth: 2, angle: Math.PI / 4 },
      true,
    ],
  ];
  for (const [name, b, expected] of cases)
    it(`overlap: ${name}`, () => assert.equal(rectsOverlap(a, b), expected));

  it('corners and local frames agree', () => {
    const r: OrientedRect = { cx: 10, cy: 20, halfLength: 4, halfWidth: 1, angle: Math.PI / 6 };
    const corners = rectCorners(r);
    const [u, v] = toLocal(r, ...(corners[2] as Point));
    assert.ok(Math.abs(u - 4) < 1e-12 && Math.abs(v - 1) < 1e-12);
    const [x, y] = fromLocal(r, 4, 1);
    assert.ok(
      Math.abs(x - (corners[2] as Point)[0]) < 1e-12 && Math.abs(y - (corners[2] as Point)[1]) < 1e-12,
    );
  });
});

describe('polygon helpers', () => {
  it('convexHull drops inner and collinear points', () => {
    const hull = convexHull([...SQUARE, [5, 5], [5, 0], [2, 8]]);
    assert.equal(hull.length, 4);
    assert.equal(Math.abs(ringArea(hull)), 100);
  });
  it('ringArea is positive counter-clockwise (y up) and negative clockwise', () => {
    assert.equal(ringArea(SQUARE), 100);
    assert.equal(ringArea([...SQUARE].reverse()), -100);
    assert.equal(ringArea(L_SHAPE), 75);
  });
  const distances: [string, [number, number, number, number], number][] = [
    ['segment crossing the square', [-5, 5, 15, 5], 0],
    ['segment inside the square', [2, 2, 3, 3], 0],
    ['segment beside the square', [12, -5, 12, 15], 2],
    ['segment past a corner', [13, 14, 20, 14], 5],
  ];
  for (const [name, [ax, ay, bx, by], expected] of distances) {
    it(`segmentPolygonDistance: ${name}`, () =>
      assert.equal(segmentPolygonDistance(ax, ay, bx, by, SQUARE), expected));
  }
});

describe('noise', () => {
  it('createRandom repeats for a seed and differs between seeds', () => {
    const a = createRandom(7);
    const b = createRandom(7);
    const c = createRandom(8);
    const first = Array.from({ length: 5 }, () => a());
    assert.deepEqual(
      first,
      Array.from({ length: 5 }, () => b()),
    );
    assert.notDeepEqual(
      first,
      Array.from({ length: 5 }, () => c()),
    );
    assert.ok(first.every((v) => v >= 0 && v < 1));
  });
  it('hash3 is a pure function of its inputs and spreads evenly', () => {
    assert.equal(hash3(1, 2, 3), hash3(1, 2, 3));
    assert.notEqual(hash3(1, 2, 3), hash3(2, 1, 3));
    let sum = 0;
    for (let i = 0; i < 10000; i++) sum += unitHash(i, i * 7, 1);
    assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
  });
});
