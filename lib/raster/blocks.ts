/**
 * What every raster reader gives the commands, whatever the file format: an open raster with
 * header facts and levels (full resolution, overviews), each level a grid of blocks decoded on
 * demand. TIFFs (lib/raster/reader.ts) and JPEG 2000 files (lib/raster/jp2-reader.ts) implement it.
 */
import type { Storage } from '../storage/types.js';
import { RasterError } from './errors.js';
import type { RasterInfo, SampleType } from './info.js';

/** Typed arrays pixels are read into. */
export type BandArray =
  Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/** One band of a decoded block: sample (r, c) of the block is `data[offset + r * rowStride + c * pixelStride]`. */
export interface BandView {
  readonly data: BandArray;
  readonly offset: number;
  readonly pixelStride: number;
  readonly rowStride: number;
  /**
   * The samples are still TIFF horizontal differences (Predictor 2): sample c of a row is the
   * sum, modulo 2^bits, of samples 0..c. Only when the caller asked for it with `differenced`.
   */
  readonly differenced?: boolean;
}

/** A decoded block: its place in the image (clipped to the image) and one view per requested band. */
export interface DecodedBlock {
  readonly col: number;
  readonly row: number;
  readonly width: number;
  readonly height: number;
  readonly bands: readonly BandView[];
}

/** A block by its position in the block grid. */
export interface BlockRef {
  readonly bx: number;
  readonly by: number;
}

export interface ReadBlocksOptions {
  readonly signal?: AbortSignal;
  /** Blocks decoded at once. @default 4 */
  readonly concurrency?: number;
  /**
   * The caller sums horizontal differences itself (see {@link BandView.differenced}), which
   * saves a pass over the data; otherwise they are undone for the requested bands.
   * @default false
   */
  readonly differenced?: boolean;
}

export const CTORS: Record<
  SampleType,
  new (buffer: ArrayBuffer, offset: number, length: number) => BandArray
> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};
/** Bytes per sample of each sample type. */
export const SAMPLE_BYTES: Readonly<Record<SampleType, number>> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  float64: 8,
};

/** One level of an open raster (full resolution or an overview) as a grid of blocks. */
export interface ImageBlocks {
  readonly width: number;
  readonly height: number;
  readonly blockWidth: number;
  readonly blockHeight: number;
  readonly blocksAcross: number;
  readonly blocksDown: number;
  /** Bands as the reader delivers them (3 for YCbCr and palette TIFFs, read as RGB). */
  readonly bands: number;
  /** Sample type as delivered (uint8 for YCbCr and palette TIFFs). */
  readonly dtype: SampleType;
  /** How blocks are decoded: TIFF `blocks`, `rgb` or `windows` (see reader.ts), or `jp2` tiles. */
  readonly mode: 'blocks' | 'rgb' | 'windows' | 'jp2';
  /** The blocks that cover image rows [y0, y1), row by row. */
  blocksInRows(y0: number, y1: number): BlockRef[];
  /** The pixel rectangle of a block, clipped to the image. */
  blockRect(ref: BlockRef): { col: number; row: number; width: number; height: number };
  /**
   * Decodes `blocks` with `bands` (0-based, as delivered) and calls `onBlock` for each, in any
   * order; at most `concurrency` blocks are decoded at a time.
   */
  readBlocks(
    blocks: readonly BlockRef[],
    bands: readonly number[],
    onBlock: (block: DecodedBlock) => void,
    options?: ReadBlocksOptions,
  ): Promise<void>;
}

/** An open raster: header facts, its levels as block readers, and where it lives. */
export interface OpenRaster {
  readonly storage: Storage;
  readonly uri: string;
  readonly info: RasterInfo;
  readonly fileSize: number;
  /** Level indices of the overviews, largest first (for {@link level}). */
  readonly overviewIndices: readonly number[];
  /** GTModelTypeGeoKey for GeoTIFF outputs (1 projected, 2 geographic), when known. */
  readonly modelType: number | undefined;
  /** Level `index` (0: full resolution; see {@link overviewIndices}). */
  level(index?: number): Promise<ImageBlocks>;
  close(): Promise<void>;
}

/** The block grid arithmetic shared by readers. */
export abstract class BlockGrid {
  abstract readonly width: number;
  abstract readonly height: number;
  abstract readonly blockWidth: number;
  abstract readonly blockHeight: number;
  abstract readonly bands: number;

  /** Throws unless every band (0-based) is one of this image's. */
  protected checkBands(bands: readonly number[], uri: string): void {
    for (const b of bands) {
      if (!Number.isInteger(b) || b < 0 || b >= this.bands) {
        throw new RasterError(`${uri}: band ${b + 1} is out of range (valid: 1..${this.bands})`);
      }
    }
  }

  get blocksAcross(): number {
    return Math.ceil(this.width / this.blockWidth);
  }

  get blocksDown(): number {
    return Math.ceil(this.height / this.blockHeight);
  }

  /** The blocks that cover image rows [y0, y1), row by row. */
  blocksInRows(y0: number, y1: number): BlockRef[] {
    const refs: BlockRef[] = [];
    const first = Math.floor(y0 / this.blockHeight);
    const last = Math.min(this.blocksDown - 1, Math.floor((y1 - 1) / this.blockHeight));
    for (let by = first; by <= last; by++)
      for (let bx = 0; bx < this.blocksAcross; bx++) refs.push({ bx, by });
    return refs;
  }

  /** The pixel rectangle of a block, clipped to the image. */
  blockRect(ref: BlockRef): { col: number; row: number; width: number; height: number } {
    const col = ref.bx * this.blockWidth;
    const row = ref.by * this.blockHeight;
    return {
      col,
      row,
      width: Math.min(this.blockWidth, this.width - col),
      height: Math.min(this.blockHeight, this.height - row),
    };
  }
}
