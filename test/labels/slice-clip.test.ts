import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clipPolygon,
  polygonArea,
  polygonsBounds,
  type Polygon,
  type Ring,
} from '../../lib/labels/geometry.js';
import {
  indexAnnotations,
  prepareAnnotations,
  sliceAnnotations,
  type SliceSourceAnnotation,
} from '../../lib/labels/slice.js';

function slice(annotation: SliceSourceAnnotation, window: [number, number, number, number]) {
  const prepared = prepareAnnotations([annotation], 'test.json');
  return sliceAnnotations(prepared.annotations, indexAnnotations(prepared.annotations, 300), window, 0);
}

function polygon(flat: number[]): SliceSourceAnnotation {
  const xs = flat.filter((_, i) => i % 2 === 0);
  const ys = flat.filter((_, i) => i % 2 === 1);
  const x = Math.min(...xs);
  const y = Math.min(...ys);
  return { category_id: 1, bbox: [x, y, Math.max(...xs) - x, Math.max(...ys) - y], segmentation: [flat] };
}

/** A flat ring as a set of its vertices starting anywhere, for order-free comparison of rings. */
function rotateToMin(flat: number[]): number[] {
  const points: string[] = [];
  for (let i = 0; i < flat.length; i += 2) points.push(`${flat[i]},${flat[i + 1]}`);
  let best = 0;
  for (let i = 1; i < points.length; i++) if (points[i]! < points[best]!) best = i;
  return [...points.slice(best), ...points.slice(0, best)].flatMap((p) => p.split(',').map(Number));
}

/** True when some vertex is the tip of a zero-width spike or a repeated point (prev, v, next collinear, going back). */
function hasSpike(flat: number[]): boolean {
  const n = flat.length / 2;
  for (let i = 0; i < n; i++) {
    const p = (i + n - 1) % n;
    const q = (i + 1) % n;
    const ax = flat[2 * i]! - flat[2 * p]!;
    const ay = flat[2 * i + 1]! - flat[2 * p + 1]!;
    const bx = flat[2 * q]! - flat[2 * i]!;
    const by = flat[2 * q + 1]! - flat[2 * i + 1]!;
    if ((ax === 0 && ay === 0) || (bx === 0 && by === 0)) return true;
    if (ax * by - ay * bx === 0 && ax * bx + ay * by < 0) return true;
  }
  return false;
}

function random(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 2 ** 32) * n);
  };
}

function flatArea(r: number[]): number {
  let area = 0;
  for (let i = 0, j = r.length - 2; i < r.length; j = i, i += 2)
    area += (r[j]! - r[i]!) * (r[j + 1]! + r[i + 1]!);
  return area / 2;
}

function unit([x, y]: [number, number]): [number, number] {
  const l = Math.hypot(x, y);
  return l === 0 ? [0, 0] : [x / l, y / l];
}

/** Even-odd point in polygon, independent of the clipping code. */
function inside(r: Ring, [x, y]: [number, number]): boolean {
  let result = false;
  for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
    const [xi, yi] = r[i]!;
    const [xj, yj] = r[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) result = !result;
  }
  return result;
}

describe('chip slice: outlines along a window edge (issue 13 item 17)', () => {
  it('an L whose notch edge lies on the window left edge: the clipped square only', () => {
    // L in image pixels: the bottom arm (100..120 x 0..10) and the upright (100..110 x 0..20);
    // with the window starting at x = 110, what remains is the arm's right half 110..120 x 0..10
    // and the upright's right edge x = 110, y 10..20 lies on the window's left edge.
    const l = polygon([100, 0, 120, 0, 120, 10, 110, 10, 110, 20, 100, 20]);
    const [a] = slice(l, [110, 0, 410, 300]);
    assert.deepEqual(a!.bbox, [0, 0, 10, 10]);
    assert.equal(a!.area, 100);
    assert.equal(a!.segmentation.length, 1);
    assert.deepEqual(rotateToMin(a!.segmentation[0]!), [0, 0, 10, 0, 10, 10, 0, 10]);
  });

  it('a polygon touching the window edge along a segment keeps its true bbox', () => {
    // a square 0..10 x 0..10 with a tail 0..5 x 10..40 outside the window on its left, the tail's right edge x = 5
    // sits on the window's left edge (window starts at x = 5)
    const p = polygon([0, 0, 10, 0, 10, 10, 5, 10, 5, 40, 0, 40]);
    const [a] = slice(p, [5, 0, 305, 300]);
    assert.deepEqual(a!.bbox, [0, 0, 5, 10]);
    assert.equal(a!.area, 50);
    assert.deepEqual(rotateToMin(a!.segmentation[0]!), [0, 0, 5, 0, 5, 10, 0, 10]);
    // and along the bottom edge: a square whose left tail's top edge lies on y = 300 of the window below it
    const q = polygon([0, 290, 20, 290, 20, 310, 10, 310, 10, 300, -30, 300, -30, 290]);
    const [b] = slice(q, [0, 0, 300, 300]);
    assert.deepEqual(b!.bbox, [0, 290, 20, 10]);
    assert.equal(b!.area, 200);
    assert.equal(b!.segmentation.length, 1);
    assert.equal(hasSpike(b!.segmentation[0]!), false);
  });

  it('a U cut into two prongs by the window gives one ring per prong', () => {
    // U: base 0..30 x 20..30 (bottom on screen), prongs 0..10 and 20..30 going up to y = 0
    const u = polygon([0, 0, 10, 0, 10, 20, 20, 20, 20, 0, 30, 0, 30, 30, 0, 30]);
    // the window ends at y = 15: only the two prongs' tops are in it
    const [a] = slice(u, [0, 0, 300, 15]);
    assert.deepEqual(a!.bbox, [0, 0, 30, 15]);
    assert.equal(a!.area, 300);
    const rings = a!.segmentation.map(rotateToMin).sort((p, q) => p[0]! - q[0]!);
    assert.deepEqual(rings, [
      [0, 0, 10, 0, 10, 15, 0, 15],
      [20, 0, 30, 0, 30, 15, 20, 15],
    ]);
  });

  it('random orthogonal polygons and windows: bbox, area and segmentation those of the clipped area', () => {
    const rand = random(12345);
    for (let trial = 0; trial < 600; trial++) {
      // a random column-convex polyomino on a 12 x 12 grid (each column an interval of rows that overlaps its
      // neighbour's), so that edges often lie on window lines; its area in a window is counted exactly on cells
      const cols = 2 + rand(9);
      const spans: [number, number][] = [];
      for (let c = 0; c < cols; c++) {
        const prev = spans[c - 1];
        let top = rand(11);
        let bottom = top + 1 + rand(12 - top);
        if (prev && (top >= prev[1] || bottom <= prev[0]))
          [top, bottom] = [prev[0], Math.max(prev[0] + 1, bottom)];
        spans.push([top, Math.min(12, bottom)]);
      }
      const ring: Ring = [];
      spans.forEach(([t], c) => ring.push([c, t], [c + 1, t]));
      for (let c = cols - 1; c >= 0; c--) ring.push([c + 1, spans[c]![1]], [c, spans[c]![1]]);
      const flat = ring
        .filter((p, i) => i === 0 || p[0] !== ring[i - 1]![0] || p[1] !== ring[i - 1]![1])
        .flatMap(([x, y]) => [x, y]);
      const wx = rand(10);
      const wy = rand(10);
      const window: [number, number, number, number] = [wx, wy, wx + 1 + rand(8), wy + 1 + rand(8)];
      const cells: [number, number][] = [];
      spans.forEach(([t, b], x) => {
        for (let y = t; y < b; y++) {
          if (x >= window[0] && x < window[2] && y >= window[1] && y < window[3]) cells.push([x, y]);
        }
      });
      const out = slice(polygon(flat), window);
      const where = `trial ${trial}: ring ${JSON.stringify(flat)} window ${JSON.stringify(window)}`;
      if (cells.length === 0) {
        assert.equal(out.length, 0, `${where}: nothing inside, nothing kept`);
        continue;
      }
      const minX = Math.min(...cells.map((p) => p[0])) - window[0];
      const minY = Math.min(...cells.map((p) => p[1])) - window[1];
      const maxX = Math.max(...cells.map((p) => p[0])) + 1 - window[0];
      const maxY = Math.max(...cells.map((p) => p[1])) + 1 - window[1];
      assert.equal(out.length, 1, where);
      assert.deepEqual(out[0]!.bbox, [minX, minY, maxX - minX, maxY - minY], where);
      assert.equal(out[0]!.area, cells.length, where);
      let area = 0;
      for (const r of out[0]!.segmentation) {
        assert.equal(hasSpike(r), false, `${where}: spike in ${JSON.stringify(r)}`);
        const a = Math.abs(flatArea(r));
        assert.ok(a > 0, `${where}: zero-area ring`);
        area += a;
      }
      assert.equal(area, cells.length, `${where}: the rings add up to the clipped area`);
    }
  });

  it('random star polygons: every side of the bbox is reached by the clipped area itself', () => {
    const rand = random(2024);
    for (let trial = 0; trial < 600; trial++) {
      // integer vertices around (8, 8) at increasing angles: a simple polygon, often with edges on window lines
      const n = 3 + rand(8);
      const points: Ring = [];
      for (let k = 0; k < n; k++) {
        const angle = ((k + rand(1000) / 1000) / n) * 2 * Math.PI;
        const r = 1 + rand(8);
        const p: [number, number] = [
          8 + Math.round(r * Math.cos(angle)),
          8 + Math.round(r * Math.sin(angle)),
        ];
        const last = points[points.length - 1];
        if (!last || last[0] !== p[0] || last[1] !== p[1]) points.push(p);
      }
      if (points.length < 3 || flatArea(points.flat()) === 0) continue;
      const wx = 2 + rand(10);
      const wy = 2 + rand(10);
      const window: [number, number, number, number] = [wx, wy, wx + 1 + rand(8), wy + 1 + rand(8)];
      const where = `trial ${trial}: ring ${JSON.stringify(points.flat())} window ${JSON.stringify(window)}`;
      for (const a of slice(polygon(points.flat()), window)) {
        const [x, y, w, h] = a.bbox;
        const vertices = a.segmentation.flatMap((r) =>
          Array.from({ length: r.length / 2 }, (_, i) => {
            const m = r.length / 2;
            const at = (k: number): [number, number] => [r[2 * ((k + m) % m)]!, r[2 * ((k + m) % m) + 1]!];
            return { v: at(i), prev: at(i - 1), next: at(i + 1) };
          }),
        );
        // a point just inside the corner at v, towards the middle of its two edges, must be inside the
        // original polygon and strictly inside the window: a spike's tip is not
        const genuine = ({ v, prev, next }: (typeof vertices)[number]) => {
          const u = unit([prev[0] - v[0], prev[1] - v[1]]);
          const t = unit([next[0] - v[0], next[1] - v[1]]);
          const d = unit([u[0] + t[0], u[1] + t[1]]);
          const q: [number, number] = [v[0] + window[0] + 1e-6 * d[0], v[1] + window[1] + 1e-6 * d[1]];
          return (
            q[0] > window[0] && q[0] < window[2] && q[1] > window[1] && q[1] < window[3] && inside(points, q)
          );
        };
        for (const [name, on] of [
          ['left', (p: [number, number]) => p[0] === x],
          ['top', (p: [number, number]) => p[1] === y],
          ['right', (p: [number, number]) => Math.abs(p[0] - (x + w)) < 1e-9],
          ['bottom', (p: [number, number]) => Math.abs(p[1] - (y + h)) < 1e-9],
        ] as const) {
          assert.ok(
            vertices.some((c) => on(c.v) && genuine(c)),
            `${where}: no part of the clipped area on the bbox ${name} side (bbox ${JSON.stringify(a.bbox)}, segmentation ${JSON.stringify(a.segmentation)})`,
          );
        }
        for (const r of a.segmentation)
          assert.equal(hasSpike(r), false, `${where}: spike in ${JSON.stringify(r)}`);
      }
    }
  });
});

describe('clipPolygon (labels geojson)', () => {
  it('a U with a hole in its right prong, cut into two prongs: two polygons, the hole in the right one', () => {
    const u: Polygon = [
      [
        [0, 0],
        [10, 0],
        [10, 20],
        [20, 20],
        [20, 0],
        [30, 0],
        [30, 30],
        [0, 30],
      ],
      [
        [22, 2],
        [22, 8],
        [28, 8],
        [28, 2],
      ],
    ];
    const parts = clipPolygon(u, 100, 15);
    assert.equal(parts.length, 2);
    const [left, right] = [...parts].sort((p, q) => polygonsBounds([p])[0] - polygonsBounds([q])[0]);
    assert.deepEqual(polygonsBounds([left!]), [0, 0, 10, 15]);
    assert.deepEqual(polygonsBounds([right!]), [20, 0, 30, 15]);
    assert.equal(left!.length, 1);
    assert.equal(right!.length, 2);
    assert.equal(polygonArea(left!) + polygonArea(right!), 150 + 150 - 36);
  });

  it('an L along the window edge: the bbox of the clipped area only', () => {
    const l: Polygon = [
      [
        [-10, 0],
        [10, 0],
        [10, 10],
        [0, 10],
        [0, 20],
        [-10, 20],
      ],
    ];
    const parts = clipPolygon(l, 100, 100);
    assert.deepEqual(polygonsBounds(parts), [0, 0, 10, 10]);
    assert.equal(polygonArea(parts[0]!), 100);
  });
});
