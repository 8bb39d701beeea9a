/**
 * The operator policy: exactly the actions the geobatch CLI sends, derived from the AWS SDK
 * commands lib/ imports, so a new call without a permission fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { platformStacks } from './helpers.js';
import { catalog } from '../../jobs/catalog.js';

const libDir = new URL('../../lib/', import.meta.url).pathname;
/** The CLI's code: its commands, the runners and the storage they use. */
const cliDirs = ['cli', 'runners', 'storage', 'config'];

/** IAM actions per SDK command (Service Authorization Reference, "API operations" tables). */
const actionsOf: Record<string, readonly string[]> = {
  'client-batch:SubmitJobCommand': ['batch:SubmitJob', 'batch:TagResource'],
  'client-batch:RegisterJobDefinitionCommand': [
    'batch:RegisterJobDefinition',
    'batch:TagResource',
    'iam:PassRole',
  ],
  'client-batch:DescribeJobsCommand': ['batch:DescribeJobs'],
  'client-batch:ListJobsCommand': ['batch:ListJobs'],
  'client-batch:TerminateJobCommand': ['batch:TerminateJob'],
  'client-batch:DescribeJobQueuesCommand': ['batch:DescribeJobQueues'],
  'client-batch:DescribeJobDefinitionsCommand': ['batch:DescribeJobDefinitions'],
  'client-s3:GetObjectCommand': ['s3:GetObject'],
  'client-s3:HeadObjectCommand': ['s3:GetObject'],
  'client-s3:PutObjectCommand': ['s3:PutObject'],
  'client-s3:DeleteObjectCommand': ['s3:DeleteObject'],
  'client-s3:ListObjectsV2Command': ['s3:ListBucket'],
  'client-s3:HeadBucketCommand': ['s3:ListBucket'],
  // CreateMultipartUpload, UploadPart, CompleteMultipartUpload are s3:PutObject
  'lib-storage:Upload': ['s3:PutObject', 's3:AbortMultipartUpload'],
  'client-cloudwatch-logs:GetLogEventsCommand': ['logs:GetLogEvents'],
  'client-ssm:GetParameterCommand': ['ssm:GetParameter'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

/** `<package>:<name>` of every value (not type-only) import of a Command or Upload from @aws-sdk/*. */
function sdkCalls(): Map<string, string[]> {
  const calls = new Map<string, string[]>();
  const importPattern = /import\s+(type\s+)?\{([^}]*)\}\s*from\s*'@aws-sdk\/([^']+)'/g;
  for (const file of cliDirs.flatMap((d) => sourceFiles(join(libDir, d)))) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(importPattern)) {
      if (match[1]) continue;
      for (const raw of match[2]!.split(',')) {
        const name = raw.trim();
        if (name === '' || name.startsWith('type ')) continue;
        if (!/Command$/.test(name) && name !== 'Upload') continue;
        const key = `${match[3]}:${name}`;
        calls.set(key, [...(calls.get(key) ?? []), file.slice(libDir.length)]);
      }
    }
  }
  return calls;
}

type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
};

function devPolicy(context: Record<string, unknown> = {}) {
  const { stacks } = platformStacks(context);
  const stack = stacks.find((s) => s.config.name === 'dev')!;
  const template = Template.fromStack(stack);
  const policies = template.findResources('AWS::IAM::ManagedPolicy', {
    Properties: { ManagedPolicyName: 'geobatch-dev-operator' },
  });
  const [policy] = Object.values(policies) as {
    Properties: { PolicyDocument: { Statement: Statement[] } };
  }[];
  assert.ok(policy, 'no AWS::IAM::ManagedPolicy geobatch-dev-operator in the dev stack');
  return { stack, template, statements: policy.Properties.PolicyDocument.Statement };
}

/** Resources as a sorted list: CDK may sort a statement's resources. */
const resourceSet = (resource: unknown) =>
  (Array.isArray(resource) ? resource : [resource]).map((r) => JSON.stringify(r)).sort();
const actionList = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const bySid = (statements: Statement[], sid: string) => {
  const found = statements.find((s) => s.Sid === sid);
  assert.ok(found, `no statement ${sid}`);
  return found;
};

describe('operator policy', () => {
  it('grants every AWS action the CLI sends, derived from its @aws-sdk imports', () => {
    const calls = sdkCalls();
    // the scan must find the calls it is there to check
    for (const known of ['client-batch:SubmitJobCommand', 'client-s3:PutObjectCommand', 'lib-storage:Upload'])
      assert.ok(calls.has(known), `scan of lib/ found no ${known}`);
    const unmapped = [...calls.keys()].filter((call) => !(call in actionsOf));
    assert.deepEqual(unmapped, [], `SDK calls with no IAM action in actionsOf: ${unmapped.join(', ')}`);
    const { statements } = devPolicy();
    const granted = new Set(statements.filter((s) => s.Effect === 'Allow').flatMap(actionList));
    const needed = [...new Set([...calls.keys()].flatMap((call) => actionsOf[call]!))].sort();
    const missing = needed.filter((action) => !granted.has(action));
    assert.deepEqual(missing, [], `operator policy lacks: ${missing.join(', ')}`);
    // and nothing beyond what the CLI needs
    const extra = [...granted].filter((action) => !needed.includes(action)).sort();
    assert.deepEqual(extra, [], `operator policy grants actions the CLI never sends: ${extra.join(', ')}`);
  });

  it('scopes each statement to the environment', () => {
    const { stack, statements } = devPolicy();
    const sub = (s: string) => ({
      'Fn::Join': [
        '',
        s
          .split(/(\{[^}]+\})/)
          .filter(Boolean)
          .map((p) => (p.startsWith('{') ? { Ref: p.slice(1, -1) } : p)),
      ],
    });
    // each job definition by name: 'geobatch-dev-*' would also match an environment 'dev-2'
    const definitions = Object.keys(catalog).map((job) =>
      sub(`arn:{AWS::Partition}:batch:{AWS::Region}:{AWS::AccountId}:job-definition/geobatch-dev-${job}:*`),
    );
    const jobs = sub('arn:{AWS::Partition}:batch:{AWS::Region}:{AWS::AccountId}:job/*');
    const submit = bySid(statements, 'SubmitToTheEnvironmentsQueues');
    assert.deepEqual(submit.Action, 'batch:SubmitJob');
    const queues = [stack.compute.cpu.jobQueue, stack.compute.gpu.jobQueue].map((q) =>
      stack.resolve(q.jobQueueArn),
    );
    assert.deepEqual(resourceSet(submit.Resource), resourceSet([...queues, ...definitions]));
    assert.deepEqual(
      resourceSet(bySid(statements, 'RegisterImageRevisions').Resource),
      resourceSet(definitions),
    );
    assert.deepEqual(
      resourceSet(bySid(statements, 'TagOnCreate').Resource),
      resourceSet([...definitions, jobs]),
    );
    const terminate = bySid(statements, 'TerminateGeobatchJobs');
    assert.deepEqual(terminate.Resource, jobs);
    assert.deepEqual(terminate.Condition, { Null: { 'aws:ResourceTag/geobatch:run': 'false' } });
    const describe = bySid(statements, 'DescribeBatch');
    assert.equal(describe.Resource, '*');
    assert.deepEqual(actionList(describe).sort(), [
      'batch:DescribeJobDefinitions',
      'batch:DescribeJobQueues',
      'batch:DescribeJobs',
      'batch:ListJobs',
    ]);
    // '*' is given to those four only
    const star = statements.filter((s) => JSON.stringify(s.Resource).includes('"*"'));
    assert.deepEqual(
      star.map((s) => s.Sid),
      ['DescribeBatch'],
    );
    assert.deepEqual(bySid(statements, 'ReadJobLogs').Resource, stack.resolve(stack.logGroup.logGroupArn));
    assert.deepEqual(
      bySid(statements, 'ReadTheDescriptor').Resource,
      stack.resolve(stack.descriptorParameter.parameter.parameterArn),
    );
  });

  it('passes exactly the job and execution roles, to ECS tasks only', () => {
    const { stack, statements } = devPolicy();
    const pass = bySid(statements, 'PassTheJobDefinitionsRoles');
    assert.deepEqual(pass.Condition, { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    const roles = [stack.jobRole.role, stack.jobDefinitions.executionRole].map((r) =>
      stack.resolve(r.roleArn),
    );
    assert.deepEqual(resourceSet(pass.Resource), resourceSet(roles));
  });

  it('writes where a run may live (runs, processed, extraReadWrite) and only reads raw and extraRead', () => {
    const { stack, statements } = devPolicy({
      'geobatch:environments': {
        dev: { buckets: { extraRead: ['shared-imagery'], extraReadWrite: ['team-scratch'] } },
      },
    });
    const objects = (name: string) => ({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:s3:::${name}/*`]],
    });
    const arnOf = (b: { bucket: { bucketArn: string } }) => stack.resolve(b.bucket.bucketArn);
    const objectsOf = (b: { bucket: { arnForObjects(k: string): string } }) =>
      stack.resolve(b.bucket.arnForObjects('*'));
    assert.deepEqual(
      resourceSet(bySid(statements, 'RunObjects').Resource),
      resourceSet([
        objectsOf(stack.buckets.runs),
        objectsOf(stack.buckets.processed),
        objects('team-scratch'),
      ]),
    );
    assert.deepEqual(actionList(bySid(statements, 'RunObjects')).sort(), [
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetObject',
      's3:PutObject',
    ]);
    assert.deepEqual(
      resourceSet(bySid(statements, 'ReadInputs').Resource),
      resourceSet([objectsOf(stack.buckets.raw), objects('shared-imagery')]),
    );
    assert.deepEqual(
      resourceSet(bySid(statements, 'ListBuckets').Resource),
      resourceSet([
        arnOf(stack.buckets.runs),
        arnOf(stack.buckets.raw),
        arnOf(stack.buckets.processed),
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::shared-imagery']] },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::team-scratch']] },
      ]),
    );
  });

  it('passes cdk-nag with extra buckets: each wildcard acknowledged for what it covers', () => {
    const { app } = platformStacks({
      'geobatch:environments': {
        dev: { buckets: { extraRead: ['shared-imagery'], extraReadWrite: ['team-scratch'] } },
      },
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    assert.doesNotThrow(() => app.synth());
  });

  it('is output as OperatorPolicyArn', () => {
    const { template } = devPolicy();
    template.hasOutput('OperatorPolicyArn', {});
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', { ManagedPolicyName: 'geobatch-dev-operator' });
  });
});
