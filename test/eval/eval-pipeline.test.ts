// The eval job as a fan-in stage through `geobatch run`: demo scenes -> rgb -> COCO polygons
// (labels job) scored against themselves and against the geo-labels they were made from.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EvalReport } from '../../lib/eval/eval.js';
import { geobatch } from '../helpers/cli.js';

const pipeline = (evalStages: string) => `version: 1
name: scored
output: runs
inputs:
  scenes: data/*.tif
  outlines: data/labels/demo-*.geojson
stages:
  rgb:
    job: rgb
    foreach: scenes
  polygons:
    job: labels
    foreach: rgb
    params: { labels: outlines, image: rgb, categoryField: class }
${evalStages}`;

async function runDir(root: string): Promise<string> {
  const runs = join(root, 'runs', 'scored');
  return join(
    runs,
    (await readdir(runs)).find((n) => n !== 'latest.json')!,
  );
}

describe('eval stage in a pipeline', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-eval-run-'));
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '320', '--scenes', '2']);
    assert.equal(made.code, 0, made.stderr);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('scores a stage against itself and against the geo-labels input set: 1.0 on both', async () => {
    await writeFile(
      join(dir, 'p.yaml'),
      pipeline(`  self:
    job: eval
    needs: [polygons]
    params: { predictions: polygons, truth: polygons }
  geo:
    job: eval
    needs: [polygons, rgb]
    params: { predictions: polygons, truth: outlines, images: rgb }
`),
    );
    const r = await geobatch(['run', join(dir, 'p.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const run = await runDir(dir);
    for (const stage of ['self', 'geo']) {
      const report = JSON.parse(await readFile(join(run, stage, 'eval.json'), 'utf8')) as EvalReport;
      assert.deepEqual(report.scenes.evaluated, ['demo-001', 'demo-002'], stage);
      const d = report.overall.detection!;
      assert.ok(d.tp > 5, `${stage}: ${JSON.stringify(d)}`);
      assert.deepEqual([d.fp, d.fn, d.f1, d.ap50, d.ap], [0, 0, 1, 1, 1], stage);
      assert.equal(report.overall.spacenet!.f1, 1, stage);
      const names = (await readdir(join(run, stage))).sort();
      assert.deepEqual(names, ['errors.geojson', 'eval.json', 'eval.md', 'pr-curves.png'], stage);
    }
    const geo = JSON.parse(await readFile(join(run, 'geo', 'eval.json'), 'utf8')) as EvalReport;
    assert.equal(geo.truth.kind, 'geo-labels');
  });

  it('a predictions param naming a stage it does not wait for is one clear line', async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      pipeline(`  self:
    job: eval
    needs: [rgb]
    params: { predictions: polygons, truth: polygons }
`),
    );
    const r = await geobatch(['run', join(dir, 'bad.yaml')]);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr + r.stdout,
      /stages\.self\.params\.predictions: the eval job reads stage 'polygons' when it has finished; list it under needs/,
    );
  });
});
