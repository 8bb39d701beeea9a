/**
 * Shared by the Batch runner tests: a platform descriptor of a made-up environment 'test'
 * (written by hand in the shape lib/config/descriptor.ts defines), graphs built by hand, and
 * fake Batch answers.
 */
import type { PlatformDescriptor } from '../../lib/config/descriptor.js';
import type { GraphStage, Item, JobGraph } from '../../lib/pipeline/types.js';
import { planVersion } from '../../lib/runners/records.js';
import type { RunPlan } from '../../lib/runners/records.js';

export const account = '123456789012';
export const region = 'eu-west-1';

const jobDefinitionArn = (job: string, revision: number) =>
  `arn:aws:batch:${region}:${account}:job-definition/geobatch-test-${job}:${revision}`;

/** The descriptor of environment 'test', whose runs bucket is `runsBucket`. */
export function testDescriptor(runsBucket = 'geobatch-test-runs'): PlatformDescriptor {
  return {
    version: 1,
    env: 'test',
    region,
    account,
    buckets: {
      raw: { name: 'geobatch-test-raw' },
      processed: { name: 'geobatch-test-processed' },
      runs: { name: runsBucket, prefix: 'runs/' },
    },
    queues: {
      cpu: {
        name: 'geobatch-test-cpu',
        arn: `arn:aws:batch:${region}:${account}:job-queue/geobatch-test-cpu`,
      },
      gpu: {
        name: 'geobatch-test-gpu',
        arn: `arn:aws:batch:${region}:${account}:job-queue/geobatch-test-gpu`,
      },
    },
    jobDefinitions: {
      smoke: { name: 'geobatch-test-smoke', arn: jobDefinitionArn('smoke', 3), queue: 'cpu' },
      chip: { name: 'geobatch-test-chip', arn: jobDefinitionArn('chip', 2), queue: 'cpu' },
      merge: { name: 'geobatch-test-merge', arn: jobDefinitionArn('merge', 1), queue: 'cpu' },
      train: { name: 'geobatch-test-train', arn: jobDefinitionArn('train', 7), queue: 'gpu' },
    },
    repositories: {
      cpu: { name: 'geobatch/test/cpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/test/cpu` },
      gpu: { name: 'geobatch/test/gpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/test/gpu` },
    },
    imageTag: 'abc123',
    logGroup: { name: '/geobatch/test/jobs' },
  };
}

export { jobDefinitionArn };

/** `n` items on S3. */
export function s3Items(n: number, bucket = 'geobatch-test-raw', prefix = 'scene'): Item[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${String(i).padStart(5, '0')}`,
    uri: `s3://${bucket}/scenes/${prefix}${i}.tif`,
  }));
}

/** A stage with explicit everything (what lib/pipeline would compile). */
export function graphStage(name: string, options: Partial<GraphStage> & { job: string }): GraphStage {
  const taskCount = options.taskCount ?? 1;
  return {
    name,
    params: {},
    itemCount: options.itemsFrom ? taskCount : 0,
    itemsPerTask: 1,
    tasksPerItem: 1,
    taskCount,
    dependsOn: [],
    queue: 'cpu',
    resources: { vcpus: 1, memoryMiB: 512, gpus: 0, timeoutSeconds: 600 },
    ...options,
  };
}

/**
 * The graph of the three kinds of stage: `chip` over every image, `shards` after it task by
 * task (N_TO_N), `merge` after all of them (fan-in), `train` on the GPU queue with its own
 * attempts.
 */
export function mixedGraph(images = 3): JobGraph {
  return {
    pipeline: 'xview',
    items: { images: s3Items(images) },
    stages: [
      graphStage('chip', { job: 'chip', itemsFrom: 'images', taskCount: images, itemCount: images }),
      graphStage('shards', {
        job: 'smoke',
        itemsFrom: 'images',
        taskCount: images,
        itemCount: images,
        dependsOn: [{ stage: 'chip', type: 'N_TO_N' }],
        resources: { vcpus: 2, memoryMiB: 4096, gpus: 0, timeoutSeconds: 900 },
      }),
      graphStage('merge', { job: 'merge', dependsOn: [{ stage: 'shards', type: 'FAN_IN' }] }),
      graphStage('train', {
        job: 'train',
        queue: 'gpu',
        dependsOn: [{ stage: 'merge', type: 'FAN_IN' }],
        resources: { vcpus: 8, memoryMiB: 30000, gpus: 1, timeoutSeconds: 14400, sharedMemoryMiB: 8192 },
        attempts: 5,
      }),
    ],
  };
}

export const runId = '20250102-030405-ab12';

/** A plan of `graph` at `runUri`. */
export function planOf(runUri: string, graph: JobGraph, id = runId): RunPlan {
  return {
    version: planVersion,
    runId: id,
    runUri,
    createdAt: '2025-01-02T03:04:05.000Z',
    pipeline: { name: graph.pipeline, file: '/dev/null', fingerprint: 'f', spec: {} },
    graph,
  };
}
