// YOLO export and import: a round trip of a dataset built from real data, a YOLO folder written
// by hand as the Ultralytics docs lay it out, bad label files, and the CLI.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { parse as parseYaml } from 'yaml';
import { DatasetError } from '../../lib/dataset/errors.js';
import { readGeobatchDataset } from '../../lib/dataset/exchange.js';
import type { DatasetAnnotation, DatasetCoco } from '../../lib/dataset/merge.js';
import { exportYolo, importYolo } from '../../lib/dataset/yolo.js';
import {
  joinPolygonParts,
  labelPathOf,
  parseYoloLine,
  polygonArea,
  yoloBoxLine,
  yoloDecimals,
} from '../../lib/dataset/yolo-format.js';
import { createStorage } from '../../lib/storage/index.js';
import { buildDataset } from '../../lib/dataset/build.js';
import { geobatch } from '../helpers/cli.js';
import { startS3rver } from '../helpers/s3rver.js';
import { buildRealDataset } from './exchange-fixtures.js';

const storage = createStorage();

function polygonsOf(a: DatasetAnnotation): number[][] {
  return Array.isArray(a.segmentation) ? (a.segmentation as number[][]) : [];
}

function assertClose(actual: readonly number[], expected: readonly number[], what: string): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: ${actual.length} values, expected ${expected.length}`,
  );
  actual.forEach((v, i) =>
    assert.ok(
      Math.abs(v - expected[i]!) <= 0.01 + 1e-9,
      `${what}[${i}]: ${v}, expected ${expected[i]} (within 0.01 px)`,
    ),
  );
}

/** The exported name of a dataset file_name (folders called images dropped). */
function flat(fileName: string): string {
  return fileName
    .split('/')
    .filter((s) => s !== 'images')
    .join('/');
}

/** Per split: flattened image name -> [image, its annotations in order]. */
function byName(
  coco: DatasetCoco,
  strip: (name: string) => string,
): Map<string, [DatasetCoco['images'][number], DatasetAnnotation[]]> {
  const out = new Map<string, [DatasetCoco['images'][number], DatasetAnnotation[]]>();
  for (const image of coco.images)
    out.set(strip(image.file_name), [image, coco.annotations.filter((a) => a.image_id === image.id)]);
  return out;
}

describe('YOLO export and import of a dataset built from real data', () => {
  let dir: string;
  let dataset: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-yolo-'));
    dataset = await buildRealDataset(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('segment: data.yaml, one label file per image (empty without objects), and back with every polygon within 0.01 px', async () => {
    const out = join(dir, 'yolo-seg');
    const result = await exportYolo(storage, { dataset, out });
    assert.equal(result.task, 'segment'); // the dataset has polygons
    const source = await readGeobatchDataset(storage, dataset);
    const data = parseYaml(await readFile(join(out, 'data.yaml'), 'utf8')) as Record<string, unknown>;
    assert.equal(data.path, out);
    assert.equal(data.train, 'images/train');
    assert.equal(data.val, 'images/val');
    assert.equal(data.nc, source.categories.length);
    assert.deepEqual(data.names, Object.fromEntries(source.categories.map((c, i) => [i, c.name])));
    assert.deepEqual(
      source.categories.map((c) => c.name),
      ['building', 'car', 'human'],
    );
    assert.ok(!existsSync(join(dir, '.yolo-seg.partial')));

    let empty = 0;
    let multiPoint = 0;
    for (const { split, coco } of source.splits) {
      for (const image of coco.images) {
        const name = flat(image.file_name);
        const labels = await readFile(join(out, 'labels', split, name.replace(/\.png$/, '.txt')), 'utf8');
        const lines = labels.split('\n').filter(Boolean);
        assert.equal(lines.length, coco.annotations.filter((a) => a.image_id === image.id).length, name);
        if (lines.length === 0) empty++;
        for (const line of lines) {
          const [k, ...coords] = line.split(' ');
          assert.ok(Number(k) >= 0 && Number(k) < source.categories.length);
          assert.ok(coords.length >= 6 && coords.length % 2 === 0);
          for (const c of coords)
            assert.ok(Number(c) >= 0 && Number(c) <= 1 && (c.split('.')[1] ?? '').length <= 6, c);
          multiPoint += coords.length > 8 ? 1 : 0;
        }
        const copied = await readFile(join(out, 'images', split, name));
        assert.ok(copied.equals(await readFile(join(source.imagesRoot, image.file_name))));
      }
    }
    assert.ok(empty > 0, 'terrain2 has chips without objects');
    assert.ok(multiPoint > 0, 'SpaceNet footprints are more than boxes');

    const back = join(dir, 'back-seg');
    const imported = await importYolo(storage, out, { out: back });
    const again = await readGeobatchDataset(storage, back);
    assert.deepEqual(again.categories, source.categories);
    assert.deepEqual(imported.categories, source.categories);
    assert.equal(again.imagesRoot, out);
    let compared = 0;
    for (const { split, coco } of source.splits) {
      const theirs = again.splits.find((s) => s.split === split)!.coco;
      const before = byName(coco, flat);
      const after = byName(theirs, (n) => n.replace(`images/${split}/`, ''));
      assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
      for (const [name, [image, annotations]] of before) {
        const [image2, annotations2] = after.get(name)!;
        assert.deepEqual([image2.width, image2.height], [image.width, image.height]);
        assert.equal(annotations2.length, annotations.length);
        annotations.forEach((a, i) => {
          const b = annotations2[i]!;
          assert.equal(b.category_id, a.category_id);
          assertClose(b.bbox, a.bbox, `${name} bbox ${i}`);
          assert.equal(polygonsOf(a).length, 1);
          assertClose(polygonsOf(b)[0]!, polygonsOf(a)[0]!, `${name} polygon ${i}`);
          compared++;
        });
      }
    }
    assert.equal(
      compared,
      source.splits.reduce((n, s) => n + s.coco.annotations.length, 0),
    );
    assert.ok(compared > 40);
  });

  it('detect with hard links: boxes back within 0.01 px, images the same files', async () => {
    const out = join(dir, 'yolo-det');
    const result = await exportYolo(storage, { dataset, out, task: 'detect', images: 'link' });
    assert.equal(result.task, 'detect');
    const source = await readGeobatchDataset(storage, dataset);
    const back = join(dir, 'back-det');
    await importYolo(storage, join(out, 'data.yaml'), { out: back });
    const again = await readGeobatchDataset(storage, back);
    for (const { split, coco } of source.splits) {
      const theirs = byName(again.splits.find((s) => s.split === split)!.coco, (n) =>
        n.replace(`images/${split}/`, ''),
      );
      for (const [name, [image, annotations]] of byName(coco, flat)) {
        const linked = await stat(join(out, 'images', split, name));
        assert.equal(linked.ino, (await stat(join(source.imagesRoot, image.file_name))).ino);
        const [, annotations2] = theirs.get(name)!;
        assert.equal(annotations2.length, annotations.length);
        annotations.forEach((a, i) => {
          assertClose(annotations2[i]!.bbox, a.bbox, `${name} bbox ${i}`);
          assert.equal(annotations2[i]!.segmentation, undefined);
        });
      }
    }
  });

  it('the CLI exports with symlinks, refuses to overwrite, and imports back', async () => {
    const out = join(dir, 'yolo-cli');
    const r = await geobatch([
      'dataset',
      'export',
      '--format',
      'yolo',
      '--out',
      out,
      '--images',
      'symlink',
      '--json',
      dataset,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as { task: string; counts: Record<string, { images: number }> };
    assert.equal(printed.task, 'segment');
    const train = join(out, 'images/train');
    const scene = (await readdir(train))[0]!;
    const file = (await readdir(join(train, scene)))[0]!;
    assert.ok((await lstat(join(train, scene, file))).isSymbolicLink());
    assert.ok((await readlink(join(train, scene, file))).startsWith('/'));

    const rerun = await geobatch(['dataset', 'export', '--out', out, dataset]);
    assert.equal(rerun.code, 1);
    assert.match(
      rerun.stderr,
      /^geobatch: --out .*yolo-cli: already exists and is not empty; remove it or choose another folder\n$/,
    );

    const back = join(dir, 'back-cli');
    const i = await geobatch(['dataset', 'import', '--from', 'yolo', out, '--out', back]);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /dataset import \(yolo\): 3 categories\n {2}train \d+ images, \d+ annotations/);
    const manifest = JSON.parse(await readFile(join(back, 'dataset.json'), 'utf8')) as {
      source: { format: string };
    };
    assert.equal(manifest.source.format, 'yolo');
    // exported again, the images keep their names (no images/train/train/...)
    const twice = join(dir, 'yolo-twice');
    await exportYolo(storage, { dataset: back, out: twice, images: 'symlink' });
    assert.deepEqual(await readdir(join(twice, 'images/train')), await readdir(train));
    assert.deepEqual(
      await readdir(join(twice, 'labels/train', scene)),
      await readdir(join(out, 'labels/train', scene)),
    );
  });
  it('exports a dataset on S3 (s3rver): images copied down; links refused', async () => {
    const s3 = await startS3rver();
    try {
      const bucket = await s3.createBucket();
      const remote = createStorage({ s3: s3.clientConfig, cacheDir: join(dir, 'cache') });
      const chips = join(dir, 'chips');
      const files: string[] = [];
      const walk = async (d: string): Promise<void> => {
        for (const e of await readdir(d, { withFileTypes: true }))
          if (e.isDirectory()) await walk(join(d, e.name));
          else files.push(join(d, e.name));
      };
      await walk(chips);
      for (const f of files)
        await remote.writeAtomic(`s3://${bucket}/chips/${relative(chips, f)}`, await readFile(f));
      const ds = `s3://${bucket}/dataset`;
      await buildDataset(remote, {
        inputs: [`s3://${bucket}/chips`],
        out: ds,
        val: 0.34,
        seed: 1,
        contactSheet: 0,
      });
      const out = join(dir, 'yolo-s3');
      const result = await exportYolo(remote, { dataset: ds, out });
      const local = await readGeobatchDataset(storage, dataset);
      assert.deepEqual(
        result.counts,
        Object.fromEntries(
          local.splits.map((s) => [
            s.split,
            { images: s.coco.images.length, objects: s.coco.annotations.length },
          ]),
        ),
      );
      for (const { split, coco } of local.splits)
        for (const image of coco.images)
          assert.ok(
            (await readFile(join(out, 'images', split, flat(image.file_name)))).equals(
              await readFile(join(local.imagesRoot, image.file_name)),
            ),
          );
      await assert.rejects(
        exportYolo(remote, { dataset: ds, out: join(dir, 'yolo-s3-link'), images: 'symlink' }),
        /--images symlink: s3:\/\/.* is on S3; links need local images \(use --images copy\)/,
      );
      assert.ok(!existsSync(join(dir, 'yolo-s3-link')) && !existsSync(join(dir, '.yolo-s3-link.partial')));
    } finally {
      await s3.stop();
    }
  });
});

describe('YOLO import of a folder written by hand, as the Ultralytics docs lay it out', () => {
  let dir: string;
  let root: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-yolo-hand-'));
    root = join(dir, 'datasets/pets');
    for (const d of ['images/train', 'images/val', 'labels/train', 'labels/val'])
      await mkdir(join(root, d), { recursive: true });
    const solid = (width: number, height: number) =>
      sharp({ create: { width, height, channels: 3, background: { r: 10, g: 200, b: 90 } } });
    await solid(640, 480).jpeg().toFile(join(root, 'images/train/a.jpg'));
    await solid(100, 50).png().toFile(join(root, 'images/train/b.png'));
    await solid(64, 64).png().toFile(join(root, 'images/val/c.png'));
    await writeFile(
      join(root, 'data.yaml'),
      ['train: images/train', 'val: images/val', 'names:', '  0: cat', '  1: dog', ''].join('\n'),
    );
    await writeFile(join(root, 'labels/train/a.txt'), '0 0.5 0.5 0.25 0.5\n1 0.125 0.25 0.05 0.1\n');
    await writeFile(join(root, 'labels/train/b.txt'), '1 0.1 0.1 0.2 0.1 0.2 0.3\n\n');
    // c.png has no label file: background
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads boxes and polygons at the expected pixels; a missing label file is an image without objects', async () => {
    const out = join(dir, 'ds');
    const result = await importYolo(storage, root, { out });
    assert.deepEqual(result.categories, [
      { id: 1, name: 'cat' },
      { id: 2, name: 'dog' },
    ]);
    assert.deepEqual(result.warnings, [
      '1 image(s) without a label file: imported without objects (as Ultralytics treats them)',
    ]);
    const read = await readGeobatchDataset(storage, out);
    const train = read.splits.find((s) => s.split === 'train')!.coco;
    assert.deepEqual(
      train.images.map((i) => [i.file_name, i.width, i.height]),
      [
        ['images/train/a.jpg', 640, 480],
        ['images/train/b.png', 100, 50],
      ],
    );
    assert.deepEqual(
      train.annotations.map((a) => [a.image_id, a.category_id, a.bbox, a.area, a.segmentation]),
      [
        [1, 1, [240, 120, 160, 240], 38400, undefined],
        [1, 2, [64, 96, 32, 48], 1536, undefined],
        [2, 2, [10, 5, 10, 10], 50, [[10, 5, 20, 5, 20, 15]]],
      ],
    );
    const val = read.splits.find((s) => s.split === 'val')!.coco;
    assert.deepEqual(
      val.images.map((i) => i.file_name),
      ['images/val/c.png'],
    );
    assert.equal(val.annotations.length, 0);
  });

  for (const [name, label, expected] of [
    [
      'a line with 4 numbers',
      '0 0.5 0.5 0.25\n',
      /labels\/train\/a\.txt:1: 4 values; expected 5 \(class cx cy w h\) or an odd number/,
    ],
    [
      'a class index beyond names',
      '0 0.5 0.5 0.1 0.1\n2 0.5 0.5 0.1 0.1\n',
      /labels\/train\/a\.txt:2: class 2 is not a class index: expected an integer in \[0, 1\] \(data\.yaml names 2 classes\)/,
    ],
    [
      'a coordinate outside [0, 1]',
      '\n1 0.5 1.2 0.1 0.1\n',
      /labels\/train\/a\.txt:2: cy = 1\.2 is outside \[0, 1\]; expected coordinates normalised by the image size/,
    ],
    ['a word for a number', '0 0.5 x 0.1 0.1\n', /labels\/train\/a\.txt:1: 'x' is not a number/],
  ] as const) {
    it(`refuses ${name} with the file and line number, leaving nothing`, async () => {
      const saved = await readFile(join(root, 'labels/train/a.txt'), 'utf8');
      await writeFile(join(root, 'labels/train/a.txt'), label);
      const out = join(dir, `bad-${name.replaceAll(' ', '-')}`);
      try {
        await assert.rejects(importYolo(storage, root, { out }), (error: Error) => {
          assert.ok(error instanceof DatasetError);
          assert.match(error.message, expected);
          assert.ok(error.message.startsWith(join(root, 'labels/train/a.txt')));
          return true;
        });
        assert.ok(!existsSync(out));
        assert.ok(!existsSync(join(dir, `.${name.replaceAll(' ', '-')}.partial`)));
      } finally {
        await writeFile(join(root, 'labels/train/a.txt'), saved);
      }
    });
  }

  it('refuses an image list naming a missing image', async () => {
    const yaml = join(root, 'list.yaml');
    await writeFile(join(root, 'train.txt'), './images/train/a.jpg\n./images/train/gone.jpg\n');
    await writeFile(yaml, ['train: train.txt', 'val: images/val', 'names: [cat, dog]', ''].join('\n'));
    const r = await geobatch(['dataset', 'import', '--from', 'yolo', yaml, '--out', join(dir, 'missing')]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `geobatch: ${join(root, 'images/train/gone.jpg')}: image listed in ${yaml} (train) does not exist\n`,
    );
    assert.ok(!existsSync(join(dir, 'missing')));
  });
});

describe('YOLO lines', () => {
  it('uses 6 decimals up to 5,000 px and 7 beyond, so 0.01 px survives on a 40,000 px scene', () => {
    assert.equal(yoloDecimals(450), 6);
    assert.equal(yoloDecimals(5000), 6);
    assert.equal(yoloDecimals(40000), 7);
    const bbox = [12345.67, 39000.01, 543.21, 0.37];
    const line = yoloBoxLine(3, bbox, 40000, 40000);
    const back = parseYoloLine(line, 4, 40000, 40000);
    assert.equal(back.kind, 'box');
    assert.deepEqual(back.kind === 'box' ? back.bbox : [], bbox);
  });

  it('joins the parts of a polygon into one ring of the same area', () => {
    const a = [0, 0, 10, 0, 10, 10, 0, 10];
    const b = [20, 0, 30, 0, 30, 5, 20, 5];
    const ring = joinPolygonParts([a, b]);
    assert.equal(polygonArea(ring), polygonArea(a) + polygonArea(b));
    assert.equal(ring.length, a.length + b.length + 4);
  });

  it('finds label files where Ultralytics does', () => {
    assert.equal(labelPathOf('/d/images/train/x/images/a.b.jpg'), '/d/images/train/x/labels/a.b.txt');
    assert.equal(labelPathOf('/d/img/a.jpg'), undefined);
  });
});
