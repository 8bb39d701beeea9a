import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DownloadCache } from '../../lib/storage/cache.js';
import { createStorage } from '../../lib/storage/index.js';
import { S3Storage } from '../../lib/storage/s3.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { all, assertStorageError, stallingBody, storageContract } from './contract.js';

const MiB = 1024 * 1024;

let server: S3rverHandle;
let cacheDir: string;
before(async () => {
  server = await startS3rver();
  cacheDir = await mkdtemp(join(tmpdir(), 'geobatch-s3-cache-'));
});
after(async () => {
  await server.stop();
  await rm(cacheDir, { recursive: true, force: true });
});

/** Names of the commands a client sends, in order. */
function recordCommands(client: S3Client): string[] {
  const names: string[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      names.push(context.commandName ?? 'unknown');
      return next(args);
    },
    { step: 'initialize', name: 'recordCommands' },
  );
  return names;
}

function s3Storage(options: { listPageSize?: number } = {}): { storage: S3Storage; commands: string[] } {
  const client = new S3Client(server.clientConfig);
  const commands = recordCommands(client);
  const storage = new S3Storage(client, { ...options, cache: new DownloadCache(cacheDir) });
  return { storage, commands };
}

storageContract('S3Storage on s3rver', async () => {
  const bucket = await server.createBucket();
  const { storage } = s3Storage({ listPageSize: 2 });
  return {
    storage,
    root: `s3://${bucket}/contract/`,
    listPageSize: 2,
    teardown: async () => storage.client.destroy(),
  };
});

describe('S3Storage', () => {
  let bucket: string;
  let storage: S3Storage;
  let commands: string[];
  before(async () => {
    bucket = await server.createBucket();
    ({ storage, commands } = s3Storage({ listPageSize: 2 }));
  });
  after(() => storage.client.destroy());

  it('lists page by page with continuation tokens (7 objects, 2 per page: 4 requests)', async () => {
    for (let i = 1; i <= 7; i += 1) await storage.writeAtomic(`s3://${bucket}/pages/${i}.tif`, `${i}`);
    commands.length = 0;
    const uris = (await all(storage.list(`s3://${bucket}/pages/`))).map((o) => o.uri);
    assert.deepEqual(
      uris,
      [1, 2, 3, 4, 5, 6, 7].map((i) => `s3://${bucket}/pages/${i}.tif`),
    );
    assert.deepEqual(commands, Array(4).fill('ListObjectsV2Command'));
  });

  it('stores user metadata with PutObject and streamed (Upload) writes; stat returns it', async () => {
    const metadata = { 'geobatch-source-etag': 'abc-2' };
    await storage.writeAtomic(`s3://${bucket}/meta/small.txt`, 'x', { metadata });
    await storage.writeAtomic(`s3://${bucket}/meta/streamed.txt`, Readable.from([Buffer.from('y')]), {
      metadata,
    });
    assert.deepEqual((await storage.stat(`s3://${bucket}/meta/small.txt`))?.metadata, metadata);
    assert.deepEqual((await storage.stat(`s3://${bucket}/meta/streamed.txt`))?.metadata, metadata);
    await storage.writeAtomic(`s3://${bucket}/meta/small.txt`, 'z');
    assert.deepEqual((await storage.stat(`s3://${bucket}/meta/small.txt`))?.metadata ?? {}, {});
  });

  it('skips folder placeholders (keys ending in /)', async () => {
    await storage.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'folders/sub/', Body: Buffer.alloc(0) }),
    );
    await storage.writeAtomic(`s3://${bucket}/folders/sub/a.tif`, 'a');
    assert.deepEqual(
      (await all(storage.list(`s3://${bucket}/folders/`))).map((o) => o.uri),
      [`s3://${bucket}/folders/sub/a.tif`],
    );
  });

  it('sends a small body with one PutObject', async () => {
    commands.length = 0;
    await storage.writeAtomic(`s3://${bucket}/small.txt`, Buffer.alloc(1000, 1), {
      contentType: 'text/plain',
    });
    await storage.writeAtomic(`s3://${bucket}/small-stream.txt`, Readable.from([Buffer.alloc(1000, 2)]));
    assert.deepEqual(commands, ['PutObjectCommand', 'PutObjectCommand']);
  });

  it('sends a body over 16 MiB as a multipart upload of 8 MiB parts', async () => {
    commands.length = 0;
    const data = Buffer.alloc(17 * MiB, 7);
    await storage.writeAtomic(`s3://${bucket}/large.bin`, data);
    assert.deepEqual(commands, [
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
    ]);
    assert.equal((await storage.stat(`s3://${bucket}/large.bin`))?.size, data.length);
  });

  it('aborting a multipart upload midway aborts it on S3 and leaves no object', async () => {
    const uri = `s3://${bucket}/aborted.bin`;
    commands.length = 0;
    const controller = new AbortController();
    const body = stallingBody(10, () => {
      const timer = setInterval(() => {
        if (commands.includes('UploadPartCommand')) {
          clearInterval(timer);
          controller.abort();
        }
      }, 10);
    });
    await assertStorageError(storage.writeAtomic(uri, body, { signal: controller.signal }), 'Aborted', uri);
    assert.ok(commands.includes('AbortMultipartUploadCommand'), commands.join());
    assert.ok(!commands.includes('CompleteMultipartUploadCommand'), commands.join());
    assert.equal(await storage.exists(uri), false);
  });

  it('rejects URIs that name a bucket or folder instead of an object', async () => {
    await assertStorageError(storage.read(`s3://${bucket}`), 'InvalidUri', `s3://${bucket}`);
    await assertStorageError(
      storage.writeAtomic(`s3://${bucket}/dir/`, 'x'),
      'InvalidUri',
      `s3://${bucket}/dir/`,
    );
  });

  it('localPath downloads once into the cache, and again when the object changes', async () => {
    const uri = `s3://${bucket}/cached/scene.tif`;
    await storage.writeAtomic(uri, 'version 1');
    commands.length = 0;
    const first = await storage.localPath(uri);
    assert.ok(first.startsWith(cacheDir), first);
    assert.equal(await readFile(first, 'utf8'), 'version 1');
    assert.deepEqual(commands, ['HeadObjectCommand', 'GetObjectCommand']);

    commands.length = 0;
    assert.equal(await storage.localPath(uri), first);
    assert.deepEqual(commands, ['HeadObjectCommand'], 'a hit costs one HEAD and no download');

    await storage.writeAtomic(uri, 'version 2');
    const second = await storage.localPath(uri);
    assert.notEqual(second, first);
    assert.equal(await readFile(second, 'utf8'), 'version 2');
    const entries = await readdir(join(second, '..'));
    assert.deepEqual(entries, ['scene.tif'], 'no temporary files stay in the cache');
  });
});

describe('S3Storage errors', () => {
  const missingBucket = 'geobatch-no-such-bucket';
  const uri = `s3://${missingBucket}/x/y.tif`;
  let storage: S3Storage;
  before(() => {
    ({ storage } = s3Storage());
  });
  after(() => storage.client.destroy());

  it('a missing bucket is NoSuchBucket for every operation, with a message naming it', async () => {
    const operations: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
      ['read', () => storage.read(uri)],
      ['readRange', () => storage.readRange(uri, 0, 10)],
      ['createReadStream', () => storage.createReadStream(uri)],
      ['writeAtomic', () => storage.writeAtomic(uri, 'x')],
      ['stat', () => storage.stat(uri)],
      ['exists', () => storage.exists(uri)],
      ['delete', () => storage.delete(uri)],
      ['localPath', () => storage.localPath(uri)],
    ];
    for (const [name, operation] of operations) {
      const error = await assertStorageError(operation(), 'NoSuchBucket', uri);
      assert.equal(error.message, `${uri}: bucket '${missingBucket}' does not exist`, name);
    }
    await assertStorageError(
      all(storage.list(`s3://${missingBucket}/x/`)),
      'NoSuchBucket',
      `s3://${missingBucket}/x/`,
    );
  });

  for (const [label, failure] of [
    ['a provider that throws a plain Error', () => new Error('boom')],
    [
      'the SDK chain finding nothing',
      () =>
        Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        }),
    ],
  ] as const) {
    it(`no credentials (${label}) is NoCredentials with what to do`, async () => {
      const noCredentials = new S3Storage({
        ...server.clientConfig,
        credentials: async () => {
          throw failure();
        },
      });
      try {
        const target = `s3://${missingBucket}/k`;
        const error = await assertStorageError(noCredentials.read(target), 'NoCredentials', target);
        assert.equal(
          error.message,
          `${target}: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run 'aws sso login')`,
        );
        await assertStorageError(
          all(noCredentials.list(`s3://${missingBucket}/`)),
          'NoCredentials',
          `s3://${missingBucket}`,
        );
      } finally {
        noCredentials.client.destroy();
      }
    });
  }

  it('an unreachable endpoint is an Io error that says so', async () => {
    const port = await closedPort();
    const offline = new S3Storage({ ...server.clientConfig, endpoint: `http://127.0.0.1:${port}` });
    try {
      const error = await assertStorageError(offline.read(uri), 'Io', uri);
      assert.match(error.message, /cannot reach S3 \(ECONNREFUSED\)/);
    } finally {
      offline.client.destroy();
    }
  });

  it('rejects options outside what S3 allows', () => {
    assert.throws(
      () => new S3Storage(server.clientConfig, { partSize: MiB }),
      /'partSize' = 1048576: expected an integer from 8388608/,
    );
    assert.throws(() => new S3Storage(server.clientConfig, { listPageSize: 0 }), /'listPageSize' = 0/);
  });
});

describe('createStorage with S3', () => {
  it('routes s3:// URIs to S3 and paths to the local disk', async () => {
    const bucket = await server.createBucket();
    const local = await mkdtemp(join(tmpdir(), 'geobatch-routing-'));
    const client = new S3Client(server.clientConfig);
    const commands = recordCommands(client);
    const storage = createStorage({ s3: client, cacheDir });
    try {
      await storage.writeAtomic(`s3://${bucket}/a.txt`, 'remote');
      await storage.writeAtomic(join(local, 'a.txt'), 'local');
      assert.equal((await storage.read(`s3://${bucket}/a.txt`)).toString(), 'remote');
      assert.equal((await storage.read(join(local, 'a.txt'))).toString(), 'local');
      assert.deepEqual(commands, ['PutObjectCommand', 'GetObjectCommand']);
      assert.ok((await storage.localPath(`s3://${bucket}/a.txt`)).startsWith(cacheDir));
    } finally {
      client.destroy();
      await rm(local, { recursive: true, force: true });
    }
  });

  it('reads GEOBATCH_S3_ENDPOINT from the environment it is given', async () => {
    const bucket = await server.createBucket();
    const storage = createStorage({
      env: { GEOBATCH_S3_ENDPOINT: server.endpoint },
      s3: { credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
      cacheDir,
    });
    await storage.writeAtomic(`s3://${bucket}/env.txt`, 'via env');
    assert.equal((await storage.read(`s3://${bucket}/env.txt`)).toString(), 'via env');
  });
});

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}
