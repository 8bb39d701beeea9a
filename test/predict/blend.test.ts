import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sliceWindows, type SliceWindow } from '../../lib/labels/slice.js';
import { LogitBlender, resizeLogits, type BlendMode } from '../../lib/predict/blend.js';
import { PredictError } from '../../lib/predict/errors.js';
import { findPython } from '../../lib/train/python.js';

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

/**
 * A synthetic "model" whose logits at a pixel depend only on the scene pixel, so every window
 * agrees: multiples of 1/8 in [-4, 4] (exact in float32), with ties between channels at some
 * pixels.
 */
function sceneLogits(width: number, height: number, channels: number, seed: number): Float32Array {
  const rnd = random(seed);
  const out = new Float32Array(channels * width * height);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) out[c * width * height + p] = Math.round((rnd() * 8 - 4) * 8) / 8;
    if (p % 7 === 0) out[(channels - 1) * width * height + p] = out[p]!; // a tie with channel 0
  }
  return out;
}

/** The window's slice of scene logits [channels, h, w]. */
function crop(
  scene: Float32Array,
  width: number,
  height: number,
  channels: number,
  w: SliceWindow,
): Float32Array {
  const [x0, y0, x1, y1] = w;
  const out = new Float32Array(channels * (y1 - y0) * (x1 - x0));
  let k = 0;
  for (let c = 0; c < channels; c++) {
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) out[k++] = scene[c * width * height + y * width + x]!;
    }
  }
  return out;
}

/** Argmax over channels per pixel, ties to the lower channel, computed in one pass. */
function onePass(scene: Float32Array, width: number, height: number, channels: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let p = 0; p < width * height; p++) {
    let best = 0;
    for (let c = 1; c < channels; c++)
      if (scene[c * width * height + p]! > scene[best * width * height + p]!) best = c;
    out[p] = best;
  }
  return out;
}

/** Blends windows row of windows by row, taking rows up to the next row's top after each. */
function stitch(
  mode: BlendMode,
  width: number,
  height: number,
  channels: number,
  windows: readonly SliceWindow[],
  logitsOf: (w: SliceWindow) => Float32Array,
): { classes: Uint8Array; maxOpen: number } {
  const blender = new LogitBlender({ width, height, channels, mode });
  const rows = [...new Set(windows.map((w) => w[1]))];
  const parts: Uint8Array[] = [];
  let maxOpen = 0;
  let expectedTop = 0;
  rows.forEach((y0, r) => {
    for (const w of windows.filter((v) => v[1] === y0)) blender.add(w, logitsOf(w));
    maxOpen = Math.max(maxOpen, blender.openRows);
    const part = blender.take(rows[r + 1] ?? height);
    assert.equal(part.top, expectedTop);
    expectedTop = part.bottom;
    parts.push(part.classes);
  });
  const classes = new Uint8Array(width * height);
  let at = 0;
  for (const p of parts) {
    classes.set(p, at);
    at += p.length;
  }
  assert.equal(at, width * height);
  return { classes, maxOpen };
}

describe('LogitBlender: stitched equals one pass when windows agree', () => {
  const cases: [number, number, number, number, number][] = [
    // width, height, window size, overlap, channels: windows shifted back at the right and bottom edges
    [53, 41, 16, 0.25, 4],
    [40, 40, 10, 0.5, 2],
    [37, 23, 37, 0.2, 3],
    [30, 64, 12, 0, 5],
  ];
  for (const mode of ['average', 'edge'] as const) {
    for (const [width, height, size, overlap, channels] of cases) {
      it(`${mode}: ${width} x ${height} scene, ${size} px windows, overlap ${overlap}, ${channels} channels`, () => {
        const windows = sliceWindows(width, height, size, overlap);
        const scene = sceneLogits(width, height, channels, width * height + channels);
        const want = onePass(scene, width, height, channels);
        const { classes, maxOpen } = stitch(mode, width, height, channels, windows, (w) =>
          crop(scene, width, height, channels, w),
        );
        assert.deepEqual(classes, want);
        assert.ok(new Set(want).size === channels, 'every class appears');
        assert.ok(maxOpen <= Math.min(size, height), `${maxOpen} rows open`);
      });
    }
  }
});

describe('LogitBlender: hand-computed overlaps', () => {
  // Two windows of 4 pixels over a 6 x 1 scene, overlapping at x = 2, 3. Window A says class 1
  // (logits 0, 1), window B class 0 (logits 2, 0). Edge weights of a 4-pixel side: 0.25, 0.75,
  // 0.75, 0.25 (the height-1 side weighs 1).
  const a: SliceWindow = [0, 0, 4, 1];
  const b: SliceWindow = [2, 0, 6, 1];
  const la = new Float32Array([0, 0, 0, 0, 1, 1, 1, 1]);
  const lb = new Float32Array([2, 2, 2, 2, 0, 0, 0, 0]);

  it('average: at x = 2, 3 the sums are 2 vs 1, so B wins both', () => {
    const blender = new LogitBlender({ width: 6, height: 1, channels: 2, mode: 'average' });
    blender.add(a, la);
    blender.add(b, lb);
    assert.deepEqual([...blender.take(1).classes], [1, 1, 0, 0, 0, 0]);
  });

  it('edge: at x = 2, A weighs 0.75 (1 x 0.75 > 2 x 0.25); at x = 3, B does', () => {
    const blender = new LogitBlender({ width: 6, height: 1, channels: 2, mode: 'edge' });
    blender.add(a, la);
    blender.add(b, lb);
    assert.deepEqual([...blender.take(1).classes], [1, 1, 1, 0, 0, 0]);
  });

  it('edge weights apply along y too, and rows are taken between windows', () => {
    // The same case turned vertical: windows [0,0,1,4] and [0,2,1,6] of a 1 x 6 scene.
    const blender = new LogitBlender({ width: 1, height: 6, channels: 2, mode: 'edge' });
    blender.add([0, 0, 1, 4], la);
    assert.deepEqual(blender.take(2), { top: 0, bottom: 2, classes: new Uint8Array([1, 1]) });
    blender.add([0, 2, 1, 6], lb);
    assert.deepEqual(blender.take(6), { top: 2, bottom: 6, classes: new Uint8Array([1, 0, 0, 0]) });
  });

  it('a tie goes to the lower channel', () => {
    // Average at x = 2, 3: (0 + 1) / 2 = 0.5 on both channels.
    const blender = new LogitBlender({ width: 6, height: 1, channels: 2, mode: 'average' });
    blender.add(a, la);
    blender.add(b, new Float32Array([1, 1, 1, 1, 0, 0, 0, 0]));
    assert.deepEqual([...blender.take(1).classes], [1, 1, 0, 0, 0, 0]);
    const tie = new LogitBlender({ width: 2, height: 1, channels: 3, mode: 'edge' });
    tie.add([0, 0, 2, 1], new Float32Array([0, 5, 5, 1, 5, 5]));
    assert.deepEqual([...tie.take(1).classes], [1, 0]);
  });

  it('pixels no window covered are class 0', () => {
    const blender = new LogitBlender({ width: 4, height: 3, channels: 2, mode: 'average' });
    blender.add([1, 1, 3, 2], new Float32Array([0, 0, 1, 1]));
    assert.deepEqual([...blender.take(3).classes], [0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
  });
});

describe('LogitBlender: taking rows', () => {
  it('rows taken in any chunks, in order, give the whole raster', () => {
    const [width, height, channels] = [29, 31, 3];
    const scene = sceneLogits(width, height, channels, 5);
    const blender = new LogitBlender({ width, height, channels, mode: 'edge' });
    for (const w of sliceWindows(width, height, 12, 0.3))
      blender.add(w, crop(scene, width, height, channels, w));
    const rows: number[] = [];
    const classes: number[] = [];
    for (const bottom of [0, 1, 1, 5, 17, 30, 31]) {
      const part = blender.take(bottom);
      assert.equal(part.classes.length, (part.bottom - part.top) * width);
      for (let y = part.top; y < part.bottom; y++) rows.push(y);
      classes.push(...part.classes);
      assert.equal(blender.nextRow, bottom);
    }
    assert.deepEqual(
      rows,
      Array.from({ length: height }, (_, y) => y),
    );
    assert.deepEqual(new Uint8Array(classes), onePass(scene, width, height, channels));
    assert.equal(blender.openRows, 0);
  });
});

describe('LogitBlender: misuse', () => {
  const make = (): LogitBlender => new LogitBlender({ width: 10, height: 8, channels: 2, mode: 'average' });
  const throwsPredict = (call: () => unknown, message: RegExp): void => {
    assert.throws(call, (error: unknown) => error instanceof PredictError && message.test(error.message));
  };

  it('rejects taking rows out of order', () => {
    const blender = make();
    blender.take(4);
    throwsPredict(
      () => blender.take(3),
      /integer bottom in \[4, 8\] .*rows up to 4 are already taken.* received 3/,
    );
    throwsPredict(() => blender.take(9), /integer bottom in \[4, 8\].* received 9/);
    throwsPredict(() => blender.take(4.5), /received 4.5/);
  });

  it('rejects a window that starts in rows already taken', () => {
    const blender = make();
    blender.add([0, 0, 4, 4], new Float32Array(32));
    blender.take(2);
    throwsPredict(
      () => blender.add([0, 1, 4, 5], new Float32Array(32)),
      /window \[0,1,4,5\] to start at row 2 or below, since rows up to 2 are already taken/,
    );
  });

  it('rejects a window outside the scene or empty', () => {
    const blender = make();
    for (const w of [
      [0, 0, 11, 4],
      [-1, 0, 3, 4],
      [0, 5, 4, 9],
      [3, 0, 3, 4],
      [0, 0, 2.5, 4],
    ] as const) {
      throwsPredict(
        () => blender.add(w, new Float32Array(64)),
        new RegExp(`inside the 10 x 8 scene .* received \\${JSON.stringify(w).replace(']', '\\]')}`),
      );
    }
  });

  it('rejects logits of the wrong length', () => {
    throwsPredict(
      () => make().add([0, 0, 4, 3], new Float32Array(23)),
      /Expected 2 x 3 x 4 = 24 logits for window \[0,0,4,3\] but received 23/,
    );
  });

  it('rejects bad options', () => {
    throwsPredict(
      () => new LogitBlender({ width: 0, height: 8, channels: 2, mode: 'edge' }),
      /blend width .* 0/,
    );
    throwsPredict(
      () => new LogitBlender({ width: 10, height: 8, channels: 257, mode: 'edge' }),
      /\[1, 256\].* 257/,
    );
    throwsPredict(
      () => new LogitBlender({ width: 10, height: 8, channels: 2, mode: 'max' as BlendMode }),
      /blend mode one of average, edge but received "max"/,
    );
  });
});

describe('resizeLogits', () => {
  it('samples half-pixel centres: 2 -> 4 pixels', () => {
    // Target x = 0..3 samples source 0 (clamped from -0.25), 0.25, 0.75, 1 (clamped from 1.25).
    assert.deepEqual([...resizeLogits(new Float32Array([0, 4]), 1, 2, 1, 4, 1)], [0, 1, 3, 4]);
  });

  it('same size is a copy', () => {
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const out = resizeLogits(src, 2, 3, 1, 3, 1);
    assert.deepEqual(out, src);
    assert.notEqual(out, src);
  });

  it('rejects logits of the wrong length or bad sizes', () => {
    assert.throws(
      () => resizeLogits(new Float32Array(5), 2, 3, 1, 6, 2),
      (e: unknown) =>
        e instanceof PredictError && /2 x 1 x 3 = 6 logits to resize but received 5/.test(e.message),
    );
    assert.throws(
      () => resizeLogits(new Float32Array(6), 2, 3, 1, 0, 2),
      (e: unknown) => e instanceof PredictError && /target width but received 0/.test(e.message),
    );
  });
});

const python = await findPython()
  .then((p) => p.python)
  .catch((error: unknown) => error as Error);

const INTERPOLATE = `
import json, sys, numpy, torch
import torch.nn.functional as F
cases = json.load(open(sys.argv[1]))
for k, (c, sw, sh, tw, th) in enumerate(cases):
    x = numpy.fromfile(f'{sys.argv[2]}/in-{k}.f32', dtype='<f4').reshape(1, c, sh, sw)
    y = F.interpolate(torch.from_numpy(x), size=(th, tw), mode='bilinear', align_corners=False)
    y[0].numpy().astype('<f4').tofile(f'{sys.argv[2]}/out-{k}.f32')
print('ok')
`;

describe(
  'resizeLogits equals torch F.interpolate(bilinear, align_corners=False)',
  {
    skip: typeof python === 'string' ? false : `no Python with torch: ${python.message}`,
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'blend-test-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('on random logits, up and down, square and not, within 1e-5', async () => {
      // [channels, sw, sh, tw, th]
      const cases: [number, number, number, number, number][] = [
        [3, 5, 7, 13, 9],
        [2, 17, 11, 4, 6],
        [4, 64, 64, 100, 100],
        [1, 100, 100, 64, 64],
        [2, 1, 1, 3, 5],
        [3, 9, 9, 9, 20],
        [2, 512, 512, 300, 300],
      ];
      const rnd = random(99);
      const inputs = cases.map(([c, sw, sh], k) => {
        const data = new Float32Array(c * sw * sh).map(() => rnd() * 20 - 10);
        writeFileSync(join(dir, `in-${k}.f32`), new Uint8Array(data.buffer));
        return data;
      });
      writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
      writeFileSync(join(dir, 'interpolate.py'), INTERPOLATE);
      await new Promise<void>((done, fail) =>
        execFile(
          python as string,
          [join(dir, 'interpolate.py'), join(dir, 'cases.json'), dir],
          (error, _out, stderr) => (error ? fail(new Error(`${error.message}\n${stderr}`)) : done()),
        ),
      );
      cases.forEach(([c, sw, sh, tw, th], k) => {
        const bytes = readFileSync(join(dir, `out-${k}.f32`));
        const want = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
        const got = resizeLogits(inputs[k]!, c, sw, sh, tw, th);
        assert.equal(got.length, want.length);
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        assert.ok(worst <= 1e-5, `case ${k} (${c}x${sh}x${sw} -> ${th}x${tw}): max difference ${worst}`);
      });
    });
  },
);

describe('LogitBlender: taking the finished rows from the left (takeLeft)', () => {
  it('rows taken from the left as each row of windows goes right give the one-pass raster, across 512 px pieces', () => {
    const [width, height, channels] = [1100, 70, 3];
    const windows = sliceWindows(width, height, 64, 0.25);
    const scene = sceneLogits(width, height, channels, 11);
    const want = onePass(scene, width, height, channels);
    for (const mode of ['average', 'edge'] as const) {
      const blender = new LogitBlender({ width, height, channels, mode });
      const rows = [...new Set(windows.map((w) => w[1]))];
      const classes = new Uint8Array(width * height);
      rows.forEach((y0, r) => {
        const final = rows[r + 1] ?? height;
        const row = windows.filter((v) => v[1] === y0);
        for (let b = 0; b < row.length; b += 3) {
          for (const w of row.slice(b, b + 3)) blender.add(w, crop(scene, width, height, channels, w));
          const right = row[b + 3]?.[0] ?? width;
          const got = blender.takeLeft(final, right);
          const n = right - got.left;
          assert.equal(got.classes.length, (got.bottom - got.top) * n);
          for (let y = got.top; y < got.bottom; y++) {
            classes.set(got.classes.subarray((y - got.top) * n, (y - got.top + 1) * n), y * width + got.left);
          }
        }
        assert.equal(blender.nextRow, final);
      });
      assert.deepEqual(classes, want, mode);
      assert.equal(blender.openRows, 0);
    }
  });

  it('refuses a window left of the columns taken, and take() before the rows reach the right edge', () => {
    const blender = new LogitBlender({ width: 8, height: 4, channels: 2, mode: 'average' });
    blender.add([0, 0, 4, 4], new Float32Array(2 * 16));
    blender.takeLeft(2, 3);
    assert.throws(() => blender.add([2, 0, 6, 4], new Float32Array(2 * 16)), PredictError);
    assert.throws(() => blender.take(2), PredictError);
    assert.throws(() => blender.takeLeft(3, 5), PredictError);
    blender.add([4, 0, 8, 4], new Float32Array(2 * 16));
    assert.equal(blender.takeLeft(2, 8).classes.length, 2 * 5);
    assert.equal(blender.nextRow, 2);
  });
});
