/**
 * The Batch runner's submission, resume and cancel, asserted on the exact requests a recorded
 * Batch client (aws-sdk-client-mock) receives; the plan, markers and batch.json go through
 * lib/storage to a real S3 protocol server (s3rver) on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import {
  BatchClient,
  DescribeJobDefinitionsCommand,
  DescribeJobQueuesCommand,
  DescribeJobsCommand,
  RegisterJobDefinitionCommand,
  SubmitJobCommand,
  TerminateJobCommand,
  type JobDetail,
} from '@aws-sdk/client-batch';
import { mockClient } from 'aws-sdk-client-mock';
import { compilePipeline, parsePipeline } from '../../lib/pipeline/index.js';
import { BatchApi, cancelOnBatch, resumeOnBatch, submitToBatch } from '../../lib/runners/batch.js';
import { BatchError, PlatformError } from '../../lib/runners/batch-errors.js';
import { readBatchRecord } from '../../lib/runners/batch-record.js';
import type { BatchRecord } from '../../lib/runners/batch-record.js';
import { runLayout } from '../../lib/runners/layout.js';
import { prepareRun } from '../../lib/runners/prepare.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { jobDefinitionArn, mixedGraph, planOf, runId, s3Items, testDescriptor } from './batch-fixtures.js';

const batch = mockClient(BatchClient);
let s3: S3rverHandle;
let storage: Storage;
let bucket: string;

before(async () => {
  s3 = await startS3rver();
  storage = createStorage({ s3: s3.clientConfig });
  bucket = await s3.createBucket();
});
after(async () => {
  batch.restore();
  await s3.stop();
});

/** Every queue exists and is enabled; SubmitJob answers `id-<jobName>`. */
function acceptEverything(): void {
  batch.reset();
  batch.on(DescribeJobQueuesCommand).callsFake((input: { jobQueues: string[] }) => ({
    jobQueues: input.jobQueues.map((name) => ({
      jobQueueName: name,
      jobQueueArn: `arn:aws:batch:eu-west-1:123456789012:job-queue/${name}`,
      state: 'ENABLED',
      status: 'VALID',
      priority: 1,
      computeEnvironmentOrder: [],
    })),
  }));
  batch.on(SubmitJobCommand).callsFake((input: { jobName: string }) => ({
    jobId: `id-${input.jobName}`,
    jobName: input.jobName,
  }));
}

function submitted() {
  return batch.commandCalls(SubmitJobCommand).map((c) => c.args[0].input);
}

let runCounter = 0;
function newRunUri(): string {
  return `s3://${bucket}/runs/xview/run-${++runCounter}`;
}

const api = () => new BatchApi(new BatchClient({ region: 'eu-west-1' }), 'test');

const env = (runUri: string, stage: string) => [
  { name: 'GEOBATCH_RUN_ID', value: runId },
  { name: 'GEOBATCH_RUN_URI', value: runUri },
  { name: 'GEOBATCH_STAGE', value: stage },
];
const tags = (stage: string) => ({
  'geobatch:run': runId,
  'geobatch:stage': stage,
  'geobatch:pipeline': 'xview',
});

/** smoke over the images, chips split in 3 per item over it, a merge that needs the chips. */
const SPLIT_PIPELINE = [
  'version: 1',
  'name: xview',
  'inputs:',
  '  images: s3://geobatch-test-raw/scenes/',
  'stages:',
  '  first: { job: smoke, foreach: images }',
  '  chips: { job: chip, foreach: first, tasksPerItem: 3 }',
  '  merge: { job: merge, needs: [chips], params: { chips: chips } }',
  '',
].join('\n');

/** A deployed job definition as DescribeJobDefinitions describes it. */
const definition = (job: string, queue: 'cpu' | 'gpu', revision: number) => ({
  jobDefinitionName: `geobatch-test-${job}`,
  jobDefinitionArn: jobDefinitionArn(job, revision),
  revision,
  status: 'ACTIVE',
  type: 'container',
  containerProperties: {
    image: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/geobatch/test/${queue}:abc123`,
    command: ['geobatch-job', '--help'],
    jobRoleArn: 'arn:aws:iam::123456789012:role/job',
    executionRoleArn: 'arn:aws:iam::123456789012:role/exec',
    resourceRequirements: [
      { type: 'VCPU' as const, value: '1' },
      { type: 'MEMORY' as const, value: '512' },
    ],
    environment: [{ name: 'GEOBATCH_ENV', value: 'test' }],
  },
  retryStrategy: {
    attempts: 3,
    evaluateOnExit: [
      { action: 'RETRY' as const, onStatusReason: 'Host EC2*' },
      { action: 'EXIT' as const, onReason: '*' },
    ],
  },
  timeout: { attemptDurationSeconds: 600 },
  propagateTags: true,
  // CloudFormation's own tags come back from DescribeJobDefinitions, and are reserved
  tags: {
    project: 'geobatch',
    environment: 'test',
    'aws:cloudformation:stack-name': 'geobatch-test',
    'aws:cloudformation:logical-id': `JobDefinition${job}`,
  },
  platformCapabilities: ['EC2' as const],
  containerOrchestrationType: 'ECS' as const,
});

describe('submission', () => {
  beforeEach(acceptEverything);

  test('per-item stages are arrays joined N_TO_N, fan-in is a plain dependency, the GPU stage goes to the GPU queue', async () => {
    const runUri = newRunUri();
    const plan = planOf(runUri, mixedGraph(3));
    const { record, submission } = await submitToBatch({
      storage,
      plan,
      descriptor: testDescriptor(bucket),
      api: api(),
      costTags: { team: 'mapping' },
    });

    assert.deepEqual(
      batch.commandCalls(DescribeJobQueuesCommand).map((c) => c.args[0].input),
      [{ jobQueues: ['geobatch-test-cpu', 'geobatch-test-gpu'] }],
    );
    const calls = submitted();
    assert.equal(calls.length, 4, 'one SubmitJob per stage');
    const planUri = `${runUri}/plan.json`;
    assert.deepEqual(calls[0], {
      jobName: `xview-chip-${runId}`,
      jobQueue: 'geobatch-test-cpu',
      jobDefinition: jobDefinitionArn('chip', 2),
      arrayProperties: { size: 3 },
      containerOverrides: {
        command: ['geobatch-job', planUri, 'chip'],
        environment: env(runUri, 'chip'),
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '512' },
        ],
      },
      timeout: { attemptDurationSeconds: 600 },
      tags: { ...tags('chip'), team: 'mapping' },
      propagateTags: true,
    });
    assert.deepEqual(calls[1], {
      jobName: `xview-shards-${runId}`,
      jobQueue: 'geobatch-test-cpu',
      jobDefinition: jobDefinitionArn('smoke', 3),
      arrayProperties: { size: 3 },
      dependsOn: [{ jobId: `id-xview-chip-${runId}`, type: 'N_TO_N' }],
      containerOverrides: {
        command: ['geobatch-job', planUri, 'shards'],
        environment: env(runUri, 'shards'),
        resourceRequirements: [
          { type: 'VCPU', value: '2' },
          { type: 'MEMORY', value: '4096' },
        ],
      },
      timeout: { attemptDurationSeconds: 900 },
      tags: { ...tags('shards'), team: 'mapping' },
      propagateTags: true,
    });
    assert.deepEqual(calls[2], {
      jobName: `xview-merge-${runId}`,
      jobQueue: 'geobatch-test-cpu',
      jobDefinition: jobDefinitionArn('merge', 1),
      dependsOn: [{ jobId: `id-xview-shards-${runId}` }],
      containerOverrides: {
        command: ['geobatch-job', planUri, 'merge'],
        environment: env(runUri, 'merge'),
        resourceRequirements: [
          { type: 'VCPU', value: '1' },
          { type: 'MEMORY', value: '512' },
        ],
      },
      timeout: { attemptDurationSeconds: 600 },
      tags: { ...tags('merge'), team: 'mapping' },
      propagateTags: true,
    });
    assert.deepEqual(calls[3], {
      jobName: `xview-train-${runId}`,
      jobQueue: 'geobatch-test-gpu',
      jobDefinition: jobDefinitionArn('train', 7),
      dependsOn: [{ jobId: `id-xview-merge-${runId}` }],
      containerOverrides: {
        command: ['geobatch-job', planUri, 'train'],
        environment: env(runUri, 'train'),
        resourceRequirements: [
          { type: 'VCPU', value: '8' },
          { type: 'MEMORY', value: '30000' },
          { type: 'GPU', value: '1' },
        ],
      },
      // the stage's own attempts replace the definition's strategy, so its rules are repeated
      retryStrategy: {
        attempts: 5,
        evaluateOnExit: [
          { action: 'RETRY', onStatusReason: 'Host EC2*' },
          { action: 'EXIT', onReason: '*' },
        ],
      },
      timeout: { attemptDurationSeconds: 14400 },
      tags: { ...tags('train'), team: 'mapping' },
      propagateTags: true,
    });
    for (const call of calls.slice(0, 3)) {
      assert.ok(!('retryStrategy' in call), `${call.jobName} inherits the job definition's retry strategy`);
      assert.ok(!('image' in (call.containerOverrides ?? {})), 'never overrides the image');
    }

    // the job ids are in <run>/batch.json (through storage, on S3) before submitToBatch returns
    const stored = await readBatchRecord(storage, runUri);
    assert.deepEqual(stored, record);
    assert.equal(stored?.env, 'test');
    assert.equal(stored?.region, 'eu-west-1');
    assert.equal(stored?.logGroup, '/geobatch/test/jobs');
    assert.equal(submission.number, 0);
    assert.deepEqual(
      submission.jobs.map((j) => [j.stage, j.jobId, j.arraySize, j.tasks]),
      [
        ['chip', `id-xview-chip-${runId}`, 3, '0-2'],
        ['shards', `id-xview-shards-${runId}`, 3, '0-2'],
        ['merge', `id-xview-merge-${runId}`, undefined, '0'],
        ['train', `id-xview-train-${runId}`, undefined, '0'],
      ],
    );
  });

  test('25,000 items are grouped into arrays of 8,334 tasks (3 items each), N_TO_N from stage to stage', async () => {
    const text = [
      'version: 1',
      'name: big',
      'inputs:',
      '  images: s3://geobatch-test-raw/scenes/',
      'stages:',
      '  first:',
      '    job: smoke',
      '    foreach: images',
      '  second:',
      '    job: smoke',
      '    foreach: first',
      '  gather:',
      '    job: smoke',
      '    foreach: images',
      '    itemsPerTask: 25000',
      '    needs: [second]',
      '',
    ].join('\n');
    const { spec, source } = parsePipeline(text, 'big.yaml');
    const graph = compilePipeline(spec, { images: s3Items(25_000) }, source);
    const runUri = newRunUri();
    await submitToBatch({
      storage,
      plan: planOf(runUri, graph),
      descriptor: testDescriptor(bucket),
      api: api(),
    });
    const calls = submitted();
    assert.equal(calls.length, 3);
    const [first, second, gather] = calls;
    assert.deepEqual(first?.arrayProperties, { size: 8334 });
    assert.deepEqual(first?.containerOverrides?.command, ['geobatch-job', `${runUri}/plan.json`, 'first']);
    assert.equal(first?.dependsOn, undefined);
    assert.deepEqual(second?.arrayProperties, { size: 8334 });
    assert.deepEqual(second?.dependsOn, [{ jobId: `id-big-first-${runId}`, type: 'N_TO_N' }]);
    assert.equal(gather?.arrayProperties, undefined, 'a stage of one task is a plain job');
    assert.deepEqual(gather?.dependsOn, [{ jobId: `id-big-second-${runId}` }]);
    assert.equal(graph.stages[0]?.itemsPerTask, 3);
  });

  test('a stage split into 3 tasks per item is an array of items x 3, waiting for the whole stage it runs over', async () => {
    // GIVEN chips split in 3 over first's 2 items, and a merge that needs the chips
    const graph = compilePipeline(parsePipeline(SPLIT_PIPELINE, 'split.yaml').spec, { images: s3Items(2) });
    const runUri = newRunUri();
    const planUri = `${runUri}/plan.json`;
    // WHEN
    const { submission } = await submitToBatch({
      storage,
      plan: planOf(runUri, graph),
      descriptor: testDescriptor(bucket),
      api: api(),
    });
    // THEN one SubmitJob per stage; the split stage's array has items x parts children and a
    // plain dependency (Batch pairs N_TO_N children only between arrays of one size)
    assert.deepEqual(submitted(), [
      {
        jobName: `xview-first-${runId}`,
        jobQueue: 'geobatch-test-cpu',
        jobDefinition: jobDefinitionArn('smoke', 3),
        arrayProperties: { size: 2 },
        containerOverrides: {
          command: ['geobatch-job', planUri, 'first'],
          environment: env(runUri, 'first'),
          resourceRequirements: [
            { type: 'VCPU', value: '1' },
            { type: 'MEMORY', value: '512' },
          ],
        },
        timeout: { attemptDurationSeconds: 600 },
        tags: tags('first'),
        propagateTags: true,
      },
      {
        jobName: `xview-chips-${runId}`,
        jobQueue: 'geobatch-test-cpu',
        jobDefinition: jobDefinitionArn('chip', 2),
        arrayProperties: { size: 6 },
        dependsOn: [{ jobId: `id-xview-first-${runId}` }],
        containerOverrides: {
          command: ['geobatch-job', planUri, 'chips'],
          environment: env(runUri, 'chips'),
          resourceRequirements: [
            { type: 'VCPU', value: '2' },
            { type: 'MEMORY', value: '4096' },
          ],
        },
        timeout: { attemptDurationSeconds: 3600 },
        tags: tags('chips'),
        propagateTags: true,
      },
      {
        jobName: `xview-merge-${runId}`,
        jobQueue: 'geobatch-test-cpu',
        jobDefinition: jobDefinitionArn('merge', 1),
        dependsOn: [{ jobId: `id-xview-chips-${runId}` }],
        containerOverrides: {
          command: ['geobatch-job', planUri, 'merge'],
          environment: env(runUri, 'merge'),
          resourceRequirements: [
            { type: 'VCPU', value: '1' },
            { type: 'MEMORY', value: '4096' },
          ],
        },
        timeout: { attemptDurationSeconds: 3600 },
        tags: tags('merge'),
        propagateTags: true,
      },
    ]);
    assert.deepEqual(
      submission.jobs.map((j) => [j.stage, j.arraySize, j.tasks]),
      [
        ['first', 2, '0-1'],
        ['chips', 6, '0-5'],
        ['merge', undefined, '0'],
      ],
    );
  });

  test('N_TO_N onto a stage of one task is a plain dependency, and both are plain jobs', async () => {
    const graph = mixedGraph(1);
    await submitToBatch({
      storage,
      plan: planOf(newRunUri(), graph),
      descriptor: testDescriptor(bucket),
      api: api(),
    });
    const [chip, shards] = submitted();
    assert.equal(chip?.arrayProperties, undefined);
    assert.equal(shards?.arrayProperties, undefined);
    assert.deepEqual(shards?.dependsOn, [{ jobId: `id-xview-chip-${runId}` }]);
  });

  test('--image-tag registers a revision of each job definition used, with that image, and submits with it', async () => {
    batch.on(DescribeJobDefinitionsCommand).resolves({
      jobDefinitions: [
        definition('chip', 'cpu', 2),
        definition('smoke', 'cpu', 3),
        definition('merge', 'cpu', 1),
        definition('train', 'gpu', 7),
      ],
    });
    batch.on(RegisterJobDefinitionCommand).callsFake((input: { jobDefinitionName: string }) => ({
      jobDefinitionName: input.jobDefinitionName,
      jobDefinitionArn: `arn:aws:batch:eu-west-1:123456789012:job-definition/${input.jobDefinitionName}:99`,
      revision: 99,
    }));
    const { submission } = await submitToBatch({
      storage,
      plan: planOf(newRunUri(), mixedGraph(3)),
      descriptor: testDescriptor(bucket),
      api: api(),
      imageTag: 'feature-42',
    });
    assert.deepEqual(
      batch.commandCalls(DescribeJobDefinitionsCommand).map((c) => c.args[0].input),
      [
        {
          jobDefinitions: [
            jobDefinitionArn('chip', 2),
            jobDefinitionArn('smoke', 3),
            jobDefinitionArn('merge', 1),
            jobDefinitionArn('train', 7),
          ],
        },
      ],
    );
    const registered = batch.commandCalls(RegisterJobDefinitionCommand).map((c) => c.args[0].input);
    assert.equal(registered.length, 4);
    for (const r of registered)
      assert.deepEqual(Object.keys(r.tags ?? {}), ['project', 'environment'], 'no aws:* tag is sent');
    const {
      jobDefinitionArn: _arn,
      revision: _rev,
      status: _status,
      containerOrchestrationType: _o,
      ...rest
    } = definition('train', 'gpu', 7);
    assert.deepEqual(registered[3], {
      ...rest,
      tags: { project: 'geobatch', environment: 'test' },
      containerProperties: {
        ...rest.containerProperties,
        image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/geobatch/test/gpu:feature-42',
      },
    });
    assert.equal(
      registered[0]?.containerProperties?.image,
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/geobatch/test/cpu:feature-42',
    );
    assert.deepEqual(
      submitted().map((c) => c.jobDefinition),
      ['chip', 'smoke', 'merge', 'train'].map(
        (j) => `arn:aws:batch:eu-west-1:123456789012:job-definition/geobatch-test-${j}:99`,
      ),
    );
    assert.equal(submission.imageTag, 'feature-42');
  });

  test('a bad --image-tag fails before any job is submitted', async () => {
    await assert.rejects(
      submitToBatch({
        storage,
        plan: planOf(newRunUri(), mixedGraph(2)),
        descriptor: testDescriptor(bucket),
        api: api(),
        imageTag: 'no/slashes',
      }),
      (e: Error) =>
        e instanceof BatchError && /--image-tag no\/slashes: expected a Docker tag/.test(e.message),
    );
    assert.equal(submitted().length, 0);
  });

  test('a job the environment has no definition for fails before any call to AWS, naming what to deploy', async () => {
    const graph = mixedGraph(2);
    const descriptor = testDescriptor(bucket);
    const { train: _train, ...withoutTrain } = descriptor.jobDefinitions;
    await assert.rejects(
      submitToBatch({
        storage,
        plan: planOf(newRunUri(), graph),
        descriptor: { ...descriptor, jobDefinitions: withoutTrain },
        api: api(),
      }),
      (e: Error) =>
        e instanceof PlatformError &&
        e.message ===
          "environment 'test' has no job definition for job 'train' (stage 'train'; it has: chip, merge, smoke); deploy it with 'npx cdk deploy -c env=test' with this version of geobatch",
    );
    assert.equal(batch.calls().length, 0);
  });

  test('a missing or disabled queue is a clear error before any job is submitted', async () => {
    batch.on(DescribeJobQueuesCommand).resolves({
      jobQueues: [
        {
          jobQueueName: 'geobatch-test-cpu',
          jobQueueArn: 'x',
          state: 'ENABLED',
          status: 'VALID',
          priority: 1,
          computeEnvironmentOrder: [],
        },
      ],
    });
    const missingQueueRun = newRunUri();
    await assert.rejects(
      submitToBatch({
        storage,
        plan: planOf(missingQueueRun, mixedGraph(2)),
        descriptor: testDescriptor(bucket),
        api: api(),
      }),
      (e: Error) =>
        e instanceof PlatformError &&
        e.message ===
          `job queue geobatch-test-gpu of environment 'test' does not exist: deploy it with 'npx cdk deploy -c env=test'; run ${missingQueueRun} stays a Batch run (see its batch.json): once the cause is fixed, retry with 'geobatch resume ${missingQueueRun}'`,
    );
    batch.on(DescribeJobQueuesCommand).resolves({
      jobQueues: ['geobatch-test-cpu', 'geobatch-test-gpu'].map((name) => ({
        jobQueueName: name,
        jobQueueArn: name,
        state: name.endsWith('gpu') ? 'DISABLED' : 'ENABLED',
        status: 'VALID',
        priority: 1,
        computeEnvironmentOrder: [],
      })),
    });
    await assert.rejects(
      submitToBatch({
        storage,
        plan: planOf(newRunUri(), mixedGraph(2)),
        descriptor: testDescriptor(bucket),
        api: api(),
      }),
      /job queue geobatch-test-gpu of environment 'test' is DISABLED/,
    );
    assert.equal(submitted().length, 0);
  });

  test('when a SubmitJob fails, the jobs already submitted are terminated and recorded as cancelled', async () => {
    batch
      .on(SubmitJobCommand, { jobName: `xview-merge-${runId}` })
      .rejects(Object.assign(new Error('Too many requests'), { name: 'ClientException' }));
    batch.on(TerminateJobCommand).resolves({});
    const runUri = newRunUri();
    await assert.rejects(
      submitToBatch({
        storage,
        plan: planOf(runUri, mixedGraph(3)),
        descriptor: testDescriptor(bucket),
        api: api(),
      }),
      (e: Error) =>
        e instanceof BatchError &&
        e.message ===
          `SubmitJob for stage 'merge' failed: Too many requests; the 2 job(s) already submitted were terminated; run ${runUri} stays a Batch run (see its batch.json): once the cause is fixed, retry with 'geobatch resume ${runUri}'`,
    );
    assert.deepEqual(
      batch
        .commandCalls(TerminateJobCommand)
        .map((c) => c.args[0].input.jobId)
        .sort(),
      [`id-xview-chip-${runId}`, `id-xview-shards-${runId}`],
    );
    const record = await readBatchRecord(storage, runUri);
    assert.equal(record?.submissions.length, 1);
    assert.ok(record?.submissions[0]?.cancelledAt);
    assert.deepEqual(
      record?.submissions[0]?.jobs.map((j) => j.stage),
      ['chip', 'shards'],
    );
  });

  test('the plan is uploaded through storage to S3 before the jobs that read it are submitted', async () => {
    const { spec, source } = parsePipeline(
      [
        'version: 1',
        'name: xview',
        'inputs:',
        '  images: s3://geobatch-test-raw/scenes/',
        'stages:',
        '  chip:',
        '    job: smoke',
        '    foreach: images',
        '',
      ].join('\n'),
      'p.yaml',
    );
    const graph = compilePipeline(spec, { images: s3Items(4) }, source);
    const { plan } = await prepareRun(
      storage,
      {
        file: 's3://geobatch-test-raw/p.yaml',
        spec,
        graph,
        runsRoot: `s3://${bucket}/runs/xview`,
        fingerprint: 'upload-test',
      },
      { fresh: true },
    );
    await submitToBatch({ storage, plan, descriptor: testDescriptor(bucket), api: api() });
    const [call] = submitted();
    const planUri = call?.containerOverrides?.command?.[1];
    assert.equal(planUri, runLayout(plan.runUri).plan);
    const uploaded = JSON.parse((await storage.read(planUri!)).toString('utf8')) as {
      runId: string;
      graph: { stages: unknown[] };
    };
    assert.equal(uploaded.runId, plan.runId);
    assert.equal(uploaded.graph.stages.length, 1);
  });
});

/** A DescribeJobs answer for the given job ids and states. */
function describeAs(states: Record<string, JobDetail['status']>): void {
  batch.on(DescribeJobsCommand).callsFake((input: { jobs: string[] }) => ({
    jobs: input.jobs
      .filter((id) => states[id] !== undefined)
      .map((id) => ({
        jobId: id,
        jobName: id,
        jobQueue: 'q',
        jobDefinition: 'd',
        status: states[id],
        startedAt: 1,
      })),
  }));
}

async function writeMarkers(runUri: string, stage: string, indexes: number[]): Promise<void> {
  const layout = runLayout(runUri);
  await Promise.all(
    indexes.map((i) => storage.writeAtomic(layout.marker(stage, i), JSON.stringify({ stage, index: i }))),
  );
}

describe('resume', () => {
  beforeEach(acceptEverything);

  async function firstSubmission(runUri: string, images: number): Promise<BatchRecord> {
    const { record } = await submitToBatch({
      storage,
      plan: planOf(runUri, mixedGraph(images)),
      descriptor: testDescriptor(bucket),
      api: api(),
    });
    batch.resetHistory();
    return record;
  }

  test('reads the markers on S3 and resubmits only unfinished tasks, mapped by --indexes', async () => {
    const runUri = newRunUri();
    const record = await firstSubmission(runUri, 5);
    describeAs(Object.fromEntries(record.submissions[0]!.jobs.map((j) => [j.jobId, 'FAILED'])));
    // chip 0, 2 finished; shards 0 finished; merge and train never ran
    await writeMarkers(runUri, 'chip', [0, 2]);
    await writeMarkers(runUri, 'shards', [0]);
    const plan = planOf(runUri, mixedGraph(5));
    const { tasks, submitted: result } = await resumeOnBatch({
      storage,
      plan,
      descriptor: testDescriptor(bucket),
      api: api(),
      record,
    });

    // chip and shards share array positions (N_TO_N): the union of their unfinished tasks
    assert.deepEqual(Object.fromEntries(tasks), {
      chip: [1, 2, 3, 4],
      shards: [1, 2, 3, 4],
      merge: [0],
      train: [0],
    });
    const calls = submitted();
    assert.deepEqual(
      calls.map((c) => [c.jobName, c.arrayProperties?.size, c.containerOverrides?.command, c.dependsOn]),
      [
        [
          `xview-chip-${runId}-r1`,
          4,
          ['geobatch-job', `${runUri}/plan.json`, 'chip', '--indexes', '1-4'],
          undefined,
        ],
        [
          `xview-shards-${runId}-r1`,
          4,
          ['geobatch-job', `${runUri}/plan.json`, 'shards', '--indexes', '1-4'],
          [{ jobId: `id-xview-chip-${runId}-r1`, type: 'N_TO_N' }],
        ],
        [
          `xview-merge-${runId}-r1`,
          undefined,
          ['geobatch-job', `${runUri}/plan.json`, 'merge'],
          [{ jobId: `id-xview-shards-${runId}-r1` }],
        ],
        [
          `xview-train-${runId}-r1`,
          undefined,
          ['geobatch-job', `${runUri}/plan.json`, 'train'],
          [{ jobId: `id-xview-merge-${runId}-r1` }],
        ],
      ],
    );
    const stored = await readBatchRecord(storage, runUri);
    assert.equal(stored?.submissions.length, 2);
    assert.deepEqual(stored, result?.record);
    assert.equal(stored?.submissions[1]?.kind, 'resume');
    assert.equal(stored?.submissions[1]?.jobs[0]?.tasks, '1-4');
  });

  test('a complete stage is left out and nothing waits for it; one unfinished task is a plain job with --index', async () => {
    const runUri = newRunUri();
    const record = await firstSubmission(runUri, 5);
    describeAs({});
    await writeMarkers(runUri, 'chip', [0, 1, 2, 3, 4]);
    await writeMarkers(runUri, 'shards', [0, 1, 2, 4]);
    const plan = planOf(runUri, mixedGraph(5));
    await resumeOnBatch({ storage, plan, descriptor: testDescriptor(bucket), api: api(), record });
    const calls = submitted();
    assert.deepEqual(
      calls.map((c) => [c.jobName, c.arrayProperties, c.containerOverrides?.command?.slice(2), c.dependsOn]),
      [
        [`xview-shards-${runId}-r1`, undefined, ['shards', '--index', '3'], undefined],
        [`xview-merge-${runId}-r1`, undefined, ['merge'], [{ jobId: `id-xview-shards-${runId}-r1` }]],
        [`xview-train-${runId}-r1`, undefined, ['train'], [{ jobId: `id-xview-merge-${runId}-r1` }]],
      ],
    );
  });

  test('a split stage resubmits only its unfinished parts, with no dependency on a finished stage', async () => {
    const graph = compilePipeline(parsePipeline(SPLIT_PIPELINE, 'split.yaml').spec, { images: s3Items(2) });
    const runUri = newRunUri();
    const { record } = await submitToBatch({
      storage,
      plan: planOf(runUri, graph),
      descriptor: testDescriptor(bucket),
      api: api(),
    });
    batch.resetHistory();
    describeAs(Object.fromEntries(record.submissions[0]!.jobs.map((j) => [j.jobId, 'FAILED'])));
    // first is done; of the chips, tasks 3 and 5 (item 1, parts 1 and 3 of 3) did not finish
    await writeMarkers(runUri, 'first', [0, 1]);
    await writeMarkers(runUri, 'chips', [0, 1, 2, 4]);
    const { tasks } = await resumeOnBatch({
      storage,
      plan: planOf(runUri, graph),
      descriptor: testDescriptor(bucket),
      api: api(),
      record,
    });
    assert.deepEqual(Object.fromEntries(tasks), { chips: [3, 5], merge: [0] });
    assert.deepEqual(
      submitted().map((c) => [
        c.jobName,
        c.arrayProperties,
        c.containerOverrides?.command?.slice(2),
        c.dependsOn,
      ]),
      [
        [`xview-chips-${runId}-r1`, { size: 2 }, ['chips', '--indexes', '3,5'], undefined],
        [`xview-merge-${runId}-r1`, undefined, ['merge'], [{ jobId: `id-xview-chips-${runId}-r1` }]],
      ],
    );
  });

  test('long task lists go to a file under the run, read by the job entry point', async () => {
    const runUri = newRunUri();
    const record = await firstSubmission(runUri, 3000);
    // every other chip unfinished: 1,500 separate ranges, too long for a command line
    const odd = Array.from({ length: 1500 }, (_, i) => 2 * i + 1);
    await submitToBatch({
      storage,
      plan: planOf(runUri, mixedGraph(3000)),
      descriptor: testDescriptor(bucket),
      api: api(),
      record,
      tasks: new Map([['chip', odd]]),
    });
    const calls = submitted();
    assert.equal(calls.length, 1);
    const file = `${runUri}/batch.tasks/1-chip.txt`;
    assert.deepEqual(calls[0]?.containerOverrides?.command?.slice(2), ['chip', '--indexes', `@${file}`]);
    assert.deepEqual(calls[0]?.arrayProperties, { size: 1500 });
    const listed = (await storage.read(file)).toString('utf8').trim().split(',');
    assert.equal(listed.length, 1500);
    assert.deepEqual(listed.slice(0, 3), ['1', '3', '5']);
  });

  test('refuses while jobs of the run are still queued or running', async () => {
    const runUri = newRunUri();
    const record = await firstSubmission(runUri, 3);
    const [chip, shards] = record.submissions[0]!.jobs;
    describeAs({ [chip!.jobId]: 'RUNNING', [shards!.jobId]: 'PENDING' });
    await assert.rejects(
      resumeOnBatch({
        storage,
        plan: planOf(runUri, mixedGraph(3)),
        descriptor: testDescriptor(bucket),
        api: api(),
        record,
      }),
      (e: Error) =>
        e instanceof BatchError &&
        e.message ===
          `${runUri}: 2 job(s) of this run are still active (chip RUNNING, shards PENDING); wait for them ('geobatch status ${runUri} --watch') or stop them ('geobatch cancel ${runUri}') before resuming`,
    );
    assert.equal(submitted().length, 0);
  });

  test('a refused RegisterJobDefinition names the job definition, the image and the environment', async () => {
    batch.on(DescribeJobDefinitionsCommand).resolves({
      jobDefinitions: [
        definition('chip', 'cpu', 2),
        definition('smoke', 'cpu', 3),
        definition('merge', 'cpu', 1),
        definition('train', 'gpu', 7),
      ],
    });
    batch
      .on(RegisterJobDefinitionCommand)
      .rejects(Object.assign(new Error('Container properties are invalid'), { name: 'ClientException' }));
    await assert.rejects(
      submitToBatch({
        storage,
        plan: planOf(newRunUri(), mixedGraph(3)),
        descriptor: testDescriptor(bucket),
        api: api(),
        imageTag: 'feature-42',
      }),
      {
        name: 'BatchError',
        message:
          /^--image-tag: RegisterJobDefinition of a revision of geobatch-test-chip \(environment 'test'\) running 123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com\/geobatch\/test\/cpu:feature-42 failed: Container properties are invalid; nothing was submitted; run s3:\/\/\S+ stays a Batch run .*retry with 'geobatch resume s3:\/\/\S+'$/,
      },
    );
    assert.equal(batch.commandCalls(SubmitJobCommand).length, 0);
  });

  test('with the same --image-tag, reuses the revisions the run registered while they are ACTIVE', async () => {
    // GIVEN a run submitted with --image-tag, which registered revision 99 of each definition
    const queueOf: Record<string, 'cpu' | 'gpu'> = { chip: 'cpu', smoke: 'cpu', merge: 'cpu', train: 'gpu' };
    const deployed: Record<string, number> = { chip: 2, smoke: 3, merge: 1, train: 7 };
    const inactive = new Set<string>();
    batch.on(DescribeJobDefinitionsCommand).callsFake((input: { jobDefinitions: string[] }) => ({
      jobDefinitions: input.jobDefinitions.map((arn) => {
        const [, job, rev] = /geobatch-test-(\w+):(\d+)$/.exec(arn)!;
        const base = definition(job!, queueOf[job!]!, Number(rev));
        if (Number(rev) === deployed[job!]) return base;
        return {
          ...base,
          status: inactive.has(job!) ? 'INACTIVE' : 'ACTIVE',
          containerProperties: {
            ...base.containerProperties,
            image: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/geobatch/test/${queueOf[job!]!}:feature-42`,
          },
        };
      }),
    }));
    let next = 99;
    batch.on(RegisterJobDefinitionCommand).callsFake((input: { jobDefinitionName: string }) => ({
      jobDefinitionName: input.jobDefinitionName,
      jobDefinitionArn: `arn:aws:batch:eu-west-1:123456789012:job-definition/${input.jobDefinitionName}:${next}`,
      revision: next,
    }));
    const runUri = newRunUri();
    const plan = planOf(runUri, mixedGraph(3));
    const { record } = await submitToBatch({
      storage,
      plan,
      descriptor: testDescriptor(bucket),
      api: api(),
      imageTag: 'feature-42',
    });
    const revision = (job: string, n: number) =>
      `arn:aws:batch:eu-west-1:123456789012:job-definition/geobatch-test-${job}:${n}`;
    assert.deepEqual(
      record.submissions[0]?.jobDefinitions,
      Object.fromEntries(
        Object.keys(deployed).map((j) => [jobDefinitionArn(j, deployed[j]!), revision(j, 99)]),
      ),
    );
    batch.resetHistory();
    describeAs({});
    await writeMarkers(runUri, 'chip', [0, 1, 2]);

    // WHEN it is resumed with the same tag
    const { submitted: resumed } = await resumeOnBatch({
      storage,
      plan,
      descriptor: testDescriptor(bucket),
      api: api(),
      record,
      imageTag: 'feature-42',
    });
    // THEN the recorded revisions are checked, not registered again
    assert.deepEqual(
      batch.commandCalls(DescribeJobDefinitionsCommand).map((c) => c.args[0].input),
      [{ jobDefinitions: ['smoke', 'merge', 'train'].map((j) => revision(j, 99)) }],
    );
    assert.equal(batch.commandCalls(RegisterJobDefinitionCommand).length, 0);
    assert.deepEqual(
      submitted().map((c) => c.jobDefinition),
      ['smoke', 'merge', 'train'].map((j) => revision(j, 99)),
    );

    // WHEN a recorded revision has been deregistered, only that one is registered again
    batch.resetHistory();
    inactive.add('merge');
    next = 100;
    const latest = resumed!.record;
    await resumeOnBatch({
      storage,
      plan,
      descriptor: testDescriptor(bucket),
      api: api(),
      record: latest,
      imageTag: 'feature-42',
    });
    const registered = batch.commandCalls(RegisterJobDefinitionCommand).map((c) => c.args[0].input);
    assert.deepEqual(
      registered.map((r) => [r.jobDefinitionName, r.containerProperties?.image]),
      [['geobatch-test-merge', '123456789012.dkr.ecr.eu-west-1.amazonaws.com/geobatch/test/cpu:feature-42']],
    );
    assert.deepEqual(registered[0]?.tags, { project: 'geobatch', environment: 'test' });
    assert.deepEqual(
      submitted().map((c) => c.jobDefinition),
      [revision('smoke', 99), revision('merge', 100), revision('train', 99)],
    );
  });

  test('a complete run has nothing to submit', async () => {
    const runUri = newRunUri();
    const record = await firstSubmission(runUri, 2);
    describeAs({});
    await writeMarkers(runUri, 'chip', [0, 1]);
    await writeMarkers(runUri, 'shards', [0, 1]);
    await writeMarkers(runUri, 'merge', [0]);
    await writeMarkers(runUri, 'train', [0]);
    const result = await resumeOnBatch({
      storage,
      plan: planOf(runUri, mixedGraph(2)),
      descriptor: testDescriptor(bucket),
      api: api(),
      record,
    });
    assert.equal(result.tasks.size, 0);
    assert.equal(result.submitted, undefined);
    assert.equal(submitted().length, 0);
  });
});

describe('bucket access', () => {
  beforeEach(acceptEverything);

  const allowed = 'they read geobatch-test-raw and read and write geobatch-test-processed, BUCKET';
  const rejects = async (
    plan: ReturnType<typeof planOf>,
    message: string,
    descriptor = testDescriptor(bucket),
  ) => {
    await assert.rejects(
      submitToBatch({ storage, plan, descriptor, api: api() }),
      (e: Error) => e instanceof BatchError && e.message === message.replaceAll('BUCKET', bucket),
    );
    assert.equal(batch.calls().length, 0, 'no call to AWS');
    if (plan.runUri.startsWith(`s3://${bucket}/`))
      assert.equal(await readBatchRecord(storage, plan.runUri), undefined, 'no batch.json');
  };

  test('an input outside the buckets the jobs read is refused before anything is sent, naming the input set', async () => {
    const graph = mixedGraph(3);
    const items = [...s3Items(2), { id: 'x', uri: 's3://someone-elses-bucket/x.tif' }];
    const runUri = newRunUri();
    await rejects(
      planOf(runUri, { ...graph, items: { images: items } }),
      `inputs.images (1 of 3 items): s3://someone-elses-bucket/x.tif is in bucket 'someone-elses-bucket', which the jobs of environment 'test' cannot read (${allowed}); copy the data to one of those buckets, or add 'someone-elses-bucket' to buckets.extraRead of environment 'test' and redeploy`,
    );
  });

  test('an s3:// stage parameter outside is refused, naming the parameter', async () => {
    const graph = mixedGraph(2);
    const stages = graph.stages.map((s) =>
      s.name === 'train' ? { ...s, params: { weights: ['s3://models-elsewhere/w.pt'] } } : s,
    );
    await rejects(
      planOf(newRunUri(), { ...graph, stages }),
      `stages.train.params.weights[0]: s3://models-elsewhere/w.pt is in bucket 'models-elsewhere', which the jobs of environment 'test' cannot read (${allowed}); copy the data to one of those buckets, or add 'models-elsewhere' to buckets.extraRead of environment 'test' and redeploy`,
    );
  });

  test('a run in the raw bucket (read only) or in a bucket not granted is refused', async () => {
    await rejects(
      planOf('s3://geobatch-test-raw/runs/x', mixedGraph(2)),
      `run: s3://geobatch-test-raw/runs/x is in bucket 'geobatch-test-raw', which the jobs of environment 'test' can only read (${allowed}), and every task writes its outputs under the run; put the run in one of the buckets they write, or add 'geobatch-test-raw' to buckets.extraReadWrite of environment 'test' and redeploy`,
    );
    await rejects(
      planOf('s3://elsewhere/runs/x', mixedGraph(2)),
      `run: s3://elsewhere/runs/x is in bucket 'elsewhere', which the jobs of environment 'test' cannot write (${allowed}), and every task writes its outputs under the run; put the run in one of the buckets they write, or add 'elsewhere' to buckets.extraReadWrite of environment 'test' and redeploy`,
    );
  });

  test("the environment's extra buckets are allowed: extraRead for inputs, extraReadWrite for runs", async () => {
    const graph = { ...mixedGraph(2), items: { images: s3Items(2, 'shared-archive') } };
    const descriptor = testDescriptor('elsewhere');
    const plan = planOf(`s3://${bucket}/runs/xview/extra`, graph);
    await rejects(
      plan,
      `run: ${plan.runUri} is in bucket '${bucket}', which the jobs of environment 'test' cannot write (they read geobatch-test-raw, shared-archive and read and write geobatch-test-processed, elsewhere), and every task writes its outputs under the run; put the run in one of the buckets they write, or add '${bucket}' to buckets.extraReadWrite of environment 'test' and redeploy`.replaceAll(
        bucket,
        'BUCKET',
      ),
      { ...descriptor, buckets: { ...descriptor.buckets, extraRead: ['shared-archive'] } },
    );
    await submitToBatch({
      storage,
      plan,
      descriptor: {
        ...descriptor,
        buckets: { ...descriptor.buckets, extraRead: ['shared-archive'], extraReadWrite: [bucket] },
      },
      api: api(),
    });
    assert.equal(submitted().length, 4);
  });
});

describe('a refused first SubmitJob', () => {
  beforeEach(acceptEverything);

  test('leaves a batch.json recording the failed submission; the error names the run; resume submits to Batch again', async () => {
    // GIVEN Batch refuses the run's first SubmitJob
    const refusal = Object.assign(new Error('Job queue is not accepting jobs'), { name: 'ClientException' });
    let calls = 0;
    batch.on(SubmitJobCommand).callsFake((input: { jobName: string }) => {
      if (++calls === 1) throw refusal;
      return { jobId: `id-${input.jobName}`, jobName: input.jobName };
    });
    const runUri = newRunUri();
    const plan = planOf(runUri, mixedGraph(2));
    // WHEN
    await assert.rejects(
      submitToBatch({ storage, plan, descriptor: testDescriptor(bucket), api: api() }),
      (e: Error) =>
        e instanceof BatchError &&
        e.message ===
          `SubmitJob for stage 'chip' failed: Job queue is not accepting jobs; nothing was submitted; run ${runUri} stays a Batch run (see its batch.json): once the cause is fixed, retry with 'geobatch resume ${runUri}'`,
    );
    // THEN the run is known as a Batch run, with a failed submission and no jobs
    const record = await readBatchRecord(storage, runUri);
    assert.ok(record, 'batch.json exists');
    assert.equal(record.env, 'test');
    assert.equal(record.submissions.length, 1);
    assert.equal(record.submissions[0]?.state, 'failed');
    assert.deepEqual(record.submissions[0]?.jobs, []);
    assert.match(record.submissions[0]?.error ?? '', /Job queue is not accepting jobs/);
    assert.equal(batch.commandCalls(TerminateJobCommand).length, 0);

    // and resume submits the whole graph to Batch again
    batch.resetHistory();
    describeAs({});
    const { tasks, submitted: result } = await resumeOnBatch({
      storage,
      plan,
      descriptor: testDescriptor(bucket),
      api: api(),
      record,
    });
    assert.deepEqual([...tasks.keys()], ['chip', 'shards', 'merge', 'train']);
    assert.deepEqual(
      submitted().map((c) => c.jobName),
      ['chip', 'shards', 'merge', 'train'].map((st) => `xview-${st}-${runId}-r1`),
    );
    const after = await readBatchRecord(storage, runUri);
    assert.deepEqual(
      after?.submissions.map((s) => [s.number, s.state, s.jobs.length]),
      [
        [0, 'failed', 0],
        [1, 'submitted', 4],
      ],
    );
    assert.equal(result?.submission.state, 'submitted');
  });

  test('batch.json is written before the first SubmitJob and names each job as soon as it is submitted', async () => {
    const runUri = newRunUri();
    const seen: (number | undefined)[] = [];
    batch.on(SubmitJobCommand).callsFake(async (input: { jobName: string }) => {
      const record = await readBatchRecord(storage, runUri);
      assert.equal(record?.submissions[0]?.state, 'submitting');
      seen.push(record?.submissions[0]?.jobs.length);
      return { jobId: `id-${input.jobName}`, jobName: input.jobName };
    });
    await submitToBatch({
      storage,
      plan: planOf(runUri, mixedGraph(2)),
      descriptor: testDescriptor(bucket),
      api: api(),
    });
    assert.deepEqual(seen, [0, 1, 2, 3]);
    assert.equal((await readBatchRecord(storage, runUri))?.submissions[0]?.state, 'submitted');
  });

  test('a batch.json written before submissions had a state is still read', async () => {
    const runUri = newRunUri();
    const old = {
      version: 1,
      runId,
      runUri,
      planUri: `${runUri}/plan.json`,
      env: 'test',
      region: 'eu-west-1',
      logGroup: '/geobatch/test/jobs',
      submissions: [
        {
          number: 0,
          kind: 'run',
          submittedAt: '2025-01-02T03:04:05.000Z',
          imageTag: 'old',
          tags: {},
          jobs: [
            {
              stage: 'chip',
              jobId: 'j',
              jobName: 'n',
              jobQueue: 'q',
              jobDefinition: 'd',
              arraySize: 2,
              tasks: '0-1',
            },
          ],
        },
      ],
    };
    await storage.writeAtomic(runLayout(runUri).batch, JSON.stringify(old));
    const record = await readBatchRecord(storage, runUri);
    assert.equal(record?.submissions[0]?.state, undefined);
    assert.equal(record?.submissions[0]?.jobs[0]?.jobId, 'j');
  });
});

describe('cancel', () => {
  beforeEach(acceptEverything);
  afterEach(() => batch.resetHistory());

  test('terminates every job not yet finished, dependents first, and records it', async () => {
    const runUri = newRunUri();
    const { record } = await submitToBatch({
      storage,
      plan: planOf(runUri, mixedGraph(3)),
      descriptor: testDescriptor(bucket),
      api: api(),
    });
    const [chip, shards, merge, train] = record.submissions[0]!.jobs;
    describeAs({
      [chip!.jobId]: 'SUCCEEDED',
      [shards!.jobId]: 'RUNNING',
      [merge!.jobId]: 'PENDING',
      [train!.jobId]: 'PENDING',
    });
    batch.on(TerminateJobCommand).resolves({});
    const result = await cancelOnBatch({
      storage,
      record,
      api: api(),
      reason: 'cancelled with geobatch cancel by tester',
      now: () => new Date('2025-01-02T05:00:00Z'),
    });
    assert.deepEqual(
      batch.commandCalls(DescribeJobsCommand).map((c) => c.args[0].input),
      [{ jobs: [chip!.jobId, shards!.jobId, merge!.jobId, train!.jobId] }],
    );
    assert.deepEqual(
      batch.commandCalls(TerminateJobCommand).map((c) => c.args[0].input),
      [
        { jobId: train!.jobId, reason: 'cancelled with geobatch cancel by tester' },
        { jobId: merge!.jobId, reason: 'cancelled with geobatch cancel by tester' },
        { jobId: shards!.jobId, reason: 'cancelled with geobatch cancel by tester' },
      ],
    );
    assert.equal(result.finished, 1);
    assert.equal(
      (await readBatchRecord(storage, runUri))?.submissions[0]?.cancelledAt,
      '2025-01-02T05:00:00.000Z',
    );
  });
});
