import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { invalidProp } from './invalid-prop.js';

export type NetworkLayout = 'private' | 'public';

export interface NetworkProps {
  /**
   * `private`: compute in private subnets, reaching the internet through NAT gateways.
   * `public`: compute in public subnets with public IPs and no inbound rules; no NAT to pay for.
   * @default 'private'
   */
  readonly layout?: NetworkLayout;
  /**
   * Availability zones used (environment-agnostic stacks can use at most 2).
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * NAT gateways of the private layout (each is billed by the hour, used or not).
   * @default 1
   */
  readonly natGateways?: number;
  /**
   * IPv4 range of the VPC.
   * @default '10.64.0.0/16'
   */
  readonly cidr?: string;
  /** Bucket receiving the VPC flow logs. */
  readonly flowLogsBucket: s3.IBucket;
  /**
   * Key prefix of the flow logs in `flowLogsBucket`.
   * @default 'vpc-flow-logs/'
   */
  readonly flowLogsPrefix?: string;
}

/**
 * The VPC the Batch instances run in: one subnet tier for compute (private or public), an S3
 * gateway endpoint so data traffic to S3 skips NAT and the internet, and flow logs.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** The subnets Batch launches instances into. */
  readonly computeSubnets: ec2.SubnetSelection;
  readonly layout: NetworkLayout;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const layout = props.layout ?? 'private';
    const maxAzs = props.maxAzs ?? 2;
    const natGateways = layout === 'private' ? (props.natGateways ?? 1) : 0;
    if (layout === 'public' && props.natGateways !== undefined && props.natGateways > 0) {
      throw invalidProp(
        'Network',
        id,
        'natGateways',
        props.natGateways,
        "the 'public' layout has no NAT gateways",
      );
    }
    if (natGateways > maxAzs) {
      throw invalidProp('Network', id, 'natGateways', natGateways, `must be <= 'maxAzs' = ${maxAzs}`);
    }
    const flowLogsPrefix = props.flowLogsPrefix ?? 'vpc-flow-logs/';
    if (!flowLogsPrefix.endsWith('/')) {
      throw invalidProp('Network', id, 'flowLogsPrefix', flowLogsPrefix, "must end with '/'");
    }
    this.layout = layout;

    const subnetConfiguration: ec2.SubnetConfiguration[] =
      layout === 'private'
        ? [
            { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
            { name: 'compute', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
          ]
        : [{ name: 'compute', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 20, mapPublicIpOnLaunch: true }];

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr ?? '10.64.0.0/16'),
      maxAzs,
      natGateways,
      subnetConfiguration,
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
      flowLogs: {
        s3: {
          destination: ec2.FlowLogDestination.toS3(props.flowLogsBucket, flowLogsPrefix),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    this.computeSubnets = { subnetGroupName: 'compute' };
  }
}
