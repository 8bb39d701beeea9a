import { posix, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StorageError } from './errors.js';

/** An object in S3: `key` is '' for the bucket itself (a listing prefix, not an object). */
export interface S3Location {
  readonly kind: 's3';
  readonly bucket: string;
  readonly key: string;
}

/** A local file or directory by absolute path; a trailing '/' is kept (it matters to listing). */
export interface LocalLocation {
  readonly kind: 'local';
  readonly path: string;
}

export type Location = S3Location | LocalLocation;

// Lowercase letters, digits, '.', '-'; 3-63 characters; starts and ends with a letter or digit.
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;

/** True when `value` is an `s3://` URI (the scheme is case-insensitive). */
export function isS3Uri(value: string): boolean {
  return /^s3:\/\//i.test(value);
}

/** True when `value` is an `http://` or `https://` URL (read-only storage; the scheme is case-insensitive). */
export function isHttpUri(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/**
 * Classifies a URI: `s3://bucket/key`, `file:///abs/path`, or a local path (relative paths resolve
 * against `cwd`). Throws a StorageError with code 'InvalidUri' for anything else.
 */
export function parseUri(uri: string, cwd: string = process.cwd()): Location {
  if (uri === '')
    throw new StorageError('InvalidUri', uri, 'empty URI: expected a path, file:// or s3:// URI');
  if (uri.includes('\0')) throw new StorageError('InvalidUri', uri, 'URI contains a NUL character');
  if (isS3Uri(uri)) return parseS3(uri);
  if (/^s3:/i.test(uri)) {
    throw new StorageError('InvalidUri', uri, "malformed S3 URI: expected 's3://bucket/key'");
  }
  if (/^file:/i.test(uri)) return { kind: 'local', path: localPathFromFileUrl(uri, cwd) };
  const scheme = SCHEME.exec(uri)?.[1];
  if (scheme !== undefined && /^https?$/i.test(scheme)) {
    throw new StorageError(
      'InvalidUri',
      uri,
      `${scheme} URLs can be read (as STAC assets or single files), not listed or written: use a local path or an s3:// URI here`,
    );
  }
  if (scheme !== undefined) {
    throw new StorageError(
      'InvalidUri',
      uri,
      `unsupported scheme '${scheme}': use a local path, a file:// URI or an s3://bucket/key URI`,
    );
  }
  return { kind: 'local', path: absolutePath(uri, cwd) };
}

/** Bucket and key of an `s3://` URI; throws 'InvalidUri' for any other kind of URI. */
export function parseS3Uri(uri: string): S3Location {
  const location = parseUri(uri);
  if (location.kind !== 's3')
    throw new StorageError('InvalidUri', uri, "expected an S3 URI 's3://bucket/key'");
  return location;
}

/** The absolute local path a local path or `file://` URI names; throws 'InvalidUri' for `s3://`. */
export function toLocalPath(uri: string, cwd: string = process.cwd()): string {
  const location = parseUri(uri, cwd);
  if (location.kind !== 'local') {
    throw new StorageError('InvalidUri', uri, 'expected a local path or file:// URI, not an S3 URI');
  }
  return location.path;
}

/** `s3://bucket/key` from its parts. */
export function formatS3Uri(bucket: string, key: string): string {
  return key === '' ? `s3://${bucket}` : `s3://${bucket}/${key}`;
}

/** The canonical spelling of a URI: `s3://bucket/key` or an absolute local path (never `file://`). */
export function normalizeUri(uri: string, cwd: string = process.cwd()): string {
  if (isHttpUri(uri)) return uri;
  return formatLocation(parseUri(uri, cwd));
}

/**
 * Appends path segments to a URI, resolving '.' and '..' like `path.join`; the result is canonical
 * (see {@link normalizeUri}). Throws 'InvalidUri' when '..' would climb above an S3 bucket.
 */
export function joinUri(base: string, ...parts: string[]): string {
  const location = parseUri(base);
  if (location.kind === 'local') return posix.join(location.path, ...parts);
  const joined = posix.join('/', location.key, ...parts);
  if (parts.some((part) => part.split('/').includes('..')) && climbsAbove(location.key, parts)) {
    throw new StorageError('InvalidUri', base, `joining '${parts.join("', '")}' climbs above the bucket`);
  }
  return formatS3Uri(location.bucket, joined === '/' ? '' : joined.slice(1));
}

/** The parent of a URI, like `path.dirname`: `s3://b/a/c.tif` -> `s3://b/a`; a bucket is its own parent. */
export function dirnameUri(uri: string): string {
  if (isHttpUri(uri)) return httpDirname(uri);
  const location = parseUri(uri);
  if (location.kind === 'local') return posix.dirname(location.path);
  const parent = posix.dirname(location.key);
  return formatS3Uri(location.bucket, parent === '.' ? '' : parent);
}

/** The last segment of a URI, like `path.basename`: `s3://b/a/c.tif` -> `c.tif`; '' for a bucket. */
export function basenameUri(uri: string): string {
  if (isHttpUri(uri)) return httpBasename(uri);
  const location = parseUri(uri);
  return posix.basename(location.kind === 'local' ? location.path : location.key);
}

/** Orders strings by their UTF-8 bytes, the order S3 lists keys in. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function formatLocation(location: Location): string {
  return location.kind === 's3' ? formatS3Uri(location.bucket, location.key) : location.path;
}

function parseS3(uri: string): S3Location {
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const key = slash === -1 ? '' : rest.slice(slash + 1);
  if (bucket === '')
    throw new StorageError('InvalidUri', uri, "missing bucket name: expected 's3://bucket/key'");
  if (!BUCKET_NAME.test(bucket)) {
    throw new StorageError(
      'InvalidUri',
      uri,
      `invalid bucket name '${bucket}': expected 3-63 lowercase letters, digits, '.' or '-', ` +
        'starting and ending with a letter or digit',
    );
  }
  return { kind: 's3', bucket, key };
}

function localPathFromFileUrl(uri: string, cwd: string): string {
  let path: string;
  try {
    path = fileURLToPath(new URL(uri));
  } catch (error) {
    throw new StorageError('InvalidUri', uri, "malformed file URI: expected 'file:///absolute/path'", {
      cause: error,
    });
  }
  return absolutePath(path, cwd);
}

function absolutePath(path: string, cwd: string): string {
  const resolved = resolvePath(cwd, path);
  return path.endsWith('/') && resolved !== '/' ? `${resolved}/` : resolved;
}

function climbsAbove(key: string, parts: readonly string[]): boolean {
  let depth = 0;
  for (const segment of [key, ...parts].join('/').split('/')) {
    if (segment === '..') depth -= 1;
    else if (segment !== '' && segment !== '.') depth += 1;
    if (depth < 0) return true;
  }
  return false;
}

/** The parent of an http(s) URL's path, without query or fragment. */
function httpDirname(uri: string): string {
  const url = new URL(uri);
  const parent = posix.dirname(url.pathname);
  return `${url.origin}${parent === '/' ? '' : parent}`;
}

/** The last segment of an http(s) URL's path, percent-decoding undone where it decodes. */
function httpBasename(uri: string): string {
  const name = posix.basename(new URL(uri).pathname);
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
