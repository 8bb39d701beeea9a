/**
 * The platform configuration of one environment. The schema's input type is what a user may
 * write (most fields optional); its output is the resolved configuration the CDK app reads.
 */
import { z } from 'zod';
import { cpuInstanceTypeProblem, gpuInstanceTypeProblem, isInstanceTypeName } from './instance-types.js';

/** CloudWatch Logs accepts only these retention periods (days). */
export const logRetentionDays = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Leaves room under Batch's 50-tag limit for the tags the runner adds to each job. */
export const maxCostTags = 40;

export const environmentNamePattern = /^[a-z][a-z0-9-]{0,19}$/;
export const environmentNameRule =
  'must be 1-20 lowercase letters, digits or hyphens, starting with a letter';

const environmentName = z.string().regex(environmentNamePattern, environmentNameRule);

const instanceTypeName = z
  .string()
  .refine(isInstanceTypeName, 'must be an EC2 instance family (m5) or type (m5.2xlarge)');

const prefix = z
  .string()
  .regex(/^([A-Za-z0-9!_.*'()-]+\/)+$/, "must be a key prefix like 'tmp/': no leading '/', ending with '/'");

const bucketName = z
  .string()
  .regex(
    /^(?!xn--)(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    'must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens',
  );

const tagKey = z
  .string()
  .regex(
    /^(?!aws:)[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u,
    "must be 1-128 tag characters and not start with 'aws:'",
  );

const tagValue = z
  .string()
  .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u, 'must be at most 256 tag characters');

interface ComputeClassDefaults {
  readonly types: string[];
  readonly maxvCpus: number;
  readonly runnableTimeoutMinutes: number;
  readonly sharedMemoryMiB: number | undefined;
}

function computeClassSchema(kind: 'cpu' | 'gpu', defaults: ComputeClassDefaults) {
  const problemOf = kind === 'gpu' ? gpuInstanceTypeProblem : cpuInstanceTypeProblem;
  return z
    .object({
      /** Families (`m5`) or types (`g5.2xlarge`) Batch may launch. */
      instanceTypes: z
        .array(instanceTypeName)
        .min(1)
        .default(defaults.types)
        .superRefine((types, ctx) => {
          types.forEach((type, index) => {
            const problem = isInstanceTypeName(type) ? problemOf(type) : undefined;
            if (problem) ctx.addIssue({ code: 'custom', path: [index], message: problem, input: type });
          });
        }),
      /** vCPUs kept running when idle; 0 means nothing runs (and nothing is billed) at idle. */
      minvCpus: z.number().int().min(0).default(0),
      maxvCpus: z.number().int().min(1).max(100_000).default(defaults.maxvCpus),
      spot: z.boolean().default(true),
      /** A second, on-demand compute environment behind the spot one in the queue. */
      onDemandFallback: z.boolean().default(true),
      /** vCPU cap of the on-demand fallback. @default maxvCpus */
      onDemandMaxvCpus: z.number().int().min(1).max(100_000).optional(),
      /** Root EBS volume of each instance: container layers and every job's scratch space. */
      rootVolumeGiB: z.number().int().min(30).max(16_384).default(500),
      /** Jobs that stay RUNNABLE this long (no capacity) are cancelled with the reason. */
      runnableTimeoutMinutes: z.number().int().min(10).max(1440).default(defaults.runnableTimeoutMinutes),
      /** /dev/shm for jobs of this queue whose catalog entry does not set it (MiB). */
      sharedMemoryMiB: z
        .number()
        .int()
        .min(64)
        .optional()
        .transform((v) => v ?? defaults.sharedMemoryMiB),
      /** Allows multi-node parallel jobs: on-demand only, one instance type, a cluster placement group. */
      multiNode: z.boolean().default(false),
    })
    .strict()
    .superRefine((c, ctx) => {
      if (c.minvCpus > c.maxvCpus) {
        ctx.addIssue({
          code: 'custom',
          path: ['minvCpus'],
          input: c.minvCpus,
          message: `must be <= compute.${kind}.maxvCpus (${c.maxvCpus})`,
        });
      }
      if (c.multiNode && c.spot) {
        ctx.addIssue({
          code: 'custom',
          path: ['spot'],
          input: c.spot,
          message: `conflicts with compute.${kind}.multiNode = true: multi-node parallel jobs cannot run on Spot; set spot to false`,
        });
      }
      if (c.multiNode && (c.instanceTypes.length !== 1 || !c.instanceTypes[0]?.includes('.'))) {
        ctx.addIssue({
          code: 'custom',
          path: ['instanceTypes'],
          input: c.instanceTypes,
          message: 'must be exactly one instance type with a size (e.g. g5.12xlarge) when multiNode is true',
        });
      }
    });
}

export const environmentConfigSchema = z
  .object({
    name: environmentName,
    /** 12-digit AWS account. @default the account of the deploying credentials (environment-agnostic) */
    account: z
      .string()
      .regex(/^\d{12}$/, 'must be a 12-digit AWS account id')
      .optional(),
    /** @default the region of the deploying credentials (environment-agnostic) */
    region: z
      .string()
      .regex(/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/, 'must be an AWS region like eu-west-1')
      .optional(),
    network: z
      .object({
        /**
         * `private`: instances in private subnets behind NAT gateways (billed while they exist).
         * `public`: instances in public subnets with public IPs and no inbound rules, no NAT.
         */
        layout: z.enum(['private', 'public']).default('private'),
        maxAzs: z.number().int().min(1).max(6).default(2),
        natGateways: z.number().int().min(1).max(6).default(1),
        cidr: z
          .string()
          .regex(/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/, 'must be an IPv4 CIDR block from /16 to /24')
          .default('10.64.0.0/16'),
      })
      .strict()
      .prefault({}),
    compute: z
      .object({
        cpu: computeClassSchema('cpu', {
          types: ['m5', 'm5a', 'm6i'],
          maxvCpus: 256,
          runnableTimeoutMinutes: 60,
          sharedMemoryMiB: undefined,
        }).prefault({}),
        gpu: computeClassSchema('gpu', {
          types: ['g5', 'g6'],
          maxvCpus: 64,
          runnableTimeoutMinutes: 120,
          sharedMemoryMiB: 8192,
        }).prefault({}),
      })
      .strict()
      .prefault({}),
    jobs: z
      .object({
        /** Attempts per task: spot reclaims are retried, every other failure exits. */
        retryAttempts: z.number().int().min(1).max(10).default(3),
      })
      .strict()
      .prefault({}),
    logs: z
      .object({
        retentionDays: z
          .number()
          .int()
          .refine(
            (d) => (logRetentionDays as readonly number[]).includes(d),
            `must be one of the CloudWatch Logs retention periods: ${logRetentionDays.join(', ')}`,
          )
          .default(30),
      })
      .strict()
      .prefault({}),
    /** Tag of both job images the job definitions use (CI deploys with the git sha). */
    imageTag: z
      .string()
      .regex(
        /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/,
        'must be a Docker tag: letters, digits, _ . -, at most 128',
      )
      .default('unpublished'),
    ecr: z
      .object({
        /** Images kept per repository; older ones expire. */
        keepImages: z.number().int().min(1).max(10_000).default(30),
      })
      .strict()
      .prefault({}),
    buckets: z
      .object({
        /** Fixed bucket names; by default CloudFormation generates unique ones. */
        rawName: bucketName.optional(),
        processedName: bucketName.optional(),
        runsName: bucketName.optional(),
        /** Where runs live in the runs bucket. */
        runsPrefix: prefix.default('runs/'),
        /** Prefixes of the processed and runs buckets whose objects expire (scratch space). */
        scratchPrefixes: z.array(prefix).default(['tmp/']),
        scratchExpirationDays: z.number().int().min(1).max(3650).default(7),
        /** Old versions in the versioned buckets (raw, runs) expire after this. */
        noncurrentVersionExpirationDays: z.number().int().min(1).max(3650).default(30),
        /** Buckets outside the environment (by name) that jobs may read, e.g. a shared imagery archive. */
        extraRead: z.array(bucketName).default([]),
        /** Buckets outside the environment (by name) that jobs may read and write (inputs, outputs, runs). */
        extraReadWrite: z.array(bucketName).default([]),
      })
      .strict()
      .superRefine((b, ctx) => {
        const seen = new Set<string>();
        for (const [list, names] of [
          ['extraRead', b.extraRead],
          ['extraReadWrite', b.extraReadWrite],
        ] as const) {
          names.forEach((bucket, index) => {
            if (seen.has(bucket)) {
              ctx.addIssue({
                code: 'custom',
                path: [list, index],
                input: bucket,
                message:
                  'is listed twice in buckets.extraRead / buckets.extraReadWrite: list each bucket once',
              });
            }
            seen.add(bucket);
          });
        }
      })
      .prefault({}),
    /**
     * Cost-allocation tags on every resource (and, propagated, on every job), on top of
     * `project: geobatch` and `environment: <name>` (which these may override).
     */
    tags: z.record(tagKey, tagValue).default({}),
    ci: z
      .object({
        /**
         * `owner/name` of the GitHub repository whose workflows may push images (and deploy).
         * @default none: no CI role is created
         */
        githubRepository: z
          .string()
          .regex(/^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/, "must be 'owner/name'")
          .optional(),
        /**
         * OIDC subject claims (after `repo:<owner/name>:`) allowed to assume the role, e.g.
         * `environment:prod` (a GitHub environment) or `ref:refs/heads/main`.
         * @default ['environment:<name>']: the GitHub environment named like this one
         */
        subjects: z
          .array(
            z
              .string()
              .regex(
                /^(ref:refs\/(heads|tags)\/[^*?\s]+|environment:[^*?\s]+|pull_request)$/,
                "must be 'ref:refs/heads/<branch>', 'ref:refs/tags/<tag>', 'environment:<name>' or 'pull_request' (no wildcards)",
              ),
          )
          .min(1)
          .optional(),
        /**
         * The GitHub OIDC provider is one per account. By default the CI role trusts the one the
         * account has; `true` creates it in this stack, kept when the stack is deleted, so that
         * destroying this environment never breaks another one's CI.
         */
        createOidcProvider: z.boolean().default(false),
        /** Lets the role assume the CDK bootstrap roles, so CI can `cdk deploy` a new image tag. */
        allowDeploy: z.boolean().default(true),
        cdkQualifier: z
          .string()
          .regex(/^[a-z0-9]{1,10}$/, 'must be 1-10 lowercase letters or digits')
          .default('hnb659fds'),
      })
      .strict()
      .prefault({}),
    /** Keep ECR repositories and log groups when the stack is deleted. Buckets are always kept. */
    retainOnDelete: z.boolean().default(true),
  })
  .strict()
  .transform((c) => ({ ...c, ci: { ...c.ci, subjects: c.ci.subjects ?? [`environment:${c.name}`] } }))
  .superRefine((c, ctx) => {
    if (c.account !== undefined && c.region === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        input: c.region,
        message: `is required when account is set (account = "${c.account}")`,
      });
    }
    if (c.network.maxAzs > 2 && (c.account === undefined || c.region === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['network', 'maxAzs'],
        input: c.network.maxAzs,
        message:
          'must be <= 2 unless account and region are set (an environment-agnostic stack knows only 2 availability zones)',
      });
    }
    if (c.network.layout === 'private' && c.network.natGateways > c.network.maxAzs) {
      ctx.addIssue({
        code: 'custom',
        path: ['network', 'natGateways'],
        input: c.network.natGateways,
        message: `must be <= network.maxAzs (${c.network.maxAzs}): one NAT gateway per availability zone at most`,
      });
    }
    const tagCount = Object.keys(costTags(c.name, c.tags)).length;
    if (tagCount > maxCostTags) {
      ctx.addIssue({
        code: 'custom',
        path: ['tags'],
        input: c.tags,
        message: `must bring the total to at most ${maxCostTags} tags with project and environment, not ${tagCount} (Batch fails jobs with more than 50 tags in total)`,
      });
    }
  });

/** The tags every resource of an environment carries. */
export function costTags(
  environment: string,
  tags: Readonly<Record<string, string>>,
): Record<string, string> {
  return { project: 'geobatch', environment, ...tags };
}

/** What a user may write for one environment (cdk.json context, or a default below). */
export type EnvironmentConfigInput = z.input<typeof environmentConfigSchema>;

/** The resolved configuration of one environment: every default applied, every rule checked. */
export type EnvironmentConfig = z.output<typeof environmentConfigSchema>;

export type ComputeClassConfig = EnvironmentConfig['compute']['cpu'];

/** Overrides as written in cdk.json: any subset of the input, nested. */
export type EnvironmentOverrides = DeepPartial<Omit<EnvironmentConfigInput, 'name'>>;

export type DeepPartial<T> = T extends readonly (infer _U)[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;
