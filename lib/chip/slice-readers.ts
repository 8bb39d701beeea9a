/**
 * Pixel sources for `chip slice`: the rows a row of windows covers, as 8-bit pixels, in bounded
 * memory. Two kinds:
 * - {@link RasterRows}: any GeoTIFF (1..N bands, uint8..float64, striped or tiled, COGs), local or
 *   s3://, read block by block through lib/raster (byte ranges on S3, only the blocks the windows
 *   need) and converted to 8-bit RGB on the fly exactly as `geobatch rgb` converts (bands by
 *   count, percentile stretch from statistics sampled once per scene, no-data kept as 0). Decoded
 *   rows live in a ring of whole block rows, so each block is read and converted once;
 * - {@link SharpRows}: JPEG and PNG (8-bit, as they are), decoded with sharp in spans of rows.
 */
import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import type { GeoTransform } from '../geo/affine.js';
import type { SliceWindow } from '../labels/slice.js';
import { RasterError } from '../raster/errors.js';
import { openRaster } from '../raster/reader.js';
import type { ImageBlocks, OpenRaster } from '../raster/reader.js';
import { convertBlock, rgbChannelMaps } from '../raster/rgb.js';
import type { RgbChannelMaps } from '../raster/rgb.js';
import { checkBands, defaultBands, DEFAULT_PERCENTILES, describeStretch } from '../raster/stretch.js';
import type { Stretch } from '../raster/stretch.js';
import type { Storage } from '../storage/types.js';
import { isHttpUri, parseUri } from '../storage/uri.js';
import type { ChipPixels } from './jpeg.js';

/** Rows [top, bottom) of the image: the windows of one row share them. */
export interface RowBand {
  readonly top: number;
  readonly bottom: number;
}

/** The georeferencing chips inherit (GDAL's placement: PixelIsPoint already shifted). */
export interface ChipGeoreference {
  readonly gt: GeoTransform;
  readonly epsg: number | null;
  readonly crsKind: 'projected' | 'geographic';
}

/** A source of 8-bit pixel rows to cut chips from. */
export interface ChipRows {
  readonly uri: string;
  readonly width: number;
  readonly height: number;
  /** Samples per pixel of the cut windows. */
  readonly channels: number;
  /** The last channel is alpha. */
  readonly alpha: boolean;
  /** 0 when no-data pixels are 0 and valid ones 1..255 (GeoTIFF chips record it). */
  readonly nodata: number | undefined;
  readonly geo: ChipGeoreference | undefined;
  /** How the source became 8-bit, e.g. "bands 3,2,1, percentile 2-98 (statistics from ...)". */
  readonly conversion: string;
  readonly warnings: readonly string[];
  /**
   * Prepares for reading `bands` in order (each at most once, top to bottom); only columns
   * [columns[0], columns[1]) of them will be cut.
   */
  plan(bands: readonly RowBand[], columns: readonly [number, number]): void;
  /** About how many bytes of decoded rows reading `bands` holds at once. */
  bytesFor(bands: readonly RowBand[]): number;
  /** Makes a planned band's rows available to {@link cut}. */
  load(band: RowBand): Promise<void>;
  /** A copy of a window of the last loaded band, pixel-interleaved. */
  cut(window: SliceWindow): Buffer;
  /**
   * A window of the last loaded band without a copy where its rows lie in one piece of memory
   * (else a copy, as {@link cut}). The view stays valid while the next band loads, not after.
   */
  view(window: SliceWindow): ChipPixels;
  close(): Promise<void>;
}

export interface RasterRowsOptions {
  /** 1-based source bands for R, G, B. @default by band count, as `geobatch rgb` */
  readonly bands?: readonly number[];
  /** @default none for 8-bit data, percentile 2-98 otherwise, as `geobatch rgb` */
  readonly stretch?: Stretch;
  /** Pixels read for the stretch statistics at most. @default 4,194,304 */
  readonly sampleMaxPixels?: number;
  /** Blocks decoded at once. @default 4 */
  readonly concurrency?: number;
  /**
   * The conversion, as an earlier open of the same file computed it ({@link RasterRows.channelMaps}):
   * no statistics are sampled again (worker threads reuse the scene's).
   */
  readonly maps?: RgbChannelMaps;
  readonly signal?: AbortSignal;
}

/**
 * Whether a file name is a raster read with lib/raster — a TIFF or a JPEG 2000 file (.jp2, .j2k,
 * .j2c) — rather than a JPEG or PNG (sharp).
 */
export function isTiffName(uri: string): boolean {
  return /\.(tiff?|jp2|j2k|j2c)$/i.test(uri);
}

/** Copies a window out of rows held in a ring of `ringRows` rows (row y at ring row y % ringRows). */
export function cutRing(
  ring: Uint8Array,
  ringRows: number,
  width: number,
  channels: number,
  window: SliceWindow,
): Buffer {
  const [x0, y0, x1, y1] = window;
  const rowBytes = (x1 - x0) * channels;
  const out = Buffer.allocUnsafe(rowBytes * (y1 - y0));
  for (let y = y0; y < y1; y++) {
    const start = (((y % ringRows) * width + x0) * channels) | 0;
    out.set(ring.subarray(start, start + rowBytes), (y - y0) * rowBytes);
  }
  return out;
}

/**
 * A window of rows held in a ring as pixels: a strided view into the ring when its rows do not wrap
 * around it, else a copy.
 */
export function viewRing(
  ring: Uint8Array,
  ringRows: number,
  width: number,
  channels: number,
  window: SliceWindow,
): ChipPixels {
  const [x0, y0, x1, y1] = window;
  const first = y0 % ringRows;
  const chip = { width: x1 - x0, height: y1 - y0, channels };
  if (first + (y1 - y0) > ringRows) {
    return { ...chip, data: cutRing(ring, ringRows, width, channels, window), stride: chip.width };
  }
  return { ...chip, data: ring.subarray((first * width + x0) * channels), stride: width };
}

/**
 * Rows of the ring RasterRows decodes into: from one band's top to the next band's bottom, in
 * whole block rows (so that a block row never wraps around the ring), plus one block row. Loading
 * a band then never overwrites the rows of the band before it, whose chips may still be encoding
 * from views of the ring.
 */
function ringRowsFor(bands: readonly RowBand[], blockHeight: number): number {
  let reach = 1;
  for (let i = 0; i < bands.length; i++) {
    reach = Math.max(reach, (bands[i + 1] ?? bands[i]!).bottom - bands[i]!.top);
  }
  return (Math.ceil(reach / blockHeight) + 1) * blockHeight;
}

/** A GeoTIFF read block by block and converted to 8-bit RGB as `geobatch rgb` does. */
export class RasterRows implements ChipRows {
  readonly channels = 3;
  readonly alpha = false;
  private ring: Uint8Array | undefined;
  private ringRows = 0;
  /** Block rows [0, loadedBlockRows) have been read (or skipped). */
  private loadedBlockRows = 0;
  private blockColumns: readonly number[] = [];

  /**
   * The conversion is the identity on a 3-band 8-bit file read block by block (RGB as is, no
   * stretch, no no-data): sharp's decoder gives the same pixels, faster.
   */
  get identity(): boolean {
    const level = this.level;
    const bands = this.maps.maps.map((m) => this.maps.distinct[m.view]);
    return (
      level.dtype === 'uint8' &&
      level.bands === 3 &&
      level.mode === 'blocks' &&
      this.nodata === undefined &&
      bands.join() === '0,1,2' &&
      this.maps.maps.every(
        (m) =>
          m.map.lo === 0 && m.map.hi === 255 && m.map.dstMin === 0 && m.map.dstMax === 255 && !m.map.floor,
      )
    );
  }

  private constructor(
    readonly uri: string,
    private readonly raster: OpenRaster,
    private readonly level: ImageBlocks,
    private readonly maps: RgbChannelMaps,
    private readonly maskNodata: number | null,
    private readonly float: boolean,
    readonly nodata: number | undefined,
    readonly geo: ChipGeoreference | undefined,
    readonly conversion: string,
    readonly warnings: readonly string[],
    private readonly options: RasterRowsOptions,
  ) {}

  get width(): number {
    return this.level.width;
  }

  /** The tile width of a tiled file (tiles narrower than the image), else undefined. */
  get tileWidth(): number | undefined {
    return this.level.blockWidth < this.level.width ? this.level.blockWidth : undefined;
  }

  /** The 8-bit conversion (bands, stretch ranges, lookup tables), for {@link RasterRowsOptions.maps}. */
  get channelMaps(): RgbChannelMaps {
    return this.maps;
  }

  get height(): number {
    return this.level.height;
  }

  /** Opens a GeoTIFF and computes its 8-bit conversion (statistics sampled once, when needed). */
  static async open(storage: Storage, uri: string, options: RasterRowsOptions = {}): Promise<RasterRows> {
    const signal = options.signal;
    const raster = await openRaster(storage, uri, signal ? { signal } : {});
    try {
      const info = raster.info;
      const level = await raster.level(0);
      const geo = info.geo;
      if (geo?.rotated) {
        throw new RasterError(
          `${uri}: the geotransform is rotated or sheared ([${geo.geotransform.join(', ')}]); geobatch reads north-up rasters only, so chips would be misplaced: warp it first (e.g. gdalwarp in.tif north-up.tif)`,
        );
      }
      const bands = options.bands
        ? [...options.bands]
        : defaultBands(level.bands, info.photometric === 'rgb' || level.mode === 'rgb', uri);
      if (bands.length !== 3) {
        throw new RasterError(`--bands: expected 3 bands (R,G,B) or 1 (grey) but got ${bands.length}`);
      }
      checkBands(bands, level.bands, uri);
      const float = level.dtype === 'float32' || level.dtype === 'float64';
      const nodata = info.nodata;
      const stretch: Stretch =
        options.stretch ??
        (level.dtype === 'uint8' ? { kind: 'none' } : { kind: 'percentile', ...DEFAULT_PERCENTILES });
      if (stretch.kind === 'range' && stretch.ranges.length !== 1 && stretch.ranges.length !== 3) {
        throw new RasterError(`--range: expected 1 or 3 ranges but got ${stretch.ranges.length}`);
      }
      // chips have no alpha: as `geobatch rgb` does without one, 0 marks no-data
      const reserveZero = nodata !== null || float;
      const maps =
        options.maps ??
        (await rgbChannelMaps(raster, bands, stretch, nodata, reserveZero, {
          ...(options.sampleMaxPixels ? { sampleMaxPixels: options.sampleMaxPixels } : {}),
          ...(signal ? { signal } : {}),
        }));
      const modelType = raster.modelType;
      const conversion = `bands ${bands.join(',')}, ${level.dtype}, stretch ${describeStretch(stretch)}${maps.sampledFrom ? ` (statistics from ${maps.sampledFrom})` : ''}`;
      return new RasterRows(
        uri,
        raster,
        level,
        maps,
        nodata,
        float,
        reserveZero ? 0 : undefined,
        geo
          ? {
              gt: geo.geotransform,
              epsg: geo.epsg,
              crsKind: modelType === 2 ? 'geographic' : 'projected',
            }
          : undefined,
        conversion,
        maps.warnings,
        options,
      );
    } catch (error) {
      await raster.close();
      throw error;
    }
  }

  plan(bands: readonly RowBand[], columns: readonly [number, number]): void {
    const bh = this.level.blockHeight;
    this.ringRows = ringRowsFor(bands, bh);
    // one row more, so that a window on the ring's last rows can be viewed with the full stride
    this.ring = new Uint8Array((this.ringRows + 1) * this.width * this.channels);
    const bw = this.level.blockWidth;
    const first = Math.floor(columns[0] / bw);
    const last = Math.ceil(columns[1] / bw);
    this.blockColumns = Array.from({ length: Math.max(0, last - first) }, (_, i) => first + i);
    this.loadedBlockRows = 0;
  }

  bytesFor(bands: readonly RowBand[]): number {
    return (ringRowsFor(bands, this.level.blockHeight) + 1) * this.width * this.channels;
  }

  async load(band: RowBand): Promise<void> {
    const ring = this.ring;
    if (!ring) throw new Error('RasterRows.load before plan');
    const bh = this.level.blockHeight;
    const firstNeeded = Math.floor(band.top / bh);
    const end = Math.ceil(band.bottom / bh);
    const from = Math.max(this.loadedBlockRows, firstNeeded);
    if (from >= end) return;
    const refs = [];
    for (let by = from; by < end; by++) for (const bx of this.blockColumns) refs.push({ bx, by });
    const { maps, distinct } = this.maps;
    const ringRows = this.ringRows;
    await this.level.readBlocks(
      refs,
      distinct,
      (block) =>
        convertBlock(
          block,
          maps,
          ring,
          block.row - (block.row % ringRows),
          this.width,
          this.channels,
          this.maskNodata,
          this.float,
          false,
        ),
      {
        differenced: this.level.dtype === 'uint16' || this.level.dtype === 'uint8',
        ...(this.options.concurrency ? { concurrency: this.options.concurrency } : {}),
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      },
    );
    this.loadedBlockRows = end;
  }

  cut(window: SliceWindow): Buffer {
    return cutRing(this.ring!, this.ringRows, this.width, this.channels, window);
  }

  view(window: SliceWindow): ChipPixels {
    return viewRing(this.ring!, this.ringRows, this.width, this.channels, window);
  }

  async close(): Promise<void> {
    this.ring = undefined;
    await this.raster.close();
  }
}

/** Pixels across that a tiled TIFF's span is decoded in at a time (whole tiles, at least one). */
const PIECE_PIXELS = 4096;

/** Copies a window out of a span of rows (`span` starts at row `top` and spans the full width). */
function cutSpan(span: Buffer, width: number, channels: number, top: number, window: SliceWindow): Buffer {
  const [x0, y0, x1, y1] = window;
  const rowBytes = (x1 - x0) * channels;
  const out = Buffer.allocUnsafe(rowBytes * (y1 - y0));
  for (let y = y0; y < y1; y++) {
    const start = ((y - top) * width + x0) * channels;
    span.copy(out, (y - y0) * rowBytes, start, start + rowBytes);
  }
  return out;
}

interface Span {
  readonly top: number;
  readonly bottom: number;
  data?: Promise<Buffer>;
}

/**
 * A JPEG or PNG (or any 8-bit image sharp reads) decoded with sharp in spans of consecutive
 * bands of at most `spanBytes` (or one band); the next span decodes while the current one's chips
 * encode, so peak memory is about two spans whatever the image's size.
 */
export class SharpRows implements ChipRows {
  readonly nodata = undefined;
  readonly warnings: readonly string[] = [];
  private spans: Span[] = [];
  private current = -1;
  private data: Buffer | undefined;

  private constructor(
    readonly uri: string,
    private readonly path: string,
    readonly width: number,
    readonly height: number,
    readonly channels: number,
    readonly alpha: boolean,
    private readonly space: string,
    private readonly spanBytes: number,
    readonly geo: ChipGeoreference | undefined,
    readonly conversion: string,
    private readonly pieceWidth: number | undefined,
  ) {}

  static async open(
    storage: Storage,
    uri: string,
    options: {
      spanBytes?: number;
      signal?: AbortSignal;
      geo?: ChipGeoreference;
      conversion?: string;
      /**
       * A tiled TIFF's tile width: spans are then decoded in pieces of whole tiles across, since
       * libvips caches two full rows of tiles while it decodes (2 x 79 tiles of 512 x 512 x 3
       * bytes, about 120 MiB, across a 40,000 px scene); the pixels are the same.
       */
      tileWidth?: number;
    } = {},
  ): Promise<SharpRows> {
    const path = await storage.localPath(uri, options.signal ? { signal: options.signal } : {});
    let meta: Metadata;
    try {
      meta = await sharp(path, { limitInputPixels: false }).metadata();
    } catch (error) {
      throw new RasterError(
        `${uri}: cannot read the image (corrupt or not an image?): ${(error as Error).message}`,
      );
    }
    if (!meta.width || !meta.height || !meta.channels) {
      throw new RasterError(`${uri}: cannot read the image size`);
    }
    if (meta.depth !== 'uchar') {
      throw new RasterError(
        `${uri}: samples are ${meta.depth ?? 'unknown'}; chip slice reads JPEG and PNG images as 8-bit (convert with 'geobatch rgb' first)`,
      );
    }
    return new SharpRows(
      uri,
      path,
      meta.width,
      meta.height,
      meta.channels,
      meta.hasAlpha ?? false,
      meta.space ?? 'unknown',
      options.spanBytes ?? 64 * 2 ** 20,
      options.geo,
      options.conversion ?? '8-bit as is',
      options.tileWidth
        ? Math.max(1, Math.floor(PIECE_PIXELS / options.tileWidth)) * options.tileWidth
        : undefined,
    );
  }

  plan(bands: readonly RowBand[]): void {
    const rowBytes = this.width * this.channels;
    this.spans = [];
    for (let first = 0; first < bands.length;) {
      let end = first + 1;
      while (end < bands.length && (bands[end]!.bottom - bands[first]!.top) * rowBytes <= this.spanBytes)
        end++;
      this.spans.push({ top: bands[first]!.top, bottom: bands[end - 1]!.bottom });
      first = end;
    }
    this.current = -1;
  }

  bytesFor(bands: readonly RowBand[]): number {
    const rowBytes = this.width * this.channels;
    const tallest = Math.max(0, ...bands.map((b) => b.bottom - b.top));
    // the span being cut, the next one decoding, and the last one's chips still encoding
    return 3 * Math.min(Math.max(this.spanBytes, tallest * rowBytes), this.height * rowBytes);
  }

  private decode(span: Span): Promise<Buffer> {
    span.data ??= (async () => {
      const height = span.bottom - span.top;
      const piece = this.pieceWidth && this.pieceWidth < this.width ? this.pieceWidth : this.width;
      if (piece === this.width) return this.decodePiece(span, 0, this.width);
      const rowBytes = this.width * this.channels;
      const data = Buffer.allocUnsafe(height * rowBytes);
      for (let left = 0; left < this.width; left += piece) {
        const width = Math.min(piece, this.width - left);
        const part = await this.decodePiece(span, left, width);
        const bytes = width * this.channels;
        for (let y = 0; y < height; y++) {
          part.copy(data, y * rowBytes + left * this.channels, y * bytes, (y + 1) * bytes);
        }
      }
      return data;
    })();
    return span.data;
  }

  /** Columns [left, left + width) of a span's rows, pixel-interleaved. */
  private async decodePiece(span: Span, left: number, width: number): Promise<Buffer> {
    let decoded: { data: Buffer; info: OutputInfo };
    try {
      decoded = await sharp(this.path, { limitInputPixels: false })
        .extract({ left, top: span.top, width, height: span.bottom - span.top })
        .raw()
        .toBuffer({ resolveWithObject: true });
    } catch (error) {
      throw new RasterError(
        `${this.uri}: cannot decode rows ${span.top}..${span.bottom} (corrupt or truncated image?): ${(error as Error).message}`,
      );
    }
    const { data, info } = decoded;
    if (info.channels !== this.channels || info.width !== width) {
      throw new RasterError(
        `${this.uri}: decoded ${info.channels} channels x ${info.width} px, expected ${this.channels} x ${width}; unsupported colour space '${this.space}'?`,
      );
    }
    return data;
  }

  async load(band: RowBand): Promise<void> {
    const at = this.current >= 0 ? this.spans[this.current] : undefined;
    if (at && band.top >= at.top && band.bottom <= at.bottom) return;
    const k = this.spans.findIndex(
      (s, i) => i > this.current && band.top >= s.top && band.bottom <= s.bottom,
    );
    if (k < 0) throw new Error(`SharpRows.load: rows ${band.top}..${band.bottom} were not planned`);
    if (at) at.data = undefined;
    this.data = undefined;
    this.current = k;
    const data = await this.decode(this.spans[k]!);
    const next = this.spans[k + 1];
    // a failure is reported when the next span is loaded; don't let it surface as unhandled first
    if (next) this.decode(next).catch(() => undefined);
    this.data = data;
  }

  cut(window: SliceWindow): Buffer {
    return cutSpan(this.data!, this.width, this.channels, this.spans[this.current]!.top, window);
  }

  view(window: SliceWindow): ChipPixels {
    // spans are never reused: a view keeps its span's buffer alive until the encode is done
    const [x0, y0, x1, y1] = window;
    const start = ((y0 - this.spans[this.current]!.top) * this.width + x0) * this.channels;
    return {
      data: this.data!.subarray(start),
      width: x1 - x0,
      height: y1 - y0,
      channels: this.channels,
      stride: this.width,
    };
  }

  async close(): Promise<void> {
    this.spans = [];
    this.data = undefined;
  }
}

export interface OpenChipRowsOptions {
  /** 1-based GeoTIFF bands for R, G, B. @default by band count, as `geobatch rgb` */
  readonly bands?: readonly number[];
  /** @default none for 8-bit data, percentile 2-98 otherwise, as `geobatch rgb` */
  readonly stretch?: Stretch;
  /** JPEG/PNG: most bytes of decoded rows in one span. @default 64 MiB */
  readonly bandBytes?: number;
  /** GeoTIFFs: the conversion an earlier open computed ({@link RasterRowsOptions.maps}). */
  readonly maps?: RgbChannelMaps;
  readonly signal?: AbortSignal;
}

/** Opens an image for slicing: GeoTIFFs with lib/raster (any layout, converted to 8-bit RGB), others with sharp. */
export async function openChipRows(
  storage: Storage,
  uri: string,
  options: OpenChipRowsOptions = {},
): Promise<ChipRows> {
  const signal = options.signal;
  if (isTiffName(uri)) {
    const rows = await RasterRows.open(storage, uri, {
      ...(options.bands ? { bands: options.bands } : {}),
      ...(options.stretch ? { stretch: options.stretch } : {}),
      ...(options.maps ? { maps: options.maps } : {}),
      ...(signal ? { signal } : {}),
    });
    // a local 8-bit RGB file taken as it is decodes faster with sharp (libtiff), to the same pixels
    if (!rows.identity || isHttpUri(uri) || parseUri(uri).kind !== 'local') return rows;
    await rows.close();
    return SharpRows.open(storage, uri, {
      ...(options.bandBytes ? { spanBytes: options.bandBytes } : {}),
      ...(signal ? { signal } : {}),
      ...(rows.geo ? { geo: rows.geo } : {}),
      ...(rows.tileWidth ? { tileWidth: rows.tileWidth } : {}),
      conversion: rows.conversion,
    });
  }
  if (options.bands || options.stretch) {
    throw new RasterError(
      `${uri}: --bands and --stretch apply to GeoTIFF images; JPEG and PNG images are sliced as they are`,
    );
  }
  return SharpRows.open(storage, uri, {
    ...(options.bandBytes ? { spanBytes: options.bandBytes } : {}),
    ...(signal ? { signal } : {}),
  });
}
