import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { BoxIndex } from '../../lib/labels/box-index.js';
import {
  indexAnnotations,
  planImageSlices,
  prepareAnnotations,
  sliceAnnotations,
  sliceFileName,
  sliceWindows,
  validateSliceOptions,
  type SliceSourceAnnotation,
} from '../../lib/labels/slice.js';

// terrain1.jpg (2048 x 1365) and its COCO file from the shared data set (SAHI's own test data).
const TERRAIN_COCO = '../shared/data/coco/terrain1_coco.json';

describe('sliceWindows (SAHI 0.11 vectors, REFERENCE §1)', () => {
  it('2048 x 1365 at 300/0.2 gives 54 windows ending with the edge-shifted pair', () => {
    const w = sliceWindows(2048, 1365, 300, 0.2);
    assert.equal(w.length, 54);
    assert.deepEqual(w.slice(-2), [
      [1680, 1065, 1980, 1365],
      [1748, 1065, 2048, 1365],
    ]);
    assert.deepEqual(w.slice(0, 3), [
      [0, 0, 300, 300],
      [240, 0, 540, 300],
      [480, 0, 780, 300],
    ]);
    // rows outer, columns inner: the 10th window starts the second row
    assert.deepEqual(w[9], [0, 240, 300, 540]);
  });

  it('1024 x 682 gives 15 windows', () => {
    assert.equal(sliceWindows(1024, 682, 300, 0.2).length, 15);
  });

  it('541 x 541 gives 9 windows, two of them one pixel apart', () => {
    const w = sliceWindows(541, 541, 300, 0.2);
    assert.equal(w.length, 9);
    assert.deepEqual(
      w.slice(0, 3).map((b) => b[0]),
      [0, 240, 241],
    );
  });

  it('an image smaller than the slice gives one smaller window', () => {
    assert.deepEqual(sliceWindows(120, 80, 300, 0.2), [[0, 0, 120, 80]]);
  });

  it('an exact fit has no shifted window', () => {
    assert.deepEqual(
      sliceWindows(540, 300, 300, 0.2).map((b) => b[0]),
      [0, 240],
    );
  });

  it('overlap 0 tiles without overlap; floor(r * S) overlap pixels', () => {
    assert.deepEqual(
      sliceWindows(900, 300, 300, 0).map((b) => b[0]),
      [0, 300, 600],
    );
    // floor(0.33 * 100) = 33 -> step 67
    assert.deepEqual(
      sliceWindows(250, 100, 100, 0.33).map((b) => b[0]),
      [0, 67, 134, 150],
    );
  });

  it('10,000 px at 300/0.2 gives 1,764 windows (the benchmark scene)', () => {
    assert.equal(sliceWindows(10000, 10000, 300, 0.2).length, 1764);
  });

  const invalid: [string, () => unknown, RegExp][] = [
    [
      'overlap 1',
      () => sliceWindows(100, 100, 300, 1),
      /Expected number in \[0, 1\) for overlap ratio but received 1/,
    ],
    ['overlap -0.1', () => sliceWindows(100, 100, 300, -0.1), /overlap ratio but received -0.1/],
    [
      'size 0',
      () => sliceWindows(100, 100, 0, 0.2),
      /Expected positive integer for slice size but received 0/,
    ],
    ['size -3', () => sliceWindows(100, 100, -3, 0.2), /slice size but received -3/],
    ['size 2.5', () => sliceWindows(100, 100, 2.5, 0.2), /slice size but received 2.5/],
    ['image 0 wide', () => sliceWindows(0, 100, 300, 0.2), /image size but received 0 x 100/],
    [
      'min area 1.5',
      () => validateSliceOptions({ size: 3, overlap: 0, minAreaRatio: 1.5 }),
      /min area ratio but received 1.5/,
    ],
  ];
  for (const [name, fn, message] of invalid) {
    it(`rejects ${name}`, () => assert.throws(fn, { name: 'LabelError', message }));
  }
});

function box(x: number, y: number, w: number, h: number, category_id = 1): SliceSourceAnnotation {
  return { category_id, bbox: [x, y, w, h] };
}

function slice(
  annotations: SliceSourceAnnotation[],
  window: [number, number, number, number],
  ratio: number,
) {
  const prepared = prepareAnnotations(annotations, 'test.json');
  return sliceAnnotations(prepared.annotations, indexAnnotations(prepared.annotations, 300), window, ratio);
}

describe('sliceAnnotations', () => {
  it('clips a bbox to the window and shifts it to the window origin', () => {
    const [a] = slice([box(250, 250, 100, 100)], [240, 240, 540, 540], 0.1);
    assert.deepEqual(a!.bbox, [10, 10, 100, 100]);
    assert.equal(a!.area, 10000);
    const [b] = slice([box(250, 250, 100, 100)], [0, 0, 300, 300], 0.1);
    assert.deepEqual(b!.bbox, [250, 250, 50, 50]);
    assert.equal(b!.area, 2500);
    assert.deepEqual(b!.segmentation, [[250, 300, 250, 250, 300, 250, 300, 300]]);
  });

  it('keeps a clipped annotation when the area ratio equals the minimum (inclusive)', () => {
    assert.equal(slice([box(250, 250, 100, 100)], [0, 0, 300, 300], 0.25).length, 1);
    assert.equal(slice([box(250, 250, 100, 100)], [0, 0, 300, 300], 0.26).length, 0);
  });

  it('truncates both areas before the ratio, as SAHI does', () => {
    // original 10.5 x 10.5 = 110.25 -> 110; clipped 10.5 x 5.5 = 57.75 -> 57; 57/110 = 0.518
    const kept = slice([box(0, 294.5, 10.5, 10.5)], [0, 0, 300, 300], 0.518);
    assert.equal(kept.length, 1);
    assert.equal(kept[0]!.area, 57);
    assert.equal(slice([box(0, 294.5, 10.5, 10.5)], [0, 0, 300, 300], 0.5185).length, 0);
  });

  it('ignores annotations that only touch the window edge', () => {
    assert.equal(slice([box(300, 10, 20, 20)], [0, 0, 300, 300], 0).length, 0);
    assert.equal(slice([box(10, 300, 20, 20)], [0, 0, 300, 300], 0).length, 0);
    assert.equal(slice([box(-20, 10, 20, 20)], [0, 0, 300, 300], 0).length, 0);
    assert.equal(slice([box(300, 10, 20, 20)], [240, 0, 540, 300], 0).length, 1);
  });

  it('clips polygon segmentations, not their bboxes', () => {
    // a triangle whose bbox is 100 x 100 but covers half of it
    const tri: SliceSourceAnnotation = {
      category_id: 2,
      bbox: [200, 200, 100, 100],
      segmentation: [[200, 200, 300, 200, 200, 300]],
    };
    const [a] = slice([tri], [0, 0, 250, 250], 0);
    assert.equal(a!.categoryId, 2);
    // triangle clipped to x,y <= 250: a 50 x 50 square minus nothing (hypotenuse x + y = 500 passes through 250,250)
    assert.deepEqual(a!.bbox, [200, 200, 50, 50]);
    assert.equal(a!.area, 2500);
    const prepared = prepareAnnotations([tri], 't.json');
    assert.equal(prepared.annotations[0]!.area, 5000);
  });

  it('keeps every part of a multi-polygon segmentation', () => {
    const two: SliceSourceAnnotation = {
      category_id: 1,
      bbox: [0, 0, 400, 10],
      segmentation: [
        [0, 0, 10, 0, 10, 10, 0, 10],
        [280, 0, 400, 0, 400, 10, 280, 10],
      ],
    };
    const [a] = slice([two], [0, 0, 300, 300], 0.1);
    assert.equal(a!.segmentation.length, 2);
    assert.equal(a!.area, 100 + 200);
    assert.deepEqual(a!.bbox, [0, 0, 300, 10]);
  });

  it('skips and counts zero-area and RLE annotations instead of crashing', () => {
    const prepared = prepareAnnotations(
      [
        box(10, 10, 0, 5),
        box(10, 10, 0.5, 0.5),
        { category_id: 1, bbox: [0, 0, 5, 5], segmentation: { counts: [1, 2], size: [5, 5] } },
        box(10, 10, 5, 5),
      ],
      'x.json',
    );
    assert.equal(prepared.zeroArea, 2);
    assert.equal(prepared.rle, 1);
    assert.deepEqual(
      prepared.annotations.map((a) => a.source),
      [3],
    );
  });

  it('names the file, the annotation and the field for a bad bbox', () => {
    assert.throws(() => prepareAnnotations([{ category_id: 1, bbox: [1, 2, 3] }], 'bad.json'), {
      name: 'LabelError',
      message: /bad.json: annotations\[0\].bbox is \[1,2,3\]; expected \[x, y, width, height\]/,
    });
  });

  it('the spatial index gives the same kept annotations as testing every window', () => {
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const annotations = Array.from({ length: 400 }, () =>
      box(
        Math.floor(rand() * 1100) - 50,
        Math.floor(rand() * 700) - 50,
        1 + Math.floor(rand() * 120),
        1 + Math.floor(rand() * 120),
      ),
    );
    const prepared = prepareAnnotations(annotations, 'r.json').annotations;
    const everything = new BoxIndex(1e9);
    prepared.forEach((a) => everything.insert(a.bounds));
    const indexed = indexAnnotations(prepared, 300);
    for (const window of sliceWindows(1024, 682, 300, 0.2)) {
      assert.deepEqual(
        sliceAnnotations(prepared, indexed, window, 0.1),
        sliceAnnotations(prepared, everything, window, 0.1),
      );
    }
  });
});

describe('planImageSlices on terrain1.jpg', () => {
  const coco = JSON.parse(readFileSync(TERRAIN_COCO, 'utf8')) as {
    images: { width: number; height: number; file_name: string }[];
    annotations: SliceSourceAnnotation[];
  };
  const image = coco.images[0]!;
  const prepared = prepareAnnotations(coco.annotations, TERRAIN_COCO);

  it('plans the 54 SAHI windows with SAHI names', () => {
    const slices = planImageSlices(
      { width: image.width, height: image.height, stem: 'terrain1' },
      prepared.annotations,
      { size: 300, overlap: 0.2, minAreaRatio: 0.1, ext: 'jpg' },
    );
    assert.equal(slices.length, 54);
    assert.equal(slices.at(-1)!.fileName, 'terrain1_1748_1065_2048_1365.jpg');
    assert.equal(sliceFileName('a', [1, 2, 3, 4], 'png'), 'a_1_2_3_4.png');
    // every kept bbox lies inside its window
    for (const s of slices) {
      for (const a of s.annotations) {
        const [x, y, w, h] = a.bbox;
        assert.ok(
          x >= 0 && y >= 0 && x + w <= s.window[2] - s.window[0] && y + h <= s.window[3] - s.window[1],
        );
      }
    }
  });

  // SAHI's own test (tests/test_slicing.py): 512 px, overlap 0.4 across and 0.1 down, min area 0.1
  const SAHI_TEST = { size: 512, overlap: 0.4, overlapHeight: 0.1, minAreaRatio: 0.1, ext: 'png' };

  it('matches SAHI test_slice_image: 18 slices; slice 15 annotation 1 has area 7296, bbox [17, 186, 48, 152]', () => {
    const slices = planImageSlices(
      { width: image.width, height: image.height, stem: 't' },
      prepared.annotations,
      SAHI_TEST,
    );
    assert.equal(slices.length, 18);
    assert.deepEqual(slices[0]!.annotations, []);
    const a = slices[15]!.annotations[1]!;
    assert.equal(a.area, 7296);
    assert.deepEqual(a.bbox, [17, 186, 48, 152]);
  });

  it('matches SAHI test_slice_coco: 14 annotations; the third (area 12483, bbox [340, 204, 73, 171]) in slice 14, or 2 of 5 positives', () => {
    const renumber = (slices: ReturnType<typeof planImageSlices>) =>
      slices.flatMap((s, i) => s.annotations.map((a) => ({ ...a, image_id: i + 1 })));
    const all = renumber(
      planImageSlices(
        { width: image.width, height: image.height, stem: 't' },
        prepared.annotations,
        SAHI_TEST,
      ),
    );
    assert.equal(all.length, 14);
    assert.equal(all[2]!.image_id, 14);
    assert.equal(all[2]!.categoryId, 1);
    assert.equal(all[2]!.area, 12483);
    assert.deepEqual(all[2]!.bbox, [340, 204, 73, 171]);
    const positives = planImageSlices(
      { width: image.width, height: image.height, stem: 't' },
      prepared.annotations,
      {
        ...SAHI_TEST,
        ignoreNegatives: true,
      },
    );
    assert.equal(positives.length, 5);
    assert.equal(positives[1]!.window[2] - positives[1]!.window[0], 512);
    const kept = renumber(positives);
    assert.equal(kept.length, 14);
    assert.equal(kept[2]!.image_id, 2);
    assert.deepEqual(kept[2]!.bbox, [340, 204, 73, 171]);
  });

  it('with ignoreNegatives keeps only windows with annotations', () => {
    const all = planImageSlices(
      { width: image.width, height: image.height, stem: 't' },
      prepared.annotations,
      {
        size: 300,
        overlap: 0.2,
        minAreaRatio: 0.1,
        ext: 'jpg',
      },
    );
    const positives = planImageSlices(
      { width: image.width, height: image.height, stem: 't' },
      prepared.annotations,
      {
        size: 300,
        overlap: 0.2,
        minAreaRatio: 0.1,
        ext: 'jpg',
        ignoreNegatives: true,
      },
    );
    assert.ok(positives.length > 0 && positives.length < all.length);
    assert.deepEqual(
      positives,
      all.filter((s) => s.annotations.length > 0),
    );
  });
});
