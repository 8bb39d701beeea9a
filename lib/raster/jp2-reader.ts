/**
 * JPEG 2000 rasters (JP2 files and raw codestreams) behind the same reader interface as TIFFs.
 *
 * Blocks are the codestream's tiles. A block read fetches only that tile's tile-parts (range
 * reads, so S3 fetches only them too), wraps them into a one-tile codestream (see
 * j2k-codestream.ts) and decodes it with OpenJPEG (WebAssembly), so memory follows the tile size,
 * not the image size. Overviews are the codestream's resolution levels: level r decodes each tile
 * at 1/2^r without the finer wavelet levels. Decoded tiles are kept in a small LRU cache.
 *
 * An untiled codestream is one tile: it can only be decoded whole. That is done when its pixels
 * (at the level read) are at most {@link jp2MaxTilePixels}, and refused with a message otherwise.
 */
import { fromArrayBuffer } from 'geotiff';
import type { GeoTransform } from '../geo/affine.js';
import type { Storage } from '../storage/types.js';
import { BlockGrid, CTORS, SAMPLE_BYTES } from './blocks.js';
import type {
  BandView,
  BlockRef,
  DecodedBlock,
  ImageBlocks,
  OpenRaster,
  ReadBlocksOptions,
} from './blocks.js';
import { RasterError } from './errors.js';
import { imageEpsg, imageGeoTransform } from './info.js';
import type { RasterInfo, SampleType } from './info.js';
import { oneTileCodestream, readCodestream, tileRect } from './j2k-codestream.js';
import type { Codestream } from './j2k-codestream.js';
import { parseGmlGeoref, readJp2Boxes, JP2_SIGNATURE } from './jp2-boxes.js';
import type { Jp2Boxes } from './jp2-boxes.js';
import { splitComponents } from './j2k-components.js';
import { OpenJpeg } from './openjpeg.js';
import type { DecodedImage } from './openjpeg.js';
import { StorageSource } from './source.js';

/** Default of {@link jp2MaxTilePixels}: 50 million pixels (about 7,000 px square). */
export const JP2_DEFAULT_MAX_TILE_PIXELS = 50_000_000;
/** Bytes of decoded tiles kept per open raster (at least one tile is always kept). */
const TILE_CACHE_BYTES = 64 * 1024 * 1024;

/**
 * The largest tile (pixels at the level read) decoded at once: `GEOBATCH_JP2_MAX_TILE_PIXELS`,
 * else {@link JP2_DEFAULT_MAX_TILE_PIXELS}. Decoding takes about 6 + 2 x (bytes per sample)
 * bytes per sample (OpenJPEG's 32-bit samples plus the decoded image, inside WebAssembly and
 * copied out): 49 Mpx of 8-bit grey peaked at 480 MB RSS.
 */
export function jp2MaxTilePixels(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.GEOBATCH_JP2_MAX_TILE_PIXELS;
  if (text === undefined || text === '') return JP2_DEFAULT_MAX_TILE_PIXELS;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new RasterError(
      `GEOBATCH_JP2_MAX_TILE_PIXELS: expected a whole number of pixels above 0 but got '${text}'`,
    );
  }
  return value;
}

interface DecodedTile {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

interface Georef {
  readonly gt: GeoTransform;
  readonly epsg: number | null;
  readonly pixelIsPoint: boolean;
  readonly modelType: number | undefined;
  readonly nodata: number | null;
}

/** Georeferencing from the GeoJP2 box (a GeoTIFF's tags), else from the GMLJP2 box. */
async function readGeoref(boxes: Jp2Boxes | undefined, uri: string): Promise<Georef | undefined> {
  if (boxes?.geoJp2) {
    try {
      const bytes = boxes.geoJp2;
      const tiff = await fromArrayBuffer(Uint8Array.from(bytes).buffer);
      const image = await tiff.getImage(0);
      const geo = imageGeoTransform(image);
      if (geo) {
        const keys = image.getGeoKeys() as Record<string, unknown> | null;
        const modelType = keys?.GTModelTypeGeoKey;
        return {
          gt: geo.gt,
          epsg: imageEpsg(image),
          pixelIsPoint: geo.pixelIsPoint,
          modelType: typeof modelType === 'number' ? modelType : undefined,
          nodata: image.getGDALNoData(),
        };
      }
    } catch (error) {
      throw new RasterError(
        `${uri}: corrupt GeoJP2 box (its GeoTIFF cannot be read): ${(error as Error).message}`,
      );
    }
  }
  if (boxes?.gml) {
    const gml = parseGmlGeoref(boxes.gml);
    if (gml) {
      const geographic = gml.epsg !== null && gml.epsg >= 4000 && gml.epsg < 5000;
      return {
        gt: gml.geotransform,
        epsg: gml.epsg,
        pixelIsPoint: false,
        modelType: geographic ? 2 : 1,
        nodata: null,
      };
    }
  }
  return undefined;
}

/**
 * The no-data value GDAL keeps beside a JP2 it wrote (`<file>.aux.xml`, its PAM sidecar: JP2 has
 * no place for it), or null.
 */
async function sidecarNodata(
  storage: Storage,
  uri: string,
  signal: AbortSignal | undefined,
): Promise<number | null> {
  const io = signal ? { signal } : {};
  const info = await storage.stat(uri, io);
  if (!info || info.size > 1024 * 1024) return null;
  const xml = (await storage.read(uri, io)).toString('utf8');
  const text = /<NoDataValue>([^<]+)<\/NoDataValue>/.exec(xml)?.[1]?.trim();
  if (text === undefined) return null;
  const value = /^nan$/i.test(text) ? Number.NaN : Number(text);
  return Number.isNaN(value) && !/^nan$/i.test(text) ? null : value;
}

function sampleTypeOf(cs: Codestream, uri: string): SampleType {
  const [first] = cs.depths;
  const mixed = cs.depths.some((d) => d.bits !== first!.bits || d.signed !== first!.signed);
  if (mixed) {
    const list = cs.depths.map((d) => `${d.signed ? 'signed ' : ''}${d.bits}`).join(', ');
    throw new RasterError(
      `${uri}: unsupported JPEG 2000 file: components differ in bit depth (${list}); expected one type for every band`,
    );
  }
  const sub = cs.depths.find((d) => d.dx !== 1 || d.dy !== 1);
  if (sub) {
    throw new RasterError(
      `${uri}: unsupported JPEG 2000 file: components are subsampled (${sub.dx} x ${sub.dy}); only full-resolution components are read`,
    );
  }
  const { bits, signed } = first!;
  if (bits <= 8) return signed ? 'int8' : 'uint8';
  if (bits <= 16) return signed ? 'int16' : 'uint16';
  throw new RasterError(
    `${uri}: unsupported JPEG 2000 bit depth: ${bits} bits per sample; supported: up to 16`,
  );
}

/** One resolution level of a JPEG 2000 raster; its blocks are the codestream's tiles. */
export class Jp2Blocks extends BlockGrid implements ImageBlocks {
  readonly width: number;
  readonly height: number;
  readonly blockWidth: number;
  readonly blockHeight: number;
  readonly bands: number;
  readonly dtype: SampleType;
  readonly mode = 'jp2' as const;

  constructor(
    private readonly raster: Jp2Raster,
    /** Resolution level: 0 full, r: 1/2^r. */
    readonly reduce: number,
  ) {
    super();
    const cs = raster.codestream;
    const f = 2 ** reduce;
    this.width = Math.ceil(cs.x1 / f) - Math.ceil(cs.x0 / f);
    this.height = Math.ceil(cs.y1 / f) - Math.ceil(cs.y0 / f);
    const single = cs.tilesAcross * cs.tilesDown === 1;
    this.blockWidth = single ? this.width : cs.tileWidth / f;
    this.blockHeight = single ? this.height : cs.tileHeight / f;
    this.bands = cs.components;
    this.dtype = raster.info.dtype;
  }

  async readBlocks(
    blocks: readonly BlockRef[],
    bands: readonly number[],
    onBlock: (block: DecodedBlock) => void,
    options: ReadBlocksOptions = {},
  ): Promise<void> {
    this.checkBands(bands, this.raster.uri);
    const concurrency = Math.max(1, options.concurrency ?? 4);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < blocks.length) {
        const ref = blocks[next++]!;
        options.signal?.throwIfAborted();
        const rect = this.blockRect(ref);
        const tile = await this.raster.tile(this, ref.by * this.blocksAcross + ref.bx, rect, options.signal);
        const bytes = SAMPLE_BYTES[this.dtype];
        const data = new CTORS[this.dtype](
          tile.data.buffer as ArrayBuffer,
          tile.data.byteOffset,
          tile.data.byteLength / bytes,
        );
        const views = bands.map((b): BandView => ({
          data,
          offset: b,
          pixelStride: this.bands,
          rowStride: tile.width * this.bands,
        }));
        onBlock({ ...rect, bands: views });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, blocks.length) }, worker));
  }
}

/** An open JPEG 2000 raster (see the module comment). */
export class Jp2Raster implements OpenRaster {
  private readonly levels = new Map<number, Jp2Blocks>();
  private readonly cache = new Map<string, Promise<DecodedTile>>();
  private readonly cacheSizes = new Map<string, number>();
  private cachedBytes = 0;
  private decoder: Promise<OpenJpeg> | undefined;
  /** Tile decodes done and compressed bytes fetched for them (for benchmarks and tests). */
  readonly stats = { decodes: 0, bytes: 0 };

  private constructor(
    readonly storage: Storage,
    readonly uri: string,
    readonly fileSize: number,
    readonly info: RasterInfo,
    readonly codestream: Codestream,
    readonly overviewIndices: readonly number[],
    readonly modelType: number | undefined,
    private readonly source: StorageSource,
    private readonly maxTilePixels: number,
  ) {}

  /** Opens a JP2 file or raw codestream of `size` bytes, reading its header boxes and tile index only. */
  static async open(
    storage: Storage,
    uri: string,
    size: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<Jp2Raster> {
    const maxTilePixels = jp2MaxTilePixels();
    const source = new StorageSource(storage, uri, { blockSize: 16 * 1024, cacheBytes: 4 * 1024 * 1024 });
    const read = async (offset: number, length: number): Promise<Buffer> => {
      if (offset >= size) return Buffer.alloc(0);
      const [data] = await source.fetch(
        [{ offset, length: Math.min(length, size - offset) }],
        options.signal,
      );
      return Buffer.from(data!);
    };
    const head = await read(0, 12);
    let boxes: Jp2Boxes | undefined;
    let codestream: Codestream;
    try {
      if (head.toString('hex') === JP2_SIGNATURE) {
        boxes = await readJp2Boxes(read, size, uri);
        codestream = await readCodestream(read, boxes.codestream.offset, boxes.codestream.length, uri);
      } else {
        codestream = await readCodestream(read, 0, size, uri);
      }
    } catch (error) {
      if (options.signal?.aborted || error instanceof RasterError) throw error;
      throw new RasterError(
        `${uri}: cannot read the JPEG 2000 header (${size} bytes; truncated or corrupt?): ${(error as Error).message}`,
      );
    }
    const cs = codestream;
    const width = cs.x1 - cs.x0;
    const height = cs.y1 - cs.y0;
    if (
      boxes &&
      (boxes.header.width !== width ||
        boxes.header.height !== height ||
        boxes.header.components !== cs.components)
    ) {
      throw new RasterError(
        `${uri}: corrupt JP2: the image header box says ${boxes.header.width} x ${boxes.header.height} x ${boxes.header.components} but the codestream ${width} x ${height} x ${cs.components}`,
      );
    }
    const dtype = sampleTypeOf(cs, uri);
    const tiles = cs.tilesAcross * cs.tilesDown;
    if (tiles > 1 && cs.packedHeaders) {
      throw new RasterError(
        `${uri}: unsupported JPEG 2000 codestream: packet headers are packed in the main header (PPM marker), so tiles cannot be decoded one by one; rewrite it without PPM (e.g. gdal_translate -of JP2OpenJPEG)`,
      );
    }
    if (tiles > 1 && (cs.tileX0 !== cs.x0 || cs.tileY0 !== cs.y0)) {
      throw new RasterError(
        `${uri}: unsupported JPEG 2000 tile grid: tiles start at ${cs.tileX0},${cs.tileY0} but the image at ${cs.x0},${cs.y0}; expected them to coincide`,
      );
    }
    // resolution levels whose tiles still form a regular grid of whole pixels
    const overviewIndices: number[] = [];
    for (let r = 1; r <= cs.levels; r++) {
      const f = 2 ** r;
      const aligned =
        cs.x0 % f === 0 &&
        cs.y0 % f === 0 &&
        (tiles === 1 || (cs.tileWidth % f === 0 && cs.tileHeight % f === 0));
      if (!aligned) break;
      overviewIndices.push(r);
    }
    const georef = await readGeoref(boxes, uri);
    const nodata = georef?.nodata ?? (await sidecarNodata(storage, `${uri}.aux.xml`, options.signal));
    let geo: RasterInfo['geo'];
    if (georef) {
      const gt = georef.gt;
      const xs = [
        gt[0],
        gt[0] + width * gt[1],
        gt[0] + height * gt[2],
        gt[0] + width * gt[1] + height * gt[2],
      ];
      const ys = [
        gt[3],
        gt[3] + width * gt[4],
        gt[3] + height * gt[5],
        gt[3] + width * gt[4] + height * gt[5],
      ];
      geo = {
        geotransform: gt,
        epsg: georef.epsg,
        pixelIsPoint: georef.pixelIsPoint,
        rotated: gt[2] !== 0 || gt[4] !== 0,
        bounds: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)],
      };
    }
    const rgb = boxes?.colourSpace === 16 && cs.components === 3;
    const info: RasterInfo = {
      width,
      height,
      bands: cs.components,
      dtype,
      layout: {
        tiled: tiles > 1,
        blockWidth: tiles > 1 ? cs.tileWidth : width,
        blockHeight: tiles > 1 ? cs.tileHeight : height,
      },
      compression: cs.reversible ? 'jpeg2000 (reversible)' : 'jpeg2000',
      photometric: rgb ? 'rgb' : 'min-is-black',
      overviews: overviewIndices.map((r) => ({
        width: Math.ceil(cs.x1 / 2 ** r) - Math.ceil(cs.x0 / 2 ** r),
        height: Math.ceil(cs.y1 / 2 ** r) - Math.ceil(cs.y0 / 2 ** r),
      })),
      nodata,
      ...(geo ? { geo } : {}),
    };
    return new Jp2Raster(
      storage,
      uri,
      size,
      info,
      cs,
      overviewIndices,
      georef?.modelType,
      source,
      maxTilePixels,
    );
  }

  /** Bytes read so far: header boxes, main header and tile index, and tiles. */
  get bytesRead(): number {
    return this.source.stats.bytes + this.stats.bytes;
  }

  async level(index = 0): Promise<Jp2Blocks> {
    if (index !== 0 && !this.overviewIndices.includes(index)) {
      throw new RasterError(
        `${this.uri}: no resolution level ${index} (valid: 0${this.overviewIndices.map((r) => `, ${r}`).join('')})`,
      );
    }
    let level = this.levels.get(index);
    if (!level) {
      level = new Jp2Blocks(this, index);
      this.levels.set(index, level);
    }
    return level;
  }

  /** Decoded tile `t` of `level` (from the cache when it is there). */
  tile(
    level: Jp2Blocks,
    t: number,
    rect: { width: number; height: number },
    signal: AbortSignal | undefined,
  ): Promise<DecodedTile> {
    const key = `${level.reduce}:${t}`;
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const pending = this.decodeTile(level, t, rect, signal);
    this.cache.set(key, pending);
    pending.then(
      (tile) => {
        if (this.cache.get(key) !== pending) return;
        this.cacheSizes.set(key, tile.data.byteLength);
        this.cachedBytes += tile.data.byteLength;
        this.evict(key);
      },
      () => {
        if (this.cache.get(key) === pending) this.cache.delete(key);
      },
    );
    return pending;
  }

  private evict(keep: string): void {
    for (const key of this.cache.keys()) {
      if (this.cachedBytes <= TILE_CACHE_BYTES) break;
      const size = this.cacheSizes.get(key);
      if (key === keep || size === undefined) continue;
      this.cache.delete(key);
      this.cacheSizes.delete(key);
      this.cachedBytes -= size;
    }
  }

  private async decodeTile(
    level: Jp2Blocks,
    t: number,
    rect: { width: number; height: number },
    signal: AbortSignal | undefined,
  ): Promise<DecodedTile> {
    const cs = this.codestream;
    if (rect.width * rect.height > this.maxTilePixels) {
      const tiles = cs.tilesAcross * cs.tilesDown;
      const mb = Math.ceil(
        (rect.width * rect.height * cs.components * (4 + SAMPLE_BYTES[level.dtype])) / 2 ** 20,
      );
      throw new RasterError(
        `${this.uri}: ${tiles === 1 ? 'untiled JPEG 2000 codestream' : 'JPEG 2000 tile'} of ${rect.width} x ${rect.height} px${level.reduce ? ` (resolution level ${level.reduce})` : ''} must be decoded whole (about ${mb} MiB) but the limit is ${this.maxTilePixels} px (GEOBATCH_JP2_MAX_TILE_PIXELS); raise the limit or retile it (gdal_translate -of JP2OpenJPEG -co BLOCKXSIZE=1024 -co BLOCKYSIZE=1024, or to a tiled GeoTIFF)`,
      );
    }
    const parts = cs.tileParts[t];
    if (!parts)
      throw new RasterError(
        `${this.uri}: tile ${t} is out of range (the codestream has ${cs.tileParts.length})`,
      );
    const bytes = await Promise.all(
      parts.map((p) => this.storage.readRange(this.uri, p.offset, p.length, signal ? { signal } : {})),
    );
    bytes.forEach((b, i) => {
      if (b.length < parts[i]!.length) {
        throw new RasterError(
          `${this.uri}: truncated JPEG 2000 file: tile ${t} needs bytes ${parts[i]!.offset}..${parts[i]!.offset + parts[i]!.length} but the file ended`,
        );
      }
    });
    this.stats.bytes += bytes.reduce((n, b) => n + b.length, 0);
    signal?.throwIfAborted();
    const stream = oneTileCodestream(cs, t, bytes);
    this.decoder ??= OpenJpeg.create();
    const decoder = await this.decoder;
    let decoded: ReturnType<OpenJpeg['decode']>;
    try {
      decoded =
        cs.components === 1 || cs.components === 3
          ? decoder.decode(stream, level.reduce)
          : decodeByGroups(decoder, stream, level.reduce, this.uri);
    } catch (error) {
      if (error instanceof RasterError) throw error;
      // Emscripten throws C++ exceptions as numbers and aborts (out of memory) as RuntimeErrors
      const what = error instanceof Error ? error.message : `C++ exception ${String(error)}`;
      this.decoder = undefined;
      throw new RasterError(
        `${this.uri}: OpenJPEG failed on JPEG 2000 tile ${t} of ${rect.width} x ${rect.height} px (${what}); corrupt file, or out of WebAssembly memory?`,
      );
    }
    this.stats.decodes++;
    const r = tileRect(cs, t);
    if (
      !decoded ||
      decoded.width !== rect.width ||
      decoded.height !== rect.height ||
      decoded.components !== cs.components
    ) {
      const got = decoded ? `${decoded.width} x ${decoded.height} x ${decoded.components}` : 'nothing';
      throw new RasterError(
        `${this.uri}: cannot decode JPEG 2000 tile ${t} (pixels ${r.x0},${r.y0}..${r.x1},${r.y1}): OpenJPEG gave ${got}, expected ${rect.width} x ${rect.height} x ${cs.components}${decoder.lastMessages ? ` (${decoder.lastMessages})` : ''}; corrupt or truncated file?`,
      );
    }
    return { width: decoded.width, height: decoded.height, data: decoded.data };
  }

  async close(): Promise<void> {
    this.cache.clear();
    this.cacheSizes.clear();
    this.cachedBytes = 0;
    this.decoder = undefined;
    await this.source.close();
  }
}

/**
 * Decodes a one-tile codestream of 2 or more than 3 components, which the OpenJPEG build refuses
 * ("unsupported J2K component count" in its wrapper), as codestreams of 1 or 3 components each,
 * and interleaves their samples again.
 */
function decodeByGroups(
  decoder: OpenJpeg,
  stream: Buffer,
  reduce: number,
  uri: string,
): DecodedImage | undefined {
  const { groups, streams } = splitComponents(stream, uri);
  const parts: DecodedImage[] = [];
  for (const s of streams) {
    const d = decoder.decode(s, reduce);
    if (!d) return undefined;
    const first = parts[0];
    if (
      first &&
      (d.width !== first.width || d.height !== first.height || d.bitsPerSample !== first.bitsPerSample)
    )
      return undefined;
    parts.push(d);
  }
  const first = parts[0]!;
  const n = groups.reduce((k, g) => k + g.length, 0);
  const bytes = first.bitsPerSample > 8 ? 2 : 1;
  const pixels = first.width * first.height;
  const data = new Uint8Array(pixels * n * bytes);
  groups.forEach((group, gi) => {
    const src = parts[gi]!.data;
    const k = group.length;
    group.forEach((c, j) => {
      for (let i = 0; i < pixels; i++) {
        const from = (i * k + j) * bytes;
        const to = (i * n + c) * bytes;
        data[to] = src[from]!;
        if (bytes === 2) data[to + 1] = src[from + 1]!;
      }
    });
  });
  return { ...first, components: n, data };
}
