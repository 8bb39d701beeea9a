import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { resizeBilinearLikePil } from '../../lib/raster/pil-resize.js';

/** Deterministic pseudo-random bytes with some structure (a gradient plus noise). */
function image(width: number, height: number, seed: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  let s = seed;
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const x = Math.floor(i / 3) % width;
    out[i] = (x * 3 + (s >> 16)) & 255;
  }
  return out;
}

const PIL = `
import sys
from PIL import Image
w, h, s = (int(v) for v in sys.argv[1:4])
data = sys.stdin.buffer.read()
im = Image.frombytes("RGB", (w, h), data)
sys.stdout.buffer.write(im.resize((s, s), getattr(Image, "Resampling", Image).BILINEAR).tobytes())
`;

test("windows are resized exactly as Pillow's BILINEAR resize (the trainer's)", () => {
  for (const [w, h, s] of [
    [300, 300, 128],
    [100, 100, 128],
    [90, 200, 128],
    [512, 301, 320],
    [37, 41, 40],
  ] as const) {
    const src = image(w, h, w * 7 + h);
    const pil = execFileSync('/usr/bin/python3', ['-c', PIL, String(w), String(h), String(s)], {
      input: src,
    });
    const ours = resizeBilinearLikePil(src, w, h, 3, s, s);
    assert.equal(ours.length, pil.length);
    let differ = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] !== pil[i]) differ++;
    assert.equal(differ, 0, `${w}x${h} -> ${s}: ${differ} of ${ours.length} samples differ from Pillow`);
  }
});

test('a window already of the model size is taken as it is', () => {
  const src = image(64, 64, 1);
  assert.equal(resizeBilinearLikePil(src, 64, 64, 3, 64, 64), src);
});
