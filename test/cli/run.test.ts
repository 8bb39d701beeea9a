import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { geobatch, geobatchJob, isolatedEnv, tsxLoader } from '../helpers/cli.js';
import { startS3rver } from '../helpers/s3rver.js';
import type { S3rverHandle } from '../helpers/s3rver.js';
import type { S3Client } from '@aws-sdk/client-s3';

// real rasters from ../shared/data (see its PROVENANCE.md)
const shared = resolve(import.meta.dirname, '../../../shared/data');
const repo = resolve(import.meta.dirname, '../..');

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Every file under a directory, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  if (!(await exists(dir))) return [];
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name).slice(dir.length + 1));
  }
  return out.sort();
}

const pipeline = (extra = '') => `version: 1
name: demo
output: runs
inputs:
  scenes: data/*.tif
stages:
  inspect:
    job: inspect
    foreach: scenes
  catalog:
    job: catalog
    needs: [inspect]
${extra}`;

describe('geobatch run (CLI)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-cli-'));
    await mkdir(join(dir, 'data'));
    await copyFile(join(shared, 'spacenet/rgb_unmasked.tif'), join(dir, 'data/rgb.tif'));
    await copyFile(join(shared, 'spacenet/ms1.tif'), join(dir, 'data/ms1.tif'));
    await copyFile(join(shared, 'cog/cog.tif'), join(dir, 'data/cog.tif'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('runs a pipeline, reports status, and a second run has nothing left to do', async () => {
    await writeFile(join(dir, 'p.yaml'), pipeline());
    const first = await geobatch(['run', 'p.yaml', '--json'], { cwd: dir });
    assert.equal(first.code, 0, first.stderr);
    const events = first.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; state?: string; runUri?: string });
    const runUri = events.find((e) => e.type === 'run-started')!.runUri!;
    assert.equal(events.filter((e) => e.type === 'task' && e.state === 'done').length, 4);
    assert.equal(events.at(-1)!.type, 'run-finished');

    const rgb = JSON.parse(await readFile(join(runUri, 'inspect/rgb.json'), 'utf8'));
    assert.equal(rgb.width, 200);
    assert.equal(rgb.bands, 3);
    assert.equal(rgb.dtype, 'uint8');
    assert.equal(rgb.geo.epsg, 32631);
    const cog = JSON.parse(await readFile(join(runUri, 'inspect/cog.json'), 'utf8'));
    assert.equal(cog.geo.pixelIsPoint, true);
    assert.ok(cog.overviews.length > 0, 'the COG has overviews');
    const catalog = JSON.parse(await readFile(join(runUri, 'catalog/catalog.json'), 'utf8'));
    assert.deepEqual(
      catalog.records.map((r: { item: string }) => r.item),
      ['cog', 'ms1', 'rgb'],
    );

    const status = await geobatch(['status', runUri, '--json'], { cwd: dir });
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout);
    assert.equal(s.complete, true);
    assert.deepEqual(
      s.stages.map((x: { name: string; done: number }) => [x.name, x.done]),
      [
        ['inspect', 3],
        ['catalog', 1],
      ],
    );

    const text = await geobatch(['status', runUri], { cwd: dir });
    assert.match(text.stdout, /inspect\s+inspect\s+3\s+3\s+0\s+0/);

    const again = await geobatch(['run', 'p.yaml', '--json'], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    const againEvents = again.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; state?: string; runUri?: string });
    assert.equal(againEvents[0]!.runUri, runUri, 'the same run is continued');
    assert.equal(againEvents.filter((e) => e.type === 'task' && e.state === 'started').length, 0);
  });

  test('Ctrl-C stops cleanly with exit 130; running again runs only unfinished tasks', async () => {
    await mkdir(join(dir, 'many'), { recursive: true });
    for (let i = 0; i < 10; i++) await writeFile(join(dir, 'many', `m${i}.tif`), '');
    await writeFile(
      join(dir, 'slow.yaml'),
      `version: 1\nname: slow\noutput: runs\ninputs:\n  items: many/*.tif\nstages:\n  wait:\n    job: smoke\n    foreach: items\n    params: { sleepMs: 400 }\n`,
    );
    const child = spawn(
      process.execPath,
      [
        '--import',
        tsxLoader,
        join(repo, 'bin/geobatch.ts'),
        'run',
        'slow.yaml',
        '--json',
        '--concurrency',
        '2',
      ],
      {
        cwd: dir,
        env: isolatedEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    let runUri = '';
    let doneCount = 0;
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) {
        const e = JSON.parse(l) as { type: string; state?: string; runUri?: string };
        if (e.type === 'run-started') runUri = e.runUri!;
        if (e.type === 'task' && e.state === 'done' && ++doneCount === 3) child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 130, err);
    assert.match(err, /interrupted; finished tasks are kept\. Continue with: geobatch resume /);
    const files = await tree(runUri);
    assert.deepEqual(
      files.filter((f) => f.split('/').some((p) => p.startsWith('.'))),
      [],
      'no temporary files',
    );
    assert.equal(
      files.filter((f) => f.startsWith('failures/')).length,
      0,
      'an interruption is not a failure',
    );
    const markers = files.filter((f) => f.startsWith('markers/')).length;
    assert.ok(markers >= 3 && markers < 10, `${markers} markers`);

    const again = await geobatch(['run', 'slow.yaml', '--json'], { cwd: dir });
    assert.equal(again.code, 0, again.stderr);
    const started = again.stdout
      .trim()
      .split('\n')
      .filter((l) => /"state":"started"/.test(l)).length;
    assert.equal(started, 10 - markers);
  });

  test('a task that throws: exit 1, the error and its log are shown, no marker, the failure recorded', async () => {
    await writeFile(
      join(dir, 'fail.yaml'),
      `version: 1\nname: fail\noutput: runs\ninputs:\n  scenes: data/*.tif\nstages:\n  s:\n    job: smoke\n    foreach: scenes\n    params: { failItems: [ms1] }\n`,
    );
    const r = await geobatch(['run', 'fail.yaml', '--json'], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /1 task\(s\) failed; logs under .*\/logs\. Fix and rerun/);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; state?: string; error?: string; runUri?: string });
    const failed = events.filter((e) => e.type === 'task' && e.state === 'failed');
    assert.equal(failed.length, 1);
    assert.match(failed[0]!.error!, /item 'ms1' is listed in params.failItems/);
    const runUri = events[0]!.runUri!;
    const files = await tree(runUri);
    assert.ok(files.includes('failures/s/1.json'));
    assert.ok(!files.includes('markers/s/1.json'));
    assert.ok(files.includes('markers/s/0.json') && files.includes('markers/s/2.json'));
  });

  test('geobatch-job runs one task by index, skips it when done, and rejects an unknown stage', async () => {
    await writeFile(join(dir, 'p.yaml'), pipeline());
    const r = await geobatch(['run', 'p.yaml', '--json', '--new'], { cwd: dir });
    const runUri = (JSON.parse(r.stdout.split('\n')[0]!) as { runUri: string }).runUri;
    const planUri = join(runUri, 'plan.json');
    const skip = await geobatchJob([planUri, 'inspect', '--index', '1']);
    assert.equal(skip.code, 0, skip.stderr);
    assert.match(skip.stdout, /inspect\[1\] already done/);

    await rm(join(runUri, 'markers/inspect/1.json'));
    const viaEnv = await geobatchJob([planUri, 'inspect'], {
      env: isolatedEnv({ AWS_BATCH_JOB_ARRAY_INDEX: '1' }),
    });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    assert.match(viaEnv.stdout, /INFO task inspect\[1\] job=inspect items=ms1/);
    assert.ok(await exists(join(runUri, 'markers/inspect/1.json')));

    const unknown = await geobatchJob([planUri, 'chip', '--index', '0']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /stage 'chip' is not in this plan \(stages: inspect, catalog\)/);
    const range = await geobatchJob([planUri, 'inspect', '--index', '7']);
    assert.equal(range.code, 1);
    assert.match(
      range.stderr,
      /stage 'inspect' has 3 task\(s\): index must be an integer in \[0, 2\] but got 7/,
    );
  });
});

describe('geobatch run: bad input gets one clear message, a non-zero exit, and no run', () => {
  let dir: string;
  let s3: S3rverHandle;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-bad-'));
    await mkdir(join(dir, 'data'));
    await copyFile(join(shared, 'spacenet/rgb_unmasked.tif'), join(dir, 'data/rgb.tif'));
    s3 = await startS3rver();
  });
  after(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const cases: {
    name: string;
    yaml?: string;
    args?: string[];
    env?: () => NodeJS.ProcessEnv;
    code: number;
    message: RegExp;
  }[] = [
    {
      name: 'missing pipeline file',
      args: ['run', 'nope.yaml'],
      code: 1,
      message: /nope\.yaml: pipeline file not found/,
    },
    {
      name: 'YAML syntax error',
      yaml: 'version: 1\nname: x\nstages: [\n',
      code: 2,
      message: /bad\.yaml: .*\(line \d+, column \d+\)/,
    },
    {
      name: 'unknown key',
      yaml: pipeline().replace('stages:', 'stagse: {}\nstages:'),
      code: 2,
      message: /unknown key 'stagse'.*did you mean 'stages'\?.*\(line 6\)/,
    },
    {
      name: 'wrong type',
      yaml: pipeline().replace('foreach: scenes\n', 'foreach: scenes\n    params: { sampleStep: fast }\n'),
      code: 2,
      message:
        /bad\.yaml: stages\.inspect\.params\.sampleStep: expected an integer.* but got 'fast' \(line 10\)/,
    },
    {
      name: 'glob that matches nothing',
      yaml: pipeline().replace('data/*.tif', 'nothing/*.tif'),
      code: 2,
      message: /bad\.yaml: inputs\.scenes\[0\]: 'nothing\/\*\.tif' matched no files.*\(line 5\)/,
    },
    {
      name: 'unknown stage',
      yaml: pipeline().replace('needs: [inspect]', 'needs: [inspekt]'),
      code: 2,
      message: /stages\.catalog\.needs\[0\]: .*'inspekt'.*did you mean 'inspect'/,
    },
    {
      name: 's3 input without credentials',
      yaml: pipeline().replace('data/*.tif', 's3://geobatch-test-bucket/scenes/'),
      code: 2,
      message: /inputs\.scenes: .*no AWS credentials/,
    },
    {
      name: 's3 input with a missing bucket',
      yaml: pipeline().replace('data/*.tif', 's3://no-such-bucket-here/scenes/'),
      env: () =>
        isolatedEnv({
          GEOBATCH_S3_ENDPOINT: s3.endpoint,
          AWS_ACCESS_KEY_ID: 'S3RVER',
          AWS_SECRET_ACCESS_KEY: 'S3RVER',
        }),
      code: 2,
      message: /inputs\.scenes: .*bucket 'no-such-bucket-here' does not exist/,
    },
    {
      name: 'unwritable output location',
      yaml: pipeline().replace('output: runs', 'output: /etc/hostname/runs'),
      code: 1,
      message: /\/etc\/hostname\/runs.*not writable/,
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      if (c.yaml !== undefined) await writeFile(join(dir, 'bad.yaml'), c.yaml);
      const r = await geobatch(c.args ?? ['run', 'bad.yaml'], {
        cwd: dir,
        ...(c.env ? { env: c.env() } : {}),
      });
      assert.equal(r.code, c.code, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, c.message);
      assert.equal(r.stderr.trim().split('\n').length <= 3, true, `a short message, got:\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
      assert.deepEqual(await tree(join(dir, 'runs')), [], 'nothing written');
    });
  }
});

describe('geobatch run with inputs and the run on S3 (s3rver)', () => {
  let dir: string;
  let s3: S3rverHandle;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-s3run-'));
    s3 = await startS3rver();
  });
  after(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('reads scenes by byte ranges from S3 and writes plan, outputs and markers to S3', async () => {
    const { S3Client, PutObjectCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    const client = new S3Client(s3.clientConfig);
    const bucket = await s3.createBucket();
    for (const [key, file] of [
      ['scenes/rgb.tif', 'spacenet/rgb_unmasked.tif'],
      ['scenes/cog.tif', 'cog/cog.tif'],
    ] as const) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(join(shared, file)) }),
      );
    }
    await writeFile(
      join(dir, 's3.yaml'),
      pipeline()
        .replace('data/*.tif', `s3://${bucket}/scenes/`)
        .replace('output: runs', `output: s3://${bucket}/runs`),
    );
    const env = isolatedEnv({
      GEOBATCH_S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    });
    const r = await geobatch(['run', 's3.yaml', '--json'], { cwd: dir, env });
    assert.equal(r.code, 0, r.stderr);
    const runUri = (JSON.parse(r.stdout.split('\n')[0]!) as { runUri: string }).runUri;
    assert.match(runUri, new RegExp(`^s3://${bucket}/runs/demo/`));
    const prefix = runUri.slice(`s3://${bucket}/`.length);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).sort();
    for (const key of [
      'plan.json',
      'run.json',
      'inspect/cog.json',
      'inspect/rgb.json',
      'catalog/catalog.json',
      'markers/inspect/0.json',
      'markers/inspect/1.json',
      'markers/catalog/0.json',
    ]) {
      assert.ok(keys.includes(key), `${key} in ${keys.join(', ')}`);
    }
    const cog = JSON.parse(await readText(client, bucket, `${prefix}/inspect/cog.json`));
    assert.equal(cog.width, 2658);
    // statistics come from an overview: only part of the file is fetched
    const size = (await stat(join(shared, 'cog/cog.tif'))).size;
    assert.ok(cog.bytesRead < size / 2, `read ${cog.bytesRead} bytes of a ${size}-byte COG`);
    const status = await geobatch(['status', runUri, '--json'], { cwd: dir, env });
    assert.equal(JSON.parse(status.stdout).complete, true);
    client.destroy();
  });
});

async function readText(client: S3Client, bucket: string, key: string): Promise<string> {
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return got.Body!.transformToString();
}
