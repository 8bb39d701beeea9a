// The behaviour every Storage backend promises, as one suite run against each backend.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { StorageError, type StorageErrorCode } from '../../lib/storage/errors.js';
import type { ObjectInfo, Storage } from '../../lib/storage/types.js';

export interface ContractBackend {
  readonly storage: Storage;
  /** A directory-like URI ending in '/', empty at the start of the suite. */
  readonly root: string;
  /** Page size the backend lists with (the suite writes more objects than this, to span pages). */
  readonly listPageSize: number;
  teardown(): Promise<void>;
}

const MiB = 1024 * 1024;

/** Registers the storage contract tests for the backend `setup` creates. */
export function storageContract(name: string, setup: () => Promise<ContractBackend>): void {
  describe(`Storage contract: ${name}`, () => {
    let backend: ContractBackend;
    let storage: Storage;
    let counter = 0;
    /** A fresh directory-like prefix for one test. */
    const fresh = (): string => `${backend.root}t${++counter}/`;

    before(async () => {
      backend = await setup();
      storage = backend.storage;
    });
    after(async () => {
      await backend.teardown();
    });

    describe('writeAtomic + read', () => {
      const bodies: ReadonlyArray<
        readonly [string, () => Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>, string]
      > = [
        ['a string', () => 'héllo wörld', 'héllo wörld'],
        ['a Buffer', () => Buffer.from('buffer body'), 'buffer body'],
        [
          'a Uint8Array view with an offset',
          () => new Uint8Array(Buffer.from('xxview bodyxx')).subarray(2, 11),
          'view body',
        ],
        [
          'a Readable of several chunks',
          () => Readable.from([Buffer.from('read'), Buffer.from('able '), Buffer.from('body')]),
          'readable body',
        ],
        ['a Readable in string mode', () => Readable.from(['str', 'ing'], { objectMode: true }), 'string'],
        ['an async iterable', () => chunksOf(['async ', 'iterable']), 'async iterable'],
        ['an empty body', () => '', ''],
      ];
      for (const [label, body, expected] of bodies) {
        it(`round-trips ${label}`, async () => {
          const uri = `${fresh()}object.bin`;
          await storage.writeAtomic(uri, body());
          assert.equal((await storage.read(uri)).toString('utf8'), expected);
        });
      }

      it('creates missing parents and replaces an existing object', async () => {
        const uri = `${fresh()}deep/er/object.txt`;
        await storage.writeAtomic(uri, 'first');
        await storage.writeAtomic(uri, 'second, longer');
        assert.equal((await storage.read(uri)).toString(), 'second, longer');
      });

      it('round-trips a body larger than 16 MiB given as a stream', async () => {
        const uri = `${fresh()}large.bin`;
        const data = randomBytes(17 * MiB + 123);
        await storage.writeAtomic(uri, Readable.from(slices(data, MiB)));
        const back = await storage.read(uri);
        assert.equal(back.length, data.length);
        assert.equal(sha256(back), sha256(data));
        // A range across the 8 MiB part boundary reads the right bytes.
        const range = await storage.readRange(uri, 8 * MiB - 10, 20);
        assert.deepEqual(range, data.subarray(8 * MiB - 10, 8 * MiB + 10));
      });

      it('rejects with NotFound naming the URI when reading a missing object', async () => {
        const uri = `${fresh()}missing.tif`;
        await assertStorageError(storage.read(uri), 'NotFound', uri);
      });
    });

    describe('readRange', () => {
      let uri: string;
      before(async () => {
        uri = `${fresh()}digits.txt`;
        await storage.writeAtomic(uri, '0123456789');
      });
      const cases: ReadonlyArray<readonly [string, number, number, string]> = [
        ['the first byte', 0, 1, '0'],
        ['a middle range', 2, 3, '234'],
        ['the whole object', 0, 10, '0123456789'],
        ['the last byte', 9, 1, '9'],
        ['past the end (shorter)', 8, 5, '89'],
        ['at the end (empty)', 10, 4, ''],
        ['beyond the end (empty)', 15, 2, ''],
        ['zero bytes', 3, 0, ''],
      ];
      for (const [label, offset, length, expected] of cases) {
        it(`reads ${label}: offset ${offset}, length ${length}`, async () => {
          assert.equal((await storage.readRange(uri, offset, length)).toString(), expected);
        });
      }

      it('rejects with NotFound for a missing object, also for zero bytes', async () => {
        const missing = `${fresh()}missing.bin`;
        await assertStorageError(storage.readRange(missing, 0, 4), 'NotFound', missing);
        await assertStorageError(storage.readRange(missing, 0, 0), 'NotFound', missing);
      });

      it('rejects negative or fractional arguments', async () => {
        await assert.rejects(storage.readRange(uri, -1, 4), RangeError);
        await assert.rejects(storage.readRange(uri, 0, 1.5), RangeError);
      });
    });

    describe('createReadStream', () => {
      it('streams the content', async () => {
        const uri = `${fresh()}stream.bin`;
        const data = randomBytes(300_000);
        await storage.writeAtomic(uri, data);
        const stream = await storage.createReadStream(uri);
        assert.equal(sha256(await collect(stream)), sha256(data));
      });

      it('rejects with NotFound before streaming when the object is missing', async () => {
        const uri = `${fresh()}missing.bin`;
        await assertStorageError(storage.createReadStream(uri), 'NotFound', uri);
      });
    });

    describe('list', () => {
      const names = [
        'a/b/img2.tif',
        'a/b/img1.tif',
        'a/b/other.txt',
        'a/b/c/deep.tif',
        'a/b2/x.tif',
        'a/b.tif',
        'a/c/d/e.tif',
      ];
      let base: string;
      const listed = async (prefix: string): Promise<string[]> =>
        (await all(storage.list(prefix))).map((o) => o.uri.slice(base.length));

      before(async () => {
        base = fresh();
        for (const name of names) await storage.writeAtomic(base + name, name);
      });

      it('is recursive and in byte order of the URI, across pages', async () => {
        assert.ok(names.length > backend.listPageSize, 'the fixture must span several pages');
        assert.deepEqual(await listed(`${base}a/`), [
          'a/b.tif',
          'a/b/c/deep.tif',
          'a/b/img1.tif',
          'a/b/img2.tif',
          'a/b/other.txt',
          'a/b2/x.tif',
          'a/c/d/e.tif',
        ]);
      });

      it('matches a prefix that ends mid-name', async () => {
        assert.deepEqual(await listed(`${base}a/b/im`), ['a/b/img1.tif', 'a/b/img2.tif']);
      });

      it('keeps a trailing slash to one directory, and without it matches siblings too', async () => {
        assert.deepEqual(await listed(`${base}a/b/`), [
          'a/b/c/deep.tif',
          'a/b/img1.tif',
          'a/b/img2.tif',
          'a/b/other.txt',
        ]);
        assert.deepEqual(await listed(`${base}a/b`), [
          'a/b.tif',
          'a/b/c/deep.tif',
          'a/b/img1.tif',
          'a/b/img2.tif',
          'a/b/other.txt',
          'a/b2/x.tif',
        ]);
      });

      it('matches an exact object name', async () => {
        assert.deepEqual(await listed(`${base}a/b/img1.tif`), ['a/b/img1.tif']);
      });

      it('yields nothing for a prefix with no objects', async () => {
        assert.deepEqual(await listed(`${base}nothing/`), []);
        assert.deepEqual(await listed(`${base}a/zz`), []);
      });

      it('reports sizes and times', async () => {
        const [first] = await all(storage.list(`${base}a/b/img1.tif`));
        assert.equal(first?.size, 'a/b/img1.tif'.length);
        assert.ok(first?.lastModified instanceof Date);
        assert.ok(Math.abs(first.lastModified.getTime() - Date.now()) < 10 * 60_000);
      });
    });

    describe('stat, exists, delete', () => {
      it('stats an object and returns undefined for a missing one', async () => {
        const dir = fresh();
        await storage.writeAtomic(`${dir}x/object.txt`, '12345');
        const info = await storage.stat(`${dir}x/object.txt`);
        assert.equal(info?.size, 5);
        assert.ok(info?.lastModified instanceof Date);
        assert.equal(await storage.stat(`${dir}x/missing.txt`), undefined);
        // A "directory" is not an object.
        assert.equal(await storage.stat(`${dir}x`), undefined);
        assert.equal(await storage.stat(`${dir}x/`), undefined);
        assert.equal(await storage.exists(`${dir}x/`), false);
      });

      it('exists follows writes and deletes; deleting a missing object is fine', async () => {
        const uri = `${fresh()}object.txt`;
        assert.equal(await storage.exists(uri), false);
        await storage.writeAtomic(uri, 'x');
        assert.equal(await storage.exists(uri), true);
        await storage.delete(uri);
        assert.equal(await storage.exists(uri), false);
        await storage.delete(uri);
        await assertStorageError(storage.read(uri), 'NotFound', uri);
      });
    });

    describe('failures leave nothing behind', () => {
      it('an already aborted signal writes nothing', async () => {
        const dir = fresh();
        const controller = new AbortController();
        controller.abort(new Error('stop'));
        await assertStorageError(
          storage.writeAtomic(`${dir}object.txt`, 'x', { signal: controller.signal }),
          'Aborted',
          `${dir}object.txt`,
        );
        await assertStorageError(
          storage.read(`${dir}object.txt`, { signal: controller.signal }),
          'Aborted',
          `${dir}object.txt`,
        );
        assert.deepEqual(await all(storage.list(dir)), []);
      });

      it('aborting a stream write midway (after 10 MiB) leaves no object and keeps the old one', async () => {
        const dir = fresh();
        const uri = `${dir}object.bin`;
        await storage.writeAtomic(uri, 'old content');
        const controller = new AbortController();
        const reason = new Error('user cancelled');
        const body = stallingBody(10, () => setTimeout(() => controller.abort(reason), 300));
        const error = await assertStorageError(
          storage.writeAtomic(uri, body, { signal: controller.signal }),
          'Aborted',
          uri,
        );
        assert.equal(error.cause, reason);
        assert.equal((await storage.read(uri)).toString(), 'old content');
        assert.deepEqual(
          (await all(storage.list(dir))).map((o) => o.uri),
          [uri],
        );
      });

      it('a body that fails midway leaves no object', async () => {
        const dir = fresh();
        const uri = `${dir}object.bin`;
        async function* failing(): AsyncGenerator<Uint8Array> {
          yield randomBytes(MiB);
          throw new Error('upstream broke');
        }
        await assert.rejects(storage.writeAtomic(uri, failing()), (error: unknown) => {
          assert.ok(error instanceof StorageError);
          assert.match(error.message, /upstream broke/);
          return true;
        });
        assert.equal(await storage.exists(uri), false);
        assert.deepEqual(await all(storage.list(dir)), []);
      });
    });

    describe('localPath', () => {
      it('gives a local file with the content', async () => {
        const uri = `${fresh()}scene.tif`;
        await storage.writeAtomic(uri, 'pixels');
        const path = await storage.localPath(uri);
        assert.equal(await readFile(path, 'utf8'), 'pixels');
        assert.match(path, /scene\.tif$/);
      });

      it('rejects with NotFound for a missing object', async () => {
        const uri = `${fresh()}missing.tif`;
        await assertStorageError(storage.localPath(uri), 'NotFound', uri);
      });
    });
  });
}

/** Asserts that `promise` rejects with a StorageError of `code` whose uri and message name `uri`. */
export async function assertStorageError(
  promise: Promise<unknown>,
  code: StorageErrorCode,
  uri: string,
): Promise<StorageError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof StorageError, `expected a StorageError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.uri, uri);
  assert.ok(caught.message.startsWith(`${uri}: `), caught.message);
  return caught;
}

/** Every item of an async iterable. */
export async function all(items: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** `count` chunks of 1 MiB, then `onStall()`, then a wait that never ends. */
export async function* stallingBody(count: number, onStall: () => void): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i += 1) yield randomBytes(MiB);
  onStall();
  await new Promise(() => undefined);
}

async function* chunksOf(parts: readonly string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

function* slices(data: Buffer, size: number): Generator<Buffer> {
  for (let start = 0; start < data.length; start += size) yield data.subarray(start, start + size);
}
