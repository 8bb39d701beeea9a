import { Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { platformDescriptorParameterName, type PlatformDescriptor } from '../config/descriptor.js';

/** Standard parameters hold 4 KB; advanced ones 8 KB (and are billed monthly). */
const standardTierLimit = 4096;
/** Room given to each unresolved value (ARN, name) when no sizing descriptor is given. */
const tokenAllowance = 128;

export interface PlatformDescriptorParameterProps {
  /** The descriptor; its values may be tokens, resolved by CloudFormation. */
  readonly descriptor: PlatformDescriptor;
  /**
   * The same descriptor with every deploy-time value written out at its longest (bucket names of
   * 63 characters, the longest partition and region, 7-digit revisions): its length picks the
   * tier. Without it every token counts as 128 characters, which overestimates ARNs and names
   * several-fold and would move a catalog of ten jobs to the billed advanced tier.
   */
  readonly sizingDescriptor?: PlatformDescriptor;
}

/**
 * The SSM parameter `/geobatch/<env>/platform` holding the platform descriptor as JSON, which
 * the CLI reads to find the environment's buckets, queues and job definitions by name.
 */
export class PlatformDescriptorParameter extends Construct {
  readonly parameter: ssm.StringParameter;
  /** Size of the value with every token counted as a long ARN. */
  readonly estimatedSize: number;

  constructor(scope: Construct, id: string, props: PlatformDescriptorParameterProps) {
    super(scope, id);
    this.estimatedSize = props.sizingDescriptor
      ? JSON.stringify(props.sizingDescriptor).length
      : JSON.stringify(props.descriptor).replace(/\$\{Token\[[^\]]*\]\}/g, 'x'.repeat(tokenAllowance)).length;
    if (props.sizingDescriptor && /\$\{Token\[/.test(JSON.stringify(props.sizingDescriptor))) {
      throw new Error('PlatformDescriptorParameter: sizingDescriptor must hold no tokens');
    }
    this.parameter = new ssm.StringParameter(this, 'Parameter', {
      parameterName: platformDescriptorParameterName(props.descriptor.env),
      description: `geobatch platform descriptor of environment '${props.descriptor.env}' (read by the geobatch CLI)`,
      stringValue: Stack.of(this).toJsonString(props.descriptor),
      tier: this.estimatedSize > standardTierLimit ? ssm.ParameterTier.ADVANCED : ssm.ParameterTier.STANDARD,
    });
  }
}
