// Scenes chipped in parts (a chip stage with tasksPerItem, `chip slice --part k/n`): a scene
// folder with annotations.part-<k>-of-<n>.json for k = 1..n reads as the scene's whole COCO.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildDataset, SPLITS, type DatasetManifest } from '../../lib/dataset/build.js';
import { DatasetError } from '../../lib/dataset/errors.js';
import type { DatasetCoco } from '../../lib/dataset/merge.js';
import { findSceneFolders, readSceneShard } from '../../lib/dataset/shards.js';
import { createStorage } from '../../lib/storage/index.js';
import { cocoParts, sceneCoco, splitSceneFolder, writeScenes, type FixtureScene } from './fixtures.js';

const storage = createStorage();

/** `n` scenes of 5 chips each (car id 1, house id 2), annotations on chips 0, 2, 3 and 4. */
function fiveChipScenes(n: number): FixtureScene[] {
  return Array.from({ length: n }, (_, i) => {
    const scene = `scene-${String(i + 1).padStart(2, '0')}`;
    return {
      scene,
      categories: [
        { id: 1, name: 'car' },
        { id: 2, name: 'house' },
      ],
      chips: [
        { name: `${scene}_0.png`, boxes: [[1, 2, 2, 10, 8]] },
        { name: `${scene}_1.png`, boxes: [] },
        {
          name: `${scene}_2.png`,
          boxes: [
            [2, 1, 1, 5, 5],
            [1, 9, 9, 3, 3],
          ],
        },
        { name: `${scene}_3.png`, boxes: [[2, 4, 4, 6, 6]] },
        { name: `${scene}_4.png`, boxes: [[1, 0, 0, 2, 2]] },
      ],
    };
  });
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

/** The DatasetError `promise` rejects with. */
async function datasetError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DatasetError) return error.message;
    throw error;
  }
  assert.fail('expected a DatasetError');
}

describe('a scene chipped in parts', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-parts-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads as the whole scene: parts joined in part order (1, 2, .., 10, 11), not name order', async () => {
    const root = join(dir, 'order');
    const [whole, split] = await writeScenes(root, fiveChipScenes(2));
    // 11 parts, some empty: listed by name, part 10 and 11 come before part 2
    const names = await splitSceneFolder(split!, [0, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
    assert.equal(names.length, 11);
    const a = await readSceneShard(storage, whole!);
    const b = await readSceneShard(storage, split!);
    assert.deepEqual(b.images, (sceneCoco(fiveChipScenes(2)[1]!) as DatasetCoco).images);
    assert.deepEqual(
      b.annotations.map((x) => [x.id, x.image_id]),
      a.annotations.map((x) => [x.id, x.image_id]),
    );
    assert.deepEqual(b.categories, a.categories);
    assert.deepEqual(
      b.annotationsUris,
      Array.from({ length: 11 }, (_, k) => join(split!, `annotations.part-${k + 1}-of-11.json`)),
    );
    assert.deepEqual(a.annotationsUris, [join(whole!, 'annotations.json')]);
  });

  it('is found as a scene folder, given directly or under a parent', async () => {
    const root = join(dir, 'find');
    const folders = await writeScenes(root, fiveChipScenes(3));
    await splitSceneFolder(folders[1]!, [2, 5]);
    assert.deepEqual(await findSceneFolders(storage, [root]), folders);
    assert.deepEqual(await findSceneFolders(storage, [folders[1]!]), [folders[1]!]);
  });

  it('prefers annotations.json when a folder has both', async () => {
    const root = join(dir, 'both');
    const [folder] = await writeScenes(root, fiveChipScenes(1));
    const coco = await readJson<object>(join(folder!, 'annotations.json'));
    // a stale, incomplete part next to the whole file is not read
    await writeFile(
      join(folder!, 'annotations.part-1-of-2.json'),
      JSON.stringify(cocoParts(coco, [1, 5]).values().next().value),
    );
    const shard = await readSceneShard(storage, folder!);
    assert.equal(shard.images.length, 5);
    assert.deepEqual(shard.annotationsUris, [join(folder!, 'annotations.json')]);
  });

  describe('an unusable set of parts is an error naming the folder and files', () => {
    /** A one-scene folder split in parts `ends`, then changed by `change`. */
    async function brokenScene(
      name: string,
      ends: number[],
      change: (folder: string) => Promise<void>,
    ): Promise<string> {
      const [folder] = await writeScenes(join(dir, name), fiveChipScenes(1));
      await splitSceneFolder(folder!, ends);
      await change(folder!);
      return folder!;
    }

    it('a missing part', async () => {
      const folder = await brokenScene('missing', [1, 2, 3, 5], (f) =>
        rm(join(f, 'annotations.part-2-of-4.json')).then(() => rm(join(f, 'annotations.part-4-of-4.json'))),
      );
      const message = `${folder}: incomplete set of parts: 2 of 4 present, missing annotations.part-2-of-4.json, annotations.part-4-of-4.json (has every task of the chip stage finished?)`;
      assert.equal(await datasetError(readSceneShard(storage, folder)), message);
      // the same through dataset build and the merge job
      assert.equal(
        await datasetError(buildDataset(storage, { inputs: [folder], out: join(dir, 'out-missing') })),
        message,
      );
    });

    it('parts of two different splits', async () => {
      const folder = await brokenScene('mixed', [2, 5], async (f) => {
        await writeFile(
          join(f, 'annotations.part-1-of-3.json'),
          await readFile(join(f, 'annotations.part-1-of-2.json')),
        );
      });
      assert.equal(
        await datasetError(readSceneShard(storage, folder)),
        `${folder}: part files of 2 different splits (annotations.part-1-of-2.json, annotations.part-2-of-2.json; annotations.part-1-of-3.json); expected one set k = 1..n of the same n`,
      );
    });

    it('a part number above the count', async () => {
      const folder = await brokenScene('above', [2, 5], (f) =>
        writeFile(join(f, 'annotations.part-3-of-2.json'), '{}'),
      );
      assert.equal(
        await datasetError(readSceneShard(storage, folder)),
        `${join(folder, 'annotations.part-3-of-2.json')}: part 3 of 2 does not exist; expected annotations.part-1-of-2.json .. annotations.part-2-of-2.json`,
      );
    });

    it('categories that differ between parts', async () => {
      const folder = await brokenScene('categories', [2, 5], async (f) => {
        const uri = join(f, 'annotations.part-2-of-2.json');
        const coco = await readJson<{ categories: { id: number; name: string }[] }>(uri);
        coco.categories[1]!.name = 'shed';
        await writeFile(uri, JSON.stringify(coco));
      });
      assert.equal(
        await datasetError(readSceneShard(storage, folder)),
        `${join(folder, 'annotations.part-2-of-2.json')}: its categories differ from those of ${join(folder, 'annotations.part-1-of-2.json')}; expected every part of scene 'scene-01' to list the same categories`,
      );
    });

    it('an image id in two parts', async () => {
      const folder = await brokenScene('ids', [2, 5], async (f) => {
        const uri = join(f, 'annotations.part-2-of-2.json');
        const coco = await readJson<{ images: { id: number }[]; annotations: { image_id: number }[] }>(uri);
        for (const a of coco.annotations) if (a.image_id === coco.images[0]!.id) a.image_id = 1;
        coco.images[0]!.id = 1;
        await writeFile(uri, JSON.stringify(coco));
      });
      assert.equal(
        await datasetError(readSceneShard(storage, folder)),
        `${join(folder, 'annotations.part-2-of-2.json')}: image id 1 is also in ${join(folder, 'annotations.part-1-of-2.json')}; expected the parts of a scene to number their images as one run does`,
      );
    });

    it('a bad part is checked like annotations.json, naming the part file', async () => {
      const folder = await brokenScene('bad', [2, 5], (f) =>
        writeFile(join(f, 'annotations.part-2-of-2.json'), '{"images": [], "annotations": []}'),
      );
      assert.equal(
        await datasetError(readSceneShard(storage, folder)),
        `${join(folder, 'annotations.part-2-of-2.json')}: 'categories' is missing; expected an array`,
      );
    });
  });

  it('lands whole in one split: the dataset equals the one built from the unsplit scenes, for any seed', async () => {
    // GIVEN 7 scenes, and a copy of them where 4 are split into parts (one with an empty part)
    const whole = join(dir, 'split-whole');
    const parts = join(dir, 'split-parts');
    const folders = await writeScenes(whole, fiveChipScenes(7));
    await cp(whole, parts, { recursive: true });
    const splitScenes = ['scene-01', 'scene-03', 'scene-04', 'scene-07'];
    const cuts = [
      [2, 5],
      [1, 3, 5],
      [0, 5],
      [1, 2, 3, 4, 5],
    ];
    for (const [i, scene] of splitScenes.entries()) await splitSceneFolder(join(parts, scene), cuts[i]!);
    assert.equal(folders.length, 7);

    for (const seed of [0, 1, 2, 3, 4]) {
      // WHEN both are built with the same fractions and seed
      const options = { val: 0.3, test: 0.15, seed, contactSheet: 0 };
      const a = await buildDataset(storage, {
        inputs: [whole],
        out: join(dir, `out-whole-${seed}`),
        ...options,
      });
      const b = await buildDataset(storage, {
        inputs: [parts],
        out: join(dir, `out-parts-${seed}`),
        ...options,
      });
      // THEN the same scenes are in each split, with the same chips and annotations
      assert.deepEqual(b.manifest.scenes, a.manifest.scenes, `seed ${seed}`);
      assert.deepEqual(b.manifest.counts, a.manifest.counts, `seed ${seed}`);
      for (const split of SPLITS) {
        const ca = await readJson<DatasetCoco>(join(dir, `out-whole-${seed}`, `${split}.json`));
        const cb = await readJson<DatasetCoco>(join(dir, `out-parts-${seed}`, `${split}.json`));
        assert.deepEqual(cb, ca, `seed ${seed}, ${split}`);
        // every chip of a split scene is in the split that lists the scene
        const listed = (b.manifest as DatasetManifest).scenes[split] ?? [];
        assert.ok(
          cb.images.every((image) => listed.includes(image.scene)),
          `seed ${seed}, ${split}`,
        );
      }
      for (const scene of splitScenes) {
        const homes = SPLITS.filter((split) => b.manifest.scenes[split]?.includes(scene));
        assert.equal(homes.length, 1, `${scene} is in exactly one split (seed ${seed})`);
      }
    }
  });
});
