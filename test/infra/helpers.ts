/**
 * Shared by the infra tests: apps built with the context of cdk.json (the same feature flags
 * `cdk synth` uses), and a small evaluator of CloudFormation intrinsics to read what a
 * template will resolve to.
 */
import { App, Stack, type CfnElement } from 'aws-cdk-lib';
import { readFileSync } from 'node:fs';
import type { CatalogEntry } from '../../jobs/catalog.js';
import { addPlatformStacks, type PlatformStack } from '../../lib/infra/index.js';

interface CdkJson {
  readonly app: string;
  readonly context: Record<string, unknown>;
}

export const cdkJson = JSON.parse(
  readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'),
) as CdkJson;

/** An app with cdk.json's context plus `extra`; stack traces off (they only slow synthesis). */
export function newApp(extra: Record<string, unknown> = {}): App {
  return new App({ context: { ...cdkJson.context, 'aws:cdk:disable-stack-trace': true, ...extra } });
}

/** A bare stack in a fresh app, for construct tests. */
export function newStack(): Stack {
  return new Stack(newApp(), 'Test');
}

/** A CI repository for both environments, so the CI role and OIDC provider are synthesised. */
export const ciEnvironments = {
  dev: { ci: { githubRepository: 'example-org/geobatch' } },
  prod: { ci: { githubRepository: 'example-org/geobatch' } },
};

/** The platform stacks of the app `bin/app.ts` builds, for the given context. */
export function platformStacks(
  context: Record<string, unknown>,
  catalog?: Readonly<Record<string, CatalogEntry>>,
): { app: App; stacks: PlatformStack[] } {
  const app = newApp(context);
  return { app, stacks: addPlatformStacks(app, catalog) };
}

export function logicalIdOf(element: CfnElement): string {
  return Stack.of(element).getLogicalId(element);
}

export interface TemplateJson {
  readonly Resources: Record<
    string,
    {
      readonly Type: string;
      readonly Properties?: Record<string, unknown>;
      readonly DeletionPolicy?: string;
      readonly UpdateReplacePolicy?: string;
    }
  >;
}

export const fakeAccount = '123456789012';
export const fakeRegion = 'eu-west-1';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Evaluates Ref, Fn::GetAtt, Fn::Join, Fn::Select and Fn::Split the way CloudFormation would
 * for a deployment to `fakeAccount` in `fakeRegion`, inventing the physical names it generates.
 */
export function evaluate(value: unknown, template: TemplateJson): unknown {
  if (Array.isArray(value)) return value.map((v) => evaluate(v, template));
  if (!isRecord(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return Object.fromEntries(keys.map((k) => [k, evaluate(value[k], template)]));
  const [key] = keys as [string];
  const arg = value[key];
  switch (key) {
    case 'Ref':
      return ref(String(arg), template);
    case 'Fn::GetAtt': {
      const [id, attribute] = arg as [string, string];
      return getAtt(id, attribute, template);
    }
    case 'Fn::Join': {
      const [sep, parts] = arg as [string, unknown[]];
      return parts.map((p) => String(evaluate(p, template))).join(sep);
    }
    case 'Fn::Select': {
      const [index, list] = arg as [number, unknown];
      return (evaluate(list, template) as unknown[])[index];
    }
    case 'Fn::Split': {
      const [sep, source] = arg as [string, unknown];
      return String(evaluate(source, template)).split(sep);
    }
    default:
      return { [key]: evaluate(arg, template) };
  }
}

function resource(id: string, template: TemplateJson) {
  const r = template.Resources[id];
  if (!r) throw new Error(`no resource ${id} in the template`);
  return { type: r.Type, props: r.Properties ?? {} };
}

function ref(id: string, template: TemplateJson): string {
  if (id === 'AWS::Region') return fakeRegion;
  if (id === 'AWS::AccountId') return fakeAccount;
  if (id === 'AWS::Partition') return 'aws';
  if (id === 'AWS::URLSuffix') return 'amazonaws.com';
  const { type, props } = resource(id, template);
  switch (type) {
    case 'AWS::S3::Bucket':
      return String(props.BucketName ?? `stack-${id.toLowerCase()}-1x2y3z`);
    case 'AWS::ECR::Repository':
      return String(props.RepositoryName);
    case 'AWS::Logs::LogGroup':
      return String(props.LogGroupName);
    case 'AWS::SSM::Parameter':
      return String(props.Name);
    case 'AWS::Batch::JobDefinition':
      return `arn:aws:batch:${fakeRegion}:${fakeAccount}:job-definition/${String(props.JobDefinitionName)}:1`;
    case 'AWS::Batch::JobQueue':
      return `arn:aws:batch:${fakeRegion}:${fakeAccount}:job-queue/${String(props.JobQueueName)}`;
    default:
      return `${id}-physical-id`;
  }
}

function getAtt(id: string, attribute: string, template: TemplateJson): string {
  const { type, props } = resource(id, template);
  if (type === 'AWS::ECR::Repository' && attribute === 'Arn') {
    return `arn:aws:ecr:${fakeRegion}:${fakeAccount}:repository/${String(props.RepositoryName)}`;
  }
  if (type === 'AWS::Batch::JobQueue' && attribute === 'JobQueueArn') return ref(id, template);
  if (type === 'AWS::S3::Bucket' && attribute === 'Arn') return `arn:aws:s3:::${ref(id, template)}`;
  return `${id}.${attribute}`;
}
