import type { Readable } from 'node:stream';

/** What a listing or a stat returns for one object or file. */
export interface ObjectInfo {
  /** Full URI: `s3://bucket/key` or an absolute local path (never `file://`). */
  readonly uri: string;
  /** Size in bytes. */
  readonly size: number;
  /** Last modification time, when the backend knows it. */
  readonly lastModified?: Date;
  /** Entity tag (S3 only): changes whenever the content does; part of download-cache keys. */
  readonly etag?: string;
  /** User metadata (S3 only, from stat, not from list: a listing does not carry it). */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface IoOptions {
  /**
   * Aborts the operation: the promise rejects with a StorageError whose code is 'Aborted' and
   * whose cause is the signal's reason; nothing partial is left behind.
   */
  readonly signal?: AbortSignal;
}

export interface WriteOptions extends IoOptions {
  /** MIME type stored with the object (S3 only; ignored locally). */
  readonly contentType?: string;
  /** User metadata stored with the object (S3 only, `x-amz-meta-<name>`; ignored locally). */
  readonly metadata?: Readonly<Record<string, string>>;
}

export type WriteBody = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

/**
 * One interface over local paths (`/a/b`, `./a`, `file:///a`) and `s3://bucket/key` URIs.
 * Every method names the URI it failed on through a {@link StorageError}.
 */
export interface Storage {
  /** Whole object as bytes. */
  read(uri: string, options?: IoOptions): Promise<Buffer>;
  /** Bytes [offset, offset + length) of the object; shorter only at the end of the object. */
  readRange(uri: string, offset: number, length: number, options?: IoOptions): Promise<Buffer>;
  /** A stream of the object's bytes. */
  createReadStream(uri: string, options?: IoOptions): Promise<Readable>;
  /**
   * Writes the whole object so that readers see either the old content or the new, never a part:
   * a temporary name and a rename locally, a completed (multipart for large bodies) upload on S3.
   */
  writeAtomic(uri: string, body: WriteBody, options?: WriteOptions): Promise<void>;
  /**
   * Every object whose URI starts with `prefix` (recursive; a prefix may end mid-name), in byte
   * order of the URI, fetched page by page. Not listed: S3 folder placeholders (keys ending in
   * '/') and the temporary files of local atomic writes in flight.
   */
  list(prefix: string, options?: IoOptions): AsyncIterable<ObjectInfo>;
  /** Size and time of one object, or undefined when it does not exist. */
  stat(uri: string, options?: IoOptions): Promise<ObjectInfo | undefined>;
  exists(uri: string, options?: IoOptions): Promise<boolean>;
  /** Removes one object; removing a missing object is not an error. */
  delete(uri: string, options?: IoOptions): Promise<void>;
  /**
   * A local file path with the object's content: the file itself for local URIs, a cached
   * download (keyed by URI, size and time) for remote ones.
   */
  localPath(uri: string, options?: IoOptions): Promise<string>;
}
