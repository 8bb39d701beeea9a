import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ClassAccumulator,
  IOU_THRESHOLDS,
  boxIou,
  countsOf,
  matchImageClass,
} from '../../lib/eval/matching.js';
import type { Box, ScoredBox, TruthBox } from '../../lib/eval/matching.js';
import { boxPolygon, matchPolygons, polygonIou } from '../../lib/eval/polygon-matching.js';

const close = (a: number | null, b: number, eps = 1e-9) =>
  assert.ok(a !== null && Math.abs(a - b) < eps, `expected ${b} but got ${a}`);

/**
 * The hand-computed case. One class, truth G1 [0,0,10,10], G2 [20,0,30,10], G3 [40,0,50,10].
 * Detections by score:
 *   D1 0.9 [0,0,10,10]      IoU 1 with G1            -> TP at every threshold
 *   D2 0.8 [20,0,30,8.2]    IoU 82/100 = 0.82 with G2 -> TP up to 0.80, FP at 0.85+
 *   D3 0.7 [0,0,10,10]      G1 already taken          -> FP
 *   D4 0.6 [40,0,50,5]      IoU 50/100 = 0.5 with G3  -> TP at 0.50 only (>= threshold)
 *   D5 0.5 [100,100,110,110] nothing                  -> FP
 * At IoU 0.5: TP 3, FP 2, FN 0: P = 3/5 = 0.6, R = 3/3 = 1, F1 = 2*3 / (2*3 + 2 + 0) = 0.75.
 * AP@0.5: hits T T F T F; recall 1/3 2/3 2/3 1 1; precision 1 1 2/3 3/4 3/5, made monotone from
 *   the right 1 1 3/4 3/4 3/5. Recall points 0..0.33 (34) -> 1, 0.34..0.66 (33) -> 1,
 *   0.67..1 (34) -> 3/4: AP = (34 + 33 + 34 * 0.75) / 101 = 92.5 / 101.
 * Thresholds 0.55..0.80 (6): hits T T F F F, recall reaches 2/3 only: (34 + 33) / 101 = 67 / 101.
 * Thresholds 0.85, 0.90, 0.95 (3): hits T F F F F: 34 / 101.
 * AP@[.5:.95] = (92.5 + 6 * 67 + 3 * 34) / 101 / 10 = 596.5 / 1010.
 */
const truth: TruthBox[] = [
  { box: [0, 0, 10, 10], label: 0 },
  { box: [20, 0, 30, 10], label: 0 },
  { box: [40, 0, 50, 10], label: 0 },
];
const detections: ScoredBox[] = [
  { box: [100, 100, 110, 110], score: 0.5, label: 0 },
  { box: [0, 0, 10, 10], score: 0.7, label: 0 },
  { box: [20, 0, 30, 8.2], score: 0.8, label: 0 },
  { box: [40, 0, 50, 5], score: 0.6, label: 0 },
  { box: [0, 0, 10, 10], score: 0.9, label: 0 },
];

describe('detection matching (COCO protocol)', () => {
  it('box IoU of known boxes', () => {
    close(boxIou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
    close(boxIou([20, 0, 30, 10], [20, 0, 30, 8.2]), 0.82);
    close(boxIou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150);
    assert.equal(boxIou([0, 0, 10, 10], [10, 0, 20, 10]), 0);
  });

  it('the hand-computed case: P/R/F1 at IoU 0.5 and AP@0.5, AP@[.5:.95]', () => {
    const m = matchImageClass(detections, truth);
    const at50 = IOU_THRESHOLDS.indexOf(0.5);
    assert.deepEqual(m.order, [4, 2, 1, 3, 0]);
    assert.deepEqual([...m.matches[at50]!], [0, 1, -1, 2, -1]);
    const tp = m.matches[at50]!.filter((x) => x >= 0).length;
    const c = countsOf(tp, detections.length - tp, truth.length - tp);
    assert.deepEqual([c.tp, c.fp, c.fn], [3, 2, 0]);
    close(c.precision, 0.6);
    close(c.recall, 1);
    close(c.f1, 0.75);
    const acc = new ClassAccumulator();
    acc.add(detections, m, truth.length);
    const { ap50, ap } = acc.scores50And5095();
    close(ap50, 92.5 / 101);
    close(ap, 596.5 / 1010);
    // best IoUs reported in errors.geojson
    close(m.bestIouOfDetection[1]!, 1); // the duplicate overlaps G1 fully but lost it to D1
    close(m.bestIouOfDetection[0]!, 0);
  });

  it('COCO maxDets keeps only the highest-scoring detections', () => {
    const m = matchImageClass(detections, truth, IOU_THRESHOLDS, 2);
    const acc = new ClassAccumulator();
    acc.add(detections, m, truth.length);
    // D1, D2 only: recall 1/3, 2/3 with precision 1: (34 + 33) / 101 at 0.5
    close(acc.averagePrecision(0), 67 / 101);
  });

  it('no truth: AP is null (the class does not count); truth and no detections: AP 0', () => {
    const empty = new ClassAccumulator();
    empty.add(detections, matchImageClass(detections, []), 0);
    assert.equal(empty.averagePrecision(0), null);
    const missed = new ClassAccumulator();
    missed.add([], matchImageClass([], truth), truth.length);
    assert.equal(missed.averagePrecision(0), 0);
  });

  it('the grid index finds the same matches as testing every pair', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let round = 0; round < 20; round++) {
      const box = (): Box => {
        const x = rand() * 500;
        const y = rand() * 500;
        return [x, y, x + 5 + rand() * 60, y + 5 + rand() * 60];
      };
      const gts: TruthBox[] = Array.from({ length: 60 }, () => ({ box: box(), label: 0 }));
      const dts: ScoredBox[] = [
        ...gts.slice(0, 40).map((g) => ({
          box: g.box.map((v) => v + (rand() - 0.5) * 8) as unknown as Box,
          score: rand(),
          label: 0,
        })),
        ...Array.from({ length: 30 }, () => ({ box: box(), score: rand(), label: 0 })),
      ];
      const m = matchImageClass(dts, gts);
      // brute force, the pycocotools loop over the full IoU matrix
      IOU_THRESHOLDS.forEach((t, ti) => {
        const taken = new Set<number>();
        m.order.forEach((d, k) => {
          let best = Math.min(t, 1 - 1e-10);
          let match = -1;
          gts.forEach((g, gi) => {
            if (taken.has(gi)) return;
            const iou = boxIou(dts[d]!.box, g.box);
            if (iou < best) return;
            best = iou;
            match = gi;
          });
          if (match >= 0) taken.add(match);
          assert.equal(m.matches[ti]![k], match, `round ${round}, threshold ${t}, detection ${d}`);
        });
      });
    }
  });
});

describe('SpaceNet polygon matching', () => {
  it('polygon IoU is exact for overlapping squares, holes and concave shapes', () => {
    close(polygonIou([boxPolygon([0, 0, 2, 2])], [boxPolygon([1, 1, 3, 3])]), 1 / 7);
    // a 4x4 square with a 2x2 hole against the hole itself: no overlap
    const holed = [
      [
        [0, 0],
        [4, 0],
        [4, 4],
        [0, 4],
      ],
      [
        [1, 1],
        [3, 1],
        [3, 3],
        [1, 3],
      ],
    ] as [number, number][][];
    assert.equal(polygonIou([holed], [boxPolygon([1, 1, 3, 3])]), 0);
    // against the whole square: 12 / 16
    close(polygonIou([holed], [boxPolygon([0, 0, 4, 4])]), 12 / 16);
    // an L (area 3) against its bounding square (area 4)
    const ell = [
      [
        [0, 0],
        [2, 0],
        [2, 1],
        [1, 1],
        [1, 2],
        [0, 2],
      ],
    ] as [number, number][][];
    close(polygonIou([ell], [boxPolygon([0, 0, 2, 2])]), 3 / 4);
  });

  it('one-to-one at IoU >= 0.5, proposals in score order take their best unmatched truth', () => {
    const t = [boxPolygon([0, 0, 10, 10]), boxPolygon([20, 0, 30, 10])].map((p) => ({
      polygons: [p],
      label: 0,
      score: 1,
    }));
    const p = [
      { polygons: [boxPolygon([0, 0, 10, 6])], label: 0, score: 0.4 }, // IoU 0.6 with truth 0
      { polygons: [boxPolygon([0, 0, 10, 10])], label: 0, score: 0.9 }, // IoU 1 with truth 0, first
      { polygons: [boxPolygon([20, 0, 30, 4])], label: 0, score: 0.8 }, // IoU 0.4: FP
    ];
    const m = matchPolygons(p, t);
    assert.deepEqual([...m.predictionMatches], [-1, 0, -1]);
    assert.deepEqual([...m.truthMatches], [1, -1]);
    close(m.bestIouOfPrediction[0]!, 0.6);
    close(m.bestIouOfTruth[1]!, 0.4);
  });
});
