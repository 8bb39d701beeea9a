/**
 * Source pixels for grid chips: decoded blocks of one image of an open raster, fetched through
 * the block reader (byte ranges on S3) as the samples of a chip need them and kept in a bounded
 * LRU cache, so neighbouring chips (processed in row order) reuse them.
 */
import { SAMPLE_BYTES, type DecodedBlock, type ImageBlocks } from '../raster/reader.js';
import type { ChipMap, Resampling, SourcePixels } from './warp.js';

/** Decoded blocks of the bands in use, by block; implements {@link SourcePixels} for the warp. */
export class BlockCache implements SourcePixels {
  private readonly blocks = new Map<number, DecodedBlock>();
  private readonly blockBytes: number;
  private readonly maxBlocks: number;
  private last: DecodedBlock | undefined;
  private lastKey = -1;
  /** Blocks decoded so far (a block decoded twice after eviction counts twice). */
  decoded = 0;

  constructor(
    private readonly level: ImageBlocks,
    /** 0-based bands as the reader delivers them. */
    private readonly bands: readonly number[],
    /** @default 128 MiB */
    cacheBytes = 128 * 2 ** 20,
  ) {
    this.blockBytes = level.blockWidth * level.blockHeight * level.bands * SAMPLE_BYTES[level.dtype];
    this.maxBlocks = Math.max(4, Math.floor(cacheBytes / this.blockBytes));
  }

  /** Blocks that the samples of `map` read (bilinear: their neighbours too). */
  neededBlocks(map: ChipMap, resampling: Resampling): number[] {
    const { width, height, blockWidth, blockHeight, blocksAcross } = this.level;
    const keys = new Set<number>();
    const add = (col: number, row: number): void => {
      if (col < 0 || row < 0 || col >= width || row >= height) return;
      keys.add(Math.floor(row / blockHeight) * blocksAcross + Math.floor(col / blockWidth));
    };
    for (let i = 0; i < map.xs.length; i++) {
      const x = map.xs[i]!;
      const y = map.ys[i]!;
      if (!(x >= 0 && x < width && y >= 0 && y < height)) continue;
      if (resampling === 'nearest') add(Math.floor(x), Math.floor(y));
      else {
        const c = Math.floor(x - 0.5);
        const r = Math.floor(y - 0.5);
        add(c, r);
        add(c + 1, r);
        add(c, r + 1);
        add(c + 1, r + 1);
      }
    }
    return [...keys].sort((a, b) => a - b);
  }

  /** Decodes the blocks of `keys` that are not cached; evicts the least recently used others. */
  async load(keys: readonly number[], signal?: AbortSignal): Promise<void> {
    const across = this.level.blocksAcross;
    const missing = keys.filter((k) => {
      const block = this.blocks.get(k);
      if (!block) return true;
      this.blocks.delete(k);
      this.blocks.set(k, block);
      return false;
    });
    if (missing.length > 0) {
      await this.level.readBlocks(
        missing.map((k) => ({ bx: k % across, by: Math.floor(k / across) })),
        this.bands,
        (block) => {
          const key =
            Math.floor(block.row / this.level.blockHeight) * across + block.col / this.level.blockWidth;
          this.blocks.set(key, block);
          this.decoded++;
        },
        signal ? { signal } : {},
      );
    }
    const pinned = new Set(keys);
    for (const key of this.blocks.keys()) {
      if (this.blocks.size <= this.maxBlocks) break;
      if (!pinned.has(key)) this.blocks.delete(key);
    }
    this.last = undefined;
    this.lastKey = -1;
  }

  /** Whether every block of `keys` is cached now (a concurrent {@link load} may have evicted some). */
  hasAll(keys: readonly number[]): boolean {
    return keys.every((k) => this.blocks.has(k));
  }

  read(col: number, row: number, dst: Float64Array): void {
    const bx = Math.floor(col / this.level.blockWidth);
    const key = Math.floor(row / this.level.blockHeight) * this.level.blocksAcross + bx;
    let block = this.last;
    if (key !== this.lastKey || !block) {
      block = this.blocks.get(key);
      if (!block) throw new Error(`block ${key} of ${this.level.blocksAcross} across was not loaded`);
      this.last = block;
      this.lastKey = key;
    }
    const r = row - block.row;
    const c = col - block.col;
    const views = block.bands;
    for (let b = 0; b < views.length; b++) {
      const view = views[b]!;
      dst[b] = view.data[view.offset + r * view.rowStride + c * view.pixelStride]!;
    }
  }
}
