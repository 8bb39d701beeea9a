/**
 * Discovery: an environment's buckets, queues and job definitions, read by its name from the
 * platform descriptor the CDK stack publishes in SSM (`/geobatch/<env>/platform`). The only
 * module that imports the SSM client. The parameter is read in the region of the AWS profile
 * (or AWS_REGION); everything after that uses the region the descriptor names.
 */
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { parsePlatformDescriptor, platformDescriptorParameterName } from '../config/descriptor.js';
import type { PlatformDescriptor } from '../config/descriptor.js';
import { awsAccessError, deployHint, PlatformError } from './batch-errors.js';

export interface DiscoverOptions {
  /** @default a client in the region of AWS_REGION / the AWS profile */
  readonly client?: SSMClient;
  readonly signal?: AbortSignal;
}

/** Reads and checks the platform descriptor of environment `env`. */
export async function discoverPlatform(
  env: string,
  options: DiscoverOptions = {},
): Promise<PlatformDescriptor> {
  const name = platformDescriptorParameterName(env);
  const client = options.client ?? new SSMClient({});
  let value: string | undefined;
  try {
    const out = await client.send(
      new GetParameterCommand({ Name: name }),
      options.signal ? { abortSignal: options.signal } : {},
    );
    value = out.Parameter?.Value;
  } catch (error) {
    const access = awsAccessError(error, env, `read the platform descriptor ${name}`);
    if (access) throw access;
    if (error instanceof Error && error.name === 'ParameterNotFound') {
      const region = await regionOf(client);
      throw new PlatformError(
        `environment '${env}' is not deployed in ${region} (no SSM parameter ${name}): ${deployHint(env)}, or set AWS_REGION / AWS_PROFILE to the region where it is deployed`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    if (!options.client) client.destroy();
  }
  if (value === undefined) throw new PlatformError(`SSM parameter ${name} has no value; ${deployHint(env)}`);
  return parsePlatformDescriptor(value, env);
}

async function regionOf(client: SSMClient): Promise<string> {
  try {
    return `region ${await client.config.region()}`;
  } catch {
    return 'the configured region';
  }
}
