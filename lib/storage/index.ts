// S3Storage is deliberately not re-exported: importing it loads the AWS SDK, which a local-only
// run never needs. Import it from './s3.js' when you need the class itself.
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { DownloadCache, defaultCacheDir } from './cache.js';
import { HttpStorage } from './http.js';
import { LocalStorage } from './local.js';
import type { S3Storage, S3StorageOptions } from './s3.js';
import type { IoOptions, ObjectInfo, Storage, WriteBody, WriteOptions } from './types.js';
import { isHttpUri, isS3Uri } from './uri.js';

export type { IoOptions, ObjectInfo, Storage, WriteBody, WriteOptions } from './types.js';
export type { S3StorageOptions } from './s3.js';
export * from './errors.js';
export * from './uri.js';
export { DownloadCache, defaultCacheDir, type Downloader } from './cache.js';
export { LocalStorage, writeFileAtomic, type LocalStorageOptions } from './local.js';
export { HttpStorage, httpRequest, type HttpStorageOptions, type HttpRetryOptions } from './http.js';
export {
  expandInputs,
  DEFAULT_INPUT_EXTENSIONS,
  type ExpandInputsOptions,
  type InputItem,
} from './inputs.js';

export interface CreateStorageOptions {
  /**
   * Directory that relative local paths resolve against.
   * @default process.cwd() at the time of each call
   */
  readonly cwd?: string;
  /**
   * The S3 client, or settings merged over those read from the environment; used from the first
   * s3:// URI on.
   * @default region from AWS_REGION / AWS_DEFAULT_REGION / the profile, endpoint from GEOBATCH_S3_ENDPOINT
   */
  readonly s3?: S3Client | S3ClientConfig;
  /** Listing page size, multipart settings. */
  readonly s3Options?: Omit<S3StorageOptions, 'cache'>;
  /**
   * Where copies of S3 objects for localPath() are kept.
   * @default GEOBATCH_CACHE_DIR, else ~/.cache/geobatch
   */
  readonly cacheDir?: string;
  /**
   * Environment to read GEOBATCH_* and AWS_REGION settings from.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * S3 client settings from the environment: AWS_REGION (or AWS_DEFAULT_REGION, which the SDK itself
 * ignores), and GEOBATCH_S3_ENDPOINT for an S3-compatible server (path-style addressing).
 */
export function s3ConfigFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): S3ClientConfig {
  const endpoint = nonEmpty(env['GEOBATCH_S3_ENDPOINT']);
  const region = nonEmpty(env['AWS_REGION']) ?? nonEmpty(env['AWS_DEFAULT_REGION']);
  const config: S3ClientConfig = { followRegionRedirects: true };
  if (region !== undefined) config.region = region;
  if (endpoint !== undefined) {
    config.endpoint = endpoint;
    config.forcePathStyle = true;
    config.region ??= 'us-east-1';
    // Many S3-compatible servers reject or store the CRC32 checksums newer SDKs add by default.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return config;
}

/**
 * One Storage for local paths, file:// and s3:// URIs, and read-only http(s) URLs. The AWS SDK is loaded and the S3 client
 * created only when the first s3:// URI is used.
 */
export function createStorage(options: CreateStorageOptions = {}): Storage {
  return new RoutingStorage(options);
}

/**
 * Options that make, in another thread (a worker), a Storage equivalent to `storage`: only for
 * storages made by {@link createStorage} whose options can be copied to a worker (an S3 client
 * *object*, or a credentials provider function, cannot); undefined otherwise.
 */
export function portableStorageOptions(storage: Storage): CreateStorageOptions | undefined {
  const settings = RoutingStorage.settingsOf(storage);
  if (!settings) return undefined;
  const { env, ...rest } = settings;
  // structuredClone would copy a client object's fields and drop its class: refuse it outright
  if (rest.s3 !== undefined && Object.getPrototypeOf(rest.s3) !== Object.prototype) return undefined;
  const options: CreateStorageOptions = {
    ...rest,
    cwd: rest.cwd ?? process.cwd(),
    // the worker's process.env is a copy taken when it starts: pass the values in use now
    env: { ...(env ?? process.env) },
  };
  try {
    return structuredClone(options);
  } catch {
    return undefined;
  }
}

class RoutingStorage implements Storage {
  private readonly local: LocalStorage;
  private s3Storage: Promise<S3Storage> | undefined;
  private httpStorage: HttpStorage | undefined;

  readonly #settings: CreateStorageOptions;

  constructor(private readonly options: CreateStorageOptions) {
    this.local = new LocalStorage({ cwd: options.cwd });
    this.#settings = options;
  }

  /**
   * The options `storage` was made with, if it is a RoutingStorage itself: not a wrapper or a
   * Proxy of one (a private field is not reached through either), whose reads another thread
   * would not see.
   */
  static settingsOf(storage: Storage): CreateStorageOptions | undefined {
    return #settings in storage ? storage.#settings : undefined;
  }

  async read(uri: string, options?: IoOptions): Promise<Buffer> {
    return (await this.backend(uri)).read(uri, options);
  }

  async readRange(uri: string, offset: number, length: number, options?: IoOptions): Promise<Buffer> {
    return (await this.backend(uri)).readRange(uri, offset, length, options);
  }

  async createReadStream(uri: string, options?: IoOptions): Promise<Readable> {
    return (await this.backend(uri)).createReadStream(uri, options);
  }

  async writeAtomic(uri: string, body: WriteBody, options?: WriteOptions): Promise<void> {
    return (await this.backend(uri)).writeAtomic(uri, body, options);
  }

  async *list(prefix: string, options?: IoOptions): AsyncIterable<ObjectInfo> {
    yield* (await this.backend(prefix)).list(prefix, options);
  }

  async stat(uri: string, options?: IoOptions): Promise<ObjectInfo | undefined> {
    return (await this.backend(uri)).stat(uri, options);
  }

  async exists(uri: string, options?: IoOptions): Promise<boolean> {
    return (await this.backend(uri)).exists(uri, options);
  }

  async delete(uri: string, options?: IoOptions): Promise<void> {
    return (await this.backend(uri)).delete(uri, options);
  }

  async localPath(uri: string, options?: IoOptions): Promise<string> {
    return (await this.backend(uri)).localPath(uri, options);
  }

  private async backend(uri: string): Promise<Storage> {
    if (isHttpUri(uri)) {
      const env = this.options.env ?? process.env;
      this.httpStorage ??= new HttpStorage({
        cache: new DownloadCache(this.options.cacheDir ?? defaultCacheDir(env)),
      });
      return this.httpStorage;
    }
    if (!isS3Uri(uri)) return this.local;
    this.s3Storage ??= this.createS3();
    return this.s3Storage;
  }

  private async createS3(): Promise<S3Storage> {
    const [{ S3Client: Client }, { S3Storage: S3 }] = await Promise.all([
      import('@aws-sdk/client-s3'),
      import('./s3.js'),
    ]);
    const { s3, env = process.env } = this.options;
    const client = s3 instanceof Client ? s3 : new Client({ ...s3ConfigFromEnv(env), ...s3 });
    const cache = new DownloadCache(this.options.cacheDir ?? defaultCacheDir(env));
    return new S3(client, { ...this.options.s3Options, cache });
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
