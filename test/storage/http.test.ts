import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readRasterInfo } from '../../lib/raster/info.js';
import { openTiff } from '../../lib/raster/source.js';
import { DownloadCache } from '../../lib/storage/cache.js';
import { StorageError } from '../../lib/storage/errors.js';
import { HttpStorage } from '../../lib/storage/http.js';
import { createStorage } from '../../lib/storage/index.js';
import { basenameUri, dirnameUri, normalizeUri } from '../../lib/storage/uri.js';
import { startHttpFiles, type HttpFilesHandle } from '../helpers/http-files.js';

// real rasters from ../shared/data (see its PROVENANCE.md)
const shared = resolve(import.meta.dirname, '../../../shared/data');

function isStorageError(code: string, uri: string, message?: RegExp): (error: unknown) => boolean {
  return (error) =>
    error instanceof StorageError &&
    error.code === code &&
    error.uri === uri &&
    (message?.test(error.message) ?? true);
}

describe('HttpStorage', () => {
  let dir: string;
  let server: HttpFilesHandle;
  let storage: HttpStorage;
  let uri: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-http-'));
    await writeFile(join(dir, 'digits.txt'), '0123456789');
    server = await startHttpFiles(dir);
    storage = new HttpStorage({ cache: new DownloadCache(join(dir, 'cache')), backoffMs: 1 });
    uri = `${server.url}/digits.txt`;
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const ranges: ReadonlyArray<readonly [string, number, number, string]> = [
    ['the first byte', 0, 1, '0'],
    ['a middle range', 2, 3, '234'],
    ['the whole object', 0, 10, '0123456789'],
    ['past the end (shorter)', 8, 5, '89'],
    ['at the end (empty)', 10, 4, ''],
    ['beyond the end (empty)', 15, 2, ''],
    ['zero bytes', 3, 0, ''],
  ];
  for (const [label, offset, length, expected] of ranges) {
    it(`reads ${label} with a Range request: offset ${offset}, length ${length}`, async () => {
      assert.equal((await storage.readRange(uri, offset, length)).toString(), expected);
    });
  }

  it('sends closed byte ranges', async () => {
    const before = server.requests.length;
    await storage.readRange(uri, 2, 3);
    assert.deepEqual(server.requests.slice(before), [
      { method: 'GET', path: '/digits.txt', range: 'bytes=2-4' },
    ]);
  });

  it('reads, streams, stats and copies to a local file', async () => {
    assert.equal((await storage.read(uri)).toString(), '0123456789');
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.createReadStream(uri)) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), '0123456789');
    const info = await storage.stat(uri);
    assert.equal(info?.size, 10);
    assert.ok(info?.etag);
    assert.ok(info?.lastModified instanceof Date);
    assert.equal(await storage.exists(uri), true);
    const local = await storage.localPath(uri);
    assert.equal(await readFile(local, 'utf8'), '0123456789');
    assert.ok(local.startsWith(join(dir, 'cache')));
  });

  it('says NotFound for a missing URL, and undefined from stat', async () => {
    const missing = `${server.url}/nothing.tif`;
    await assert.rejects(storage.read(missing), isStorageError('NotFound', missing));
    await assert.rejects(storage.readRange(missing, 0, 4), isStorageError('NotFound', missing));
    await assert.rejects(storage.readRange(missing, 0, 0), isStorageError('NotFound', missing));
    assert.equal(await storage.stat(missing), undefined);
  });

  it('refuses writes, deletes and listings, saying http(s) URLs are read-only', async () => {
    await assert.rejects(storage.writeAtomic(uri, 'x'), isStorageError('NotWritable', uri, /read-only/));
    await assert.rejects(storage.delete(uri), isStorageError('NotWritable', uri, /read-only/));
    await assert.rejects(async () => {
      for await (const _ of storage.list(`${server.url}/`)) assert.fail('listed something');
    }, /cannot be listed/);
  });

  it('rejects negative or fractional ranges', async () => {
    await assert.rejects(storage.readRange(uri, -1, 4), RangeError);
    await assert.rejects(storage.readRange(uri, 0, 1.5), RangeError);
  });

  it('is what createStorage uses for http:// URLs', async () => {
    const routed = createStorage({ cacheDir: join(dir, 'cache2') });
    assert.equal((await routed.readRange(uri, 4, 2)).toString(), '45');
  });

  it('names URLs the way the uri helpers name paths', () => {
    assert.equal(basenameUri('https://host/a/b%20c.tif?x=1'), 'b c.tif');
    assert.equal(dirnameUri('https://host/a/b.tif'), 'https://host/a');
    assert.equal(normalizeUri('https://host/a/b.tif'), 'https://host/a/b.tif');
  });
});

describe('HttpStorage against awkward servers', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-http-odd-'));
    await writeFile(join(dir, 'digits.txt'), '0123456789');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a range correctly from a server that ignores Range and sends the whole file', async () => {
    const server = await startHttpFiles(dir, { ignoreRanges: true });
    try {
      const storage = new HttpStorage();
      assert.equal((await storage.readRange(`${server.url}/digits.txt`, 3, 4)).toString(), '3456');
      assert.equal((await storage.readRange(`${server.url}/digits.txt`, 8, 5)).toString(), '89');
    } finally {
      await server.close();
    }
  });

  it('stats through a one-byte range when HEAD is refused', async () => {
    const server = await startHttpFiles(dir, { refuseHead: true });
    try {
      const info = await new HttpStorage().stat(`${server.url}/digits.txt`);
      assert.equal(info?.size, 10);
      assert.deepEqual(
        server.requests.map((r) => [r.method, r.range]),
        [
          ['HEAD', undefined],
          ['GET', 'bytes=0-0'],
        ],
      );
    } finally {
      await server.close();
    }
  });

  it('retries a 503 and then reads', async () => {
    const server = await startHttpFiles(dir, { failOnce: { '/digits.txt': 503 } });
    try {
      const retries: string[] = [];
      const storage = new HttpStorage({ backoffMs: 1, onRetry: (r) => retries.push(r.reason) });
      assert.equal((await storage.readRange(`${server.url}/digits.txt`, 0, 2)).toString(), '01');
      assert.deepEqual(retries, ['HTTP 503']);
    } finally {
      await server.close();
    }
  });

  it('gives up after its retries with the status in the message', async () => {
    const server = await startHttpFiles(dir, { failOnce: { '/digits.txt': 502 } });
    try {
      const url = `${server.url}/digits.txt`;
      await assert.rejects(
        new HttpStorage({ retries: 0 }).read(url),
        isStorageError('Io', url, /request failed \(HTTP 502 Bad Gateway\): try again$/),
      );
    } finally {
      await server.close();
    }
  });

  it('says a server that does not answer is unreachable', async () => {
    const server = await startHttpFiles(dir);
    const url = `${server.url}/digits.txt`;
    await server.close();
    await assert.rejects(
      new HttpStorage({ retries: 1, backoffMs: 1 }).read(url),
      isStorageError('Io', url, /cannot read: network error/),
    );
  });
});

describe('a COG read over HTTP range requests', () => {
  let server: HttpFilesHandle;
  before(async () => {
    server = await startHttpFiles(join(shared, 'cog'));
  });
  after(async () => {
    await server.close();
  });

  it('gives the same header facts and window pixels as the local file, fetching a part of it', async () => {
    const storage = createStorage();
    const local = join(shared, 'cog/cog.tif');
    const remote = `${server.url}/cog.tif`;
    const a = await openTiff(storage, local);
    const b = await openTiff(storage, remote);
    assert.deepEqual(await readRasterInfo(b.tiff), await readRasterInfo(a.tiff));
    const window = [1000, 1200, 1300, 1500];
    const pixelsA = await (await a.tiff.getImage()).readRasters({ window });
    const pixelsB = await (await b.tiff.getImage()).readRasters({ window });
    assert.deepEqual(pixelsB[0], pixelsA[0]);
    const size = (await stat(local)).size;
    assert.ok(b.source.stats.bytes < size, `read ${b.source.stats.bytes} of ${size} bytes`);
    assert.ok(
      server.requests.every((r) => r.range !== undefined),
      'every request was a range request',
    );
  });
});
