import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StorageSource } from '../../lib/raster/source.js';
import { createStorage } from '../../lib/storage/index.js';

describe('StorageSource', () => {
  let dir: string;
  let file: string;
  let bytes: Buffer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-source-'));
    file = join(dir, 'blob.bin');
    bytes = randomBytes(100_000);
    await writeFile(file, bytes);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('slices larger than the cache come back whole', async () => {
    // GIVEN a cache of 4 blocks of 1 KiB
    const source = new StorageSource(createStorage(), file, { blockSize: 1024, cacheBytes: 4096 });
    // WHEN one call asks for 40 KiB in two slices
    const [a, b] = await source.fetch([
      { offset: 10, length: 20_000 },
      { offset: 50_000, length: 20_000 },
    ]);
    // THEN both are complete and correct
    assert.deepEqual(Buffer.from(a!), bytes.subarray(10, 20_010));
    assert.deepEqual(Buffer.from(b!), bytes.subarray(50_000, 70_000));
  });

  test('concurrent requests for the same blocks share one read; reads stop at the end of the file', async () => {
    const source = new StorageSource(createStorage(), file, { blockSize: 4096 });
    const results = await Promise.all([
      source.fetch([{ offset: 0, length: 8000 }]),
      source.fetch([{ offset: 4000, length: 4000 }]),
      source.fetch([{ offset: 0, length: 100 }]),
    ]);
    assert.equal(source.stats.requests, 1);
    assert.deepEqual(Buffer.from(results[1]![0]!), bytes.subarray(4000, 8000));
    const [tail] = await source.fetch([{ offset: 99_000, length: 5000 }]);
    assert.deepEqual(Buffer.from(tail!), bytes.subarray(99_000));
    assert.equal(source.fileSize, 100_000);
  });
});
