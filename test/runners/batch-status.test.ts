/**
 * Status of a run on Batch from recorded DescribeJobs / ListJobs answers: per-stage counts over
 * mixed child states, failures with reason and exit code, blocked tasks, resumed runs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { BatchClient, DescribeJobsCommand, ListJobsCommand, type JobDetail } from '@aws-sdk/client-batch';
import { mockClient } from 'aws-sdk-client-mock';
import { BatchApi, jobStates } from '../../lib/runners/batch.js';
import { readBatchStatus, taskColumns } from '../../lib/runners/batch-status.js';
import { resumeTasks } from '../../lib/runners/batch-plan.js';
import { readDoneTasks } from '../../lib/runners/state.js';
import type { BatchRecord, SubmittedJob } from '../../lib/runners/batch-record.js';
import { runLayout } from '../../lib/runners/layout.js';
import { createStorage } from '../../lib/storage/index.js';
import { formatBatchStatus } from '../../lib/cli/status.js';
import { graphStage, mixedGraph, planOf, s3Items } from './batch-fixtures.js';

const batch = mockClient(BatchClient);
const api = () => new BatchApi(new BatchClient({ region: 'eu-west-1' }), 'test');
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geobatch-batch-status-'));
});
after(async () => {
  batch.restore();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => batch.reset());

function job(stage: string, jobId: string, arraySize: number | undefined, tasks: string): SubmittedJob {
  return {
    stage,
    jobId,
    jobName: jobId,
    jobQueue: 'q',
    jobDefinition: 'd',
    ...(arraySize !== undefined ? { arraySize } : {}),
    tasks,
  };
}

function record(runUri: string, ...submissions: SubmittedJob[][]): BatchRecord {
  return {
    version: 1,
    runId: 'r',
    runUri,
    planUri: `${runUri}/plan.json`,
    env: 'test',
    region: 'eu-west-1',
    logGroup: '/geobatch/test/jobs',
    submissions: submissions.map((jobs, number) => ({
      number,
      kind: number === 0 ? 'run' : 'resume',
      submittedAt: '2025-01-02T03:04:05.000Z',
      tags: {},
      jobs,
    })),
  };
}

function detail(jobId: string, status: JobDetail['status'], extra: Partial<JobDetail> = {}): JobDetail {
  return { jobId, jobName: jobId, jobQueue: 'q', jobDefinition: 'd', status, startedAt: 1, ...extra };
}

const storage = createStorage();
let runs = 0;

/** A new run folder with completion markers of the given tasks. */
async function runWithMarkers(done: Record<string, number[]> = {}): Promise<string> {
  const uri = join(dir, `run-${++runs}`);
  for (const [stage, indexes] of Object.entries(done))
    for (const i of indexes) await storage.writeAtomic(runLayout(uri).marker(stage, i), '{}');
  return uri;
}

describe('Batch status', () => {
  test('counts every state of every stage, with failed children (reason, exit code) and blocked ones', async () => {
    const runUri = await runWithMarkers({ chip: [0, 1], shards: [0] });
    const plan = planOf(runUri, mixedGraph(6));
    const rec = record(runUri, [
      job('chip', 'chip-id', 6, '0-5'),
      job('shards', 'shards-id', 6, '0-5'),
      job('merge', 'merge-id', undefined, '0'),
      job('train', 'train-id', undefined, '0'),
    ]);
    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('chip-id', 'PENDING', {
          arrayProperties: {
            size: 6,
            statusSummary: { SUCCEEDED: 2, RUNNING: 1, RUNNABLE: 1, STARTING: 0, FAILED: 2 },
          },
        }),
        detail('shards-id', 'PENDING', {
          arrayProperties: { size: 6, statusSummary: { SUCCEEDED: 1, PENDING: 3, FAILED: 2 } },
        }),
        detail('merge-id', 'PENDING'),
        detail('train-id', 'SUBMITTED'),
      ],
    });
    // two pages of failed chip children
    batch
      .on(ListJobsCommand, { arrayJobId: 'chip-id', jobStatus: 'FAILED', maxResults: 1000 })
      .resolves({
        jobSummaryList: [
          {
            jobId: 'chip-id:3',
            jobName: 'c',
            status: 'FAILED',
            statusReason: 'Essential container in task exited',
            container: { exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' },
            arrayProperties: { index: 3 },
          },
        ],
        nextToken: 'page-2',
      })
      .on(ListJobsCommand, {
        arrayJobId: 'chip-id',
        jobStatus: 'FAILED',
        maxResults: 1000,
        nextToken: 'page-2',
      })
      .resolves({
        jobSummaryList: [
          {
            jobId: 'chip-id:5',
            jobName: 'c',
            status: 'FAILED',
            statusReason: 'Host EC2 (instance i-0abc) terminated.',
            arrayProperties: { index: 5 },
          },
        ],
      });
    batch.on(ListJobsCommand, { arrayJobId: 'shards-id' }).resolves({
      jobSummaryList: [3, 5].map((i) => ({
        jobId: `shards-id:${i}`,
        jobName: 's',
        status: 'FAILED',
        statusReason: 'Dependent Job failed',
        arrayProperties: { index: i },
      })),
    });

    const status = await readBatchStatus({
      plan,
      record: rec,
      api: api(),
      storage,
      now: () => new Date('2025-01-02T04:00:00Z'),
    });

    assert.deepEqual(
      batch.commandCalls(DescribeJobsCommand).map((c) => c.args[0].input),
      [{ jobs: ['chip-id', 'shards-id', 'merge-id', 'train-id'] }],
    );
    const sorted = (inputs: unknown[]) => inputs.map((i) => JSON.stringify(i)).sort();
    assert.deepEqual(
      sorted(batch.commandCalls(ListJobsCommand).map((c) => c.args[0].input)),
      sorted([
        { arrayJobId: 'chip-id', jobStatus: 'FAILED', maxResults: 1000 },
        { arrayJobId: 'chip-id', jobStatus: 'FAILED', maxResults: 1000, nextToken: 'page-2' },
        { arrayJobId: 'shards-id', jobStatus: 'FAILED', maxResults: 1000 },
      ]),
    );
    const byName = Object.fromEntries(status.stages.map((s) => [s.name, s]));
    const zero = {
      pending: 0,
      runnable: 0,
      starting: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
      blocked: 0,
      unknown: 0,
    };
    assert.deepEqual(byName.chip?.counts, { ...zero, succeeded: 2, running: 1, runnable: 1, failed: 2 });
    assert.deepEqual(byName.shards?.counts, { ...zero, succeeded: 1, pending: 3, blocked: 2 });
    assert.deepEqual(byName.merge?.counts, { ...zero, pending: 1 });
    assert.deepEqual(byName.train?.counts, { ...zero, pending: 1 });
    assert.deepEqual(byName.chip?.failures, [
      {
        index: 3,
        items: ['scene00003'],
        jobId: 'chip-id:3',
        statusReason: 'Essential container in task exited',
        exitCode: 137,
        reason: 'OutOfMemoryError: Container killed due to memory usage',
      },
      {
        index: 5,
        items: ['scene00005'],
        jobId: 'chip-id:5',
        statusReason: 'Host EC2 (instance i-0abc) terminated.',
      },
    ]);
    assert.deepEqual(byName.shards?.failures, [], 'blocked tasks are counted, not listed as failures');
    assert.equal(status.state, 'running');

    const text = formatBatchStatus(status);
    assert.match(text, /^run 20250102-030405-ab12 \(xview\) on AWS Batch \(test, eu-west-1\): running$/m);
    assert.match(
      text,
      /^stage\s+job\s+tasks\s+pending\s+runnable\s+starting\s+running\s+succeeded\s+failed\s+blocked$/m,
    );
    assert.match(text, /^chip\s+chip\s+6\s+0\s+1\s+0\s+1\s+2\s+2\s+0$/m);
    assert.match(
      text,
      /chip\[3\] \(scene00003\): exit 137: Essential container in task exited; OutOfMemoryError: Container killed due to memory usage\n {4}geobatch logs \S+ chip --index 3/,
    );
    assert.match(text, /2 task\(s\) blocked: a task they wait for failed/);
  });

  test("a finished run is succeeded, failed (with the single job's exit code) or cancelled", async () => {
    const runUri = await runWithMarkers({ chip: [0, 1], shards: [0, 1], merge: [0] });
    const plan = planOf(runUri, mixedGraph(2));
    await storage.writeAtomic(runLayout(runUri).marker('train', 0), '{}');
    const jobs = [
      job('chip', 'c', 2, '0-1'),
      job('shards', 's', 2, '0-1'),
      job('merge', 'm', undefined, '0'),
      job('train', 't', undefined, '0'),
    ];
    const done = { arrayProperties: { size: 2, statusSummary: { SUCCEEDED: 2 } } };
    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('c', 'SUCCEEDED', done),
        detail('s', 'SUCCEEDED', done),
        detail('m', 'SUCCEEDED'),
        detail('t', 'SUCCEEDED'),
      ],
    });
    assert.equal(
      (await readBatchStatus({ plan, record: record(runUri, jobs), api: api(), storage })).state,
      'succeeded',
    );
    await storage.delete(runLayout(runUri).marker('train', 0));

    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('c', 'SUCCEEDED', done),
        detail('s', 'SUCCEEDED', done),
        detail('m', 'SUCCEEDED'),
        detail('t', 'FAILED', {
          statusReason: 'Essential container in task exited',
          attempts: [
            {
              container: { exitCode: 1, logStreamName: 'train/default/a1' },
              startedAt: 1,
              stoppedAt: 2,
              statusReason: 'x',
            },
          ],
        }),
      ],
    });
    const failed = await readBatchStatus({ plan, record: record(runUri, jobs), api: api(), storage });
    assert.equal(failed.state, 'failed');
    assert.deepEqual(failed.stages[3]?.failures, [
      { index: 0, items: [], jobId: 't', statusReason: 'Essential container in task exited', exitCode: 1 },
    ]);
    assert.match(
      formatBatchStatus(failed),
      new RegExp(`rerun what did not finish: geobatch resume ${runUri}`),
    );

    const cancelled = record(runUri, jobs);
    const last = cancelled.submissions[0]!;
    const withCancel = { ...cancelled, submissions: [{ ...last, cancelledAt: '2025-01-02T05:00:00.000Z' }] };
    assert.equal(
      (await readBatchStatus({ plan, record: withCancel, api: api(), storage })).state,
      'cancelled',
    );
  });

  test('a resumed run counts tasks finished earlier as succeeded and maps failed children to task indexes', async () => {
    const notSix = [0, 1, 2, 3, 4, 5, 7, 8, 9];
    const runUri = await runWithMarkers({ chip: notSix, shards: notSix });
    const plan = planOf(runUri, mixedGraph(10));
    const first = [
      job('chip', 'c0', 10, '0-9'),
      job('shards', 's0', 10, '0-9'),
      job('merge', 'm0', undefined, '0'),
      job('train', 't0', undefined, '0'),
    ];
    const second = [
      job('chip', 'c1', 3, '2,5-6'),
      job('shards', 's1', 3, '2,5-6'),
      job('merge', 'm1', undefined, '0'),
      job('train', 't1', undefined, '0'),
    ];
    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('c1', 'FAILED', { arrayProperties: { size: 3, statusSummary: { SUCCEEDED: 2, FAILED: 1 } } }),
        detail('s1', 'FAILED', { arrayProperties: { size: 3, statusSummary: { SUCCEEDED: 2, FAILED: 1 } } }),
        detail('m1', 'FAILED', { statusReason: 'Dependent Job failed' }),
        detail('t1', 'FAILED', { statusReason: 'Dependent Job failed' }),
      ],
    });
    batch.on(ListJobsCommand, { arrayJobId: 'c1' }).resolves({
      jobSummaryList: [
        {
          jobId: 'c1:2',
          jobName: 'c',
          statusReason: 'Essential container in task exited',
          container: { exitCode: 2 },
          arrayProperties: { index: 2 },
        },
      ],
    });
    batch.on(ListJobsCommand, { arrayJobId: 's1' }).resolves({
      jobSummaryList: [
        { jobId: 's1:2', jobName: 's', statusReason: 'Dependent Job failed', arrayProperties: { index: 2 } },
      ],
    });
    const status = await readBatchStatus({
      plan,
      record: record(runUri, first, second),
      api: api(),
      storage,
    });
    assert.deepEqual(batch.commandCalls(DescribeJobsCommand)[0]?.args[0].input, {
      jobs: ['c1', 's1', 'm1', 't1'],
    });
    const chip = status.stages[0]!;
    assert.equal(chip.earlier, 7);
    assert.equal(chip.counts.succeeded, 9);
    assert.equal(chip.counts.failed, 1);
    assert.deepEqual(
      chip.failures.map((f) => [f.index, f.items, f.exitCode]),
      [[6, ['scene00006'], 2]],
    );
    assert.equal(status.stages[1]?.counts.blocked, 1);
    assert.equal(status.stages[2]?.counts.blocked, 1);
    assert.equal(status.state, 'failed');
    assert.equal(status.submissions, 2);
  });

  test('a failed child of a split stage is named by its item and part', async () => {
    // GIVEN chips split in 3 over 2 images: array child 4 is part 2 of image 1
    const graph = {
      pipeline: 'xview',
      items: { images: s3Items(2) },
      stages: [
        graphStage('chips', {
          job: 'chip',
          itemsFrom: 'images',
          itemCount: 2,
          tasksPerItem: 3,
          taskCount: 6,
        }),
      ],
    };
    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('c0', 'FAILED', { arrayProperties: { size: 6, statusSummary: { SUCCEEDED: 5, FAILED: 1 } } }),
      ],
    });
    batch.on(ListJobsCommand, { arrayJobId: 'c0' }).resolves({
      jobSummaryList: [
        {
          jobId: 'c0:4',
          jobName: 'c',
          statusReason: 'Essential container in task exited',
          container: { exitCode: 1 },
          arrayProperties: { index: 4 },
        },
      ],
    });
    const runUri = await runWithMarkers({ chips: [0, 1, 2, 3, 5] });
    // WHEN
    const status = await readBatchStatus({
      plan: planOf(runUri, graph),
      record: record(runUri, [job('chips', 'c0', 6, '0-5')]),
      api: api(),
      storage,
    });
    // THEN
    assert.deepEqual(
      status.stages[0]!.failures.map((f) => [f.index, f.items, f.part]),
      [[4, ['scene00001'], { index: 1, count: 3 }]],
    );
    assert.match(
      formatBatchStatus(status),
      /^ {2}chips\[4\] \(scene00001 part 2\/3\): exit 1: Essential container in task exited$/m,
    );
  });

  test('jobs Batch no longer describes are counted from the completion markers', async () => {
    const uri = join(dir, 'expired');
    const plan = planOf(uri, mixedGraph(4));
    for (const i of [0, 1, 3]) await storage.writeAtomic(runLayout(uri).marker('chip', i), '{}');
    batch.on(DescribeJobsCommand).resolves({ jobs: [] });
    const status = await readBatchStatus({
      plan,
      record: record(uri, [job('chip', 'gone', 4, '0-3')]),
      api: api(),
      storage,
    });
    assert.deepEqual(
      { succeeded: status.stages[0]?.counts.succeeded, unknown: status.stages[0]?.counts.unknown },
      { succeeded: 3, unknown: 1 },
    );
    // nothing is known to have failed, but one task has no marker: resume runs it
    assert.equal(status.state, 'incomplete');
    assert.equal(status.complete, false);
  });

  test('DescribeJobs is sent in batches of at most 100 job ids', async () => {
    batch.on(DescribeJobsCommand).callsFake((input: { jobs: string[] }) => ({
      jobs: input.jobs.map((id) => detail(id, 'RUNNING')),
    }));
    const ids = Array.from({ length: 250 }, (_, i) => `job-${i}`);
    const views = await api().describeJobs(ids);
    assert.deepEqual(
      batch.commandCalls(DescribeJobsCommand).map((c) => c.args[0].input.jobs?.length),
      [100, 100, 50],
    );
    assert.equal(views.length, 250);
  });

  test('a task whose container was killed after writing its marker is done; its blocked dependents make the run incomplete', async () => {
    // GIVEN chip and shards finished; merge wrote its marker, then its container was killed;
    // Batch cancelled train as a dependent of a failed job
    const runUri = await runWithMarkers({ chip: [0, 1], shards: [0, 1], merge: [0] });
    const plan = planOf(runUri, mixedGraph(2));
    const done = { arrayProperties: { size: 2, statusSummary: { SUCCEEDED: 2 } } };
    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('c', 'SUCCEEDED', done),
        detail('s', 'SUCCEEDED', done),
        detail('m', 'FAILED', {
          statusReason: 'Essential container in task exited',
          container: { exitCode: 137, reason: 'OutOfMemoryError: Container killed due to memory usage' },
        }),
        detail('t', 'FAILED', { statusReason: 'Dependent Job failed' }),
      ],
    });
    const jobs = [
      job('chip', 'c', 2, '0-1'),
      job('shards', 's', 2, '0-1'),
      job('merge', 'm', undefined, '0'),
      job('train', 't', undefined, '0'),
    ];
    // WHEN
    const status = await readBatchStatus({ plan, record: record(runUri, jobs), api: api(), storage });
    // THEN
    const merge = status.stages[2]!;
    assert.equal(merge.counts.succeeded, 1);
    assert.equal(merge.counts.failed, 0);
    assert.deepEqual(merge.failures, []);
    assert.equal(status.stages[3]?.counts.blocked, 1);
    assert.equal(status.state, 'incomplete');
    assert.equal(status.complete, false);
    const text = formatBatchStatus(status);
    assert.match(text, /: incomplete$/m);
    assert.match(text, /incomplete: 1 task\(s\) have no completion marker/);
    assert.match(text, new RegExp(`rerun what did not finish: geobatch resume ${runUri}`));
    assert.doesNotMatch(text, /failures:/);
    // and resume agrees: only train is left
    assert.deepEqual([...resumeTasks(plan.graph, await readDoneTasks(storage, plan))], [['train', [0]]]);

    // once train has its marker too, the run has succeeded, although two jobs FAILED in Batch
    await storage.writeAtomic(runLayout(runUri).marker('train', 0), '{}');
    const after = await readBatchStatus({ plan, record: record(runUri, jobs), api: api(), storage });
    assert.equal(after.state, 'succeeded');
    assert.equal(after.complete, true);
  });

  test('a failed array child with a marker is done and not listed as a failure', async () => {
    const runUri = await runWithMarkers({ chip: [0, 1, 2] });
    const plan = planOf(runUri, { ...mixedGraph(3), stages: mixedGraph(3).stages.slice(0, 1) });
    batch.on(DescribeJobsCommand).resolves({
      jobs: [
        detail('c', 'FAILED', { arrayProperties: { size: 3, statusSummary: { SUCCEEDED: 2, FAILED: 1 } } }),
      ],
    });
    batch.on(ListJobsCommand).resolves({
      jobSummaryList: [
        {
          jobId: 'c:1',
          jobName: 'c',
          statusReason: 'Essential container in task exited',
          container: { exitCode: 143 },
          arrayProperties: { index: 1 },
        },
      ],
    });
    const status = await readBatchStatus({
      plan,
      record: record(runUri, [job('chip', 'c', 3, '0-2')]),
      api: api(),
      storage,
    });
    assert.deepEqual(status.stages[0]?.counts, {
      pending: 0,
      runnable: 0,
      starting: 0,
      running: 0,
      succeeded: 3,
      failed: 0,
      blocked: 0,
      unknown: 0,
    });
    assert.deepEqual(status.stages[0]?.failures, []);
    assert.equal(status.state, 'succeeded');
  });

  test('status and resume never contradict each other (generated states)', async () => {
    // a small seeded generator: the same states on every run
    let seed = 13;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
    const states = jobStates;
    for (let round = 0; round < 40; round++) {
      const images = 2 + Math.floor(random() * 4);
      const graph = mixedGraph(images);
      // markers independent of what Batch says: a container may die after writing one, and a
      // finished job may still be RUNNING for a moment
      const markers: Record<string, number[]> = {};
      for (const stage of graph.stages) {
        markers[stage.name] = Array.from({ length: stage.taskCount }, (_, i) => i).filter(
          () => random() < (round % 4 === 0 ? 1 : 0.6),
        );
      }
      const runUri = await runWithMarkers(markers);
      const plan = planOf(runUri, graph);
      const jobs = graph.stages.map((stage) =>
        job(
          stage.name,
          `${stage.name}-id`,
          stage.taskCount >= 2 ? stage.taskCount : undefined,
          `0-${stage.taskCount - 1}`,
        ),
      );
      const details: JobDetail[] = [];
      const children = new Map<string, { index: number; reason: string }[]>();
      for (const [n, stage] of graph.stages.entries()) {
        const j = jobs[n]!;
        const final = round % 3 !== 0;
        const state = final ? pick(['SUCCEEDED', 'FAILED'] as const) : pick(states);
        if (j.arraySize === undefined) {
          const reason =
            state === 'FAILED'
              ? pick(['Essential container in task exited', 'Dependent Job failed'])
              : undefined;
          details.push(detail(j.jobId, state, reason ? { statusReason: reason } : {}));
          continue;
        }
        const summary: Record<string, number> = {};
        const failed: { index: number; reason: string }[] = [];
        for (let i = 0; i < stage.taskCount; i++) {
          const child = final ? pick(['SUCCEEDED', 'FAILED'] as const) : pick(states);
          summary[child] = (summary[child] ?? 0) + 1;
          if (child === 'FAILED')
            failed.push({
              index: i,
              reason: pick(['Essential container in task exited', 'Dependent Job failed']),
            });
        }
        children.set(j.jobId, failed);
        details.push(
          detail(j.jobId, state, { arrayProperties: { size: stage.taskCount, statusSummary: summary } }),
        );
      }
      batch.reset();
      batch.on(DescribeJobsCommand).resolves({ jobs: details });
      batch.on(ListJobsCommand).callsFake((input: { arrayJobId: string }) => ({
        jobSummaryList: (children.get(input.arrayJobId) ?? []).map((f) => ({
          jobId: `${input.arrayJobId}:${f.index}`,
          jobName: 'x',
          statusReason: f.reason,
          arrayProperties: { index: f.index },
        })),
      }));

      const status = await readBatchStatus({ plan, record: record(runUri, jobs), api: api(), storage });
      const left = resumeTasks(graph, await readDoneTasks(storage, plan));
      const where = `round ${round}: ${JSON.stringify({ markers, details, status })}`;
      assert.equal(status.complete, left.size === 0, where);
      if (status.state === 'succeeded') assert.equal(left.size, 0, where);
      if (status.complete && status.state !== 'running') assert.equal(status.state, 'succeeded', where);
      for (const stage of status.stages) {
        const total = taskColumns.reduce((n, c) => n + stage.counts[c], 0);
        assert.equal(total, stage.tasks, `${where}: ${stage.name} counts add up`);
        assert.equal(stage.counts.succeeded, stage.done, where);
        const withoutMarker = stage.tasks - (markers[stage.name]?.length ?? 0);
        assert.equal(stage.tasks - stage.done, withoutMarker, where);
        // every task status does not call done is resubmitted, and nothing it calls done fails
        const resubmitted = new Set(left.get(stage.name) ?? []);
        for (let i = 0; i < stage.tasks; i++)
          if (!markers[stage.name]?.includes(i))
            assert.ok(resubmitted.has(i), `${where}: ${stage.name}[${i}]`);
        if (stage.done === stage.tasks) assert.ok(!left.has(stage.name), where);
        for (const f of stage.failures) assert.ok(!markers[stage.name]?.includes(f.index), where);
      }
    }
  });

  test('a submission that was refused or interrupted is shown, and the run is not complete', async () => {
    const runUri = await runWithMarkers();
    const plan = planOf(runUri, mixedGraph(2));
    const base = record(runUri, []);
    batch.on(DescribeJobsCommand).resolves({ jobs: [] });
    const refused = {
      ...base,
      submissions: [
        { ...base.submissions[0]!, state: 'failed' as const, error: 'SubmitJob for stage chip failed: x' },
      ],
    };
    const failed = await readBatchStatus({ plan, record: refused, api: api(), storage });
    assert.equal(failed.state, 'failed');
    assert.deepEqual(failed.submissionProblem, {
      number: 0,
      state: 'failed',
      error: 'SubmitJob for stage chip failed: x',
    });
    assert.match(formatBatchStatus(failed), /^the submission failed: SubmitJob for stage chip failed: x$/m);
    const interrupted = { ...base, submissions: [{ ...base.submissions[0]!, state: 'submitting' as const }] };
    const status = await readBatchStatus({ plan, record: interrupted, api: api(), storage });
    assert.equal(status.state, 'incomplete');
    assert.match(formatBatchStatus(status), /^the submission has not finished submitting/m);
  });
});
