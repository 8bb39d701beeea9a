import { Duration, Size, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import { LogDrivers } from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { CatalogEntry } from '../../jobs/catalog.js';
import { invalidProp } from './invalid-prop.js';

/** What a job definition needs to know about the queue its job runs on. */
type Queue = CatalogEntry['queue'];

export interface QueueCapacity {
  /** The most vCPUs one job can get on this queue. */
  readonly maxvCpus: number;
  /** Whether its instances have GPUs. */
  readonly gpu: boolean;
}

export interface CatalogJobDefinitionsProps {
  /** Job name -> resources: one job definition per entry. */
  readonly catalog: Readonly<Record<string, CatalogEntry>>;
  /** Job definitions are named `<namePrefix>-<job>`. */
  readonly namePrefix: string;
  /** The image of each queue's jobs (CPU jobs the CPU image, GPU jobs the GPU image). */
  readonly images: Readonly<Record<Queue, ecs.ContainerImage>>;
  /** Capacity of each queue, to reject jobs that could never be placed. */
  readonly queues: Readonly<Record<Queue, QueueCapacity>>;
  /** The role job containers run as. */
  readonly jobRole: iam.IRole;
  /** Where the job logs go (one stream per task, prefixed with the job name). */
  readonly logGroup: logs.ILogGroup;
  /**
   * Attempts per task; spot reclaims (`Host EC2*`) are retried, anything else exits.
   * @default 3
   */
  readonly retryAttempts?: number;
  /**
   * /dev/shm of jobs whose catalog entry does not set it, per queue (MiB); capped at half the
   * job's memory.
   * @default - Docker's default (64 MiB)
   */
  readonly defaultSharedMemoryMiB?: Partial<Readonly<Record<Queue, number>>>;
  /**
   * Environment variables of every job container.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Default command; the Batch runner overrides it per stage.
   * @default ['geobatch-job', '--help']
   */
  readonly command?: readonly string[];
}

export interface CatalogJobDefinition {
  readonly jobDefinition: batch.EcsJobDefinition;
  readonly queue: Queue;
}

const retryReasonSpot = 'Host EC2*';

/**
 * One Batch job definition per entry of the job catalog: its vCPUs, memory, GPUs, timeout and
 * shared memory; retries on spot reclaims only; tags propagated to the tasks; an init process
 * so signals reach the job and zombies are reaped.
 */
export class CatalogJobDefinitions extends Construct {
  readonly definitions: Readonly<Record<string, CatalogJobDefinition>>;
  /**
   * The role the ECS agent pulls images and writes logs with (not the jobs' role). On EC2 it
   * is not the only one that may: the instance role's AWS-managed policy allows both on any
   * repository and log group.
   */
  readonly executionRole: iam.Role;

  constructor(scope: Construct, id: string, props: CatalogJobDefinitionsProps) {
    super(scope, id);
    const retryAttempts = props.retryAttempts ?? 3;
    if (!Number.isInteger(retryAttempts) || retryAttempts < 1 || retryAttempts > 10) {
      throw invalidProp(
        'CatalogJobDefinitions',
        id,
        'retryAttempts',
        retryAttempts,
        'must be an integer from 1 to 10',
      );
    }
    if (Object.keys(props.catalog).length === 0) {
      throw invalidProp('CatalogJobDefinitions', id, 'catalog', props.catalog, 'must have at least one job');
    }
    for (const [name, entry] of Object.entries(props.catalog)) validateEntry(id, props, name, entry);

    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Batch (not the jobs): pulls the job images and writes the job logs',
    });
    Validations.of(this.executionRole).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      reason:
        'ecr:GetAuthorizationToken supports no resource-level permissions (it returns a registry login token); ' +
        'image layers are pulled only from the repositories of the images its jobs use, named in the other statements.',
    });

    const definitions: Record<string, CatalogJobDefinition> = {};
    for (const [name, entry] of Object.entries(props.catalog)) {
      const sharedMemoryMiB = sharedMemoryOf(entry, props.defaultSharedMemoryMiB?.[entry.queue]);
      const container = new batch.EcsEc2ContainerDefinition(this, `${name}Container`, {
        image: props.images[entry.queue],
        cpu: entry.vcpus,
        memory: Size.mebibytes(entry.memoryMiB),
        ...(entry.gpus > 0 ? { gpu: entry.gpus } : {}),
        command: [...(props.command ?? ['geobatch-job', '--help'])],
        environment: { ...props.environment, GEOBATCH_JOB: name },
        jobRole: props.jobRole,
        executionRole: this.executionRole,
        logging: LogDrivers.awsLogs({ logGroup: props.logGroup, streamPrefix: name }),
        linuxParameters: new batch.LinuxParameters(this, `${name}LinuxParameters`, {
          initProcessEnabled: true,
          ...(sharedMemoryMiB !== undefined ? { sharedMemorySize: Size.mebibytes(sharedMemoryMiB) } : {}),
        }),
      });
      const jobDefinition = new batch.EcsJobDefinition(this, name, {
        jobDefinitionName: `${props.namePrefix}-${name}`,
        container,
        timeout: Duration.seconds(entry.timeoutSeconds),
        retryAttempts,
        retryStrategies: [
          batch.RetryStrategy.of(
            batch.Action.RETRY,
            batch.Reason.custom({ onStatusReason: retryReasonSpot }),
          ),
          batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onReason: '*' })),
        ],
        propagateTags: true,
      });
      definitions[name] = { jobDefinition, queue: entry.queue };
      // retry strategies can still be added after construction, so they are checked at synthesis
      this.node.addValidation({ validate: () => retryProblems(id, name, jobDefinition.retryStrategies) });
    }
    this.definitions = definitions;
  }
}

function validateEntry(
  id: string,
  props: CatalogJobDefinitionsProps,
  name: string,
  entry: CatalogEntry,
): void {
  const fail = (field: string, value: unknown, rule: string): never => {
    throw invalidProp('CatalogJobDefinitions', id, `catalog.${name}.${field}`, value, rule);
  };
  const definitionName = `${props.namePrefix}-${name}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(definitionName)) {
    fail(
      'name',
      definitionName,
      'a job definition name must be <= 128 of [A-Za-z0-9_-], starting alphanumeric',
    );
  }
  const queue = props.queues[entry.queue];
  if (!Number.isInteger(entry.vcpus) || entry.vcpus < 1)
    fail('vcpus', entry.vcpus, 'must be a positive integer on EC2');
  if (entry.vcpus > queue.maxvCpus) {
    fail(
      'vcpus',
      entry.vcpus,
      `must be <= ${queue.maxvCpus}, the vCPU cap of the '${entry.queue}' queue, or the job never starts`,
    );
  }
  if (!Number.isInteger(entry.memoryMiB) || entry.memoryMiB < 4)
    fail('memoryMiB', entry.memoryMiB, 'must be an integer >= 4');
  if (!Number.isInteger(entry.gpus) || entry.gpus < 0) fail('gpus', entry.gpus, 'must be an integer >= 0');
  if (entry.gpus > 0 && !queue.gpu) {
    fail(
      'gpus',
      entry.gpus,
      `the '${entry.queue}' queue has no GPU instances; put GPU jobs on the 'gpu' queue`,
    );
  }
  if (entry.timeoutSeconds < 60)
    fail('timeoutSeconds', entry.timeoutSeconds, "must be >= 60 (Batch's minimum)");
  if (entry.sharedMemoryMiB !== undefined && entry.sharedMemoryMiB >= entry.memoryMiB) {
    fail(
      'sharedMemoryMiB',
      entry.sharedMemoryMiB,
      `must be < memoryMiB = ${entry.memoryMiB}: /dev/shm counts against the job's memory`,
    );
  }
}

/** Batch takes at most 5 rules, and retries when none matches: the last must exit on everything. */
function retryProblems(id: string, job: string, strategies: readonly batch.RetryStrategy[]): string[] {
  const problems: string[] = [];
  if (strategies.length > 5) {
    problems.push(
      `CatalogJobDefinitions '${id}' job '${job}' has ${strategies.length} retry rules: Batch allows at most 5`,
    );
  }
  const last = strategies[strategies.length - 1];
  const exitsOnAll = last?.action === batch.Action.EXIT && 'onReason' in last.on && last.on.onReason === '*';
  if (!exitsOnAll) {
    problems.push(
      `CatalogJobDefinitions '${id}' job '${job}' must end its retry rules with EXIT on reason '*', or Batch retries every failure`,
    );
  }
  return problems;
}

function sharedMemoryOf(entry: CatalogEntry, queueDefault: number | undefined): number | undefined {
  if (entry.sharedMemoryMiB !== undefined) return entry.sharedMemoryMiB;
  if (queueDefault === undefined) return undefined;
  return Math.min(queueDefault, Math.floor(entry.memoryMiB / 2));
}
