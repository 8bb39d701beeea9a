/**
 * Contract between the CDK app and the Batch runner: the queue and job-definition names the
 * runner submits to are exactly those the app synthesises for an environment, found the way
 * `geobatch run --runner batch --env dev` finds them (the SSM platform descriptor). The dev
 * stack is synthesised once, with one GPU job added to the catalog so both queues are covered.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BatchClient, DescribeJobQueuesCommand, SubmitJobCommand } from '@aws-sdk/client-batch';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { Template } from 'aws-cdk-lib/assertions';
import { mockClient } from 'aws-sdk-client-mock';
import { z } from 'zod';
import { catalog, type CatalogEntry } from '../../jobs/catalog.js';
import { BatchApi, submitToBatch } from '../../lib/runners/batch.js';
import { conventionalTarget, retryRules } from '../../lib/runners/batch-plan.js';
import { discoverPlatform } from '../../lib/runners/platform.js';
import { createStorage } from '../../lib/storage/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate, platformStacks, type TemplateJson } from '../infra/helpers.js';
import { graphStage, planOf, s3Items } from './batch-fixtures.js';

const gpuJob: CatalogEntry = {
  description: 'A GPU job for the contract test.',
  queue: 'gpu',
  vcpus: 4,
  memoryMiB: 16_000,
  gpus: 1,
  timeoutSeconds: 3600,
  granularity: 'stage',
  params: z.object({}).strict(),
};
const contractCatalog: Record<string, CatalogEntry> = { ...catalog, 'contract-gpu': gpuJob };

type Resource = { Type: string; Properties: Record<string, unknown> };
let json: TemplateJson;
let descriptorText: string;
const ssm = mockClient(SSMClient);
const batch = mockClient(BatchClient);
let dir: string;

before(async () => {
  // aws-cdk-lib validates synthesised templates against CloudFormation's rules in WebAssembly,
  // which is 90% of synthesis time here; the infra tests do that check, this one reads names
  process.env.CDK_VALIDATION = 'false';
  const { stacks } = platformStacks({ env: 'dev' }, contractCatalog);
  json = Template.fromStack(stacks[0]!).toJSON() as TemplateJson;
  const parameter = Object.values(json.Resources).find(
    (r) => r.Type === 'AWS::SSM::Parameter' && r.Properties?.Name === '/geobatch/dev/platform',
  );
  assert.ok(parameter, 'the stack publishes /geobatch/dev/platform');
  // what CloudFormation writes into the parameter, for a deployment to the helpers' fake account
  descriptorText = String(evaluate(parameter.Properties?.Value, json));
  dir = await mkdtemp(join(tmpdir(), 'geobatch-contract-'));
});
after(async () => {
  ssm.restore();
  batch.restore();
  await rm(dir, { recursive: true, force: true });
});

function resources(type: string): Resource[] {
  return Object.values(json.Resources).filter((r) => r.Type === type) as Resource[];
}

describe('runner <-> CDK app contract (environment dev)', () => {
  test('the runner submits to the queues and job-definition revisions the app synthesises', async () => {
    ssm.on(GetParameterCommand, { Name: '/geobatch/dev/platform' }).resolves({
      Parameter: { Name: '/geobatch/dev/platform', Type: 'String', Value: descriptorText },
    });
    const descriptor = await discoverPlatform('dev', { client: new SSMClient({ region: 'eu-west-1' }) });

    batch.on(DescribeJobQueuesCommand).callsFake((input: { jobQueues: string[] }) => ({
      jobQueues: input.jobQueues.map((n) => ({
        jobQueueName: n,
        jobQueueArn: n,
        state: 'ENABLED',
        status: 'VALID',
        priority: 1,
        computeEnvironmentOrder: [],
      })),
    }));
    batch
      .on(SubmitJobCommand)
      .callsFake((input: { jobName: string }) => ({ jobId: `id-${input.jobName}`, jobName: input.jobName }));
    const graph = {
      pipeline: 'contract',
      items: { scenes: s3Items(4, descriptor.buckets.raw.name) },
      stages: [
        graphStage('inspect', { job: 'inspect', itemsFrom: 'scenes', taskCount: 4, itemCount: 4 }),
        graphStage('fit', {
          job: 'contract-gpu',
          queue: 'gpu' as const,
          dependsOn: [{ stage: 'inspect', type: 'FAN_IN' as const }],
          resources: { vcpus: 4, memoryMiB: 16_000, gpus: 1, timeoutSeconds: 3600 },
          attempts: 2,
        }),
      ],
    };
    await submitToBatch({
      storage: createStorage(),
      plan: planOf(join(dir, 'run'), graph),
      descriptor,
      api: new BatchApi(new BatchClient({ region: descriptor.region }), 'dev'),
    });
    const [inspect, fit] = batch.commandCalls(SubmitJobCommand).map((c) => c.args[0].input);

    const queues = resources('AWS::Batch::JobQueue').map((q) => q.Properties.JobQueueName);
    assert.deepEqual(queues.sort(), ['geobatch-dev-cpu', 'geobatch-dev-gpu']);
    assert.equal(inspect?.jobQueue, 'geobatch-dev-cpu');
    assert.equal(fit?.jobQueue, 'geobatch-dev-gpu');

    // the job definition is pinned to the deployed revision: its ARN is what CloudFormation's Ref gives
    const definitions = Object.entries(json.Resources).filter(
      ([, r]) => r.Type === 'AWS::Batch::JobDefinition',
    );
    const refOf = (name: string) => {
      const found = definitions.find(([, r]) => r.Properties?.JobDefinitionName === name);
      assert.ok(found, `the app synthesises job definition ${name}`);
      return evaluate({ Ref: found[0] }, json);
    };
    assert.equal(inspect?.jobDefinition, refOf('geobatch-dev-inspect'));
    assert.equal(fit?.jobDefinition, refOf('geobatch-dev-contract-gpu'));

    // a stage's own attempts repeat exactly the retry rules of the synthesised job definitions
    const fitDefinition = definitions.find(
      ([, r]) => r.Properties?.JobDefinitionName === 'geobatch-dev-contract-gpu',
    )!;
    const strategy = fitDefinition[1].Properties?.RetryStrategy as {
      EvaluateOnExit: Record<string, string>[];
    };
    assert.deepEqual(
      strategy.EvaluateOnExit.map((r) =>
        Object.fromEntries(
          Object.entries(r).map(([k, v]) => [
            k[0]!.toLowerCase() + k.slice(1),
            k === 'Action' ? v.toUpperCase() : v,
          ]),
        ),
      ),
      retryRules,
    );
    assert.deepEqual(fit?.retryStrategy?.evaluateOnExit, retryRules);
    assert.equal(
      inspect?.retryStrategy,
      undefined,
      'without attempts, the job inherits the synthesised strategy',
    );
    // tags propagate from the definitions (cost tags) as well as from the jobs
    for (const [, r] of definitions) assert.equal(r.Properties?.PropagateTags, true);
  });

  test('`plan --runner batch` (offline) names the same queues and job definitions the app synthesises', () => {
    const target = conventionalTarget('dev', contractCatalog);
    const names = new Set(resources('AWS::Batch::JobDefinition').map((r) => r.Properties.JobDefinitionName));
    for (const [job, { ref, queue }] of Object.entries(target.jobDefinitions)) {
      assert.ok(names.has(ref), `${job}: ${ref} is synthesised`);
      assert.equal(queue, contractCatalog[job]!.queue);
    }
    assert.equal(names.size, Object.keys(contractCatalog).length);
    const queues = resources('AWS::Batch::JobQueue').map((q) => q.Properties.JobQueueName);
    assert.deepEqual([target.queues.cpu, target.queues.gpu].sort(), queues.sort());
  });
});
