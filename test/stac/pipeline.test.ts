import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PipelineError } from '../../lib/pipeline/index.js';
import { readRasterInfo } from '../../lib/raster/info.js';
import { openTiff } from '../../lib/raster/source.js';
import { runLocal } from '../../lib/runners/local.js';
import { loadPipeline, prepareRun } from '../../lib/runners/prepare.js';
import { createStorage } from '../../lib/storage/index.js';
import { startHttpFiles, type HttpFilesHandle } from '../helpers/http-files.js';

// real rasters from ../shared/data (see its PROVENANCE.md)
const shared = resolve(import.meta.dirname, '../../../shared/data');
const COG = 'image/tiff; application=geotiff; profile=cloud-optimized';

function stacItem(id: string, href: string, collection = 'samples'): Record<string, unknown> {
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    id,
    collection,
    geometry: null,
    properties: { datetime: '2023-06-01T00:00:00Z' },
    assets: {
      image: { href, type: COG, roles: ['data'] },
      thumbnail: { href: 'thumb.png', type: 'image/png', roles: ['thumbnail'] },
    },
    links: [],
  };
}

const pipeline = (inputs: string): string => `version: 1
name: stac-demo
output: runs
inputs:
  scenes: ${inputs}
stages:
  inspect:
    job: inspect
    foreach: scenes
  rgb:
    job: rgb
    foreach: scenes
`;

describe('a pipeline whose input set is a saved STAC ItemCollection', () => {
  const storage = createStorage();
  let dir: string;
  let server: HttpFilesHandle;
  let remote: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-stac-pipeline-'));
    server = await startHttpFiles(join(shared, 'spacenet'));
    remote = `${server.url}/pan1.tif`;
    // relative hrefs, as a static catalogue next to its imagery has them, and one https-style URL
    const features = [
      stacItem('rgb:unmasked', relative(dir, join(shared, 'spacenet/rgb_unmasked.tif'))),
      stacItem('cog', relative(dir, join(shared, 'cog/cog.tif'))),
      stacItem('pan 1', remote),
    ];
    await writeFile(
      join(dir, 'items.json'),
      JSON.stringify({ type: 'FeatureCollection', features, links: [], numberMatched: 3 }),
    );
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('plans one item per STAC Item: ids from item ids, uris from the asset hrefs', async () => {
    await writeFile(join(dir, 'p.yaml'), pipeline('{ stac: items.json, asset: image }'));
    const loaded = await loadPipeline(storage, join(dir, 'p.yaml'));
    assert.deepEqual(loaded.graph.items.scenes, [
      { id: 'cog', uri: join(shared, 'cog/cog.tif') },
      { id: 'pan_1', uri: remote },
      { id: 'rgb_unmasked', uri: join(shared, 'spacenet/rgb_unmasked.tif') },
    ]);
    assert.deepEqual(
      loaded.graph.stages.map((stage) => [stage.name, stage.taskCount]),
      [
        ['inspect', 3],
        ['rgb', 3],
      ],
    );
    // the default rule finds the same asset: the one GeoTIFF with role data
    await writeFile(join(dir, 'default.yaml'), pipeline('{ stac: items.json }'));
    const byRule = await loadPipeline(storage, join(dir, 'default.yaml'));
    assert.deepEqual(byRule.graph.items, loaded.graph.items);
  });

  it('plans the same from the saved file with the asset server gone (offline)', async () => {
    await writeFile(join(dir, 'p.yaml'), pipeline('{ stac: items.json, asset: image }'));
    const first = await loadPipeline(storage, join(dir, 'p.yaml'));
    const offline = await startHttpFiles(dir);
    await offline.close(); // nothing listens there now: planning must not need any asset
    const again = await loadPipeline(storage, join(dir, 'p.yaml'));
    assert.equal(again.fingerprint, first.fingerprint);
    assert.deepEqual(again.graph, first.graph);
  });

  it('runs inspect and rgb over the items, local files and an http GeoTIFF alike', async () => {
    await writeFile(join(dir, 'p.yaml'), pipeline('{ stac: items.json, asset: image }'));
    const loaded = await loadPipeline(storage, join(dir, 'p.yaml'));
    const { plan } = await prepareRun(storage, loaded, { fresh: true });
    const summary = await runLocal({ storage, plan, concurrency: 2 });
    assert.equal(summary.state, 'succeeded');
    const read = async (id: string): Promise<Record<string, unknown>> =>
      JSON.parse(await readFile(join(plan.runUri, 'inspect', `${id}.json`), 'utf8')) as Record<
        string,
        unknown
      >;
    const pan = await read('pan_1');
    assert.equal(pan.uri, remote);
    assert.deepEqual([pan.width, pan.height, pan.bands, pan.dtype], [600, 600, 1, 'uint16']);
    assert.ok(
      server.requests.some((r) => r.path === '/pan1.tif' && r.range !== undefined),
      'read with range requests',
    );
    const rgb = await read('rgb_unmasked');
    assert.deepEqual([rgb.width, rgb.bands, rgb.dtype], [200, 3, 'uint8']);
    const cog = await read('cog');
    assert.equal((cog.geo as { epsg: number }).epsg, 32621);
    // rgb read the http scene through range requests too, and kept its georeferencing
    const { tiff } = await openTiff(storage, join(plan.runUri, 'rgb', 'pan_1.tif'));
    const info = await readRasterInfo(tiff);
    assert.deepEqual([info.width, info.height, info.bands, info.dtype], [600, 600, 3, 'uint8']);
    assert.equal(info.geo?.epsg, 32631);
  });

  const failures: ReadonlyArray<readonly [string, string, () => Promise<void>, RegExp]> = [
    [
      'a missing file',
      '{ stac: nothing.json }',
      async () => undefined,
      /bad\.yaml: inputs\.scenes\.stac: \/.*\/nothing\.json: STAC ItemCollection file not found \(line 5\)$/,
    ],
    [
      'an item without the asset',
      '{ stac: bad.json, asset: visual }',
      () => writeFile(join(dir, 'bad.json'), JSON.stringify(stacItem('lonely', 'a.tif'))),
      /inputs\.scenes\.stac: .*bad\.json: item 'lonely' has no asset 'visual' \(it has image, thumbnail\) \(line 5\)$/,
    ],
    [
      'a file with no items',
      '{ stac: empty.json }',
      () => writeFile(join(dir, 'empty.json'), '{"type":"FeatureCollection","features":[]}'),
      /inputs\.scenes\.stac: .*empty\.json: the ItemCollection has no items \(line 5\)$/,
    ],
  ];
  for (const [name, input, setup, message] of failures) {
    it(`fails at the input's line for ${name}`, async () => {
      await setup();
      await writeFile(join(dir, 'bad.yaml'), pipeline(input));
      await assert.rejects(
        loadPipeline(storage, join(dir, 'bad.yaml')),
        (error: unknown) => error instanceof PipelineError && message.test(error.message),
      );
    });
  }
});
