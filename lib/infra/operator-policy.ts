import { Arn, ArnFormat, CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';

export interface OperatorPolicyProps {
  /** `geobatch-<env>`: the policy's name prefix and the job definitions' name prefix. */
  readonly namePrefix: string;
  /** ARNs of the environment's job queues. */
  readonly jobQueueArns: readonly string[];
  /**
   * Names of the environment's job definitions (`<prefix>-<job>`), each named on its own: a
   * pattern `<prefix>-*` would also match another environment whose name extends this one's
   * (`dev` and `dev-2`).
   */
  readonly jobDefinitionNames: readonly string[];
  /** The roles the job definitions name (job role, execution role): the runner passes them on registration. */
  readonly passRoles: readonly iam.IRole[];
  /**
   * Buckets a run may live in (runs, processed, the extra read-write buckets: the jobs' writable
   * buckets): the CLI writes plans and batch.json, reads markers and log copies, deletes there.
   */
  readonly readWriteBuckets: readonly s3.IBucket[];
  /** Buckets the CLI only lists and reads inputs in (raw, the extra read buckets). */
  readonly readBuckets: readonly s3.IBucket[];
  readonly logGroup: logs.ILogGroup;
  readonly descriptorParameter: ssm.IStringParameter;
}

/**
 * What the geobatch CLI needs to run pipelines on this environment's Batch queues from a
 * laptop, as a customer managed policy `<prefix>-operator` to attach to a user, role or
 * Identity Center permission set. Every action the CLI sends is listed in
 * test/infra/operator-policy.test.ts, derived from its imports.
 */
export class OperatorPolicy extends Construct {
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: OperatorPolicyProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const batchArn = (resource: string, resourceName: string) =>
      Arn.format(
        { service: 'batch', resource, resourceName, arnFormat: ArnFormat.SLASH_RESOURCE_NAME },
        stack,
      );
    // any revision: --image-tag registers new ones
    const definitions = props.jobDefinitionNames.map((name) => batchArn('job-definition', `${name}:*`));
    const jobs = batchArn('job', '*');

    const statements = [
      new iam.PolicyStatement({
        sid: 'SubmitToTheEnvironmentsQueues',
        actions: ['batch:SubmitJob'],
        resources: [...props.jobQueueArns, ...definitions],
      }),
      new iam.PolicyStatement({
        sid: 'RegisterImageRevisions',
        actions: ['batch:RegisterJobDefinition'],
        resources: definitions,
      }),
      // SubmitJob and RegisterJobDefinition with tags are also authorised as TagResource
      new iam.PolicyStatement({
        sid: 'TagOnCreate',
        actions: ['batch:TagResource'],
        resources: [...definitions, jobs],
      }),
      new iam.PolicyStatement({
        sid: 'TerminateGeobatchJobs',
        actions: ['batch:TerminateJob'],
        resources: [jobs],
        conditions: { Null: { 'aws:ResourceTag/geobatch:run': 'false' } },
      }),
      new iam.PolicyStatement({
        sid: 'DescribeBatch',
        actions: [
          'batch:DescribeJobDefinitions',
          'batch:DescribeJobQueues',
          'batch:DescribeJobs',
          'batch:ListJobs',
        ],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'PassTheJobDefinitionsRoles',
        actions: ['iam:PassRole'],
        resources: props.passRoles.map((role) => role.roleArn),
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
      new iam.PolicyStatement({
        sid: 'RunObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: props.readWriteBuckets.map((bucket) => bucket.arnForObjects('*')),
      }),
      new iam.PolicyStatement({
        sid: 'ReadInputs',
        actions: ['s3:GetObject'],
        resources: props.readBuckets.map((bucket) => bucket.arnForObjects('*')),
      }),
      new iam.PolicyStatement({
        sid: 'ListBuckets',
        actions: ['s3:ListBucket'],
        resources: [...props.readWriteBuckets, ...props.readBuckets].map((bucket) => bucket.bucketArn),
      }),
      new iam.PolicyStatement({
        sid: 'ReadJobLogs',
        actions: ['logs:GetLogEvents'],
        // the log group's ARN ends in ':*', which covers its streams
        resources: [props.logGroup.logGroupArn],
      }),
      new iam.PolicyStatement({
        sid: 'ReadTheDescriptor',
        actions: ['ssm:GetParameter'],
        resources: [props.descriptorParameter.parameterArn],
      }),
    ];
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      managedPolicyName: `${props.namePrefix}-operator`,
      description: `geobatch CLI: run pipelines on ${props.namePrefix}'s Batch queues`,
      statements,
    });
    const acknowledge = (resource: string, reason: string) =>
      Validations.of(this.policy).acknowledge({
        id: `AwsSolutions::AwsSolutions-IAM5[Resource::${resource}]`,
        reason,
      });
    acknowledge(
      '*',
      'batch:DescribeJobs, ListJobs, DescribeJobQueues and DescribeJobDefinitions support no resource-level ' +
        'permissions (Service Authorization Reference); they only read.',
    );
    const batchPattern = (resource: string) =>
      `arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:${resource}`;
    for (const name of props.jobDefinitionNames) {
      acknowledge(
        batchPattern(`job-definition/${name}:*`),
        `Every revision of the job definition ${name}: --image-tag registers new revisions, so no fixed ` +
          'revision can be named.',
      );
    }
    acknowledge(
      batchPattern('job/*'),
      'Job ids are generated by SubmitJob; TerminateJob is limited to jobs tagged geobatch:run, and tagging ' +
        'to the jobs and job definitions being created.',
    );
    const buckets = [
      ...props.readWriteBuckets.map((bucket) => ({
        bucket,
        reason:
          'A run lives in any bucket the jobs may write (the pipeline output decides where): the CLI writes plans ' +
          'and batch.json and reads markers and log copies there.',
      })),
      ...props.readBuckets.map((bucket) => ({
        bucket,
        reason:
          'The CLI reads pipeline inputs, found by prefix or glob, anywhere in a bucket the jobs may read.',
      })),
    ];
    buckets.forEach(({ bucket, reason }) => {
      const cfn = bucket.node.defaultChild;
      if (cfn instanceof CfnElement) acknowledge(`<${stack.getLogicalId(cfn)}.Arn>/*`, reason);
      else if (!Token.isUnresolved(bucket.bucketName))
        acknowledge(`arn:<AWS::Partition>:s3:::${bucket.bucketName}/*`, reason);
    });
  }
}
