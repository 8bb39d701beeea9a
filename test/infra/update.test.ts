/**
 * Deploying an environment again with other settings: synthesise it twice, before and after
 * the change a user makes, and check what CloudFormation would replace (replacement.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { ciEnvironments, platformStacks, type TemplateJson } from './helpers.js';
import {
  changesBetween,
  failingChanges,
  keptOnDelete,
  redeployConflicts,
  type ResourceChange,
} from './replacement.js';

function templateOf(env: 'dev' | 'prod', settings: Record<string, unknown> = {}): TemplateJson {
  const { stacks } = platformStacks({
    env,
    'geobatch:environments': { ...ciEnvironments, [env]: { ...ciEnvironments[env], ...settings } },
  });
  return Template.fromStack(stacks[0]!).toJSON() as TemplateJson;
}

const summary = (changes: readonly ResourceChange[]) =>
  changes.map((c) => `${c.action} ${c.type} ${c.logicalId} (${c.because.join(', ')})`);

for (const env of ['dev', 'prod'] as const) {
  describe(`updating ${env}`, () => {
    it('adds and changes a cost tag without replacing a job queue or a compute environment', () => {
      const plain = templateOf(env);
      const tagged = templateOf(env, { tags: { 'cost-center': 'vision' } });
      const retagged = templateOf(env, { tags: { 'cost-center': 'maps' } });
      for (const [before, after] of [
        [plain, tagged],
        [tagged, retagged],
      ] as const) {
        const changes = changesBetween(before, after);
        assert.deepEqual(summary(failingChanges(changes)), []);
        const replaced = changes.filter((c) => c.action === 'replace').map((c) => c.type);
        // job definitions take tags only at registration: a new revision under the same name
        assert.deepEqual([...new Set(replaced)], ['AWS::Batch::JobDefinition']);
      }
    });

    it('retags a multi-node environment without replacing its placement group (create-only tags too)', () => {
      const multiNode = {
        compute: { gpu: { spot: false, multiNode: true, instanceTypes: ['p4d.24xlarge'] } },
      };
      const changes = changesBetween(
        templateOf(env, multiNode),
        templateOf(env, { ...multiNode, tags: { 'cost-center': 'vision' } }),
      );
      assert.deepEqual(summary(failingChanges(changes)), []);
      assert.deepEqual(
        changes.filter((c) => c.type === 'AWS::EC2::PlacementGroup'),
        [],
      );
    });

    it('changes instance types as an infrastructure update of the compute environments, replacing nothing', () => {
      const before = templateOf(env);
      const after = templateOf(env, {
        compute: { cpu: { instanceTypes: ['m6i', 'c6i'] }, gpu: { instanceTypes: ['g6'] } },
      });
      const changes = changesBetween(before, after);
      assert.deepEqual(summary(failingChanges(changes)), []);
      assert.deepEqual(
        changes.map((c) => [c.type, c.action, c.because]),
        Array.from({ length: 4 }, () => [
          'AWS::Batch::ComputeEnvironment',
          'infrastructure-update',
          ['ComputeResources.InstanceTypes'],
        ]),
      );
    });

    it('changes vCPU caps and root volumes without replacing anything', () => {
      const before = templateOf(env);
      const after = templateOf(env, { compute: { gpu: { maxvCpus: 32, rootVolumeGiB: 300 } } });
      const changes = changesBetween(before, after);
      assert.deepEqual(summary(failingChanges(changes)), []);
      assert.deepEqual(
        changes.filter((c) => c.action === 'replace'),
        [],
      );
    });
  });
}

describe('deploying again after cdk destroy', () => {
  const conflicts = (env: 'dev' | 'prod', settings: Record<string, unknown>, importExisting: boolean) => {
    const template = templateOf(env, settings);
    return redeployConflicts(template, keptOnDelete(template), { importExisting }).map(
      (c) => `${c.type} ${c.name}: ${c.reason}`,
    );
  };

  it('prod keeps its log group, repositories and CI role, whose names a plain deploy collides with', () => {
    assert.deepEqual(conflicts('prod', {}, false), [
      'AWS::IAM::Role geobatch-prod-ci: already exists',
      'AWS::ECR::Repository geobatch/prod/cpu: already exists',
      'AWS::ECR::Repository geobatch/prod/gpu: already exists',
      'AWS::Logs::LogGroup /geobatch/prod/jobs: already exists',
    ]);
  });

  it('prod adopts all of them with cdk deploy --import-existing-resources, fixed bucket names too', () => {
    assert.deepEqual(conflicts('prod', {}, true), []);
    const named = {
      buckets: {
        rawName: 'example-geobatch-raw',
        processedName: 'example-geobatch-processed',
        runsName: 'example-geobatch-runs',
      },
    };
    assert.deepEqual(
      conflicts('prod', named, false).filter((c) => c.startsWith('AWS::S3::Bucket')),
      [
        'AWS::S3::Bucket example-geobatch-processed: already exists',
        'AWS::S3::Bucket example-geobatch-raw: already exists',
        'AWS::S3::Bucket example-geobatch-runs: already exists',
      ],
    );
    assert.deepEqual(conflicts('prod', named, true), []);
  });

  it('dev keeps buckets with generated names and its CI role, which the import adopts', () => {
    const template = templateOf('dev');
    assert.deepEqual(
      keptOnDelete(template)
        .map((k) => [k.type, k.name])
        .sort(),
      [
        ['AWS::IAM::Role', 'geobatch-dev-ci'],
        ...Array.from({ length: 4 }, () => ['AWS::S3::Bucket', undefined]),
      ],
    );
    assert.deepEqual(conflicts('dev', {}, false), ['AWS::IAM::Role geobatch-dev-ci: already exists']);
    assert.deepEqual(conflicts('dev', {}, true), []);
  });
});
