/**
 * Rendered tiles kept by bytes: a least-recently-used map of PNG buffers (and of empty tiles,
 * counted as a few bytes each) whose total stays within a budget, and one shared render per key
 * while it runs, so concurrent requests for the same tile decode its pixels once.
 */

/** Bytes an empty-tile entry is counted as (its key and map slot). */
const EMPTY_ENTRY_BYTES = 64;

/** What a tile cache did so far. */
export interface TileCacheStats {
  /** Renders started (a tile rendered again after eviction counts twice). */
  readonly renders: number;
  /** Requests answered from the cache or by joining a running render. */
  readonly hits: number;
  /** Bytes held now (PNG bytes plus {@link EMPTY_ENTRY_BYTES} per empty tile). */
  readonly bytes: number;
  /** Largest `bytes` ever held. */
  readonly peakBytes: number;
  readonly entries: number;
  readonly maxBytes: number;
}

/** An LRU of rendered tiles (PNG or null for empty) bounded by `maxBytes`. */
export class TileCache {
  private readonly entries = new Map<string, Buffer | null>();
  private readonly running = new Map<string, Promise<Buffer | null>>();
  private bytes = 0;
  private peakBytes = 0;
  private renders = 0;
  private hits = 0;

  constructor(readonly maxBytes: number) {}

  /**
   * The tile under `key`: cached, joined while another request renders it, or rendered by
   * `render` (once, whoever asks meanwhile). A request's `signal` only stops its own wait; the
   * render goes on for the others and the cache.
   */
  async get(key: string, render: () => Promise<Buffer | null>, signal?: AbortSignal): Promise<Buffer | null> {
    signal?.throwIfAborted();
    if (this.entries.has(key)) {
      const tile = this.entries.get(key)!;
      this.entries.delete(key);
      this.entries.set(key, tile);
      this.hits++;
      return tile;
    }
    let pending = this.running.get(key);
    if (pending) this.hits++;
    else {
      this.renders++;
      pending = render().then(
        (tile) => {
          this.running.delete(key);
          this.put(key, tile);
          return tile;
        },
        (error: unknown) => {
          this.running.delete(key);
          throw error;
        },
      );
      this.running.set(key, pending);
    }
    if (!signal) return pending;
    return new Promise<Buffer | null>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      pending.then(
        (tile) => {
          signal.removeEventListener('abort', onAbort);
          resolve(tile);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error as Error);
        },
      );
    });
  }

  private put(key: string, tile: Buffer | null): void {
    const size = tile ? tile.length : EMPTY_ENTRY_BYTES;
    if (size > this.maxBytes) return;
    this.entries.set(key, tile);
    this.bytes += size;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v ? v.length : EMPTY_ENTRY_BYTES;
    }
    this.peakBytes = Math.max(this.peakBytes, this.bytes);
  }

  stats(): TileCacheStats {
    return {
      renders: this.renders,
      hits: this.hits,
      bytes: this.bytes,
      peakBytes: this.peakBytes,
      entries: this.entries.size,
      maxBytes: this.maxBytes,
    };
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}
