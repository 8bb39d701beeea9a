/**
 * The prod environment, with a catalog grown by a GPU job (as the training issue will add),
 * synthesised once: what differs from dev, and the GPU job definition.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { z } from 'zod';
import { catalog, type CatalogEntry } from '../../jobs/catalog.js';
import { parsePlatformDescriptor } from '../../lib/config/index.js';
import type { PlatformStack } from '../../lib/infra/index.js';
import {
  ciEnvironments,
  evaluate,
  fakeAccount,
  logicalIdOf,
  platformStacks,
  type TemplateJson,
} from './helpers.js';

const grownCatalog: Record<string, CatalogEntry> = {
  ...catalog,
  'gpu-probe': {
    description: 'A GPU job standing in for training.',
    queue: 'gpu',
    vcpus: 8,
    memoryMiB: 30_000,
    gpus: 1,
    timeoutSeconds: 86_400,
    granularity: 'stage',
    params: z.object({}).strict(),
  },
  'gpu-shm': {
    description: 'A GPU job with its own shared memory.',
    queue: 'gpu',
    vcpus: 4,
    memoryMiB: 16_000,
    gpus: 1,
    timeoutSeconds: 3600,
    sharedMemoryMiB: 2048,
    granularity: 'stage',
    params: z.object({}).strict(),
  },
};

let stack: PlatformStack;
let template: Template;
let json: TemplateJson;

type Props = Record<string, unknown>;

function propsOf(construct: { node: { defaultChild?: unknown } }): Props {
  const id = logicalIdOf(construct.node.defaultChild as Parameters<typeof logicalIdOf>[0]);
  return json.Resources[id]?.Properties ?? {};
}

function resourceOf(construct: { node: { defaultChild?: unknown } }): Record<string, unknown> {
  const id = logicalIdOf(construct.node.defaultChild as Parameters<typeof logicalIdOf>[0]);
  return (template.toJSON() as { Resources: Record<string, Record<string, unknown>> }).Resources[id] ?? {};
}

before(() => {
  const { stacks } = platformStacks({ env: 'prod', 'geobatch:environments': ciEnvironments }, grownCatalog);
  stack = stacks[0]!;
  template = Template.fromStack(stack);
  json = template.toJSON() as TemplateJson;
});

describe('prod stack', () => {
  it('is protected against deletion and keeps repositories and logs', () => {
    assert.equal(stack.terminationProtection, true);
    for (const repo of Object.values(stack.images.repositories)) {
      const r = resourceOf(repo);
      assert.equal(r.DeletionPolicy, 'Retain');
      assert.equal((r.Properties as Props).EmptyOnDelete, false);
    }
    assert.equal(resourceOf(stack.logGroup).DeletionPolicy, 'Retain');
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/geobatch/prod/jobs',
      RetentionInDays: 365,
    });
  });

  it('runs compute in private subnets behind one NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 1);
    const privateSubnetIds = stack.network.vpc.privateSubnets.map((s) =>
      logicalIdOf(s.node.defaultChild as Parameters<typeof logicalIdOf>[0]),
    );
    assert.equal(privateSubnetIds.length, 2);
    for (const ce of [...stack.compute.cpu.computeEnvironments, ...stack.compute.gpu.computeEnvironments]) {
      const subnets = (propsOf(ce).ComputeResources as Props).Subnets;
      assert.deepEqual(
        subnets,
        privateSubnetIds.map((id) => ({ Ref: id })),
      );
    }
    for (const s of stack.network.vpc.privateSubnets) assert.notEqual(propsOf(s).MapPublicIpOnLaunch, true);
  });

  it('has larger caps, a capped on-demand fallback and 500 GiB root volumes', () => {
    const [cpuSpot, cpuOnDemand] = stack.compute.cpu.computeEnvironments.map(propsOf) as [Props, Props];
    assert.equal((cpuSpot.ComputeResources as Props).MaxvCpus, 512);
    assert.equal((cpuOnDemand.ComputeResources as Props).MaxvCpus, 128);
    const lt = propsOf(stack.compute.gpu.launchTemplate).LaunchTemplateData as Props;
    assert.equal((lt.BlockDeviceMappings as { Ebs: Props }[])[0]?.Ebs.VolumeSize, 500);
  });

  it('reuses the GitHub OIDC provider of the account and trusts only the prod GitHub environment', () => {
    template.resourceCountIs('AWS::IAM::OIDCProvider', 0);
    const trust = (propsOf(stack.ciPublisher!.role).AssumeRolePolicyDocument as { Statement: Props[] })
      .Statement[0]!;
    assert.equal(
      evaluate((trust.Principal as Props).Federated, json),
      `arn:aws:iam::${fakeAccount}:oidc-provider/token.actions.githubusercontent.com`,
    );
    assert.deepEqual(trust.Condition, {
      StringEquals: {
        'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
        'token.actions.githubusercontent.com:sub': ['repo:example-org/geobatch:environment:prod'],
      },
    });
  });
});

describe('a catalog that grows', () => {
  it('still makes one job definition per entry', () => {
    template.resourceCountIs('AWS::Batch::JobDefinition', Object.keys(grownCatalog).length);
  });

  it('puts GPU jobs on the GPU image with GPUs and shared memory for data loaders', () => {
    const probe = propsOf(stack.jobDefinitions.definitions['gpu-probe']!.jobDefinition);
    const container = probe.ContainerProperties as Props;
    assert.ok(
      String(evaluate(container.Image, json)).endsWith('/geobatch/prod/gpu:unpublished'),
      'the GPU image',
    );
    assert.deepEqual(container.ResourceRequirements, [
      { Type: 'MEMORY', Value: '30000' },
      { Type: 'VCPU', Value: '8' },
      { Type: 'GPU', Value: '1' },
    ]);
    assert.deepEqual(container.LinuxParameters, { InitProcessEnabled: true, SharedMemorySize: 8192 });
    const shm = propsOf(stack.jobDefinitions.definitions['gpu-shm']!.jobDefinition)
      .ContainerProperties as Props;
    assert.deepEqual(shm.LinuxParameters, { InitProcessEnabled: true, SharedMemorySize: 2048 });
  });

  it('publishes every job in the descriptor with its queue', () => {
    const [param] = Object.values(template.findResources('AWS::SSM::Parameter')) as { Properties: Props }[];
    const descriptor = parsePlatformDescriptor(String(evaluate(param?.Properties.Value, json)), 'prod');
    assert.deepEqual(
      Object.fromEntries(Object.entries(descriptor.jobDefinitions).map(([k, v]) => [k, v.queue])),
      Object.fromEntries(Object.entries(grownCatalog).map(([k, v]) => [k, v.queue])),
    );
  });
});

describe('an environment pinned to an account and region', () => {
  it('uses the committed availability zones instead of looking them up', () => {
    const { stacks } = platformStacks({
      env: 'prod',
      'geobatch:environments': {
        prod: { account: '111122223333', region: 'eu-central-1', network: { maxAzs: 3 } },
      },
      'availability-zones:account=111122223333:region=eu-central-1': [
        'eu-central-1a',
        'eu-central-1b',
        'eu-central-1c',
      ],
    });
    const pinned = stacks[0]!;
    assert.equal(pinned.account, '111122223333');
    assert.equal(pinned.region, 'eu-central-1');
    assert.deepEqual(
      pinned.network.vpc.privateSubnets.map((s) => s.availabilityZone),
      ['eu-central-1a', 'eu-central-1b', 'eu-central-1c'],
    );
  });
});
