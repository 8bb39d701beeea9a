/**
 * The job entry point as a Batch container runs it: a resumed array maps its array index to a
 * task index through `--indexes`, and a retried attempt of a finished task does nothing.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { runLayout } from '../../lib/runners/layout.js';
import { geobatchJob, isolatedEnv } from '../helpers/cli.js';
import { items, plan, stage } from '../helpers/plans.js';

let dir: string;
let planUri: string;
let runUri: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geobatch-batch-job-'));
  runUri = join(dir, 'run');
  const p = plan(runUri, [stage('s', { itemsFrom: 'scenes', count: 6 })], { scenes: items(6) });
  planUri = runLayout(runUri).plan;
  await mkdir(runUri, { recursive: true });
  await writeFile(planUri, JSON.stringify(p));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('geobatch-job on Batch', () => {
  test('--indexes: array child k runs the k-th listed task', async () => {
    const r = await geobatchJob([planUri, 's', '--indexes', '1,4-5'], {
      env: isolatedEnv({ AWS_BATCH_JOB_ARRAY_INDEX: '2' }),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /INFO task s\[5\] job=smoke items=scene0005/);
    assert.ok(await exists(runLayout(runUri).marker('s', 5)));
    assert.ok(!(await exists(runLayout(runUri).marker('s', 2))));
  });

  test('--indexes @<file>: the list is read from the run (long lists of resumed arrays)', async () => {
    const file = join(dir, 'run', 'batch.tasks', '1-s.txt');
    await mkdir(join(dir, 'run', 'batch.tasks'), { recursive: true });
    await writeFile(file, '0,3\n');
    const r = await geobatchJob([planUri, 's', '--indexes', `@${file}`], {
      env: isolatedEnv({ AWS_BATCH_JOB_ARRAY_INDEX: '1' }),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /task s\[3\]/);
  });

  test('a retried attempt of a finished task skips it and leaves its marker alone', async () => {
    const marker = runLayout(runUri).marker('s', 5);
    const before = await readFile(marker, 'utf8');
    const r = await geobatchJob([planUri, 's', '--index', '5'], {
      env: isolatedEnv({ AWS_BATCH_JOB_ATTEMPT: '2' }),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /s\[5\] already done/);
    assert.equal(await readFile(marker, 'utf8'), before);
  });

  test('bad index lists are usage errors', async () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ['--indexes', '1,4'],
        { AWS_BATCH_JOB_ARRAY_INDEX: '2' },
        /array index 2 is out of range: --indexes lists 2 task\(s\)/,
      ],
      [
        ['--indexes', '4,1'],
        {},
        /--indexes: expected increasing task indexes or ranges like '0-99,105' but got '1' in '4,1'/,
      ],
      [['--indexes', '1', '--index', '1'], {}, /--index and --indexes exclude each other/],
    ];
    for (const [args, env, message] of cases) {
      const r = await geobatchJob([planUri, 's', ...args], { env: isolatedEnv(env) });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  });

  test("on Batch the marker names the attempt's job and log stream (from the ECS task metadata endpoint)", async () => {
    // GIVEN the container's metadata endpoint, as ECS serves it to the container
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          Name: 'default',
          LogDriver: 'awslogs',
          LogOptions: {
            'awslogs-group': '/geobatch/dev/jobs',
            'awslogs-region': 'eu-west-1',
            'awslogs-stream': 'geobatch-dev-smoke/default/0123abcd',
          },
        }),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v4/abc-123`;
    try {
      // WHEN array child 1 of job 'job-1' runs task 1 in its second attempt
      const r = await geobatchJob([planUri, 's'], {
        env: isolatedEnv({
          AWS_BATCH_JOB_ARRAY_INDEX: '1',
          AWS_BATCH_JOB_ID: 'job-1:1',
          AWS_BATCH_JOB_ATTEMPT: '2',
          ECS_CONTAINER_METADATA_URI_V4: endpoint,
        }),
      });
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    // THEN
    assert.deepEqual(requests, ['/v4/abc-123']);
    const marker = JSON.parse(await readFile(runLayout(runUri).marker('s', 1), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(marker.attempt, 2);
    assert.deepEqual(marker.batch, {
      jobId: 'job-1:1',
      logStreamName: 'geobatch-dev-smoke/default/0123abcd',
    });
  });

  test('without a metadata endpoint the marker still names the job; off Batch it names none', async () => {
    const r = await geobatchJob([planUri, 's', '--index', '4'], {
      env: isolatedEnv({ AWS_BATCH_JOB_ID: 'job-2' }),
    });
    assert.equal(r.code, 0, r.stderr);
    const marker = JSON.parse(await readFile(runLayout(runUri).marker('s', 4), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(marker.batch, { jobId: 'job-2' });
    // an array child's id without its index gets it from AWS_BATCH_JOB_ARRAY_INDEX
    const child = await geobatchJob([planUri, 's'], {
      env: isolatedEnv({ AWS_BATCH_JOB_ID: 'job-3', AWS_BATCH_JOB_ARRAY_INDEX: '2' }),
    });
    assert.equal(child.code, 0, child.stderr);
    const childMarker = JSON.parse(await readFile(runLayout(runUri).marker('s', 2), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(childMarker.batch, { jobId: 'job-3:2' });
    const local = JSON.parse(await readFile(runLayout(runUri).marker('s', 5), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(local.batch, undefined);
  });
});
