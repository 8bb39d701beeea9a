// A real S3 wire-protocol server (s3rver 3.7) on 127.0.0.1 with a random port, for tests.
//
// s3rver runs in a child node process, where two of its defects are worked around:
// - ListObjectsV2 continuation tokens are encrypted with DES, which OpenSSL 3 only offers through
//   its legacy provider. Measured on Node 20.20.2 / OpenSSL 3.0.19: the first truncated page still
//   answers 500 InternalError ("digital envelope routines::unsupported") unless node runs with
//   --openssl-legacy-provider; untruncated listings work. scripts/test.mjs does not pass that flag,
//   so the child gets it. On a node build without the legacy provider, the child swaps DES for a
//   pass-through cipher (the token only has to round-trip); `tokenCipher` tells which ran.
// - It lists keys in the order readdir returns files, not in key order, and so drops keys when it
//   resumes a truncated listing: with keys 'a/b.tif' and 'a/b/c.tif', 'a/b.tif' is lost. Its
//   walker is replaced by one that visits entries in key order.
// Its other known defects (suffix ranges `bytes=-N`; `bytes=0-0` answered with the whole object;
// delimiter listings) are left alone: lib/storage avoids or tolerates them.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

const CHILD_SOURCE = `
'use strict';
const crypto = require('node:crypto');
const [s3rverPath, directory, multipartEtags] = process.argv.slice(1);
let cipher = 'des';
try {
  crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
} catch {
  cipher = 'pass-through';
  const passThrough = () => ({
    update: (data, encoding) => Buffer.from(data, encoding),
    final: () => Buffer.alloc(0),
  });
  const { createCipheriv, createDecipheriv } = crypto;
  crypto.createCipheriv = (name, ...rest) => (name === 'des' ? passThrough() : createCipheriv(name, ...rest));
  crypto.createDecipheriv = (name, ...rest) => (name === 'des' ? passThrough() : createDecipheriv(name, ...rest));
}
// Key order: a directory 'b' holds the keys 'b/...', a file 'b.tif._S3rver_object' the key 'b.tif'.
const fs = require('node:fs');
const path = require('node:path');
const utils = require(path.join(path.dirname(s3rverPath), 'utils.js'));
utils.walk = function* walk(dir, recurseFilter) {
  const entries = fs.readdirSync(dir).map((name) => {
    const entryPath = path.posix.join(dir, name);
    const isDirectory = fs.statSync(entryPath).isDirectory();
    const sortKey = isDirectory ? name + '/' : name.replace(/\\._S3rver_[^/]*$/, '');
    return { entryPath, isDirectory, sortKey: Buffer.from(sortKey) };
  });
  entries.sort((a, b) => Buffer.compare(a.sortKey, b.sortKey));
  for (const { entryPath, isDirectory } of entries) {
    if (!isDirectory) yield entryPath;
    else if (!recurseFilter || recurseFilter(entryPath)) yield* walk(entryPath, recurseFilter);
  }
};
// s3rver gives a multipart upload the MD5 of the whole object; S3 gives it
// '<MD5 of the concatenated binary MD5s of the parts>-<number of parts>'.
if (multipartEtags === 'aws') {
  const Store = require(path.join(path.dirname(s3rverPath), 'stores', 'filesystem.js'));
  const putObjectMultipart = Store.prototype.putObjectMultipart;
  Store.prototype.putObjectMultipart = async function (bucket, uploadId, parts) {
    const uploadDir = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const key = fs.readFileSync(path.join(uploadDir, 'key'), 'utf8');
    const numbers = parts.map((part) => part.number).sort((a, b) => a - b);
    const digests = numbers.map((n) => Buffer.from(fs.readFileSync(path.join(uploadDir, n + '.md5'), 'utf8'), 'hex'));
    const etag = crypto.createHash('md5').update(Buffer.concat(digests)).digest('hex') + '-' + numbers.length;
    const result = await putObjectMultipart.call(this, bucket, uploadId, parts);
    fs.writeFileSync(this.getResourcePath(bucket, key, 'object.md5'), etag);
    return { ...result, md5: etag };
  };
}
const S3rver = require(s3rverPath);
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory });
server.run().then(
  (address) => process.send({ port: address.port, cipher }),
  (error) => { console.error(error); process.exit(1); },
);
process.on('disconnect', () => { server.close().finally(() => process.exit(0)); });
`;

export interface S3rverHandle {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** How continuation tokens are encrypted: 'des' (legacy provider) or 'pass-through' (fallback). */
  readonly tokenCipher: string;
  /** S3 client settings for this server: endpoint, path-style addressing, fixed test credentials. */
  readonly clientConfig: S3ClientConfig;
  /** Creates a bucket with a fresh random name and returns the name. */
  createBucket(): Promise<string>;
  stop(): Promise<void>;
}

export interface S3rverOptions {
  /**
   * ETags of multipart uploads: 'md5' (s3rver's own: the MD5 of the whole object) or 'aws' (as
   * S3 makes them: the MD5 of the parts' MD5s, '-', the number of parts).
   * @default 'md5'
   */
  readonly multipartEtags?: 'md5' | 'aws';
}

/** Starts s3rver in a child process on 127.0.0.1 with a random port and a fresh data directory. */
export async function startS3rver(options: S3rverOptions = {}): Promise<S3rverHandle> {
  const directory = await mkdtemp(join(tmpdir(), 'geobatch-s3rver-'));
  const s3rverPath = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '-e', CHILD_SOURCE, s3rverPath, directory, options.multipartEtags ?? 'md5'],
    {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ready = await new Promise<{ port: number; cipher: string }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { port: number; cipher: string }));
    child.once('exit', (code) => reject(new Error(`s3rver exited early (code ${code}): ${stderr.trim()}`)));
    child.once('error', reject);
  });
  const endpoint = `http://127.0.0.1:${ready.port}`;
  const clientConfig: S3ClientConfig = {
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 1,
  };
  const admin = new S3Client(clientConfig);
  return {
    endpoint,
    tokenCipher: ready.cipher,
    clientConfig,
    async createBucket() {
      const name = `test-${randomBytes(6).toString('hex')}`;
      await admin.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async stop() {
      admin.destroy();
      await stopChild(child);
      await rm(directory, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
