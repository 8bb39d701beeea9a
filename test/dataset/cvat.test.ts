// CVAT "COCO 1.0" exports (annotations/instances_<subset>.json + images/) written here the way
// CVAT writes them: ids from 1, supercategory "", rectangles with `segmentation: []`, crowd
// masks as RLE with iscrowd 1, attributes per annotation.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { importCvatCoco } from '../../lib/dataset/cvat.js';
import { DatasetError } from '../../lib/dataset/errors.js';
import { readGeobatchDataset } from '../../lib/dataset/exchange.js';
import { decodeRleString, parseRle, rleToPolygons } from '../../lib/dataset/rle.js';
import { exportYolo } from '../../lib/dataset/yolo.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';

const storage = createStorage();

/** Uncompressed COCO RLE (column-major, background first) of the pixels `on` holds as `x,y`. */
function rleOf(width: number, height: number, on: ReadonlySet<string>): number[] {
  const counts: number[] = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = on.has(`${x},${y}`) ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run++;
    }
  }
  counts.push(run);
  return counts;
}

interface CocoShape {
  images: Record<string, unknown>[];
  annotations: Record<string, unknown>[];
}

const cells = (x0: number, y0: number, w: number, h: number): string[] =>
  Array.from({ length: w * h }, (_, i) => `${x0 + (i % w)},${y0 + Math.floor(i / w)}`);

describe('CVAT COCO 1.0 import', () => {
  let dir: string;
  let images: string;
  let annotations: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-cvat-'));
    images = join(dir, 'export/images');
    await mkdir(join(images, 'sub'), { recursive: true });
    const solid = (width: number, height: number) =>
      sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 60 } } });
    await solid(40, 30).jpeg().toFile(join(images, 'frame_000.jpg'));
    await solid(20, 10).png().toFile(join(images, 'sub/frame_001.png'));
    await solid(16, 16).png().toFile(join(images, 'empty.png'));
    await mkdir(join(dir, 'export/annotations'), { recursive: true });
    annotations = join(dir, 'export/annotations/instances_default.json');
    // the mask: a 3 x 3 square at (2, 3) and a lone pixel at (10, 1)
    const mask = new Set([...cells(2, 3, 3, 3), '10,1']);
    const cat = (id: number, name: string) => ({ id, name, supercategory: '' });
    await writeFile(
      annotations,
      JSON.stringify({
        licenses: [{ name: '', id: 0, url: '' }],
        info: { contributor: '', date_created: '', description: '', url: '', version: '', year: '' },
        categories: [cat(1, 'car'), cat(3, 'person')],
        images: [
          {
            id: 1,
            width: 40,
            height: 30,
            file_name: 'frame_000.jpg',
            license: 0,
            flickr_url: '',
            coco_url: '',
            date_captured: 0,
          },
          {
            id: 2,
            width: 20,
            height: 10,
            file_name: 'sub/frame_001.png',
            license: 0,
            flickr_url: '',
            coco_url: '',
            date_captured: 0,
          },
          {
            id: 3,
            width: 16,
            height: 16,
            file_name: 'empty.png',
            license: 0,
            flickr_url: '',
            coco_url: '',
            date_captured: 0,
          },
        ],
        annotations: [
          {
            id: 1,
            image_id: 1,
            category_id: 3,
            segmentation: [[5.5, 4.25, 20.1, 4.25, 12.75, 18.0]],
            area: 107.31,
            bbox: [5.5, 4.25, 14.6, 13.75],
            iscrowd: 0,
            attributes: { occluded: false, color: 'red' },
          },
          {
            id: 2,
            image_id: 1,
            category_id: 1,
            segmentation: [],
            area: 60.0,
            bbox: [30.0, 20.0, 10.0, 6.0],
            iscrowd: 0,
            attributes: { occluded: true, rotation: 0.0 },
          },
          {
            id: 3,
            image_id: 2,
            category_id: 1,
            segmentation: { size: [10, 20], counts: rleOf(20, 10, mask) },
            area: 10.0,
            bbox: [2.0, 1.0, 9.0, 5.0],
            iscrowd: 1,
            attributes: { occluded: false },
          },
        ],
      }),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps polygons, boxes and attributes, traces the crowd RLE into polygons, and maps category ids 1, 3 to 1, 2', async () => {
    const out = join(dir, 'ds');
    const result = await importCvatCoco(storage, [annotations], { images, out });
    assert.deepEqual(result.categories, [
      { id: 1, name: 'car' },
      { id: 2, name: 'person' },
    ]);
    assert.deepEqual(result.counts, {
      train: { images: 3, annotations: 3 },
      val: { images: 0, annotations: 0 },
    });
    assert.deepEqual(result.warnings, ['1 RLE mask(s) traced into polygons']);
    const read = await readGeobatchDataset(storage, out);
    assert.equal(read.imagesRoot, images);
    const train = read.splits.find((s) => s.split === 'train')!.coco;
    assert.deepEqual(
      train.images.map((i) => [i.id, i.file_name, i.width, i.height]),
      [
        [1, 'frame_000.jpg', 40, 30],
        [2, 'sub/frame_001.png', 20, 10],
        [3, 'empty.png', 16, 16],
      ],
    );
    const [polygon, box, crowd] = train.annotations;
    assert.deepEqual(polygon!.segmentation, [[5.5, 4.25, 20.1, 4.25, 12.75, 18]]);
    assert.deepEqual(
      [polygon!.category_id, polygon!.bbox, polygon!.iscrowd],
      [2, [5.5, 4.25, 14.6, 13.75], 0],
    );
    assert.deepEqual(polygon!.attributes, { occluded: false, color: 'red' });
    assert.equal(box!.segmentation, undefined);
    assert.deepEqual([box!.category_id, box!.bbox, box!.area], [1, [30, 20, 10, 6], 60]);
    assert.deepEqual([crowd!.image_id, crowd!.iscrowd, crowd!.bbox, crowd!.area], [2, 1, [2, 1, 9, 5], 10]);
    // one ring per region, along pixel edges (order and start as traced; compare as point sets)
    const rings = (crowd!.segmentation as number[][]).map((r) =>
      Array.from({ length: r.length / 2 }, (_, i) => `${r[2 * i]},${r[2 * i + 1]}`).sort(),
    );
    assert.deepEqual(
      rings.sort((a, b) => a.length - b.length || (a[0]! < b[0]! ? -1 : 1)),
      [
        ['10,1', '10,2', '11,1', '11,2'],
        ['2,3', '2,6', '5,3', '5,6'],
      ],
    );
    // and it exports to YOLO as polygons
    const yolo = join(dir, 'yolo');
    const exported = await exportYolo(storage, { dataset: out, out: yolo });
    assert.equal(exported.task, 'segment');
    assert.deepEqual(exported.counts.train, { images: 3, objects: 3 });
  });

  it('decodes pycocotools compressed counts', () => {
    // runs 40 background, 2 object, 18 background on a 6 x 10 image: "X1" is 40 in 5-bit groups
    assert.deepEqual(decodeRleString('X12b0'), [40, 2, 18]);
    const mask = rleToPolygons(parseRle({ size: [6, 10], counts: 'X12b0' }))!;
    assert.deepEqual([mask.bbox, mask.area, mask.polygons.length], [[6, 4, 1, 2], 2, 1]);
  });

  it('takes the split from instances_<subset>.json', async () => {
    const val = join(dir, 'export/annotations/instances_Validation.json');
    await writeFile(
      val,
      JSON.stringify({
        categories: [{ id: 1, name: 'car', supercategory: '' }],
        images: [{ id: 1, width: 16, height: 16, file_name: 'empty.png' }],
        annotations: [],
      }),
    );
    const r = await geobatch([
      'dataset',
      'import',
      '--from',
      'cvat-coco',
      annotations,
      val,
      '--images',
      images,
      '--out',
      join(dir, 'two'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as { counts: Record<string, { images: number }> };
    assert.deepEqual(printed.counts.val, { images: 1, annotations: 0 });
    assert.equal(printed.counts.train!.images, 3);
  });

  for (const [name, change, expected] of [
    [
      'a missing image',
      (c: CocoShape) => (c.images[2]!.file_name = 'gone.png'),
      /instances_default\.json: images\[2\] 'gone\.png' is not in --images .* \(expected .*gone\.png\)/,
    ],
    [
      'a wrong image size',
      (c: CocoShape) => (c.images[0]!.width = 41),
      /images\[0\] 'frame_000\.jpg' is 41 x 30 in the annotations but 40 x 30 in .*; is --images the right folder\?/,
    ],
    [
      'an RLE of the wrong size',
      (c: CocoShape) => ((c.annotations[2]!.segmentation as Record<string, unknown>).size = [10, 21]),
      /annotations\[2\] \(id 3\): segmentation: counts add up to 200 pixels; expected height x width = 210/,
    ],
  ] as const) {
    it(`refuses ${name}, leaving nothing`, async () => {
      const { readFile } = await import('node:fs/promises');
      const coco = JSON.parse(await readFile(annotations, 'utf8')) as CocoShape;
      change(coco);
      const bad = join(dir, `instances_bad.json`);
      await writeFile(bad, JSON.stringify(coco));
      const out = join(dir, 'bad');
      await assert.rejects(importCvatCoco(storage, [bad], { images, out }), (error: Error) => {
        assert.ok(error instanceof DatasetError);
        assert.match(error.message.replace('instances_bad', 'instances_default'), expected);
        return true;
      });
      assert.ok(!existsSync(out));
    });
  }
});
