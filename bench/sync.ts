/**
 * `npm run bench -- sync`: geobatch's transfer (the library behind `cp` and `sync`) between a
 * local directory and s3rver on loopback: 200 files of 256 KiB, and one file of 200 MB
 * (multipart), up, rerun (nothing to copy: local files hashed against the listed ETags), down.
 * s3rver writes every object to its own disk, so the figures are a floor for real S3.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { createStorage } from '../lib/storage/index.js';
import { transfer, type TransferSummary } from '../lib/storage/sync.js';
import { startS3rver } from '../test/helpers/s3rver.js';

function line(what: string, s: TransferSummary): string {
  return `  ${what.padEnd(34)} ${String(s.copied).padStart(3)} copied ${String(s.skipped).padStart(3)} skipped  ${(s.bytes / 1e6).toFixed(0).padStart(4)} MB  ${s.seconds.toFixed(2).padStart(6)} s  ${s.megabytesPerSecond.toFixed(1).padStart(6)} MB/s`;
}

export async function benchSync(): Promise<void> {
  const server = await startS3rver({ multipartEtags: 'aws' });
  const work = await mkdtemp(join(tmpdir(), 'geobatch-bench-sync-'));
  const client = new S3Client(server.clientConfig);
  try {
    const storage = createStorage({ s3: client, cacheDir: join(work, 'cache') });
    const many = join(work, 'many');
    await mkdir(many);
    for (let i = 0; i < 200; i += 1) await writeFile(join(many, `f${i}.bin`), randomBytes(256 * 1024));
    const one = join(work, 'one');
    await mkdir(one);
    await writeFile(join(one, 'big.bin'), randomBytes(200e6));
    const bucket = await server.createBucket();
    for (const [name, dir] of [
      ['200 files x 256 KiB', many],
      ['1 file of 200 MB (8 MiB parts)', one],
    ] as const) {
      console.log(`sync ${name}, local <-> s3rver on loopback, concurrency 8`);
      const prefix = `s3://${bucket}/${name.replace(/\W+/g, '-')}`;
      console.log(line('local -> S3', await transfer(storage, dir, prefix, { mode: 'sync' })));
      console.log(
        line('local -> S3 again (all unchanged)', await transfer(storage, dir, prefix, { mode: 'sync' })),
      );
      const down = join(work, `down-${name.length}`);
      console.log(line('S3 -> local', await transfer(storage, prefix, down, { mode: 'sync' })));
      console.log(line('S3 -> local again', await transfer(storage, prefix, down, { mode: 'sync' })));
    }
  } finally {
    client.destroy();
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}
