import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { s3ConfigFromEnv } from '../../lib/storage/index.js';

describe('s3ConfigFromEnv', () => {
  it('leaves region to the SDK (profile) when no variable sets it', () => {
    assert.deepEqual(s3ConfigFromEnv({}), { followRegionRedirects: true });
  });

  it('takes AWS_REGION, else AWS_DEFAULT_REGION (which the JS SDK ignores by itself)', () => {
    assert.equal(
      s3ConfigFromEnv({ AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-west-2' }).region,
      'eu-west-1',
    );
    assert.equal(s3ConfigFromEnv({ AWS_DEFAULT_REGION: 'us-west-2' }).region, 'us-west-2');
    assert.equal(s3ConfigFromEnv({ AWS_REGION: '' }).region, undefined);
  });

  it('GEOBATCH_S3_ENDPOINT selects an S3-compatible server with path-style addressing', () => {
    assert.deepEqual(s3ConfigFromEnv({ GEOBATCH_S3_ENDPOINT: 'http://127.0.0.1:9000' }), {
      followRegionRedirects: true,
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      region: 'us-east-1',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    assert.equal(
      s3ConfigFromEnv({ GEOBATCH_S3_ENDPOINT: 'http://x:9000', AWS_REGION: 'eu-north-1' }).region,
      'eu-north-1',
    );
  });
});

// Runs in a fresh node process: a resolve hook reports every @aws-sdk module that gets loaded.
const PROBE = `
import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const loaded = [];
port1.on('message', (url) => loaded.push(url));
port1.unref();
const hook = 'let port; export function initialize(data) { port = data.port; }' +
  ' export async function resolve(specifier, context, next) {' +
  '   const result = await next(specifier, context);' +
  "   if (result.url.includes('/@aws-sdk/')) port.postMessage(result.url);" +
  '   return result; }';
register('data:text/javascript,' + encodeURIComponent(hook), { data: { port: port2 }, transferList: [port2] });
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));
const { createStorage } = await import(process.argv[1]);
const { mkdtempSync } = await import('node:fs');
const dir = mkdtempSync('/tmp/geobatch-lazy-');
const storage = createStorage();
await storage.writeAtomic(dir + '/a.txt', 'x');
await storage.read(dir + '/a.txt');
for await (const _ of storage.list(dir + '/')) {}
await settle();
const afterLocal = loaded.length;
// An already aborted signal: the SDK is loaded and the client made, but nothing is sent.
await storage.read('s3://some-bucket/k', { signal: AbortSignal.abort() }).catch((error) => error.code);
await settle();
(await import('node:fs')).rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ afterLocal, afterS3: loaded.length }));
`;

describe('createStorage', () => {
  it('does not load the AWS SDK until an s3:// URI is used', () => {
    const index = fileURLToPath(new URL('../../lib/storage/index.ts', import.meta.url));
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', PROBE, index],
      {
        encoding: 'utf8',
        env: { ...process.env, AWS_REGION: 'us-east-1' },
        timeout: 60_000,
      },
    );
    assert.equal(result.status, 0, result.stderr);
    const counts = JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}') as {
      afterLocal: number;
      afterS3: number;
    };
    assert.equal(counts.afterLocal, 0, 'local reads, writes and listings load no @aws-sdk module');
    assert.ok(counts.afterS3 > 0, 'the probe sees the SDK once an s3:// URI is used');
  });
});
