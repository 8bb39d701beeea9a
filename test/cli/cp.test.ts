import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { geobatch, isolatedEnv } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

let server: S3rverHandle;
let work: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  server = await startS3rver();
  work = await mkdtemp(join(tmpdir(), 'geobatch-cp-cli-'));
  env = isolatedEnv({
    GEOBATCH_S3_ENDPOINT: server.endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    GEOBATCH_CACHE_DIR: join(work, 'cache'),
  });
});
after(async () => {
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

describe('geobatch sync / cp', () => {
  it('syncs a directory up and down, prints a summary line, and a JSON summary with --json', async () => {
    const src = join(work, 'src');
    await mkdir(join(src, 'b'), { recursive: true });
    const big = randomBytes(50_000);
    await writeFile(join(src, 'a.tif'), big);
    await writeFile(join(src, 'b', 'c.json'), '{}');
    await writeFile(join(src, 'b', 'skip.tmp'), 'x');
    const bucket = await server.createBucket();

    const up = await geobatch(['sync', src, `s3://${bucket}/data`, '--exclude', '*.tmp'], { env });
    assert.equal(up.code, 0, up.stderr);
    assert.match(
      up.stdout,
      /^sync: 2 file\(s\): 2 copied, 0 skipped, 0 deleted; 50\.0 kB in [\d.]+ s \([\d.]+ MB\/s\)\n$/,
    );

    const again = await geobatch(['sync', src, `s3://${bucket}/data`, '--exclude', '*.tmp', '--json'], {
      env,
    });
    assert.equal(again.code, 0, again.stderr);
    const summary = JSON.parse(again.stdout) as Record<string, unknown>;
    assert.deepEqual([summary['files'], summary['copied'], summary['skipped']], [2, 0, 2]);

    const dst = join(work, 'down');
    const down = await geobatch(['cp', '--recursive', `s3://${bucket}/data/`, dst], { env });
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(await readFile(join(dst, 'a.tif')), big);
    assert.equal(await readFile(join(dst, 'b', 'c.json'), 'utf8'), '{}');

    await writeFile(join(dst, 'extra.txt'), 'only here');
    const dry = await geobatch(['sync', `s3://${bucket}/data`, dst, '--delete', '--dry-run'], { env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^\\(dry run\\) delete ${join(dst, 'extra.txt')}$`, 'm'));
    assert.match(dry.stdout, /sync \(dry run\): 2 file\(s\): 0 to copy, 2 skipped, 1 to delete/);
    assert.equal(await readFile(join(dst, 'extra.txt'), 'utf8'), 'only here');
  });

  it('a missing bucket or file: one line on stderr, exit code 1; a bad option: exit code 2', async () => {
    const file = join(work, 'one.txt');
    await writeFile(file, 'one');
    const noBucket = await geobatch(['cp', file, 's3://no-such-bucket-here/x.txt'], { env });
    assert.equal(noBucket.code, 1);
    assert.equal(
      noBucket.stderr,
      "geobatch: s3://no-such-bucket-here/x.txt: bucket 'no-such-bucket-here' does not exist\n",
    );
    const noFile = await geobatch(['cp', join(work, 'missing.txt'), join(work, 'x')], { env });
    assert.equal(noFile.code, 1);
    assert.equal(noFile.stderr, `geobatch: ${join(work, 'missing.txt')}: no such file\n`);
    const bad = await geobatch(['sync', work, join(work, '..', 'elsewhere'), '--concurrency', '0'], { env });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--concurrency: expected an integer in \[1, 256\] but got '0'/);
  });
});
