// A chip stage split into 3 tasks per scene (tasksPerItem) through `geobatch run`: demo scenes
// -> rgb -> xView COCO shards -> chips in parts -> merge. The same pipeline unsplit is the
// reference: same chips, same annotations, same dataset.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DatasetManifest } from '../../lib/dataset/build.js';
import type { TaskMarker } from '../../lib/runners/records.js';
import { chipPipeline } from '../helpers/chip-pipeline.js';
import { geobatch } from '../helpers/cli.js';

const MERGE = `  merge:
    job: merge
    needs: [chips]
    params: { chips: chips, valFraction: 0.5, seed: 1, contactSheet: 0 }
`;
const SCENES = ['demo-001', 'demo-002'];
const PARTS = 3;

/** The chip pipeline with a merge; with `parts`, its chip stage is split into that many tasks per scene. */
function pipeline(name: string, parts?: number): string {
  const text = chipPipeline(name, MERGE);
  if (parts === undefined) return text;
  const split = text.replace(
    '    foreach: rgb\n    needs: [labels]\n',
    `    foreach: rgb\n    needs: [labels]\n    tasksPerItem: ${parts}\n`,
  );
  assert.notEqual(split, text, 'the chip stage of chipPipeline changed: update this test');
  return split;
}

interface Coco {
  images: { id: number; file_name: string }[];
  annotations: { id: number; image_id: number }[];
  categories: unknown[];
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function runDir(root: string, name: string): Promise<string> {
  const runs = join(root, 'runs', name);
  return join(
    runs,
    (await readdir(runs)).find((n) => n !== 'latest.json')!,
  );
}

/** The task events of a `run --json` output, as `<stage><index>:<state>`. */
function taskEvents(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { type: string; stage?: string; index?: number; state?: string })
    .filter((e) => e.type === 'task')
    .map((e) => `${e.stage}${e.index}:${e.state}`);
}

describe('a chip stage split into parts in a pipeline', () => {
  let dir: string;
  let whole: string;
  let split: string;
  let firstRun: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-split-'));
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '320', '--scenes', '2']);
    assert.equal(made.code, 0, made.stderr);
    await writeFile(join(dir, 'whole.yaml'), pipeline('whole'));
    await writeFile(join(dir, 'split.yaml'), pipeline('split', PARTS));
    const a = await geobatch(['run', join(dir, 'whole.yaml'), '--json']);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    const b = await geobatch(['run', join(dir, 'split.yaml'), '--json']);
    assert.equal(b.code, 0, b.stderr + b.stdout);
    firstRun = b.stdout;
    whole = await runDir(dir, 'whole');
    split = await runDir(dir, 'split');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs items x parts tasks, each with its part in its marker and log', async () => {
    const events = taskEvents(firstRun);
    const done = events.filter((e) => e.startsWith('chips') && e.endsWith(':done'));
    assert.deepEqual(done.sort(), [
      'chips0:done',
      'chips1:done',
      'chips2:done',
      'chips3:done',
      'chips4:done',
      'chips5:done',
    ]);
    for (let i = 0; i < SCENES.length * PARTS; i++) {
      const marker = await readJson<TaskMarker>(join(split, 'markers', 'chips', `${i}.json`));
      const scene = SCENES[Math.floor(i / PARTS)]!;
      const k = (i % PARTS) + 1;
      assert.deepEqual([marker.items, marker.part], [[scene], { index: k - 1, count: PARTS }]);
      assert.deepEqual(marker.outputs, [
        join(split, 'chips', scene, `annotations.part-${k}-of-${PARTS}.json`),
        join(split, 'chips', scene, `chips.part-${k}-of-${PARTS}.geojson`),
      ]);
      const log = await readFile(join(split, 'logs', 'chips', `${i}.log`), 'utf8');
      assert.match(log, new RegExp(`items=${scene} part ${k}/${PARTS}`));
      assert.match(
        log,
        new RegExp(
          `${scene} part ${k}/${PARTS}: (cut \\d+ row\\(s\\) of windows, pixel rows \\d+\\.\\.\\d+ of the image|no rows of windows fall in this part)`,
        ),
      );
    }
  });

  it('writes the same chips, and part files that join into the unsplit annotations', async () => {
    for (const scene of SCENES) {
      const reference = await readJson<Coco>(join(whole, 'chips', scene, 'annotations.json'));
      assert.ok(
        reference.images.length >= PARTS,
        `${scene}: too few chips to split (${reference.images.length})`,
      );
      const parts: Coco[] = [];
      for (let k = 1; k <= PARTS; k++)
        parts.push(
          await readJson<Coco>(join(split, 'chips', scene, `annotations.part-${k}-of-${PARTS}.json`)),
        );
      assert.ok(
        parts.filter((p) => p.images.length > 0).length >= 2,
        `${scene}: the chips are spread over the parts`,
      );
      assert.deepEqual(
        parts.flatMap((p) => p.images),
        reference.images,
        scene,
      );
      assert.deepEqual(
        parts.flatMap((p) => p.annotations),
        reference.annotations,
        scene,
      );
      for (const p of parts) assert.deepEqual(p.categories, reference.categories);
      const chipNames = (await readdir(join(whole, 'chips', scene, 'images'))).sort();
      assert.deepEqual((await readdir(join(split, 'chips', scene, 'images'))).sort(), chipNames);
      for (const name of chipNames) {
        const [a, b] = await Promise.all([
          readFile(join(whole, 'chips', scene, 'images', name)),
          readFile(join(split, 'chips', scene, 'images', name)),
        ]);
        assert.ok(a.equals(b), `${scene}/images/${name} differs`);
      }
      const footprints = await readJson<{ features: unknown[] }>(
        join(whole, 'chips', scene, 'chips.geojson'),
      );
      const partFootprints: unknown[] = [];
      for (let k = 1; k <= PARTS; k++)
        partFootprints.push(
          ...(
            await readJson<{ features: unknown[] }>(
              join(split, 'chips', scene, `chips.part-${k}-of-${PARTS}.geojson`),
            )
          ).features,
        );
      // the footprints name their source image, which is in each run's own rgb folder
      assert.deepEqual(
        JSON.parse(JSON.stringify(partFootprints).replaceAll(split, whole)),
        footprints.features,
      );
    }
  });

  it('merges into the same dataset as the unsplit pipeline', async () => {
    const a = await readJson<DatasetManifest>(join(whole, 'merge', 'dataset.json'));
    const b = await readJson<DatasetManifest>(join(split, 'merge', 'dataset.json'));
    assert.deepEqual(b.scenes, a.scenes);
    assert.deepEqual(b.counts, a.counts);
    assert.deepEqual(b.categories, a.categories);
    assert.equal(b.imagesRoot, join(split, 'chips'));
    for (const name of ['train.json', 'val.json', 'labels.csv', 'labels.jsonl', 'stats.json']) {
      assert.equal(
        await readFile(join(split, 'merge', name), 'utf8'),
        await readFile(join(whole, 'merge', name), 'utf8'),
        name,
      );
    }
  });

  it('a rerun runs only the parts that did not finish, and what waits for them', async () => {
    // GIVEN part 2 of demo-002 (task 4) and the merge lost their markers, and the part its file
    await rm(join(split, 'markers', 'chips', '4.json'));
    await rm(join(split, 'markers', 'merge', '0.json'));
    await rm(join(split, 'chips', 'demo-002', `annotations.part-2-of-${PARTS}.json`));
    const before = await readFile(join(split, 'merge', 'train.json'), 'utf8');
    // WHEN the unchanged pipeline runs again (it continues its latest run)
    const r = await geobatch(['run', join(dir, 'split.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    // THEN only that part and the merge ran
    assert.deepEqual(
      taskEvents(r.stdout).filter((e) => e.endsWith(':started')),
      ['chips4:started', 'merge0:started'],
    );
    assert.equal(await runDir(dir, 'split'), split, 'the same run continued');
    assert.ok(
      (await readdir(join(split, 'chips', 'demo-002'))).includes(`annotations.part-2-of-${PARTS}.json`),
    );
    assert.equal(await readFile(join(split, 'merge', 'train.json'), 'utf8'), before);
  });
});
