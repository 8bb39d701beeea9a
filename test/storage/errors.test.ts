import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  abortedError,
  fromFsError,
  fromS3Error,
  isStorageError,
  StorageError,
  type FsOperation,
  type StorageErrorCode,
} from '../../lib/storage/errors.js';

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: something`), { code });
}

/** An error shaped like the AWS SDK's service exceptions. */
function sdkError(name: string, status?: number, message = 'service message'): Error {
  const error = Object.assign(new Error(message), { name });
  return status === undefined ? error : Object.assign(error, { $metadata: { httpStatusCode: status } });
}

describe('StorageError', () => {
  it('carries code, uri and cause, and its message starts with the URI', () => {
    const cause = new Error('root');
    const error = new StorageError('NotFound', 's3://b1b/k', 'no such object', { cause });
    assert.equal(error.name, 'StorageError');
    assert.equal(error.message, 's3://b1b/k: no such object');
    assert.equal(error.cause, cause);
    assert.ok(error instanceof Error);
    assert.ok(isStorageError(error));
    assert.ok(isStorageError(error, 'NotFound'));
    assert.ok(!isStorageError(error, 'Io'));
    assert.ok(!isStorageError(new Error('x')));
  });

  it('can name a subject other than the URI in its message', () => {
    const error = new StorageError('NotFound', '/p/data/*.tif', "'data/*.tif' matched no files", {
      subject: 'inputs.scenes[0]',
    });
    assert.equal(error.message, "inputs.scenes[0]: 'data/*.tif' matched no files");
    assert.equal(error.uri, '/p/data/*.tif');
  });

  it('abortedError keeps the signal reason as the cause', () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    controller.abort(reason);
    const error = abortedError('/x', controller.signal);
    assert.equal(error.code, 'Aborted');
    assert.equal(error.message, '/x: aborted');
    assert.equal(error.cause, reason);
  });
});

describe('fromFsError', () => {
  const cases: ReadonlyArray<readonly [string, FsOperation, StorageErrorCode, string]> = [
    ['ENOENT', 'read', 'NotFound', '/d/f: no such file or directory'],
    ['ENOTDIR', 'read', 'NotFound', '/d/f: no such file or directory'],
    ['ENOENT', 'write', 'NotWritable', '/d/f: not writable (ENOENT: a parent directory disappeared)'],
    ['ENOTDIR', 'write', 'NotWritable', '/d/f: not writable (ENOTDIR: a parent is a file, not a directory)'],
    ['EACCES', 'write', 'NotWritable', '/d/f: not writable (EACCES)'],
    ['EPERM', 'delete', 'NotWritable', '/d/f: not writable (EPERM)'],
    ['EACCES', 'read', 'AccessDenied', '/d/f: permission denied (EACCES)'],
    ['EACCES', 'list', 'AccessDenied', '/d/f: permission denied (EACCES)'],
    ['EROFS', 'write', 'NotWritable', '/d/f: not writable (EROFS: read-only file system)'],
    ['EEXIST', 'write', 'NotWritable', '/d/f: not writable (EEXIST: a parent is a file, not a directory)'],
    ['EISDIR', 'write', 'NotWritable', '/d/f: not writable (EISDIR: it is a directory)'],
    ['EISDIR', 'read', 'Io', '/d/f: is a directory, not a file'],
    ['ENOSPC', 'write', 'Io', '/d/f: no space left (ENOSPC): free some space or use another directory'],
    ['ABORT_ERR', 'read', 'Aborted', '/d/f: aborted'],
    ['EIO', 'read', 'Io', '/d/f: read failed (EIO)'],
  ];
  for (const [code, operation, expected, message] of cases) {
    it(`${code} while ${operation} -> ${expected}`, () => {
      const cause = errno(code);
      const error = fromFsError('/d/f', cause, operation);
      assert.equal(error.code, expected);
      assert.equal(error.message, message);
      assert.equal(error.cause, cause);
    });
  }

  it('passes StorageErrors through and describes errors without a code', () => {
    const original = new StorageError('Aborted', '/x', 'aborted');
    assert.equal(fromFsError('/y', original, 'write'), original);
    assert.equal(
      fromFsError('/y', new Error('upstream broke'), 'write').message,
      '/y: write failed (upstream broke)',
    );
  });
});

describe('fromS3Error', () => {
  const uri = 's3://nobucket/x.tif';
  const cases: ReadonlyArray<readonly [string, unknown, StorageErrorCode, string | RegExp]> = [
    [
      'NoSuchBucket',
      sdkError('NoSuchBucket', 404),
      'NoSuchBucket',
      `${uri}: bucket 'nobucket' does not exist`,
    ],
    ['NoSuchKey', sdkError('NoSuchKey', 404), 'NotFound', `${uri}: no such object`],
    ['NotFound on HEAD', sdkError('NotFound', 404, 'UnknownError'), 'NotFound', `${uri}: no such object`],
    ['a bare 404', sdkError('UnknownError', 404), 'NotFound', `${uri}: no such object`],
    [
      'AccessDenied',
      sdkError('AccessDenied', 403),
      'AccessDenied',
      /^s3:\/\/nobucket\/x\.tif: access denied: your AWS identity may not use bucket 'nobucket'/,
    ],
    ['Forbidden on HEAD', sdkError('Forbidden', 403), 'AccessDenied', /access denied/],
    ['a bare 403', sdkError('UnknownError', 403), 'AccessDenied', /s3:ListBucket/],
    [
      'CredentialsProviderError',
      sdkError('CredentialsProviderError', undefined, 'Could not load credentials from any providers'),
      'NoCredentials',
      `${uri}: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run 'aws sso login')`,
    ],
    [
      'a credentials message',
      new Error('Could not load credentials from any providers'),
      'NoCredentials',
      /no AWS credentials found/,
    ],
    ['ExpiredToken', sdkError('ExpiredToken', 400), 'NoCredentials', /AWS credentials have expired/],
    [
      'InvalidAccessKeyId',
      sdkError('InvalidAccessKeyId', 403),
      'AccessDenied',
      /AWS rejected the credentials \(InvalidAccessKeyId\)/,
    ],
    ['a missing region', new Error('Region is missing'), 'Io', /no AWS region configured \(set AWS_REGION/],
    ['AbortError', sdkError('AbortError'), 'Aborted', `${uri}: aborted`],
    [
      'ECONNREFUSED',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      'Io',
      /cannot reach S3 \(ECONNREFUSED\)/,
    ],
    ['PreconditionFailed', sdkError('PreconditionFailed', 412), 'Io', /changed while it was being read/],
    [
      'InvalidBucketName',
      sdkError('InvalidBucketName', 400),
      'InvalidUri',
      /'nobucket' is not a valid bucket name/,
    ],
    [
      'a 500',
      sdkError('InternalError', 500, 'try again'),
      'Io',
      `${uri}: S3 request failed (InternalError, HTTP 500): try again`,
    ],
    ['a non-error', 'weird', 'Io', `${uri}: S3 request failed (Error): weird`],
  ];
  for (const [label, cause, expected, message] of cases) {
    it(`${label} -> ${expected}`, () => {
      const error = fromS3Error(uri, cause);
      assert.equal(error.code, expected);
      if (typeof message === 'string') assert.equal(error.message, message);
      else assert.match(error.message, message);
      assert.equal(error.cause, cause);
      assert.equal(error.uri, uri);
    });
  }
});
