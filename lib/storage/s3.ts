import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { bodyChunks, bytesOf, checkRange, guardedStream } from './body.js';
import { DownloadCache } from './cache.js';
import {
  abortedError,
  fromS3Error,
  httpStatusOf,
  noCredentialsError,
  StorageError,
  throwIfAborted,
} from './errors.js';
import type { IoOptions, ObjectInfo, Storage, WriteBody, WriteOptions } from './types.js';
import { formatS3Uri, parseS3Uri } from './uri.js';

const MiB = 1024 * 1024;

export interface S3StorageOptions {
  /**
   * Keys per ListObjectsV2 page (1-1000); tests set it low to exercise pagination.
   * @default 1000
   */
  readonly listPageSize?: number;
  /**
   * Bodies already in memory up to this many bytes are sent with one PutObject; larger ones and
   * streams go through a multipart upload.
   * @default 16 MiB
   */
  readonly multipartThreshold?: number;
  /**
   * Part size of multipart uploads, at least 8 MiB.
   * @default 8 MiB
   */
  readonly partSize?: number;
  /**
   * Parts of one upload sent at once (memory: up to this many parts are buffered).
   * @default 4
   */
  readonly uploadConcurrency?: number;
  /**
   * Where localPath() keeps downloaded copies.
   * @default a DownloadCache in GEOBATCH_CACHE_DIR, else ~/.cache/geobatch
   */
  readonly cache?: DownloadCache;
}

interface ObjectAddress {
  readonly uri: string;
  readonly bucket: string;
  readonly key: string;
}

/** Storage over `s3://bucket/key` URIs through one S3 client (any S3-compatible endpoint). */
export class S3Storage implements Storage {
  readonly client: S3Client;
  private readonly listPageSize: number;
  private readonly multipartThreshold: number;
  private readonly partSize: number;
  private readonly uploadConcurrency: number;
  private readonly cache: DownloadCache;
  /** Buckets whose existence was checked after a HEAD answered 404 (HEAD has no error body). */
  private readonly checkedBuckets = new Set<string>();

  /** Takes a ready client, or the settings to create one with (e.g. `endpoint` + `forcePathStyle`). */
  constructor(client: S3Client | S3ClientConfig = {}, options: S3StorageOptions = {}) {
    this.client = client instanceof S3Client ? client : new S3Client(client);
    this.listPageSize = checkInteger('listPageSize', options.listPageSize ?? 1000, 1, 1000);
    this.partSize = checkInteger('partSize', options.partSize ?? 8 * MiB, 8 * MiB, 5 * 1024 * MiB);
    this.multipartThreshold = checkInteger(
      'multipartThreshold',
      options.multipartThreshold ?? 16 * MiB,
      0,
      5 * 1024 * MiB,
    );
    this.uploadConcurrency = checkInteger('uploadConcurrency', options.uploadConcurrency ?? 4, 1, 64);
    this.cache = options.cache ?? new DownloadCache();
  }

  async read(uri: string, options: IoOptions = {}): Promise<Buffer> {
    const object = objectAddress(uri);
    return this.attempt(object.uri, options.signal, async (sendOptions) => {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: object.bucket, Key: object.key }),
        sendOptions,
      );
      return Buffer.from(await bodyOf(response.Body, object.uri).transformToByteArray());
    });
  }

  async readRange(uri: string, offset: number, length: number, options: IoOptions = {}): Promise<Buffer> {
    const object = objectAddress(uri);
    checkRange(object.uri, offset, length);
    if (length === 0) {
      if ((await this.stat(object.uri, options)) === undefined) throw notFound(object.uri);
      return Buffer.alloc(0);
    }
    try {
      return await this.attempt(object.uri, options.signal, async (sendOptions) => {
        const response = await this.client.send(
          new GetObjectCommand({
            Bucket: object.bucket,
            Key: object.key,
            // Always a closed range: suffix ranges (`bytes=-N`) are wrong on some S3-compatible servers.
            Range: `bytes=${offset}-${offset + length - 1}`,
          }),
          sendOptions,
        );
        const bytes = Buffer.from(await bodyOf(response.Body, object.uri).transformToByteArray());
        // s3rver answers `bytes=0-0` with the whole object.
        return bytes.length > length ? bytes.subarray(0, length) : bytes;
      });
    } catch (error) {
      // 416: the range starts at or after the end of the object.
      if (isInvalidRange(error)) return Buffer.alloc(0);
      throw error;
    }
  }

  async createReadStream(uri: string, options: IoOptions = {}): Promise<Readable> {
    const object = objectAddress(uri);
    const response = await this.attempt(object.uri, options.signal, (sendOptions) =>
      this.client.send(new GetObjectCommand({ Bucket: object.bucket, Key: object.key }), sendOptions),
    );
    return guardedStream(
      readableOf(response.Body, object.uri),
      object.uri,
      (error) => fromS3Error(object.uri, error),
      options.signal,
    );
  }

  async writeAtomic(uri: string, body: WriteBody, options: WriteOptions = {}): Promise<void> {
    const object = objectAddress(uri);
    const { signal, contentType } = options;
    const metadata = options.metadata === undefined ? undefined : { ...options.metadata };
    const bytes = bytesOf(body);
    if (bytes !== undefined && bytes.length <= this.multipartThreshold) {
      await this.attempt(object.uri, signal, (sendOptions) =>
        this.client.send(
          new PutObjectCommand({
            Bucket: object.bucket,
            Key: object.key,
            Body: bytes,
            ContentType: contentType,
            Metadata: metadata,
          }),
          sendOptions,
        ),
      );
      return;
    }
    // The body is fed through bodyChunks: an abort makes the body fail, so the Upload aborts the
    // multipart upload before done() rejects. (Upload's own abort() rejects at once and cleans
    // up later, and can race a CompleteMultipartUpload already on its way.)
    const source = Readable.from(bodyChunks(bytes ?? body, object.uri, signal, this.partSize), {
      objectMode: false,
    });
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: object.bucket,
        Key: object.key,
        Body: source,
        ContentType: contentType,
        Metadata: metadata,
      },
      partSize: this.partSize,
      queueSize: this.uploadConcurrency,
      leavePartsOnError: false,
    });
    try {
      await this.attempt(object.uri, signal, () => upload.done());
    } finally {
      // After a failure the Upload stops reading; this also releases the caller's stream.
      source.destroy();
    }
  }

  async *list(prefix: string, options: IoOptions = {}): AsyncIterable<ObjectInfo> {
    const { bucket, key } = parseS3Uri(prefix);
    const uri = formatS3Uri(bucket, key);
    let token: string | undefined;
    do {
      const page = await this.attempt(uri, options.signal, (sendOptions) =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: key === '' ? undefined : key,
            ContinuationToken: token,
            MaxKeys: this.listPageSize,
          }),
          sendOptions,
        ),
      );
      for (const entry of page.Contents ?? []) {
        // Keys ending in '/' are folder placeholders (the S3 console makes them), not files.
        if (entry.Key === undefined || entry.Key.endsWith('/')) continue;
        yield {
          uri: formatS3Uri(bucket, entry.Key),
          size: entry.Size ?? 0,
          lastModified: entry.LastModified,
          etag: entry.ETag,
        };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async stat(uri: string, options: IoOptions = {}): Promise<ObjectInfo | undefined> {
    const { key } = parseS3Uri(uri);
    // A bucket or folder is not an object, as a directory is not a file locally.
    if (key === '' || key.endsWith('/')) return undefined;
    const object = objectAddress(uri);
    try {
      const head = await this.attempt(object.uri, options.signal, (sendOptions) =>
        this.client.send(new HeadObjectCommand({ Bucket: object.bucket, Key: object.key }), sendOptions),
      );
      return {
        uri: object.uri,
        size: head.ContentLength ?? 0,
        lastModified: head.LastModified,
        etag: head.ETag,
        ...(head.Metadata === undefined ? {} : { metadata: head.Metadata }),
      };
    } catch (error) {
      if (!(error instanceof StorageError) || error.code !== 'NotFound') throw error;
    }
    await this.checkBucket(object, options.signal);
    return undefined;
  }

  async exists(uri: string, options: IoOptions = {}): Promise<boolean> {
    return (await this.stat(uri, options)) !== undefined;
  }

  async delete(uri: string, options: IoOptions = {}): Promise<void> {
    const object = objectAddress(uri);
    await this.attempt(object.uri, options.signal, (sendOptions) =>
      this.client.send(new DeleteObjectCommand({ Bucket: object.bucket, Key: object.key }), sendOptions),
    );
  }

  async localPath(uri: string, options: IoOptions = {}): Promise<string> {
    const info = await this.stat(uri, options);
    if (info === undefined) throw notFound(objectAddress(uri).uri);
    const object = objectAddress(info.uri);
    return this.cache.fetch(
      info,
      async (signal) => {
        const response = await this.attempt(object.uri, signal, (sendOptions) =>
          this.client.send(
            new GetObjectCommand({ Bucket: object.bucket, Key: object.key, IfMatch: info.etag }),
            sendOptions,
          ),
        );
        return guardedStream(
          readableOf(response.Body, object.uri),
          object.uri,
          (error) => fromS3Error(object.uri, error),
          signal,
        );
      },
      options,
    );
  }

  /** Runs one S3 call, turning whatever it throws into a StorageError that names `uri`. */
  private async attempt<T>(
    uri: string,
    signal: AbortSignal | undefined,
    call: (sendOptions: { abortSignal?: AbortSignal }) => Promise<T>,
  ): Promise<T> {
    throwIfAborted(uri, signal);
    try {
      return await call(signal === undefined ? {} : { abortSignal: signal });
    } catch (error) {
      if (signal?.aborted) throw abortedError(uri, signal);
      if (error instanceof StorageError) throw error;
      // A request that never got an answer may have failed to sign: a credentials provider can
      // throw any error, so the provider is asked again to tell.
      if (httpStatusOf(error) === undefined && (await this.credentialsFail()))
        throw noCredentialsError(uri, error);
      throw fromS3Error(uri, error);
    }
  }

  /** True when the client's credentials provider throws: the cause of an error without a response. */
  private async credentialsFail(): Promise<boolean> {
    try {
      await this.client.config.credentials();
      return false;
    } catch {
      return true;
    }
  }

  /** After a HEAD 404, tells a missing bucket (NoSuchBucket) from a missing key. */
  private async checkBucket(object: ObjectAddress, signal: AbortSignal | undefined): Promise<void> {
    if (this.checkedBuckets.has(object.bucket)) return;
    try {
      await this.attempt(object.uri, signal, (sendOptions) =>
        this.client.send(new HeadBucketCommand({ Bucket: object.bucket }), sendOptions),
      );
    } catch (error) {
      if (error instanceof StorageError && error.code === 'NotFound') {
        throw new StorageError('NoSuchBucket', object.uri, `bucket '${object.bucket}' does not exist`, {
          cause: error,
        });
      }
      // Without s3:ListBucket, HeadBucket is denied: the bucket cannot be checked, so trust the HEAD.
      if (!(error instanceof StorageError && error.code === 'AccessDenied')) throw error;
    }
    this.checkedBuckets.add(object.bucket);
  }
}

function objectAddress(uri: string): ObjectAddress {
  const { bucket, key } = parseS3Uri(uri);
  const canonical = formatS3Uri(bucket, key);
  if (key === '' || key.endsWith('/')) {
    throw new StorageError(
      'InvalidUri',
      canonical,
      "names a bucket or folder, not an object: expected 's3://bucket/key'",
    );
  }
  return { uri: canonical, bucket, key };
}

function notFound(uri: string): StorageError {
  return new StorageError('NotFound', uri, 'no such object');
}

interface ByteBody {
  transformToByteArray(): Promise<Uint8Array>;
}

function bodyOf(body: ByteBody | undefined, uri: string): ByteBody {
  if (body === undefined) throw new StorageError('Io', uri, 'S3 answered without a body');
  return body;
}

function readableOf(body: unknown, uri: string): Readable {
  if (body instanceof Readable) return body;
  throw new StorageError('Io', uri, 'S3 answered without a readable body');
}

function isInvalidRange(error: unknown): boolean {
  if (!(error instanceof StorageError)) return false;
  return (
    httpStatusOf(error.cause) === 416 || (error.cause instanceof Error && error.cause.name === 'InvalidRange')
  );
}

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`S3Storage option '${name}' = ${value}: expected an integer from ${min} to ${max}`);
  }
  return value;
}
