import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DownloadCache, defaultCacheDir, type Downloader } from '../../lib/storage/cache.js';
import type { ObjectInfo } from '../../lib/storage/types.js';
import { assertStorageError, stallingBody } from './contract.js';

describe('defaultCacheDir', () => {
  const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
    [{ GEOBATCH_CACHE_DIR: '/scratch/cache' }, '/scratch/cache'],
    [{ GEOBATCH_CACHE_DIR: '/scratch/cache', XDG_CACHE_HOME: '/xdg' }, '/scratch/cache'],
    [{ XDG_CACHE_HOME: '/xdg' }, '/xdg/geobatch'],
    [{ GEOBATCH_CACHE_DIR: '', XDG_CACHE_HOME: '' }, join(homedir(), '.cache', 'geobatch')],
    [{}, join(homedir(), '.cache', 'geobatch')],
  ];
  for (const [env, expected] of cases) {
    it(`${JSON.stringify(env)} -> ${expected}`, () => assert.equal(defaultCacheDir(env), expected));
  }
});

describe('DownloadCache', () => {
  let dir: string;
  let cache: DownloadCache;
  const object: ObjectInfo = {
    uri: 's3://bucket/scenes/a b.tif',
    size: 7,
    etag: '"abc"',
    lastModified: new Date('2024-01-02T03:04:05Z'),
  };
  /** A downloader that counts its calls. */
  const counting = (content: string | (() => AsyncIterable<Uint8Array>)): Downloader & { calls: number } => {
    const download = async (): Promise<Readable | AsyncIterable<Uint8Array>> => {
      download.calls += 1;
      return typeof content === 'string' ? Readable.from([Buffer.from(content)]) : content();
    };
    download.calls = 0;
    return download;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-cache-'));
    cache = new DownloadCache(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('downloads on a miss and not on a hit', async () => {
    const download = counting('content');
    const first = await cache.fetch(object, download);
    assert.equal(await readFile(first, 'utf8'), 'content');
    assert.ok(first.startsWith(dir));
    assert.match(first, /\/a_b\.tif$/, 'keeps a file-name-safe basename (extension included)');
    const second = await cache.fetch(object, download);
    assert.equal(second, first);
    assert.equal(download.calls, 1);
  });

  it('keys entries by URI, size, ETag and time', () => {
    const base = cache.pathFor(object);
    const variants: ObjectInfo[] = [
      { ...object, uri: 's3://bucket/scenes/other/a b.tif' },
      { ...object, size: 8 },
      { ...object, etag: '"def"' },
      { ...object, lastModified: new Date('2024-01-02T03:04:06Z') },
    ];
    const paths = new Set([base, ...variants.map((variant) => cache.pathFor(variant))]);
    assert.equal(paths.size, 5);
    assert.equal(cache.pathFor({ ...object }), base, 'the same identity gives the same path');
  });

  it('a changed object is downloaded again into a new entry', async () => {
    const changed = { ...object, etag: '"new"' };
    const download = counting('CONTENT');
    const path = await cache.fetch(changed, download);
    assert.equal(download.calls, 1);
    assert.notEqual(path, cache.pathFor(object));
    assert.equal(await readFile(path, 'utf8'), 'CONTENT');
  });

  it('a download of the wrong size fails and leaves nothing, so the next call retries', async () => {
    const target = { ...object, uri: 's3://bucket/short.tif' };
    const error = await assertStorageError(cache.fetch(target, counting('short')), 'Io', target.uri);
    assert.match(error.message, /download incomplete: got 5 bytes, expected 7/);
    assert.deepEqual(await readdir(dirname(cache.pathFor(target))), []);
    const retried = await cache.fetch(target, counting('1234567'));
    assert.equal(await readFile(retried, 'utf8'), '1234567');
  });

  it('an aborted download leaves neither the file nor a temporary file', async () => {
    const target = { ...object, uri: 's3://bucket/big.tif', size: 10 * 1024 * 1024 };
    const controller = new AbortController();
    const download = counting(() => stallingBody(2, () => controller.abort()));
    const path = cache.pathFor(target);
    await assertStorageError(
      cache.fetch(target, download, { signal: controller.signal }),
      'Aborted',
      target.uri,
    );
    assert.deepEqual(await readdir(dirname(path)), []);
  });

  it('concurrent callers each get the complete file', async () => {
    const target = { ...object, uri: 's3://bucket/concurrent.tif', size: 3 };
    const results = await Promise.all([1, 2, 3].map(() => cache.fetch(target, counting('xyz'))));
    assert.equal(new Set(results).size, 1);
    assert.equal(await readFile(results[0] ?? '', 'utf8'), 'xyz');
    assert.deepEqual(await readdir(dirname(results[0] ?? '')), ['concurrent.tif']);
  });
});
