/**
 * Buckets outside the environment that jobs may use (`buckets.extraRead`, `buckets.extraReadWrite`):
 * validated by the configuration, granted to the job role, published in the platform descriptor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import { ConfigError, parsePlatformDescriptor, resolveEnvironment } from '../../lib/config/index.js';
import { evaluate, logicalIdOf, platformStacks, type TemplateJson } from './helpers.js';

interface Statement {
  readonly Action: string | string[];
  readonly Resource: unknown;
}

function synthDev(buckets: Record<string, unknown>) {
  const { stacks } = platformStacks({
    env: 'dev',
    'geobatch:environments': { dev: { buckets } },
    imageTag: 'abc123',
  });
  const stack = stacks[0]!;
  const template = Template.fromStack(stack);
  return { stack, template, json: template.toJSON() as TemplateJson };
}

function jobRoleStatements(synth: ReturnType<typeof synthDev>): Statement[] {
  const roleId = logicalIdOf(synth.stack.jobRole.role.node.defaultChild as Parameters<typeof logicalIdOf>[0]);
  return Object.values(synth.template.findResources('AWS::IAM::Policy'))
    .map(
      (r) => (r as { Properties: { Roles: unknown; PolicyDocument: { Statement: Statement[] } } }).Properties,
    )
    .filter((p) => JSON.stringify(p.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap((p) => p.PolicyDocument.Statement);
}

const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** The actions granted on an ARN (CDK merges statements, so each may name several resources). */
function actionsOn(statements: Statement[], json: TemplateJson, arn: string): string[] {
  return statements
    .filter((s) => list(evaluate(s.Resource, json)).includes(arn))
    .flatMap((s) => list(s.Action))
    .sort();
}

describe('extra buckets', () => {
  it('GIVEN extraRead and extraReadWrite THEN the job role reads the first and writes the second', () => {
    // GIVEN / WHEN
    const synth = synthDev({ extraRead: ['shared-archive'], extraReadWrite: ['team-outputs'] });
    // THEN
    const statements = jobRoleStatements(synth);
    assert.deepEqual(actionsOn(statements, synth.json, 'arn:aws:s3:::shared-archive/*'), ['s3:GetObject']);
    assert.deepEqual(actionsOn(statements, synth.json, 'arn:aws:s3:::team-outputs/*'), [
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetObject',
      's3:ListMultipartUploadParts',
      's3:PutObject',
    ]);
    for (const bucket of ['shared-archive', 'team-outputs']) {
      assert.deepEqual(actionsOn(statements, synth.json, `arn:aws:s3:::${bucket}`), [
        's3:GetBucketLocation',
        's3:ListBucket',
      ]);
    }
  });

  it('GIVEN extra buckets THEN the descriptor names them, and its size bound counts them', () => {
    const names = Array.from({ length: 3 }, (_, i) => `shared-archive-${i}`);
    const synth = synthDev({ extraRead: names, extraReadWrite: ['team-outputs'] });
    const parameter = Object.values(synth.template.findResources('AWS::SSM::Parameter'))[0] as {
      Properties: { Value: unknown };
    };
    const value = String(evaluate(parameter.Properties.Value, synth.json));
    const descriptor = parsePlatformDescriptor(value, 'dev');
    assert.deepEqual(descriptor.buckets.extraRead, names);
    assert.deepEqual(descriptor.buckets.extraReadWrite, ['team-outputs']);
    assert.ok(synth.stack.descriptorParameter.estimatedSize >= value.length);
    const without = synthDev({});
    assert.ok(
      synth.stack.descriptorParameter.estimatedSize >=
        without.stack.descriptorParameter.estimatedSize + names.join('","').length,
    );
  });

  it('GIVEN no extra buckets THEN the descriptor has no extra fields (older CLIs still read it)', () => {
    const synth = synthDev({});
    const parameter = Object.values(synth.template.findResources('AWS::SSM::Parameter'))[0] as {
      Properties: { Value: unknown };
    };
    const descriptor = JSON.parse(String(evaluate(parameter.Properties.Value, synth.json))) as {
      buckets: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(descriptor.buckets).sort(), ['processed', 'raw', 'runs']);
  });

  it('bad bucket names and buckets listed twice are configuration errors naming the field', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { extraRead: ['Not_A_Bucket'] },
        /buckets\.extraRead\[0\].*"Not_A_Bucket".*must be a valid S3 bucket name/,
      ],
      [
        { extraRead: ['shared'], extraReadWrite: ['shared'] },
        /buckets\.extraReadWrite\[0\].*"shared".*is listed twice/,
      ],
    ];
    for (const [buckets, message] of cases) {
      assert.throws(
        () => resolveEnvironment('dev', { buckets }),
        (e: Error) => e instanceof ConfigError && message.test(e.message),
      );
    }
    assert.deepEqual(resolveEnvironment('dev').buckets.extraRead, []);
  });
});
