/**
 * The replacement analysis of replacement.ts on hand-written templates: each rule once, so
 * that the stack update tests can trust it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TemplateJson } from './helpers.js';
import { changesBetween, failingChanges, keptOnDelete, redeployConflicts } from './replacement.js';

type Props = Record<string, unknown>;

function template(resources: Record<string, { Type: string; Properties?: Props }>): TemplateJson {
  return { Resources: resources };
}

const queue = (props: Props) => ({
  Type: 'AWS::Batch::JobQueue',
  Properties: {
    Priority: 1,
    ComputeEnvironmentOrder: [{ ComputeEnvironment: { Ref: 'Ce' }, Order: 1 }],
    ...props,
  },
});

const computeEnvironment = (resources: Props, props: Props = {}) => ({
  Type: 'AWS::Batch::ComputeEnvironment',
  Properties: {
    Type: 'managed',
    ReplaceComputeEnvironment: false,
    ComputeResources: {
      Type: 'SPOT',
      AllocationStrategy: 'SPOT_PRICE_CAPACITY_OPTIMIZED',
      InstanceTypes: ['m5'],
      MaxvCpus: 64,
      LaunchTemplate: {
        LaunchTemplateId: { Ref: 'Lt' },
        Version: { 'Fn::GetAtt': ['Lt', 'LatestVersionNumber'] },
      },
      ...resources,
    },
    ...props,
  },
});

const launchTemplate = (tags: Props[]) => ({
  Type: 'AWS::EC2::LaunchTemplate',
  Properties: { LaunchTemplateData: { TagSpecifications: [{ ResourceType: 'instance', Tags: tags }] } },
});

describe('changesBetween', () => {
  it('replaces a named job queue whose tags change, and says the name conflicts', () => {
    const before = template({
      Ce: computeEnvironment({}),
      Q: queue({ JobQueueName: 'q', Tags: { a: '1' } }),
    });
    const after = template({ Ce: computeEnvironment({}), Q: queue({ JobQueueName: 'q', Tags: { a: '2' } }) });
    const changes = changesBetween(before, after);
    assert.deepEqual(changes, [
      {
        logicalId: 'Q',
        type: 'AWS::Batch::JobQueue',
        action: 'replace',
        because: ['Tags'],
        conflictingName: 'q',
      },
    ]);
    assert.deepEqual(failingChanges(changes), changes);
  });

  it('replaces an unnamed job queue without conflict, and updates a queue whose priority changes', () => {
    const tagged = changesBetween(
      template({ Ce: computeEnvironment({}), Q: queue({ Tags: { a: '1' } }) }),
      template({ Ce: computeEnvironment({}), Q: queue({}) }),
    );
    assert.deepEqual(tagged, [
      { logicalId: 'Q', type: 'AWS::Batch::JobQueue', action: 'replace', because: ['Tags'] },
    ]);
    assert.deepEqual(failingChanges(tagged), []);
    const reprioritised = changesBetween(
      template({ Ce: computeEnvironment({}), Q: queue({ JobQueueName: 'q' }) }),
      template({ Ce: computeEnvironment({}), Q: queue({ JobQueueName: 'q', Priority: 2 }) }),
    );
    assert.deepEqual(reprioritised, []);
  });

  it('replaces a compute environment whose tags change; its queue is only updated', () => {
    const changes = changesBetween(
      template({ Ce: computeEnvironment({}, { Tags: { a: '1' } }), Q: queue({ JobQueueName: 'q' }) }),
      template({ Ce: computeEnvironment({}, { Tags: { a: '2' } }), Q: queue({ JobQueueName: 'q' }) }),
    );
    assert.deepEqual(changes, [
      { logicalId: 'Ce', type: 'AWS::Batch::ComputeEnvironment', action: 'replace', because: ['Tags'] },
    ]);
  });

  it('follows references: a replaced resource replaces the named resources whose create-only properties point at it', () => {
    const before = template({
      Ce: computeEnvironment({}),
      Q: queue({ JobQueueName: 'q', JobQueueType: { Ref: 'Ce' } }),
    });
    const after = template({
      Ce: computeEnvironment({}, { Tags: { a: '1' } }),
      Q: queue({ JobQueueName: 'q', JobQueueType: { Ref: 'Ce' } }),
    });
    assert.deepEqual(
      failingChanges(changesBetween(before, after)).map((c) => c.logicalId),
      ['Q'],
    );
  });

  it('makes instance type changes infrastructure updates when ReplaceComputeEnvironment is false', () => {
    const changes = changesBetween(
      template({ Ce: computeEnvironment({}) }),
      template({ Ce: computeEnvironment({ InstanceTypes: ['m6i'] }) }),
    );
    assert.deepEqual(changes, [
      {
        logicalId: 'Ce',
        type: 'AWS::Batch::ComputeEnvironment',
        action: 'infrastructure-update',
        because: ['ComputeResources.InstanceTypes'],
      },
    ]);
  });

  it('replaces the compute environment for the same change under the default ReplaceComputeEnvironment', () => {
    const changes = changesBetween(
      template({ Ce: computeEnvironment({}, { ReplaceComputeEnvironment: undefined }) }),
      template({
        Ce: computeEnvironment({ InstanceTypes: ['m6i'] }, { ReplaceComputeEnvironment: undefined }),
      }),
    );
    assert.deepEqual(
      changes.map((c) => [c.action, c.because]),
      [['replace', ['ComputeResources.InstanceTypes']]],
    );
  });

  it('refuses an infrastructure update of a BEST_FIT compute environment', () => {
    const bestFit = { AllocationStrategy: 'BEST_FIT' };
    const changes = changesBetween(
      template({ Ce: computeEnvironment(bestFit) }),
      template({ Ce: computeEnvironment({ ...bestFit, InstanceTypes: ['m6i'] }) }),
    );
    assert.deepEqual(
      failingChanges(changes).map((c) => [c.action, c.because]),
      [['fails', ['AllocationStrategy BEST_FIT does not support infrastructure updates']]],
    );
  });

  it('scales a compute environment in place when only its vCPU caps change', () => {
    const changes = changesBetween(
      template({ Ce: computeEnvironment({}) }),
      template({ Ce: computeEnvironment({ MaxvCpus: 128, MinvCpus: 0 }) }),
    );
    assert.deepEqual(changes, []);
  });

  it('sees a new launch template version as an infrastructure update of the compute environments using it', () => {
    const changes = changesBetween(
      template({ Lt: launchTemplate([{ Key: 'a', Value: '1' }]), Ce: computeEnvironment({}) }),
      template({ Lt: launchTemplate([{ Key: 'a', Value: '2' }]), Ce: computeEnvironment({}) }),
    );
    assert.deepEqual(
      changes.map((c) => [c.logicalId, c.action, c.because]),
      [['Ce', 'infrastructure-update', ['ComputeResources.LaunchTemplate']]],
    );
  });

  it('lets a job definition be replaced under its name (a new revision)', () => {
    const definition = (tags: Props) => ({
      Type: 'AWS::Batch::JobDefinition',
      Properties: { JobDefinitionName: 'd', Type: 'container', Tags: tags },
    });
    const changes = changesBetween(
      template({ D: definition({ a: '1' }) }),
      template({ D: definition({ a: '2' }) }),
    );
    assert.deepEqual(changes, [
      { logicalId: 'D', type: 'AWS::Batch::JobDefinition', action: 'replace', because: ['Tags'] },
    ]);
    assert.deepEqual(failingChanges(changes), []);
  });

  it('updates tags of roles, repositories, log groups, buckets and parameters in place', () => {
    const tagged = (value: string) =>
      template({
        R: { Type: 'AWS::IAM::Role', Properties: { RoleName: 'r', Tags: [{ Key: 'a', Value: value }] } },
        E: {
          Type: 'AWS::ECR::Repository',
          Properties: { RepositoryName: 'e', Tags: [{ Key: 'a', Value: value }] },
        },
        L: {
          Type: 'AWS::Logs::LogGroup',
          Properties: { LogGroupName: 'l', Tags: [{ Key: 'a', Value: value }] },
        },
        B: { Type: 'AWS::S3::Bucket', Properties: { BucketName: 'b', Tags: [{ Key: 'a', Value: value }] } },
        P: { Type: 'AWS::SSM::Parameter', Properties: { Name: 'p', Type: 'String', Tags: { a: value } } },
      });
    assert.deepEqual(changesBetween(tagged('1'), tagged('2')), []);
  });

  it('sees a fixed name moving to another logical id as a conflict', () => {
    const group = { Type: 'AWS::Logs::LogGroup', Properties: { LogGroupName: '/x' } };
    const changes = changesBetween(template({ Old: group }), template({ New: group }));
    assert.deepEqual(changes, [
      {
        logicalId: 'New',
        type: 'AWS::Logs::LogGroup',
        action: 'replace',
        because: ['logical id Old -> New'],
        conflictingName: '/x',
      },
    ]);
  });

  it('refuses to guess about a resource type it has no rules for', () => {
    const odd = (v: string) => template({ X: { Type: 'AWS::Odd::Thing', Properties: { V: v } } });
    assert.throws(() => changesBetween(odd('1'), odd('2')), /no createOnlyProperties for AWS::Odd::Thing/);
  });
});

describe('redeployConflicts (a new stack where `cdk destroy` kept resources)', () => {
  const group = (props: Props, deletionPolicy?: string) => ({
    Type: 'AWS::Logs::LogGroup',
    Properties: props,
    ...(deletionPolicy ? { DeletionPolicy: deletionPolicy } : {}),
  });
  const retained = template({ G: group({ LogGroupName: '/x' }, 'Retain') });

  it('finds what destroy keeps: retained resources, with their fixed names', () => {
    const kept = keptOnDelete(
      template({
        G: group({ LogGroupName: '/x' }, 'Retain'),
        B: { Type: 'AWS::S3::Bucket', Properties: {}, DeletionPolicy: 'Retain' } as never,
        D: group({ LogGroupName: '/deleted' }, 'Delete'),
      }),
    );
    assert.deepEqual(kept, [
      { logicalId: 'G', type: 'AWS::Logs::LogGroup', name: '/x' },
      { logicalId: 'B', type: 'AWS::S3::Bucket' },
    ]);
  });

  it('fails on a kept name unless CloudFormation imports it', () => {
    const kept = keptOnDelete(retained);
    assert.deepEqual(redeployConflicts(retained, kept, { importExisting: false }), [
      { logicalId: 'G', type: 'AWS::Logs::LogGroup', name: '/x', reason: 'already exists' },
    ]);
    assert.deepEqual(redeployConflicts(retained, kept, { importExisting: true }), []);
  });

  it('cannot import a resource whose DeletionPolicy is Delete, or a type without a name identifier', () => {
    const kept = keptOnDelete(retained);
    assert.deepEqual(
      redeployConflicts(template({ G: group({ LogGroupName: '/x' }) }), kept, { importExisting: true }).map(
        (c) => c.reason,
      ),
      ['already exists, and importing it needs DeletionPolicy Retain'],
    );
    const queue = (extra: Record<string, unknown>) =>
      template({ Q: { Type: 'AWS::Batch::JobQueue', Properties: { JobQueueName: 'q' }, ...extra } as never });
    assert.deepEqual(
      redeployConflicts(queue({}), keptOnDelete(queue({ DeletionPolicy: 'Retain' })), {
        importExisting: true,
      }).map((c) => c.reason),
      ['already exists, and AWS::Batch::JobQueue cannot be imported by name'],
    );
  });

  it('cannot import under a name the template computes', () => {
    const computed = template({
      G: group({ LogGroupName: { 'Fn::Join': ['', ['/', 'x']] } }, 'Retain'),
    });
    assert.deepEqual(
      redeployConflicts(computed, keptOnDelete(retained), { importExisting: true }).map((c) => c.reason),
      ['may already exist, and a name that is not a static string cannot be imported'],
    );
  });

  it('ignores kept resources with generated names: the new stack makes new ones', () => {
    const bucket = template({
      B: { Type: 'AWS::S3::Bucket', Properties: {}, DeletionPolicy: 'Retain' } as never,
    });
    assert.deepEqual(redeployConflicts(bucket, keptOnDelete(bucket), { importExisting: false }), []);
  });
});
