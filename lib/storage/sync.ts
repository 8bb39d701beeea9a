/**
 * Copying files and trees of files between local directories and S3 prefixes, in any direction:
 * the library behind `geobatch cp` and `geobatch sync`. Every file is written with
 * `storage.writeAtomic` (a temporary name and a rename locally, a completed upload on S3), so an
 * interrupted transfer leaves whole files or none, and `sync` run again finishes the job.
 */
import { setMaxListeners } from 'node:events';
import { stat as fsStat } from 'node:fs/promises';
import { posix } from 'node:path';
import { contentMatchesEtag, canonicalEtag, md5Hex } from './etag.js';
import { StorageError, abortedError, throwIfAborted } from './errors.js';
import { globToRegExp } from './inputs.js';
import type { ObjectInfo, Storage } from './types.js';
import { formatS3Uri, isS3Uri, normalizeUri, parseS3Uri } from './uri.js';

const MiB = 1024 * 1024;

/** User metadata an S3-to-S3 copy records: the source's ETag, which a rerun compares. */
export const SOURCE_ETAG_METADATA = 'geobatch-source-etag';

/**
 * How `sync` tells that a destination file is already the source's:
 * - `content`: same size, and the same content as far as ETags tell: S3 to S3 the same ETag (or
 *   the destination was copied by geobatch from an object with the source's ETag); local and S3
 *   the local file's MD5, or its multipart ETag for a part size that fits; local to local the
 *   same MD5.
 * - `size`: same size (nothing read).
 */
export type CompareMode = 'content' | 'size';

export interface TransferOptions {
  /** `copy` writes every selected file; `sync` only those missing or different at the destination. */
  readonly mode: 'copy' | 'sync';
  /**
   * Copy: the source is a directory or prefix and every file under it is copied. (Sync always is.)
   * @default false
   */
  readonly recursive?: boolean;
  /**
   * Files transferred (or compared) at once.
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * Plans and reports, writes and deletes nothing.
   * @default false
   */
  readonly dryRun?: boolean;
  /** Globs over paths relative to the source root: when given, only matching files are taken. */
  readonly include?: readonly string[];
  /** Globs over paths relative to the source root: matching files are left out (and never deleted). */
  readonly exclude?: readonly string[];
  /**
   * Sync: removes destination files under the root that the source does not have (and that the
   * filters select), after every copy succeeded.
   * @default false
   */
  readonly delete?: boolean;
  /**
   * How sync tells an unchanged file.
   * @default 'content'
   */
  readonly compare?: CompareMode;
  /**
   * Part size multipart uploads use here, tried first when a multipart ETag is checked.
   * @default 8 MiB
   */
  readonly partSize?: number;
  readonly signal?: AbortSignal;
  /** Called for each file done, skipped or deleted, and as bytes flow. */
  readonly onEvent?: (event: TransferEvent) => void;
}

/** What one file came to. */
export type FileAction = 'copy' | 'skip' | 'delete';

export type TransferEvent =
  | {
      readonly type: 'planned';
      /** Files selected in the source. */
      readonly files: number;
      /** Their bytes. */
      readonly bytes: number;
      /** Destination files to delete. */
      readonly deletes: number;
    }
  | {
      readonly type: 'file';
      readonly action: FileAction;
      /** Source URI (undefined for a delete). */
      readonly from?: string;
      readonly to: string;
      readonly size: number;
    }
  | { readonly type: 'bytes'; readonly bytes: number };

/** What a transfer did (or, with dryRun, would do). */
export interface TransferSummary {
  readonly source: string;
  readonly destination: string;
  readonly dryRun: boolean;
  /** Files selected in the source. */
  readonly files: number;
  readonly copied: number;
  readonly skipped: number;
  readonly deleted: number;
  /** Bytes copied. */
  readonly bytes: number;
  readonly seconds: number;
  /** Bytes copied per second / 10^6. */
  readonly megabytesPerSecond: number;
}

interface Pair {
  readonly from: ObjectInfo;
  readonly to: string;
  /** The destination as listed, when it exists (sync). */
  readonly existing?: ObjectInfo;
}

/**
 * Copies `source` to `destination` (local paths, `file://` or `s3://` URIs, any direction). Stops at
 * the first failure, after the transfers in flight are aborted; files written until then are whole.
 */
export async function transfer(
  storage: Storage,
  source: string,
  destination: string,
  options: TransferOptions,
): Promise<TransferSummary> {
  const started = performance.now();
  const { signal, onEvent } = options;
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new RangeError(`transfer: concurrency = ${concurrency}: expected an integer from 1 to 256`);
  }
  const sync = options.mode === 'sync';
  const recursive = sync || options.recursive === true;
  const src = normalizeUri(source);
  let dst = normalizeUri(destination);
  const select = fileFilter(options.include ?? [], options.exclude ?? []);

  let pairs: Pair[];
  let deletes: ObjectInfo[] = [];
  if (!recursive) {
    const info = await singleSource(storage, src, signal);
    dst = await singleDestination(dst, posix.basename(isS3Uri(src) ? parseS3Uri(src).key : src));
    if (dst === info.uri)
      throw new StorageError('InvalidUri', dst, 'source and destination are the same file');
    pairs = [{ from: info, to: dst }];
    await checkDestination(storage, dst, signal);
  } else {
    const srcRoot = withSlash(src);
    const dstRoot = withSlash(dst);
    if (srcRoot.startsWith(dstRoot) || dstRoot.startsWith(srcRoot)) {
      throw new StorageError(
        'InvalidUri',
        dst,
        `overlaps the source ${srcRoot}: choose a destination outside it (and not above it)`,
      );
    }
    const files = await listSource(storage, srcRoot, signal);
    const existing = new Map<string, ObjectInfo>();
    if (sync) {
      for await (const info of storage.list(dstRoot, { signal })) {
        existing.set(info.uri.slice(dstRoot.length), info);
      }
    } else {
      await checkDestination(storage, dstRoot, signal);
    }
    const taken = new Set<string>();
    pairs = [];
    for (const info of files) {
      const relative = info.uri.slice(srcRoot.length);
      if (!select(relative)) continue;
      taken.add(relative);
      const to = childUri(dstRoot, relative, info.uri);
      const found = existing.get(relative);
      pairs.push(found === undefined ? { from: info, to } : { from: info, to, existing: found });
    }
    if (sync && options.delete === true) {
      deletes = [...existing].filter(([rel]) => !taken.has(rel) && select(rel)).map(([, info]) => info);
    }
  }
  const totalBytes = pairs.reduce((sum, pair) => sum + pair.from.size, 0);
  onEvent?.({ type: 'planned', files: pairs.length, bytes: totalBytes, deletes: deletes.length });

  const compare = options.compare ?? 'content';
  const partSizeHints = [options.partSize ?? 8 * MiB];
  const dryRun = options.dryRun === true;
  let copied = 0;
  let skipped = 0;
  let bytes = 0;
  await forEachLimited(pairs, concurrency, signal, async (pair, taskSignal) => {
    const unchanged =
      sync &&
      pair.existing !== undefined &&
      (await sameFile(storage, pair.from, pair.existing, compare, partSizeHints, taskSignal));
    if (unchanged) {
      skipped += 1;
      onEvent?.({ type: 'file', action: 'skip', from: pair.from.uri, to: pair.to, size: pair.from.size });
      return;
    }
    if (!dryRun) await copyFile(storage, pair.from, pair.to, taskSignal, onEvent);
    copied += 1;
    bytes += pair.from.size;
    onEvent?.({ type: 'file', action: 'copy', from: pair.from.uri, to: pair.to, size: pair.from.size });
  });

  let deleted = 0;
  await forEachLimited(deletes, concurrency, signal, async (info, taskSignal) => {
    if (!dryRun) await storage.delete(info.uri, { signal: taskSignal });
    deleted += 1;
    onEvent?.({ type: 'file', action: 'delete', to: info.uri, size: info.size });
  });

  const seconds = (performance.now() - started) / 1000;
  return {
    source: src,
    destination: dst,
    dryRun,
    files: pairs.length,
    copied,
    skipped,
    deleted,
    bytes,
    seconds,
    megabytesPerSecond: seconds > 0 ? bytes / 1e6 / seconds : 0,
  };
}

/**
 * A predicate over relative paths: selected when no include is given or one matches, and no
 * exclude matches. A pattern without '/' also matches the file name in any directory.
 */
export function fileFilter(
  include: readonly string[],
  exclude: readonly string[],
): (relativePath: string) => boolean {
  const compile = (pattern: string): ((path: string) => boolean) => {
    const regexp = globToRegExp(pattern);
    if (pattern.includes('/')) return (path) => regexp.test(path);
    return (path) => regexp.test(path) || regexp.test(posix.basename(path));
  };
  const includes = include.map(compile);
  const excludes = exclude.map(compile);
  return (path) =>
    (includes.length === 0 || includes.some((test) => test(path))) && !excludes.some((test) => test(path));
}

/** Streams one file to its destination through writeAtomic, reporting bytes as they are read. */
async function copyFile(
  storage: Storage,
  from: ObjectInfo,
  to: string,
  signal: AbortSignal,
  onEvent: TransferOptions['onEvent'],
): Promise<void> {
  const stream = await storage.createReadStream(from.uri, { signal });
  async function* counted(): AsyncGenerator<Uint8Array> {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      onEvent?.({ type: 'bytes', bytes: chunk.length });
      yield chunk;
    }
  }
  const metadata =
    isS3Uri(from.uri) && isS3Uri(to) && from.etag !== undefined
      ? { metadata: { [SOURCE_ETAG_METADATA]: canonicalEtag(from.etag) } }
      : {};
  try {
    await storage.writeAtomic(to, counted(), { signal, ...metadata });
  } finally {
    stream.destroy();
  }
}

/** Whether the destination already holds the source's content, as `compare` tells it. */
async function sameFile(
  storage: Storage,
  from: ObjectInfo,
  to: ObjectInfo,
  compare: CompareMode,
  partSizeHints: readonly number[],
  signal: AbortSignal,
): Promise<boolean> {
  if (from.size !== to.size) return false;
  if (compare === 'size') return true;
  const fromS3 = isS3Uri(from.uri);
  const toS3 = isS3Uri(to.uri);
  if (fromS3 && toS3) {
    if (from.etag === undefined) return false;
    const wanted = canonicalEtag(from.etag);
    if (to.etag !== undefined && canonicalEtag(to.etag) === wanted) return true;
    // Copied in parts of another size, the destination has another ETag: it records the source's.
    const head = await storage.stat(to.uri, { signal });
    return head?.metadata?.[SOURCE_ETAG_METADATA] === wanted;
  }
  if (fromS3 || toS3) {
    const [local, remote] = fromS3 ? [to, from] : [from, to];
    const content = await storage.createReadStream(local.uri, { signal });
    try {
      return await contentMatchesEtag(content, local.size, remote.etag, partSizeHints);
    } finally {
      content.destroy();
    }
  }
  const [a, b] = await Promise.all(
    [from, to].map(async (info) => {
      const content = await storage.createReadStream(info.uri, { signal });
      try {
        return await md5Hex(content);
      } finally {
        content.destroy();
      }
    }),
  );
  return a === b;
}

/** The one file `cp` without --recursive copies; clear errors for a directory, a prefix, nothing. */
async function singleSource(storage: Storage, src: string, signal?: AbortSignal): Promise<ObjectInfo> {
  const info = src.endsWith('/') ? undefined : await storage.stat(src, { signal });
  if (info !== undefined) return info;
  if (!isS3Uri(src)) {
    if ((await localKind(src)) === 'directory') {
      throw new StorageError('InvalidUri', src, 'is a directory: add --recursive to copy what it holds');
    }
    throw new StorageError('NotFound', src, 'no such file');
  }
  for await (const found of storage.list(withSlash(src), { signal })) {
    void found;
    throw new StorageError('InvalidUri', src, 'is a prefix, not an object: add --recursive to copy under it');
  }
  throw new StorageError('NotFound', src, 'no such object');
}

/** `dst`, or `dst/<name>` when it names a directory: a trailing '/', a bucket, an existing local directory. */
async function singleDestination(dst: string, name: string): Promise<string> {
  if (dst.endsWith('/')) return `${dst}${name}`;
  if (isS3Uri(dst)) {
    const { bucket, key } = parseS3Uri(dst);
    return key === '' ? formatS3Uri(bucket, name) : dst;
  }
  return (await localKind(dst)) === 'directory' ? posix.join(dst, name) : dst;
}

/** Every file under the source root, in order; a missing or empty source is an error. */
async function listSource(storage: Storage, root: string, signal?: AbortSignal): Promise<ObjectInfo[]> {
  if (!isS3Uri(root)) {
    const kind = await localKind(root.slice(0, -1) || '/');
    if (kind === 'missing') throw new StorageError('NotFound', root, 'no such directory');
    if (kind === 'file') {
      throw new StorageError(
        'InvalidUri',
        root,
        'is a file, not a directory: copy it with cp (no --recursive)',
      );
    }
  }
  const files: ObjectInfo[] = [];
  for await (const info of storage.list(root, { signal })) files.push(info);
  if (files.length === 0 && isS3Uri(root)) {
    throw new StorageError('NotFound', root, 'no objects under this prefix: check the bucket and the prefix');
  }
  return files;
}

/** Fails early on an S3 destination whose bucket does not exist or may not be listed. */
async function checkDestination(storage: Storage, dst: string, signal?: AbortSignal): Promise<void> {
  if (!isS3Uri(dst)) return;
  const { bucket, key } = parseS3Uri(dst);
  // One listing request: NoSuchBucket and AccessDenied surface here rather than on the first file.
  for await (const found of storage.list(formatS3Uri(bucket, key), { signal })) {
    void found;
    break;
  }
}

/** The destination of a file at `relative` under the source root, refusing keys unsafe as paths. */
function childUri(dstRoot: string, relative: string, sourceUri: string): string {
  if (isS3Uri(dstRoot)) return `${dstRoot}${relative}`;
  const segments = relative.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
    throw new StorageError(
      'InvalidUri',
      sourceUri,
      "the key has an empty, '.' or '..' segment and cannot be a local file name: exclude it",
    );
  }
  return `${dstRoot}${relative}`;
}

async function localKind(path: string): Promise<'file' | 'directory' | 'missing' | 'other'> {
  try {
    const stats = await fsStat(path);
    return stats.isDirectory() ? 'directory' : stats.isFile() ? 'file' : 'other';
  } catch {
    return 'missing';
  }
}

function withSlash(uri: string): string {
  if (isS3Uri(uri)) {
    const { bucket, key } = parseS3Uri(uri);
    // formatS3Uri spells a bucket without the '/', which a root needs to prefix its keys
    return `s3://${bucket}/${key === '' || key.endsWith('/') ? key : `${key}/`}`;
  }
  return uri.endsWith('/') ? uri : `${uri}/`;
}

/**
 * Runs `work` over `items`, `limit` at a time. The first failure aborts the others (through the
 * signal each gets) and is what rejects, once every started task has settled.
 */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  throwIfAborted('transfer', signal);
  const controller = new AbortController();
  // every request and stream of every task in flight listens to this one signal
  setMaxListeners(Math.max(10, limit * 16), controller.signal);
  const onAbort = (): void => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !controller.signal.aborted && next < items.length) {
      const item = items[next] as T;
      next += 1;
      try {
        await work(item, controller.signal);
      } catch (error) {
        failure ??= { error };
        controller.abort(error);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failure !== undefined) throw failure.error;
  if (signal?.aborted) throw abortedError('transfer', signal);
}
