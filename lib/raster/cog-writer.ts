/**
 * A streaming Cloud Optimized GeoTIFF writer, in bounded memory whatever the image size.
 *
 * Rows arrive in order. Full-resolution tiles are compressed into a scratch file as whole rows
 * of tiles complete; each overview level (factor 2 until the level fits one tile, as GDAL's COG
 * driver does by default) is computed from the rows of the level above as they arrive and
 * goes to its own scratch file, so no level is ever held whole. `close()` then assembles the
 * COG: header, GDAL's structural metadata ("ghost area"), every IFD (full resolution first,
 * then overviews largest to smallest), then the tile data of the smallest overview first and
 * full resolution last, each level row-major, each tile with a 4-byte size leader and its last
 * 4 bytes repeated as trailer. The file is written under a temporary name and renamed; scratch
 * files are removed on success, failure and abort.
 *
 * Overview resampling follows GDAL 3.6's `average` and `nearest` (source windows of
 * `width / overviewWidth` pixels, partial edge pixels weighted by their coverage). With
 * no-data, pixels equal to it are left out of the average and an all-no-data window gives
 * no-data; with an alpha band, pixels whose alpha is 0 are left out of every band's average,
 * the alpha band's own included (so a window with any opaque pixel stays opaque), and an
 * all-transparent window gives 0, as GDAL does with its alpha mask.
 *
 * @see https://docs.ogc.org/is/21-026/21-026.html (OGC Cloud Optimized GeoTIFF)
 * @see https://gdal.org/drivers/raster/cog.html (GDAL's layout and structural metadata)
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { deflate } from 'node:zlib';
import {
  GeoTiffWriteError,
  cutTileRow,
  encodeIfd,
  imageFields,
  newPixelArray,
  resolveOptions,
} from './geotiff-writer.js';
import type {
  GeoTiffWriterOptions,
  PixelArray,
  PixelArrayTypes,
  RasterDType,
  ResolvedOptions,
  TiffField,
} from './geotiff-writer.js';

const deflateAsync = promisify(deflate);

/** How overview pixels are computed from the level above. */
export type OverviewResampling = 'average' | 'nearest';

/** The resampling names the writer knows, for messages and CLI choices. */
export const OVERVIEW_RESAMPLINGS: readonly OverviewResampling[] = ['average', 'nearest'];

/** Options of {@link CogWriter}: those of the GeoTIFF writer plus the overview resampling. */
export interface CogWriterOptions extends GeoTiffWriterOptions {
  /**
   * Overview resampling: 'average' for imagery, 'nearest' for class or label rasters (values kept).
   * @default 'average'
   */
  readonly resampling?: OverviewResampling;
}

/**
 * The overview sizes GDAL's COG driver makes by default: factors 2, 4, 8, ... of the full size,
 * rounded down, until both sides fit one tile. Empty when the image fits one tile.
 */
export function overviewSizes(width: number, height: number, tileSize: number): [number, number][] {
  const sizes: [number, number][] = [];
  let w = width;
  let h = height;
  for (let factor = 2; w > tileSize || h > tileSize; factor *= 2) {
    w = Math.max(1, Math.floor(width / factor));
    h = Math.max(1, Math.floor(height / factor));
    sizes.push([w, h]);
  }
  return sizes;
}

function fail(path: string, message: string): never {
  throw new GeoTiffWriteError(`COG '${path}': ${message}`);
}

/** The compressed tiles of one level, appended to a scratch file in row-major order. */
class LevelFile {
  readonly offsets: number[] = [];
  readonly counts: number[] = [];
  readonly tileRows: number;
  tileRowsWritten = 0;
  private position = 0;
  private buffer: PixelArray;
  private buffered = 0;

  constructor(
    readonly options: ResolvedOptions,
    readonly path: string,
    readonly fh: FileHandle,
  ) {
    this.tileRows = Math.ceil(options.height / options.tileSize);
    this.buffer = newPixelArray(options.dtype, options.tileSize * options.width * options.bands);
  }

  /** Bytes of tile data in the scratch file. */
  get size(): number {
    return this.position;
  }

  /** Appends whole rows; every completed row of tiles is compressed and written. */
  async writeRows(data: PixelArray): Promise<void> {
    const { width, bands, tileSize, height } = this.options;
    const rowSamples = width * bands;
    let rows = data.length / rowSamples;
    let from = 0;
    while (rows > 0) {
      const target = Math.min(tileSize, height - this.tileRowsWritten * tileSize);
      const take = Math.min(rows, target - this.buffered);
      this.buffer.set(
        data.subarray(from * rowSamples, (from + take) * rowSamples),
        this.buffered * rowSamples,
      );
      this.buffered += take;
      from += take;
      rows -= take;
      if (this.buffered === target) {
        await this.writeTileRow(target);
        this.buffered = 0;
      }
    }
  }

  private async writeTileRow(rows: number): Promise<void> {
    const o = this.options;
    const tiles = cutTileRow(o, this.buffer.subarray(0, rows * o.width * o.bands), rows);
    const encoded =
      o.compression === 'deflate'
        ? await Promise.all(tiles.map((t) => deflateAsync(t, { level: o.deflateLevel })))
        : tiles;
    let length = 0;
    for (const chunk of encoded) {
      this.offsets.push(this.position + length);
      this.counts.push(chunk.byteLength);
      length += chunk.byteLength;
    }
    const { bytesWritten } = await this.fh.writev(encoded, this.position);
    if (bytesWritten !== length) fail(this.path, `short write: ${bytesWritten} of ${length} bytes`);
    this.position += length;
    this.tileRowsWritten++;
  }
}

/** Source windows of each destination pixel along one axis, as GDAL's average computes them. */
interface Windows {
  readonly start: Int32Array;
  readonly end: Int32Array;
  /** Weight of the first and of the last source pixel (inner pixels weigh 1). */
  readonly first: Float64Array;
  readonly last: Float64Array;
}

function averageWindows(src: number, dst: number): Windows {
  const ratio = src / dst;
  const start = new Int32Array(dst);
  const end = new Int32Array(dst);
  const first = new Float64Array(dst);
  const last = new Float64Array(dst);
  for (let i = 0; i < dst; i++) {
    const a = i * ratio;
    const b = (i + 1) * ratio;
    const s = Math.trunc(a + 1e-8);
    let e = Math.ceil(b - 1e-8);
    if (e === s) e++;
    if (e > src) e = src;
    start[i] = s;
    end[i] = e;
    first[i] = e === s + 1 ? 1 : 1 - (a - s);
    last[i] = 1 - (e - b);
  }
  return { start, end, first, last };
}

function nearestIndex(src: number, dst: number): Int32Array {
  const ratio = src / dst;
  const index = new Int32Array(dst);
  for (let i = 0; i < dst; i++) index[i] = Math.min(src - 1, Math.trunc(0.5 + i * ratio));
  return index;
}

/** The value GDAL writes instead of a computed value that happens to equal no-data. */
function nodataReplacement(dtype: RasterDType, nodata: number, max: number): number {
  if (dtype === 'float32' || dtype === 'float64') return nodata;
  return nodata === max ? nodata - 1 : nodata + 1;
}

const DTYPE_RANGE: Readonly<Record<RasterDType, readonly [number, number]>> = {
  uint8: [0, 255],
  uint16: [0, 65535],
  int16: [-32768, 32767],
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
  float32: [-Infinity, Infinity],
  float64: [-Infinity, Infinity],
};

/** Computes one overview level's rows from the rows of the level above, streaming. */
class Reducer {
  private readonly rows: PixelArray[] = [];
  /** Source row index of rows[0]. */
  private firstRow = 0;
  private received = 0;
  private nextDst = 0;
  private readonly xw: Windows | undefined;
  private readonly yw: Windows | undefined;
  private readonly xn: Int32Array | undefined;
  private readonly yn: Int32Array | undefined;
  private readonly integer: boolean;
  private readonly min: number;
  private readonly max: number;

  constructor(
    private readonly src: ResolvedOptions,
    private readonly dst: ResolvedOptions,
    private readonly mode: OverviewResampling,
  ) {
    this.integer = src.dtype !== 'float32' && src.dtype !== 'float64';
    [this.min, this.max] = DTYPE_RANGE[src.dtype];
    if (mode === 'average') {
      this.xw = averageWindows(src.width, dst.width);
      this.yw = averageWindows(src.height, dst.height);
    } else {
      this.xn = nearestIndex(src.width, dst.width);
      this.yn = nearestIndex(src.height, dst.height);
    }
  }

  /** Takes the next source rows (copied); returns the destination rows now complete (maybe none). */
  push(data: PixelArray): PixelArray {
    const rowSamples = this.src.width * this.src.bands;
    for (let r = 0; r * rowSamples < data.length; r++) {
      this.rows.push(data.slice(r * rowSamples, (r + 1) * rowSamples));
      this.received++;
    }
    const out: PixelArray[] = [];
    while (this.nextDst < this.dst.height) {
      const j = this.nextDst;
      const [ys, ye] = this.yn ? [this.yn[j]!, this.yn[j]! + 1] : [this.yw!.start[j]!, this.yw!.end[j]!];
      if (ye > this.received) break;
      out.push(this.yn ? this.nearestRow(ys) : this.averageRow(j, ys, ye));
      this.nextDst++;
      const keepFrom =
        this.nextDst < this.dst.height
          ? this.yn
            ? this.yn[this.nextDst]!
            : this.yw!.start[this.nextDst]!
          : this.received;
      while (this.firstRow < keepFrom && this.rows.length > 0) {
        this.rows.shift();
        this.firstRow++;
      }
    }
    const dstRow = this.dst.width * this.dst.bands;
    const joined = newPixelArray(this.dst.dtype, out.length * dstRow);
    out.forEach((row, i) => joined.set(row, i * dstRow));
    return joined;
  }

  private row(y: number): PixelArray {
    return this.rows[y - this.firstRow]!;
  }

  private nearestRow(y: number): PixelArray {
    const { bands } = this.src;
    const source = this.row(y);
    const out = newPixelArray(this.dst.dtype, this.dst.width * bands);
    const xn = this.xn!;
    for (let i = 0; i < this.dst.width; i++) {
      const from = xn[i]! * bands;
      for (let b = 0; b < bands; b++) out[i * bands + b] = source[from + b]!;
    }
    return out;
  }

  private averageRow(j: number, ys: number, ye: number): PixelArray {
    const { bands, nodata, alpha } = this.src;
    const xw = this.xw!;
    const yw = this.yw!;
    const width = this.dst.width;
    const out = newPixelArray(this.dst.dtype, width * bands);
    const alphaBand = alpha ? bands - 1 : -1;
    const hasNodata = nodata !== undefined;
    const nanNodata = hasNodata && Number.isNaN(nodata);
    const replacement = hasNodata ? nodataReplacement(this.src.dtype, nodata, this.max) : 0;
    const plain = !hasNodata && !alpha;
    if (plain && this.integer && ye - ys === 2 && this.twoByTwo()) {
      const r0 = this.row(ys);
      const r1 = this.row(ys + 1);
      for (let i = 0; i < width; i++) {
        const p = 2 * i * bands;
        for (let b = 0; b < bands; b++) {
          const sum = r0[p + b]! + r0[p + bands + b]! + r1[p + b]! + r1[p + bands + b]!;
          out[i * bands + b] = Math.floor((sum + 2) / 4);
        }
      }
      return out;
    }
    const rows: PixelArray[] = [];
    const wy: number[] = [];
    for (let y = ys; y < ye; y++) {
      rows.push(this.row(y));
      wy.push(y === ys ? yw.first[j]! : y === ye - 1 ? yw.last[j]! : 1);
    }
    for (let i = 0; i < width; i++) {
      const xs = xw.start[i]!;
      const xe = xw.end[i]!;
      for (let b = 0; b < bands; b++) {
        let total = 0;
        let weight = 0;
        for (let k = 0; k < rows.length; k++) {
          const row = rows[k]!;
          for (let x = xs; x < xe; x++) {
            const v = row[x * bands + b]!;
            if (hasNodata && (nanNodata ? Number.isNaN(v) : v === nodata)) continue;
            if (alphaBand >= 0 && row[x * bands + alphaBand] === 0) continue;
            const w = wy[k]! * (x === xs ? xw.first[i]! : x === xe - 1 ? xw.last[i]! : 1);
            total += v * w;
            weight += w;
          }
        }
        let value: number;
        if (weight === 0) value = hasNodata ? nodata : 0;
        else {
          value = total / weight;
          if (this.integer) value = Math.min(this.max, Math.max(this.min, Math.floor(value + 0.5)));
          if (hasNodata && value === nodata) value = replacement;
        }
        out[i * bands + b] = value;
      }
    }
    return out;
  }

  /** Whether every destination column averages exactly two source columns of weight 1. */
  private twoByTwo(): boolean {
    return this.src.width === 2 * this.dst.width;
  }
}

/**
 * Writes one Cloud Optimized GeoTIFF by rows. Create with {@link CogWriter.open}; feed every
 * image row in order with {@link writeRows}; finish with {@link close}, or give up with
 * {@link abort}. The same call pattern as the plain GeoTIFF writer's `writeRows`.
 */
export class CogWriter<D extends RasterDType = RasterDType> {
  /** Sizes of the overview levels, largest first. */
  readonly overviews: readonly (readonly [number, number])[];
  private readonly reducers: Reducer[] = [];
  private rowsWritten = 0;
  private state: 'open' | 'closed' | 'aborted' = 'open';
  private pending: Promise<void> = Promise.resolve();
  private readonly onAbort: () => void;
  private finalHandle: FileHandle | undefined;
  private aborting: Promise<void> | undefined;

  private constructor(
    /** Destination path. */
    readonly path: string,
    private readonly tempPath: string,
    private readonly levels: LevelFile[],
    private readonly options: ResolvedOptions & { readonly bigTiffOption: boolean | 'auto' },
    private readonly resampling: OverviewResampling,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.overviews = levels.slice(1).map((l) => [l.options.width, l.options.height] as const);
    for (let k = 1; k < levels.length; k++) {
      this.reducers.push(new Reducer(levels[k - 1]!.options, levels[k]!.options, resampling));
    }
    this.onAbort = () => void this.abort().catch(() => undefined);
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Opens a writer: validates the options and creates the scratch files next to `path`. */
  static async open<D extends RasterDType>(
    path: string,
    options: CogWriterOptions & { readonly dtype: D },
  ): Promise<CogWriter<D>> {
    options.signal?.throwIfAborted();
    const resampling = options.resampling ?? 'average';
    if (!OVERVIEW_RESAMPLINGS.includes(resampling)) {
      fail(
        path,
        `expected 'resampling' to be one of ${OVERVIEW_RESAMPLINGS.join(', ')} but received ${String(resampling)}`,
      );
    }
    const resolved = resolveOptions(path, { ...options, bigTiff: false });
    const sizes = overviewSizes(resolved.width, resolved.height, resolved.tileSize);
    const stem = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
    const levels: LevelFile[] = [];
    const close = async (): Promise<void> => {
      for (const l of levels) {
        await l.fh.close().catch(() => undefined);
        await unlink(l.path).catch(() => undefined);
      }
    };
    try {
      const all: [number, number][] = [[resolved.width, resolved.height], ...sizes];
      for (let k = 0; k < all.length; k++) {
        const [width, height] = all[k]!;
        const levelPath = `${stem}.level${k}`;
        const fh = await open(levelPath, 'wx+');
        levels.push(new LevelFile({ ...resolved, width, height }, levelPath, fh));
      }
    } catch (err) {
      await close();
      throw new GeoTiffWriteError(
        `COG '${path}': cannot create a file in its folder: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    return new CogWriter<D>(
      path,
      stem,
      levels,
      { ...resolved, bigTiffOption: options.bigTiff ?? 'auto' },
      resampling,
      options.signal,
    );
  }

  /** Number of full-resolution rows written so far. */
  get rows(): number {
    return this.rowsWritten;
  }

  /**
   * Appends whole image rows (pixel-interleaved, `rows * width * bands` samples, band fastest)
   * after the rows written so far. The data is used before this resolves, so the caller may
   * reuse its buffer.
   */
  async writeRows(data: PixelArrayTypes[D]): Promise<void> {
    this.checkOpen();
    const work = this.pending.then(() => this.writeNow(data));
    this.pending = work.catch(() => undefined);
    try {
      await work;
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  private async writeNow(data: PixelArray): Promise<void> {
    this.checkOpen();
    const { width, height, bands } = this.options;
    const level0 = this.levels[0]!;
    if (!(data instanceof newPixelArray(this.options.dtype, 0).constructor)) {
      fail(
        this.path,
        `expected a typed array of ${this.options.dtype} but received ${data.constructor.name}`,
      );
    }
    const rowSamples = width * bands;
    if (data.length % rowSamples !== 0) {
      fail(
        this.path,
        `expected writeRows() data to hold whole rows of ${rowSamples} samples but received ${data.length}`,
      );
    }
    const rows = data.length / rowSamples;
    if (this.rowsWritten + rows > height) {
      fail(this.path, `writeRows() received more rows than the image height ${height}`);
    }
    await level0.writeRows(data);
    this.rowsWritten += rows;
    let rowsOfLevel: PixelArray = data;
    for (let k = 0; k < this.reducers.length; k++) {
      rowsOfLevel = this.reducers[k]!.push(rowsOfLevel);
      if (rowsOfLevel.length === 0) break;
      this.signal?.throwIfAborted();
      await this.levels[k + 1]!.writeRows(rowsOfLevel);
    }
  }

  /** Assembles the COG from the scratch files and renames it to the destination. */
  async close(): Promise<void> {
    this.checkOpen();
    try {
      await this.pending;
      this.checkOpen();
      for (const level of this.levels) {
        if (level.tileRowsWritten !== level.tileRows) {
          fail(
            this.path,
            `close() after ${this.rowsWritten} of ${this.options.height} rows; every row must be written`,
          );
        }
      }
      await this.assemble();
      this.state = 'closed';
      this.signal?.removeEventListener('abort', this.onAbort);
      await rename(this.tempPath, this.path);
      await this.removeScratch();
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** Stops writing and removes every temporary file; the destination is left untouched. Safe to call twice. */
  abort(): Promise<void> {
    this.aborting ??= this.abortOnce();
    return this.aborting;
  }

  private async abortOnce(): Promise<void> {
    const wasOpen = this.state === 'open';
    this.state = 'aborted';
    this.signal?.removeEventListener('abort', this.onAbort);
    if (wasOpen) await this.pending.catch(() => undefined);
    await this.finalHandle?.close().catch(() => undefined);
    if (wasOpen) await unlink(this.tempPath).catch(() => undefined);
    await this.removeScratch();
  }

  private async removeScratch(): Promise<void> {
    for (const level of this.levels) {
      await level.fh.close().catch(() => undefined);
      await unlink(level.path).catch(() => undefined);
    }
  }

  private checkOpen(): void {
    this.signal?.throwIfAborted();
    if (this.state !== 'open') fail(this.path, `the writer is ${this.state}`);
  }

  private async assemble(): Promise<void> {
    const levels = this.levels;
    const dataBytes = levels.reduce((n, l) => n + l.size + 8 * l.counts.length, 0);
    const tiles = levels.reduce((n, l) => n + l.counts.length, 0);
    const option = this.options.bigTiffOption;
    // Offsets are known only now, so 'auto' is decided on the real size.
    const big = option === 'auto' ? dataBytes + tiles * 16 + 1024 * 1024 > 0xffffffff : option;
    if (!big && option === false && dataBytes + tiles * 8 + 1024 * 1024 > 0xffffffff) {
      fail(
        this.path,
        `the file would pass 4 GB, too large for classic TIFF; write it with bigTiff: true or 'auto'`,
      );
    }
    const ghost = structuralMetadata();
    const headerBytes = big ? 16 : 8;
    let cursor = headerBytes + ghost.length;
    cursor += cursor % 2;
    const ifdStarts: number[] = [];
    const fieldsOf = (k: number, offsets: readonly number[]): TiffField[] => {
      const level = levels[k]!;
      return imageFields(
        { ...level.options, bigTiff: big },
        offsets,
        level.counts,
        k === 0 ? 'main' : 'overview',
      );
    };
    for (let k = 0; k < levels.length; k++) {
      ifdStarts.push(cursor);
      const placeholder = new Array<number>(levels[k]!.counts.length).fill(0);
      cursor += encodeIfd(fieldsOf(k, placeholder), cursor, big, 0).length;
    }
    // Tile data: smallest overview first, full resolution last; leader + tile + trailer each.
    const offsets: number[][] = levels.map(() => []);
    for (let k = levels.length - 1; k >= 0; k--) {
      for (const count of levels[k]!.counts) {
        offsets[k]!.push(cursor + 4);
        cursor += 4 + count + 4;
      }
    }
    const head: Buffer[] = [];
    const header = Buffer.alloc(headerBytes);
    header.write('II', 0, 'latin1');
    if (big) {
      header.writeUInt16LE(43, 2);
      header.writeUInt16LE(8, 4);
      header.writeBigUInt64LE(BigInt(ifdStarts[0]!), 8);
    } else {
      header.writeUInt16LE(42, 2);
      header.writeUInt32LE(ifdStarts[0]!, 4);
    }
    head.push(header, ghost);
    if ((headerBytes + ghost.length) % 2 === 1) head.push(Buffer.alloc(1));
    for (let k = 0; k < levels.length; k++) {
      head.push(encodeIfd(fieldsOf(k, offsets[k]!), ifdStarts[k]!, big, ifdStarts[k + 1] ?? 0));
    }
    const fh = await open(this.tempPath, 'wx');
    this.finalHandle = fh;
    let position = 0;
    const write = async (chunks: Buffer[]): Promise<void> => {
      const length = chunks.reduce((n, c) => n + c.length, 0);
      const { bytesWritten } = await fh.writev(chunks, position);
      if (bytesWritten !== length) fail(this.path, `short write: ${bytesWritten} of ${length} bytes`);
      position += length;
    };
    await write(head);
    const chunkBytes = 8 * 1024 * 1024;
    for (let k = levels.length - 1; k >= 0; k--) {
      const level = levels[k]!;
      let t = 0;
      while (t < level.counts.length) {
        this.signal?.throwIfAborted();
        const first = t;
        const start = level.offsets[t]!;
        let length = 0;
        while (t < level.counts.length && (length === 0 || length + level.counts[t]! <= chunkBytes)) {
          length += level.counts[t]!;
          t++;
        }
        const block = Buffer.alloc(length);
        const { bytesRead } = await level.fh.read(block, 0, length, start);
        if (bytesRead !== length)
          fail(this.path, `short read of scratch file: ${bytesRead} of ${length} bytes`);
        const out: Buffer[] = [];
        for (let i = first; i < t; i++) {
          const from = level.offsets[i]! - start;
          const tile = block.subarray(from, from + level.counts[i]!);
          const leader = Buffer.alloc(4);
          leader.writeUInt32LE(tile.length);
          const trailer = Buffer.alloc(4);
          tile.copy(trailer, 0, Math.max(0, tile.length - 4));
          out.push(leader, tile, trailer);
        }
        await write(out);
      }
    }
    if (position !== cursor) fail(this.path, `assembled ${position} bytes but the layout planned ${cursor}`);
    await fh.sync();
    await fh.close();
    this.finalHandle = undefined;
  }
}

/** GDAL's structural metadata block, which makes GDAL report LAYOUT=COG. */
function structuralMetadata(): Buffer {
  const body =
    [
      'LAYOUT=IFDS_BEFORE_DATA',
      'BLOCK_ORDER=ROW_MAJOR',
      'BLOCK_LEADER=SIZE_AS_UINT4',
      'BLOCK_TRAILER=LAST_4_BYTES_REPEATED',
      'KNOWN_INCOMPATIBLE_EDITION=NO',
    ].join('\n') + '\n ';
  const size = String(body.length).padStart(6, '0');
  return Buffer.from(`GDAL_STRUCTURAL_METADATA_SIZE=${size} bytes\n${body}`, 'latin1');
}
