/**
 * DEFLATE tiles decoded by Node's zlib instead of geotiff.js's JavaScript inflate (pako): native
 * code, about 3x faster, and asynchronous, so several tiles inflate at once on libuv's thread pool.
 * Importing this module registers the decoder for TIFF compressions 8 and 32946 (both DEFLATE).
 */
import { addDecoder, BaseDecoder } from 'geotiff';
import { promisify } from 'node:util';
import { inflate } from 'node:zlib';

const inflateAsync = promisify(inflate);

/** geotiff.js decoder for DEFLATE tiles and strips, backed by zlib (predictors are applied by the base class). */
export class ZlibDeflateDecoder extends BaseDecoder {
  override async decodeBlock(buffer: ArrayBufferLike): Promise<ArrayBuffer> {
    // zlib's default 16 KiB output chunks cost a thread-pool round trip and a copy each: ask for the whole block
    const out = await inflateAsync(new Uint8Array(buffer), { chunkSize: this.blockBytes() });
    if (
      out.byteOffset === 0 &&
      out.byteLength === out.buffer.byteLength &&
      out.buffer instanceof ArrayBuffer
    ) {
      return out.buffer;
    }
    return out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
  }

  /** Decoded bytes of a whole block (plus slack), from the decoder parameters. */
  private blockBytes(): number {
    const { tileWidth, tileHeight, bitsPerSample, planarConfiguration } = this.parameters;
    const bits = typeof bitsPerSample === 'number' ? [bitsPerSample] : Array.from(bitsPerSample);
    const pixelBits = planarConfiguration === 2 ? (bits[0] ?? 8) : bits.reduce((a, b) => a + b, 0);
    return Math.max(64 * 1024, Math.ceil((tileWidth * tileHeight * pixelBits) / 8) + 1024);
  }
}

let registered = false;

/** Makes geotiff.js use {@link ZlibDeflateDecoder} for DEFLATE (idempotent). */
export function registerNativeDecoders(): void {
  if (registered) return;
  registered = true;
  addDecoder([8, 32946], () => Promise.resolve(ZlibDeflateDecoder), undefined, false);
}

registerNativeDecoders();
