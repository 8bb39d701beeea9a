import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { bodyChunks } from './body.js';
import { abortedError, isStorageError, StorageError } from './errors.js';
import { writeFileAtomic } from './local.js';
import type { IoOptions, ObjectInfo, WriteBody } from './types.js';
import { basenameUri } from './uri.js';

/** Fetches an object's content for the cache; called only on a miss. */
export type Downloader = (signal: AbortSignal | undefined) => Promise<WriteBody>;

/** `GEOBATCH_CACHE_DIR`, else `$XDG_CACHE_HOME/geobatch`, else `~/.cache/geobatch`. */
export function defaultCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const explicit = env['GEOBATCH_CACHE_DIR'];
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = env['XDG_CACHE_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.cache'), 'geobatch');
}

/**
 * Local copies of remote objects, keyed by a hash of URI, size, ETag and time: a changed object
 * gets a new entry. Downloads go to a temporary name and are renamed when complete and of the
 * expected size, so concurrent callers and interrupted downloads never see a partial file.
 * Nothing is evicted; delete the directory to reclaim space.
 */
export class DownloadCache {
  readonly dir: string;

  constructor(dir: string = defaultCacheDir()) {
    this.dir = dir;
  }

  /** The path the cached copy of `object` has (whether or not it is there yet). */
  pathFor(object: ObjectInfo): string {
    const identity = JSON.stringify([
      object.uri,
      object.size,
      object.etag ?? null,
      object.lastModified?.getTime() ?? null,
    ]);
    const hash = createHash('sha256').update(identity).digest('hex').slice(0, 40);
    const name =
      basenameUri(object.uri)
        .replace(/[^A-Za-z0-9._-]/g, '_')
        .replace(/^\./, '_') || 'object';
    return join(this.dir, hash.slice(0, 2), hash, name);
  }

  /** The local path of `object`'s cached copy, downloading it with `download` on a miss. */
  async fetch(object: ObjectInfo, download: Downloader, options: IoOptions = {}): Promise<string> {
    const path = this.pathFor(object);
    if (await hasSize(path, object.size)) return path;
    const body = await download(options.signal);
    try {
      await writeFileAtomic(path, expectSize(body, object, options.signal), options.signal);
    } catch (error) {
      if (body instanceof Readable) body.destroy();
      if (isStorageError(error, 'Aborted')) throw abortedError(object.uri, options.signal);
      throw error;
    }
    return path;
  }
}

async function hasSize(path: string, size: number): Promise<boolean> {
  try {
    const stats = await stat(path);
    return stats.isFile() && stats.size === size;
  } catch {
    return false;
  }
}

async function* expectSize(
  body: WriteBody,
  object: ObjectInfo,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  let received = 0;
  for await (const chunk of bodyChunks(body, object.uri, signal)) {
    received += chunk.length;
    if (received > object.size) break;
    yield chunk;
  }
  if (received !== object.size) {
    throw new StorageError(
      'Io',
      object.uri,
      `download incomplete: got ${received} bytes, expected ${object.size} (the object may have changed; retry)`,
    );
  }
}
