/**
 * The Batch runner's commands as a user runs them (child processes of the real CLI): the AWS
 * control plane is a recording fake on 127.0.0.1 (test/helpers/fake-aws.ts), S3 is s3rver.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { PlatformDescriptor } from '../../lib/config/descriptor.js';
import { readBatchRecord } from '../../lib/runners/batch-record.js';
import { runLayout } from '../../lib/runners/layout.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { FakeAwsError, startFakeAws, type FakeAws } from '../helpers/fake-aws.js';
import { geobatch, isolatedEnv } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

let s3: S3rverHandle;
let fake: FakeAws;
let storage: Storage;
let dir: string;
let raw: string;
let runs: string;
let other: string;

const account = '123456789012';
const region = 'eu-west-1';

function descriptor(): PlatformDescriptor {
  const arn = (job: string) => `arn:aws:batch:${region}:${account}:job-definition/geobatch-dev-${job}:4`;
  return {
    version: 1,
    env: 'dev',
    region,
    account,
    buckets: { raw: { name: raw }, processed: { name: raw }, runs: { name: runs, prefix: 'runs/' } },
    queues: {
      cpu: { name: 'geobatch-dev-cpu', arn: `arn:aws:batch:${region}:${account}:job-queue/geobatch-dev-cpu` },
      gpu: { name: 'geobatch-dev-gpu', arn: `arn:aws:batch:${region}:${account}:job-queue/geobatch-dev-gpu` },
    },
    jobDefinitions: {
      smoke: { name: 'geobatch-dev-smoke', arn: arn('smoke'), queue: 'cpu' },
      inspect: { name: 'geobatch-dev-inspect', arn: arn('inspect'), queue: 'cpu' },
    },
    repositories: {
      cpu: { name: 'geobatch/dev/cpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/dev/cpu` },
      gpu: { name: 'geobatch/dev/gpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/dev/gpu` },
    },
    imageTag: 'abc123',
    logGroup: { name: '/geobatch/dev/jobs' },
  };
}

/** The environment of a user with credentials, pointed at the fakes. */
function awsEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return isolatedEnv({
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    GEOBATCH_S3_ENDPOINT: s3.endpoint,
    GEOBATCH_CACHE_DIR: join(dir, 'cache'),
    ...fake.env(),
    ...extra,
  });
}

const pipeline = (inputs: string) => `version: 1
name: demo
inputs:
  scenes: ${inputs}
stages:
  first:
    job: smoke
    foreach: scenes
  second:
    job: smoke
    foreach: first
    retries: 2
`;

/** The fake refuses the next SubmitJob when set. */
let refuseNextSubmit = false;

/** Job id -> state the fake's DescribeJobs reports. */
const states = new Map<string, string>();

before(async () => {
  [s3, fake] = await Promise.all([startS3rver(), startFakeAws()]);
  storage = createStorage({ s3: s3.clientConfig });
  dir = await mkdtemp(join(tmpdir(), 'geobatch-cli-batch-'));
  [raw, runs, other] = await Promise.all([s3.createBucket(), s3.createBucket(), s3.createBucket()]);
  const client = new S3Client(s3.clientConfig);
  for (const name of ['a', 'b', 'c']) {
    await client.send(
      new PutObjectCommand({ Bucket: raw, Key: `scenes/${name}.tif`, Body: 'not a real tiff' }),
    );
  }
  client.destroy();
  await writeFile(join(dir, 'p.yaml'), pipeline(`s3://${raw}/scenes/*.tif`));
  await writeFile(join(dir, 'local.yaml'), pipeline('a.tif'));
  await writeFile(
    join(dir, 'elsewhere.yaml'),
    pipeline(`s3://${raw}/scenes/*.tif`).replace('name: demo', `name: elsewhere\noutput: s3://${other}/out`),
  );
  await writeFile(
    join(dir, 'refused.yaml'),
    pipeline(`s3://${raw}/scenes/*.tif`).replace('name: demo', 'name: refused'),
  );
  await writeFile(join(dir, 'a.tif'), '');

  fake.on('GetParameter', (input) => {
    if (input.Name !== '/geobatch/dev/platform')
      throw new FakeAwsError('ParameterNotFound', 'no such parameter');
    return {
      Parameter: { Name: input.Name, Type: 'String', Value: JSON.stringify(descriptor()), Version: 1 },
    };
  });
  fake.on('DescribeJobQueues', (input) => ({
    jobQueues: (input.jobQueues as string[]).map((name) => ({
      jobQueueName: name,
      jobQueueArn: `arn:aws:batch:${region}:${account}:job-queue/${name}`,
      state: 'ENABLED',
      status: 'VALID',
      priority: 1,
      computeEnvironmentOrder: [],
    })),
  }));
  fake.on('SubmitJob', (input) => {
    if (refuseNextSubmit) {
      refuseNextSubmit = false;
      throw new FakeAwsError('ClientException', 'Job queue is not accepting jobs');
    }
    const jobId = `id-${String(input.jobName)}`;
    states.set(jobId, 'RUNNING');
    return { jobId, jobName: input.jobName, jobArn: `arn:aws:batch:${region}:${account}:job/${jobId}` };
  });
  fake.on('DescribeJobs', (input) => ({
    jobs: (input.jobs as string[]).flatMap((id) => {
      const [parent, child] = id.split(':');
      const status = states.get(parent!);
      if (!status) return [];
      const container = {
        logStreamName: `smoke/default/${child ?? '0'}`,
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/geobatch/dev/jobs' } },
      };
      return [
        {
          jobId: id,
          jobName: id,
          jobQueue: 'geobatch-dev-cpu',
          jobDefinition: 'd',
          status: child === '2' && status === 'RUNNING' ? 'RUNNABLE' : status,
          startedAt: 1,
          ...(child === undefined
            ? {
                arrayProperties: {
                  size: 3,
                  statusSummary: status === 'RUNNING' ? { RUNNING: 2, FAILED: 1 } : { [status]: 3 },
                },
              }
            : child === '2' && status === 'RUNNING'
              ? {}
              : { container }),
        },
      ];
    }),
  }));
  fake.on('ListJobs', (input) => ({
    jobSummaryList: [
      {
        jobId: `${String(input.arrayJobId)}:1`,
        jobName: 'x',
        status: 'FAILED',
        statusReason: 'Essential container in task exited',
        container: { exitCode: 3 },
        arrayProperties: { index: 1 },
      },
    ],
  }));
  fake.on('GetLogEvents', (input) =>
    input.nextToken
      ? { events: [], nextForwardToken: input.nextToken }
      : {
          events: [
            { timestamp: 1, message: `task log line 1 of ${String(input.logStreamName)}`, ingestionTime: 1 },
            { timestamp: 2, message: 'task log line 2', ingestionTime: 2 },
          ],
          nextForwardToken: 'f/1',
        },
  );
  fake.on('TerminateJob', () => ({}));
});

after(async () => {
  await Promise.all([s3.stop(), fake.stop()]);
  await rm(dir, { recursive: true, force: true });
});

describe('geobatch with --runner batch (CLI)', () => {
  let runUri = '';

  test('plan --runner batch prints the exact calls without calling AWS', async () => {
    const result = await geobatch(['plan', join(dir, 'p.yaml'), '--runner', 'batch', '--env', 'dev'], {
      env: awsEnv(),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /on AWS Batch, environment dev: 2 SubmitJob call\(s\); nothing is sent/);
    assert.match(
      result.stdout,
      /^ {5}jobDefinition {2}geobatch-dev-smoke \(the revision deployed in 'dev'\)$/m,
    );
    assert.match(result.stdout, /^ {5}array {10}3 children$/m);
    assert.match(result.stdout, /^ {5}dependsOn {6}first \(N_TO_N: child i after child i\)$/m);
    assert.match(result.stdout, /^ {5}retryStrategy {2}2 attempts/m);
    assert.equal(fake.requests.length, 0, 'no AWS call');

    const json = await geobatch(
      ['plan', join(dir, 'p.yaml'), '--runner', 'batch', '--env', 'dev', '--json'],
      { env: awsEnv() },
    );
    const parsed = JSON.parse(json.stdout) as {
      calls: { api: string; input: { jobQueue: string; arrayProperties: unknown } }[];
    };
    assert.deepEqual(
      parsed.calls.map((c) => [c.api, c.input.jobQueue, c.input.arrayProperties]),
      [
        ['SubmitJob', 'geobatch-dev-cpu', { size: 3 }],
        ['SubmitJob', 'geobatch-dev-cpu', { size: 3 }],
      ],
    );
  });

  test('run --runner batch uploads the plan to the runs bucket, submits one job per stage and saves the job ids', async () => {
    const result = await geobatch(
      ['run', join(dir, 'p.yaml'), '--runner', 'batch', '--env', 'dev', '--tag', 'team=maps'],
      {
        env: awsEnv(),
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split('\n');
    assert.match(
      lines[0]!,
      /^submitted run \S+ of pipeline demo to AWS Batch \(environment dev, eu-west-1\): 2 job\(s\)$/,
    );
    runUri = lines[1]!.trim();
    assert.match(runUri, new RegExp(`^s3://${runs}/runs/demo/\\d{8}-\\d{6}-[0-9a-f]{4}$`));
    assert.match(result.stdout, /follow it: {5}geobatch status s3:\/\/.* --watch/);

    assert.deepEqual(fake.calls('GetParameter'), [{ Name: '/geobatch/dev/platform' }]);
    assert.deepEqual(fake.calls('DescribeJobQueues'), [{ jobQueues: ['geobatch-dev-cpu'] }]);
    const [first, second] = fake.calls('SubmitJob');
    const runId = runUri.split('/').pop()!;
    assert.equal(first?.jobName, `demo-first-${runId}`);
    assert.equal(first?.jobQueue, 'geobatch-dev-cpu');
    assert.equal(
      first?.jobDefinition,
      `arn:aws:batch:${region}:${account}:job-definition/geobatch-dev-smoke:4`,
    );
    assert.deepEqual(first?.arrayProperties, { size: 3 });
    assert.deepEqual((first?.containerOverrides as { command: string[] }).command, [
      'geobatch-job',
      `${runUri}/plan.json`,
      'first',
    ]);
    assert.deepEqual(first?.tags, {
      'geobatch:run': runId,
      'geobatch:stage': 'first',
      'geobatch:pipeline': 'demo',
      team: 'maps',
    });
    assert.equal(first?.propagateTags, true);
    assert.deepEqual(second?.dependsOn, [{ jobId: `id-demo-first-${runId}`, type: 'N_TO_N' }]);
    assert.equal((second?.retryStrategy as { attempts: number }).attempts, 2);

    const plan = JSON.parse((await storage.read(runLayout(runUri).plan)).toString('utf8')) as {
      runId: string;
    };
    assert.equal(plan.runId, runId);
    const record = await readBatchRecord(storage, runUri);
    assert.deepEqual(
      record?.submissions[0]?.jobs.map((j) => j.jobId),
      [`id-demo-first-${runId}`, `id-demo-second-${runId}`],
    );
    assert.deepEqual(record?.submissions[0]?.tags, { team: 'maps' });
  });

  test('status shows per-stage counts by Batch state and failed tasks with reason and exit code', async () => {
    const result = await geobatch(['status', runUri], { env: awsEnv() });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /on AWS Batch \(dev, eu-west-1\): running/);
    assert.match(result.stdout, /^first\s+smoke\s+3\s+0\s+0\s+0\s+2\s+0\s+1\s+0$/m);
    assert.match(result.stdout, /first\[1\] \(b\): exit 3: Essential container in task exited/);
    assert.match(result.stdout, new RegExp(`geobatch logs ${runUri} first --index 1`));
  });

  test('status --watch prints JSON lines until the run finishes', async () => {
    // the tasks write their markers; Batch reports their jobs finished on the second poll
    const markers = ['first', 'second'].flatMap((s) => [0, 1, 2].map((i) => runLayout(runUri).marker(s, i)));
    for (const uri of markers) await storage.writeAtomic(uri, '{}');
    let polls = 0;
    fake.on('ListJobs', () => {
      // the second poll sees everything finished
      if (++polls >= 2) for (const id of states.keys()) states.set(id, 'SUCCEEDED');
      return { jobSummaryList: [] };
    });
    const result = await geobatch(['status', runUri, '--watch', '--interval', '1'], { env: awsEnv() });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { state: string });
    assert.ok(lines.length >= 2, result.stdout);
    assert.equal(lines[0]?.state, 'running');
    assert.equal(lines[lines.length - 1]?.state, 'succeeded');
    // seeing the end, the watch wrote the run's report (named on stderr: stdout is JSON lines)
    assert.match(result.stderr, new RegExp(`^report: ${runUri}/report/index\\.html$`, 'm'));
    const page = (await storage.read(`${runUri}/report/index.html`)).toString('utf8');
    assert.match(page, /AWS Batch, environment dev, eu-west-1/);
    assert.match(page, /<title>[^<]*: succeeded<\/title>/);
    await storage.delete(`${runUri}/report/index.html`);
    await storage.delete(`${runUri}/report/report.json`);
    for (const id of states.keys()) states.set(id, 'RUNNING');
    for (const uri of markers) await storage.delete(uri);
  });

  test("logs prints a task's CloudWatch stream; a task not started yet is a clear message", async () => {
    const result = await geobatch(['logs', runUri, 'first', '--index', '1'], { env: awsEnv() });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'task log line 1 of smoke/default/1\ntask log line 2\n');
    const runId = runUri.split('/').pop();
    assert.ok(
      fake
        .calls('DescribeJobs')
        .some((c) => JSON.stringify(c.jobs) === JSON.stringify([`id-demo-first-${runId}:1`])),
    );
    assert.deepEqual(fake.calls('GetLogEvents')[0], {
      logGroupName: '/geobatch/dev/jobs',
      logStreamName: 'smoke/default/1',
      startFromHead: true,
    });

    const waiting = await geobatch(['logs', runUri, 'first', '--index', '2'], { env: awsEnv() });
    assert.equal(waiting.code, 1);
    assert.equal(
      waiting.stderr.trim(),
      'geobatch: first[2] has not started yet (RUNNABLE): its log appears once it runs; add --follow to wait for it',
    );
  });

  test('cancel terminates every job still running', async () => {
    const result = await geobatch(['cancel', runUri, '--reason', 'testing'], { env: awsEnv() });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /stopped 2 job\(s\) \(first, second\)/);
    const runId = runUri.split('/').pop();
    assert.deepEqual(fake.calls('TerminateJob'), [
      { jobId: `id-demo-second-${runId}`, reason: 'testing' },
      { jobId: `id-demo-first-${runId}`, reason: 'testing' },
    ]);
    for (const id of states.keys()) states.set(id, 'FAILED');
  });

  test('resume resubmits only the tasks without a completion marker', async () => {
    for (const [stage, indexes] of [
      ['first', [0, 1, 2]],
      ['second', [0]],
    ] as const) {
      for (const i of indexes) await storage.writeAtomic(runLayout(runUri).marker(stage, i), '{}');
    }
    const before = fake.calls('SubmitJob').length;
    const result = await geobatch(['resume', runUri], { env: awsEnv() });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^resubmitted \(resume 1\) run/);
    const calls = fake.calls('SubmitJob').slice(before);
    const runId = runUri.split('/').pop();
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.jobName, `demo-second-${runId}-r1`);
    assert.deepEqual(calls[0]?.arrayProperties, { size: 2 });
    assert.deepEqual((calls[0]?.containerOverrides as { command: string[] }).command, [
      'geobatch-job',
      `${runUri}/plan.json`,
      'second',
      '--indexes',
      '1-2',
    ]);
    assert.equal(calls[0]?.dependsOn, undefined, 'the first stage is complete: nothing to wait for');
    assert.deepEqual(calls[0]?.tags, {
      'geobatch:run': runId,
      'geobatch:stage': 'second',
      'geobatch:pipeline': 'demo',
      team: 'maps',
    });
  });

  test('logs of a task done by an earlier submission reads the job that wrote its marker', async () => {
    const runId = runUri.split('/').pop()!;
    const writer = `id-demo-second-${runId}:1`;
    await storage.writeAtomic(
      runLayout(runUri).marker('second', 1),
      JSON.stringify({
        stage: 'second',
        index: 1,
        attempt: 1,
        batch: { jobId: writer, logStreamName: 'smoke/default/1' },
      }),
    );
    const before = fake.calls('DescribeJobs').length;
    const result = await geobatch(['logs', runUri, 'second', '--index', '1'], { env: awsEnv() });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(fake.calls('DescribeJobs').slice(before), [{ jobs: [writer] }]);
    assert.equal(result.stdout, 'task log line 1 of smoke/default/1\ntask log line 2\n');
    assert.match(result.stderr, new RegExp(`second\\[1\\] was done by job ${writer} \\(attempt 1\\)`));
  });
});

describe('a run outside the buckets of the environment (CLI)', () => {
  test('is refused before its plan is written or anything is submitted, naming the output and what is allowed', async () => {
    const submits = fake.calls('SubmitJob').length;
    const result = await geobatch(['run', join(dir, 'elsewhere.yaml'), '--runner', 'batch', '--env', 'dev'], {
      env: awsEnv(),
    });
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      `geobatch: output: s3://${other}/out/elsewhere is in bucket '${other}', which the jobs of environment 'dev' cannot write (they read no other bucket and read and write ${raw}, ${runs}), and every task writes its outputs under the run; put the run in one of the buckets they write, or add '${other}' to buckets.extraReadWrite of environment 'dev' and redeploy`,
    );
    assert.equal(fake.calls('SubmitJob').length, submits);
    const written: string[] = [];
    for await (const info of storage.list(`s3://${other}/`)) written.push(info.uri);
    assert.deepEqual(written, [], 'no plan.json, no latest.json');
  });
});

describe('a run whose first SubmitJob is refused (CLI)', () => {
  test('stays a Batch run: the error names it, resume submits it to Batch, status asks Batch', async () => {
    refuseNextSubmit = true;
    const result = await geobatch(['run', join(dir, 'refused.yaml'), '--runner', 'batch', '--env', 'dev'], {
      env: awsEnv(),
    });
    assert.equal(result.code, 1);
    const m = /run (s3:\/\/\S+\/runs\/refused\/\S+) stays a Batch run/.exec(result.stderr);
    assert.ok(m, result.stderr);
    const runUri = m[1]!;
    assert.match(
      result.stderr.trim(),
      new RegExp(
        `^geobatch: SubmitJob for stage 'first' failed: Job queue is not accepting jobs; nothing was submitted; run ${runUri} stays a Batch run \\(see its batch.json\\): once the cause is fixed, retry with 'geobatch resume ${runUri}'$`,
      ),
    );
    const record = await readBatchRecord(storage, runUri);
    assert.deepEqual(
      record?.submissions.map((s) => [s.state, s.jobs.length]),
      [['failed', 0]],
    );

    const status = await geobatch(['status', runUri], { env: awsEnv() });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /on AWS Batch \(dev, eu-west-1\): failed/);
    assert.match(
      status.stdout,
      /the submission failed: SubmitJob for stage 'first' failed: Job queue is not accepting jobs/,
    );
    assert.match(status.stdout, new RegExp(`rerun what did not finish: geobatch resume ${runUri}`));

    const before = fake.calls('SubmitJob').length;
    const resumed = await geobatch(['resume', runUri], { env: awsEnv() });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /^resubmitted \(resume 1\) run \S+ of pipeline refused to AWS Batch/);
    const runId = runUri.split('/').pop();
    assert.deepEqual(
      fake
        .calls('SubmitJob')
        .slice(before)
        .map((c) => c.jobName),
      [`refused-first-${runId}-r1`, `refused-second-${runId}-r1`],
    );
    assert.equal(await storage.exists(runLayout(runUri).marker('first', 0)), false, 'nothing ran here');
  });
});

describe('geobatch --runner batch errors (CLI)', () => {
  const cases: {
    name: string;
    args: () => string[];
    env: () => NodeJS.ProcessEnv;
    code: number;
    stderr: RegExp;
  }[] = [
    {
      name: 'no environment',
      args: () => ['run', join(dir, 'p.yaml'), '--runner', 'batch'],
      env: () => awsEnv(),
      code: 2,
      stderr: /^geobatch: --runner batch needs --env <name> \(or GEOBATCH_ENV\)/,
    },
    {
      name: 'a run on this machine',
      args: () => [
        'run',
        join(dir, 'p.yaml'),
        '--runner',
        'batch',
        '--env',
        'dev',
        '--run',
        join(dir, 'runs'),
      ],
      env: () => awsEnv(),
      code: 2,
      stderr:
        /^geobatch: --run: a run on AWS Batch must be on S3, where its containers read the plan and write results/,
    },
    {
      name: 'an environment that is not deployed',
      args: () => ['run', join(dir, 'p.yaml'), '--runner', 'batch', '--env', 'staging'],
      env: () => awsEnv(),
      code: 1,
      stderr:
        /^geobatch: environment 'staging' is not deployed in region eu-west-1 \(no SSM parameter \/geobatch\/staging\/platform\): deploy it with 'npx cdk deploy -c env=staging', or set AWS_REGION \/ AWS_PROFILE to the region where it is deployed$/,
    },
    {
      name: 'no credentials',
      args: () => ['run', join(dir, 'local.yaml'), '--runner', 'batch', '--env', 'dev'],
      env: () => isolatedEnv({ AWS_REGION: region }),
      code: 1,
      stderr:
        /^geobatch: no AWS credentials to read the platform descriptor \/geobatch\/dev\/platform \(environment 'dev'\): set AWS_PROFILE/,
    },
    {
      name: 'inputs on this machine',
      args: () => ['run', join(dir, 'local.yaml'), '--runner', 'batch', '--env', 'dev'],
      env: () => awsEnv(),
      code: 1,
      stderr:
        /^geobatch: inputs.scenes: 1 of 1 item\(s\) are files on this machine \(e.g. .*a\.tif\), which containers on AWS Batch \(environment 'dev'\) cannot read; upload them \(e.g. to s3:\/\/test-[0-9a-f]+\/\)/,
    },
    {
      name: 'cancel of a local run',
      args: () => ['cancel', join(dir, 'nowhere')],
      env: () => awsEnv(),
      code: 1,
      stderr: /^geobatch: .*nowhere: not a geobatch run \(no plan.json there\)/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const result = await geobatch(c.args(), { env: c.env(), cwd: dir });
      assert.equal(result.code, c.code, result.stderr);
      assert.match(result.stderr.trim(), c.stderr);
    });
  }
});
