import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfigError,
  contextKeys,
  deepMerge,
  environmentDefaults,
  knownEnvironmentNames,
  resolveEnvironment,
  selectEnvironments,
  supportedGpuFamilies,
  type EnvironmentOverrides,
} from '../../lib/config/index.js';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('expected an error');
}

describe('built-in environments', () => {
  it('resolves dev with nothing billed at idle', () => {
    const dev = resolveEnvironment('dev');
    assert.equal(dev.name, 'dev');
    assert.equal(dev.network.layout, 'public');
    assert.equal(dev.compute.cpu.minvCpus, 0);
    assert.equal(dev.compute.gpu.minvCpus, 0);
    assert.equal(dev.retainOnDelete, false);
    assert.equal(dev.account, undefined);
    assert.equal(dev.region, undefined);
    assert.deepEqual(
      dev.ci.subjects,
      ['environment:dev'],
      'CI assumes the role from the GitHub environment dev',
    );
    assert.equal(dev.ci.githubRepository, undefined, 'no CI role unless a repository is configured');
  });

  it('resolves prod with private subnets, larger caps and data kept', () => {
    const prod = resolveEnvironment('prod');
    assert.equal(prod.network.layout, 'private');
    assert.equal(prod.network.natGateways, 1);
    assert.ok(
      prod.compute.cpu.maxvCpus > resolveEnvironment('dev').compute.cpu.maxvCpus,
      'prod caps exceed dev caps',
    );
    assert.equal(prod.logs.retentionDays, 365);
    assert.equal(prod.retainOnDelete, true);
    assert.deepEqual(prod.ci.subjects, ['environment:prod']);
  });

  it('maps the seed machines: an m5 datamaker class and a g5/g6 trainer class, never p3', () => {
    for (const name of ['dev', 'prod']) {
      const env = resolveEnvironment(name);
      assert.ok(env.compute.cpu.instanceTypes.includes('m5'), 'the datamaker class is m5');
      assert.deepEqual(env.compute.gpu.instanceTypes, ['g5', 'g6']);
    }
  });

  it('defaults: spot with an on-demand fallback, 3 attempts, shared memory for GPU jobs, no image yet', () => {
    const dev = resolveEnvironment('dev');
    assert.equal(dev.compute.cpu.spot, true);
    assert.equal(dev.compute.cpu.onDemandFallback, true);
    assert.equal(dev.jobs.retryAttempts, 3);
    assert.equal(dev.compute.gpu.sharedMemoryMiB, 8192);
    assert.equal(dev.compute.cpu.sharedMemoryMiB, undefined);
    assert.equal(dev.imageTag, 'unpublished');
    assert.equal(dev.buckets.runsPrefix, 'runs/');
    assert.ok(dev.compute.cpu.rootVolumeGiB >= 100, 'imagery needs a large root volume');
  });

  it('every built-in default resolves', () => {
    for (const name of Object.keys(environmentDefaults)) assert.equal(resolveEnvironment(name).name, name);
  });
});

describe('overrides', () => {
  it('merge objects key by key and replace arrays', () => {
    const env = resolveEnvironment('dev', {
      compute: { gpu: { instanceTypes: ['g6e.2xlarge'], maxvCpus: 32 } },
      tags: { team: 'vision' },
    });
    assert.deepEqual(env.compute.gpu.instanceTypes, ['g6e.2xlarge']);
    assert.equal(env.compute.gpu.maxvCpus, 32);
    assert.equal(env.compute.gpu.spot, true, 'untouched fields keep their defaults');
    assert.deepEqual(env.tags, { team: 'vision' });
  });

  it('deepMerge leaves its inputs alone', () => {
    const base = { a: { b: 1, c: [1] } };
    const merged = deepMerge(base, { a: { c: [2] } });
    assert.deepEqual(merged, { a: { b: 1, c: [2] } });
    assert.deepEqual(base, { a: { b: 1, c: [1] } });
  });

  const valid: [string, EnvironmentOverrides][] = [
    ['an account with a region', { account: '123456789012', region: 'eu-west-1' }],
    ['a region alone', { region: 'us-gov-west-1' }],
    ['on-demand only', { compute: { cpu: { spot: false } } }],
    [
      'multi-node on one on-demand type',
      { compute: { gpu: { spot: false, multiNode: true, instanceTypes: ['p4d.24xlarge'] } } },
    ],
    ['every supported GPU family', { compute: { gpu: { instanceTypes: [...supportedGpuFamilies] } } }],
    ['CPU types with sizes', { compute: { cpu: { instanceTypes: ['m5.2xlarge', 'c6i', 'r5d.4xlarge'] } } }],
    ['a private layout with 2 NAT gateways', { network: { layout: 'private', natGateways: 2 } }],
    [
      'three zones in a pinned account and region',
      { account: '123456789012', region: 'eu-west-1', network: { maxAzs: 3 } },
    ],
    ['fixed bucket names', { buckets: { rawName: 'acme-geo-raw', processedName: 'acme.geo.processed' } }],
    [
      'a CI repository and subjects',
      { ci: { githubRepository: 'acme/geobatch', subjects: ['ref:refs/heads/main', 'environment:dev'] } },
    ],
    ['a git sha as the image tag', { imageTag: '3f9a2c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49' }],
    ['a longer log retention', { logs: { retentionDays: 731 } }],
  ];
  for (const [what, overrides] of valid) {
    it(`accept ${what}`, () => {
      assert.doesNotThrow(() => resolveEnvironment('dev', overrides));
    });
  }
});

describe('invalid configuration fails with environment, field, value and rule', () => {
  const invalid: [string, string, unknown, string][] = [
    [
      'min vCPUs above max',
      'dev',
      { compute: { cpu: { minvCpus: 512, maxvCpus: 256 } } },
      "In environment 'dev': compute.cpu.minvCpus = 512 must be <= compute.cpu.maxvCpus (256)",
    ],
    [
      'a p3 GPU (no AL2023 NVIDIA AMI)',
      'prod',
      { compute: { gpu: { instanceTypes: ['p3.2xlarge'] } } },
      'In environment \'prod\': compute.gpu.instanceTypes[0] = "p3.2xlarge" is not supported: AWS Batch runs GPU jobs on the ECS_AL2023_NVIDIA AMI, which does not support p3; use one of g4dn, g5, g6, g6e, gr6, p4d, p4de, p5, p5e, p5en',
    ],
    [
      'an unknown GPU instance family',
      'dev',
      { compute: { gpu: { instanceTypes: ['g5', 'x2idn.large'] } } },
      "In environment 'dev': compute.gpu.instanceTypes[1] = \"x2idn.large\" has unknown GPU instance family 'x2idn'; known: g4dn, g5, g6, g6e, gr6, p4d, p4de, p5, p5e, p5en",
    ],
    [
      'spot with multi-node',
      'dev',
      { compute: { gpu: { multiNode: true, instanceTypes: ['p4d.24xlarge'] } } },
      "In environment 'dev': compute.gpu.spot = true conflicts with compute.gpu.multiNode = true: multi-node parallel jobs cannot run on Spot; set spot to false",
    ],
    [
      'multi-node over several types',
      'dev',
      { compute: { gpu: { multiNode: true, spot: false } } },
      'In environment \'dev\': compute.gpu.instanceTypes = ["g5","g6"] must be exactly one instance type with a size (e.g. g5.12xlarge) when multiNode is true',
    ],
    [
      'an account without a region',
      'prod',
      { account: '123456789012' },
      'In environment \'prod\': region = (missing) is required when account is set (account = "123456789012")',
    ],
    [
      'an arm64 CPU family',
      'dev',
      { compute: { cpu: { instanceTypes: ['m6g'] } } },
      "In environment 'dev': compute.cpu.instanceTypes[0] = \"m6g\" is an arm64 family ('m6g'); the job images are built for linux/amd64",
    ],
    [
      'a GPU family on the CPU queue',
      'dev',
      { compute: { cpu: { instanceTypes: ['g5.xlarge'] } } },
      "In environment 'dev': compute.cpu.instanceTypes[0] = \"g5.xlarge\" is an accelerated family ('g5'); list GPU instances under compute.gpu.instanceTypes",
    ],
    [
      'a malformed instance type',
      'dev',
      { compute: { cpu: { instanceTypes: ['M5.Large'] } } },
      'In environment \'dev\': compute.cpu.instanceTypes[0] = "M5.Large" must be an EC2 instance family (m5) or type (m5.2xlarge)',
    ],
    [
      'no instance types',
      'dev',
      { compute: { gpu: { instanceTypes: [] } } },
      "In environment 'dev': compute.gpu.instanceTypes = [] must have at least 1 item(s)",
    ],
    [
      'a root volume too small for imagery',
      'dev',
      { compute: { cpu: { rootVolumeGiB: 8 } } },
      "In environment 'dev': compute.cpu.rootVolumeGiB = 8 must be >= 30",
    ],
    [
      'too many attempts',
      'dev',
      { jobs: { retryAttempts: 11 } },
      "In environment 'dev': jobs.retryAttempts = 11 must be <= 10",
    ],
    [
      'a fractional vCPU cap',
      'dev',
      { compute: { cpu: { maxvCpus: 2.5 } } },
      "In environment 'dev': compute.cpu.maxvCpus = 2.5 must be an integer",
    ],
    [
      'a retention CloudWatch does not offer',
      'dev',
      { logs: { retentionDays: 10 } },
      "In environment 'dev': logs.retentionDays = 10 must be one of the CloudWatch Logs retention periods: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
    ],
    [
      'a runnable timeout below Batch minimum',
      'dev',
      { compute: { gpu: { runnableTimeoutMinutes: 5 } } },
      "In environment 'dev': compute.gpu.runnableTimeoutMinutes = 5 must be >= 10",
    ],
    [
      'an unknown layout',
      'dev',
      { network: { layout: 'isolated' } },
      'In environment \'dev\': network.layout = "isolated" must be one of "private", "public"',
    ],
    [
      'three zones in an environment-agnostic stack',
      'dev',
      { network: { maxAzs: 3 } },
      "In environment 'dev': network.maxAzs = 3 must be <= 2 unless account and region are set (an environment-agnostic stack knows only 2 availability zones)",
    ],
    [
      'more NAT gateways than zones',
      'prod',
      { network: { natGateways: 3 } },
      "In environment 'prod': network.natGateways = 3 must be <= network.maxAzs (2): one NAT gateway per availability zone at most",
    ],
    [
      'an unknown setting',
      'dev',
      { spotty: true },
      "In environment 'dev': spotty = true is not a known setting",
    ],
    [
      'a misspelt nested setting',
      'dev',
      { compute: { cpu: { maxVcpus: 8 } } },
      "In environment 'dev': compute.cpu.maxVcpus = 8 is not a known setting",
    ],
    [
      'a wrong type',
      'dev',
      { compute: { cpu: { spot: 'yes' } } },
      'In environment \'dev\': compute.cpu.spot = "yes" must be a boolean, not a string',
    ],
    [
      'an image tag with a colon',
      'dev',
      { imageTag: 'v1:2' },
      'In environment \'dev\': imageTag = "v1:2" must be a Docker tag: letters, digits, _ . -, at most 128',
    ],
    [
      'a scratch prefix without its slash',
      'dev',
      { buckets: { scratchPrefixes: ['tmp'] } },
      "In environment 'dev': buckets.scratchPrefixes[0] = \"tmp\" must be a key prefix like 'tmp/': no leading '/', ending with '/'",
    ],
    [
      'an invalid bucket name',
      'dev',
      { buckets: { rawName: 'Raw_Data' } },
      'In environment \'dev\': buckets.rawName = "Raw_Data" must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens',
    ],
    [
      'a reserved tag key',
      'dev',
      { tags: { 'aws:team': 'x' } },
      'In environment \'dev\': tags = {"aws:team":"x"} has key "aws:team", which must be 1-128 tag characters and not start with \'aws:\'',
    ],
    [
      'a wildcard CI subject',
      'dev',
      { ci: { githubRepository: 'acme/geobatch', subjects: ['ref:refs/heads/*'] } },
      "In environment 'dev': ci.subjects[0] = \"ref:refs/heads/*\" must be 'ref:refs/heads/<branch>', 'ref:refs/tags/<tag>', 'environment:<name>' or 'pull_request' (no wildcards)",
    ],
    [
      'a CI repository without an owner',
      'dev',
      { ci: { githubRepository: 'geobatch' } },
      "In environment 'dev': ci.githubRepository = \"geobatch\" must be 'owner/name'",
    ],
    [
      'overrides that are not an object',
      'dev',
      'big',
      'In environment \'dev\': value = "big" must be an object of settings',
    ],
  ];
  for (const [what, env, overrides, expected] of invalid) {
    it(`rejects ${what}`, () => {
      assert.equal(
        messageOf(() => resolveEnvironment(env, overrides)),
        expected,
      );
    });
  }

  it('reports every problem at once, each on its own line', () => {
    const message = messageOf(() =>
      resolveEnvironment('dev', { compute: { cpu: { rootVolumeGiB: 1 } }, jobs: { retryAttempts: 0 } }),
    );
    assert.equal(
      message,
      [
        '2 configuration problems:',
        "  - In environment 'dev': compute.cpu.rootVolumeGiB = 1 must be >= 30",
        "  - In environment 'dev': jobs.retryAttempts = 0 must be >= 1",
      ].join('\n'),
    );
  });

  it('keeps the problems as data for callers', () => {
    try {
      resolveEnvironment('prod', { compute: { gpu: { maxvCpus: 0 } } });
      assert.fail('expected an error');
    } catch (error) {
      assert.ok(error instanceof ConfigError, 'a ConfigError');
      assert.deepEqual(error.problems, [
        { where: "environment 'prod'", field: 'compute.gpu.maxvCpus', value: 0, rule: 'must be >= 1' },
      ]);
    }
  });

  it('rejects too many cost tags (Batch fails jobs with more than 50 tags)', () => {
    const tags = Object.fromEntries(Array.from({ length: 39 }, (_, i) => [`tag${i}`, 'x']));
    assert.match(
      messageOf(() => resolveEnvironment('dev', { tags })),
      /^In environment 'dev': tags = \{.*\} must bring the total to at most 40 tags with project and environment, not 41/,
    );
  });
});

describe('environment selection from the CDK context', () => {
  it('selects the environment -c env=NAME names', () => {
    const selected = selectEnvironments({ env: 'prod' });
    assert.deepEqual(
      selected.map((e) => e.name),
      ['prod'],
    );
  });

  it('selects every known environment when no env is given', () => {
    assert.deepEqual(
      selectEnvironments({}).map((e) => e.name),
      ['dev', 'prod'],
    );
  });

  it('adds environments cdk.json defines and applies their overrides', () => {
    const environments = { staging: { region: 'eu-central-1' }, dev: { compute: { cpu: { maxvCpus: 8 } } } };
    assert.deepEqual(knownEnvironmentNames(environments), ['dev', 'prod', 'staging']);
    const [staging] = selectEnvironments({ env: 'staging', environments });
    assert.equal(staging?.region, 'eu-central-1');
    assert.equal(staging?.network.layout, 'private', 'a new environment starts from the schema defaults');
    const [dev] = selectEnvironments({ env: 'dev', environments });
    assert.equal(dev?.compute.cpu.maxvCpus, 8);
  });

  it('accepts the environments as a JSON string (-c on the command line)', () => {
    const [dev] = selectEnvironments({ env: 'dev', environments: '{"dev":{"jobs":{"retryAttempts":5}}}' });
    assert.equal(dev?.jobs.retryAttempts, 5);
  });

  it('lets -c imageTag=TAG override the configured tag', () => {
    const [dev] = selectEnvironments({
      env: 'dev',
      imageTag: 'abc123',
      environments: { dev: { imageTag: 'old' } },
    });
    assert.equal(dev?.imageTag, 'abc123');
  });

  const invalid: [string, Parameters<typeof selectEnvironments>[0], string][] = [
    [
      'an empty environment name',
      { env: '' },
      'In environment \'\': name = "" must be 1-20 lowercase letters, digits or hyphens, starting with a letter',
    ],
    [
      'an unknown environment',
      { env: 'staging' },
      'In the CDK context: env = "staging" is not a known environment; known: dev, prod (define others under \'geobatch:environments\' in cdk.json)',
    ],
    [
      'an environment name with capitals',
      { env: 'Prod' },
      'In environment \'Prod\': name = "Prod" must be 1-20 lowercase letters, digits or hyphens, starting with a letter',
    ],
    [
      'a badly named environment in cdk.json',
      { environments: { 'QA env': {} } },
      'In environment \'QA env\': name = "QA env" must be 1-20 lowercase letters, digits or hyphens, starting with a letter',
    ],
    [
      'environments that are not JSON',
      { environments: '{dev:' },
      `In the CDK context: ${contextKeys.environments} = "{dev:" must be a JSON object`,
    ],
    [
      'environments that are a list',
      { environments: ['dev'] },
      `In the CDK context: ${contextKeys.environments} = ["dev"] must be an object of environment name to settings`,
    ],
    [
      'an empty image tag',
      { env: 'dev', imageTag: '' },
      'In environment \'dev\': imageTag = "" must be a Docker tag: letters, digits, _ . -, at most 128',
    ],
  ];
  for (const [what, context, expected] of invalid) {
    it(`rejects ${what}`, () => {
      assert.equal(
        messageOf(() => selectEnvironments(context)),
        expected,
      );
    });
  }
});

describe('a deploy from CI (requireCiRole)', () => {
  const withRepository = { dev: { ci: { githubRepository: 'acme/geobatch' } } };

  it('refuses an environment without ci.githubRepository, whose stack would drop the CI role', () => {
    // -c passes strings: the workflow's `-c requireCiRole=true` arrives as 'true'
    const message = messageOf(() => selectEnvironments({ env: 'dev', requireCiRole: 'true' }));
    assert.match(
      message,
      /^In environment 'dev': ci\.githubRepository = \(missing\) must be set when CI deploys \(-c requireCiRole=true\): without it the stack drops the role CI runs as\. Set it under 'geobatch:environments' in cdk\.json and commit it/,
    );
  });

  it('names every selected environment that lacks it', () => {
    const message = messageOf(() =>
      selectEnvironments({ environments: withRepository, requireCiRole: true }),
    );
    assert.match(message, /^1 configuration problems?|In environment 'prod': ci\.githubRepository/);
    assert.ok(message.includes("environment 'prod'"), message);
    assert.ok(!message.includes("environment 'dev'"), message);
  });

  it('passes when the committed configuration names the repository', () => {
    const [dev] = selectEnvironments({ env: 'dev', environments: withRepository, requireCiRole: 'true' });
    assert.equal(dev?.ci.githubRepository, 'acme/geobatch');
  });

  it('changes nothing when absent or false (a laptop, or the offline synth of the tests)', () => {
    assert.equal(selectEnvironments({ env: 'dev' })[0]?.ci.githubRepository, undefined);
    assert.equal(
      selectEnvironments({ env: 'dev', requireCiRole: 'false' })[0]?.ci.githubRepository,
      undefined,
    );
  });

  it('rejects a value that is neither true nor false', () => {
    assert.equal(
      messageOf(() => selectEnvironments({ env: 'dev', requireCiRole: 'yes' })),
      'In the CDK context: requireCiRole = "yes" must be true or false',
    );
  });
});

describe('the GitHub OIDC provider', () => {
  it('is referenced, not created, by default in every environment: most accounts have one already', () => {
    assert.equal(resolveEnvironment('dev').ci.createOidcProvider, false);
    assert.equal(resolveEnvironment('prod').ci.createOidcProvider, false);
  });
});
