/**
 * One seam for reading TIFFs from anywhere storage reaches: geotiff.js asks this source for
 * byte slices and it answers with storage range reads (local file reads or S3 ranged GETs),
 * through a block cache that merges neighbouring blocks into one request.
 */
import { GeoTIFF } from 'geotiff';
import type { Storage } from '../storage/types.js';

interface Slice {
  readonly offset: number;
  readonly length: number;
}

export interface StorageSourceOptions {
  /** Bytes per cached block. @default 65536 */
  readonly blockSize?: number;
  /** Upper bound of cached bytes. @default 64 MiB */
  readonly cacheBytes?: number;
}

/** A geotiff.js source over {@link Storage} with an LRU block cache; counts requests and bytes read. */
export class StorageSource {
  readonly blockSize: number;
  private readonly maxBlocks: number;
  private readonly blocks = new Map<number, Buffer>();
  private readonly inFlight = new Map<number, Promise<Map<number, Buffer>>>();
  private size: number | undefined;
  /** Range requests made and bytes fetched so far (for benchmarks and tests). */
  readonly stats = { requests: 0, bytes: 0 };

  constructor(
    private readonly storage: Storage,
    readonly uri: string,
    options: StorageSourceOptions = {},
  ) {
    this.blockSize = options.blockSize ?? 65536;
    this.maxBlocks = Math.max(4, Math.floor((options.cacheBytes ?? 64 * 1024 * 1024) / this.blockSize));
  }

  get fileSize(): number | null {
    return this.size ?? null;
  }

  async fetch(slices: readonly Slice[], signal?: AbortSignal): Promise<ArrayBuffer[]> {
    // the blocks this call needs, pinned here: a call needing more than the cache holds must not
    // lose its first blocks to eviction before its slices are assembled
    const pinned = new Map<number, Buffer>();
    const needed = new Set<number>();
    const waiting = new Set<Promise<Map<number, Buffer>>>();
    for (const s of slices) {
      const first = Math.floor(s.offset / this.blockSize);
      let last = Math.floor((s.offset + Math.max(1, s.length) - 1) / this.blockSize);
      if (this.size !== undefined) {
        last = Math.min(last, Math.floor(Math.max(0, this.size - 1) / this.blockSize));
      }
      for (let b = first; b <= last; b++) {
        const cached = this.blocks.get(b);
        if (cached) {
          pinned.set(b, cached);
          this.remember(b, cached); // most recently used
          continue;
        }
        // geotiff.js asks for neighbouring tiles concurrently: share a read already in flight
        const pending = this.inFlight.get(b);
        if (pending) waiting.add(pending);
        else needed.add(b);
      }
    }
    const sorted = [...needed].sort((x, y) => x - y);
    const runs: [number, number][] = [];
    for (const b of sorted) {
      const run = runs[runs.length - 1];
      if (run && run[1] === b - 1) run[1] = b;
      else runs.push([b, b]);
    }
    for (const [first, last] of runs) {
      const read = this.readBlocks(first, last, signal);
      for (let b = first; b <= last; b++) this.inFlight.set(b, read);
      waiting.add(read);
      void read
        .finally(() => {
          for (let b = first; b <= last; b++) if (this.inFlight.get(b) === read) this.inFlight.delete(b);
        })
        .catch(() => undefined);
    }
    for (const got of await Promise.all(waiting)) for (const [b, data] of got) pinned.set(b, data);
    return slices.map((s) => this.assemble(s, pinned));
  }

  private async readBlocks(first: number, last: number, signal?: AbortSignal): Promise<Map<number, Buffer>> {
    const offset = first * this.blockSize;
    const length = (last - first + 1) * this.blockSize;
    const data = await this.storage.readRange(this.uri, offset, length, { signal });
    this.stats.requests++;
    this.stats.bytes += data.length;
    if (data.length < length) this.size = offset + data.length;
    const got = new Map<number, Buffer>();
    for (let b = first; b <= last; b++) {
      const start = (b - first) * this.blockSize;
      if (start >= data.length) break;
      const block = data.subarray(start, Math.min(data.length, start + this.blockSize));
      got.set(b, block);
      this.remember(b, block);
    }
    return got;
  }

  async close(): Promise<void> {
    this.blocks.clear();
  }

  private remember(block: number, data: Buffer): void {
    this.blocks.delete(block);
    this.blocks.set(block, data);
    while (this.blocks.size > this.maxBlocks) {
      const oldest = this.blocks.keys().next().value as number;
      this.blocks.delete(oldest);
    }
  }

  private assemble(slice: Slice, pinned: ReadonlyMap<number, Buffer>): ArrayBuffer {
    const end =
      this.size === undefined
        ? slice.offset + slice.length
        : Math.min(this.size, slice.offset + slice.length);
    const out = new Uint8Array(Math.max(0, end - slice.offset));
    let pos = slice.offset;
    while (pos < end) {
      const b = Math.floor(pos / this.blockSize);
      const block = pinned.get(b);
      if (!block) break;
      const from = pos - b * this.blockSize;
      const n = Math.min(block.length - from, end - pos);
      if (n <= 0) break;
      out.set(block.subarray(from, from + n), pos - slice.offset);
      pos += n;
    }
    return out.buffer.slice(0, pos - slice.offset);
  }
}

export interface OpenedTiff {
  readonly tiff: GeoTIFF;
  readonly source: StorageSource;
}

/** Opens a (Geo)TIFF at a local path or s3:// URI for header, window and overview reads. */
export async function openTiff(
  storage: Storage,
  uri: string,
  options: StorageSourceOptions & { signal?: AbortSignal; cacheTiles?: boolean } = {},
): Promise<OpenedTiff> {
  const source = new StorageSource(storage, uri, options);
  const tiff = await GeoTIFF.fromSource(source as never, undefined, options.signal);
  // decoded-tile caching helps repeated window reads but grows with the image: opt in
  tiff.cache = options.cacheTiles ?? false;
  return { tiff, source };
}
