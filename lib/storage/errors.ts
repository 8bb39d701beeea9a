/** What went wrong, independent of the backend. */
export type StorageErrorCode =
  | 'NotFound'
  | 'AccessDenied'
  | 'NoSuchBucket'
  | 'NoCredentials'
  | 'InvalidUri'
  | 'NotWritable'
  | 'Aborted'
  | 'Io';

/** What a local operation was doing when the file system failed; it decides how an errno reads. */
export type FsOperation = 'read' | 'write' | 'list' | 'delete';

/** One error type for every storage backend; the message starts with the URI and says what to do. */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  /** The URI (or absolute local path) the operation failed on. */
  readonly uri: string;

  /** The message is `<uri>: <detail>`, or `<subject>: <detail>` when a subject (e.g. a YAML path) is given. */
  constructor(
    code: StorageErrorCode,
    uri: string,
    detail: string,
    options?: { readonly cause?: unknown; readonly subject?: string },
  ) {
    super(
      `${options?.subject ?? uri}: ${detail}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.uri = uri;
  }
}

/** True when `error` is a {@link StorageError} (with the given code, when one is given). */
export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

/** The error every operation rejects with once its signal has fired. */
export function abortedError(uri: string, signal?: AbortSignal): StorageError {
  return new StorageError('Aborted', uri, 'aborted', { cause: signal?.reason });
}

/** Throws {@link abortedError} when `signal` has already fired. */
export function throwIfAborted(uri: string, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(uri, signal);
}

/** Maps a node fs error (errno code) met while doing `operation` on `uri` to a {@link StorageError}. */
export function fromFsError(uri: string, error: unknown, operation: FsOperation): StorageError {
  if (error instanceof StorageError) return error;
  const code = stringField(error, 'code');
  if (code === 'ABORT_ERR' || stringField(error, 'name') === 'AbortError') {
    return new StorageError('Aborted', uri, 'aborted', { cause: error });
  }
  const writing = operation === 'write' || operation === 'delete';
  const missing = (detail: string): StorageError =>
    writing
      ? new StorageError('NotWritable', uri, `not writable (${detail})`, { cause: error })
      : new StorageError('NotFound', uri, 'no such file or directory', { cause: error });
  switch (code) {
    case 'ENOENT':
      return missing('ENOENT: a parent directory disappeared');
    case 'ENOTDIR':
      return missing('ENOTDIR: a parent is a file, not a directory');
    case 'EACCES':
    case 'EPERM':
      return writing
        ? new StorageError('NotWritable', uri, `not writable (${code})`, { cause: error })
        : new StorageError('AccessDenied', uri, `permission denied (${code})`, { cause: error });
    case 'EROFS':
      return new StorageError('NotWritable', uri, 'not writable (EROFS: read-only file system)', {
        cause: error,
      });
    case 'EEXIST':
      return new StorageError(
        'NotWritable',
        uri,
        'not writable (EEXIST: a parent is a file, not a directory)',
        {
          cause: error,
        },
      );
    case 'EISDIR':
      return writing
        ? new StorageError('NotWritable', uri, 'not writable (EISDIR: it is a directory)', { cause: error })
        : new StorageError('Io', uri, 'is a directory, not a file', { cause: error });
    case 'ENOSPC':
    case 'EDQUOT':
      return new StorageError(
        'Io',
        uri,
        `no space left (${code}): free some space or use another directory`,
        {
          cause: error,
        },
      );
    default:
      return new StorageError('Io', uri, `${operation} failed (${code ?? describe(error)})`, {
        cause: error,
      });
  }
}

const CREDENTIALS_HELP = "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run 'aws sso login'";

/** Maps an AWS SDK (S3) error met on `uri` to a {@link StorageError}. */
export function fromS3Error(uri: string, error: unknown): StorageError {
  if (error instanceof StorageError) return error;
  const name = stringField(error, 'name') ?? '';
  const message = stringField(error, 'message') ?? '';
  const code = stringField(error, 'code');
  const status = httpStatusOf(error);
  const bucket = /^s3:\/\/([^/]+)/i.exec(uri)?.[1] ?? '';
  const as = (kind: StorageErrorCode, detail: string): StorageError =>
    new StorageError(kind, uri, detail, { cause: error });

  if (name === 'AbortError' || code === 'ABORT_ERR') return as('Aborted', 'aborted');
  switch (name) {
    case 'NoSuchBucket':
      return as('NoSuchBucket', `bucket '${bucket}' does not exist`);
    case 'NoSuchKey':
    case 'NotFound':
      return as('NotFound', 'no such object');
    case 'CredentialsProviderError':
      return noCredentialsError(uri, error);
    case 'ExpiredToken':
    case 'ExpiredTokenException':
    case 'TokenRefreshRequired':
      return as('NoCredentials', `AWS credentials have expired (${CREDENTIALS_HELP})`);
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'InvalidToken':
      return as(
        'AccessDenied',
        `AWS rejected the credentials (${name}): check AWS_PROFILE or AWS_ACCESS_KEY_ID`,
      );
    case 'AccessDenied':
    case 'Forbidden':
    case 'AllAccessDisabled':
      return as('AccessDenied', accessDeniedDetail(bucket));
    case 'PreconditionFailed':
      return as('Io', 'the object changed while it was being read: retry');
    case 'InvalidBucketName':
      return as('InvalidUri', `'${bucket}' is not a valid bucket name`);
  }
  if (/could not load credentials/i.test(message)) return noCredentialsError(uri, error);
  if (/region is missing/i.test(message)) {
    return as('Io', 'no AWS region configured (set AWS_REGION, or a region in ~/.aws/config)');
  }
  if (status === 404) return as('NotFound', 'no such object');
  if (status === 403) return as('AccessDenied', accessDeniedDetail(bucket));
  if (code !== undefined && /^E[A-Z]+$/.test(code)) {
    return as('Io', `cannot reach S3 (${code}): check the network, or GEOBATCH_S3_ENDPOINT if set`);
  }
  const what = status === undefined ? name || 'Error' : `${name || 'Error'}, HTTP ${status}`;
  return as('Io', `S3 request failed (${what}): ${message || describe(error)}`);
}

/** The error for a request that could not be signed because no credentials could be loaded. */
export function noCredentialsError(uri: string, cause: unknown): StorageError {
  return new StorageError('NoCredentials', uri, `no AWS credentials found (${CREDENTIALS_HELP})`, { cause });
}

function accessDeniedDetail(bucket: string): string {
  return (
    `access denied: your AWS identity may not use bucket '${bucket}' this way ` +
    '(S3 also answers 403 for a missing key when s3:ListBucket is not allowed)'
  );
}

function stringField(value: unknown, field: string): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const found: unknown = (value as Record<string, unknown>)[field];
  return typeof found === 'string' ? found : undefined;
}

/** The HTTP status of the response an AWS SDK error came with, if any. */
export function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const metadata: unknown = (error as Record<string, unknown>)['$metadata'];
  if (typeof metadata !== 'object' || metadata === null) return undefined;
  const status: unknown = (metadata as Record<string, unknown>)['httpStatusCode'];
  return typeof status === 'number' ? status : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
