import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { readRasterInfo } from '../../lib/raster/info.js';
import { openTiff } from '../../lib/raster/source.js';
import { loadPipeline } from '../../lib/runners/prepare.js';
import { resolveStacFile } from '../../lib/stac/inputs.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

// real rasters from ../shared/data (see its PROVENANCE.md)
const shared = resolve(import.meta.dirname, '../../../shared/data');

describe('resolveStacFile', () => {
  const cases: ReadonlyArray<readonly [string, string | undefined, string]> = [
    ['items.json', '/work/pipelines', '/work/pipelines/items.json'],
    ['../stac/items.json', '/work/pipelines', '/work/stac/items.json'],
    ['/abs/items.json', '/work', '/abs/items.json'],
    ['catalog/items.json', 's3://bucket/pipelines/', 's3://bucket/pipelines/catalog/items.json'],
    ['../catalog/items.json', 's3://bucket/pipelines/', 's3://bucket/catalog/items.json'],
    ['s3://other/items.json', '/work', 's3://other/items.json'],
    ['https://host/items.json', 's3://bucket/', 'https://host/items.json'],
  ];
  for (const [file, base, expected] of cases) {
    it(`${file} against ${base}`, () => assert.equal(resolveStacFile(file, base), expected));
  }
});

describe('a STAC input set on S3', () => {
  let server: S3rverHandle;
  let client: S3Client;
  let storage: Storage;
  let root: string;
  before(async () => {
    server = await startS3rver();
    client = new S3Client(server.clientConfig);
    storage = createStorage({ s3: client });
    root = `s3://${await server.createBucket()}/`;
    await storage.writeAtomic(`${root}scenes/ms 1.tif`, await readFile(join(shared, 'spacenet/ms1.tif')));
    const item = {
      type: 'Feature',
      stac_version: '1.0.0',
      id: 'ms1',
      properties: { datetime: null },
      geometry: null,
      assets: {
        analytic: { href: '../scenes/ms%201.tif', type: 'image/tiff; application=geotiff', roles: ['data'] },
      },
    };
    await storage.writeAtomic(`${root}catalog/items.json`, JSON.stringify(item));
    await storage.writeAtomic(
      `${root}pipelines/p.yaml`,
      'version: 1\nname: s3-stac\noutput: runs\ninputs:\n  scenes: { stac: ../catalog/items.json }\nstages:\n  inspect: { job: inspect, foreach: scenes }\n',
    );
  });
  after(async () => {
    client.destroy();
    await server.stop();
  });

  it('reads the file next to the pipeline and resolves relative hrefs against the file on S3', async () => {
    const loaded = await loadPipeline(storage, `${root}pipelines/p.yaml`);
    assert.deepEqual(loaded.graph.items.scenes, [{ id: 'ms1', uri: `${root}scenes/ms 1.tif` }]);
    const { tiff } = await openTiff(storage, loaded.graph.items.scenes![0]!.uri);
    const info = await readRasterInfo(tiff);
    assert.deepEqual([info.width, info.bands, info.dtype], [300, 4, 'float64']);
  });
});
