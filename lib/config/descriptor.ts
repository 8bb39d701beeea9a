/**
 * The platform descriptor: what the CLI needs to find an environment's resources, published by
 * the CDK stack as one SSM parameter per environment and read back by the Batch runner. This
 * module is shared by both sides, so it stays light (zod only, no CDK, no AWS SDK).
 */
import { z } from 'zod';
import { ConfigError, problemsFromZod } from './errors.js';
import type { EnvironmentConfig } from './schema.js';

export const platformDescriptorVersion = 1;

/** `/geobatch/<env>/platform`. */
export function platformDescriptorParameterName(env: string): string {
  return `/geobatch/${env}/platform`;
}

const name = z.string().min(1);
const arn = (service: string) =>
  z.string().regex(new RegExp(`^arn:aws[a-z-]*:${service}:`), `must be an ARN of the ${service} service`);
const queueName = z.enum(['cpu', 'gpu']);

const namedQueue = z.object({ name, arn: arn('batch') }).strict();
const repository = z
  .object({
    name,
    /** `<account>.dkr.ecr.<region>.amazonaws.com/<name>`: append `:<tag>` to pull. */
    uri: z
      .string()
      .regex(/^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?\/\S+$/, 'must be an ECR repository URI'),
  })
  .strict();

export const platformDescriptorSchema = z
  .object({
    version: z.literal(platformDescriptorVersion),
    env: name,
    region: z
      .string()
      .regex(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/, 'must be an AWS region like eu-west-1'),
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
    buckets: z
      .object({
        raw: z.object({ name }).strict(),
        processed: z.object({ name }).strict(),
        runs: z.object({ name, prefix: z.string() }).strict(),
        /** Buckets outside the environment the jobs may also read (absent: none). */
        extraRead: z.array(name).optional(),
        /** Buckets outside the environment the jobs may also read and write (absent: none). */
        extraReadWrite: z.array(name).optional(),
      })
      .strict(),
    queues: z.object({ cpu: namedQueue, gpu: namedQueue }).strict(),
    /** One entry per catalog job: the job definition (name and the revision deployed) and its queue. */
    jobDefinitions: z.record(name, z.object({ name, arn: arn('batch'), queue: queueName }).strict()),
    repositories: z.object({ cpu: repository, gpu: repository }).strict(),
    /** The tag the deployed job definitions use. */
    imageTag: name,
    logGroup: z.object({ name }).strict(),
  })
  .strict();

export type PlatformDescriptor = z.output<typeof platformDescriptorSchema>;

/**
 * The deployed resources the descriptor names. Values may be CDK tokens at synthesis time;
 * CloudFormation resolves them when it writes the parameter.
 */
export interface PlatformResources {
  readonly region: string;
  readonly account: string;
  readonly buckets: { readonly raw: string; readonly processed: string; readonly runs: string };
  readonly queues: Readonly<Record<'cpu' | 'gpu', { readonly name: string; readonly arn: string }>>;
  readonly jobDefinitions: Readonly<
    Record<string, { readonly name: string; readonly arn: string; readonly queue: 'cpu' | 'gpu' }>
  >;
  readonly repositories: Readonly<Record<'cpu' | 'gpu', { readonly name: string; readonly uri: string }>>;
  readonly logGroupName: string;
}

/** The descriptor of one environment, from its configuration and the resources deployed for it. */
export function buildPlatformDescriptor(
  config: EnvironmentConfig,
  resources: PlatformResources,
): PlatformDescriptor {
  return {
    version: platformDescriptorVersion,
    env: config.name,
    region: resources.region,
    account: resources.account,
    buckets: {
      raw: { name: resources.buckets.raw },
      processed: { name: resources.buckets.processed },
      runs: { name: resources.buckets.runs, prefix: config.buckets.runsPrefix },
      // left out when empty, so that a CLI from before they existed still reads the descriptor
      ...(config.buckets.extraRead.length ? { extraRead: [...config.buckets.extraRead] } : {}),
      ...(config.buckets.extraReadWrite.length ? { extraReadWrite: [...config.buckets.extraReadWrite] } : {}),
    },
    queues: {
      cpu: { name: resources.queues.cpu.name, arn: resources.queues.cpu.arn },
      gpu: { name: resources.queues.gpu.name, arn: resources.queues.gpu.arn },
    },
    jobDefinitions: Object.fromEntries(
      Object.entries(resources.jobDefinitions).map(([job, d]) => [
        job,
        { name: d.name, arn: d.arn, queue: d.queue },
      ]),
    ),
    repositories: {
      cpu: { name: resources.repositories.cpu.name, uri: resources.repositories.cpu.uri },
      gpu: { name: resources.repositories.gpu.name, uri: resources.repositories.gpu.uri },
    },
    imageTag: config.imageTag,
    logGroup: { name: resources.logGroupName },
  };
}

/**
 * Parses the parameter's value as read from SSM. Throws a ConfigError naming the parameter,
 * the field, the value and the rule; `env` must match the environment the caller asked for.
 */
export function parsePlatformDescriptor(text: string, env: string): PlatformDescriptor {
  const where = `platform descriptor ${platformDescriptorParameterName(env)}`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError([{ where, field: '', value: text.slice(0, 80), rule: 'must be JSON' }]);
  }
  const version = (json as { version?: unknown } | null)?.version;
  if (version !== platformDescriptorVersion) {
    throw new ConfigError([
      {
        where,
        field: 'version',
        value: version,
        rule: `must be ${platformDescriptorVersion}: redeploy the environment with this version of geobatch (or upgrade geobatch)`,
      },
    ]);
  }
  const result = platformDescriptorSchema.safeParse(json, { reportInput: true });
  if (!result.success) throw new ConfigError(problemsFromZod(where, result.error.issues, json));
  if (result.data.env !== env) {
    throw new ConfigError([{ where, field: 'env', value: result.data.env, rule: `must be "${env}"` }]);
  }
  return result.data;
}
