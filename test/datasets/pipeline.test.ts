import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PipelineError } from '../../lib/pipeline/index.js';
import { runLocal } from '../../lib/runners/local.js';
import { loadPipeline, prepareRun } from '../../lib/runners/prepare.js';
import { createStorage } from '../../lib/storage/index.js';
import { startHttpFiles, type HttpFilesHandle } from '../helpers/http-files.js';

// real rasters from ../shared/data (see its PROVENANCE.md)
const shared = resolve(import.meta.dirname, '../../../shared/data');

const pipeline = (input: string): string => `version: 1
name: datasets-demo
output: runs
inputs:
  scenes: ${input}
stages:
  inspect:
    job: inspect
    foreach: scenes
`;

describe('a pipeline whose input set names a registered dataset', () => {
  const storage = createStorage();
  let dir: string;
  let http: HttpFilesHandle;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-datasets-pipeline-'));
    http = await startHttpFiles(join(shared, 'cog'));
    await writeFile(
      join(dir, 'datasets.yaml'),
      `version: 1
datasets:
  - tag: spacenet-sample
    description: SpaceNet sample scenes and a mask
    images:
      - ${join(shared, 'spacenet')}/{pan1,rgb_unmasked}.tif
      - ${http.url}/cog_rgb.tif
    masks: ${join(shared, 'spacenet/sample_fp_mask.tif')}
    gsd: 0.3
    licence: CC-BY-SA-4.0
    source: https://spacenet.ai/
`,
    );
  });
  after(async () => {
    await http.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('plans one item per file of the chosen list, and the plan records them', async () => {
    await writeFile(
      join(dir, 'p.yaml'),
      pipeline('{ dataset: spacenet-sample, files: images, registry: datasets.yaml }'),
    );
    const loaded = await loadPipeline(storage, join(dir, 'p.yaml'));
    const expected = [
      { id: 'pan1', uri: join(shared, 'spacenet/pan1.tif') },
      { id: 'rgb_unmasked', uri: join(shared, 'spacenet/rgb_unmasked.tif') },
      { id: 'cog_rgb', uri: `${http.url}/cog_rgb.tif` },
    ];
    assert.deepEqual(loaded.graph.items.scenes, expected);
    const { plan } = await prepareRun(storage, loaded, { fresh: true });
    const written = JSON.parse(await readFile(join(plan.runUri, 'plan.json'), 'utf8')) as typeof plan;
    assert.deepEqual(written.graph.items.scenes, expected);
    assert.equal(written.graph.stages[0]!.taskCount, 3);

    const masks = await loadPipeline(
      storage,
      await writeAndName(
        'm.yaml',
        pipeline('{ dataset: spacenet-sample, files: masks, registry: datasets.yaml }'),
      ),
    );
    assert.deepEqual(masks.graph.items.scenes, [
      { id: 'sample_fp_mask', uri: join(shared, 'spacenet/sample_fp_mask.tif') },
    ]);
  });

  async function writeAndName(name: string, text: string): Promise<string> {
    await writeFile(join(dir, name), text);
    return join(dir, name);
  }

  it('runs inspect over the dataset in the local runner', async () => {
    const loaded = await loadPipeline(
      storage,
      await writeAndName('p.yaml', pipeline('{ dataset: spacenet-sample, registry: datasets.yaml }')),
    );
    const { plan } = await prepareRun(storage, loaded, { fresh: true });
    const summary = await runLocal({ storage, plan, concurrency: 2 });
    assert.equal(summary.state, 'succeeded');
    const read = async (id: string): Promise<Record<string, unknown>> =>
      JSON.parse(await readFile(join(plan.runUri, 'inspect', `${id}.json`), 'utf8')) as Record<
        string,
        unknown
      >;
    const pan = await read('pan1');
    assert.deepEqual([pan.width, pan.height, pan.bands, pan.dtype], [600, 600, 1, 'uint16']);
    const cog = await read('cog_rgb');
    assert.equal(cog.uri, `${http.url}/cog_rgb.tif`);
    assert.equal((await read('rgb_unmasked')).bands, 3);
  });

  const failures: ReadonlyArray<readonly [string, string, RegExp]> = [
    [
      'an unknown tag',
      '{ dataset: spacenet, registry: datasets.yaml }',
      /^bad\.yaml: inputs\.scenes\.dataset: .*datasets\.yaml: no dataset tagged 'spacenet' \(known tags: spacenet-sample\) \(line 5\)$/,
    ],
    [
      'a list the dataset does not have',
      '{ dataset: spacenet-sample, files: labels, registry: datasets.yaml }',
      /^bad\.yaml: inputs\.scenes\.dataset: .*datasets\.yaml: datasets\[0\]: dataset 'spacenet-sample' lists no labels; expected one of: images, masks \(line 3\) \(line 5\)$/,
    ],
    [
      'a missing registry',
      '{ dataset: spacenet-sample, registry: nowhere.yaml }',
      /^bad\.yaml: inputs\.scenes\.dataset: .*nowhere\.yaml: dataset registry not found .* \(line 5\)$/,
    ],
    [
      'a misspelt key',
      '{ dataset: spacenet-sample, file: images }',
      /^bad\.yaml: inputs\.scenes\.file: unknown key 'file', did you mean 'files'\? \(valid keys: dataset, files, registry\) \(line 5\)$/,
    ],
    [
      'a list name that does not exist',
      '{ dataset: spacenet-sample, files: pictures }',
      /^bad\.yaml: inputs\.scenes\.files: expected one of images, labels, masks but got 'pictures' \(line 5\)$/,
    ],
  ];
  for (const [name, input, message] of failures) {
    it(`fails at the input's line for ${name}`, async () => {
      const file = await writeAndName('bad.yaml', pipeline(input));
      await assert.rejects(loadPipeline(storage, file), (error: unknown) => {
        assert.ok(error instanceof PipelineError, String(error));
        assert.match(error.message.replace(dir + '/', ''), message);
        return true;
      });
    });
  }
});
