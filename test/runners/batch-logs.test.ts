/**
 * A task's log on Batch: which job it is, its CloudWatch Logs stream read page by page, back-off
 * on throttling, a clear message before it starts, and following it through a retry.
 */
import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import { BatchClient, DescribeJobsCommand, type JobDetail } from '@aws-sdk/client-batch';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { BatchApi } from '../../lib/runners/batch.js';
import { BatchError } from '../../lib/runners/batch-errors.js';
import { locateTask, streamTaskLogs, withBackoff } from '../../lib/runners/batch-logs.js';
import type { BatchRecord, SubmittedJob } from '../../lib/runners/batch-record.js';
import { mixedGraph, planOf } from './batch-fixtures.js';

const batch = mockClient(BatchClient);
const logs = mockClient(CloudWatchLogsClient);
after(() => {
  batch.restore();
  logs.restore();
});
beforeEach(() => {
  batch.reset();
  logs.reset();
});

const runUri = 's3://runs/xview/r';
const plan = planOf(runUri, mixedGraph(10));

function job(stage: string, jobId: string, arraySize: number | undefined, tasks: string): SubmittedJob {
  return {
    stage,
    jobId,
    jobName: jobId,
    jobQueue: 'q',
    jobDefinition: 'd',
    ...(arraySize ? { arraySize } : {}),
    tasks,
  };
}

const record: BatchRecord = {
  version: 1,
  runId: 'r',
  runUri,
  planUri: `${runUri}/plan.json`,
  env: 'test',
  region: 'eu-west-1',
  logGroup: '/geobatch/test/jobs',
  submissions: [
    {
      number: 0,
      kind: 'run',
      submittedAt: 't',
      tags: {},
      jobs: [job('chip', 'chip0', 10, '0-9'), job('merge', 'merge0', undefined, '0')],
    },
    { number: 1, kind: 'resume', submittedAt: 't', tags: {}, jobs: [job('chip', 'chip1', 2, '4,7')] },
  ],
};

function detail(jobId: string, status: JobDetail['status'], extra: Partial<JobDetail> = {}): JobDetail {
  return { jobId, jobName: jobId, jobQueue: 'q', jobDefinition: 'd', status, startedAt: 1, ...extra };
}

const running = (jobId: string, stream: string) =>
  detail(jobId, 'RUNNING', {
    container: {
      logStreamName: stream,
      logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': '/geobatch/test/jobs' } },
    },
  });

const events = (...messages: string[]) =>
  messages.map((message, i) => ({ timestamp: i, message, ingestionTime: i }));

function options(extra: Partial<Parameters<typeof streamTaskLogs>[0]> = {}) {
  const lines: string[] = [];
  const notices: string[] = [];
  const sleeps: number[] = [];
  const opts = {
    plan,
    record,
    stage: 'chip',
    index: 7,
    api: new BatchApi(new BatchClient({ region: 'eu-west-1' }), 'test'),
    logs: new CloudWatchLogsClient({ region: 'eu-west-1' }),
    write: (line: string) => lines.push(line),
    notice: (m: string) => notices.push(m),
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
    pollMs: 1000,
    backoff: { random: () => 1 },
    ...extra,
  };
  return { opts, lines, notices, sleeps };
}

describe('Batch task logs', () => {
  test('finds the job of a task: the latest submission that ran it, array child by position', () => {
    assert.deepEqual(locateTask(record, plan, 'chip', 7), {
      job: record.submissions[1]!.jobs[0],
      jobId: 'chip1:1',
      arrayIndex: 1,
    });
    assert.deepEqual(locateTask(record, plan, 'chip', 3), {
      job: record.submissions[0]!.jobs[0],
      jobId: 'chip0:3',
      arrayIndex: 3,
    });
    assert.equal(locateTask(record, plan, 'merge', 0).jobId, 'merge0');
    assert.throws(
      () => locateTask(record, plan, 'chip', 10),
      /stage 'chip' has 10 task\(s\): --index must be an integer in \[0, 9\] but got 10/,
    );
    assert.throws(() => locateTask(record, plan, 'nope', 0), /stage 'nope' is not in this plan/);
  });

  test('reads every page of the stream until the forward token stops changing', async () => {
    batch
      .on(DescribeJobsCommand, { jobs: ['chip1:1'] })
      .resolves({ jobs: [running('chip1:1', 'chip/default/abc')] });
    logs
      .on(GetLogEventsCommand)
      .resolvesOnce({ events: events('one', 'two'), nextForwardToken: 'f/1' })
      .resolvesOnce({ events: events('three\n'), nextForwardToken: 'f/2' })
      .resolvesOnce({ events: [], nextForwardToken: 'f/2' });
    const { opts, lines } = options();
    assert.equal(await streamTaskLogs(opts), 3);
    assert.deepEqual(lines, ['one', 'two', 'three']);
    assert.deepEqual(
      logs.commandCalls(GetLogEventsCommand).map((c) => c.args[0].input),
      [
        { logGroupName: '/geobatch/test/jobs', logStreamName: 'chip/default/abc', startFromHead: true },
        {
          logGroupName: '/geobatch/test/jobs',
          logStreamName: 'chip/default/abc',
          startFromHead: true,
          nextToken: 'f/1',
        },
        {
          logGroupName: '/geobatch/test/jobs',
          logStreamName: 'chip/default/abc',
          startFromHead: true,
          nextToken: 'f/2',
        },
      ],
    );
  });

  test('backs off exponentially while CloudWatch Logs throttles, then carries on', async () => {
    batch.on(DescribeJobsCommand).resolves({ jobs: [running('chip1:1', 's')] });
    const throttled = () => Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    logs
      .on(GetLogEventsCommand)
      .rejectsOnce(throttled())
      .rejectsOnce(throttled())
      .rejectsOnce(throttled())
      .resolvesOnce({ events: events('after the storm'), nextForwardToken: 'f/1' })
      .resolvesOnce({ events: [], nextForwardToken: 'f/1' });
    const { opts, lines, sleeps } = options();
    await streamTaskLogs(opts);
    assert.deepEqual(sleeps, [500, 1000, 2000]);
    assert.deepEqual(lines, ['after the storm']);
  });

  test('back-off waits are capped, jittered, and give up after the last retry', async () => {
    const sleeps: number[] = [];
    let calls = 0;
    const error = Object.assign(new Error('slow down'), { name: 'ThrottlingException' });
    await assert.rejects(
      withBackoff(
        async () => {
          calls++;
          throw error;
        },
        {
          baseMs: 100,
          maxMs: 500,
          maxRetries: 5,
          random: () => 0,
          sleep: async (ms) => void sleeps.push(ms),
        },
      ),
      error,
    );
    assert.equal(calls, 6);
    assert.deepEqual(sleeps, [50, 100, 200, 250, 250]);
    // anything but throttling is not retried
    let other = 0;
    await assert.rejects(
      withBackoff(async () => {
        other++;
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(other, 1);
  });

  test('a task that has not started yet is a clear message, not an empty log', async () => {
    batch.on(DescribeJobsCommand).resolves({ jobs: [detail('chip1:1', 'RUNNABLE')] });
    const { opts } = options();
    await assert.rejects(
      streamTaskLogs(opts),
      (e: Error) =>
        e instanceof BatchError &&
        e.message ===
          'chip[7] has not started yet (RUNNABLE): its log appears once it runs; add --follow to wait for it',
    );
    assert.equal(logs.commandCalls(GetLogEventsCommand).length, 0);

    batch
      .on(DescribeJobsCommand)
      .resolves({ jobs: [detail('chip1:1', 'FAILED', { statusReason: 'Dependent Job failed' })] });
    await assert.rejects(
      streamTaskLogs(options().opts),
      /chip\[7\] FAILED without starting \(Dependent Job failed\), so it has no log/,
    );
  });

  test("--follow waits for the task to start, streams it, switches to a retry attempt's stream, and stops when it ends", async () => {
    const attempt1 = {
      container: { logStreamName: 's1', exitCode: 137 },
      startedAt: 1,
      stoppedAt: 2,
      statusReason: 'Host EC2 (instance i-1) terminated.',
    };
    batch
      .on(DescribeJobsCommand)
      .resolvesOnce({ jobs: [detail('chip1:1', 'RUNNABLE')] })
      .resolvesOnce({ jobs: [running('chip1:1', 's1')] })
      .resolvesOnce({ jobs: [{ ...running('chip1:1', 's2'), attempts: [attempt1] }] })
      .resolvesOnce({
        jobs: [
          detail('chip1:1', 'SUCCEEDED', {
            container: { logStreamName: 's2', exitCode: 0 },
            attempts: [attempt1, { container: { logStreamName: 's2', exitCode: 0 } }],
          }),
        ],
      });
    logs
      .on(GetLogEventsCommand, { logStreamName: 's1' })
      .resolvesOnce({ events: events('a1 start'), nextForwardToken: 'a/1' })
      .resolvesOnce({ events: [], nextForwardToken: 'a/1' })
      .resolvesOnce({ events: events('a1 last words'), nextForwardToken: 'a/2' })
      .resolves({ events: [], nextForwardToken: 'a/2' });
    logs
      .on(GetLogEventsCommand, { logStreamName: 's2' })
      .resolvesOnce({ events: events('a2 start', 'a2 done'), nextForwardToken: 'b/1' })
      .resolves({ events: [], nextForwardToken: 'b/1' });
    const { opts, lines, notices, sleeps } = options({ follow: true });
    await streamTaskLogs(opts);
    assert.deepEqual(lines, ['a1 start', 'a1 last words', 'a2 start', 'a2 done']);
    assert.deepEqual(notices, [
      'chip[7] has not started yet (RUNNABLE); waiting for it to start',
      'chip[7]: a new attempt started (log stream s2)',
    ]);
    assert.ok(sleeps.every((ms) => ms === 1000));
    assert.equal(batch.commandCalls(DescribeJobsCommand).length, 4);
  });

  test("--attempt reads an earlier attempt's stream", async () => {
    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('chip1:1', 'SUCCEEDED', {
          container: { logStreamName: 's2' },
          attempts: [{ container: { logStreamName: 's1' } }, { container: { logStreamName: 's2' } }],
        }),
      ],
    });
    // a finished job's stream is read to its end once: the token repeats on the second call
    logs
      .on(GetLogEventsCommand, { logStreamName: 's1' })
      .resolvesOnce({ events: events('first try'), nextForwardToken: 'x' })
      .resolvesOnce({ events: [], nextForwardToken: 'x' });
    const { opts, lines } = options({ attempt: 1 });
    await streamTaskLogs(opts);
    assert.deepEqual(lines, ['first try']);
    assert.equal(
      logs.commandCalls(GetLogEventsCommand)[0]?.args[0].input.logGroupName,
      '/geobatch/test/jobs',
    );
    await assert.rejects(
      streamTaskLogs(options({ attempt: 3 }).opts),
      /chip\[7\] has no attempt 3 with a log \(it has had 2\)/,
    );
  });

  describe('a task that is done', () => {
    // chip[7] was done by attempt 2 of array child 7 of the first submission; the resume's child
    // (chip1:1) found its marker and did nothing
    const marker = {
      stage: 'chip',
      index: 7,
      items: ['scene00007'],
      startedAt: 't',
      finishedAt: 't',
      durationMs: 1,
      outputs: [],
      host: 'ip-10-0-0-1',
      attempt: 2,
      batch: { jobId: 'chip0:7', logStreamName: 'chip/default/a2' },
    };
    const killed = detail('chip0:7', 'FAILED', {
      container: { logStreamName: 'chip/default/a2', exitCode: 137 },
      attempts: [
        { container: { logStreamName: 'chip/default/a1', exitCode: 1 } },
        { container: { logStreamName: 'chip/default/a2', exitCode: 137 } },
      ],
    });

    test("is shown from the job and attempt that wrote its marker, not the later no-op's", async () => {
      batch.on(DescribeJobsCommand).resolves({ jobs: [killed] });
      logs
        .on(GetLogEventsCommand)
        .resolvesOnce({ events: events('task chip[7]', 'done in 1 ms'), nextForwardToken: 'f/1' })
        .resolvesOnce({ events: [], nextForwardToken: 'f/1' });
      const { opts, lines, notices } = options({ marker });
      await streamTaskLogs(opts);
      assert.deepEqual(
        batch.commandCalls(DescribeJobsCommand).map((c) => c.args[0].input),
        [{ jobs: ['chip0:7'] }],
      );
      assert.deepEqual(logs.commandCalls(GetLogEventsCommand)[0]?.args[0].input, {
        logGroupName: '/geobatch/test/jobs',
        logStreamName: 'chip/default/a2',
        startFromHead: true,
      });
      assert.deepEqual(lines, ['task chip[7]', 'done in 1 ms']);
      assert.match(
        notices[0] ?? '',
        /chip\[7\] was done by job chip0:7 \(attempt 2\); showing its log, not that of the later job chip1:1/,
      );
    });

    test('--attempt counts the attempts of that job', async () => {
      batch.on(DescribeJobsCommand).resolves({ jobs: [killed] });
      logs.on(GetLogEventsCommand).resolves({ events: [], nextForwardToken: 'x' });
      await streamTaskLogs(options({ marker, attempt: 1 }).opts);
      assert.deepEqual(
        batch.commandCalls(DescribeJobsCommand).map((c) => c.args[0].input),
        [{ jobs: ['chip0:7'] }],
      );
      assert.equal(logs.commandCalls(GetLogEventsCommand)[0]?.args[0].input.logStreamName, 'chip/default/a1');
    });

    test('is still shown from the stream the marker names once Batch has forgotten the job', async () => {
      batch.on(DescribeJobsCommand).resolves({ jobs: [] });
      logs
        .on(GetLogEventsCommand)
        .resolvesOnce({ events: events('kept'), nextForwardToken: 'x' })
        .resolvesOnce({ events: [], nextForwardToken: 'x' });
      const { opts, lines } = options({ marker });
      await streamTaskLogs(opts);
      assert.deepEqual(lines, ['kept']);
      assert.equal(logs.commandCalls(GetLogEventsCommand)[0]?.args[0].input.logStreamName, 'chip/default/a2');
    });
  });
});
