/**
 * Each construct on its own, in a fresh stack per test: behaviour and the messages of bad props.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Duration, Size, Validations, type Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { z } from 'zod';
import type { CatalogEntry } from '../../jobs/catalog.js';
import { buildPlatformDescriptor, resolveEnvironment, supportedGpuFamilies } from '../../lib/config/index.js';
import {
  BatchCompute,
  CatalogJobDefinitions,
  CiPublisher,
  ImageRepositories,
  JobRole,
  Network,
  PlatformDescriptorParameter,
  SecureBucket,
  type BatchComputeProps,
  type CatalogJobDefinitionsProps,
} from '../../lib/infra/index.js';
import { newStack } from './helpers.js';

type Props = Record<string, unknown>;

function only(template: Template, type: string): Props {
  const all = Object.values(template.findResources(type)) as { Properties: Props }[];
  assert.equal(all.length, 1, `expected one ${type}`);
  return all[0]!.Properties;
}

function acknowledgements(stack: Stack): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of stack.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) Object.assign(out, entry.data);
    }
  }
  return out;
}

describe('SecureBucket', () => {
  it('GIVEN scratch prefixes THEN their objects expire and multipart uploads are aborted', () => {
    const stack = newStack();
    new SecureBucket(stack, 'Data', {
      scratchPrefixes: ['tmp/', 'cache/x/'],
      scratchExpiration: Duration.days(3),
      accessLogsOmittedBecause: 'a test bucket',
    });
    const rules = (
      only(Template.fromStack(stack), 'AWS::S3::Bucket').LifecycleConfiguration as { Rules: Props[] }
    ).Rules;
    assert.deepEqual(rules, [
      {
        Id: 'abort-incomplete-multipart-uploads',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
        Status: 'Enabled',
      },
      { Id: 'expire-tmp', Prefix: 'tmp/', ExpirationInDays: 3, Status: 'Enabled' },
      { Id: 'expire-cache-x', Prefix: 'cache/x/', ExpirationInDays: 3, Status: 'Enabled' },
    ]);
  });

  it('GIVEN no access-log bucket THEN the reason becomes the cdk-nag acknowledgement', () => {
    const stack = newStack();
    new SecureBucket(stack, 'Data', {
      accessLogsOmittedBecause: 'holds only public reference data, logged upstream',
    });
    assert.deepEqual(acknowledgements(stack), {
      'AwsSolutions::AwsSolutions-S1': 'holds only public reference data, logged upstream',
    });
  });

  const invalid: [string, (stack: Stack) => unknown, string][] = [
    [
      'no access logs and no reason',
      (stack) => new SecureBucket(stack, 'Raw'),
      "SecureBucket 'Raw' has 'serverAccessLogsBucket' = (missing): give a bucket for access logs, set 'receivesAccessLogs', or say why there are none in 'accessLogsOmittedBecause'",
    ],
    [
      'a scratch prefix without a trailing slash',
      (stack) => new SecureBucket(stack, 'Runs', { scratchPrefixes: ['tmp'], receivesAccessLogs: true }),
      "SecureBucket 'Runs' has 'scratchPrefixes[0]' = \"tmp\": a prefix must end with '/' and not start with it",
    ],
    [
      'old-version expiry on an unversioned bucket',
      (stack) =>
        new SecureBucket(stack, 'P', {
          noncurrentVersionExpiration: Duration.days(5),
          receivesAccessLogs: true,
        }),
      "SecureBucket 'P' has 'noncurrentVersionExpiration' = 5: needs 'versioned' = true",
    ],
    [
      'a log destination that logs elsewhere',
      (stack) =>
        new SecureBucket(stack, 'L', {
          receivesAccessLogs: true,
          serverAccessLogsBucket: s3.Bucket.fromBucketName(stack, 'Other', 'other'),
        }),
      "SecureBucket 'L' has 'receivesAccessLogs' = true: a bucket receiving access logs can't send its own to 'serverAccessLogsBucket'",
    ],
    [
      'an invalid name',
      (stack) => new SecureBucket(stack, 'N', { bucketName: 'Bad_Name', receivesAccessLogs: true }),
      "SecureBucket 'N' has 'bucketName' = \"Bad_Name\": must be a valid S3 bucket name",
    ],
  ];
  for (const [what, make, message] of invalid) {
    it(`GIVEN ${what} THEN it throws`, () => {
      assert.throws(() => make(newStack()), { message });
    });
  }
});

describe('Network', () => {
  it('GIVEN the private layout THEN compute subnets are private behind NAT', () => {
    const stack = newStack();
    const logsBucket = s3.Bucket.fromBucketName(stack, 'Logs', 'logs');
    const network = new Network(stack, 'Net', {
      layout: 'private',
      natGateways: 2,
      flowLogsBucket: logsBucket,
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::EC2::NatGateway', 2);
    assert.deepEqual(network.vpc.selectSubnets(network.computeSubnets).subnets, network.vpc.privateSubnets);
  });

  const invalid: [string, Partial<ConstructorParameters<typeof Network>[2]>, string][] = [
    [
      'NAT gateways in the public layout',
      { layout: 'public', natGateways: 1 },
      "Network 'Net' has 'natGateways' = 1: the 'public' layout has no NAT gateways",
    ],
    [
      'more NAT gateways than zones',
      { natGateways: 3, maxAzs: 2 },
      "Network 'Net' has 'natGateways' = 3: must be <= 'maxAzs' = 2",
    ],
    [
      'a flow-log prefix without its slash',
      { flowLogsPrefix: 'flows' },
      "Network 'Net' has 'flowLogsPrefix' = \"flows\": must end with '/'",
    ],
  ];
  for (const [what, props, message] of invalid) {
    it(`GIVEN ${what} THEN it throws`, () => {
      const stack = newStack();
      const flowLogsBucket = s3.Bucket.fromBucketName(stack, 'Logs', 'logs');
      assert.throws(() => new Network(stack, 'Net', { flowLogsBucket, ...props }), { message });
    });
  }
});

function computeProps(stack: Stack, props: Partial<BatchComputeProps> = {}): BatchComputeProps {
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    natGateways: 0,
    subnetConfiguration: [{ name: 'p', subnetType: ec2.SubnetType.PUBLIC }],
  });
  return {
    vpc,
    subnets: { subnetType: ec2.SubnetType.PUBLIC },
    instanceTypes: ['g5'],
    maxvCpus: 8,
    gpu: true,
    ...props,
  };
}

describe('BatchCompute', () => {
  it('GIVEN spot off THEN one on-demand environment and no fallback', () => {
    const stack = newStack();
    const compute = new BatchCompute(stack, 'Gpu', computeProps(stack, { spot: false }));
    assert.equal(compute.computeEnvironments.length, 1);
    const ce = only(Template.fromStack(stack), 'AWS::Batch::ComputeEnvironment');
    assert.equal((ce.ComputeResources as Props).Type, 'EC2');
  });

  it('GIVEN multi-node THEN a cluster placement group on one on-demand instance type', () => {
    const stack = newStack();
    new BatchCompute(
      stack,
      'Gpu',
      computeProps(stack, { spot: false, multiNode: true, instanceTypes: ['p4d.24xlarge'] }),
    );
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::EC2::PlacementGroup', { Strategy: 'cluster' });
    template.hasResourceProperties('AWS::Batch::ComputeEnvironment', {
      ComputeResources: Match.objectLike({
        InstanceTypes: ['p4d.24xlarge'],
        PlacementGroup: Match.anyValue(),
      }),
    });
  });

  it('GIVEN a larger on-demand cap THEN jobs may ask for it', () => {
    const stack = newStack();
    const compute = new BatchCompute(
      stack,
      'Cpu',
      computeProps(stack, { gpu: false, instanceTypes: ['m5'], maxvCpus: 8, onDemandMaxvCpus: 16 }),
    );
    assert.equal(compute.maxvCpus, 16);
  });

  it('GIVEN any GPU family the configuration accepts THEN the construct takes it', () => {
    const stack = newStack();
    assert.doesNotThrow(
      () => new BatchCompute(stack, 'Gpu', computeProps(stack, { instanceTypes: [...supportedGpuFamilies] })),
    );
  });

  it('GIVEN an instance role THEN it is used, not a new one', () => {
    const stack = newStack();
    const instanceRole = new iam.Role(stack, 'Mine', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    });
    const compute = new BatchCompute(stack, 'Cpu', computeProps(stack, { instanceRole }));
    assert.equal(compute.instanceRole, instanceRole);
    const ec2Roles = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Role')).filter((r) =>
      JSON.stringify(r).includes('ec2.amazonaws.com'),
    );
    assert.equal(ec2Roles.length, 1);
  });

  it('GIVEN an update timeout THEN infrastructure updates let running jobs run that long and never terminate them', () => {
    const stack = newStack();
    new BatchCompute(stack, 'Gpu', computeProps(stack, { updateTimeout: Duration.hours(24) }));
    const environments = Object.values(
      Template.fromStack(stack).findResources('AWS::Batch::ComputeEnvironment'),
    ) as { Properties: Props }[];
    assert.equal(environments.length, 2);
    for (const { Properties: ce } of environments) {
      assert.deepEqual(ce.UpdatePolicy, { TerminateJobsOnUpdate: false, JobExecutionTimeoutMinutes: 1440 });
      // updated in place: with true, every infrastructure setting would replace the environment
      assert.equal(ce.ReplaceComputeEnvironment, false);
    }
  });

  it("GIVEN no update timeout THEN running jobs still get Batch's longest grace (7200 minutes), not its 30", () => {
    const stack = newStack();
    new BatchCompute(stack, 'Gpu', computeProps(stack));
    Template.fromStack(stack).allResourcesProperties('AWS::Batch::ComputeEnvironment', {
      UpdatePolicy: { TerminateJobsOnUpdate: false, JobExecutionTimeoutMinutes: 7200 },
    });
  });

  const invalid: [string, Partial<BatchComputeProps>, string][] = [
    [
      "an update timeout above Batch's 7200 minutes",
      { updateTimeout: Duration.days(6) },
      "BatchCompute 'Gpu' has 'updateTimeout' = \"8640 minutes\": must be from 1 to 7200 minutes (Batch's limit)",
    ],
    [
      'min vCPUs above max',
      { minvCpus: 16, maxvCpus: 8 },
      "BatchCompute 'Gpu' has 'minvCpus' = 16: must be <= 'maxvCpus' = 8",
    ],
    [
      'spot with multi-node',
      { multiNode: true, instanceTypes: ['p4d.24xlarge'] },
      "BatchCompute 'Gpu' has 'spot' = true: multi-node parallel jobs ('multiNode' = true) cannot run on Spot",
    ],
    [
      'multi-node over a family',
      { multiNode: true, spot: false },
      "BatchCompute 'Gpu' has 'instanceTypes' = [\"g5\"]: multi-node parallel jobs ('multiNode' = true) need exactly one instance type with a size",
    ],
    [
      'no instance types',
      { instanceTypes: [] },
      "BatchCompute 'Gpu' has 'instanceTypes' = []: must name at least one family or type",
    ],
    [
      'an unknown family',
      { instanceTypes: ['zz9'] },
      "BatchCompute 'Gpu' has 'instanceTypes[0]' = \"zz9\": is not an EC2 instance family this CDK version knows",
    ],
    ['a zero cap', { maxvCpus: 0 }, "BatchCompute 'Gpu' has 'maxvCpus' = 0: must be a positive integer"],
    [
      'a runnable timeout under 10 minutes',
      { runnableTimeout: Duration.minutes(5) },
      "BatchCompute 'Gpu' has 'runnableTimeout' = \"5 minutes\": must be from 10 minutes to 24 hours",
    ],
    [
      'a zero on-demand cap',
      { onDemandMaxvCpus: 0 },
      "BatchCompute 'Gpu' has 'onDemandMaxvCpus' = 0: must be a positive integer",
    ],
  ];
  for (const [what, props, message] of invalid) {
    it(`GIVEN ${what} THEN it throws`, () => {
      const stack = newStack();
      assert.throws(() => new BatchCompute(stack, 'Gpu', computeProps(stack, props)), { message });
    });
  }
});

function entry(overrides: Partial<CatalogEntry>): CatalogEntry {
  return {
    description: 'test job',
    queue: 'cpu',
    vcpus: 1,
    memoryMiB: 1024,
    gpus: 0,
    timeoutSeconds: 600,
    granularity: 'item',
    params: z.object({}).strict(),
    ...overrides,
  };
}

function jobDefinitionProps(
  stack: Stack,
  props: Partial<CatalogJobDefinitionsProps> = {},
): CatalogJobDefinitionsProps {
  const image = ecs.ContainerImage.fromRegistry('public.ecr.aws/example/job:1');
  return {
    catalog: { one: entry({}) },
    namePrefix: 'geobatch-test',
    images: { cpu: image, gpu: image },
    queues: { cpu: { maxvCpus: 16, gpu: false }, gpu: { maxvCpus: 32, gpu: true } },
    jobRole: new iam.Role(stack, 'JobRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    }),
    logGroup: new logs.LogGroup(stack, 'Logs'),
    ...props,
  };
}

describe('CatalogJobDefinitions', () => {
  it('GIVEN a catalog of 25 jobs THEN 25 job definitions', () => {
    const stack = newStack();
    const catalog = Object.fromEntries(
      Array.from({ length: 25 }, (_, i) => [`job${i}`, entry({ vcpus: 1 + (i % 4) })]),
    );
    new CatalogJobDefinitions(stack, 'Jobs', jobDefinitionProps(stack, { catalog }));
    Template.fromStack(stack).resourceCountIs('AWS::Batch::JobDefinition', 25);
  });

  it('GIVEN a queue default for shared memory THEN it is capped at half the job memory', () => {
    const stack = newStack();
    new CatalogJobDefinitions(
      stack,
      'Jobs',
      jobDefinitionProps(stack, {
        catalog: { small: entry({ queue: 'gpu', gpus: 1, memoryMiB: 4000 }) },
        defaultSharedMemoryMiB: { gpu: 8192 },
      }),
    );
    const container = only(Template.fromStack(stack), 'AWS::Batch::JobDefinition')
      .ContainerProperties as Props;
    assert.deepEqual(container.LinuxParameters, { InitProcessEnabled: true, SharedMemorySize: 2000 });
  });

  it('GIVEN retry attempts THEN spot reclaims retry and everything else exits', () => {
    const stack = newStack();
    new CatalogJobDefinitions(stack, 'Jobs', jobDefinitionProps(stack, { retryAttempts: 5 }));
    assert.deepEqual(only(Template.fromStack(stack), 'AWS::Batch::JobDefinition').RetryStrategy, {
      Attempts: 5,
      EvaluateOnExit: [
        { Action: 'RETRY', OnStatusReason: 'Host EC2*' },
        { Action: 'EXIT', OnReason: '*' },
      ],
    });
  });

  const invalid: [string, Partial<CatalogJobDefinitionsProps>, string][] = [
    [
      'a GPU job on the CPU queue',
      { catalog: { train: entry({ gpus: 1 }) } },
      "CatalogJobDefinitions 'Jobs' has 'catalog.train.gpus' = 1: the 'cpu' queue has no GPU instances; put GPU jobs on the 'gpu' queue",
    ],
    [
      'more vCPUs than the queue allows',
      { catalog: { big: entry({ vcpus: 64 }) } },
      "CatalogJobDefinitions 'Jobs' has 'catalog.big.vcpus' = 64: must be <= 16, the vCPU cap of the 'cpu' queue, or the job never starts",
    ],
    [
      'a timeout under a minute',
      { catalog: { quick: entry({ timeoutSeconds: 30 }) } },
      "CatalogJobDefinitions 'Jobs' has 'catalog.quick.timeoutSeconds' = 30: must be >= 60 (Batch's minimum)",
    ],
    [
      'shared memory as large as memory',
      { catalog: { shm: entry({ sharedMemoryMiB: 1024 }) } },
      "CatalogJobDefinitions 'Jobs' has 'catalog.shm.sharedMemoryMiB' = 1024: must be < memoryMiB = 1024: /dev/shm counts against the job's memory",
    ],
    [
      'half a vCPU',
      { catalog: { half: entry({ vcpus: 0.5 }) } },
      "CatalogJobDefinitions 'Jobs' has 'catalog.half.vcpus' = 0.5: must be a positive integer on EC2",
    ],
    [
      'a name Batch refuses',
      { catalog: { 'has space': entry({}) } },
      "CatalogJobDefinitions 'Jobs' has 'catalog.has space.name' = \"geobatch-test-has space\": a job definition name must be <= 128 of [A-Za-z0-9_-], starting alphanumeric",
    ],
    [
      'an empty catalog',
      { catalog: {} },
      "CatalogJobDefinitions 'Jobs' has 'catalog' = {}: must have at least one job",
    ],
    [
      'zero attempts',
      { retryAttempts: 0 },
      "CatalogJobDefinitions 'Jobs' has 'retryAttempts' = 0: must be an integer from 1 to 10",
    ],
  ];
  for (const [what, props, message] of invalid) {
    it(`GIVEN ${what} THEN it throws`, () => {
      const stack = newStack();
      assert.throws(() => new CatalogJobDefinitions(stack, 'Jobs', jobDefinitionProps(stack, props)), {
        message,
      });
    });
  }
});

describe('checks at synthesis (state that can change after construction)', () => {
  it('GIVEN a retry rule added after construction THEN synthesis fails: the last rule must exit on everything', () => {
    const stack = newStack();
    const jobs = new CatalogJobDefinitions(stack, 'Jobs', jobDefinitionProps(stack));
    jobs.definitions.one!.jobDefinition.addRetryStrategy(
      batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.NON_ZERO_EXIT_CODE),
    );
    assert.throws(
      () => Template.fromStack(stack),
      /CatalogJobDefinitions 'Jobs' job 'one' must end its retry rules with EXIT on reason '\*', or Batch retries every failure/,
    );
  });

  it('GIVEN a fourth compute environment in a queue THEN synthesis fails', () => {
    const stack = newStack();
    const props = computeProps(stack, { gpu: false, instanceTypes: ['m5'] });
    const compute = new BatchCompute(stack, 'Cpu', props);
    for (const id of ['Extra1', 'Extra2']) {
      const extra = new batch.ManagedEc2EcsComputeEnvironment(stack, id, {
        vpc: props.vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
        instanceTypes: [new ec2.InstanceType('m5.large')],
        useOptimalInstanceClasses: false,
      });
      compute.jobQueue.addComputeEnvironment(extra, 10);
    }
    assert.throws(
      () => Template.fromStack(stack),
      /BatchCompute 'Cpu' has 4 compute environments in its queue: Batch allows at most 3/,
    );
  });
});

describe('JobRole', () => {
  it('GIVEN a prefix THEN object actions and listing are limited to it', () => {
    const stack = newStack();
    const bucket = new s3.Bucket(stack, 'Runs');
    new JobRole(stack, 'Role', { readWrite: [{ bucket, prefix: 'runs/' }] });
    const statements = (
      only(Template.fromStack(stack), 'AWS::IAM::Policy').PolicyDocument as { Statement: Props[] }
    ).Statement;
    const list = statements.find((s) => s.Action === 's3:ListBucket');
    assert.deepEqual(list?.Condition, { StringLike: { 's3:prefix': ['runs/*'] } });
    const objects = statements.find((s) => Array.isArray(s.Action) && s.Action.includes('s3:PutObject'));
    assert.ok(JSON.stringify(objects?.Resource).includes('/runs/*'), 'objects under runs/ only');
  });

  it('GIVEN a prefix starting with a wildcard THEN it throws', () => {
    const stack = newStack();
    const bucket = new s3.Bucket(stack, 'Runs');
    assert.throws(() => new JobRole(stack, 'Role', { read: [{ bucket, prefix: '*/' }] }), {
      message:
        "JobRole 'Role' has 'prefix[0]' = \"*/\": must end with '/' and start with neither '/' nor '*'",
    });
  });
});

describe('ImageRepositories', () => {
  it('GIVEN the defaults THEN repositories are kept on delete', () => {
    const stack = newStack();
    new ImageRepositories(stack, 'Images', { namePrefix: 'geobatch/test' });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::ECR::Repository', 2);
    for (const r of Object.values(template.findResources('AWS::ECR::Repository'))) {
      assert.equal((r as { DeletionPolicy: string }).DeletionPolicy, 'Retain');
    }
  });

  it('GIVEN zero images to keep THEN it throws', () => {
    assert.throws(() => new ImageRepositories(newStack(), 'Images', { namePrefix: 'g', keepImages: 0 }), {
      message: "ImageRepositories 'Images' has 'keepImages' = 0: must be a positive integer",
    });
  });
});

describe('CiPublisher', () => {
  function publisher(
    stack: Stack,
    props: Partial<ConstructorParameters<typeof CiPublisher>[2]> = {},
  ): CiPublisher {
    const repo = new ImageRepositories(stack, 'Images', { namePrefix: 'geobatch/test' }).repositories.cpu;
    return new CiPublisher(stack, 'Ci', {
      githubRepository: 'acme/geobatch',
      repositories: [repo],
      ...props,
    });
  }

  it('GIVEN no deploy permission THEN the role can only push', () => {
    const stack = newStack();
    publisher(stack);
    const policy = JSON.stringify(only(Template.fromStack(stack), 'AWS::IAM::Role').Policies);
    assert.ok(!policy.includes('sts:AssumeRole'), 'no sts:AssumeRole');
    assert.ok(policy.includes('ecr:PutImage'), 'ecr:PutImage');
  });

  it("GIVEN the defaults THEN it trusts the account's existing GitHub provider and creates none", () => {
    const stack = newStack();
    publisher(stack);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::IAM::OIDCProvider', 0);
    const trust = JSON.stringify(only(template, 'AWS::IAM::Role').AssumeRolePolicyDocument);
    assert.ok(trust.includes(':oidc-provider/token.actions.githubusercontent.com'), trust);
  });

  it('GIVEN createOidcProvider THEN the provider is kept when the stack is deleted, and the role too', () => {
    const stack = newStack();
    publisher(stack, { createOidcProvider: true });
    const template = Template.fromStack(stack);
    template.hasResource('AWS::IAM::OIDCProvider', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: { Url: 'https://token.actions.githubusercontent.com', ClientIdList: ['sts.amazonaws.com'] },
    });
    template.hasResource('AWS::IAM::Role', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    template.resourceCountIs('AWS::IAM::Policy', 0);
  });

  const invalid: [string, Partial<ConstructorParameters<typeof CiPublisher>[2]>, string][] = [
    [
      'a wildcard subject',
      { subjects: ['ref:refs/heads/*'] },
      "CiPublisher 'Ci' has 'subjects[0]' = \"ref:refs/heads/*\": must be exact: no wildcards or spaces",
    ],
    [
      'a repository without an owner',
      { githubRepository: 'geobatch' },
      "CiPublisher 'Ci' has 'githubRepository' = \"geobatch\": must be 'owner/name'",
    ],
    ['no subjects', { subjects: [] }, "CiPublisher 'Ci' has 'subjects' = []: must name at least one subject"],
    [
      'a bad CDK qualifier',
      { allowDeploy: true, cdkQualifier: 'Not-OK' },
      "CiPublisher 'Ci' has 'cdkQualifier' = \"Not-OK\": must be 1-10 lowercase letters or digits",
    ],
  ];
  for (const [what, props, message] of invalid) {
    it(`GIVEN ${what} THEN it throws`, () => {
      assert.throws(() => publisher(newStack(), props), { message });
    });
  }
});

describe('PlatformDescriptorParameter', () => {
  it('GIVEN a descriptor too large for a standard parameter THEN it uses the advanced tier', () => {
    const stack = newStack();
    const jobDefinitions = Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [
        `job-${i}`,
        {
          name: `geobatch-dev-job-${i}`,
          arn: `arn:aws:batch:eu-west-1:123456789012:job-definition/geobatch-dev-job-${i}:1`,
          queue: 'cpu' as const,
        },
      ]),
    );
    const queue = { name: 'q', arn: 'arn:aws:batch:eu-west-1:123456789012:job-queue/q' };
    const repo = { name: 'r', uri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/r' };
    const descriptor = buildPlatformDescriptor(resolveEnvironment('dev'), {
      region: 'eu-west-1',
      account: '123456789012',
      buckets: { raw: 'a', processed: 'b', runs: 'c' },
      queues: { cpu: queue, gpu: queue },
      jobDefinitions,
      repositories: { cpu: repo, gpu: repo },
      logGroupName: '/geobatch/dev/jobs',
    });
    const parameter = new PlatformDescriptorParameter(stack, 'Descriptor', { descriptor });
    assert.ok(parameter.estimatedSize > 4096, 'larger than 4 KB');
    Template.fromStack(stack).hasResourceProperties('AWS::SSM::Parameter', {
      Tier: 'Advanced',
      Name: '/geobatch/dev/platform',
    });
  });
});

describe('sizes', () => {
  it('GIVEN a root volume in GiB THEN the launch template carries it', () => {
    const stack = newStack();
    new BatchCompute(
      stack,
      'Cpu',
      computeProps(stack, { gpu: false, instanceTypes: ['m5.large'], rootVolumeSize: Size.gibibytes(750) }),
    );
    const lt = only(Template.fromStack(stack), 'AWS::EC2::LaunchTemplate').LaunchTemplateData as Props;
    assert.equal((lt.BlockDeviceMappings as { Ebs: Props }[])[0]?.Ebs.VolumeSize, 750);
  });
});
