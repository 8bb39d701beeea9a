import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildPlatformDescriptor,
  ConfigError,
  parsePlatformDescriptor,
  platformDescriptorParameterName,
  resolveEnvironment,
  type PlatformDescriptor,
  type PlatformResources,
} from '../../lib/config/index.js';

const account = '123456789012';
const region = 'eu-west-1';

const resources: PlatformResources = {
  region,
  account,
  buckets: {
    raw: 'geobatch-dev-raw-1a2b',
    processed: 'geobatch-dev-processed-3c4d',
    runs: 'geobatch-dev-runs-5e6f',
  },
  queues: {
    cpu: { name: 'geobatch-dev-cpu', arn: `arn:aws:batch:${region}:${account}:job-queue/geobatch-dev-cpu` },
    gpu: { name: 'geobatch-dev-gpu', arn: `arn:aws:batch:${region}:${account}:job-queue/geobatch-dev-gpu` },
  },
  jobDefinitions: {
    smoke: {
      name: 'geobatch-dev-smoke',
      arn: `arn:aws:batch:${region}:${account}:job-definition/geobatch-dev-smoke:3`,
      queue: 'cpu',
    },
    train: {
      name: 'geobatch-dev-train',
      arn: `arn:aws:batch:${region}:${account}:job-definition/geobatch-dev-train:1`,
      queue: 'gpu',
    },
  },
  repositories: {
    cpu: { name: 'geobatch/dev/cpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/dev/cpu` },
    gpu: { name: 'geobatch/dev/gpu', uri: `${account}.dkr.ecr.${region}.amazonaws.com/geobatch/dev/gpu` },
  },
  logGroupName: '/geobatch/dev/jobs',
};

function descriptor(): PlatformDescriptor {
  return buildPlatformDescriptor(resolveEnvironment('dev', { imageTag: 'abc123' }), resources);
}

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected an error');
}

describe('platform descriptor', () => {
  it('is published under /geobatch/<env>/platform', () => {
    assert.equal(platformDescriptorParameterName('dev'), '/geobatch/dev/platform');
  });

  it('carries what the CLI needs, from the config and the deployed resources', () => {
    const d = descriptor();
    assert.equal(d.version, 1);
    assert.equal(d.env, 'dev');
    assert.equal(d.region, region);
    assert.equal(d.account, account);
    assert.deepEqual(d.buckets.runs, { name: 'geobatch-dev-runs-5e6f', prefix: 'runs/' });
    assert.equal(d.queues.gpu.name, 'geobatch-dev-gpu');
    assert.deepEqual(d.jobDefinitions.train, resources.jobDefinitions.train);
    assert.equal(d.repositories.cpu.name, 'geobatch/dev/cpu');
    assert.equal(d.imageTag, 'abc123');
    assert.equal(d.logGroup.name, '/geobatch/dev/jobs');
  });

  it('round-trips through JSON and the parser', () => {
    const d = descriptor();
    assert.deepEqual(parsePlatformDescriptor(JSON.stringify(d), 'dev'), d);
  });

  it("names the environment's extra buckets, and leaves the fields out when there are none", () => {
    assert.deepEqual(Object.keys(descriptor().buckets).sort(), ['processed', 'raw', 'runs']);
    const config = resolveEnvironment('dev', {
      buckets: { extraRead: ['shared-archive'], extraReadWrite: ['team-outputs'] },
    });
    const d = buildPlatformDescriptor(config, resources);
    assert.deepEqual(d.buckets.extraRead, ['shared-archive']);
    assert.deepEqual(d.buckets.extraReadWrite, ['team-outputs']);
    assert.deepEqual(parsePlatformDescriptor(JSON.stringify(d), 'dev'), d);
  });

  const broken: [string, (d: Record<string, unknown>) => unknown, string][] = [
    [
      'a missing queue',
      (d) => ({ ...d, queues: { cpu: (d.queues as Record<string, unknown>).cpu } }),
      'In platform descriptor /geobatch/dev/platform: queues.gpu = (missing) is required',
    ],
    [
      'an account that is not an account id',
      (d) => ({ ...d, account: '${Token[AWS.AccountId.8]}' }),
      'In platform descriptor /geobatch/dev/platform: account = "${Token[AWS.AccountId.8]}" must be a 12-digit AWS account id',
    ],
    [
      'a job definition on an unknown queue',
      (d) => ({
        ...d,
        jobDefinitions: { smoke: { ...resources.jobDefinitions.smoke, queue: 'tpu' } },
      }),
      'In platform descriptor /geobatch/dev/platform: jobDefinitions.smoke.queue = "tpu" must be one of "cpu", "gpu"',
    ],
    [
      'a queue ARN of another service',
      (d) => ({
        ...d,
        queues: { ...(d.queues as object), cpu: { name: 'q', arn: 'arn:aws:sqs:eu-west-1:123456789012:q' } },
      }),
      'In platform descriptor /geobatch/dev/platform: queues.cpu.arn = "arn:aws:sqs:eu-west-1:123456789012:q" must be an ARN of the batch service',
    ],
    [
      'extra buckets that are not a list of names',
      (d) => ({ ...d, buckets: { ...(d.buckets as object), extraRead: 'shared-archive' } }),
      'In platform descriptor /geobatch/dev/platform: buckets.extraRead = "shared-archive" must be an array, not a string',
    ],
    [
      'a newer version',
      (d) => ({ ...d, version: 2 }),
      'In platform descriptor /geobatch/dev/platform: version = 2 must be 1: redeploy the environment with this version of geobatch (or upgrade geobatch)',
    ],
    [
      'another environment',
      (d) => ({ ...d, env: 'prod' }),
      'In platform descriptor /geobatch/dev/platform: env = "prod" must be "dev"',
    ],
    [
      'an unknown field',
      (d) => ({ ...d, queue: 'x' }),
      'In platform descriptor /geobatch/dev/platform: queue = "x" is not a known setting',
    ],
  ];
  for (const [what, change, expected] of broken) {
    it(`rejects ${what}`, () => {
      const text = JSON.stringify(change({ ...descriptor() }));
      assert.equal(
        messageOf(() => parsePlatformDescriptor(text, 'dev')),
        expected,
      );
    });
  }

  it('rejects text that is not JSON', () => {
    assert.equal(
      messageOf(() => parsePlatformDescriptor('not json', 'dev')),
      'In platform descriptor /geobatch/dev/platform: value = "not json" must be JSON',
    );
  });
});
