import { addAbortSignal, Readable } from 'node:stream';
import type { WriteBody } from './types.js';
import { abortedError, throwIfAborted } from './errors.js';

/** The body as one Buffer when it is already in memory (string, Buffer, Uint8Array), else undefined. */
export function bytesOf(body: WriteBody): Buffer | undefined {
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return undefined;
}

/**
 * The body's bytes as Buffers (bytes already in memory come in slices of `sliceSize`). When
 * `signal` fires, the generator rejects at once with an 'Aborted' StorageError, even while the
 * source is stalled, and closes the source.
 */
export async function* bodyChunks(
  body: WriteBody,
  uri: string,
  signal?: AbortSignal,
  sliceSize: number = 8 * 1024 * 1024,
): AsyncGenerator<Buffer> {
  throwIfAborted(uri, signal);
  const bytes = bytesOf(body);
  if (bytes !== undefined) {
    for (let start = 0; start < bytes.length; start += sliceSize) {
      yield bytes.subarray(start, start + sliceSize);
      throwIfAborted(uri, signal);
    }
    return;
  }
  const source = body as AsyncIterable<unknown>;
  const iterator = source[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortedError(uri, signal));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  let finished = false;
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done === true) {
        finished = true;
        return;
      }
      yield toBuffer(next.value, uri);
      throwIfAborted(uri, signal);
    }
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    if (!finished) {
      // return() waits behind a pending next() of a stalled source, so a Readable is destroyed.
      if (body instanceof Readable) body.destroy();
      void Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
  }
}

function toBuffer(chunk: unknown, uri: string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`${uri}: expected Buffer, Uint8Array or string chunks, got ${typeof chunk}`);
}

/**
 * `stream` with its errors mapped to StorageErrors by `mapError`, destroyed with an 'Aborted'
 * StorageError when `signal` fires.
 */
export function guardedStream(
  stream: Readable,
  uri: string,
  mapError: (error: unknown) => Error,
  signal?: AbortSignal,
): Readable {
  if (signal !== undefined) addAbortSignal(signal, stream);
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of stream) yield toBuffer(chunk, uri);
    } catch (error) {
      if (signal?.aborted) throw abortedError(uri, signal);
      throw mapError(error);
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** Validates the arguments of a readRange call (non-negative safe integers). */
export function checkRange(uri: string, offset: number, length: number): void {
  for (const [name, value] of [
    ['offset', offset],
    ['length', length],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`${uri}: readRange expects a non-negative integer ${name}, got ${value}`);
    }
  }
}
