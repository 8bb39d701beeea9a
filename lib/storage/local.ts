import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { bodyChunks, checkRange, guardedStream } from './body.js';
import { abortedError, fromFsError, StorageError, throwIfAborted, type FsOperation } from './errors.js';
import type { IoOptions, ObjectInfo, Storage, WriteBody, WriteOptions } from './types.js';
import { compareUtf8, toLocalPath } from './uri.js';

export interface LocalStorageOptions {
  /**
   * Directory that relative paths resolve against.
   * @default process.cwd() at the time of each call
   */
  readonly cwd?: string;
}

// writeFileAtomic's temporary names: `.<name>.tmp-<12 hex digits>`.
const TEMP_NAME = /^\..+\.tmp-[0-9a-f]{12}$/;

/** True for the temporary name of an atomic write in flight (or one a crash left behind). */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/**
 * Writes `body` to `path` through a temporary sibling (`.<name>.tmp-<random>`), fsync and rename,
 * creating parent directories; the temporary file is removed on any failure or abort.
 */
export async function writeFileAtomic(path: string, body: WriteBody, signal?: AbortSignal): Promise<void> {
  throwIfAborted(path, signal);
  if (path.endsWith('/')) throw new StorageError('InvalidUri', path, 'names a directory, not a file');
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
  let handle: FileHandle | undefined;
  try {
    await mkdir(dir, { recursive: true });
    handle = await open(temp, 'wx');
    for await (const chunk of bodyChunks(body, path, signal)) await writeAll(handle, chunk);
    await handle.sync();
    await handle.close();
    handle = undefined;
    throwIfAborted(path, signal);
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    if (body instanceof Readable) body.destroy();
    throw failure(path, error, 'write', signal);
  }
}

/** Storage over the local file system; URIs are paths (relative ones resolve against `cwd`) or `file://`. */
export class LocalStorage implements Storage {
  private readonly cwd: string | undefined;

  constructor(options: LocalStorageOptions = {}) {
    this.cwd = options.cwd;
  }

  async read(uri: string, options: IoOptions = {}): Promise<Buffer> {
    const path = this.path(uri);
    throwIfAborted(path, options.signal);
    try {
      return await readFile(path, { signal: options.signal });
    } catch (error) {
      throw failure(path, error, 'read', options.signal);
    }
  }

  async readRange(uri: string, offset: number, length: number, options: IoOptions = {}): Promise<Buffer> {
    const path = this.path(uri);
    checkRange(path, offset, length);
    throwIfAborted(path, options.signal);
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      const { size } = await fileStats(handle, path);
      const wanted = Math.max(0, Math.min(length, size - offset));
      const buffer = Buffer.allocUnsafe(wanted);
      let filled = 0;
      while (filled < wanted) {
        const { bytesRead } = await handle.read(buffer, filled, wanted - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
        throwIfAborted(path, options.signal);
      }
      return buffer.subarray(0, filled);
    } catch (error) {
      throw failure(path, error, 'read', options.signal);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  async createReadStream(uri: string, options: IoOptions = {}): Promise<Readable> {
    const path = this.path(uri);
    throwIfAborted(path, options.signal);
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      await fileStats(handle, path);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      throw failure(path, error, 'read', options.signal);
    }
    const stream = handle.createReadStream();
    return guardedStream(stream, path, (error) => failure(path, error, 'read'), options.signal);
  }

  async writeAtomic(uri: string, body: WriteBody, options: WriteOptions = {}): Promise<void> {
    await writeFileAtomic(this.path(uri), body, options.signal);
  }

  async *list(prefix: string, options: IoOptions = {}): AsyncIterable<ObjectInfo> {
    const path = this.path(prefix);
    if (path.endsWith('/')) yield* this.walk(path, '', new Set(), options.signal);
    else yield* this.walk(dirname(path), basename(path), new Set(), options.signal);
  }

  async stat(uri: string, options: IoOptions = {}): Promise<ObjectInfo | undefined> {
    const path = this.path(uri);
    throwIfAborted(path, options.signal);
    let stats: Stats;
    try {
      stats = await stat(path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw failure(path, error, 'read', options.signal);
    }
    return stats.isFile() ? { uri: path, size: stats.size, lastModified: stats.mtime } : undefined;
  }

  async exists(uri: string, options: IoOptions = {}): Promise<boolean> {
    return (await this.stat(uri, options)) !== undefined;
  }

  async delete(uri: string, options: IoOptions = {}): Promise<void> {
    const path = this.path(uri);
    throwIfAborted(path, options.signal);
    try {
      await unlink(path);
    } catch (error) {
      if (isMissing(error)) return;
      throw failure(path, error, 'delete', options.signal);
    }
  }

  async localPath(uri: string, options: IoOptions = {}): Promise<string> {
    const path = this.path(uri);
    if ((await this.stat(path, options)) === undefined) {
      throw new StorageError('NotFound', path, 'no such file');
    }
    return path;
  }

  private path(uri: string): string {
    return toLocalPath(uri, this.cwd ?? process.cwd());
  }

  // Siblings are visited in the order of `name` for files and `name/` for directories, so the
  // files of the whole tree come out in the byte order of their full paths, as S3 lists keys.
  private async *walk(
    dir: string,
    namePrefix: string,
    ancestors: Set<string>,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<ObjectInfo> {
    throwIfAborted(dir, signal);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (isMissing(error)) return;
      throw failure(dir, error, 'list', signal);
    }
    const candidates = names.filter((name) => name.startsWith(namePrefix) && !isTempName(name));
    const entries = await Promise.all(
      candidates.map(async (name) => {
        const path = join(dir, name);
        try {
          return { name, path, stats: await stat(path) };
        } catch (error) {
          if (isMissing(error)) return undefined;
          throw failure(path, error, 'list', signal);
        }
      }),
    );
    const sorted = entries
      .filter((entry) => entry !== undefined)
      .filter((entry) => entry.stats.isFile() || entry.stats.isDirectory())
      .map((entry) => ({ ...entry, sortKey: entry.stats.isDirectory() ? `${entry.name}/` : entry.name }))
      .sort((a, b) => compareUtf8(a.sortKey, b.sortKey));
    for (const { path, stats } of sorted) {
      if (stats.isFile()) {
        yield { uri: path, size: stats.size, lastModified: stats.mtime };
        continue;
      }
      // A symbolic link may point back up the tree; each directory is entered once per path.
      const id = `${stats.dev}:${stats.ino}`;
      if (ancestors.has(id)) continue;
      ancestors.add(id);
      yield* this.walk(path, '', ancestors, signal);
      ancestors.delete(id);
    }
  }
}

async function fileStats(handle: FileHandle, path: string): Promise<Stats> {
  const stats = await handle.stat();
  if (stats.isDirectory()) throw new StorageError('Io', path, 'is a directory, not a file');
  return stats;
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let written = 0;
  while (written < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
    written += bytesWritten;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function failure(path: string, error: unknown, operation: FsOperation, signal?: AbortSignal): StorageError {
  if (signal?.aborted) return abortedError(path, signal);
  return fromFsError(path, error, operation);
}
