/**
 * A streaming GeoTIFF writer: tiled, pixel-interleaved (PlanarConfiguration 1), DEFLATE with
 * an optional horizontal predictor, classic TIFF or BigTIFF, little-endian.
 *
 * Tiles are written as rows of tiles arrive; the image file directory (IFD) goes at the end
 * of the file and the header is patched to point at it on `close()`. Memory is bounded by
 * about two rows of tiles whatever the image size. The file is written under a temporary
 * name in the destination folder and renamed on `close()`; on any error or `abort()` the
 * temporary file is removed, so nothing partial is ever left at the destination.
 *
 * @see https://www.itu.int/itudoc/itu-t/com16/tiff-fx/docs/tiff6.pdf (TIFF 6.0)
 * @see https://docs.ogc.org/is/19-008r4/19-008r4.html (OGC GeoTIFF 1.1)
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { deflate } from 'node:zlib';
import type { GeoTransform } from '../geo/affine.js';
import { RasterError } from './errors.js';

const deflateAsync = promisify(deflate);

/** Sample types the writer supports, named as numpy/rasterio do. */
export type RasterDType = 'uint8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

/** The typed array that holds samples of each {@link RasterDType}. */
export interface PixelArrayTypes {
  uint8: Uint8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  uint32: Uint32Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
}

/** Any typed array the writer accepts. */
export type PixelArray = PixelArrayTypes[RasterDType];

type PixelArrayConstructor = new (length: number) => PixelArray;

interface DTypeInfo {
  readonly bytes: number;
  /** TIFF SampleFormat: 1 unsigned integer, 2 signed integer, 3 IEEE float. */
  readonly sampleFormat: 1 | 2 | 3;
  readonly ctor: PixelArrayConstructor;
  readonly min: number;
  readonly max: number;
}

const DTYPES: Readonly<Record<RasterDType, DTypeInfo>> = {
  uint8: { bytes: 1, sampleFormat: 1, ctor: Uint8Array, min: 0, max: 255 },
  uint16: { bytes: 2, sampleFormat: 1, ctor: Uint16Array, min: 0, max: 65535 },
  int16: { bytes: 2, sampleFormat: 2, ctor: Int16Array, min: -32768, max: 32767 },
  uint32: { bytes: 4, sampleFormat: 1, ctor: Uint32Array, min: 0, max: 4294967295 },
  int32: { bytes: 4, sampleFormat: 2, ctor: Int32Array, min: -2147483648, max: 2147483647 },
  float32: {
    bytes: 4,
    sampleFormat: 3,
    ctor: Float32Array,
    min: -3.4028234663852886e38,
    max: 3.4028234663852886e38,
  },
  float64: { bytes: 8, sampleFormat: 3, ctor: Float64Array, min: -Number.MAX_VALUE, max: Number.MAX_VALUE },
};

/** A zeroed typed array of `length` samples of `dtype`. */
export function newPixelArray<D extends RasterDType>(dtype: D, length: number): PixelArrayTypes[D] {
  return new DTYPES[dtype].ctor(length) as PixelArrayTypes[D];
}

/** The dtype names the writer knows, for messages and CLI choices. */
export const RASTER_DTYPES: readonly RasterDType[] = Object.keys(DTYPES) as RasterDType[];

/** Geographic (lon/lat) EPSG codes written as GeographicTypeGeoKey; anything else is taken as projected. */
const GEOGRAPHIC_EPSG = new Set([4326, 4258, 4269, 4283, 4167, 4617, 4612, 6668, 4674, 4019]);

/** Everything that describes the image to write. */
export interface GeoTiffWriterOptions {
  /** Image width in pixels. */
  readonly width: number;
  /** Image height in pixels. */
  readonly height: number;
  /** Number of bands (samples per pixel). */
  readonly bands: number;
  /** Sample type of every band. */
  readonly dtype: RasterDType;
  /**
   * Tile width and height in pixels; a multiple of 16 (a TIFF rule).
   * @default 512
   */
  readonly tileSize?: number;
  /**
   * Tile compression.
   * @default 'deflate'
   */
  readonly compression?: 'deflate' | 'none';
  /**
   * Horizontal differencing (TIFF Predictor 2) before DEFLATE; integer dtypes only.
   * @default true for integer dtypes with DEFLATE, false otherwise
   */
  readonly predictor?: boolean;
  /**
   * zlib level 1 (fastest) .. 9 (smallest).
   * @default 6
   */
  readonly deflateLevel?: number;
  /** GDAL-style geotransform of the image; omitted: no georeferencing tags. */
  readonly geotransform?: GeoTransform;
  /** EPSG code of the CRS; omitted: no GeoKeyDirectory. */
  readonly epsg?: number;
  /**
   * Whether `epsg` names a projected or a geographic CRS.
   * @default 'geographic' for 4326 and a few other lon/lat codes, else 'projected'
   */
  readonly crsKind?: 'projected' | 'geographic';
  /** Name written as the CRS citation. @default a known name for UTM/4326/3857, else `EPSG:<code>` */
  readonly crsName?: string;
  /** No-data value of every band (GDAL_NODATA tag); also fills the padding of edge tiles. */
  readonly nodata?: number;
  /** Band descriptions written in GDAL_METADATA (shown by gdalinfo, rasterio `descriptions`). */
  readonly bandNames?: readonly string[];
  /**
   * The last band is an alpha mask (ExtraSamples = unassociated alpha); 4 uint8 bands are then RGBA.
   * @default false
   */
  readonly alpha?: boolean;
  /**
   * BigTIFF (64-bit offsets): true, false, or 'auto' = when the file could exceed 4 GB.
   * @default 'auto'
   */
  readonly bigTiff?: boolean | 'auto';
  /** Aborting removes the temporary file; later calls reject with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** Error thrown for bad writer options or calls, naming the file, the field and the rule (a {@link RasterError}). */
export class GeoTiffWriteError extends RasterError {}

/** Validated writer options with defaults filled in (shared with the COG writer). */
export interface ResolvedOptions {
  readonly width: number;
  readonly height: number;
  readonly bands: number;
  readonly dtype: RasterDType;
  readonly tileSize: number;
  readonly compression: 'deflate' | 'none';
  readonly predictor: boolean;
  readonly deflateLevel: number;
  readonly geotransform: GeoTransform | undefined;
  readonly epsg: number | undefined;
  readonly crsKind: 'projected' | 'geographic';
  readonly crsName: string | undefined;
  readonly nodata: number | undefined;
  readonly bandNames: readonly string[] | undefined;
  readonly alpha: boolean;
  readonly bigTiff: boolean;
}

function fail(path: string, message: string): never {
  throw new GeoTiffWriteError(`GeoTIFF '${path}': ${message}`);
}

function checkInteger(
  path: string,
  field: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
    fail(path, `expected integer ${range} for '${field}' but received ${String(value)}`);
  }
  return value;
}

/** Validates writer options for `path` and fills in defaults; throws {@link GeoTiffWriteError}. */
export function resolveOptions(path: string, options: GeoTiffWriterOptions): ResolvedOptions {
  const width = checkInteger(path, 'width', options.width, 1);
  const height = checkInteger(path, 'height', options.height, 1);
  const bands = checkInteger(path, 'bands', options.bands, 1, 65535);
  const dtype = options.dtype;
  if (!Object.hasOwn(DTYPES, dtype)) {
    fail(path, `expected 'dtype' to be one of ${RASTER_DTYPES.join(', ')} but received ${String(dtype)}`);
  }
  const info = DTYPES[dtype];
  const tileSize = checkInteger(path, 'tileSize', options.tileSize ?? 512, 16, 65536 - 16);
  if (tileSize % 16 !== 0) fail(path, `expected 'tileSize' to be a multiple of 16 but received ${tileSize}`);
  const compression = options.compression ?? 'deflate';
  if (compression !== 'deflate' && compression !== 'none') {
    fail(path, `expected 'compression' to be one of deflate, none but received ${String(compression)}`);
  }
  const integer = info.sampleFormat !== 3;
  const predictor = options.predictor ?? (integer && compression === 'deflate');
  if (predictor && !integer) fail(path, `'predictor' applies to integer dtypes only, not ${dtype}`);
  if (predictor && compression !== 'deflate') fail(path, `'predictor' needs compression 'deflate'`);
  const deflateLevel = checkInteger(path, 'deflateLevel', options.deflateLevel ?? 6, 1, 9);
  const gt = options.geotransform;
  if (gt !== undefined) {
    if (gt.length !== 6 || !gt.every(Number.isFinite)) {
      fail(path, `expected 'geotransform' to be 6 finite numbers but received [${gt.join(', ')}]`);
    }
    if (gt[1] * gt[5] - gt[2] * gt[4] === 0) fail(path, `'geotransform' [${gt.join(', ')}] is singular`);
  }
  const epsg = options.epsg === undefined ? undefined : checkInteger(path, 'epsg', options.epsg, 1024, 32766);
  const crsKind =
    options.crsKind ?? (epsg !== undefined && GEOGRAPHIC_EPSG.has(epsg) ? 'geographic' : 'projected');
  const nodata = options.nodata;
  if (nodata !== undefined) {
    if (typeof nodata !== 'number')
      fail(path, `expected a number for 'nodata' but received ${String(nodata)}`);
    if (integer && !(Number.isInteger(nodata) && nodata >= info.min && nodata <= info.max)) {
      fail(
        path,
        `expected 'nodata' to be an integer in ${info.min}..${info.max} for ${dtype} but received ${nodata}`,
      );
    }
  }
  const alpha = options.alpha ?? false;
  if (alpha && bands < 2)
    fail(path, `'alpha' needs at least 2 bands (colour + alpha) but 'bands' is ${bands}`);
  if (options.bandNames !== undefined && options.bandNames.length !== bands) {
    fail(path, `expected ${bands} 'bandNames' but received ${options.bandNames.length}`);
  }
  const resolved: Omit<ResolvedOptions, 'bigTiff'> = {
    width,
    height,
    bands,
    dtype,
    tileSize,
    compression,
    predictor,
    deflateLevel,
    geotransform: gt,
    epsg,
    crsKind,
    crsName: options.crsName,
    nodata,
    bandNames: options.bandNames,
    alpha,
  };
  const bigTiffOption = options.bigTiff ?? 'auto';
  const bigTiff = bigTiffOption === 'auto' ? needsBigTiff(resolved) : bigTiffOption;
  return { ...resolved, bigTiff };
}

/**
 * Whether an image could exceed the 4 GB reach of classic TIFF offsets, judged from its
 * uncompressed size (DEFLATE can grow incompressible data slightly, which is allowed for).
 */
export function needsBigTiff(
  options: Pick<GeoTiffWriterOptions, 'width' | 'height' | 'bands' | 'dtype' | 'tileSize'>,
): boolean {
  const tileSize = options.tileSize ?? 512;
  const tiles = Math.ceil(options.width / tileSize) * Math.ceil(options.height / tileSize);
  const tileBytes = tileSize * tileSize * options.bands * DTYPES[options.dtype].bytes;
  // zlib's worst case is ~0.03% + a few bytes per block; 1/1000 + 1 KiB per tile is generous.
  const worstTile = tileBytes + Math.ceil(tileBytes / 1000) + 1024;
  const ifdAndTags = 64 * 1024 + tiles * 16 + options.bands * 8;
  return 16 + tiles * worstTile + ifdAndTags > 0xffffffff;
}

// TIFF field types.
const ASCII = 2;
const SHORT = 3;
const LONG = 4;
const DOUBLE = 12;
const LONG8 = 16;
type FieldType = typeof ASCII | typeof SHORT | typeof LONG | typeof DOUBLE | typeof LONG8;
const FIELD_SIZE: Record<FieldType, number> = { [ASCII]: 1, [SHORT]: 2, [LONG]: 4, [DOUBLE]: 8, [LONG8]: 8 };

interface Field {
  readonly tag: number;
  readonly type: FieldType;
  readonly count: number;
  /** The value bytes, little-endian. */
  readonly data: Buffer;
}

function numericField(tag: number, type: Exclude<FieldType, typeof ASCII>, values: readonly number[]): Field {
  const data = Buffer.alloc(values.length * FIELD_SIZE[type]);
  values.forEach((v, i) => {
    if (type === SHORT) data.writeUInt16LE(v, i * 2);
    else if (type === LONG) data.writeUInt32LE(v, i * 4);
    else if (type === DOUBLE) data.writeDoubleLE(v, i * 8);
    else data.writeBigUInt64LE(BigInt(v), i * 8);
  });
  return { tag, type, count: values.length, data };
}

function asciiField(tag: number, text: string): Field {
  const data = Buffer.from(`${text}\0`, 'latin1');
  return { tag, type: ASCII, count: data.length, data };
}

/** Name of well-known CRSs for the citation keys. */
function defaultCrsName(epsg: number): string | undefined {
  if (epsg === 4326) return 'WGS 84';
  if (epsg === 3857) return 'WGS 84 / Pseudo-Mercator';
  if (epsg >= 32601 && epsg <= 32660) return `WGS 84 / UTM zone ${epsg - 32600}N`;
  if (epsg >= 32701 && epsg <= 32760) return `WGS 84 / UTM zone ${epsg - 32700}S`;
  return undefined;
}

/** GeoKeyDirectoryTag and GeoAsciiParamsTag for an EPSG code. */
function geoKeyFields(epsg: number, kind: 'projected' | 'geographic', name: string): Field[] {
  const ascii = `${name}|`;
  // [key id, tag location (0 = value inline), count, value or offset], sorted by key id.
  const keys: number[][] =
    kind === 'projected'
      ? [
          [1024, 0, 1, 1], // GTModelTypeGeoKey = ModelTypeProjected
          [1025, 0, 1, 1], // GTRasterTypeGeoKey = RasterPixelIsArea
          [1026, 34737, ascii.length, 0], // GTCitationGeoKey
          [3072, 0, 1, epsg], // ProjectedCSTypeGeoKey
        ]
      : [
          [1024, 0, 1, 2], // GTModelTypeGeoKey = ModelTypeGeographic
          [1025, 0, 1, 1], // GTRasterTypeGeoKey = RasterPixelIsArea
          [2048, 0, 1, epsg], // GeographicTypeGeoKey
          [2049, 34737, ascii.length, 0], // GeogCitationGeoKey
        ];
  const directory = [1, 1, 1, keys.length, ...keys.flat()];
  return [numericField(34735, SHORT, directory), asciiField(34737, ascii)];
}

function gdalMetadataXml(bandNames: readonly string[]): string {
  const escape = (s: string): string =>
    s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const items = bandNames.map(
    (name, i) => `  <Item name="DESCRIPTION" sample="${i}" role="description">${escape(name)}</Item>`,
  );
  return `<GDALMetadata>\n${items.join('\n')}\n</GDALMetadata>`;
}

/** Text GDAL expects in the GDAL_NODATA tag. */
function nodataText(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  return String(value);
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * Writes one GeoTIFF by rows of tiles. Create with {@link GeoTiffWriter.open}; feed every tile
 * row in order with {@link writeTileRow} (or any number of whole rows with {@link writeRows});
 * finish with {@link close}, or give up with {@link abort}.
 */
export class GeoTiffWriter<D extends RasterDType = RasterDType> {
  /** Number of tiles across. */
  readonly tilesAcross: number;
  /** Number of tile rows, i.e. calls to `writeTileRow`. */
  readonly tileRows: number;
  /** Whether the file is written as BigTIFF. */
  readonly bigTiff: boolean;

  private readonly info: DTypeInfo;
  private readonly tileOffsets: number[] = [];
  private readonly tileByteCounts: number[] = [];
  private position: number;
  private nextTileRow = 0;
  private pending: Promise<void> = Promise.resolve();
  private failure: unknown = undefined;
  private state: 'open' | 'closed' | 'aborted' = 'open';
  /** Rows given to `writeRows` that do not yet make a whole tile row. */
  private rowBuffer: PixelArray | undefined;
  private rowBufferRows = 0;
  private readonly onAbort: () => void;

  private constructor(
    /** Destination path. */
    readonly path: string,
    private readonly tempPath: string,
    private readonly fh: FileHandle,
    private readonly options: ResolvedOptions,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.info = DTYPES[options.dtype];
    this.tilesAcross = Math.ceil(options.width / options.tileSize);
    this.tileRows = Math.ceil(options.height / options.tileSize);
    this.bigTiff = options.bigTiff;
    this.position = options.bigTiff ? 16 : 8;
    this.onAbort = () => void this.abort().catch(() => undefined);
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Opens a writer: validates the options and creates the temporary file next to `path`. */
  static async open<D extends RasterDType>(
    path: string,
    options: GeoTiffWriterOptions & { readonly dtype: D },
  ): Promise<GeoTiffWriter<D>> {
    options.signal?.throwIfAborted();
    const resolved = resolveOptions(path, options);
    // The same temporary naming as lib/storage's writeFileAtomic, so listings skip files in flight.
    const tempPath = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`);
    let fh: FileHandle;
    try {
      fh = await open(tempPath, 'wx');
    } catch (err) {
      throw new GeoTiffWriteError(
        `GeoTIFF '${path}': cannot create a file in its folder: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const writer = new GeoTiffWriter<D>(path, tempPath, fh, resolved, options.signal);
    try {
      const header = Buffer.alloc(writer.position);
      header.write('II', 0, 'latin1');
      if (resolved.bigTiff) {
        header.writeUInt16LE(43, 2);
        header.writeUInt16LE(8, 4); // bytes per offset
      } else {
        header.writeUInt16LE(42, 2);
      }
      await fh.write(header, 0, header.length, 0);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer;
  }

  /** Number of image rows in tile row `index` (the last one may be short). */
  rowsInTileRow(index: number): number {
    const { height, tileSize } = this.options;
    return Math.min(tileSize, height - index * tileSize);
  }

  /**
   * Writes tile row `index` (0, 1, 2, ... in order): `data` holds the image rows
   * [index * tileSize, index * tileSize + rows) pixel-interleaved across the full width
   * (`rows * width * bands` samples, band fastest). `rows` is tileSize, or what is left of the
   * image for the last tile row (a full tileSize there is accepted and the extra rows ignored).
   * The data is copied before this resolves, so the caller may reuse its buffer.
   */
  async writeTileRow(index: number, data: PixelArrayTypes[D]): Promise<void> {
    this.checkOpen();
    try {
      if (this.rowBufferRows > 0) {
        fail(
          this.path,
          `writeTileRow(${index}) called with ${this.rowBufferRows} rows from writeRows() not yet flushed`,
        );
      }
      await this.queueTileRow(index, data);
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /**
   * Appends whole image rows (pixel-interleaved, `rows * width * bands` samples) after the rows
   * written so far; rows are buffered until they complete a row of tiles.
   */
  async writeRows(data: PixelArrayTypes[D]): Promise<void> {
    this.checkOpen();
    try {
      this.checkArray(data);
      const { width, bands, tileSize } = this.options;
      const rowSamples = width * bands;
      if (data.length % rowSamples !== 0) {
        fail(
          this.path,
          `expected writeRows() data to hold whole rows of ${rowSamples} samples but received ${data.length}`,
        );
      }
      let rows = data.length / rowSamples;
      let from = 0;
      while (rows > 0) {
        const index = this.nextTileRow;
        if (index >= this.tileRows) {
          fail(this.path, `writeRows() received more rows than the image height ${this.options.height}`);
        }
        const target = this.rowsInTileRow(index);
        if (this.rowBufferRows === 0 && rows >= target) {
          await this.queueTileRow(index, data.subarray(from * rowSamples, (from + target) * rowSamples));
          from += target;
          rows -= target;
          continue;
        }
        this.rowBuffer ??= new this.info.ctor(tileSize * rowSamples);
        const take = Math.min(rows, target - this.rowBufferRows);
        this.rowBuffer.set(
          data.subarray(from * rowSamples, (from + take) * rowSamples),
          this.rowBufferRows * rowSamples,
        );
        this.rowBufferRows += take;
        from += take;
        rows -= take;
        if (this.rowBufferRows === target) {
          this.rowBufferRows = 0;
          await this.queueTileRow(index, this.rowBuffer.subarray(0, target * rowSamples));
        }
      }
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** Writes the IFD, patches the header, and renames the temporary file to the destination. */
  async close(): Promise<void> {
    this.checkOpen();
    try {
      await this.settle();
      if (this.nextTileRow !== this.tileRows) {
        fail(
          this.path,
          `close() after ${this.nextTileRow} of ${this.tileRows} tile rows; every tile row must be written`,
        );
      }
      await this.writeDirectory();
      await this.fh.sync();
      await this.fh.close();
      this.state = 'closed';
      this.signal?.removeEventListener('abort', this.onAbort);
      await rename(this.tempPath, this.path);
    } catch (err) {
      await this.abort();
      throw err;
    }
  }

  /** Stops writing and removes the temporary file; the destination is left untouched. Safe to call twice. */
  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    const wasOpen = this.state === 'open';
    this.state = 'aborted';
    this.signal?.removeEventListener('abort', this.onAbort);
    if (wasOpen) {
      await this.pending.catch(() => undefined);
      await this.fh.close().catch(() => undefined);
    }
    await unlink(this.tempPath).catch(() => undefined);
  }

  private checkOpen(): void {
    if (this.state !== 'open') fail(this.path, `the writer is ${this.state}`);
    this.signal?.throwIfAborted();
  }

  private checkArray(data: PixelArray): void {
    if (!(data instanceof this.info.ctor)) {
      fail(
        this.path,
        `expected a ${this.info.ctor.name} for dtype ${this.options.dtype} but received ${data.constructor.name}`,
      );
    }
  }

  /** Waits for the previous tile row's write; rethrows its failure. */
  private async settle(): Promise<void> {
    await this.pending;
    if (this.failure !== undefined) throw this.failure;
  }

  private async queueTileRow(index: number, data: PixelArray): Promise<void> {
    this.checkArray(data);
    if (index !== this.nextTileRow) {
      fail(this.path, `expected tile row ${this.nextTileRow} (of ${this.tileRows}) but received ${index}`);
    }
    const { width, bands, tileSize } = this.options;
    const rows = this.rowsInTileRow(index);
    const rowSamples = width * bands;
    if (data.length !== rows * rowSamples && data.length !== tileSize * rowSamples) {
      fail(
        this.path,
        `expected tile row ${index} to hold ${rows} rows x ${width} px x ${bands} bands = ${rows * rowSamples} samples but received ${data.length}`,
      );
    }
    const tiles = this.cutTiles(data, rows);
    this.nextTileRow++;
    await this.settle();
    this.pending = this.encodeAndWrite(tiles).catch((err: unknown) => {
      this.failure = err;
    });
  }

  private cutTiles(data: PixelArray, rows: number): Uint8Array[] {
    return cutTileRow(this.options, data, rows);
  }

  private async encodeAndWrite(tiles: Uint8Array[]): Promise<void> {
    const { compression, deflateLevel } = this.options;
    const encoded =
      compression === 'deflate'
        ? await Promise.all(tiles.map((t) => deflateAsync(t, { level: deflateLevel })))
        : tiles;
    if (this.state !== 'open') return;
    let length = 0;
    for (const chunk of encoded) {
      this.tileOffsets.push(this.position + length);
      this.tileByteCounts.push(chunk.byteLength);
      length += chunk.byteLength;
    }
    if (!this.bigTiff && this.position + length > 0xffffffff) {
      fail(this.path, `the file grew past 4 GB, too large for classic TIFF; write it with bigTiff: true`);
    }
    const { bytesWritten } = await this.fh.writev(encoded, this.position);
    if (bytesWritten !== length) fail(this.path, `short write: ${bytesWritten} of ${length} bytes`);
    this.position += length;
  }

  /** Writes the IFD after the tiles and points the header at it. */
  private async writeDirectory(): Promise<void> {
    const fields = imageFields(this.options, this.tileOffsets, this.tileByteCounts, 'main');
    const ifdStart = align(this.position, 8);
    const tail = encodeIfd(fields, ifdStart, this.bigTiff, 0);
    if (!this.bigTiff && ifdStart + tail.length > 0xffffffff) {
      fail(this.path, `the file grew past 4 GB, too large for classic TIFF; write it with bigTiff: true`);
    }
    await this.fh.write(tail, 0, tail.length, ifdStart);
    const inlineBytes = this.bigTiff ? 8 : 4;
    const pointer = Buffer.alloc(inlineBytes);
    if (this.bigTiff) pointer.writeBigUInt64LE(BigInt(ifdStart));
    else pointer.writeUInt32LE(ifdStart);
    await this.fh.write(pointer, 0, pointer.length, this.bigTiff ? 8 : 4);
  }
}

/**
 * Cuts the tiles of one tile row out of `data` (`rows` image rows across the full width),
 * padded to full tiles with the no-data value, predictor applied, as little-endian bytes.
 */
export function cutTileRow(o: ResolvedOptions, data: PixelArray, rows: number): Uint8Array[] {
  const { width, bands, tileSize, nodata, predictor } = o;
  const info = DTYPES[o.dtype];
  const tiles: Uint8Array[] = [];
  const tileRowSamples = tileSize * bands;
  const pad = nodata ?? 0;
  const across = Math.ceil(width / tileSize);
  for (let t = 0; t < across; t++) {
    const x0 = t * tileSize;
    const cols = Math.min(tileSize, width - x0);
    const tile = new info.ctor(tileSize * tileRowSamples);
    if ((cols < tileSize || rows < tileSize) && pad !== 0) tile.fill(pad);
    const span = cols * bands;
    for (let r = 0; r < rows; r++) {
      const from = (r * width + x0) * bands;
      tile.set(data.subarray(from, from + span), r * tileRowSamples);
    }
    if (predictor) horizontalDifference(tile, tileSize, tileRowSamples, bands);
    let bytes = new Uint8Array(tile.buffer, tile.byteOffset, tile.byteLength);
    if (!LITTLE_ENDIAN_HOST && info.bytes > 1) bytes = swapToLittleEndian(bytes, info.bytes);
    tiles.push(bytes);
  }
  return tiles;
}

/** One TIFF directory entry, its value little-endian (opaque outside this module). */
export type TiffField = Field;

/**
 * The tags of one image: 'main' carries georeferencing, band names and no-data; 'overview' is
 * a reduced-resolution image of it (NewSubfileType 1) with the same sample layout, sized by `o`.
 */
export function imageFields(
  o: ResolvedOptions,
  tileOffsets: readonly number[],
  tileByteCounts: readonly number[],
  kind: 'main' | 'overview',
): TiffField[] {
  const big = o.bigTiff;
  const info = DTYPES[o.dtype];
  const rgb = o.dtype === 'uint8' && (o.bands === 3 || (o.alpha && o.bands === 4));
  const fields: Field[] = [
    numericField(256, LONG, [o.width]),
    numericField(257, LONG, [o.height]),
    numericField(258, SHORT, new Array<number>(o.bands).fill(info.bytes * 8)),
    numericField(259, SHORT, [o.compression === 'deflate' ? 8 : 1]),
    numericField(262, SHORT, [rgb ? 2 : 1]),
    numericField(277, SHORT, [o.bands]),
    numericField(284, SHORT, [1]),
    numericField(322, LONG, [o.tileSize]),
    numericField(323, LONG, [o.tileSize]),
    numericField(324, big ? LONG8 : LONG, tileOffsets),
    numericField(325, big ? LONG8 : LONG, tileByteCounts),
    numericField(339, SHORT, new Array<number>(o.bands).fill(info.sampleFormat)),
  ];
  if (kind === 'overview') fields.push(numericField(254, LONG, [1]));
  else fields.push(asciiField(305, 'geobatch'));
  if (o.predictor) fields.push(numericField(317, SHORT, [2]));
  const extra = o.bands - (rgb ? 3 : 1);
  if (extra > 0) {
    // ExtraSamples: 0 unspecified, 2 unassociated alpha
    const kinds = new Array<number>(extra).fill(0);
    if (o.alpha) kinds[extra - 1] = 2;
    fields.push(numericField(338, SHORT, kinds));
  }
  if (kind === 'main') {
    const gt = o.geotransform;
    if (gt !== undefined) {
      const northUp = gt[2] === 0 && gt[4] === 0 && gt[1] > 0 && gt[5] < 0;
      if (northUp) {
        fields.push(numericField(33550, DOUBLE, [gt[1], -gt[5], 0]));
        fields.push(numericField(33922, DOUBLE, [0, 0, 0, gt[0], gt[3], 0]));
      } else {
        fields.push(
          numericField(34264, DOUBLE, [
            gt[1],
            gt[2],
            0,
            gt[0],
            gt[4],
            gt[5],
            0,
            gt[3],
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
          ]),
        );
      }
    }
    if (o.epsg !== undefined) {
      fields.push(
        ...geoKeyFields(o.epsg, o.crsKind, o.crsName ?? defaultCrsName(o.epsg) ?? `EPSG:${o.epsg}`),
      );
    }
    if (o.bandNames !== undefined) fields.push(asciiField(42112, gdalMetadataXml(o.bandNames)));
  }
  // GDAL reads no-data per IFD: overviews carry it too, so readers of an overview mask it.
  if (o.nodata !== undefined) fields.push(asciiField(42113, nodataText(o.nodata)));
  fields.sort((a, b) => a.tag - b.tag);
  return fields;
}

/**
 * One IFD placed at file offset `ifdStart`: the entry count, the entries, the next-IFD offset
 * (`nextIfd`, 0 for the last), then the values that do not fit inline.
 */
export function encodeIfd(
  fields: readonly TiffField[],
  ifdStart: number,
  big: boolean,
  nextIfd: number,
): Buffer {
  const inlineBytes = big ? 8 : 4;
  const entrySize = big ? 20 : 12;
  const ifdSize = (big ? 8 : 2) + fields.length * entrySize + (big ? 8 : 4);
  let dataPos = align(ifdStart + ifdSize, 8);
  const placed = fields.map((f) => {
    if (f.data.length <= inlineBytes) return { field: f, offset: -1 };
    const offset = dataPos;
    dataPos = align(dataPos + f.data.length, 8);
    return { field: f, offset };
  });
  const tail = Buffer.alloc(dataPos - ifdStart);
  let p = 0;
  if (big) {
    tail.writeBigUInt64LE(BigInt(fields.length), p);
    p += 8;
  } else {
    tail.writeUInt16LE(fields.length, p);
    p += 2;
  }
  for (const { field, offset } of placed) {
    tail.writeUInt16LE(field.tag, p);
    tail.writeUInt16LE(field.type, p + 2);
    if (big) tail.writeBigUInt64LE(BigInt(field.count), p + 4);
    else tail.writeUInt32LE(field.count, p + 4);
    const valuePos = p + (big ? 12 : 8);
    if (offset < 0) field.data.copy(tail, valuePos);
    else {
      if (big) tail.writeBigUInt64LE(BigInt(offset), valuePos);
      else tail.writeUInt32LE(offset, valuePos);
      field.data.copy(tail, offset - ifdStart);
    }
    p += entrySize;
  }
  if (big) tail.writeBigUInt64LE(BigInt(nextIfd), p);
  else tail.writeUInt32LE(nextIfd, p);
  return tail;
}

/** `n` rounded up to a multiple of `to`. */
export function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** TIFF Predictor 2 in place: each sample minus the same band's sample one pixel to the left, per row. */
function horizontalDifference(tile: PixelArray, rows: number, rowSamples: number, bands: number): void {
  for (let r = 0; r < rows; r++) {
    const start = r * rowSamples;
    // Typed-array stores wrap modulo 2^bits, which is exactly the predictor's arithmetic.
    for (let i = start + rowSamples - 1; i >= start + bands; i--) {
      (tile[i] as number) -= tile[i - bands] as number;
    }
  }
}

function swapToLittleEndian(bytes: Uint8Array, size: number): Uint8Array {
  const copy = Buffer.from(bytes);
  if (size === 2) copy.swap16();
  else if (size === 4) copy.swap32();
  else copy.swap64();
  return copy;
}

/** Metadata for {@link writeGeoTiff}: the writer options without the size, which comes from the data. */
export type GeoTiffMetadata = Omit<GeoTiffWriterOptions, 'bands' | 'dtype'> & {
  /** Number of bands; required with pixel-interleaved data, implied by a per-band array. */
  readonly bands?: number;
  /** @default the dtype of the typed array */
  readonly dtype?: RasterDType;
};

/** The dtype that a typed array holds samples of. */
export function dtypeOfArray(data: PixelArray): RasterDType {
  for (const dtype of RASTER_DTYPES) if (data instanceof DTYPES[dtype].ctor) return dtype;
  throw new GeoTiffWriteError(`unsupported pixel array type ${String(data.constructor.name)}`);
}

/**
 * Writes a whole in-memory image as a GeoTIFF (for small images): `data` is either one
 * pixel-interleaved array (`height * width * bands` samples) or one array per band
 * (as geotiff.js `readRasters()` returns).
 */
export async function writeGeoTiff(
  path: string,
  data: PixelArray | readonly PixelArray[],
  meta: GeoTiffMetadata,
): Promise<void> {
  const perBand = Array.isArray(data);
  const bandArrays = data as readonly PixelArray[];
  const first: PixelArray | undefined = perBand ? bandArrays[0] : (data as PixelArray);
  if (first === undefined) fail(path, 'expected at least one band');
  const dtype = meta.dtype ?? dtypeOfArray(first);
  const bands = perBand ? bandArrays.length : (meta.bands ?? 1);
  if (meta.bands !== undefined && meta.bands !== bands) {
    fail(path, `'bands' = ${meta.bands} but ${bands} band arrays were given`);
  }
  const { width, height } = meta;
  if (perBand) {
    bandArrays.forEach((band, b) => {
      if (band.length !== width * height) {
        fail(
          path,
          `expected band ${b} to hold ${width} x ${height} = ${width * height} samples but received ${band.length}`,
        );
      }
    });
  } else if (first.length !== width * height * bands) {
    fail(
      path,
      `expected ${width} x ${height} x ${bands} = ${width * height * bands} samples but received ${first.length}`,
    );
  }
  const writer = await GeoTiffWriter.open(path, { ...meta, bands, dtype });
  try {
    const rowSamples = width * bands;
    const tileSize = meta.tileSize ?? 512;
    const scratch = perBand ? new DTYPES[dtype].ctor(tileSize * rowSamples) : undefined;
    for (let t = 0; t < writer.tileRows; t++) {
      const y0 = t * tileSize;
      const rows = writer.rowsInTileRow(t);
      if (scratch === undefined) {
        await writer.writeTileRow(t, first.subarray(y0 * rowSamples, (y0 + rows) * rowSamples));
        continue;
      }
      for (let b = 0; b < bands; b++) {
        const band = bandArrays[b] as PixelArray;
        for (let i = 0, j = y0 * width; i < rows * width; i++, j++)
          scratch[i * bands + b] = band[j] as number;
      }
      await writer.writeTileRow(t, scratch.subarray(0, rows * rowSamples));
    }
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
