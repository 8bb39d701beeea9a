/** The errors of the AWS Batch runner; the CLI's error handler knows them by `name`. */

/**
 * The environment cannot be reached or is not (fully) deployed: no credentials, no region, no
 * platform descriptor, a queue or job definition missing. Messages name the environment and
 * what to deploy or set.
 */
export class PlatformError extends Error {
  override readonly name = 'PlatformError';
}

/** A run cannot be submitted, watched or cancelled on AWS Batch as asked. */
export class BatchError extends Error {
  override readonly name = 'BatchError';
}

/** `npx cdk deploy` of one environment's stack: what every "not deployed" message suggests. */
export function deployHint(env: string): string {
  return `deploy it with 'npx cdk deploy -c env=${env}'`;
}

/**
 * A PlatformError for the AWS failures every command can hit whatever it asked (no credentials,
 * no region, not allowed, expired token), or undefined for anything else.
 */
export function awsAccessError(error: unknown, env: string, doing: string): PlatformError | undefined {
  if (!(error instanceof Error)) return undefined;
  const name = error.name;
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(error.message)) {
    return new PlatformError(
      `no AWS credentials to ${doing} (environment '${env}'): set AWS_PROFILE (and run 'aws sso login' for an SSO profile) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
      { cause: error },
    );
  }
  if (/^Region is missing/i.test(error.message)) {
    return new PlatformError(
      `no AWS region to ${doing} (environment '${env}'): set AWS_REGION, or a region in your AWS profile, to the region the environment is deployed in`,
      { cause: error },
    );
  }
  if (['ExpiredToken', 'ExpiredTokenException', 'TokenRefreshRequired'].includes(name)) {
    return new PlatformError(
      `the AWS credentials have expired (${doing}, environment '${env}'): refresh them (e.g. 'aws sso login') and try again`,
      { cause: error },
    );
  }
  if (
    [
      'AccessDeniedException',
      'AccessDenied',
      'UnrecognizedClientException',
      'InvalidSignatureException',
    ].includes(name)
  ) {
    return new PlatformError(
      `AWS refused to ${doing} (environment '${env}'): ${error.message}; use credentials allowed to run geobatch in this account`,
      { cause: error },
    );
  }
  return undefined;
}
