// The merge job as a pipeline stage through `geobatch run`: demo scenes -> rgb -> xView COCO
// shards -> chips -> one dataset split by scene.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { DatasetManifest } from '../../lib/dataset/build.js';
import { chipPipeline } from '../helpers/chip-pipeline.js';
import { geobatch } from '../helpers/cli.js';

const pipeline = chipPipeline(
  'dataset',
  `  merge:
    job: merge
    needs: [chips]
    params: { chips: chips, valFraction: 0.34, seed: 2, contactSheet: 8 }
`,
);

async function runDir(root: string, name: string): Promise<string> {
  const runs = join(root, 'runs', name);
  return join(
    runs,
    (await readdir(runs)).find((n) => n !== 'latest.json')!,
  );
}

describe('merge stage in a pipeline', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-merge-'));
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '320', '--scenes', '3']);
    assert.equal(made.code, 0, made.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('merges the chip folders of every scene into <run>/merge/, split by scene', async () => {
    await writeFile(join(dir, 'dataset.yaml'), pipeline);
    const r = await geobatch(['run', join(dir, 'dataset.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const run = await runDir(dir, 'dataset');
    const out = join(run, 'merge');
    const manifest = JSON.parse(await readFile(join(out, 'dataset.json'), 'utf8')) as DatasetManifest;
    assert.equal(manifest.imagesRoot, join(run, 'chips'));
    assert.deepEqual([...manifest.scenes.train, ...manifest.scenes.val].sort(), [
      'demo-001',
      'demo-002',
      'demo-003',
    ]);
    assert.equal(manifest.scenes.val.length, 1);
    assert.ok(manifest.categories.length >= 2, JSON.stringify(manifest.categories));
    assert.deepEqual(
      manifest.categories.map((c) => c.id),
      manifest.categories.map((_, i) => i + 1),
    );
    const val = JSON.parse(await readFile(join(out, 'val.json'), 'utf8')) as {
      images: { id: number; file_name: string; scene: string }[];
      annotations: { image_id: number }[];
    };
    assert.ok(val.images.length > 0 && val.images.every((i) => i.scene === manifest.scenes.val[0]));
    assert.equal(val.annotations.length, manifest.counts.val!.annotations);
    const chip = await sharp(join(manifest.imagesRoot, val.images[0]!.file_name)).metadata();
    assert.equal(chip.width, 128);
    const csv = (await readFile(join(out, 'labels.csv'), 'utf8')).trimEnd().split('\n');
    assert.equal(csv.length, 1 + manifest.counts.train!.images + manifest.counts.val!.images);
    for (const name of ['class-distribution.png', 'cooccurrence.png', 'contact-sheet.png']) {
      assert.equal((await sharp(join(out, name)).metadata()).format, 'png', name);
    }
    const runJson = JSON.parse(await readFile(join(run, 'run.json'), 'utf8')) as unknown;
    assert.ok(JSON.stringify(runJson).includes('merge'));
  });

  for (const [name, stage, message] of [
    [
      'a chips param naming a missing stage',
      '  merge:\n    job: merge\n    needs: [s]\n    params: { chips: nope }\n',
      /stages\.merge\.params\.chips: expected a stage of this pipeline \(s, merge\) but got 'nope'/,
    ],
    [
      'a chips stage not listed under needs',
      '  merge:\n    job: merge\n    params: { chips: s }\n',
      /stages\.merge: the merge job reads stage 's' when it has finished; list it under needs/,
    ],
  ] as const) {
    it(`fails the task on ${name}`, async () => {
      const yaml = `version: 1\nname: bad\noutput: runs\ninputs:\n  scenes: data/*.tif\nstages:\n  s:\n    job: smoke\n    foreach: scenes\n${stage}`;
      await writeFile(join(dir, 'bad.yaml'), yaml);
      const r = await geobatch(['run', join(dir, 'bad.yaml'), '--json']);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, message);
      await rm(join(dir, 'runs', 'bad'), { recursive: true, force: true });
    });
  }

  it('rejects fractions summing to 1 when the pipeline is validated', async () => {
    await writeFile(
      join(dir, 'sum.yaml'),
      pipeline
        .replace('valFraction: 0.34,', 'valFraction: 0.5, testFraction: 0.5,')
        .replace('name: dataset', 'name: sum'),
    );
    const r = await geobatch(['validate', join(dir, 'sum.yaml')]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /stages\.merge\.params\.testFraction.*valFraction \+ testFraction < 1/);
  });
});
