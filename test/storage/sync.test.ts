import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { createStorage } from '../../lib/storage/index.js';
import { S3Storage } from '../../lib/storage/s3.js';
import { DownloadCache } from '../../lib/storage/cache.js';
import { transfer, type TransferEvent, type TransferOptions } from '../../lib/storage/sync.js';
import type { Storage } from '../../lib/storage/types.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { assertStorageError } from './contract.js';

const MiB = 1024 * 1024;
/** Commands that write to S3 or read an object's bytes. */
const TRANSFER_COMMANDS = [
  'PutObjectCommand',
  'CreateMultipartUploadCommand',
  'UploadPartCommand',
  'GetObjectCommand',
];

let server: S3rverHandle;
let work: string;
let storage: Storage;
let client: S3Client;
let commands: string[] = [];
let counter = 0;

before(async () => {
  // S3's multipart ETags ('<md5 of part md5s>-<parts>'), not s3rver's whole-object MD5.
  server = await startS3rver({ multipartEtags: 'aws' });
  work = await mkdtemp(join(tmpdir(), 'geobatch-sync-'));
  client = new S3Client(server.clientConfig);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      commands.push(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  storage = createStorage({ s3: client, cacheDir: join(work, 'cache') });
});
after(async () => {
  client.destroy();
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

/** A fresh local directory. */
async function freshDir(): Promise<string> {
  const dir = join(work, `d${++counter}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A tree of files under a fresh directory: relative path -> content. */
async function localTree(files: Record<string, Buffer | string>): Promise<string> {
  const dir = await freshDir();
  for (const [relative, content] of Object.entries(files)) {
    await mkdir(join(dir, relative, '..'), { recursive: true });
    await writeFile(join(dir, relative), content);
  }
  return dir;
}

/** Every file under a local directory (relative path -> content), failing on temporary files. */
async function readLocalTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    assert.ok(!/\.tmp-/.test(entry.name), `temporary file left behind: ${path}`);
    out[path.slice(dir.length + 1)] = (await readFile(path)).toString('base64');
  }
  return out;
}

/** Every object under an S3 prefix (key relative to the prefix -> content). */
async function readS3Tree(prefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const info of storage.list(prefix)) {
    out[info.uri.slice(prefix.length)] = (await storage.read(info.uri)).toString('base64');
  }
  return out;
}

function encoded(files: Record<string, Buffer | string>): Record<string, string> {
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
}

async function run(
  source: string,
  destination: string,
  options: Partial<TransferOptions> = {},
): Promise<Awaited<ReturnType<typeof transfer>>> {
  commands = [];
  return transfer(storage, source, destination, { mode: 'sync', concurrency: 3, ...options });
}

const transfers = (): string[] => commands.filter((c) => TRANSFER_COMMANDS.includes(c));

const TREE = {
  'a.tif': randomBytes(3000),
  'b/c.tif': randomBytes(100),
  'b/d/e.json': '{"x":1}',
  'b/empty.txt': '',
  'z.txt': 'last',
};

describe('sync in every direction', () => {
  it('local -> S3, then a rerun skips every file without uploading', async () => {
    const src = await localTree(TREE);
    const bucket = await server.createBucket();
    const first = await run(src, `s3://${bucket}/data`);
    assert.equal(first.copied, 5);
    assert.equal(first.bytes, 3000 + 100 + 7 + 0 + 4);
    assert.deepEqual(await readS3Tree(`s3://${bucket}/data/`), encoded(TREE));

    const second = await run(src, `s3://${bucket}/data/`);
    assert.deepEqual([second.copied, second.skipped, second.bytes], [0, 5, 0]);
    assert.deepEqual(transfers(), []);
  });

  it('S3 -> local, then a rerun skips without downloading', async () => {
    const bucket = await server.createBucket();
    for (const [key, content] of Object.entries(TREE))
      await storage.writeAtomic(`s3://${bucket}/in/${key}`, content);
    const dst = join(await freshDir(), 'out');
    const first = await run(`s3://${bucket}/in`, dst);
    assert.equal(first.copied, 5);
    assert.deepEqual(await readLocalTree(dst), encoded(TREE));
    const mtime = (await stat(join(dst, 'a.tif'))).mtimeMs;

    const second = await run(`s3://${bucket}/in/`, dst);
    assert.deepEqual([second.copied, second.skipped], [0, 5]);
    assert.ok(!commands.includes('GetObjectCommand'), commands.join());
    assert.equal((await stat(join(dst, 'a.tif'))).mtimeMs, mtime);
  });

  it('S3 -> S3 across buckets, then a rerun skips', async () => {
    const from = await server.createBucket();
    const to = await server.createBucket();
    for (const [key, content] of Object.entries(TREE))
      await storage.writeAtomic(`s3://${from}/${key}`, content);
    const first = await run(`s3://${from}`, `s3://${to}/copy`);
    assert.equal(first.copied, 5);
    assert.deepEqual(await readS3Tree(`s3://${to}/copy/`), encoded(TREE));
    const second = await run(`s3://${from}`, `s3://${to}/copy`);
    assert.deepEqual([second.copied, second.skipped], [0, 5]);
    assert.deepEqual(transfers(), []);
  });

  it('local -> local, then a rerun skips and leaves the files alone', async () => {
    const src = await localTree(TREE);
    const dst = join(await freshDir(), 'deep', 'out');
    assert.equal((await run(src, dst)).copied, 5);
    assert.deepEqual(await readLocalTree(dst), encoded(TREE));
    const mtime = (await stat(join(dst, 'b/d/e.json'))).mtimeMs;
    const second = await run(src, dst);
    assert.deepEqual([second.copied, second.skipped], [0, 5]);
    assert.equal((await stat(join(dst, 'b/d/e.json'))).mtimeMs, mtime);
  });
});

describe('sync: what is copied again', () => {
  it('copies a file changed at the same size again (content compare); --size-only does not', async () => {
    const src = await localTree(TREE);
    const bucket = await server.createBucket();
    await run(src, `s3://${bucket}/`);
    const changed = randomBytes(3000);
    await writeFile(join(src, 'a.tif'), changed);
    await writeFile(join(src, 'z.txt'), 'longer now');

    const sizeOnly = await run(src, `s3://${bucket}/`, { compare: 'size' });
    assert.deepEqual([sizeOnly.copied, sizeOnly.skipped], [1, 4]);
    assert.equal((await storage.read(`s3://${bucket}/z.txt`)).toString(), 'longer now');
    assert.notDeepEqual(await storage.read(`s3://${bucket}/a.tif`), changed);

    const byContent = await run(src, `s3://${bucket}/`);
    assert.deepEqual([byContent.copied, byContent.skipped], [1, 4]);
    assert.deepEqual(await storage.read(`s3://${bucket}/a.tif`), changed);
  });

  it('cp --recursive copies every file again; cp of one file goes into a directory or a bucket', async () => {
    const src = await localTree(TREE);
    const bucket = await server.createBucket();
    assert.equal((await run(src, `s3://${bucket}/r`, { mode: 'copy', recursive: true })).copied, 5);
    const again = await run(src, `s3://${bucket}/r`, { mode: 'copy', recursive: true });
    assert.deepEqual([again.copied, again.skipped], [5, 0]);
    assert.equal(transfers().filter((c) => c === 'PutObjectCommand').length, 5);

    const one = await run(join(src, 'b/c.tif'), `s3://${bucket}`, { mode: 'copy' });
    assert.equal(one.destination, `s3://${bucket}/c.tif`);
    assert.deepEqual(await storage.read(`s3://${bucket}/c.tif`), TREE['b/c.tif']);
    const dir = await freshDir();
    const back = await run(`s3://${bucket}/c.tif`, dir, { mode: 'copy' });
    assert.equal(back.destination, join(dir, 'c.tif'));
    assert.deepEqual(await readFile(join(dir, 'c.tif')), TREE['b/c.tif']);
    await run(`s3://${bucket}/c.tif`, join(dir, 'renamed.bin'), { mode: 'copy' });
    assert.deepEqual(await readFile(join(dir, 'renamed.bin')), TREE['b/c.tif']);
  });
});

describe('sync --delete, --dry-run, filters', () => {
  it('--delete removes destination files the source lacks, never without the flag, never excluded ones', async () => {
    const src = await localTree(TREE);
    const bucket = await server.createBucket();
    await run(src, `s3://${bucket}/t`);
    await storage.writeAtomic(`s3://${bucket}/t/gone.tif`, 'old');
    await storage.writeAtomic(`s3://${bucket}/t/b/gone.log`, 'old');
    await storage.writeAtomic(`s3://${bucket}/t-sibling/keep.tif`, 'not under the root');

    const kept = await run(src, `s3://${bucket}/t`);
    assert.equal(kept.deleted, 0);
    assert.ok(await storage.exists(`s3://${bucket}/t/gone.tif`));

    const dry = await run(src, `s3://${bucket}/t`, { delete: true, dryRun: true });
    assert.equal(dry.deleted, 2);
    assert.ok(await storage.exists(`s3://${bucket}/t/gone.tif`));

    const filtered = await run(src, `s3://${bucket}/t`, { delete: true, exclude: ['*.log'] });
    assert.equal(filtered.deleted, 1);
    assert.equal(await storage.exists(`s3://${bucket}/t/gone.tif`), false);
    assert.ok(await storage.exists(`s3://${bucket}/t/b/gone.log`));

    const all = await run(src, `s3://${bucket}/t`, { delete: true });
    assert.equal(all.deleted, 1);
    assert.deepEqual(await readS3Tree(`s3://${bucket}/t/`), encoded(TREE));
    assert.ok(await storage.exists(`s3://${bucket}/t-sibling/keep.tif`));
  });

  it('--dry-run reports what it would copy and writes nothing', async () => {
    const src = await localTree(TREE);
    const bucket = await server.createBucket();
    const events: TransferEvent[] = [];
    const summary = await run(src, `s3://${bucket}/dry`, { dryRun: true, onEvent: (e) => events.push(e) });
    assert.deepEqual([summary.copied, summary.dryRun], [5, true]);
    assert.equal(events.filter((e) => e.type === 'file' && e.action === 'copy').length, 5);
    assert.deepEqual(transfers(), []);
    assert.deepEqual(await readS3Tree(`s3://${bucket}/`), {});
    const local = join(await freshDir(), 'never');
    await storage.writeAtomic(`s3://${bucket}/one.txt`, 'one');
    const down = await run(`s3://${bucket}/`, local, { dryRun: true });
    assert.equal(down.copied, 1);
    await run(src, local, { dryRun: true, mode: 'copy', recursive: true });
    await assert.rejects(stat(local), { code: 'ENOENT' });
  });

  it('--include and --exclude select by path relative to the root', async () => {
    const src = await localTree({ ...TREE, 'scratch/x.tif': 'x', 'scratch/y.txt': 'y' });
    const dst = await freshDir();
    const summary = await run(src, dst, { include: ['*.tif', 'b/d/**'], exclude: ['scratch/**'] });
    assert.equal(summary.files, 3);
    assert.deepEqual(Object.keys(await readLocalTree(dst)).sort(), ['a.tif', 'b/c.tif', 'b/d/e.json']);
  });
});

describe('sync: interruptions', () => {
  it('an interrupted sync leaves only whole files; the rerun finishes with the right content', async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i += 1) files[`f${String(i).padStart(2, '0')}.bin`] = randomBytes(200_000 + i);
    files['f05.bin'] = randomBytes(9 * MiB);
    const src = await localTree(files);
    const bucket = await server.createBucket();
    const steps: { from: string; to: string; read: () => Promise<Record<string, string>> }[] = [
      { from: src, to: `s3://${bucket}/int/`, read: () => readS3Tree(`s3://${bucket}/int/`) },
      {
        from: `s3://${bucket}/int/`,
        to: join(await freshDir(), 'int'),
        read: () => readLocalTree(steps[1]!.to),
      },
    ];
    for (const step of steps) {
      const controller = new AbortController();
      let copied = 0;
      let streamed = 0;
      const onEvent = (event: TransferEvent): void => {
        if (event.type === 'file' && event.action === 'copy') copied += 1;
        if (event.type === 'bytes') streamed += event.bytes;
        // mid-way: some files done, others (the big one among them) in flight
        if (copied >= 4 && streamed > 3 * MiB && !controller.signal.aborted)
          controller.abort(new Error('stop'));
      };
      await assert.rejects(
        run(step.from, step.to, { signal: controller.signal, onEvent, concurrency: 2 }),
        (error: unknown) => (error as { code?: string }).code === 'Aborted',
      );
      const partial = await step.read();
      const whole = encoded(files);
      const present = Object.keys(partial);
      assert.ok(present.length >= 4 && present.length < 12, `${present.length} files after the interruption`);
      for (const name of present) assert.equal(partial[name], whole[name], `${name} is whole`);

      const rerun = await run(step.from, step.to);
      assert.deepEqual([rerun.copied, rerun.skipped], [12 - present.length, present.length]);
      assert.deepEqual(await step.read(), whole);
    }
  });
});

describe('sync: multipart uploads', () => {
  it('a file above the part size goes up in parts; its multipart ETag makes reruns skip both ways', async () => {
    const big = randomBytes(9 * MiB + 12345);
    const src = await localTree({ 'big.bin': big, 'small.bin': 'x' });
    const bucket = await server.createBucket();
    await run(src, `s3://${bucket}/mp`);
    assert.ok(commands.includes('UploadPartCommand'), commands.join());
    const info = await storage.stat(`s3://${bucket}/mp/big.bin`);
    assert.match(info?.etag ?? '', /^"[0-9a-f]{32}-2"$/);
    assert.deepEqual(await storage.read(`s3://${bucket}/mp/big.bin`), big);
    const again = await run(src, `s3://${bucket}/mp`);
    assert.deepEqual([again.copied, again.skipped], [0, 2]);

    const dst = await freshDir();
    await run(`s3://${bucket}/mp`, dst);
    assert.deepEqual(await readFile(join(dst, 'big.bin')), big);
    const back = await run(`s3://${bucket}/mp`, dst);
    assert.deepEqual([back.copied, back.skipped], [0, 2]);
    // one byte changed: same size, other parts' MD5s
    big.writeUInt8(big.readUInt8(big.length - 1) ^ 0xff, big.length - 1);
    await writeFile(join(src, 'big.bin'), big);
    const changed = await run(src, `s3://${bucket}/mp`);
    assert.deepEqual([changed.copied, changed.skipped], [1, 1]);
    assert.deepEqual(await storage.read(`s3://${bucket}/mp/big.bin`), big);
  });

  it('an object uploaded with another part size: S3 -> local infers it, S3 -> S3 records the source ETag', async () => {
    const bucket = await server.createBucket();
    const other = new S3Storage(new S3Client(server.clientConfig), {
      partSize: 16 * MiB,
      multipartThreshold: 0,
      cache: new DownloadCache(join(work, 'cache16')),
    });
    const data = randomBytes(17 * MiB);
    await other.writeAtomic(`s3://${bucket}/src/p16.bin`, data);
    other.client.destroy();
    const sourceEtag = (await storage.stat(`s3://${bucket}/src/p16.bin`))?.etag ?? '';
    assert.match(sourceEtag, /-2"$/);

    const dst = await freshDir();
    await run(`s3://${bucket}/src`, dst);
    const local = await run(`s3://${bucket}/src`, dst);
    assert.deepEqual([local.copied, local.skipped], [0, 1]);

    await run(`s3://${bucket}/src`, `s3://${bucket}/dst`);
    const copy = await storage.stat(`s3://${bucket}/dst/p16.bin`);
    assert.match(copy?.etag ?? '', /-3"$/);
    assert.notEqual(copy?.etag, sourceEtag);
    const s3 = await run(`s3://${bucket}/src`, `s3://${bucket}/dst`);
    assert.deepEqual([s3.copied, s3.skipped], [0, 1]);
    assert.deepEqual(transfers(), []);
  });
});

describe('sync: errors', () => {
  it('a missing source, a missing bucket: one StorageError naming the URI', async () => {
    const dir = await freshDir();
    await assertStorageError(run(join(dir, 'nope'), join(dir, 'out')), 'NotFound', `${join(dir, 'nope')}/`);
    await assertStorageError(
      run(join(dir, 'nope.tif'), join(dir, 'out'), { mode: 'copy' }),
      'NotFound',
      join(dir, 'nope.tif'),
    );
    const bucket = await server.createBucket();
    await assertStorageError(run(`s3://${bucket}/empty/`, dir), 'NotFound', `s3://${bucket}/empty/`);
    const src = await localTree(TREE);
    const missing = `s3://no-such-bucket-${randomBytes(4).toString('hex')}`;
    const error = await assertStorageError(run(src, `${missing}/x`), 'NoSuchBucket', `${missing}/x/`);
    assert.match(error.message, /does not exist/);
    await assertStorageError(run(`${missing}/x`, dir), 'NoSuchBucket', `${missing}/x/`);
    await assertStorageError(
      run(src, `${missing}/x`, { mode: 'copy', recursive: true }),
      'NoSuchBucket',
      `${missing}/x/`,
    );
  });

  it('rejected credentials stop the run with AccessDenied', async () => {
    const denied = createStorage({
      s3: { ...server.clientConfig, credentials: { accessKeyId: 'WRONG', secretAccessKey: 'WRONG' } },
      cacheDir: join(work, 'cache-denied'),
    });
    const bucket = await server.createBucket();
    const src = await localTree(TREE);
    await assertStorageError(
      transfer(denied, src, `s3://${bucket}/x`, { mode: 'sync' }),
      'AccessDenied',
      `s3://${bucket}/x/`,
    );
  });

  it('a file that cannot be written stops the run; the files copied until then are whole', async () => {
    const src = await localTree(TREE);
    const dst = await freshDir();
    await writeFile(join(dst, 'b'), 'a file where the directory b/ should be');
    let error: unknown;
    await run(src, dst, { concurrency: 1 }).catch((e: unknown) => (error = e));
    assert.equal((error as { code?: string }).code, 'NotWritable');
    assert.deepEqual(await readFile(join(dst, 'a.tif')), TREE['a.tif']);
    assert.equal((await readFile(join(dst, 'b'))).toString(), 'a file where the directory b/ should be');
    await readLocalTree(dst);
  });

  it('refuses a destination inside the source', async () => {
    const src = await localTree(TREE);
    await assertStorageError(run(src, join(src, 'sub')), 'InvalidUri', join(src, 'sub'));
  });
});
