// The labels-osm job as a pipeline stage through `geobatch run`: the OSM test extract (as .osm.pbf)
// over the SpaceNet sample GeoTIFF, chipped by a chip stage; its per-scene GeoJSON and per-chip
// labels must be what `geobatch labels osm` writes for the same inputs, and mask and labels
// stages must take the stage as their `labels:`. Then its Batch plan, and bad params.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { catalog } from '../../jobs/catalog.js';
import { compilePipeline, parsePipeline } from '../../lib/pipeline/index.js';
import { conventionalTarget, planSubmission } from '../../lib/runners/batch-plan.js';
import { geobatch } from '../helpers/cli.js';
import { CLASSES, osmium, osmiumSkip, osmXml } from '../helpers/osm-extract.js';
import { gdalRawPixels, gdalSkip } from '../raster/gdal-tools.js';

const image = join(import.meta.dirname, '../../../shared/data/spacenet/sample_geotiff.tif');
const burn = { building: 1, road: 2, forest: 3, water: 4, poi: 5 };
const indent = (text: string, n: number): string =>
  text
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

const osmStage = (extra = ''): string => `  osm:
    job: labels-osm
    needs: [chips]
    params:
      osm: extract
      images: scenes
      chips: chips
      classes:
${indent(CLASSES, 8)}
${extra}`;

const stages = `stages:
  chips:
    job: chip
    foreach: scenes
    params: { size: 300, overlap: 0, format: png }
${osmStage()}
  masks:
    job: mask
    foreach: scenes
    needs: [osm]
    params: { labels: osm, burnField: class, categories: ${JSON.stringify(burn)} }
  coco:
    job: labels
    foreach: scenes
    needs: [osm]
    params: { labels: osm, categoryField: class }
`;

const pipeline = (name: string, body: string): string => `version: 1
name: ${name}
output: runs
inputs:
  scenes: ${image}
  extract: extract.osm.pbf
${body}`;

describe('labels-osm in a pipeline', { skip: osmiumSkip || gdalSkip }, () => {
  let dir: string;
  let run: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-osmjob-'));
    await writeFile(join(dir, 'extract.osm'), osmXml());
    osmium(['cat', join(dir, 'extract.osm'), '-o', join(dir, 'extract.osm.pbf'), '-O']);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes what `geobatch labels osm` writes, and mask and labels stages read it', async () => {
    await writeFile(join(dir, 'osm.yaml'), pipeline('osm', stages));
    const r = await geobatch(['run', join(dir, 'osm.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const runs = join(dir, 'runs/osm');
    run = join(
      runs,
      (await readdir(runs)).find((n) => n !== 'latest.json')!,
    );
    assert.deepEqual((await readdir(join(run, 'osm'))).sort(), [
      'labels.csv',
      'labels.jsonl',
      'sample_geotiff.geojson',
      'summary.json',
    ]);

    await writeFile(join(dir, 'classes.yaml'), CLASSES);
    const chipDir = join(run, 'chips/sample_geotiff');
    const cli = await geobatch([
      'labels',
      'osm',
      join(dir, 'extract.osm.pbf'),
      '--classes',
      join(dir, 'classes.yaml'),
      '--images',
      image,
      '--chips',
      chipDir,
      '--out',
      join(dir, 'cli'),
      '--json',
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    const stageGeojson = await readFile(join(run, 'osm/sample_geotiff.geojson'), 'utf8');
    assert.equal(stageGeojson, await readFile(join(dir, 'cli/sample_geotiff.geojson'), 'utf8'));
    const features = (JSON.parse(stageGeojson) as { features: { properties: { class: string } }[] }).features;
    assert.ok(features.length > 0);

    // one table for the stage: the CLI's rows for the scene's chip folder, named <item>/<chip>
    const cliCsv = (await readFile(join(dir, 'cli/labels.csv'), 'utf8')).trimEnd().split('\n');
    const csv = (await readFile(join(run, 'osm/labels.csv'), 'utf8')).trimEnd().split('\n');
    assert.equal(csv[0], 'chip,building,road,forest,water,poi');
    assert.deepEqual(
      csv.slice(1),
      cliCsv.slice(1).map((row) => `sample_geotiff/${row}`),
    );
    assert.equal(csv.length, 1 + 9, '900 px scene in 300 px chips without overlap');
    const cliJsonl = (await readFile(join(dir, 'cli/labels.jsonl'), 'utf8')).trimEnd().split('\n');
    const jsonl = (await readFile(join(run, 'osm/labels.jsonl'), 'utf8')).trimEnd().split('\n');
    assert.deepEqual(
      jsonl.map((l) => JSON.parse(l) as { chip: string; labels: string[] }),
      cliJsonl.map((l) => {
        const o = JSON.parse(l) as { chip: string; labels: string[] };
        return { chip: `sample_geotiff/${o.chip}`, labels: o.labels };
      }),
    );
    const summary = JSON.parse(await readFile(join(run, 'osm/summary.json'), 'utf8')) as {
      byClass: Record<string, number>;
      scenes: { item: string; features: number }[];
      chips: { count: number };
    };
    const cliSummary = JSON.parse(cli.stdout) as { byClass: Record<string, number> };
    assert.deepEqual(summary.byClass, cliSummary.byClass);
    assert.deepEqual(
      summary.scenes.map((s) => [s.item, s.features]),
      [['sample_geotiff', features.length]],
    );
    assert.equal(summary.chips.count, 9);

    // the mask stage burned the stage's GeoJSON as `labels mask` burns the CLI's
    await writeFile(join(dir, 'burn.json'), JSON.stringify(burn));
    const mask = await geobatch([
      'labels',
      'mask',
      join(dir, 'cli/sample_geotiff.geojson'),
      '--image',
      image,
      '--burn-field',
      'class',
      '--category-map',
      join(dir, 'burn.json'),
      '--out',
      join(dir, 'cli-mask.tif'),
    ]);
    assert.equal(mask.code, 0, mask.stderr);
    const ours = gdalRawPixels(join(run, 'masks/sample_geotiff.tif'), join(dir, 'ours.raw'));
    const theirs = gdalRawPixels(join(dir, 'cli-mask.tif'), join(dir, 'theirs.raw'));
    assert.equal(ours.length, 900 * 900);
    assert.ok(ours.equals(theirs), 'the same mask');
    const values = new Set(ours);
    for (const v of [0, 1, 3, 4]) assert.ok(values.has(v), `value ${v} (of ${[...values].join(',')}) burned`);

    // the labels stage: a COCO shard with the classes as categories
    const coco = JSON.parse(await readFile(join(run, 'coco/sample_geotiff.json'), 'utf8')) as {
      annotations: { category_id: number }[];
      categories: { id: number; name: string }[];
    };
    const polygonFeatures = features.filter((f) =>
      ['building', 'forest', 'water'].includes(f.properties.class),
    );
    assert.ok(coco.annotations.length >= polygonFeatures.length, 'every polygon becomes an annotation');
    for (const c of coco.categories) assert.ok(Object.hasOwn(burn, c.name), c.name);
  });

  it('reads the footprints of every part of a split chip stage', async () => {
    const split = `stages:
  chips:
    job: chip
    foreach: scenes
    tasksPerItem: 3
    params: { size: 300, overlap: 0, format: png }
${osmStage()}`;
    await writeFile(join(dir, 'split.yaml'), pipeline('split', split));
    const r = await geobatch(['run', join(dir, 'split.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const runs = join(dir, 'runs/split');
    const splitRun = join(
      runs,
      (await readdir(runs)).find((n) => n !== 'latest.json')!,
    );
    const parts = (await readdir(join(splitRun, 'chips/sample_geotiff'))).filter((n) =>
      n.startsWith('chips.'),
    );
    assert.deepEqual(
      parts.sort(),
      [1, 2, 3].map((k) => `chips.part-${k}-of-3.geojson`),
    );
    const rows = async (uri: string): Promise<string[]> =>
      (await readFile(uri, 'utf8')).trimEnd().split('\n').slice(1).sort();
    const whole = await rows(join(run, 'osm/labels.csv'));
    assert.equal(whole.length, 9);
    assert.deepEqual(await rows(join(splitRun, 'osm/labels.csv')), whole);
  });

  it('plans as one task on the CPU queue on Batch', () => {
    const parsed = parsePipeline(pipeline('osm', stages), 'osm.yaml');
    const graph = compilePipeline(
      parsed.spec,
      {
        scenes: [1, 2, 3].map((i) => ({ id: `s${i}`, uri: `s3://raw/s${i}.tif` })),
        extract: [{ id: 'extract.osm', uri: 's3://raw/extract.osm.pbf' }],
      },
      parsed.source,
    );
    const plan = planSubmission({
      run: { runId: 'r1', runUri: 's3://runs/osm/r1', graph },
      target: conventionalTarget('dev', catalog),
    });
    const osm = plan.jobs.find((j) => j.stage === 'osm')!;
    assert.equal(osm.request.jobQueue, 'geobatch-dev-cpu');
    assert.equal(osm.request.jobDefinition, 'geobatch-dev-labels-osm');
    assert.equal(osm.request.arrayProperties, undefined, 'one task, not an array');
    assert.ok(!osm.request.containerOverrides.resourceRequirements!.some((r) => r.type === 'GPU'));
    // the mask stage waits for the whole osm stage
    const masks = plan.jobs.find((j) => j.stage === 'masks')!;
    assert.equal(masks.request.arrayProperties?.size, 3);
    assert.deepEqual(
      masks.dependsOn.map((d) => d.stage),
      ['osm'],
    );
  });

  it('fails each task of bad params with one line naming the parameter', async () => {
    // independent stages: each fails on its own params, the others still run
    const body = `stages:
  m:
    job: smoke
    foreach: scenes
  osm:
    job: labels-osm
    params: { osm: extract, images: scenes, classes: { building: 'building=*' } }
  bad-class:
    job: labels-osm
    params: { osm: extract, images: scenes, classes: { road: 'highway=' } }
  bad-images:
    job: labels-osm
    params: { osm: extract, images: nope, classes: { building: 'building=*' } }
  bad-chips:
    job: labels-osm
    needs: [m]
    params: { osm: extract, images: scenes, chips: m, classes: { building: 'building=*' } }
  not-needed:
    job: mask
    foreach: scenes
    params: { labels: osm }
  no-set:
    job: mask
    foreach: scenes
    params: { labels: outlines }
  no-labels:
    job: mask
    foreach: scenes
    needs: [m]
    params: { labels: m }
`;
    await writeFile(join(dir, 'bad.yaml'), pipeline('bad', body));
    const r = await geobatch(['run', join(dir, 'bad.yaml'), '--json']);
    assert.notEqual(r.code, 0);
    const finished = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; failures?: { stage: string; error: string }[] })
      .find((e) => e.type === 'run-finished');
    assert.ok(finished?.failures, r.stdout + r.stderr);
    const errors = Object.fromEntries(finished.failures.map((f) => [f.stage, f.error]));
    const expected: Record<string, RegExp> = {
      'bad-class':
        /^stages\.bad-class\.params\.classes: class 'road': bad filter expression "highway=": empty value after '='/,
      'bad-images':
        /^stages\.bad-images\.params\.images: expected an input set of this pipeline \(scenes, extract\) but got 'nope'$/,
      'bad-chips':
        /^stages\.bad-chips\.params\.chips: stage 'm' runs job 'smoke', which writes no chips\.geojson \(expected a stage of job chip or chip-grid\)$/,
      'not-needed':
        /^stages\.not-needed\.params\.labels: stage 'osm' must finish first: add needs: \[osm\] to stage 'not-needed'$/,
      'no-set':
        /^stages\.no-set\.params\.labels: expected an input set \(scenes, extract\) or a labels-osm stage \(osm, bad-class, bad-images, bad-chips\) of this pipeline but got 'outlines'$/,
      'no-labels':
        /^stages\.no-labels\.params\.labels: stage 'm' runs job 'smoke', which writes no labels per item \(expected an input set or a stage of job labels-osm\)$/,
    };
    assert.deepEqual(Object.keys(errors).sort(), Object.keys(expected).sort());
    for (const [stage, message] of Object.entries(expected)) {
      assert.ok(!errors[stage]!.includes('\n'), `${stage}: one line`);
      assert.match(errors[stage]!, message);
    }
  });

  it('rejects a class that is not a filter when the pipeline is validated', async () => {
    await writeFile(
      join(dir, 'val.yaml'),
      pipeline(
        'val',
        `stages:\n  osm:\n    job: labels-osm\n    params: { osm: extract, images: scenes, classes: { road: 3 } }\n`,
      ),
    );
    const r = await geobatch(['validate', join(dir, 'val.yaml')]);
    assert.equal(r.code, 2, r.stdout);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /stages\.osm\.params\.classes\.road/);
  });
});
