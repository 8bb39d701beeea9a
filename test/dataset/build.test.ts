import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { buildDataset, type DatasetManifest } from '../../lib/dataset/build.js';
import { DatasetError } from '../../lib/dataset/errors.js';
import type { DatasetCoco } from '../../lib/dataset/merge.js';
import { createStorage } from '../../lib/storage/index.js';
import { SIZE, simpleScenes, writeScenes, type FixtureScene } from './fixtures.js';

const storage = createStorage();

// Three scenes whose shards disagree on category ids: car is 1 in alpha, 7 in beta; house is 2
// in alpha, 5 in beta; gamma calls id 2 'truck'. tree (beta) has no annotations.
const scenes: FixtureScene[] = [
  {
    scene: 'alpha',
    categories: [
      { id: 1, name: 'car' },
      { id: 2, name: 'house' },
    ],
    chips: [
      {
        name: 'alpha_0.png',
        boxes: [
          [1, 1, 1, 10, 10],
          [2, 20, 20, 30, 30],
        ],
      },
      { name: 'alpha_1.png', boxes: [] },
      { name: 'alpha_2.png', boxes: [[2, 0, 0, 8, 4]] },
    ],
  },
  {
    scene: 'beta',
    categories: [
      { id: 5, name: 'house' },
      { id: 7, name: 'car' },
      { id: 9, name: 'tree' },
    ],
    chips: [
      { name: 'beta_0.png', boxes: [[7, 5, 5, 6, 6]] },
      {
        name: 'beta_1.png',
        boxes: [
          [5, 3, 3, 12, 12],
          [7, 40, 40, 4, 4],
          [7, 50, 50, 2, 2],
        ],
      },
    ],
  },
  {
    scene: 'gamma',
    categories: [
      { id: 1, name: 'car' },
      { id: 2, name: 'truck' },
    ],
    chips: [{ name: 'gamma_0.png', boxes: [[2, 10, 10, 20, 9]] }],
  },
];

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

describe('buildDataset', () => {
  let dir: string;
  let chips: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-dataset-'));
    chips = join(dir, 'chips');
    await writeScenes(chips, scenes);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('merges shards split by scene, with dense ids, unified categories and file names under imagesRoot', async () => {
    const out = join(dir, 'ds');
    const result = await buildDataset(storage, { inputs: [chips], out, val: 0.34, seed: 1 });
    const m = await readJson<DatasetManifest>(join(out, 'dataset.json'));
    assert.deepEqual(m, JSON.parse(JSON.stringify(result.manifest)));
    assert.equal(result.outputs.at(-1), join(out, 'dataset.json'), 'manifest written last');
    assert.equal(m.imagesRoot, chips);
    assert.deepEqual(m.splits, { train: 'train.json', val: 'val.json' });
    assert.equal(m.scenes.val.length, 1);
    assert.deepEqual([...m.scenes.train, ...m.scenes.val].sort(), ['alpha', 'beta', 'gamma']);
    // by name; ordered by the smallest source id, ties by name; tree has no annotations
    assert.deepEqual(m.categories, [
      { id: 1, name: 'car' },
      { id: 2, name: 'house' },
      { id: 3, name: 'truck' },
    ]);
    assert.ok(
      m.warnings.some((w) => /category 'car' has different ids: 1 in alpha, gamma; 7 in beta/.test(w)),
    );
    assert.ok(
      m.warnings.some((w) => /category id 2 has different names: 'house' in alpha; 'truck' in gamma/.test(w)),
    );

    const byName = new Map<string, { scene: FixtureScene; chip: FixtureScene['chips'][number] }>();
    for (const scene of scenes) for (const chip of scene.chips) byName.set(chip.name, { scene, chip });
    let total = 0;
    for (const split of ['train', 'val'] as const) {
      const coco = await readJson<DatasetCoco>(join(out, `${split}.json`));
      assert.deepEqual(coco.categories, m.categories);
      assert.deepEqual(
        coco.images.map((i) => i.id),
        coco.images.map((_, i) => i + 1),
      );
      assert.deepEqual(
        coco.annotations.map((a) => a.id),
        coco.annotations.map((_, i) => i + 1),
      );
      assert.deepEqual([...new Set(coco.images.map((i) => i.scene))].sort(), [...m.scenes[split]].sort());
      for (const image of coco.images) {
        assert.equal(image.file_name, `${image.scene}/images/${image.file_name.split('/').at(-1)}`);
        const bytes = await readFile(join(m.imagesRoot, image.file_name));
        assert.equal((await sharp(bytes).metadata()).width, SIZE);
        // each annotation points at its own image and its class name survives the id change
        const { scene, chip } = byName.get(image.file_name.split('/').at(-1)!)!;
        const mine = coco.annotations.filter((a) => a.image_id === image.id);
        const names = (ids: number[], cats: readonly { id: number; name: string }[]): string[] =>
          ids.map((id) => cats.find((c) => c.id === id)!.name);
        assert.deepEqual(
          mine.map((a) => [...names([a.category_id], m.categories), ...a.bbox]),
          chip.boxes.map(([c, ...box]) => [...names([c], scene.categories), ...box]),
        );
        total += mine.length;
      }
      assert.equal(m.counts[split]!.annotations, coco.annotations.length);
      assert.equal(m.counts[split]!.images, coco.images.length);
    }
    assert.equal(total, 8);
  });

  it('writes labels, stats and pictures of the expected size', async () => {
    const out = join(dir, 'ds');
    const csv = (await readFile(join(out, 'labels.csv'), 'utf8')).trimEnd().split('\n');
    assert.equal(csv[0], 'file_name,split,car,house,truck');
    assert.equal(csv.length, 1 + 6);
    const row = (name: string): string =>
      csv
        .find((l) => l.includes(`/${name},`))!
        .split(',')
        .slice(2)
        .join(',');
    assert.equal(row('alpha_0.png'), '1,1,0');
    assert.equal(row('alpha_1.png'), '0,0,0');
    assert.equal(row('beta_1.png'), '1,1,0');
    assert.equal(row('gamma_0.png'), '0,0,1');
    const stats = await readJson<{ total: { cooccurrence: number[][]; chipsWithoutLabels: number } }>(
      join(out, 'stats.json'),
    );
    assert.deepEqual(stats.total.cooccurrence, [
      [3, 2, 0],
      [2, 3, 0],
      [0, 0, 1],
    ]);
    assert.equal(stats.total.chipsWithoutLabels, 1);
    const sizes: Record<string, [number, number]> = {};
    for (const name of ['class-distribution.png', 'cooccurrence.png', 'contact-sheet.png']) {
      const meta = await sharp(await readFile(join(out, name))).metadata();
      assert.equal(meta.format, 'png');
      sizes[name] = [meta.width, meta.height];
    }
    // 6 chips on the sheet: 6 columns of 192 px tiles + 8 px gaps, one row, a one-line legend
    assert.deepEqual(sizes['contact-sheet.png'], [6 * 200 + 8, 34 + 230 + 8 + 22 + 8]);
    assert.ok(sizes['class-distribution.png']![0] > 600 && sizes['cooccurrence.png']![0] >= 360);
  });

  it('gives the same bytes for the same seed, and another split for another seed', async () => {
    const a = join(dir, 'same-a');
    const b = join(dir, 'same-b');
    await buildDataset(storage, {
      inputs: [join(chips, 'gamma'), join(chips, 'alpha'), join(chips, 'beta')],
      out: a,
      seed: 5,
    });
    await buildDataset(storage, { inputs: [chips], out: b, seed: 5 });
    const files = (await readdir(a)).sort();
    assert.deepEqual(files, (await readdir(b)).sort());
    for (const f of files) assert.ok((await readFile(join(a, f))).equals(await readFile(join(b, f))), f);
    const vals = new Set<string>();
    for (let seed = 0; seed < 8; seed++) {
      const r = await buildDataset(storage, {
        inputs: [chips],
        out: join(dir, 'seeds'),
        seed,
        contactSheet: 0,
      });
      vals.add(r.manifest.scenes.val.join());
    }
    assert.ok(vals.size > 1);
  });

  it('writes test.json with a test fraction, keeps every category with categories: all', async () => {
    const out = join(dir, 'with-test');
    const r = await buildDataset(storage, { inputs: [chips], out, val: 0.3, test: 0.3, categories: 'all' });
    assert.deepEqual(r.manifest.splits, { train: 'train.json', val: 'val.json', test: 'test.json' });
    assert.deepEqual(
      [r.manifest.scenes.train.length, r.manifest.scenes.val.length, r.manifest.scenes.test!.length],
      [1, 1, 1],
    );
    assert.deepEqual(
      r.manifest.categories.map((c) => c.name),
      ['car', 'house', 'truck', 'tree'],
    );
    assert.equal(JSON.parse(await readFile(join(out, 'test.json'), 'utf8')).images.length > 0, true);
  });

  it('copies the chips for a self-contained dataset, and skips copies already made', async () => {
    const out = join(dir, 'copied');
    const r = await buildDataset(storage, { inputs: [chips], out, copyImages: true, contactSheet: 2 });
    assert.equal(r.manifest.imagesRoot, join(out, 'images'));
    const coco = await readJson<DatasetCoco>(join(out, 'train.json'));
    for (const image of coco.images) {
      assert.match(image.file_name, /^(alpha|beta|gamma)\/\w+_\d\.png$/);
      assert.ok((await readFile(join(out, 'images', image.file_name))).length > 0);
    }
    const again = await buildDataset(storage, { inputs: [chips], out, copyImages: true, contactSheet: 2 });
    assert.deepEqual(again.manifest, r.manifest);
  });

  it('puts a single scene in train with a warning', async () => {
    const r = await buildDataset(storage, { inputs: [join(chips, 'alpha')], out: join(dir, 'one') });
    assert.deepEqual(r.manifest.scenes, { train: ['alpha'], val: [] });
    assert.equal(r.manifest.counts.val!.images, 0);
    assert.match(r.manifest.warnings[0]!, /only one scene \(alpha\)/);
    assert.equal(r.manifest.imagesRoot, chips);
  });

  it('rejects bad input with an error naming the file or option, and writes nothing', async () => {
    const bad = join(dir, 'bad');
    await mkdir(join(bad, 'empty'), { recursive: true });
    await mkdir(join(bad, 'broken', 'images'), { recursive: true });
    await writeFile(join(bad, 'broken', 'annotations.json'), '{"images": [');
    await mkdir(join(bad, 'dangling', 'images'), { recursive: true });
    await writeFile(
      join(bad, 'dangling', 'annotations.json'),
      JSON.stringify({
        images: [{ id: 1, file_name: 'a.png', width: 4, height: 4 }],
        categories: [{ id: 1, name: 'car' }],
        annotations: [{ id: 1, image_id: 2, category_id: 1, bbox: [0, 0, 1, 1], area: 1 }],
      }),
    );
    const cases: [Parameters<typeof buildDataset>[1], RegExp][] = [
      [
        { inputs: [join(bad, 'empty')], out: join(bad, 'o') },
        /empty: no annotations.json in it or in its direct subfolders/,
      ],
      [{ inputs: [join(bad, 'broken')], out: join(bad, 'o') }, /broken\/annotations.json: not valid JSON/],
      [
        { inputs: [join(bad, 'dangling')], out: join(bad, 'o') },
        /dangling\/annotations.json: annotations\[0\].image_id is 2; expected the id of an image/,
      ],
      [{ inputs: [chips], out: join(bad, 'o'), val: 0 }, /^val: expected a fraction in \(0, 1\) but got 0$/],
      [{ inputs: [chips], out: join(bad, 'o'), val: 0.6, test: 0.4 }, /^val \+ test: expected a sum below 1/],
      [{ inputs: [chips], out: join(bad, 'o'), seed: 1.5 }, /^seed: expected an integer/],
      [
        { inputs: [chips, join(chips, 'alpha')], out: join(bad, 'o'), contactSheet: -1 },
        /^contactSheet: expected an integer/,
      ],
    ];
    for (const [options, message] of cases) {
      await assert.rejects(
        buildDataset(storage, options),
        (e: unknown) => e instanceof DatasetError && message.test(e.message),
        String(message),
      );
    }
    await assert.rejects(readdir(join(bad, 'o')), { code: 'ENOENT' });
  });

  it('rejects two folders with the same scene name', async () => {
    const other = join(dir, 'other');
    await writeScenes(
      other,
      simpleScenes(1).map((s) => ({ ...s, scene: 'alpha' })),
    );
    await assert.rejects(
      buildDataset(storage, { inputs: [chips, join(other, 'alpha')], out: join(dir, 'dup') }),
      /scene 'alpha' found twice .*scene names \(folder names\) must be unique/,
    );
  });
});
