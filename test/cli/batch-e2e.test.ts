/**
 * The Batch path end to end: the real CLI (`geobatch run --runner batch`, `status`, `logs`,
 * `cancel`, `resume`, in child processes) against a stand-in for AWS Batch that executes every
 * submitted job's container command per array child (test/helpers/batch-standin.ts), with S3 on
 * s3rver. The jobs are cheap ones (`inspect`, `catalog`, `smoke`, `chip` on 64 x 64 rasters).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PlatformDescriptor } from '../../lib/config/descriptor.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { readBatchRecord } from '../../lib/runners/batch-record.js';
import { runLayout } from '../../lib/runners/layout.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { startBatchStandin, type BatchStandin, type StandinJob } from '../helpers/batch-standin.js';
import { isolatedEnv, tsxLoader, type CliResult } from '../helpers/cli.js';
import { FakeAwsError } from '../helpers/fake-aws.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

const account = '123456789012';
const region = 'eu-west-1';
const items = ['a', 'b', 'c'];

let s3: S3rverHandle;
let batch: BatchStandin;
let storage: Storage;
let dir: string;
let raw: string;
let runs: string;

function descriptor(): PlatformDescriptor {
  const definition = (job: string) => ({
    name: `geobatch-dev-${job}`,
    arn: `arn:aws:batch:${region}:${account}:job-definition/geobatch-dev-${job}:4`,
    queue: 'cpu' as const,
  });
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
      smoke: definition('smoke'),
      inspect: definition('inspect'),
      catalog: definition('catalog'),
      chip: definition('chip'),
    },
    repositories: {
      cpu: { name: 'geobatch/dev/cpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/dev/cpu` },
      gpu: { name: 'geobatch/dev/gpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/dev/gpu` },
    },
    imageTag: 'abc123',
    logGroup: { name: '/geobatch/dev/jobs' },
  };
}

/** What the containers see: S3 on s3rver, fixed credentials, no AWS control-plane endpoints. */
function containerEnv(): NodeJS.ProcessEnv {
  return isolatedEnv({
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    GEOBATCH_S3_ENDPOINT: s3.endpoint,
  });
}

/** A user's shell: the same, plus the CLI's Batch, SSM and CloudWatch Logs clients on the stand-in. */
function userEnv(): NodeJS.ProcessEnv {
  return { ...containerEnv(), ...batch.env(), GEOBATCH_CACHE_DIR: join(dir, 'cache') };
}

/**
 * inspect (array) -> check (`foreach: inspect`, N_TO_N) -> report (`foreach: check`, N_TO_N);
 * catalog (one task, fan-in `needs: [inspect]`); `extra` adds stages.
 */
function pipeline(name: string, extra = ''): string {
  return `version: 1
name: ${name}
inputs:
  scenes: s3://${raw}/scenes/*.tif
stages:
  inspect: { job: inspect, foreach: scenes }
  check: { job: smoke, foreach: inspect, params: { sleepMs: 300 } }
  report: { job: smoke, foreach: check }
  catalog: { job: catalog, needs: [inspect] }
${extra}`;
}

const cliTimeoutMs = 45_000;

/** `geobatch <args>` as a user runs it, in the user's environment; killed if it outlives `cliTimeoutMs`. */
function geobatch(args: string[]): Promise<CliResult> {
  return new Promise((done, fail) => {
    const cli = spawn(
      process.execPath,
      ['--import', tsxLoader, resolve(import.meta.dirname, '../../bin/geobatch.ts'), ...args],
      { env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: cliTimeoutMs, killSignal: 'SIGKILL' },
    );
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    cli.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    cli.on('error', fail);
    cli.on('close', (code) => done({ code, stdout, stderr }));
  });
}

const resumed = (jobName: string) => /-r\d+$/.test(jobName);

before(async () => {
  s3 = await startS3rver();
  storage = createStorage({ s3: s3.clientConfig });
  dir = await mkdtemp(join(tmpdir(), 'geobatch-batch-e2e-'));
  [raw, runs] = await Promise.all([s3.createBucket(), s3.createBucket()]);
  const pixels = new Uint8Array(64 * 64 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
  for (const [k, id] of items.entries()) {
    const path = join(dir, `${id}.tif`);
    await writeGeoTiff(path, pixels, {
      width: 64,
      height: 64,
      bands: 3,
      dtype: 'uint8',
      tileSize: 64,
      geotransform: [500_000 + k * 640, 10, 0, 5_000_000, 0, -10],
      epsg: 32631,
    });
    await storage.writeAtomic(`s3://${raw}/scenes/${id}.tif`, await readFile(path));
  }
  batch = await startBatchStandin({
    descriptor: descriptor(),
    containerEnv: containerEnv(),
    maxRunning: 2,
    fault: ({ jobName, stage, arrayIndex, attempt }) => {
      if (jobName.startsWith('e2e-') && stage === 'check' && arrayIndex === 1 && attempt === 1)
        return 'spot-reclaim';
      if (jobName.startsWith('efail-') && !resumed(jobName)) {
        if (stage === 'check' && arrayIndex === 1) return 'oom-kill';
        if (stage === 'report' && arrayIndex === 0) return 'oom-kill';
        if (stage === 'catalog') return 'oom-kill';
      }
      if (jobName.startsWith('ekill-') && !resumed(jobName) && arrayIndex === 2) return 'killed-after-exit';
      return undefined;
    },
    refuseSubmit: (input) =>
      String(input.jobName).startsWith('erefuse-') && !String(input.jobName).match(/-r\d+$/) && refusing
        ? new FakeAwsError('ClientException', 'You have exceeded the job submission quota')
        : undefined,
  });
});

let refusing = true;

after(async () => {
  await batch?.stop();
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** `geobatch run <name>.yaml --runner batch --env dev --run s3://<runs>/runs/<name>`: the run's URI. */
async function submit(name: string, yaml: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, yaml);
  const runUri = `s3://${runs}/runs/${name}`;
  const result = await geobatch(['run', file, '--runner', 'batch', '--env', 'dev', '--run', runUri]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(
    result.stdout,
    /^submitted run \S+ of pipeline \S+ to AWS Batch \(environment dev, eu-west-1\)/,
  );
  return runUri;
}

interface StatusJson {
  state: string;
  submissions: number;
  stages: {
    name: string;
    tasks: number;
    counts: Record<string, number>;
    failures: { index: number; exitCode?: number; statusReason?: string; reason?: string }[];
  }[];
}

async function statusOf(runUri: string): Promise<StatusJson> {
  const result = await geobatch(['status', runUri, '--json']);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as StatusJson;
}

/** Per stage, the non-zero counts. */
function counts(status: StatusJson): Record<string, Record<string, number>> {
  return Object.fromEntries(
    status.stages.map((s) => [s.name, Object.fromEntries(Object.entries(s.counts).filter(([, n]) => n > 0))]),
  );
}

function jobsOf(prefix: string): StandinJob[] {
  return batch.jobs().filter((j) => j.name.startsWith(`${prefix}-`));
}

/** The job that ran task `index` of a stage in the run's first submission (an array child or a plain job). */
function child(prefix: string, stage: string, index: number): StandinJob {
  const found = jobsOf(prefix).find(
    (j) =>
      j.stage === stage && j.arraySize === undefined && !resumed(j.name) && (j.arrayIndex ?? 0) === index,
  );
  assert.ok(found, `no job ${prefix} ${stage}[${index}]`);
  return found;
}

async function logs(args: string[]): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  const result = await geobatch(['logs', ...args]);
  return { code: result.code, lines: result.stdout.split('\n').filter(Boolean), stderr: result.stderr };
}

const submitsSince = (n: number) => batch.aws.calls('SubmitJob').slice(n);

describe('geobatch --runner batch end to end (executing stand-in)', () => {
  test(
    'a pipeline with every kind of placement runs to the end; status and logs tell the truth, also of a spot-reclaimed task',
    { timeout: 60_000 },
    async () => {
      const before = batch.aws.calls('SubmitJob').length;
      const runUri = await submit(
        'e2e',
        pipeline(
          'e2e',
          '  chips: { job: chip, foreach: inspect, tasksPerItem: 2, params: { size: 32, overlap: 0 } }\n',
        ),
      );
      const calls = submitsSince(before);
      const record = await readBatchRecord(storage, runUri);
      const ids = new Map(record!.submissions[0]!.jobs.map((j) => [j.stage, j.jobId]));
      // one SubmitJob per stage, in dependency order, with Batch's placement of each kind
      assert.deepEqual(
        calls.map((c) => [
          (c.containerOverrides as { command: string[] }).command[2],
          (c.arrayProperties as { size?: number } | undefined)?.size,
          c.dependsOn,
        ]),
        [
          ['inspect', 3, undefined],
          ['check', 3, [{ jobId: ids.get('inspect'), type: 'N_TO_N' }]],
          ['report', 3, [{ jobId: ids.get('check'), type: 'N_TO_N' }]],
          ['catalog', undefined, [{ jobId: ids.get('inspect') }]],
          ['chips', 6, [{ jobId: ids.get('inspect') }]],
        ],
      );

      // follows the reclaimed task from before it starts to its end, across its two log streams
      const following = geobatch(['logs', runUri, 'check', '--index', '1', '--follow']);
      await batch.settled(60_000);
      const followed = await following;
      const jobs = jobsOf('e2e');
      assert.deepEqual(
        jobs.filter((j) => j.status !== 'SUCCEEDED').map((j) => `${j.stage}[${j.arrayIndex}] ${j.status}`),
        [],
      );
      // every task went through Batch's states; array parents only SUBMITTED, PENDING, SUCCEEDED
      const inspect0 = child('e2e', 'inspect', 0);
      assert.deepEqual(inspect0.history, [
        'SUBMITTED',
        'PENDING',
        'RUNNABLE',
        'STARTING',
        'RUNNING',
        'SUCCEEDED',
      ]);
      const parent = jobs.find((j) => j.stage === 'inspect' && j.arrayIndex === undefined)!;
      assert.deepEqual(parent.history, ['SUBMITTED', 'PENDING', 'SUCCEEDED']);
      // the reclaimed child was retried: a second attempt with a new log stream
      const reclaimed = child('e2e', 'check', 1);
      assert.equal(reclaimed.attempts.length, 2);
      assert.match(reclaimed.attempts[0]!.statusReason!, /^Host EC2 .* terminated\.$/);
      assert.notEqual(reclaimed.attempts[0]!.logStreamName, reclaimed.attempts[1]!.logStreamName);
      assert.match(reclaimed.attempts[1]!.logStreamName, /^geobatch-dev-smoke\/default\/[0-9a-f]{32}$/);

      // the outputs and markers are on S3
      for (const id of items) {
        const record = JSON.parse((await storage.read(`${runUri}/inspect/${id}.json`)).toString('utf8')) as {
          width: number;
        };
        assert.equal(record.width, 64);
      }
      const catalog = JSON.parse((await storage.read(`${runUri}/catalog/catalog.json`)).toString('utf8')) as {
        records: { item: string }[];
      };
      assert.deepEqual(
        catalog.records.map((r) => r.item),
        items,
      );
      for (const [stage, n] of [
        ['inspect', 3],
        ['check', 3],
        ['report', 3],
        ['catalog', 1],
        ['chips', 6],
      ] as const) {
        for (let i = 0; i < n; i++)
          assert.ok(await storage.stat(runLayout(runUri).marker(stage, i)), `${stage}[${i}] marker`);
      }
      // tasksPerItem: 2 -> children 2k and 2k + 1 do the two halves of item k
      const parts = [];
      for (let i = 0; i < 6; i++) {
        const marker = JSON.parse(
          (await storage.read(runLayout(runUri).marker('chips', i))).toString('utf8'),
        ) as {
          items: string[];
          part: { index: number; count: number };
        };
        parts.push([marker.items.join(), marker.part.index, marker.part.count]);
      }
      assert.deepEqual(parts, [
        ['a', 0, 2],
        ['a', 1, 2],
        ['b', 0, 2],
        ['b', 1, 2],
        ['c', 0, 2],
        ['c', 1, 2],
      ]);

      const status = await statusOf(runUri);
      assert.equal(status.state, 'succeeded');
      assert.deepEqual(counts(status), {
        inspect: { succeeded: 3 },
        check: { succeeded: 3 },
        report: { succeeded: 3 },
        catalog: { succeeded: 1 },
        chips: { succeeded: 6 },
      });

      // logs print what the container wrote; for the reclaimed task, the attempt that succeeded
      const inspectLog = await logs([runUri, 'inspect', '--index', '2']);
      assert.equal(inspectLog.code, 0, inspectLog.stderr);
      assert.deepEqual(
        inspectLog.lines,
        batch.logLines(child('e2e', 'inspect', 2).attempts[0]!.logStreamName),
      );
      assert.match(inspectLog.lines[0]!, /INFO task inspect\[2\] job=inspect items=c /);
      assert.match(inspectLog.lines.at(-1)!, /^inspect\[2\] done in \d+ ms$/);

      // a one-task stage is a plain job: its log is index 0's
      const catalogLog = await logs([runUri, 'catalog']);
      assert.equal(catalogLog.code, 0, catalogLog.stderr);
      assert.match(catalogLog.lines[0]!, /INFO task catalog\[0\] job=catalog /);
      assert.match(catalogLog.lines.at(-1)!, /^catalog\[0\] done in \d+ ms$/);

      const latest = await logs([runUri, 'check', '--index', '1']);
      assert.equal(latest.code, 0, latest.stderr);
      assert.match(latest.lines[0]!, /INFO task check\[1\] job=smoke items=b .*"attempt":2/);
      assert.match(latest.lines.at(-1)!, /^check\[1\] done in \d+ ms$/);
      const first = await logs([runUri, 'check', '--index', '1', '--attempt', '1']);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(first.lines, batch.logLines(reclaimed.attempts[0]!.logStreamName));
      assert.match(first.lines[0]!, /"attempt":1/);
      assert.ok(!first.lines.some((l) => / done in /.test(l)), 'the reclaimed attempt did not finish');

      assert.equal(followed.code, 0, followed.stderr);
      const [a1, a2] = reclaimed.attempts.map((a) => batch.logLines(a.logStreamName));
      // a poll may fall after the short first attempt ended; then only the latest is shown
      const sawFirst = followed.stderr.includes('a new attempt started');
      assert.equal(followed.stdout, [...(sawFirst ? a1! : []), ...a2!].map((l) => l + '\n').join(''));
      // on a loaded machine the task may have started before `logs --follow` first asked
      if (followed.stderr.includes('has not started yet')) {
        assert.match(
          followed.stderr,
          /check\[1\] has not started yet \((SUBMITTED|PENDING|RUNNABLE|STARTING)\); waiting for it to start/,
        );
      }
    },
  );

  describe('a failed task, then resume', () => {
    let runUri = '';

    test(
      'status shows the failed task with its exit code and the tasks it blocked',
      { timeout: 60_000 },
      async () => {
        runUri = await submit('efail', pipeline('efail'));
        await batch.settled(60_000);
        // check[1] was OOM-killed: 'OutOfMemoryError' matches the rule onReason '*' -> EXIT, no retry
        const killed = child('efail', 'check', 1);
        assert.equal(killed.status, 'FAILED');
        assert.equal(killed.attempts.length, 1);
        assert.equal(child('efail', 'report', 1).statusReason, 'Dependent Job failed');
        assert.deepEqual(child('efail', 'report', 1).attempts, [], 'a blocked task never ran');

        const status = await statusOf(runUri);
        assert.equal(status.state, 'failed');
        assert.deepEqual(counts(status), {
          inspect: { succeeded: 3 },
          check: { succeeded: 2, failed: 1 },
          report: { succeeded: 1, failed: 1, blocked: 1 },
          catalog: { failed: 1 },
        });
        const failures = (stage: string) =>
          status.stages.find((s) => s.name === stage)!.failures.map((f) => [f.index, f.exitCode, f.reason]);
        const oom = 'OutOfMemoryError: Container killed due to memory usage';
        assert.deepEqual(failures('check'), [[1, 137, oom]]);
        assert.deepEqual(failures('report'), [[0, 137, oom]]);
        // a plain job's failure comes from its own container, not from ListJobs
        assert.deepEqual(failures('catalog'), [[0, 137, oom]]);
        const text = await geobatch(['status', runUri]);
        assert.match(
          text.stdout,
          /check\[1\] \(b\): exit 137: Essential container in task exited; OutOfMemoryError/,
        );
        assert.match(text.stdout, /1 task\(s\) blocked: a task they wait for failed/);

        // the first status that saw the run finished wrote its report, with Batch's failures in it
        const page = (await storage.read(`${runUri}/report/index.html`)).toString('utf8');
        assert.match(page, /AWS Batch, environment dev, eu-west-1/);
        assert.match(
          page,
          /<b>check\[1\]<\/b> \(b\): <code class="error">exit 137: Essential container in task exited; OutOfMemoryError/,
        );
        assert.ok(
          page.includes(`log: <code>geobatch logs ${runUri} check --index 1</code>`),
          'the log is a logs command',
        );
        assert.match(
          page,
          /data-stage="report"><td><a href="#stage-report">report<\/a><\/td><td>[^<]*<\/td><td><span class="badge"[^>]*>failed</,
        );
        const record = JSON.parse((await storage.read(`${runUri}/report/report.json`)).toString('utf8')) as {
          state: string;
        };
        assert.equal(record.state, 'failed');
        assert.match(text.stdout, /^report: s3:\/\/\S+\/report\/index\.html \(up to date\)$/m);
      },
    );

    test('resume resubmits only the unfinished tasks, which then finish', { timeout: 60_000 }, async () => {
      const before = batch.aws.calls('SubmitJob').length;
      const result = await geobatch(['resume', runUri]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^resubmitted \(resume 1\) run/);
      const calls = submitsSince(before);
      const runId = (await readBatchRecord(storage, runUri))!.runId;
      // check and report are joined task by task: both over the union {0, 1} of their unfinished tasks
      assert.deepEqual(
        calls.map((c) => [
          c.jobName,
          (c.containerOverrides as { command: string[] }).command.slice(2),
          (c.arrayProperties as { size?: number } | undefined)?.size,
          (c.dependsOn as { type?: string }[] | undefined)?.map((d) => d.type ?? 'whole job'),
        ]),
        [
          [`efail-check-${runId}-r1`, ['check', '--indexes', '0-1'], 2, undefined],
          [`efail-report-${runId}-r1`, ['report', '--indexes', '0-1'], 2, ['N_TO_N']],
          [`efail-catalog-${runId}-r1`, ['catalog'], undefined, undefined],
        ],
      );
      await batch.settled(60_000);
      const status = await statusOf(runUri);
      assert.equal(status.state, 'succeeded');
      assert.equal(status.submissions, 2);
      assert.deepEqual(counts(status), {
        inspect: { succeeded: 3 },
        check: { succeeded: 3 },
        report: { succeeded: 3 },
        catalog: { succeeded: 1 },
      });
      for (const stage of ['check', 'report'])
        for (let i = 0; i < 3; i++) assert.ok(await storage.stat(runLayout(runUri).marker(stage, i)));
      // the run's new final state gets a new report
      const record = JSON.parse((await storage.read(`${runUri}/report/report.json`)).toString('utf8')) as {
        state: string;
      };
      assert.equal(record.state, 'succeeded');
      const page = (await storage.read(`${runUri}/report/index.html`)).toString('utf8');
      assert.ok(!page.includes('class="failure"'), 'no failures left on the page');
      // the task that failed now shows the resumed attempt, which did the work
      const fixed = await logs([runUri, 'check', '--index', '1']);
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.match(fixed.lines.at(-1)!, /^check\[1\] done in \d+ ms$/);
    });

    test(
      'after resume, logs of a task that had finished show the attempt that wrote its marker',
      { timeout: 60_000 },
      async () => {
        // check[0] finished in the first submission and was resubmitted only as part of the N_TO_N union
        const log = await logs([runUri, 'check', '--index', '0']);
        assert.equal(log.code, 0, log.stderr);
        assert.match(log.lines.at(-1)!, /^check\[0\] done in \d+ ms$/);
        assert.ok(!log.lines.some((l) => /already done/.test(l)), log.lines.join('\n'));
      },
    );
  });

  test(
    'cancel while jobs are RUNNABLE and RUNNING terminates them, dependents first',
    { timeout: 60_000 },
    async () => {
      const file = join(dir, 'ecancel.yaml');
      await writeFile(
        file,
        `version: 1
name: ecancel
inputs:
  scenes: s3://${raw}/scenes/*.tif
stages:
  slow: { job: smoke, foreach: scenes, params: { sleepMs: 30000 } }
  after: { job: smoke, foreach: slow }
`,
      );
      const runUri = `s3://${runs}/runs/ecancel`;
      const run = await geobatch(['run', file, '--runner', 'batch', '--env', 'dev', '--run', runUri]);
      assert.equal(run.code, 0, run.stderr);
      const slow = (i: number) => child('ecancel', 'slow', i);
      // two containers at most: two children running (and logging), the third waits in RUNNABLE
      await batch.waitFor(
        () =>
          jobsOf('ecancel').filter((j) => j.stage === 'slow' && j.status === 'RUNNING').length === 2 &&
          jobsOf('ecancel').some((j) => j.stage === 'slow' && j.status === 'RUNNABLE'),
        20_000,
        'two slow children RUNNING and one RUNNABLE',
      );
      // SIGTERM should reach tasks that are working, not processes still starting
      await batch.waitFor(
        () =>
          jobsOf('ecancel')
            .filter((j) => j.currentLogStream)
            .filter((j) => batch.logLines(j.currentLogStream!).some((l) => / INFO task slow\[/.test(l)))
            .length === 2,
        20_000,
        'the two running tasks to log their start',
      );
      const running = await statusOf(runUri);
      assert.equal(running.state, 'running');
      assert.deepEqual(counts(running), { slow: { running: 2, runnable: 1 }, after: { pending: 3 } });
      const early = await geobatch(['resume', runUri]);
      assert.equal(early.code, 1);
      assert.match(early.stderr, /2 job\(s\) of this run are still active \(slow PENDING, after SUBMITTED\)/);

      const before = batch.aws.calls('TerminateJob').length;
      const result = await geobatch(['cancel', runUri, '--reason', 'e2e cancel']);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^run \S+: stopped 2 job\(s\) \(slow, after\)\n/);
      const record = await readBatchRecord(storage, runUri);
      const ids = new Map(record!.submissions[0]!.jobs.map((j) => [j.stage, j.jobId]));
      assert.deepEqual(batch.aws.calls('TerminateJob').slice(before), [
        { jobId: ids.get('after'), reason: 'e2e cancel' },
        { jobId: ids.get('slow'), reason: 'e2e cancel' },
      ]);
      await batch.settled(15_000);
      const stopped = [0, 1, 2].map(slow).filter((j) => j.history.includes('RUNNING'));
      const queued = [0, 1, 2].map(slow).filter((j) => !j.history.includes('RUNNING'));
      assert.equal(stopped.length, 2, JSON.stringify(jobsOf('ecancel'), null, 1));
      assert.equal(queued.length, 1);
      for (const j of [...stopped, ...queued]) {
        assert.equal(j.status, 'FAILED');
        assert.equal(j.statusReason, 'e2e cancel');
      }
      assert.deepEqual(queued[0]!.attempts, [], 'a cancelled queued task never ran');
      // the running containers got SIGTERM and stopped themselves (no marker, no retry)
      for (const j of stopped) {
        assert.equal(j.attempts.length, 1);
        assert.notEqual(j.attempts[0]!.exitCode, 0);
      }
      for (let i = 0; i < 3; i++)
        assert.equal(await storage.stat(runLayout(runUri).marker('slow', i)), undefined);
      // dependents were terminated first, so they are cancelled, not failed as 'Dependent Job failed'
      for (const i of [0, 1, 2]) {
        assert.equal(child('ecancel', 'after', i).status, 'FAILED');
        assert.equal(child('ecancel', 'after', i).statusReason, 'e2e cancel');
      }
      const status = await statusOf(runUri);
      assert.equal(status.state, 'cancelled');
    },
  );

  describe('a container killed after it wrote its completion marker', () => {
    let runUri = '';
    test(
      'Batch reports the task FAILED (exit 137) and fails its dependent; resume, going by the markers, completes the run',
      { timeout: 60_000 },
      async () => {
        const file = join(dir, 'ekill.yaml');
        await writeFile(
          file,
          `version: 1
name: ekill
inputs:
  scenes: s3://${raw}/scenes/*.tif
stages:
  first: { job: smoke, foreach: scenes }
  second: { job: smoke, foreach: first }
`,
        );
        runUri = `s3://${runs}/runs/ekill`;
        const run = await geobatch(['run', file, '--runner', 'batch', '--env', 'dev', '--run', runUri]);
        assert.equal(run.code, 0, run.stderr);
        await batch.settled(30_000);
        const killed = child('ekill', 'first', 2);
        assert.equal(killed.status, 'FAILED');
        assert.equal(killed.attempts[0]!.exitCode, 137);
        assert.ok(await storage.stat(runLayout(runUri).marker('first', 2)));
        // Batch fails what waits for it, although its work is done
        assert.equal(child('ekill', 'second', 2).statusReason, 'Dependent Job failed');
        const log = await logs([runUri, 'first', '--index', '2']);
        assert.match(
          log.lines.at(-1)!,
          /^first\[2\] done in \d+ ms$/,
          'the killed attempt finished its task',
        );

        // resume goes by the markers: only second[2], as a plain job with nothing to wait for
        const before = batch.aws.calls('SubmitJob').length;
        const resume = await geobatch(['resume', runUri]);
        assert.equal(resume.code, 0, resume.stderr);
        assert.deepEqual(
          submitsSince(before).map((c) => [
            (c.containerOverrides as { command: string[] }).command.slice(2),
            c.arrayProperties,
            c.dependsOn,
          ]),
          [[['second', '--index', '2'], undefined, undefined]],
        );
        await batch.settled(30_000);
        const resumedLog = await logs([runUri, 'second', '--index', '2']);
        assert.equal(resumedLog.code, 0, resumedLog.stderr);
        assert.match(resumedLog.lines.at(-1)!, /^second\[2\] done in \d+ ms$/);
        const again = await geobatch(['resume', runUri]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(
          again.stdout,
          /^run \S+ is complete: every task has a completion marker; nothing to submit$/m,
        );
      },
    );

    test(
      'status counts the task with a marker as done, agreeing with resume',
      { timeout: 60_000 },
      async () => {
        const status = await statusOf(runUri);
        // resume has nothing left to submit, so status must not say the run failed
        assert.deepEqual(counts(status), { first: { succeeded: 3 }, second: { succeeded: 3 } });
        assert.equal(status.state, 'succeeded');
      },
    );
  });

  test(
    "--image-tag registers revisions without CloudFormation's reserved tags and runs with them",
    { timeout: 60_000 },
    async () => {
      const file = join(dir, 'eimage.yaml');
      await writeFile(
        file,
        `version: 1
name: eimage
inputs:
  scenes: s3://${raw}/scenes/*.tif
stages:
  first: { job: smoke, foreach: scenes }
`,
      );
      const runUri = `s3://${runs}/runs/eimage`;
      const before = batch.aws.calls('RegisterJobDefinition').length;
      const run = await geobatch([
        'run',
        file,
        '--runner',
        'batch',
        '--env',
        'dev',
        '--run',
        runUri,
        '--image-tag',
        't2',
      ]);
      assert.equal(run.code, 0, run.stderr);
      const registered = batch.aws.calls('RegisterJobDefinition').slice(before);
      assert.equal(registered.length, 1);
      assert.deepEqual(Object.keys(registered[0]!.tags as object), ['geobatch:env']);
      await batch.settled(30_000);
      assert.deepEqual(counts(await statusOf(runUri)), { first: { succeeded: 3 } });
    },
  );

  describe('a refused first SubmitJob', () => {
    const runUri = () => `s3://${runs}/runs/erefuse`;
    let stderr = '';
    test("run fails with Batch's reason and submits nothing", { timeout: 60_000 }, async () => {
      const file = join(dir, 'erefuse.yaml');
      await writeFile(
        file,
        `version: 1
name: erefuse
inputs:
  scenes: s3://${raw}/scenes/*.tif
stages:
  first: { job: smoke, foreach: scenes }
`,
      );
      const run = await geobatch(['run', file, '--runner', 'batch', '--env', 'dev', '--run', runUri()]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, /You have exceeded the job submission quota/);
      assert.equal(jobsOf('erefuse').length, 0);
      stderr = run.stderr;
    });

    test('the error names the run', { timeout: 60_000 }, () => {
      assert.ok(stderr.includes(runUri()), stderr);
    });

    test('the run stays a Batch run: resume submits it to Batch', { timeout: 60_000 }, async () => {
      // status asks Batch about a Batch run, never shows the local table
      const before = await geobatch(['status', runUri(), '--json']);
      assert.equal(before.code, 0, before.stderr);
      assert.equal((JSON.parse(before.stdout) as { env?: string }).env, 'dev', before.stdout);
      refusing = false;
      const submitted = batch.aws.calls('SubmitJob').length;
      const resume = await geobatch(['resume', runUri()]);
      assert.equal(resume.code, 0, resume.stderr);
      assert.equal(
        submitsSince(submitted).length,
        1,
        'resume submitted the stage to Batch, not on this machine',
      );
      await batch.settled(30_000);
      const status = await statusOf(runUri());
      assert.deepEqual(counts(status), { first: { succeeded: 3 } });
    });
  });
});
