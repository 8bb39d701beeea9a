/**
 * Submitting a 10,000-image, 5-stage pipeline to AWS Batch: the API calls and the wall time
 * from the compiled graph to the saved job ids (discovery, plan upload, queue check, one
 * SubmitJob per stage, batch.json). AWS is a recorded client (aws-sdk-client-mock) that answers
 * at once or after a simulated round trip; S3 is a real S3 protocol server (s3rver) on
 * 127.0.0.1. Listing the inputs is left out: it is the same for every runner.
 */
import { BatchClient, DescribeJobQueuesCommand, SubmitJobCommand } from '@aws-sdk/client-batch';
import { S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PlatformDescriptor } from '../lib/config/descriptor.js';
import { compilePipeline, parsePipeline } from '../lib/pipeline/index.js';
import { BatchApi, submitToBatch } from '../lib/runners/batch.js';
import { discoverPlatform } from '../lib/runners/platform.js';
import { prepareRun } from '../lib/runners/prepare.js';
import { createStorage } from '../lib/storage/index.js';
import { startS3rver } from '../test/helpers/s3rver.js';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 10_000);

export interface BatchSubmitFigures {
  readonly images: number;
  readonly stages: number;
  readonly latencyMs: number;
  readonly calls: Record<string, number>;
  readonly totalCalls: number;
  readonly wallMs: number;
  readonly planBytes: number;
}

const pipelineText = `version: 1
name: bench
inputs:
  images: s3://bench-raw/scenes/
stages:
  rgb:
    job: smoke
    foreach: images
  labels:
    job: smoke
    foreach: rgb
  chip:
    job: smoke
    foreach: labels
  merge:
    job: smoke
    foreach: images
    itemsPerTask: ${IMAGES}
    needs: [chip]
  report:
    job: smoke
    foreach: images
    itemsPerTask: ${IMAGES}
    needs: [merge]
`;

function descriptor(runsBucket: string): PlatformDescriptor {
  const arn = (kind: string, name: string) => `arn:aws:batch:eu-west-1:123456789012:${kind}/${name}`;
  return {
    version: 1,
    env: 'bench',
    region: 'eu-west-1',
    account: '123456789012',
    buckets: {
      raw: { name: 'bench-raw' },
      processed: { name: 'bench-processed' },
      runs: { name: runsBucket, prefix: 'runs/' },
    },
    queues: {
      cpu: { name: 'geobatch-bench-cpu', arn: arn('job-queue', 'geobatch-bench-cpu') },
      gpu: { name: 'geobatch-bench-gpu', arn: arn('job-queue', 'geobatch-bench-gpu') },
    },
    jobDefinitions: {
      smoke: {
        name: 'geobatch-bench-smoke',
        arn: arn('job-definition', 'geobatch-bench-smoke:1'),
        queue: 'cpu',
      },
    },
    repositories: {
      cpu: {
        name: 'geobatch/bench/cpu',
        uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/geobatch/bench/cpu',
      },
      gpu: {
        name: 'geobatch/bench/gpu',
        uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/geobatch/bench/gpu',
      },
    },
    imageTag: 'bench',
    logGroup: { name: '/geobatch/bench/jobs' },
  };
}

/** Runs the benchmark once per simulated AWS round trip (ms) and returns the figures. */
export async function benchBatchSubmit(
  latencies: readonly number[] = [0, 50],
): Promise<BatchSubmitFigures[]> {
  // as bin/ does: the SDK's notice about its future Node 22 requirement would clutter the figures
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const s3 = await startS3rver();
  const ssm = mockClient(SSMClient);
  const batch = mockClient(BatchClient);
  const out: BatchSubmitFigures[] = [];
  try {
    const runsBucket = await s3.createBucket();
    const items = Array.from({ length: IMAGES }, (_, i) => ({
      id: `scene${String(i).padStart(5, '0')}`,
      uri: `s3://bench-raw/scenes/scene${String(i).padStart(5, '0')}.tif`,
    }));
    const { spec, source } = parsePipeline(pipelineText, 'bench.yaml');
    const graph = compilePipeline(spec, { images: items }, source);
    for (const latencyMs of latencies) {
      const calls: Record<string, number> = {};
      const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);
      const answer = async <T>(name: string, value: T): Promise<T> => {
        count(name);
        if (latencyMs) await sleep(latencyMs);
        return value;
      };
      ssm.reset();
      batch.reset();
      ssm.on(GetParameterCommand).callsFake(() =>
        answer('ssm:GetParameter', {
          Parameter: { Name: '/geobatch/bench/platform', Value: JSON.stringify(descriptor(runsBucket)) },
        }),
      );
      batch.on(DescribeJobQueuesCommand).callsFake((input: { jobQueues: string[] }) =>
        answer('batch:DescribeJobQueues', {
          jobQueues: input.jobQueues.map((n) => ({
            jobQueueName: n,
            jobQueueArn: n,
            state: 'ENABLED',
            status: 'VALID',
            priority: 1,
            computeEnvironmentOrder: [],
          })),
        }),
      );
      batch
        .on(SubmitJobCommand)
        .callsFake((input: { jobName: string }) =>
          answer('batch:SubmitJob', { jobId: `id-${input.jobName}`, jobName: input.jobName }),
        );
      const s3Client = new S3Client(s3.clientConfig);
      s3Client.middlewareStack.add(
        (next, context) => async (args) => {
          count(`s3:${String(context.commandName).replace(/Command$/, '')}`);
          if (latencyMs) await sleep(latencyMs);
          return next(args);
        },
        { step: 'initialize', name: 'benchCount' },
      );
      const storage = createStorage({ s3: s3Client });

      const started = performance.now();
      const platform = await discoverPlatform('bench', { client: new SSMClient({ region: 'eu-west-1' }) });
      const { plan } = await prepareRun(
        storage,
        {
          file: 's3://bench-raw/bench.yaml',
          spec,
          graph,
          runsRoot: `s3://${runsBucket}/runs/bench`,
          fingerprint: `bench-${latencyMs}`,
        },
        {},
      );
      await submitToBatch({
        storage,
        plan,
        descriptor: platform,
        api: new BatchApi(new BatchClient({ region: 'eu-west-1' }), 'bench'),
      });
      const wallMs = performance.now() - started;
      const counted = { ...calls };
      const planBytes = (await storage.stat(`${plan.runUri}/plan.json`))?.size ?? 0;
      s3Client.destroy();
      out.push({
        images: IMAGES,
        stages: graph.stages.length,
        latencyMs,
        calls: counted,
        totalCalls: Object.values(counted).reduce((a, b) => a + b, 0),
        wallMs,
        planBytes,
      });
    }
  } finally {
    ssm.restore();
    batch.restore();
    await s3.stop();
  }
  return out;
}
