/**
 * Read-only storage over `http://` and `https://` URLs, for public Cloud Optimized GeoTIFFs and
 * other assets that STAC catalogues point to: whole reads, byte ranges (`Range` requests),
 * streams, HEAD for size, and cached local copies. Writing, deleting and listing are refused.
 * Requests time out and are retried with backoff on 429, 5xx and network errors.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DownloadCache } from './cache.js';
import { abortedError, StorageError, throwIfAborted } from './errors.js';
import type { IoOptions, ObjectInfo, Storage, WriteBody, WriteOptions } from './types.js';

/** How requests are timed out and retried. */
export interface HttpRetryOptions {
  /**
   * Time allowed for one attempt until the response headers arrive, and for buffered bodies
   * until the body is read too.
   * @default 60000
   */
  readonly timeoutMs?: number;
  /**
   * Attempts after the first one for 429, 5xx and network errors.
   * @default 4
   */
  readonly retries?: number;
  /**
   * First backoff; each retry doubles it (with jitter), and a `Retry-After` header wins when
   * it asks for longer, up to 60 s.
   * @default 500
   */
  readonly backoffMs?: number;
  /** Called before each retry, e.g. to tell the user. */
  readonly onRetry?: (info: {
    readonly url: string;
    readonly attempt: number;
    readonly reason: string;
    readonly delayMs: number;
  }) => void;
}

export interface HttpRequestOptions extends HttpRetryOptions {
  readonly signal?: AbortSignal;
}

const MAX_BACKOFF_MS = 60_000;

function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

/** Milliseconds a `Retry-After` header asks for (seconds or an HTTP date), if it parses. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((done, fail) => {
    if (signal?.aborted) {
      fail(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      fail(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      done();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The first `limit` characters of a failed response's body, whitespace collapsed. */
async function bodySnippet(response: Response, limit = 300): Promise<string> {
  try {
    const text = (await response.text()).replace(/\s+/g, ' ').trim();
    return text.length > limit ? `${text.slice(0, limit)}...` : text;
  } catch {
    return '';
  }
}

/** What an attempt sees: its response, and a function to call once the body has been consumed. */
export interface HttpAttempt {
  readonly response: Response;
  /** Stops the attempt's timeout (call it once the body is read, or when streaming on). */
  readonly settle: () => void;
}

/**
 * One HTTP request with a timeout per attempt and retries with exponential backoff on 429, 5xx
 * (not 501) and network errors. Resolves with the response once its status is final (the caller
 * checks it): a non-retryable failure, a success, or the last retryable failure. Rejects with the
 * abort reason when `signal` fires, and with an Error saying 'timed out' after a last timeout.
 */
export async function httpRequest(
  url: string,
  init: RequestInit,
  options: HttpRequestOptions = {},
): Promise<HttpAttempt> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const retries = options.retries ?? 4;
  const backoffMs = options.backoffMs ?? 500;
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw options.signal.reason as Error;
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const settle = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    let reason: string;
    let waitMs: number | undefined;
    try {
      const response = await fetch(url, { ...init, signal: controller.signal });
      if (!isRetryableStatus(response.status) || attempt >= retries) return { response, settle };
      reason = `HTTP ${response.status}`;
      waitMs = retryAfterMs(response.headers.get('retry-after'));
      await response.body?.cancel().catch(() => undefined);
      settle();
    } catch (error) {
      settle();
      if (options.signal?.aborted) throw options.signal.reason as Error;
      reason = timedOut ? `timed out after ${timeoutMs} ms` : networkReason(error);
      if (attempt >= retries) throw new Error(reason, { cause: error });
    }
    const backoff = backoffMs * 2 ** attempt * (0.75 + Math.random() * 0.5);
    const delayMs = Math.min(MAX_BACKOFF_MS, Math.max(backoff, waitMs ?? 0));
    options.onRetry?.({ url, attempt: attempt + 1, reason, delayMs });
    await sleep(delayMs, options.signal);
  }
}

function networkReason(error: unknown): string {
  const cause =
    error instanceof Error ? (error.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return `network error (${cause.code})`;
  if (typeof cause?.message === 'string') return `network error (${cause.message})`;
  return `network error (${error instanceof Error ? error.message : String(error)})`;
}

export interface HttpStorageOptions extends HttpRetryOptions {
  /** Where local copies for localPath() are kept. */
  readonly cache?: DownloadCache;
  /** Headers sent with every request (e.g. a User-Agent). */
  readonly headers?: Readonly<Record<string, string>>;
}

function checkRange(uri: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new RangeError(`${uri}: range offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(length) || length < 0)
    throw new RangeError(`${uri}: range length must be a non-negative integer, got ${length}`);
}

/**
 * Read-only {@link Storage} over http(s) URLs. A server that ignores `Range` and answers 200 is
 * still read correctly (the body is streamed up to the range and the rest discarded), but slowly:
 * public COG hosts (S3, Azure Blob, GCS, most CDNs) all honour ranges.
 */
export class HttpStorage implements Storage {
  private readonly cache: DownloadCache;

  constructor(private readonly options: HttpStorageOptions = {}) {
    this.cache = options.cache ?? new DownloadCache();
  }

  async read(uri: string, options: IoOptions = {}): Promise<Buffer> {
    const { response, settle } = await this.get(uri, {}, options);
    try {
      await this.expectOk(uri, response, [200]);
      return Buffer.from(await response.arrayBuffer());
    } catch (error) {
      throw this.wrap(uri, error, options.signal);
    } finally {
      settle();
    }
  }

  async readRange(uri: string, offset: number, length: number, options: IoOptions = {}): Promise<Buffer> {
    checkRange(uri, offset, length);
    if (length === 0) {
      if ((await this.stat(uri, options)) === undefined) throw notFound(uri);
      return Buffer.alloc(0);
    }
    const { response, settle } = await this.get(
      uri,
      { range: `bytes=${offset}-${offset + length - 1}` },
      options,
    );
    try {
      // 416: the range starts at or after the end of the object
      if (response.status === 416) {
        await response.body?.cancel().catch(() => undefined);
        return Buffer.alloc(0);
      }
      await this.expectOk(uri, response, [200, 206]);
      if (response.status === 206) {
        const start = /^bytes (\d+)-/.exec(response.headers.get('content-range') ?? '')?.[1];
        if (start !== undefined && Number(start) !== offset) {
          throw new StorageError(
            'Io',
            uri,
            `the server answered a range starting at byte ${start}, not ${offset}`,
          );
        }
        const bytes = Buffer.from(await response.arrayBuffer());
        return bytes.length > length ? bytes.subarray(0, length) : bytes;
      }
      return await sliceOfStream(response, offset, length);
    } catch (error) {
      throw this.wrap(uri, error, options.signal);
    } finally {
      settle();
    }
  }

  async createReadStream(uri: string, options: IoOptions = {}): Promise<Readable> {
    const { response, settle } = await this.get(uri, {}, options);
    // the timeout covers the wait for headers; a long download may take as long as it needs
    settle();
    try {
      await this.expectOk(uri, response, [200]);
    } catch (error) {
      throw this.wrap(uri, error, options.signal);
    }
    if (response.body === null) return Readable.from([]);
    return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>, {
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  async stat(uri: string, options: IoOptions = {}): Promise<ObjectInfo | undefined> {
    throwIfAborted(uri, options.signal);
    let attempt: HttpAttempt;
    try {
      attempt = await httpRequest(
        uri,
        { method: 'HEAD', headers: this.headers({}) },
        this.requestOptions(options),
      );
    } catch (error) {
      throw this.wrap(uri, error, options.signal);
    }
    const { response, settle } = attempt;
    settle();
    if (response.status === 404 || response.status === 410) return undefined;
    let headers = response.headers;
    // some servers refuse HEAD (presigned GET URLs, simple static servers): ask for one byte instead
    if (response.status === 405 || response.status === 403 || response.status === 501) {
      const ranged = await this.get(uri, { range: 'bytes=0-0' }, options);
      ranged.settle();
      await ranged.response.body?.cancel().catch(() => undefined);
      if (ranged.response.status === 404 || ranged.response.status === 410) return undefined;
      try {
        await this.expectOk(uri, ranged.response, [200, 206]);
      } catch (error) {
        throw this.wrap(uri, error, options.signal);
      }
      headers = ranged.response.headers;
      const total = /\/(\d+)$/.exec(headers.get('content-range') ?? '')?.[1];
      if (ranged.response.status === 206 && total !== undefined) return infoOf(uri, headers, Number(total));
    } else {
      try {
        await this.expectOk(uri, response, [200]);
      } catch (error) {
        throw this.wrap(uri, error, options.signal);
      }
    }
    const size = Number(headers.get('content-length'));
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new StorageError('Io', uri, 'the server did not say how large the object is (no Content-Length)');
    }
    return infoOf(uri, headers, size);
  }

  async exists(uri: string, options?: IoOptions): Promise<boolean> {
    return (await this.stat(uri, options)) !== undefined;
  }

  async localPath(uri: string, options: IoOptions = {}): Promise<string> {
    const info = await this.stat(uri, options);
    if (info === undefined) throw notFound(uri);
    return this.cache.fetch(
      info,
      (signal) => this.createReadStream(uri, { ...(signal ? { signal } : {}) }),
      options,
    );
  }

  writeAtomic(uri: string, _body: WriteBody, _options?: WriteOptions): Promise<void> {
    return Promise.reject(readOnly(uri, 'written'));
  }

  delete(uri: string, _options?: IoOptions): Promise<void> {
    return Promise.reject(readOnly(uri, 'deleted'));
  }

  list(prefix: string, _options?: IoOptions): AsyncIterable<ObjectInfo> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          Promise.reject(
            new StorageError(
              'InvalidUri',
              prefix,
              'http(s) URLs cannot be listed: name each file, or use a STAC ItemCollection (inputs: { stac: ... })',
            ),
          ),
      }),
    };
  }

  private headers(extra: Readonly<Record<string, string>>): Record<string, string> {
    return { ...this.options.headers, ...extra };
  }

  private requestOptions(options: IoOptions): HttpRequestOptions {
    return { ...this.options, ...(options.signal ? { signal: options.signal } : {}) };
  }

  private async get(
    uri: string,
    headers: Readonly<Record<string, string>>,
    options: IoOptions,
  ): Promise<HttpAttempt> {
    throwIfAborted(uri, options.signal);
    try {
      return await httpRequest(
        uri,
        { method: 'GET', headers: this.headers(headers) },
        this.requestOptions(options),
      );
    } catch (error) {
      throw this.wrap(uri, error, options.signal);
    }
  }

  private async expectOk(uri: string, response: Response, ok: readonly number[]): Promise<void> {
    if (ok.includes(response.status)) return;
    const body = await bodySnippet(response, 200);
    const status = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (response.status === 404 || response.status === 410) throw notFound(uri);
    if (response.status === 401 || response.status === 403) {
      throw new StorageError(
        'AccessDenied',
        uri,
        `access denied (${status}): only public http(s) URLs can be read; for a private bucket use its s3:// URI`,
      );
    }
    throw new StorageError('Io', uri, `request failed (${status})${body ? `: ${body}` : ''}`);
  }

  private wrap(uri: string, error: unknown, signal: AbortSignal | undefined): StorageError {
    if (error instanceof StorageError) return error;
    if (signal?.aborted) return abortedError(uri, signal);
    const message = error instanceof Error ? error.message : String(error);
    return new StorageError('Io', uri, `cannot read: ${message}`, { cause: error });
  }
}

function infoOf(uri: string, headers: Headers, size: number): ObjectInfo {
  const modified = headers.get('last-modified');
  const time = modified === null ? Number.NaN : Date.parse(modified);
  const etag = headers.get('etag');
  return {
    uri,
    size,
    ...(Number.isNaN(time) ? {} : { lastModified: new Date(time) }),
    ...(etag === null ? {} : { etag }),
  };
}

/** Bytes [offset, offset + length) of a whole-object response, read no further than needed. */
async function sliceOfStream(response: Response, offset: number, length: number): Promise<Buffer> {
  if (response.body === null) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const parts: Buffer[] = [];
  let position = 0;
  let kept = 0;
  try {
    while (kept < length) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      const from = Math.max(0, offset - position);
      position += chunk.length;
      if (from >= chunk.length) continue;
      const piece = chunk.subarray(from, Math.min(chunk.length, from + length - kept));
      parts.push(piece);
      kept += piece.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(parts, kept);
}

function notFound(uri: string): StorageError {
  return new StorageError('NotFound', uri, 'no such object (HTTP 404)');
}

function readOnly(uri: string, what: string): StorageError {
  return new StorageError('NotWritable', uri, `http(s) URLs are read-only: they cannot be ${what}`);
}
