import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  DEFAULT_MERGE,
  mergeDetections,
  type Detection,
  type MatchMetric,
  type MergeMethod,
  type MergeOptions,
} from '../../lib/predict/merge.js';
import { PredictError } from '../../lib/predict/errors.js';
import { findPython } from '../../lib/train/python.js';

type Box = [number, number, number, number];

function det(box: Box, score: number, label = 0): Detection {
  return { box, score, label };
}

function opts(
  method: MergeMethod,
  metric: MatchMetric,
  threshold: number,
  classAgnostic = false,
): MergeOptions {
  return { method, metric, threshold, classAgnostic };
}

/** A seeded PRNG (mulberry32), so failures reproduce. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rnd = random(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Clustered detections as windows give them: `objects` objects in a `extent` square scene, each
 * seen `copies` times with jittered corners (quantised to 1/16 px so that shifting them by whole
 * numbers is exact) and distinct scores.
 */
function clustered(
  seed: number,
  objects: number,
  copies: number,
  extent: number,
  classes: number,
): Detection[] {
  const rnd = random(seed);
  const q = (v: number): number => Math.round(v * 16) / 16;
  const out: Detection[] = [];
  for (let o = 0; o < objects; o++) {
    const w = 4 + rnd() * 40;
    const h = 4 + rnd() * 40;
    const x = rnd() * (extent - w);
    const y = rnd() * (extent - h);
    for (let c = 0; c < copies; c++) {
      const j = (): number => (rnd() - 0.5) * 0.3 * Math.min(w, h);
      const x0 = q(x + j());
      const y0 = q(y + j());
      const x1 = Math.max(x0 + 1, q(x + w + j()));
      const y1 = Math.max(y0 + 1, q(y + h + j()));
      const label = rnd() < 0.8 ? o % classes : Math.floor(rnd() * classes);
      out.push(det([x0, y0, x1, y1], 0, label));
    }
  }
  // Distinct scores: torch's sort is not stable, so ties would make the comparison ambiguous.
  const scores = shuffled(
    out.map((_, i) => (i + 1) / (out.length + 1)),
    seed + 1,
  );
  return out.map((d, i) => ({ ...d, score: scores[i]! }));
}

/**
 * An independent, plain implementation of the documented semantics: candidates by a sweep over
 * boxes sorted by x0 (not a grid), clusters built as SAHI's lists are.
 */
function reference(input: readonly Detection[], o: MergeOptions): Detection[] {
  const rankOf = (a: Detection, b: Detection): number =>
    b.score - a.score ||
    a.label - b.label ||
    a.box[0] - b.box[0] ||
    a.box[1] - b.box[1] ||
    a.box[2] - b.box[2] ||
    a.box[3] - b.box[3];
  const ds = [...input].sort(rankOf);
  const metric = (a: readonly number[], b: readonly number[]): number => {
    const iw = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
    const ih = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
    const inter = iw * ih;
    const aa = (a[2]! - a[0]!) * (a[3]! - a[1]!);
    const ab = (b[2]! - b[0]!) * (b[3]! - b[1]!);
    return o.metric === 'ios' ? inter / Math.min(aa, ab) : inter / (aa + ab - inter);
  };
  const match = (a: readonly number[], b: readonly number[]): boolean => metric(a, b) > o.threshold;
  if (o.method === 'none') return ds;
  const byX = ds.map((_, i) => i).sort((a, b) => ds[a]!.box[0] - ds[b]!.box[0]);
  const x0s = byX.map((i) => ds[i]!.box[0]);
  const maxW = Math.max(0, ...ds.map((d) => d.box[2] - d.box[0]));
  const lowerBound = (v: number): number => {
    let lo = 0;
    let hi = x0s.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (x0s[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  /** Indexes (ranks) of the other detections matching i, ascending. */
  const matchesOf = (i: number): number[] => {
    const d = ds[i]!;
    const res: number[] = [];
    for (let k = lowerBound(d.box[0] - maxW); k < byX.length && x0s[k]! < d.box[2]; k++) {
      const j = byX[k]!;
      if (j === i) continue;
      if (!o.classAgnostic && ds[j]!.label !== d.label) continue;
      if (match(d.box, ds[j]!.box)) res.push(j);
    }
    return res.sort((a, b) => a - b);
  };
  const keepers: number[] = [];
  const clusters = new Map<number, number[]>();
  if (o.method === 'nmm') {
    const keeperOf = new Map<number, number>();
    for (let i = 0; i < ds.length; i++) {
      let k = keeperOf.get(i);
      if (k === undefined) {
        k = i;
        keeperOf.set(i, i);
        keepers.push(i);
        clusters.set(i, []);
      }
      for (const j of matchesOf(i)) {
        if (keeperOf.has(j)) continue;
        keeperOf.set(j, k);
        clusters.get(k)!.push(j);
      }
    }
  } else {
    const done = new Set<number>();
    for (let i = 0; i < ds.length; i++) {
      if (done.has(i)) continue;
      done.add(i);
      keepers.push(i);
      const members = matchesOf(i).filter((j) => !done.has(j));
      for (const j of members) done.add(j);
      clusters.set(i, members);
    }
  }
  const out = keepers.map((k) => {
    const box = [...ds[k]!.box] as Box;
    if (o.method !== 'nms') {
      for (const m of clusters.get(k)!) {
        const b = ds[m]!.box;
        if (!match(box, b)) continue;
        box[0] = Math.min(box[0], b[0]);
        box[1] = Math.min(box[1], b[1]);
        box[2] = Math.max(box[2], b[2]);
        box[3] = Math.max(box[3], b[3]);
      }
    }
    return { box, score: ds[k]!.score, label: ds[k]!.label };
  });
  return out.sort(rankOf);
}

describe('mergeDetections: nms', () => {
  it('keeps the best and drops what overlaps it by IoU > threshold, keeping the far third', () => {
    // IoU(A, B) = 90 / 110 = 0.82; IoU(A, C) = 50 / 150 = 0.33; IoU(B, C) = 60 / 140 = 0.43.
    const a = det([0, 0, 10, 10], 0.9);
    const b = det([1, 0, 11, 10], 0.8);
    const c = det([5, 0, 15, 10], 0.7);
    assert.deepEqual(mergeDetections([c, b, a], opts('nms', 'iou', 0.5)), [a, c]);
    assert.deepEqual(mergeDetections([c, b, a], opts('nms', 'iou', 0.3)), [a]);
    assert.deepEqual(mergeDetections([c, b, a], opts('nms', 'iou', 0.85)), [a, b, c]);
  });

  it('suppresses only when the metric is strictly greater than the threshold', () => {
    // The lower half of A: IoU = 50 / 100 = 0.5 exactly, IoS = 50 / 50 = 1.
    const a = det([0, 0, 10, 10], 0.9);
    const b = det([0, 0, 10, 5], 0.8);
    assert.deepEqual(mergeDetections([a, b], opts('nms', 'iou', 0.5)), [a, b]);
    assert.deepEqual(mergeDetections([a, b], opts('nms', 'iou', 0.4999)), [a]);
    assert.deepEqual(mergeDetections([a, b], opts('nms', 'ios', 0.9999)), [a]);
    assert.deepEqual(mergeDetections([a, b], opts('nms', 'ios', 1)), [a, b]);
    // Boxes that only touch never match, even at threshold 0.
    const touching = det([10, 0, 20, 10], 0.5);
    assert.deepEqual(mergeDetections([a, touching], opts('nms', 'ios', 0)), [a, touching]);
  });

  it('IoS and IoU differ for a small box inside a big one', () => {
    // Inside: IoU = 4 / 100 = 0.04, IoS = 4 / 4 = 1.
    const big = det([0, 0, 10, 10], 0.6);
    const small = det([2, 2, 4, 4], 0.9);
    assert.deepEqual(mergeDetections([big, small], opts('nms', 'iou', 0.5)), [small, big]);
    assert.deepEqual(mergeDetections([big, small], opts('nms', 'ios', 0.5)), [small]);
  });

  it('compares classes separately unless class-agnostic', () => {
    const a = det([0, 0, 10, 10], 0.9, 0);
    const b = det([0, 0, 10, 10], 0.8, 1);
    const c = det([0, 0, 10, 10], 0.7, 1);
    assert.deepEqual(mergeDetections([a, b, c], opts('nms', 'iou', 0.5)), [a, b]);
    assert.deepEqual(mergeDetections([a, b, c], opts('nms', 'iou', 0.5, true)), [a]);
  });

  it('breaks score ties by label then box, whatever the input order', () => {
    const a = det([0, 0, 10, 10], 0.5, 0);
    const b = det([1, 0, 11, 10], 0.5, 0);
    const c = det([0, 0, 10, 10], 0.5, 1);
    for (const input of [
      [a, b, c],
      [c, b, a],
      [b, c, a],
    ]) {
      assert.deepEqual(mergeDetections(input, opts('nms', 'iou', 0.5, true)), [a]);
      assert.deepEqual(mergeDetections(input, opts('nms', 'iou', 0.5)), [a, c]);
      assert.deepEqual(mergeDetections(input, opts('none', 'iou', 0.5)), [a, b, c]);
    }
  });
});

describe('mergeDetections: greedy-nmm and nmm', () => {
  // A chain along x, each 10 x 10: IoS(A, B) = IoS(B, C) = 0.4, IoS(A, C) = 0.
  const a = det([0, 0, 10, 10], 0.9);
  const b = det([6, 0, 16, 10], 0.8);
  const c = det([12, 0, 22, 10], 0.7);

  it('greedy-nmm merges only what matches the keeper: union box, the keeper score', () => {
    assert.deepEqual(mergeDetections([c, a, b], opts('greedy-nmm', 'ios', 0.3)), [
      det([0, 0, 16, 10], 0.9),
      c,
    ]);
  });

  it('nmm chains: a member brings its own neighbours into the cluster', () => {
    // B joins A; C matches B, so it joins A's cluster too, and IoS([0,0,16,10], C) = 40/100 > 0.3.
    assert.deepEqual(mergeDetections([c, a, b], opts('nmm', 'ios', 0.3)), [det([0, 0, 22, 10], 0.9)]);
  });

  it('nmm drops a chained member that no longer matches the grown box (IoU)', () => {
    // IoU(A, B) = IoU(B, C) = 60 / 140 = 0.43; IoU(A ∪ B = [0,0,14,10], C) = 60 / 180 = 0.33.
    const a2 = det([0, 0, 10, 10], 0.9);
    const b2 = det([4, 0, 14, 10], 0.8);
    const c2 = det([8, 0, 18, 10], 0.7);
    assert.deepEqual(mergeDetections([a2, b2, c2], opts('nmm', 'iou', 0.4)), [det([0, 0, 14, 10], 0.9)]);
    assert.deepEqual(mergeDetections([a2, b2, c2], opts('greedy-nmm', 'iou', 0.4)), [
      det([0, 0, 14, 10], 0.9),
      c2,
    ]);
    assert.deepEqual(mergeDetections([a2, b2, c2], opts('nms', 'iou', 0.4)), [a2, c2]);
  });

  it('greedy-nmm drops a member of the keeper that no longer matches the grown box (IoU)', () => {
    // Keeper A in the middle: IoU(A, B) = IoU(A, C) = 0.43, but IoU(A ∪ B = [0,0,14,10], C) = 0.33.
    const a2 = det([4, 0, 14, 10], 0.9);
    const b2 = det([0, 0, 10, 10], 0.8);
    const c2 = det([8, 0, 18, 10], 0.7);
    assert.deepEqual(mergeDetections([c2, b2, a2], opts('greedy-nmm', 'iou', 0.4)), [
      det([0, 0, 14, 10], 0.9),
    ]);
    // With IoS the grown box still covers 60% of C: all three merge.
    assert.deepEqual(mergeDetections([c2, b2, a2], opts('greedy-nmm', 'ios', 0.4)), [
      det([0, 0, 18, 10], 0.9),
    ]);
  });

  it('class-agnostic merging takes the keeper label; class-aware keeps classes apart', () => {
    const x = det([0, 0, 10, 10], 0.9, 2);
    const y = det([0, 0, 12, 10], 0.95, 1);
    assert.deepEqual(mergeDetections([x, y], opts('greedy-nmm', 'ios', 0.5, true)), [
      det([0, 0, 12, 10], 0.95, 1),
    ]);
    assert.deepEqual(mergeDetections([x, y], opts('greedy-nmm', 'ios', 0.5)), [y, x]);
  });

  it('the default is SAHI’s: greedy-nmm, IoS, 0.5, per class', () => {
    assert.deepEqual(DEFAULT_MERGE, opts('greedy-nmm', 'ios', 0.5, false));
    // IoS 1 merges a small box into a big one that IoU would keep apart.
    assert.deepEqual(mergeDetections([det([0, 0, 10, 10], 0.6), det([2, 2, 4, 4], 0.9)], DEFAULT_MERGE), [
      det([0, 0, 10, 10], 0.9),
    ]);
  });
});

describe('mergeDetections: against an independent implementation', () => {
  const detections = clustered(7, 800, 4, 2000, 3);
  for (const method of ['nms', 'nmm', 'greedy-nmm', 'none'] as const) {
    for (const metric of ['iou', 'ios'] as const) {
      for (const classAgnostic of [false, true]) {
        it(`${method} ${metric}${classAgnostic ? ' class-agnostic' : ''} gives the plain sweep's result`, () => {
          const o = opts(method, metric, 0.5, classAgnostic);
          const got = mergeDetections(shuffled(detections, 3), o);
          const want = reference(detections, o);
          assert.deepEqual(got, want);
          if (method !== 'none') assert.ok(got.length < detections.length * 0.6, `${got.length} merged`);
        });
      }
    }
  }

  it('merges 100,000 clustered detections in a 40,000 px scene', () => {
    const many = clustered(11, 25_000, 4, 40_000, 5);
    assert.equal(many.length, 100_000);
    for (const o of [DEFAULT_MERGE, opts('nmm', 'iou', 0.3)]) {
      const got = mergeDetections(many, o);
      assert.deepEqual(got, reference(many, o));
      assert.ok(got.length > 20_000 && got.length < 60_000, `${o.method}: ${got.length}`);
    }
  });

  it('100,000 copies of one box merge into one (no pairwise blow-up)', () => {
    const same = Array.from({ length: 100_000 }, (_, i) => det([5, 5, 25, 25], (i % 1000) / 1000));
    for (const method of ['nms', 'nmm', 'greedy-nmm'] as const) {
      assert.deepEqual(mergeDetections(same, opts(method, 'iou', 0.5)), [det([5, 5, 25, 25], 0.999)]);
    }
  });
});

const python = await findPython()
  .then((p) => p.python)
  .catch((error: unknown) => error as Error);

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((done, fail) =>
    execFile(cmd, args, { maxBuffer: 1 << 26 }, (error, stdout, stderr) =>
      error ? fail(new Error(`${error.message}\n${stderr}`)) : done(stdout),
    ),
  );
}

const BATCHED_NMS = `
import json, sys, torch, torchvision
d = json.load(open(sys.argv[1]))
boxes = torch.tensor(d['boxes'], dtype=torch.float64)
scores = torch.tensor(d['scores'], dtype=torch.float64)
labels = torch.tensor(d['labels'], dtype=torch.int64)
out = {}
for t in d['thresholds']:
    out[str(t)] = torchvision.ops.batched_nms(boxes, scores, labels, t).tolist()
    out['agnostic ' + str(t)] = torchvision.ops.nms(boxes, scores, t).tolist()
print(json.dumps(out))
`;

describe(
  'mergeDetections nms + iou equals torchvision.ops.batched_nms',
  {
    skip: typeof python === 'string' ? false : `no Python with torchvision: ${python.message}`,
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'merge-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('keeps the same detections on 4,000 clustered boxes of 4 classes, at several thresholds', async () => {
      const base = clustered(5, 800, 4, 1500, 4);
      // Exact-threshold pairs: the lower half (IoU 0.5) and a 60% strip (IoU 0.6) of some boxes.
      const extra: Detection[] = base.slice(0, 400).map((d, i) => {
        const [x0, y0, x1, y1] = d.box;
        const frac = i % 2 === 0 ? 0.5 : 0.6;
        return det([x0, y0, x1, y0 + (y1 - y0) * frac], ((i + 0.5) / 400) * 1e-3, d.label);
      });
      const all = [...base, ...extra];
      const thresholds = [0.3, 0.5, 0.6, 0.7];
      const file = join(dir, 'detections.json');
      writeFileSync(
        file,
        JSON.stringify({
          boxes: all.map((d) => d.box),
          scores: all.map((d) => d.score),
          labels: all.map((d) => d.label),
          thresholds,
        }),
      );
      const script = join(dir, 'nms.py');
      writeFileSync(script, BATCHED_NMS);
      const torch = JSON.parse(await run(python as string, [script, file])) as Record<string, number[]>;
      const index = new Map(all.map((d, i) => [JSON.stringify(d), i]));
      for (const t of thresholds) {
        for (const agnostic of [false, true]) {
          const got = mergeDetections(all, opts('nms', 'iou', t, agnostic)).map((d) =>
            index.get(JSON.stringify(d)),
          );
          const want = torch[`${agnostic ? 'agnostic ' : ''}${t}`]!;
          assert.deepEqual(got, want, `threshold ${t}${agnostic ? ' class-agnostic' : ''}`);
          assert.ok(want.length < all.length * 0.8 && want.length > 100, `${want.length} kept`);
        }
      }
    });
  },
);

describe('mergeDetections: bad input', () => {
  const good = det([0, 0, 1, 1], 0.5);
  const cases: [string, () => unknown, RegExp][] = [
    [
      'empty box',
      () => mergeDetections([good, det([0, 0, 0, 1], 0.5)], DEFAULT_MERGE),
      /detection 1 box .*\[0,0,0,1\]/,
    ],
    ['NaN coordinate', () => mergeDetections([det([0, NaN, 1, 1], 0.5)], DEFAULT_MERGE), /detection 0 box/],
    ['NaN score', () => mergeDetections([det([0, 0, 1, 1], NaN)], DEFAULT_MERGE), /detection 0 score .*NaN/],
    [
      'fractional label',
      () => mergeDetections([det([0, 0, 1, 1], 0.5, 1.5)], DEFAULT_MERGE),
      /detection 0 label .*1\.5/,
    ],
    [
      'method',
      () => mergeDetections([], { ...DEFAULT_MERGE, method: 'soft' as MergeMethod }),
      /merge method one of nms, nmm, greedy-nmm, none but received "soft"/,
    ],
    [
      'metric',
      () => mergeDetections([], { ...DEFAULT_MERGE, metric: 'giou' as MatchMetric }),
      /merge metric one of iou, ios/,
    ],
    [
      'threshold',
      () => mergeDetections([], { ...DEFAULT_MERGE, threshold: 1.5 }),
      /number in \[0, 1\] for merge threshold but received 1.5/,
    ],
  ];
  for (const [name, call, message] of cases) {
    it(`rejects a bad ${name} with a PredictError`, () => {
      assert.throws(call, (error: unknown) => error instanceof PredictError && message.test(error.message));
    });
  }

  it('returns an empty list for no detections', () => {
    assert.deepEqual(mergeDetections([], DEFAULT_MERGE), []);
  });
});
