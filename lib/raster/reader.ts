/**
 * Streaming pixel access to any TIFF that storage reaches (local path or s3://), block by block,
 * in bounded memory. A block is one tile or strip of the file: its compressed bytes are read with
 * range requests (neighbouring blocks merged into one), decoded (DEFLATE by native zlib on the
 * thread pool, other codecs by geotiff.js), and handed to the caller as views into the decoded
 * buffer, one per requested band, without copying pixels.
 *
 * Three ways to decode, chosen per image:
 * - `blocks`: compressions geotiff.js decodes block-wise (none, LZW, DEFLATE, PackBits, ZSTD);
 * - `rgb`: YCbCr (JPEG) and palette images go through geotiff.js `readRGB`, which converts them
 *   to 8-bit RGB (the raw samples of such files are not what anyone wants);
 * - `windows`: anything else geotiff.js reads (JPEG greyscale/RGB, LERC, WebP) through
 *   `readRasters` on each block's window.
 */
import { getDecoder } from 'geotiff';
import type { GeoTIFF, GeoTIFFImage } from 'geotiff';
import { promisify } from 'node:util';
import { inflate } from 'node:zlib';
import type { Storage } from '../storage/types.js';
import { registerNativeDecoders } from './decoders.js';
import { RasterError } from './errors.js';
import { readRasterInfo } from './info.js';
import type { RasterInfo, SampleType } from './info.js';
import { BlockGrid, CTORS, SAMPLE_BYTES } from './blocks.js';
import type {
  BandArray,
  BandView,
  BlockRef,
  DecodedBlock,
  ImageBlocks,
  OpenRaster,
  ReadBlocksOptions,
} from './blocks.js';
import { JP2_SIGNATURE } from './jp2-boxes.js';
import { Jp2Raster } from './jp2-reader.js';
import { openTiff } from './source.js';
import type { StorageSource } from './source.js';

registerNativeDecoders();
const inflateAsync = promisify(inflate);

export { BlockGrid, SAMPLE_BYTES };
export type { BandArray, BandView, BlockRef, DecodedBlock, ImageBlocks, OpenRaster, ReadBlocksOptions };

/** Compressions geotiff.js decodes block by block with the generic decoder interface. */
const BLOCK_CODECS = new Set([1, 5, 8, 32946, 32773, 50000]);
/** Largest range request when merging neighbouring blocks. */
const MAX_RUN_BYTES = 16 * 1024 * 1024;
/** Gap between two blocks' bytes that is still read as one request. */
const MAX_GAP_BYTES = 64 * 1024;

function tagValue(image: GeoTIFFImage, name: string): unknown {
  const dir = image.getFileDirectory();
  return dir.hasTag(name as never) ? (dir.getValue(name as never) as unknown) : undefined;
}

function numberList(value: unknown): number[] {
  if (value === undefined || value === null) return [];
  if (typeof value === 'number') return [value];
  return Array.from(value as ArrayLike<number | bigint>, Number);
}

/** The blocks (tiles or strips) of one image of a TIFF: full resolution or an overview. */
export class TiffBlocks extends BlockGrid implements ImageBlocks {
  readonly width: number;
  readonly height: number;
  readonly blockWidth: number;
  readonly blockHeight: number;
  /** Bands as the reader delivers them (3 for YCbCr and palette images, read as RGB). */
  readonly bands: number;
  /** Sample type as delivered (uint8 for YCbCr and palette images). */
  readonly dtype: SampleType;
  readonly mode: 'blocks' | 'rgb' | 'windows';
  private readonly planar: 1 | 2;
  private readonly fileBands: number;
  private offsets: number[] | undefined;
  private counts: number[] | undefined;

  constructor(
    private readonly raster: TiffRaster,
    readonly image: GeoTIFFImage,
    fileDtype: SampleType,
  ) {
    super();
    this.width = image.getWidth();
    this.height = image.getHeight();
    this.blockWidth = image.getTileWidth();
    this.blockHeight = image.getTileHeight();
    this.fileBands = image.getSamplesPerPixel();
    this.planar = image.planarConfiguration;
    const compression = Number(tagValue(image, 'Compression') ?? 1);
    const photometric = Number(tagValue(image, 'PhotometricInterpretation') ?? 1);
    if (photometric === 6 || photometric === 3) {
      this.mode = 'rgb';
      this.bands = 3;
      this.dtype = 'uint8';
    } else {
      this.mode = BLOCK_CODECS.has(compression) ? 'blocks' : 'windows';
      this.bands = this.fileBands;
      this.dtype = fileDtype;
    }
  }

  /**
   * Decodes `blocks` with `bands` (0-based, as delivered) and calls `onBlock` for each, in any
   * order; at most `concurrency` blocks are decoded at a time and none is kept afterwards.
   */
  async readBlocks(
    blocks: readonly BlockRef[],
    bands: readonly number[],
    onBlock: (block: DecodedBlock) => void,
    options: ReadBlocksOptions = {},
  ): Promise<void> {
    this.checkBands(bands, this.raster.uri);
    if (blocks.length === 0) return;
    const tasks = this.mode === 'blocks' ? await this.planRuns(blocks, bands) : undefined;
    const concurrency = Math.max(1, options.concurrency ?? 4);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < blocks.length) {
        const i = next++;
        options.signal?.throwIfAborted();
        const ref = blocks[i]!;
        const block =
          this.mode === 'blocks'
            ? await this.decodeBlock(ref, bands, tasks![i]!, options.differenced ?? false, options.signal)
            : await this.readWindow(ref, bands, options.signal);
        onBlock(block);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, blocks.length) }, worker));
  }

  private async loadOffsets(): Promise<void> {
    if (this.offsets && this.counts) return;
    const dir = this.image.getFileDirectory();
    const tiled = this.image.isTiled;
    this.offsets = numberList(await dir.loadValue((tiled ? 'TileOffsets' : 'StripOffsets') as never));
    this.counts = numberList(await dir.loadValue((tiled ? 'TileByteCounts' : 'StripByteCounts') as never));
  }

  /** For each block, the file pieces (one per band plane) to fetch, grouped into shared range reads. */
  private async planRuns(blocks: readonly BlockRef[], bands: readonly number[]): Promise<BlockPieces[]> {
    await this.loadOffsets();
    const offsets = this.offsets!;
    const counts = this.counts!;
    const perPlane = this.blocksAcross * this.blocksDown;
    const planes = this.planar === 2 ? [...new Set(bands)] : [0];
    const pieces: Piece[] = [];
    const byBlock: BlockPieces[] = blocks.map((ref) => {
      const list = planes.map((plane) => {
        const index = plane * (this.planar === 2 ? perPlane : 0) + ref.by * this.blocksAcross + ref.bx;
        const offset = offsets[index];
        const count = counts[index];
        if (offset === undefined || count === undefined) {
          throw new RasterError(
            `${this.raster.uri}: the TIFF lists ${offsets.length} blocks but block ${index} is needed (corrupt file?)`,
          );
        }
        const end = offset + count;
        if (count > 0 && end > this.raster.fileSize) {
          throw new RasterError(
            `${this.raster.uri}: truncated TIFF: ${this.image.isTiled ? 'tile' : 'strip'} ${index} needs bytes ${offset}..${end} but the file has ${this.raster.fileSize} bytes`,
          );
        }
        const piece: Piece = { plane, index, offset, count, run: undefined };
        if (count > 0) pieces.push(piece);
        return piece;
      });
      return { pieces: list };
    });
    // neighbouring pieces (in file order) share one range request
    const sorted = [...pieces].sort((a, b) => a.offset - b.offset);
    let run: Run | undefined;
    for (const p of sorted) {
      if (run && p.offset - run.end <= MAX_GAP_BYTES && p.offset + p.count - run.start <= MAX_RUN_BYTES) {
        run.end = Math.max(run.end, p.offset + p.count);
      } else {
        run = { start: p.offset, end: p.offset + p.count, data: undefined, pending: 0 };
      }
      run.pending++;
      p.run = run;
    }
    return byBlock;
  }

  /** The compressed bytes of a piece, as a view into its run's buffer (no copy). */
  private async fetchPiece(piece: Piece, signal: AbortSignal | undefined): Promise<Buffer> {
    const run = piece.run!;
    run.data ??= this.raster.storage.readRange(this.raster.uri, run.start, run.end - run.start, { signal });
    const data = await run.data;
    // the run's bytes are dropped once its last piece has them
    piece.run = undefined;
    if (--run.pending === 0) run.data = undefined;
    const from = piece.offset - run.start;
    if (data.length < from + piece.count) {
      throw new RasterError(
        `${this.raster.uri}: truncated TIFF: block ${piece.index} needs bytes ${piece.offset}..${piece.offset + piece.count} but the file ended`,
      );
    }
    return data.subarray(from, from + piece.count);
  }

  /** Decompresses one piece: DEFLATE with native zlib straight from the read buffer, other codecs with geotiff.js. */
  private async decompress(piece: Piece, compressed: Buffer, expected: number): Promise<Uint8Array> {
    try {
      if (this.raster.nativeInflate(this)) {
        return await inflateAsync(compressed, { chunkSize: Math.max(64 * 1024, expected + 1024) });
      }
      const decoder = await this.raster.decoderFor(this);
      const copy = compressed.buffer.slice(
        compressed.byteOffset,
        compressed.byteOffset + compressed.byteLength,
      );
      return new Uint8Array((await decoder.decode(copy)) as ArrayBuffer);
    } catch (error) {
      throw new RasterError(
        `${this.raster.uri}: cannot decode block ${piece.index} (${this.raster.info.compression}): ${(error as Error).message}`,
      );
    }
  }

  private async decodeBlock(
    ref: BlockRef,
    bands: readonly number[],
    plan: BlockPieces,
    differenced: boolean,
    signal: AbortSignal | undefined,
  ): Promise<DecodedBlock> {
    const rect = this.blockRect(ref);
    const bytes = SAMPLE_BYTES[this.dtype];
    // strips hold only their own rows; tiles are always whole (padded) tiles
    const rows = this.image.isTiled ? this.blockHeight : rect.height;
    const samplesPerRow = this.blockWidth * (this.planar === 1 ? this.fileBands : 1);
    const needed = rows * samplesPerRow * bytes;
    const planes = new Map<number, { data: BandArray; differenced: boolean }>();
    await Promise.all(
      plan.pieces.map(async (piece) => {
        let bytesOut: Uint8Array;
        let diff = false;
        if (piece.count === 0) {
          // a sparse block: GDAL writes no bytes for blocks that are all nodata
          bytesOut = new Uint8Array(needed);
          const fill = this.raster.info.nodata;
          if (fill !== null && fill !== 0)
            new CTORS[this.dtype](bytesOut.buffer as ArrayBuffer, 0, needed / bytes).fill(fill);
        } else {
          bytesOut = await this.decompress(piece, await this.fetchPiece(piece, signal), needed);
          if (bytesOut.byteLength < needed) {
            throw new RasterError(
              `${this.raster.uri}: block ${piece.index} decodes to ${bytesOut.byteLength} bytes but ${needed} are expected (corrupt or truncated file?)`,
            );
          }
          // typed arrays need aligned offsets; zlib's own buffers are, pooled slices may not be
          if (bytesOut.byteOffset % bytes !== 0) bytesOut = bytesOut.slice();
          if (!this.image.littleEndian && bytes > 1) swapBytes(bytesOut, bytes);
          diff = this.raster.nativeInflate(this) && this.raster.predictor(this) === 2;
        }
        const data = new CTORS[this.dtype](
          bytesOut.buffer as ArrayBuffer,
          bytesOut.byteOffset,
          Math.floor(bytesOut.byteLength / bytes),
        );
        planes.set(piece.plane, { data, differenced: diff });
      }),
    );
    const views = bands.map((b): BandView => {
      const plane = planes.get(this.planar === 2 ? b : 0)!;
      const view: BandView =
        this.planar === 2
          ? { data: plane.data, offset: 0, pixelStride: 1, rowStride: this.blockWidth }
          : { data: plane.data, offset: b, pixelStride: this.fileBands, rowStride: samplesPerRow };
      return plane.differenced ? { ...view, differenced: true } : view;
    });
    if (differenced || !views.some((v) => v.differenced)) return { ...rect, bands: views };
    // a band asked for twice (grey as R, G and B) shares its samples: sum them once
    const undone = new Map<BandArray, Set<number>>();
    const plain = views.map((v): BandView => {
      if (!v.differenced) return v;
      const offsets = undone.get(v.data) ?? new Set<number>();
      undone.set(v.data, offsets);
      if (!offsets.has(v.offset)) {
        offsets.add(v.offset);
        undoDifferences(v, rect.width, rect.height);
      }
      return { data: v.data, offset: v.offset, pixelStride: v.pixelStride, rowStride: v.rowStride };
    });
    return { ...rect, bands: plain };
  }

  private async readWindow(
    ref: BlockRef,
    bands: readonly number[],
    signal?: AbortSignal,
  ): Promise<DecodedBlock> {
    const rect = this.blockRect(ref);
    const window: [number, number, number, number] = [
      rect.col,
      rect.row,
      rect.col + rect.width,
      rect.row + rect.height,
    ];
    try {
      if (this.mode === 'rgb') {
        const data = (await this.image.readRGB({
          window,
          interleave: true,
          ...(signal ? { signal } : {}),
        })) as unknown as Uint8Array;
        const views = bands.map((b) => ({ data, offset: b, pixelStride: 3, rowStride: rect.width * 3 }));
        return { ...rect, bands: views };
      }
      const data = (await this.image.readRasters({
        window,
        samples: [...bands],
        interleave: false,
        ...(signal ? { signal } : {}),
      })) as unknown as BandArray[];
      const views = bands.map((_, i) => ({
        data: data[i]!,
        offset: 0,
        pixelStride: 1,
        rowStride: rect.width,
      }));
      return { ...rect, bands: views };
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new RasterError(
        `${this.raster.uri}: cannot decode pixels ${window.join(',')} (${this.raster.info.compression}, ${this.raster.info.photometric}): ${(error as Error).message}`,
      );
    }
  }
}

interface Run {
  readonly start: number;
  end: number;
  data: Promise<Buffer> | undefined;
  /** Pieces that still need the run's bytes. */
  pending: number;
}

interface Piece {
  readonly plane: number;
  readonly index: number;
  readonly offset: number;
  readonly count: number;
  run: Run | undefined;
}

interface BlockPieces {
  readonly pieces: readonly Piece[];
}

/** Sums TIFF horizontal differences in place for the first `width` samples of each row (typed arrays wrap as the predictor does). */
export function undoDifferences(view: BandView, width: number, height: number): void {
  const { data, offset, pixelStride: p, rowStride } = view;
  for (let r = 0; r < height; r++) {
    let i = offset + r * rowStride;
    const end = i + width * p;
    for (i += p; i < end; i += p) data[i] = data[i]! + data[i - p]!;
  }
}

function swapBytes(data: Uint8Array, bytes: number): void {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength - (data.byteLength % bytes));
  if (bytes === 2) b.swap16();
  else if (bytes === 4) b.swap32();
  else b.swap64();
}

const MAGIC_NAMES: readonly [string, string][] = [
  ['89504e47', 'a PNG image'],
  ['ffd8ff', 'a JPEG image'],
  ['7b', 'JSON text'],
  ['504b0304', 'a ZIP archive'],
  ['1f8b', 'a gzip file'],
];

/** An open TIFF: header facts, its images as block readers, and where it lives. */
export class TiffRaster implements OpenRaster {
  private readonly decoders = new Map<TiffBlocks, ReturnType<typeof getDecoder>>();
  private readonly levels = new Map<number, TiffBlocks>();

  private constructor(
    readonly storage: Storage,
    readonly uri: string,
    readonly tiff: GeoTIFF,
    readonly source: StorageSource,
    readonly info: RasterInfo,
    readonly fileSize: number,
    /** Image indices of the overviews, largest first. */
    readonly overviewIndices: readonly number[],
    readonly modelType: number | undefined,
  ) {}

  /**
   * Opens a TIFF for streaming reads, checking what would otherwise fail late or obscurely:
   * not a TIFF, a truncated or corrupt header, zero bands, an unsupported sample format.
   */
  static async open(
    storage: Storage,
    uri: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<TiffRaster> {
    const stat = await storage.stat(uri, options);
    if (!stat) throw new RasterError(`${uri}: no such file`);
    const head = await storage.readRange(uri, 0, 8, options);
    const magic = head.subarray(0, 4).toString('hex');
    if (!['49492a00', '4d4d002a', '49492b00', '4d4d002b'].includes(magic)) {
      const known = MAGIC_NAMES.find(([prefix]) => magic.startsWith(prefix));
      const bytes = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new RasterError(
        head.length < 8
          ? `${uri}: not a TIFF file (${stat.size} bytes, too short for a TIFF header)`
          : `${uri}: not a TIFF file (it starts with bytes ${bytes}${known ? `, ${known[1]}` : ''}; a TIFF starts with 'II*' or 'MM*')`,
      );
    }
    let tiff: GeoTIFF;
    let source: StorageSource;
    let image: GeoTIFFImage;
    let count: number;
    try {
      ({ tiff, source } = await openTiff(storage, uri, options));
      image = await tiff.getImage(0);
      count = await tiff.getImageCount();
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new RasterError(
        `${uri}: cannot read the TIFF header (${stat.size} bytes; truncated or corrupt?): ${(error as Error).message}`,
      );
    }
    const bands = image.getSamplesPerPixel();
    if (!(bands >= 1)) {
      throw new RasterError(
        `${uri}: the TIFF has ${bands} bands (SamplesPerPixel = ${bands}); expected at least 1`,
      );
    }
    const bits = numberList(tagValue(image, 'BitsPerSample'));
    const formats = numberList(tagValue(image, 'SampleFormat'));
    if (new Set(bits).size > 1 || new Set(formats).size > 1) {
      throw new RasterError(
        `${uri}: unsupported sample format: bands differ (BitsPerSample ${bits.join(',')}, SampleFormat ${formats.join(',') || '1'}); expected one type for every band`,
      );
    }
    let info: RasterInfo;
    try {
      info = await readRasterInfo(tiff);
    } catch (error) {
      if (error instanceof Error && error.name === 'RasterError') {
        throw new RasterError(`${uri}: ${error.message}`);
      }
      throw new RasterError(`${uri}: cannot read the TIFF header: ${(error as Error).message}`);
    }
    const overviews: number[] = [];
    for (let i = 1; i < count; i++) {
      const ov = await tiff.getImage(i);
      // not the masks of an internal mask (NewSubfileType bit 4), which GDAL also writes reduced
      const mask = (Number(tagValue(ov, 'NewSubfileType') ?? 0) & 4) !== 0;
      if (!mask && ov.getWidth() < image.getWidth() && ov.getSamplesPerPixel() === bands) overviews.push(i);
    }
    const modelType = (image.getGeoKeys() as Record<string, unknown> | null)?.GTModelTypeGeoKey;
    return new TiffRaster(
      storage,
      uri,
      tiff,
      source,
      info,
      stat.size,
      overviews,
      typeof modelType === 'number' ? modelType : undefined,
    );
  }

  /** Image `index` of the file (0: full resolution; see {@link overviewIndices}). */
  async level(index = 0): Promise<TiffBlocks> {
    let level = this.levels.get(index);
    if (!level) {
      level = new TiffBlocks(this, await this.tiff.getImage(index), this.info.dtype);
      this.levels.set(index, level);
    }
    return level;
  }

  /**
   * Whether blocks of this image are inflated here with native zlib and the predictor left to
   * the reader (DEFLATE with no predictor or the integer one); else geotiff.js decodes.
   */
  nativeInflate(level: TiffBlocks): boolean {
    const compression = Number(tagValue(level.image, 'Compression') ?? 1);
    return (compression === 8 || compression === 32946) && this.predictor(level) !== 3;
  }

  /** The TIFF Predictor of an image (1 none, 2 horizontal, 3 floating point). */
  predictor(level: TiffBlocks): number {
    return Number(tagValue(level.image, 'Predictor') ?? 1);
  }

  /** The geotiff.js decoder for an image's compression (DEFLATE: native zlib). */
  decoderFor(level: TiffBlocks): ReturnType<typeof getDecoder> {
    let decoder = this.decoders.get(level);
    if (!decoder) {
      const image = level.image;
      const bits = numberList(tagValue(image, 'BitsPerSample'));
      decoder = getDecoder(Number(tagValue(image, 'Compression') ?? 1), {
        tileWidth: image.getTileWidth(),
        tileHeight: image.getTileHeight(),
        planarConfiguration: image.planarConfiguration,
        bitsPerSample: bits.length ? bits : [8],
        predictor: Number(tagValue(image, 'Predictor') ?? 1),
        samplesPerPixel: image.getSamplesPerPixel(),
      });
      this.decoders.set(level, decoder);
    }
    return decoder;
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

/** Whether the first bytes of a file are a JP2 signature box or a raw JPEG 2000 codestream. */
export function isJpeg2000Head(head: Buffer): boolean {
  return (
    head.subarray(0, 12).toString('hex') === JP2_SIGNATURE ||
    head.subarray(0, 4).toString('hex') === 'ff4fff51'
  );
}

/**
 * Opens a raster for streaming reads: a TIFF ({@link TiffRaster.open}) or a JPEG 2000 file,
 * JP2 or raw codestream ({@link Jp2Raster.open}), told apart by their first bytes.
 */
export async function openRaster(
  storage: Storage,
  uri: string,
  options: { signal?: AbortSignal } = {},
): Promise<OpenRaster> {
  const stat = await storage.stat(uri, options);
  if (!stat) throw new RasterError(`${uri}: no such file`);
  const head = await storage.readRange(uri, 0, 12, options);
  if (isJpeg2000Head(head)) return Jp2Raster.open(storage, uri, stat.size, options);
  return TiffRaster.open(storage, uri, options);
}
