import {
  Annotations,
  Aws,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Size,
  Stack,
  Tags,
  type StackProps,
} from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { catalog as jobCatalog, type CatalogEntry } from '../../jobs/catalog.js';
import { buildPlatformDescriptor, type PlatformDescriptor } from '../config/descriptor.js';
import { costTags, type EnvironmentConfig } from '../config/schema.js';
import { BatchCompute } from './batch-compute.js';
import { CiPublisher } from './ci-publisher.js';
import { ImageRepositories } from './image-repositories.js';
import { CatalogJobDefinitions } from './job-definitions.js';
import { JobRole } from './job-role.js';
import { Network } from './network.js';
import { OperatorPolicy } from './operator-policy.js';
import { PlatformDescriptorParameter } from './platform-descriptor-parameter.js';
import { SecureBucket } from './secure-bucket.js';

export interface PlatformStackProps extends Omit<StackProps, 'env'> {
  /** The resolved configuration of the environment this stack provisions. */
  readonly config: EnvironmentConfig;
  /**
   * The jobs to make job definitions for.
   * @default - the job catalog (jobs/catalog.ts)
   */
  readonly catalog?: Readonly<Record<string, CatalogEntry>>;
}

/**
 * Types whose `Tags` CloudFormation can only set at creation: a changed cost tag would replace
 * them, and a job queue with its fixed name cannot be replaced (the new one collides with the
 * old), nor a compute environment without ending its jobs. They carry no cost themselves; the
 * instances and volumes they launch are tagged through the launch templates.
 * @see https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-batch-jobqueue.html#cfn-batch-jobqueue-tags
 */
export const tagsReplaceResourceTypes = [
  'AWS::Batch::JobQueue',
  'AWS::Batch::ComputeEnvironment',
  'AWS::EC2::PlacementGroup',
] as const;

/** `geobatch-<env>`: the stack of one environment. */
export function platformStackName(env: string): string {
  return `geobatch-${env}`;
}

/** `geobatch-<env>-ci`: the role GitHub Actions assumes (a fixed name, so workflows can build its ARN). */
export function ciRoleName(env: string): string {
  return `geobatch-${env}-ci`;
}

/**
 * Everything one geobatch environment needs: buckets, network, Batch compute and queues, job
 * images, one job definition per catalog job, logs, the CI role and the platform descriptor.
 * Environment-agnostic unless the configuration names an account and region.
 */
export class PlatformStack extends Stack {
  readonly config: EnvironmentConfig;
  readonly buckets: {
    readonly raw: SecureBucket;
    readonly processed: SecureBucket;
    readonly runs: SecureBucket;
  };
  readonly accessLogs: SecureBucket;
  readonly network: Network;
  readonly compute: { readonly cpu: BatchCompute; readonly gpu: BatchCompute };
  readonly images: ImageRepositories;
  readonly logGroup: logs.LogGroup;
  readonly jobRole: JobRole;
  readonly jobDefinitions: CatalogJobDefinitions;
  readonly descriptor: PlatformDescriptor;
  readonly descriptorParameter: PlatformDescriptorParameter;
  readonly ciPublisher?: CiPublisher;
  readonly operatorPolicy: OperatorPolicy;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    const { config } = props;
    super(scope, id, {
      ...props,
      ...(config.region
        ? { env: { region: config.region, ...(config.account ? { account: config.account } : {}) } }
        : {}),
      description:
        props.description ?? `geobatch environment '${config.name}': storage, Batch compute, job images`,
      terminationProtection: props.terminationProtection ?? config.retainOnDelete,
    });
    this.config = config;
    const env = config.name;
    const prefix = `geobatch-${env}`;
    const disposable = config.retainOnDelete ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    for (const [key, value] of Object.entries(costTags(env, config.tags))) {
      Tags.of(this).add(key, value, { excludeResourceTypes: [...tagsReplaceResourceTypes] });
    }

    this.accessLogs = new SecureBucket(this, 'AccessLogs', {
      expiration: Duration.days(config.logs.retentionDays),
      receivesAccessLogs: true,
    });
    const logged = (name: string) => ({
      serverAccessLogsBucket: this.accessLogs.bucket,
      serverAccessLogsPrefix: `s3-access-logs/${name}/`,
    });
    const scratch = {
      scratchPrefixes: config.buckets.scratchPrefixes,
      scratchExpiration: Duration.days(config.buckets.scratchExpirationDays),
    };
    this.buckets = {
      // source imagery and labels: irreplaceable, so versioned
      raw: new SecureBucket(this, 'Raw', {
        ...(config.buckets.rawName ? { bucketName: config.buckets.rawName } : {}),
        versioned: true,
        noncurrentVersionExpiration: Duration.days(config.buckets.noncurrentVersionExpirationDays),
        ...logged('raw'),
      }),
      // chips and intermediate rasters: made again from raw by rerunning a pipeline
      processed: new SecureBucket(this, 'Processed', {
        ...(config.buckets.processedName ? { bucketName: config.buckets.processedName } : {}),
        ...scratch,
        ...logged('processed'),
      }),
      // plans, markers, metrics and trained models: GPU hours to make again, so versioned
      runs: new SecureBucket(this, 'Runs', {
        ...(config.buckets.runsName ? { bucketName: config.buckets.runsName } : {}),
        versioned: true,
        noncurrentVersionExpiration: Duration.days(config.buckets.noncurrentVersionExpirationDays),
        ...scratch,
        ...logged('runs'),
      }),
    };

    this.network = new Network(this, 'Network', {
      layout: config.network.layout,
      maxAzs: config.network.maxAzs,
      ...(config.network.layout === 'private' ? { natGateways: config.network.natGateways } : {}),
      cidr: config.network.cidr,
      flowLogsBucket: this.accessLogs.bucket,
    });

    const catalog = props.catalog ?? jobCatalog;
    const computeFor = (kind: 'cpu' | 'gpu'): BatchCompute => {
      const c = config.compute[kind];
      const longestJobSeconds = Math.max(
        0,
        ...Object.values(catalog)
          .filter((entry) => entry.queue === kind)
          .map((entry) => entry.timeoutSeconds),
      );
      return new BatchCompute(this, kind === 'cpu' ? 'CpuCompute' : 'GpuCompute', {
        vpc: this.network.vpc,
        subnets: this.network.computeSubnets,
        gpu: kind === 'gpu',
        instanceTypes: c.instanceTypes,
        minvCpus: c.minvCpus,
        maxvCpus: c.maxvCpus,
        spot: c.spot,
        onDemandFallback: c.onDemandFallback,
        ...(c.onDemandMaxvCpus !== undefined ? { onDemandMaxvCpus: c.onDemandMaxvCpus } : {}),
        rootVolumeSize: Size.gibibytes(c.rootVolumeGiB),
        runnableTimeout: Duration.minutes(c.runnableTimeoutMinutes),
        multiNode: c.multiNode,
        // an infrastructure update waits for running jobs as long as any of them may run
        updateTimeout: Duration.minutes(Math.min(7200, Math.max(30, Math.ceil(longestJobSeconds / 60)))),
        jobQueueName: `${prefix}-${kind}`,
      });
    };
    this.compute = { cpu: computeFor('cpu'), gpu: computeFor('gpu') };

    this.images = new ImageRepositories(this, 'Images', {
      namePrefix: `geobatch/${env}`,
      keepImages: config.ecr.keepImages,
      destroyOnDelete: !config.retainOnDelete,
    });

    this.logGroup = new logs.LogGroup(this, 'JobLogs', {
      logGroupName: `/geobatch/${env}/jobs`,
      retention: config.logs.retentionDays as logs.RetentionDays,
      removalPolicy: disposable,
    });

    const extra = (kind: 'Read' | 'ReadWrite', names: readonly string[]) =>
      names.map((name, i) => ({ bucket: s3.Bucket.fromBucketName(this, `Extra${kind}Bucket${i}`, name) }));
    const extraRead = extra('Read', config.buckets.extraRead);
    const extraReadWrite = extra('ReadWrite', config.buckets.extraReadWrite);
    this.jobRole = new JobRole(this, 'JobRole', {
      read: [{ bucket: this.buckets.raw.bucket }, ...extraRead],
      readWrite: [
        { bucket: this.buckets.processed.bucket },
        { bucket: this.buckets.runs.bucket },
        ...extraReadWrite,
      ],
    });

    const images = this.images.repositories;
    this.jobDefinitions = new CatalogJobDefinitions(this, 'JobDefinitions', {
      catalog,
      namePrefix: prefix,
      images: {
        cpu: ecs.ContainerImage.fromEcrRepository(images.cpu, config.imageTag),
        gpu: ecs.ContainerImage.fromEcrRepository(images.gpu, config.imageTag),
      },
      queues: { cpu: this.compute.cpu, gpu: this.compute.gpu },
      jobRole: this.jobRole.role,
      logGroup: this.logGroup,
      retryAttempts: config.jobs.retryAttempts,
      defaultSharedMemoryMiB: {
        ...(config.compute.cpu.sharedMemoryMiB !== undefined
          ? { cpu: config.compute.cpu.sharedMemoryMiB }
          : {}),
        ...(config.compute.gpu.sharedMemoryMiB !== undefined
          ? { gpu: config.compute.gpu.sharedMemoryMiB }
          : {}),
      },
      environment: { GEOBATCH_ENV: env, AWS_REGION: Aws.REGION },
    });

    const queues = { cpu: this.compute.cpu.jobQueue, gpu: this.compute.gpu.jobQueue };
    this.descriptor = buildPlatformDescriptor(config, {
      region: this.region,
      account: this.account,
      buckets: {
        raw: this.buckets.raw.bucket.bucketName,
        processed: this.buckets.processed.bucket.bucketName,
        runs: this.buckets.runs.bucket.bucketName,
      },
      queues: {
        cpu: { name: `${prefix}-cpu`, arn: queues.cpu.jobQueueArn },
        gpu: { name: `${prefix}-gpu`, arn: queues.gpu.jobQueueArn },
      },
      jobDefinitions: Object.fromEntries(
        Object.entries(this.jobDefinitions.definitions).map(([job, d]) => [
          job,
          { name: `${prefix}-${job}`, arn: d.jobDefinition.jobDefinitionArn, queue: d.queue },
        ]),
      ),
      repositories: {
        cpu: { name: images.cpu.repositoryName, uri: images.cpu.repositoryUri },
        gpu: { name: images.gpu.repositoryName, uri: images.gpu.repositoryUri },
      },
      logGroupName: this.logGroup.logGroupName,
    });
    // the same descriptor with every value CloudFormation fills in at its longest, to size it
    const partition = 'aws-iso-b';
    const region = 'ap-southeast-99';
    const account = '123456789012';
    const arnOf = (resource: string) => `arn:${partition}:batch:${region}:${account}:${resource}`;
    const longestBucket = 'b'.repeat(63);
    const sizingDescriptor = buildPlatformDescriptor(config, {
      region,
      account,
      buckets: { raw: longestBucket, processed: longestBucket, runs: longestBucket },
      queues: {
        cpu: { name: `${prefix}-cpu`, arn: arnOf(`job-queue/${prefix}-cpu`) },
        gpu: { name: `${prefix}-gpu`, arn: arnOf(`job-queue/${prefix}-gpu`) },
      },
      jobDefinitions: Object.fromEntries(
        Object.entries(this.jobDefinitions.definitions).map(([job, d]) => [
          job,
          { name: `${prefix}-${job}`, arn: arnOf(`job-definition/${prefix}-${job}:9999999`), queue: d.queue },
        ]),
      ),
      repositories: Object.fromEntries(
        (['cpu', 'gpu'] as const).map((kind) => {
          const name = `geobatch/${env}/${kind}`;
          return [kind, { name, uri: `${account}.dkr.ecr.${region}.amazonaws.com.cn/${name}` }];
        }),
      ) as Record<'cpu' | 'gpu', { name: string; uri: string }>,
      logGroupName: `/geobatch/${env}/jobs`,
    });
    this.descriptorParameter = new PlatformDescriptorParameter(this, 'Descriptor', {
      descriptor: this.descriptor,
      sizingDescriptor,
    });

    this.operatorPolicy = new OperatorPolicy(this, 'OperatorPolicy', {
      namePrefix: prefix,
      jobQueueArns: [queues.cpu.jobQueueArn, queues.gpu.jobQueueArn],
      jobDefinitionNames: Object.keys(this.jobDefinitions.definitions).map((job) => `${prefix}-${job}`),
      passRoles: [this.jobRole.role, this.jobDefinitions.executionRole],
      readWriteBuckets: [
        this.buckets.runs.bucket,
        this.buckets.processed.bucket,
        ...extraReadWrite.map((access) => access.bucket),
      ],
      readBuckets: [this.buckets.raw.bucket, ...extraRead.map((access) => access.bucket)],
      logGroup: this.logGroup,
      descriptorParameter: this.descriptorParameter.parameter,
    });
    new CfnOutput(this, 'OperatorPolicyArn', {
      value: this.operatorPolicy.policy.managedPolicyArn,
      description: 'Managed policy with what the geobatch CLI needs to run pipelines here',
    });

    if (config.ci.githubRepository) {
      this.ciPublisher = new CiPublisher(this, 'CiPublisher', {
        githubRepository: config.ci.githubRepository,
        subjects: config.ci.subjects,
        createOidcProvider: config.ci.createOidcProvider,
        repositories: [images.cpu, images.gpu],
        readableParameters: [this.descriptorParameter.parameter],
        allowDeploy: config.ci.allowDeploy,
        cdkQualifier: config.ci.cdkQualifier,
        roleName: ciRoleName(env),
      });
      new CfnOutput(this, 'CiRoleArn', {
        value: this.ciPublisher.role.roleArn,
        description: 'Role the GitHub workflows assume',
      });
    } else {
      Annotations.of(this).addInfo(
        `No CI role: set 'ci.githubRepository' of environment '${env}' (context 'geobatch:environments') to let GitHub Actions publish images.`,
      );
    }
    if (config.imageTag === 'unpublished') {
      Annotations.of(this).addInfo(
        `The job definitions of '${env}' point at image tag 'unpublished'; deploy with -c imageTag=<git sha> once CI has pushed images.`,
      );
    }

    new CfnOutput(this, 'DescriptorParameterName', {
      value: this.descriptorParameter.parameter.parameterName,
      description: 'SSM parameter the geobatch CLI reads to find this environment',
    });
  }
}
