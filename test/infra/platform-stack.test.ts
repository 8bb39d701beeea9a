/**
 * The dev environment as `cdk synth -c env=dev` makes it (with a CI repository configured),
 * synthesised once and asserted promise by promise.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { catalog as jobCatalog, type CatalogEntry } from '../../jobs/catalog.js';
import { parsePlatformDescriptor, type PlatformDescriptor } from '../../lib/config/index.js';
import type { PlatformStack } from '../../lib/infra/index.js';
import {
  ciEnvironments,
  evaluate,
  fakeAccount,
  fakeRegion,
  logicalIdOf,
  platformStacks,
  type TemplateJson,
} from './helpers.js';

/** Widened, so the tests hold whatever the catalog grows into. */
const catalog: Readonly<Record<string, CatalogEntry>> = jobCatalog;

let stack: PlatformStack;
let template: Template;
let json: TemplateJson;

before(() => {
  const { stacks } = platformStacks({
    env: 'dev',
    'geobatch:environments': ciEnvironments,
    imageTag: 'abc123',
  });
  assert.equal(stacks.length, 1);
  stack = stacks[0]!;
  template = Template.fromStack(stack);
  json = template.toJSON() as TemplateJson;
});

type Props = Record<string, unknown>;

function resourcesOf(type: string): [string, Props][] {
  return Object.entries(template.findResources(type)).map(([id, r]) => [
    id,
    (r as { Properties: Props }).Properties,
  ]);
}

function idOf(element: { node: { defaultChild?: unknown } }): string {
  return logicalIdOf(element.node.defaultChild as Parameters<typeof logicalIdOf>[0]);
}

describe('dev stack', () => {
  it('is environment-agnostic and named geobatch-dev', () => {
    assert.equal(stack.stackName, 'geobatch-dev');
    assert.equal(stack.environment, 'aws://unknown-account/unknown-region');
  });

  it('tags every taggable resource for cost allocation', () => {
    for (const type of [
      'AWS::S3::Bucket',
      'AWS::Batch::JobDefinition',
      'AWS::ECR::Repository',
      'AWS::Logs::LogGroup',
    ]) {
      for (const [id, props] of resourcesOf(type)) {
        const tags = props.Tags;
        const has = (key: string, value: string) =>
          Array.isArray(tags)
            ? tags.some((t: { Key: string; Value: string }) => t.Key === key && t.Value === value)
            : (tags as Record<string, string> | undefined)?.[key] === value;
        assert.ok(
          has('project', 'geobatch') && has('environment', 'dev'),
          `${type} ${id} lacks the cost tags`,
        );
      }
    }
  });

  it('tags instances and volumes through the launch templates, never queues or compute environments (create-only tags)', () => {
    for (const [id, props] of resourcesOf('AWS::EC2::LaunchTemplate')) {
      const specs = (
        props.LaunchTemplateData as { TagSpecifications: { ResourceType: string; Tags: unknown[] }[] }
      ).TagSpecifications;
      for (const kind of ['instance', 'volume']) {
        const tags = specs.find((s) => s.ResourceType === kind)?.Tags;
        assert.ok(
          Array.isArray(tags) &&
            [
              { Key: 'project', Value: 'geobatch' },
              { Key: 'environment', Value: 'dev' },
            ].every((t) => tags.some((u) => JSON.stringify(u) === JSON.stringify(t))),
          `${id} does not tag its ${kind}s`,
        );
      }
    }
    for (const type of ['AWS::Batch::JobQueue', 'AWS::Batch::ComputeEnvironment']) {
      for (const [id, props] of resourcesOf(type)) {
        assert.equal(props.Tags, undefined, `${type} ${id} has Tags`);
        assert.equal(
          (props.ComputeResources as Props | undefined)?.Tags,
          undefined,
          `${type} ${id} has instance Tags`,
        );
      }
    }
  });
});

describe('buckets', () => {
  it('makes raw, processed, runs and the access-log bucket, all kept on delete', () => {
    template.resourceCountIs('AWS::S3::Bucket', 4);
    for (const [id, r] of Object.entries(template.findResources('AWS::S3::Bucket'))) {
      assert.equal((r as { DeletionPolicy?: string }).DeletionPolicy, 'Retain', id);
    }
  });

  it('blocks public access, encrypts, enforces bucket ownership', () => {
    for (const [id, props] of resourcesOf('AWS::S3::Bucket')) {
      assert.deepEqual(
        props.PublicAccessBlockConfiguration,
        {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        id,
      );
      assert.deepEqual(
        props.BucketEncryption,
        {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        id,
      );
      assert.deepEqual(props.OwnershipControls, { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] }, id);
    }
  });

  it('denies every request without TLS 1.2 in every bucket policy', () => {
    const policies = resourcesOf('AWS::S3::BucketPolicy');
    assert.equal(policies.length, 4);
    for (const [id, props] of policies) {
      const statements = (props.PolicyDocument as { Statement: Props[] }).Statement;
      const denies = statements.filter((s) => s.Effect === 'Deny');
      assert.ok(
        denies.some(
          (s) => JSON.stringify(s.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
        ),
        `${id} does not deny plain HTTP`,
      );
      assert.ok(
        denies.some(
          (s) =>
            JSON.stringify(s.Condition) === JSON.stringify({ NumericLessThan: { 's3:TlsVersion': 1.2 } }),
        ),
        `${id} does not deny TLS < 1.2`,
      );
    }
  });

  it('versions the irreplaceable buckets (raw, runs) but not processed data', () => {
    const versioning = (bucket: { bucket: { node: { defaultChild?: unknown } } }) =>
      (
        json.Resources[idOf(bucket.bucket)]?.Properties?.VersioningConfiguration as
          { Status?: string } | undefined
      )?.Status;
    assert.equal(versioning(stack.buckets.raw), 'Enabled');
    assert.equal(versioning(stack.buckets.runs), 'Enabled');
    assert.equal(versioning(stack.buckets.processed), undefined);
  });

  it('aborts incomplete multipart uploads everywhere and expires scratch prefixes and old versions', () => {
    const rules = (bucket: { bucket: { node: { defaultChild?: unknown } } }) =>
      (json.Resources[idOf(bucket.bucket)]?.Properties?.LifecycleConfiguration as { Rules: Props[] }).Rules;
    for (const bucket of [stack.buckets.raw, stack.buckets.processed, stack.buckets.runs, stack.accessLogs]) {
      assert.ok(
        rules(bucket).some(
          (r) => JSON.stringify(r.AbortIncompleteMultipartUpload) === '{"DaysAfterInitiation":7}',
        ),
        'incomplete multipart uploads are aborted after 7 days',
      );
    }
    for (const bucket of [stack.buckets.processed, stack.buckets.runs]) {
      assert.ok(
        rules(bucket).some((r) => r.Prefix === 'tmp/' && r.ExpirationInDays === 7 && r.Status === 'Enabled'),
        'tmp/ expires after 7 days',
      );
    }
    assert.ok(
      !rules(stack.buckets.raw).some((r) => r.ExpirationInDays !== undefined),
      'raw data never expires',
    );
    for (const bucket of [stack.buckets.raw, stack.buckets.runs]) {
      assert.ok(
        rules(bucket).some((r) => r.NoncurrentVersionExpiration !== undefined),
        'old versions expire',
      );
    }
    assert.ok(
      rules(stack.accessLogs).some((r) => r.ExpirationInDays === 14),
      'logs expire with the log retention',
    );
  });

  it('sends the access logs of the data buckets to the access-log bucket', () => {
    const logsId = idOf(stack.accessLogs.bucket);
    for (const [name, bucket] of Object.entries(stack.buckets)) {
      assert.deepEqual(json.Resources[idOf(bucket.bucket)]?.Properties?.LoggingConfiguration, {
        DestinationBucketName: { Ref: logsId },
        LogFilePrefix: `s3-access-logs/${name}/`,
      });
    }
  });
});

describe('network', () => {
  it('uses public subnets with public IPs and no NAT gateway in dev', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    const subnets = resourcesOf('AWS::EC2::Subnet');
    assert.equal(subnets.length, 2);
    for (const [, props] of subnets) assert.equal(props.MapPublicIpOnLaunch, true);
  });

  it('has an S3 gateway endpoint and VPC flow logs to the log bucket', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      VpcEndpointType: 'Gateway',
      ServiceName: Match.objectLike({ 'Fn::Join': Match.arrayWith([Match.arrayWith(['.s3'])]) }),
    });
    template.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 's3',
    });
  });

  it('allows no inbound traffic to the Batch instances', () => {
    for (const [id, props] of resourcesOf('AWS::EC2::SecurityGroup')) {
      assert.equal(props.SecurityGroupIngress, undefined, id);
    }
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });
});

describe('Batch compute', () => {
  for (const kind of ['cpu', 'gpu'] as const) {
    it(`${kind}: a spot environment (SPOT_PRICE_CAPACITY_OPTIMIZED) and an on-demand fallback, in that order`, () => {
      const compute = stack.compute[kind];
      const [spot, onDemand] = compute.computeEnvironments.map(
        (ce) => json.Resources[idOf(ce)]?.Properties,
      ) as [Props, Props];
      const spotResources = spot.ComputeResources as Props;
      const onDemandResources = onDemand.ComputeResources as Props;
      assert.equal(spotResources.Type, 'SPOT');
      assert.equal(spotResources.AllocationStrategy, 'SPOT_PRICE_CAPACITY_OPTIMIZED');
      assert.equal(onDemandResources.Type, 'EC2');
      assert.equal(onDemandResources.AllocationStrategy, 'BEST_FIT_PROGRESSIVE');
      const config = stack.config.compute[kind];
      for (const r of [spotResources, onDemandResources]) {
        assert.deepEqual(r.InstanceTypes, config.instanceTypes);
        assert.equal(r.MinvCpus, 0);
        assert.deepEqual(r.Ec2Configuration, [
          { ImageType: kind === 'gpu' ? 'ECS_AL2023_NVIDIA' : 'ECS_AL2023' },
        ]);
        assert.deepEqual(r.LaunchTemplate, {
          LaunchTemplateId: {
            Ref: logicalIdOf(compute.launchTemplate.node.defaultChild as Parameters<typeof logicalIdOf>[0]),
          },
          Version: {
            'Fn::GetAtt': [
              logicalIdOf(compute.launchTemplate.node.defaultChild as Parameters<typeof logicalIdOf>[0]),
              'LatestVersionNumber',
            ],
          },
        });
      }
      assert.equal(spotResources.MaxvCpus, config.maxvCpus);
      const queue = json.Resources[idOf(compute.jobQueue)]?.Properties as Props;
      assert.equal(queue.JobQueueName, `geobatch-dev-${kind}`);
      assert.deepEqual(
        (queue.ComputeEnvironmentOrder as { Order: number; ComputeEnvironment: unknown }[]).map(
          (o) => o.Order,
        ),
        [1, 2],
      );
      assert.deepEqual(
        (queue.ComputeEnvironmentOrder as { ComputeEnvironment: unknown }[])[0]?.ComputeEnvironment,
        {
          'Fn::GetAtt': [idOf(compute.computeEnvironments[0]!), 'ComputeEnvironmentArn'],
        },
      );
    });

    it(`${kind}: instances get an encrypted gp3 root volume of the configured size and IMDSv2 only`, () => {
      const lt = json.Resources[idOf(stack.compute[kind].launchTemplate)]?.Properties
        ?.LaunchTemplateData as Props;
      assert.deepEqual(lt.BlockDeviceMappings, [
        {
          DeviceName: '/dev/xvda',
          Ebs: {
            DeleteOnTermination: true,
            Encrypted: true,
            VolumeSize: stack.config.compute[kind].rootVolumeGiB,
            VolumeType: 'gp3',
          },
        },
      ]);
      assert.deepEqual(lt.MetadataOptions, { HttpPutResponseHopLimit: 1, HttpTokens: 'required' });
      assert.equal(
        lt.UserData,
        undefined,
        'Batch needs MIME multi-part user data; none is better than plain',
      );
    });

    it(`${kind}: the queue cancels jobs stuck RUNNABLE, with the reason`, () => {
      const queue = json.Resources[idOf(stack.compute[kind].jobQueue)]?.Properties as Props;
      assert.deepEqual(queue.JobStateTimeLimitActions, [
        {
          Action: 'CANCEL',
          MaxTimeSeconds: stack.config.compute[kind].runnableTimeoutMinutes * 60,
          Reason: 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY',
          State: 'RUNNABLE',
        },
        {
          Action: 'CANCEL',
          MaxTimeSeconds: 600,
          Reason: 'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE',
          State: 'RUNNABLE',
        },
        {
          Action: 'CANCEL',
          MaxTimeSeconds: 600,
          Reason: 'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT',
          State: 'RUNNABLE',
        },
      ]);
    });
  }

  it('updates compute environments in place and lets running jobs finish: the grace is the longest job timeout of the queue', () => {
    for (const kind of ['cpu', 'gpu'] as const) {
      const longest = Math.max(
        ...Object.values(catalog)
          .filter((e) => e.queue === kind)
          .map((e) => e.timeoutSeconds),
      );
      for (const ce of stack.compute[kind].computeEnvironments) {
        const props = json.Resources[idOf(ce)]?.Properties as Props;
        assert.equal(props.ReplaceComputeEnvironment, false);
        assert.deepEqual(props.UpdatePolicy, {
          TerminateJobsOnUpdate: false,
          JobExecutionTimeoutMinutes: Math.max(30, Math.ceil(longest / 60)),
        });
      }
    }
    // the training job's 24 hours, not Batch's default 30 minutes
    const gpu = json.Resources[idOf(stack.compute.gpu.computeEnvironments[0]!)]?.Properties as Props;
    assert.equal((gpu.UpdatePolicy as Props).JobExecutionTimeoutMinutes, 1440);
  });

  it('pins the configured instance types (no "optimal")', () => {
    for (const [, props] of resourcesOf('AWS::Batch::ComputeEnvironment')) {
      assert.ok(
        !((props.ComputeResources as Props).InstanceTypes as string[]).includes('optimal'),
        'optimal is not pinned',
      );
    }
  });
});

describe('job definitions', () => {
  it('makes exactly one job definition per catalog entry', () => {
    template.resourceCountIs('AWS::Batch::JobDefinition', Object.keys(catalog).length);
    assert.deepEqual(Object.keys(stack.jobDefinitions.definitions).sort(), Object.keys(catalog).sort());
  });

  for (const [name, entry] of Object.entries(catalog)) {
    it(`${name}: resources, timeout, retries, tags, image and logs from the catalog`, () => {
      const definition = stack.jobDefinitions.definitions[name]!;
      assert.equal(definition.queue, entry.queue);
      const props = json.Resources[idOf(definition.jobDefinition)]?.Properties as Props;
      assert.equal(props.JobDefinitionName, `geobatch-dev-${name}`);
      assert.equal(props.PropagateTags, true);
      assert.deepEqual(props.PlatformCapabilities, ['EC2']);
      assert.deepEqual(props.Timeout, { AttemptDurationSeconds: entry.timeoutSeconds });
      assert.deepEqual(props.RetryStrategy, {
        Attempts: 3,
        EvaluateOnExit: [
          { Action: 'RETRY', OnStatusReason: 'Host EC2*' },
          { Action: 'EXIT', OnReason: '*' },
        ],
      });
      const container = props.ContainerProperties as Props;
      const requirements = Object.fromEntries(
        (container.ResourceRequirements as { Type: string; Value: string }[]).map((r) => [r.Type, r.Value]),
      );
      assert.equal(requirements.VCPU, String(entry.vcpus));
      assert.equal(requirements.MEMORY, String(entry.memoryMiB));
      assert.equal(requirements.GPU, entry.gpus > 0 ? String(entry.gpus) : undefined);
      assert.deepEqual(container.Command, ['geobatch-job', '--help']);
      const linux = container.LinuxParameters as Props;
      assert.equal(linux.InitProcessEnabled, true);
      const expectedShm =
        entry.sharedMemoryMiB !== undefined
          ? entry.sharedMemoryMiB
          : entry.queue === 'gpu'
            ? Math.min(8192, Math.floor(entry.memoryMiB / 2))
            : undefined;
      assert.equal(linux.SharedMemorySize, expectedShm);
      const image = String(evaluate(container.Image, json));
      assert.equal(
        image,
        `${fakeAccount}.dkr.ecr.${fakeRegion}.amazonaws.com/geobatch/dev/${entry.queue}:abc123`,
      );
      assert.deepEqual(container.LogConfiguration, {
        LogDriver: 'awslogs',
        Options: {
          'awslogs-group': { Ref: idOf(stack.logGroup) },
          'awslogs-stream-prefix': name,
          'awslogs-region': { Ref: 'AWS::Region' },
        },
      });
      assert.deepEqual(container.JobRoleArn, { 'Fn::GetAtt': [idOf(stack.jobRole.role), 'Arn'] });
    });
  }

  it('keeps job logs in /geobatch/dev/jobs for the configured retention', () => {
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/geobatch/dev/jobs',
      RetentionInDays: 14,
    });
  });
});

describe('image repositories', () => {
  it('makes cpu and gpu repositories with immutable tags, scan on push and a lifecycle', () => {
    for (const kind of ['cpu', 'gpu']) {
      template.hasResourceProperties('AWS::ECR::Repository', {
        RepositoryName: `geobatch/dev/${kind}`,
        ImageTagMutability: 'IMMUTABLE',
        ImageScanningConfiguration: { ScanOnPush: true },
        EmptyOnDelete: true,
        LifecyclePolicy: { LifecyclePolicyText: Match.stringLikeRegexp('"countNumber":20') },
      });
    }
  });
});

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

function statementsOfRole(role: { node: { defaultChild?: unknown } }): Statement[] {
  const roleId = idOf(role);
  const inline = ((json.Resources[roleId]?.Properties as Props).Policies ?? []) as PolicyOfRole[];
  return [
    ...inline.flatMap((p) => p.PolicyDocument.Statement),
    ...resourcesOf('AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Roles) === JSON.stringify([{ Ref: roleId }]))
      .flatMap(([, p]) => (p.PolicyDocument as { Statement: Statement[] }).Statement),
  ];
}

interface PolicyOfRole {
  readonly PolicyDocument: { readonly Statement: Statement[] };
}

/** Every policy document of the stack: the AWS::IAM::Policy resources and the roles' inline policies. */
function everyPolicy(): [string, Statement[]][] {
  return [
    ...resourcesOf('AWS::IAM::Policy').map(([id, p]): [string, Statement[]] => [
      id,
      (p.PolicyDocument as { Statement: Statement[] }).Statement,
    ]),
    ...resourcesOf('AWS::IAM::Role').flatMap(([id, p]) =>
      ((p.Policies ?? []) as PolicyOfRole[]).map((d): [string, Statement[]] => [
        id,
        d.PolicyDocument.Statement,
      ]),
    ),
  ];
}

const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);

describe('IAM', () => {
  it('no policy grants anything on "*" except ecr:GetAuthorizationToken, which has no resource form', () => {
    for (const [id, statements] of everyPolicy()) {
      for (const s of statements) {
        const resources = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
        if (resources.includes('*')) assert.deepEqual(actions(s), ['ecr:GetAuthorizationToken'], id);
        for (const action of actions(s)) assert.ok(!action.includes('*'), `${id} grants ${action}`);
      }
    }
  });

  it('jobs read raw and write processed and runs, and nothing else', () => {
    const statements = statementsOfRole(stack.jobRole.role);
    const on = (bucket: { bucket: { node: { defaultChild?: unknown } } }) => {
      const id = idOf(bucket.bucket);
      const objects = statements.filter((s) => JSON.stringify(s.Resource).includes(`"${id}","Arn"]},"/*"`));
      return objects.flatMap(actions).sort();
    };
    assert.deepEqual(on(stack.buckets.raw), ['s3:GetObject']);
    const write = [
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetObject',
      's3:ListMultipartUploadParts',
      's3:PutObject',
    ];
    assert.deepEqual(on(stack.buckets.processed), write);
    assert.deepEqual(on(stack.buckets.runs), write);
    assert.deepEqual(on(stack.accessLogs), []);
    const buckets = new Set(
      statements.flatMap((s) => JSON.stringify(s.Resource).match(/"(\w+Bucket\w+)","Arn"/g) ?? []),
    );
    assert.equal(buckets.size, 3);
  });

  it('on EC2 the instance role, not only the execution role, may pull images and write logs (README says so)', () => {
    const managed = 'service-role/AmazonEC2ContainerServiceforEC2Role';
    for (const kind of ['cpu', 'gpu'] as const) {
      const role = stack.compute[kind].instanceRole;
      const props = json.Resources[idOf(role as { node: { defaultChild?: unknown } })]?.Properties as Props;
      assert.deepEqual(
        (props.ManagedPolicyArns as unknown[]).map((arn) => String(evaluate(arn, json))),
        [`arn:aws:iam::aws:policy/${managed}`],
      );
      assert.equal(props.Policies, undefined);
      const roleId = idOf(role as { node: { defaultChild?: unknown } });
      assert.deepEqual(
        resourcesOf('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Roles).includes(roleId)),
        [],
        'no policy of ours is added to it',
      );
      assert.match(
        String(props.Description),
        /may also pull any image of the account and write to any log group/,
      );
    }
    // the ECS agent uses the execution role for pulls and awslogs because every definition names it
    for (const [id, props] of resourcesOf('AWS::Batch::JobDefinition')) {
      const container = props.ContainerProperties as Props;
      assert.deepEqual(
        container.ExecutionRoleArn,
        { 'Fn::GetAtt': [idOf(stack.jobDefinitions.executionRole), 'Arn'] },
        id,
      );
      assert.deepEqual((container.LogConfiguration as Props).LogDriver, 'awslogs', id);
    }
  });

  it('Batch itself (the execution role) pulls only the images its jobs use and writes only the job log group', () => {
    const statements = statementsOfRole(stack.jobDefinitions.executionRole);
    const pulled = statements
      .filter((s) => actions(s).includes('ecr:BatchGetImage'))
      .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]));
    const queuesUsed = [...new Set(Object.values(catalog).map((e) => e.queue))].sort();
    assert.deepEqual(
      pulled,
      queuesUsed.map((k) => ({ 'Fn::GetAtt': [idOf(stack.images.repositories[k]), 'Arn'] })),
    );
    const logs = statements.find((s) => actions(s).includes('logs:PutLogEvents'));
    assert.deepEqual(logs?.Resource, { 'Fn::GetAtt': [idOf(stack.logGroup), 'Arn'] });
  });
});

describe('CI publisher', () => {
  it("trusts the account's GitHub OIDC provider for the configured repository and its dev GitHub environment only", () => {
    template.resourceCountIs('AWS::IAM::OIDCProvider', 0);
    const role = json.Resources[idOf(stack.ciPublisher!.role)]?.Properties as Props;
    assert.equal(role.RoleName, 'geobatch-dev-ci');
    assert.deepEqual((role.AssumeRolePolicyDocument as { Statement: Statement[] }).Statement, [
      {
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
            'token.actions.githubusercontent.com:sub': ['repo:example-org/geobatch:environment:dev'],
          },
        },
        Effect: 'Allow',
        Principal: {
          Federated: {
            'Fn::Join': [
              '',
              [
                'arn:',
                { Ref: 'AWS::Partition' },
                ':iam::',
                { Ref: 'AWS::AccountId' },
                ':oidc-provider/token.actions.githubusercontent.com',
              ],
            ],
          },
        },
      },
    ]);
  });

  it('keeps the CI role, with its permissions inline, when the stack drops it or is deleted', () => {
    const id = idOf(stack.ciPublisher!.role);
    assert.equal(json.Resources[id]?.DeletionPolicy, 'Retain');
    assert.equal(json.Resources[id]?.UpdateReplacePolicy, 'Retain');
    assert.deepEqual(
      resourcesOf('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Roles).includes(`"${id}"`)),
      [],
      'no separate policy that a deploy without the role would delete',
    );
  });

  it('may push to the two repositories, read the descriptor and assume the CDK deploy roles', () => {
    const statements = statementsOfRole(stack.ciPublisher!.role);
    const push = statements.find((s) => actions(s).includes('ecr:PutImage'));
    assert.deepEqual(
      push?.Resource,
      ['cpu', 'gpu'].map((k) => ({
        'Fn::GetAtt': [idOf(stack.images.repositories[k as 'cpu' | 'gpu']), 'Arn'],
      })),
    );
    const read = statements.find((s) => actions(s).includes('ssm:GetParameter'));
    assert.equal(
      evaluate(read?.Resource, json),
      `arn:aws:ssm:${fakeRegion}:${fakeAccount}:parameter/geobatch/dev/platform`,
    );
    const assume = statements.find((s) => actions(s).includes('sts:AssumeRole'));
    const roles = (evaluate(assume?.Resource, json) as string[]).sort();
    assert.deepEqual(
      roles,
      ['deploy', 'file-publishing', 'lookup'].map(
        (k) => `arn:aws:iam::${fakeAccount}:role/cdk-hnb659fds-${k}-role-${fakeAccount}-${fakeRegion}`,
      ),
    );
  });
});

describe('platform descriptor', () => {
  let descriptor: PlatformDescriptor;
  before(() => {
    const [, props] = resourcesOf('AWS::SSM::Parameter')[0]!;
    assert.equal(props.Name, '/geobatch/dev/platform');
    assert.equal(props.Tier, 'Standard');
    descriptor = parsePlatformDescriptor(String(evaluate(props.Value, json)), 'dev');
  });

  it('is what the CLI parser accepts, with the deployed names', () => {
    assert.equal(descriptor.env, 'dev');
    assert.equal(descriptor.account, fakeAccount);
    assert.equal(descriptor.region, fakeRegion);
    assert.equal(descriptor.imageTag, 'abc123');
    assert.equal(descriptor.logGroup.name, '/geobatch/dev/jobs');
    assert.equal(descriptor.buckets.raw.name, evaluate({ Ref: idOf(stack.buckets.raw.bucket) }, json));
    assert.equal(descriptor.buckets.runs.prefix, 'runs/');
    assert.deepEqual(descriptor.queues.cpu, {
      name: 'geobatch-dev-cpu',
      arn: `arn:aws:batch:${fakeRegion}:${fakeAccount}:job-queue/geobatch-dev-cpu`,
    });
    assert.equal(
      descriptor.repositories.gpu.uri,
      `${fakeAccount}.dkr.ecr.${fakeRegion}.amazonaws.com/geobatch/dev/gpu`,
    );
  });

  it('names one job definition per catalog entry, with its queue', () => {
    assert.deepEqual(Object.keys(descriptor.jobDefinitions).sort(), Object.keys(catalog).sort());
    for (const [name, entry] of Object.entries(catalog)) {
      assert.deepEqual(descriptor.jobDefinitions[name], {
        name: `geobatch-dev-${name}`,
        arn: `arn:aws:batch:${fakeRegion}:${fakeAccount}:job-definition/geobatch-dev-${name}:1`,
        queue: entry.queue,
      });
    }
  });

  it('is sized by an upper bound of its deployed value, so the catalog fits the standard tier', () => {
    const [, props] = resourcesOf('AWS::SSM::Parameter')[0]!;
    const resolved = String(evaluate(props.Value, json)).length;
    const bound = stack.descriptorParameter.estimatedSize;
    assert.ok(bound >= resolved, `bound ${bound} >= resolved ${resolved}`);
    // every value CloudFormation fills in may grow (longer region, bucket names, revisions) but
    // the bound stays within a few hundred characters per job, not 128 per token
    assert.ok(bound < resolved * 1.6, `bound ${bound} is close to resolved ${resolved}`);
    assert.ok(bound <= 4096, `bound ${bound} fits 4 KB`);
  });
});
