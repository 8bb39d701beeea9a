// The detection score threshold of the model bundle: greedy one-to-one matching, the F1 search
// over 0.05..0.95, the trainer's image reading (byte-exact with Pillow), and the whole choice with
// onnxruntime on an untrained detector whose own detections are made the ground truth.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { resizeBilinearLikePil } from '../../lib/raster/pil-resize.js';
import { findPython } from '../../lib/train/python.js';
import {
  boxIou,
  chooseThreshold,
  detectionThreshold,
  matchImage,
  readTrainerImage,
  THRESHOLDS,
  type ScoredBox,
} from '../../lib/train/threshold.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { TINY_CLASSES, writeTinyDataset } from './tiny-dataset.js';

const run = promisify(execFile);

let python: string | undefined;
try {
  python = (await findPython()).python;
} catch {
  python = undefined;
}
const skip = python ? false : 'no Python with torch (and Pillow)';

describe('detection matching and the F1 threshold', () => {
  it('computes IoU without the +1 of old COCO code', () => {
    assert.equal(boxIou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
    assert.equal(boxIou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150);
    assert.equal(boxIou([0, 0, 10, 10], [10, 0, 20, 10]), 0);
  });

  it('matches greedily by score, one to one, within a class, at IoU >= 0.5', () => {
    const truth = [
      { box: [0, 0, 10, 10], label: 0 },
      { box: [20, 0, 30, 10], label: 0 },
      { box: [40, 0, 50, 10], label: 1 },
    ] as const;
    const dets: ScoredBox[] = [
      { box: [0, 0, 10, 10], score: 0.4, label: 0 }, // second on truth 0: a duplicate
      { box: [0, 0, 10, 9], score: 0.9, label: 0 }, // takes truth 0 first (IoU 0.9)
      { box: [40, 0, 50, 10], score: 0.8, label: 0 }, // right place, wrong class
      { box: [25, 0, 35, 10], score: 0.7, label: 0 }, // IoU 1/3 with truth 1: too little
      { box: [21, 0, 30, 10], score: 0.6, label: 0 }, // truth 1 at IoU 0.9
    ];
    const m = matchImage(dets, truth);
    assert.deepEqual(m.scores, [0.9, 0.8, 0.7, 0.6, 0.4]);
    assert.deepEqual(m.matched, [true, false, false, true, false]);
    assert.equal(m.truth, 3);
    // exactly 0.5 counts
    assert.deepEqual(
      matchImage([{ box: [0, 0, 10, 10], score: 1, label: 0 }], [{ box: [0, 0, 10, 5], label: 0 }]).matched,
      [true],
    );
  });

  it('a detection overlapping two truth boxes takes the one it overlaps most', () => {
    const truth = [
      { box: [0, 0, 10, 10], label: 0 },
      { box: [2, 0, 12, 10], label: 0 },
    ] as const;
    const m = matchImage(
      [
        { box: [2, 0, 12, 10], score: 0.9, label: 0 },
        { box: [0, 0, 10, 10], score: 0.5, label: 0 },
      ],
      truth,
    );
    assert.deepEqual(m.matched, [true, true]);
  });

  it('chooses the threshold of maximum F1, ties to the one nearest 0.5', () => {
    // TP at 0.9 and 0.85, FP at 0.5 and 0.45, 2 truth boxes: F1 = 1 for t in (0.5, 0.85]
    const image = { scores: [0.9, 0.85, 0.5, 0.45], matched: [true, true, false, false], truth: 2 };
    const c = chooseThreshold([image]);
    assert.deepEqual(c, { threshold: 0.55, f1: 1, precision: 1, recall: 1, tp: 2, fp: 0, fn: 0 });
    // over two images: TP 0.9 and 0.3, FP 0.6, 3 truth boxes
    const two = chooseThreshold([
      { scores: [0.9, 0.6], matched: [true, false], truth: 2 },
      { scores: [0.3], matched: [true], truth: 1 },
    ]);
    // F1 = 2TP / (2TP + FP + FN): t <= 0.3: 2 TP 1 FP 1 FN -> 4/6; (0.3, 0.6]: 1 TP 1 FP 2 FN -> 2/5;
    // (0.6, 0.9]: 1 TP 2 FN -> 2/4
    assert.equal(two?.threshold, 0.3);
    assert.ok(Math.abs(two!.f1 - 4 / 6) < 1e-12);
    // no TP at all: every threshold has F1 0, so 0.5
    assert.equal(chooseThreshold([{ scores: [0.7], matched: [false], truth: 1 }])?.threshold, 0.5);
    assert.equal(chooseThreshold([{ scores: [0.7], matched: [false], truth: 0 }]), undefined);
    assert.equal(THRESHOLDS.length, 19);
    assert.deepEqual([THRESHOLDS[0], THRESHOLDS[9], THRESHOLDS[18]], [0.05, 0.5, 0.95]);
  });
});

describe('images read as the trainer reads them', { skip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-pilresize-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('resizes byte for byte as Pillow BILINEAR, smaller and larger, RGB and grey+alpha', async () => {
    const w = 50;
    const h = 37;
    const rgb = Buffer.alloc(w * h * 3);
    for (let i = 0; i < rgb.length; i++) rgb[i] = Math.floor((Math.sin(i * 0.37) * 0.5 + 0.5) * 255);
    await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(join(dir, 'rgb.png'));
    const ga = Buffer.alloc(w * h * 2);
    for (let i = 0; i < ga.length; i++) ga[i] = (i * 7) % 256;
    await sharp(ga, { raw: { width: w, height: h, channels: 2 } })
      .png()
      .toFile(join(dir, 'grey.png'));
    for (const file of ['rgb.png', 'grey.png']) {
      for (const size of [20, 50, 64, 129]) {
        const ours = await readTrainerImage(join(dir, file), size);
        const { stdout } = await run(
          python!,
          [
            '-c',
            `import sys, numpy as np
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
im = im.resize((${size}, ${size}), Image.BILINEAR)
sys.stdout.buffer.write(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).tobytes())`,
            join(dir, file),
          ],
          { encoding: 'buffer', maxBuffer: 1 << 24 },
        );
        assert.equal(stdout.length, ours.data.length);
        let diff = 0;
        for (let i = 0; i < stdout.length; i++)
          diff = Math.max(diff, Math.abs(ours.data[i]! * 255 - stdout[i]!));
        assert.ok(diff < 1e-3, `${file} at ${size}: max difference ${diff} levels`);
        assert.deepEqual([ours.sx, ours.sy], [size / w, size / h]);
      }
    }
    assert.throws(
      () => resizeBilinearLikePil(new Uint8Array(5), 2, 2, 1, 4, 4),
      /expected 4 bytes for 2x2x1, got 5/,
    );
  });
});

describe('the detection threshold on validation chips', { skip }, () => {
  let dir: string;
  let model: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-threshold-'));
    model = join(await untrainedModel({ task: 'detection', classes: TINY_CLASSES }), 'model.onnx');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("finds F1 max where the model's own detections are the ground truth", async () => {
    const data = join(dir, 'data');
    await writeTinyDataset(data, { nVal: 3 });
    const val = JSON.parse(await readFile(join(data, 'val.json'), 'utf8'));
    // the untrained detector gives every proposal about the same score: the first 30 of each
    // image (of its class, in 64 px chip pixels) become the truth, with one building it misses
    const session = await ort.InferenceSession.create(model);
    const annotations: object[] = [];
    let detections = 0;
    let kept = 0;
    for (const image of val.images as { id: number; file_name: string }[]) {
      const { data: pixels, sx, sy } = await readTrainerImage(join(data, 'images', image.file_name), 320);
      const out = await session.run({ image: new ort.Tensor('float32', pixels, [1, 3, 320, 320]) });
      const boxes = out['boxes']!.data as Float32Array;
      const labels = out['labels']!.data as BigInt64Array;
      detections += labels.length;
      let n = 0;
      for (let i = 0; i < labels.length && n < 30; i++) {
        const [x0, y0, x1, y1] = boxes.subarray(4 * i, 4 * i + 4);
        if (x1! - x0! < 2 || y1! - y0! < 2) continue;
        n++;
        annotations.push({
          id: annotations.length + 1,
          image_id: image.id,
          category_id: TINY_CLASSES[Number(labels[i]!) - 1]!.id,
          bbox: [x0! / sx, y0! / sy, (x1! - x0!) / sx, (y1! - y0!) / sy],
        });
      }
      kept += n;
      annotations.push({
        id: annotations.length + 1,
        image_id: image.id,
        category_id: 1,
        bbox: [0, 0, 0.1, 0.1],
      });
    }
    await session.release();
    assert.ok(kept > 0 && detections > kept);
    // the sliver of 0.1 px (0.5 px at 320) is dropped as the trainer drops it: add one real miss
    annotations.push({ id: annotations.length + 1, image_id: 1, category_id: 1, bbox: [1, 1, 5, 5] });
    await writeFile(join(data, 'val.json'), JSON.stringify({ ...val, annotations }));
    const scores = await scoresOf(model, data, val.images);
    const result = await detectionThreshold({
      onnx: model,
      val: join(data, 'val.json'),
      imagesDir: join(data, 'images'),
      classIds: TINY_CLASSES.map((c) => c.id),
      size: 320,
    });
    // hand count: at thresholds <= every score, TP = kept, FP = the rest, FN = the one miss
    const low = Math.min(...scores);
    const f1 = (2 * kept) / (2 * kept + (detections - kept) + 1);
    const candidates = THRESHOLDS.filter((t) => t <= low);
    assert.ok(candidates.length > 0, `scores from ${low}`);
    assert.equal(result.images, 3);
    assert.equal(result.choice?.tp, kept);
    assert.equal(result.choice?.fp, detections - kept);
    assert.equal(result.choice?.fn, 1);
    assert.ok(Math.abs(result.choice!.f1 - f1) < 1e-12);
    assert.equal(result.scoreThreshold, candidates.at(-1));
    assert.equal(
      result.thresholdFrom,
      `max F1 at IoU 0.5 on 3 validation chips (F1 ${f1.toFixed(2)}, precision ${(kept / detections).toFixed(2)}, recall ${(kept / (kept + 1)).toFixed(2)})`,
    );

    const some = await detectionThreshold({
      onnx: model,
      val: join(data, 'val.json'),
      imagesDir: join(data, 'images'),
      classIds: TINY_CLASSES.map((c) => c.id),
      size: 320,
      maxImages: 2,
    });
    assert.match(some.thresholdFrom, /^max F1 at IoU 0\.5 on 2 of 3 validation chips/);
  });

  it('falls back to 0.5 and says why without validation images or ground truth', async () => {
    const data = join(dir, 'empty');
    await writeTinyDataset(data, { nVal: 2 });
    const val = JSON.parse(await readFile(join(data, 'val.json'), 'utf8'));
    const options = {
      onnx: model,
      val: join(data, 'val.json'),
      imagesDir: join(data, 'images'),
      classIds: TINY_CLASSES.map((c) => c.id),
      size: 320,
    };
    await writeFile(join(data, 'val.json'), JSON.stringify({ ...val, annotations: [] }));
    assert.deepEqual(await detectionThreshold(options), {
      scoreThreshold: 0.5,
      thresholdFrom: 'default 0.5: the 2 validation image(s) have no ground truth boxes',
      images: 0,
    });
    await writeFile(join(data, 'val.json'), JSON.stringify({ ...val, images: [], annotations: [] }));
    assert.deepEqual(await detectionThreshold(options), {
      scoreThreshold: 0.5,
      thresholdFrom: 'default 0.5: the validation split has no images',
      images: 0,
    });
  });
});

async function scoresOf(model: string, data: string, images: { file_name: string }[]): Promise<number[]> {
  const session = await ort.InferenceSession.create(model);
  const all: number[] = [];
  for (const image of images) {
    const { data: pixels } = await readTrainerImage(join(data, 'images', image.file_name), 320);
    const out = await session.run({ image: new ort.Tensor('float32', pixels, [1, 3, 320, 320]) });
    all.push(...(out['scores']!.data as Float32Array));
  }
  await session.release();
  return all;
}
