/**
 * The XYZ tile engine behind `geobatch serve`: a raster layer (GeoTIFF/COG or JPEG 2000, local or
 * s3:// by byte ranges) rendered as 256 px web-mercator PNG tiles, RGBA, transparent outside the
 * raster and on no-data.
 *
 * - Tiles are chip-grid cells: the same web-mercator cell placement (lib/chip/grid-cells.ts),
 *   approximate inverse mapping (lib/chip/warp.ts, max error 0.125 source px), block cache
 *   (lib/chip/grid-source.ts) and 8-bit conversion (default bands, 2-98 percentile stretch for
 *   non-8-bit data) that `chip grid --grid webmercator` uses; a raster already on the tile's
 *   lattice is read as a plain window.
 * - Imagery (`rgb`) is sampled bilinearly, classes nearest and coloured by {@link CLASS_PALETTE}.
 * - A tile coarser than the raster samples the overview whose pixels are just finer than the
 *   tile's (GDAL's choice); a raster without overviews gets a decimated pyramid in memory
 *   (lib/serve/pyramid.ts, bounded by `pyramidBytes`), built once, on the first tile that needs it.
 * - Rendered tiles are kept in an LRU bounded by bytes; concurrent requests for one tile share a
 *   render; an empty tile is `null` (serve it as HTTP 204, or {@link EMPTY_TILE_PNG}).
 */
import sharp from 'sharp';
import {
  sceneBoxIn,
  SceneGridMapping,
  stemOf,
  webMercatorCell,
  type CrsBox,
  type SceneGeoreference,
} from '../chip/grid-cells.js';
import { overviewForScale, scaleMap, toRgb } from '../chip/grid.js';
import { BlockCache } from '../chip/grid-source.js';
import {
  approximateMap,
  DEFAULT_MAX_ERROR,
  resampleChip,
  windowMap,
  type ChipMap,
  type Resampling,
} from '../chip/warp.js';
import { crsTransform, CrsError } from '../geo/crs.js';
import { GridError } from '../geo/grid-error.js';
import { MERCATOR_HALF, tileMercatorBounds } from '../geo/web-mercator.js';
import { RasterError } from '../raster/errors.js';
import { openRaster, type ImageBlocks, type OpenRaster } from '../raster/reader.js';
import { rgbChannelMaps, type ChannelMap } from '../raster/rgb.js';
import { defaultBands, DEFAULT_PERCENTILES } from '../raster/stretch.js';
import type { Storage } from '../storage/types.js';
import { CLASS_PALETTE, type Rgba } from './palette.js';
import { buildPyramid, PyramidLevel, pyramidPlan } from './pyramid.js';
import { TileCache, type TileCacheStats } from './tile-cache.js';
import { TileError } from './tile-error.js';

/** Tile width and height, pixels. */
export const TILE_SIZE = 256;
/** Largest zoom a tile may be asked for. */
export const MAX_TILE_ZOOM = 24;
/** Default byte budget of rendered tiles per layer. */
export const DEFAULT_TILE_CACHE_BYTES = 64 * 2 ** 20;
/** Default byte budget of decoded source blocks per layer. */
export const DEFAULT_BLOCK_CACHE_BYTES = 64 * 2 ** 20;
/** Default byte budget of the in-memory pyramid of a raster without overviews. */
export const DEFAULT_PYRAMID_BYTES = 64 * 2 ** 20;

export type TileLayerKind = 'rgb' | 'classes';

export interface TileLayerOptions {
  /** `auto`: `classes` for one integer band with no-data 255 or a mask/class/label/pred name, else `rgb`. @default 'auto' */
  readonly kind?: TileLayerKind | 'auto';
  /** Byte budget of rendered PNG tiles. @default 64 MiB */
  readonly cacheBytes?: number;
  /**
   * Byte budget of decoded source blocks, shared by full resolution and the overviews (each
   * level keeps at least the blocks of the tile being drawn, and 4). @default 64 MiB
   */
  readonly blockCacheBytes?: number;
  /** Byte budget of the decimated pyramid built for a raster without overviews. @default 64 MiB */
  readonly pyramidBytes?: number;
  /** @default the file stem of `uri` */
  readonly id?: string;
  readonly signal?: AbortSignal;
}

/** What a layer did so far: tile cache counters, blocks decoded, pyramid state. */
export interface TileLayerStats extends TileCacheStats {
  /** Source blocks decoded (full resolution, overviews, and while building the pyramid). */
  readonly blocksDecoded: number;
  /** Bytes of the in-memory pyramid (0 when none was built). */
  readonly pyramidBytes: number;
  /** Levels sampled so far: 0 full resolution, else the factor of the overview or pyramid level. */
  readonly levelsUsed: readonly number[];
}

/** A raster served as XYZ tiles. */
export interface TileLayer {
  readonly id: string;
  readonly uri: string;
  readonly kind: TileLayerKind;
  /** CRS84 [west, south, east, north] of the raster's outline. */
  readonly bounds: readonly [number, number, number, number];
  /** The zoom at which the whole raster fits one tile (gdal2tiles' choice). */
  readonly minZoom: number;
  /** The zoom whose pixels are just coarser than or equal to the raster's (gdal2tiles' choice). */
  readonly maxZoom: number;
  /** Class colours by value (index = value), for `classes` layers. */
  readonly palette?: readonly Rgba[];
  /** Source width, height, bands, sample type, overview count, CRS. */
  readonly source: {
    readonly width: number;
    readonly height: number;
    readonly bands: number;
    readonly dtype: string;
    readonly overviews: number;
    readonly epsg: number;
  };
  /**
   * The PNG of tile (z, x, y) (256 x 256 RGBA), or null when it has no visible pixel. Throws
   * TileError for z outside 0..24 or x, y outside 0..2^z-1.
   */
  tile(z: number, x: number, y: number, signal?: AbortSignal): Promise<Buffer | null>;
  stats(): TileLayerStats;
  close(): Promise<void>;
}

let emptyPng: Buffer | undefined;
/** A fully transparent 256 px PNG, for servers that answer empty tiles with an image instead of 204. */
export async function emptyTilePng(): Promise<Buffer> {
  emptyPng ??= await sharp({
    create: { width: TILE_SIZE, height: TILE_SIZE, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
  })
    .png()
    .toBuffer();
  return emptyPng;
}

/** A level to sample: full resolution, an overview, or a pyramid level; `factor` full pixels per level pixel. */
interface SampledLevel {
  readonly factor: readonly [number, number];
  readonly blocks: ImageBlocks;
  readonly cache: BlockCache;
  /** Bands to read it with. */
  readonly bands: readonly number[];
  /** Whether its cache decodes source blocks (false for pyramid levels, already in memory). */
  readonly decodes: boolean;
}

const CLASS_NAME = /(mask|class|label|pred)/i;

/** Opens a raster as a tile layer; throws RasterError / TileError naming the file for what cannot be served. */
export async function openTileLayer(
  storage: Storage,
  uri: string,
  options: TileLayerOptions = {},
): Promise<TileLayer> {
  const io = options.signal ? { signal: options.signal } : {};
  const raster = await openRaster(storage, uri, io);
  try {
    return await RasterTileLayer.create(raster, options);
  } catch (error) {
    await raster.close();
    throw error;
  }
}

function zoomForPixelSize(size: number): number {
  const res0 = (2 * MERCATOR_HALF) / TILE_SIZE;
  for (let z = 0; z <= MAX_TILE_ZOOM; z++) if (size > res0 / 2 ** z) return Math.max(0, z - 1);
  return MAX_TILE_ZOOM;
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

class RasterTileLayer implements TileLayer {
  readonly palette?: readonly Rgba[];
  private readonly cache: TileCache;
  private readonly mapping: SceneGridMapping;
  private readonly lock = new Mutex();
  private readonly levels = new Map<string, Promise<SampledLevel>>();
  private readonly used = new Set<number>();
  private pyramid: Promise<PyramidLevel[]> | undefined;
  private pyramidSize = 0;
  private pyramidBlocks = 0;
  private closed = false;
  private readonly values: Float64Array;
  private readonly valid = new Uint8Array(TILE_SIZE * TILE_SIZE);

  private constructor(
    private readonly raster: OpenRaster,
    readonly id: string,
    readonly kind: TileLayerKind,
    private readonly scene: SceneGeoreference,
    readonly bounds: readonly [number, number, number, number],
    private readonly mercator: CrsBox,
    readonly minZoom: number,
    readonly maxZoom: number,
    /** 0-based source bands read, each once; the alpha band (if any) last. */
    private readonly distinct: readonly number[],
    private readonly maps: readonly ChannelMap[],
    /** Index into `distinct` of an alpha band, or -1. */
    private readonly alphaView: number,
    private readonly options: TileLayerOptions,
    readonly source: TileLayer['source'],
  ) {
    this.cache = new TileCache(options.cacheBytes ?? DEFAULT_TILE_CACHE_BYTES);
    this.mapping = new SceneGridMapping(scene);
    this.values = new Float64Array(distinct.length * TILE_SIZE * TILE_SIZE);
    if (kind === 'classes') this.palette = CLASS_PALETTE;
  }

  get uri(): string {
    return this.raster.uri;
  }

  static async create(raster: OpenRaster, options: TileLayerOptions): Promise<RasterTileLayer> {
    const uri = raster.uri;
    const info = raster.info;
    if (!info.geo) {
      throw new TileError(
        `${uri}: not georeferenced (no geotransform); a tile layer needs a georeferenced raster (assign one with gdal_translate -a_srs -a_ullr)`,
      );
    }
    if (info.geo.epsg === null) {
      throw new TileError(
        `${uri}: the CRS has no EPSG code (user-defined GeoKeys); a tile layer needs an EPSG CRS (reproject with gdalwarp -t_srs EPSG:<code>)`,
      );
    }
    const epsg = info.geo.epsg;
    const scene: SceneGeoreference = {
      uri,
      width: info.width,
      height: info.height,
      geotransform: info.geo.geotransform,
      epsg,
    };
    let ll: CrsBox;
    let mercator: CrsBox;
    let nativeRes: number;
    try {
      ll = sceneBoxIn(scene, 4326);
      mercator = sceneBoxIn(scene, 3857);
      const t = crsTransform({ epsg, text: `EPSG:${epsg}` }, { epsg: 3857, text: 'EPSG:3857' });
      const gt = info.geo.geotransform;
      const at = (c: number, r: number): [number, number] =>
        t.forward(gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]);
      const c = info.width / 2;
      const r = info.height / 2;
      const p0 = at(c, r);
      const p1 = at(c + 1, r);
      const p2 = at(c, r + 1);
      nativeRes = Math.min(
        Math.hypot(p1[0] - p0[0], p1[1] - p0[1]),
        Math.hypot(p2[0] - p0[0], p2[1] - p0[1]),
      );
    } catch (error) {
      if (error instanceof CrsError) {
        throw new TileError(`${uri}: CRS EPSG:${epsg} cannot be used: ${error.reason}`);
      }
      if (error instanceof GridError) throw new TileError(error.message);
      throw error;
    }
    if (!(nativeRes > 0) || !Number.isFinite(nativeRes)) {
      throw new TileError(
        `${uri}: the raster's pixel size in web mercator is ${nativeRes}; expected a positive number`,
      );
    }
    const level0 = await raster.level(0);
    const name = uri.slice(uri.lastIndexOf('/') + 1);
    const integer = !level0.dtype.startsWith('float');
    const requested = options.kind ?? 'auto';
    if (!['auto', 'rgb', 'classes'].includes(requested)) {
      throw new TileError(`${uri}: kind ${JSON.stringify(requested)} is not one of auto, rgb, classes`);
    }
    const kind: TileLayerKind =
      requested !== 'auto'
        ? requested
        : level0.bands === 1 &&
            integer &&
            (info.nodata === 255 || CLASS_NAME.test(name) || CLASS_NAME.test(uri))
          ? 'classes'
          : 'rgb';
    let distinct: number[];
    let maps: ChannelMap[] = [];
    let alphaView = -1;
    if (kind === 'classes') {
      if (level0.bands !== 1 || !integer) {
        throw new TileError(
          `${uri}: a classes layer needs one integer band; this raster has ${level0.bands} ${level0.dtype} bands (use kind 'rgb')`,
        );
      }
      distinct = [0];
    } else {
      const eight = level0.dtype === 'uint8';
      const rgbLike = info.photometric === 'rgb' || level0.mode === 'rgb';
      // 8-bit grey + alpha and RGB + alpha: the last band is drawn as alpha
      const alpha = eight && ((level0.bands === 4 && rgbLike) || level0.bands === 2) ? level0.bands : 0;
      const colourBands = alpha === 2 ? [1, 1, 1] : alpha === 4 ? [1, 2, 3] : null;
      let bands: number[];
      try {
        bands = colourBands ?? defaultBands(level0.bands, rgbLike, uri);
      } catch (error) {
        if (error instanceof RasterError) throw new TileError(error.message);
        throw error;
      }
      const channel = await rgbChannelMaps(
        raster,
        bands,
        eight ? { kind: 'none' } : { kind: 'percentile', ...DEFAULT_PERCENTILES },
        info.nodata,
        false,
        options.signal ? { signal: options.signal } : {},
      );
      maps = channel.maps;
      distinct = [...channel.distinct];
      if (alpha) {
        alphaView = distinct.length;
        distinct.push(alpha - 1);
      }
    }
    const span = nativeRes * Math.max(info.width, info.height);
    return new RasterTileLayer(
      raster,
      options.id ?? stemOf(uri),
      kind,
      scene,
      [ll.xmin, ll.ymin, ll.xmax, ll.ymax],
      mercator,
      Math.min(zoomForPixelSize(span / TILE_SIZE), zoomForPixelSize(nativeRes)),
      zoomForPixelSize(nativeRes),
      distinct,
      maps,
      alphaView,
      options,
      {
        width: info.width,
        height: info.height,
        bands: level0.bands,
        dtype: level0.dtype,
        overviews: raster.overviewIndices.length,
        epsg,
      },
    );
  }

  tile(z: number, x: number, y: number, signal?: AbortSignal): Promise<Buffer | null> {
    if (this.closed) return Promise.reject(new TileError(`${this.uri}: the tile layer is closed`));
    if (!Number.isInteger(z) || z < 0 || z > MAX_TILE_ZOOM) {
      return Promise.reject(
        new TileError(
          `${this.id}: tile zoom ${z} is out of range; expected an integer in [0, ${MAX_TILE_ZOOM}]`,
        ),
      );
    }
    const n = 2 ** z;
    if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= n || y >= n) {
      return Promise.reject(
        new TileError(
          `${this.id}: tile ${z}/${x}/${y} is out of range; at zoom ${z} x and y are integers in [0, ${n - 1}]`,
        ),
      );
    }
    return this.cache.get(`${z}/${x}/${y}`, () => this.render(z, x, y), signal);
  }

  stats(): TileLayerStats {
    let blocksDecoded = this.pyramidBlocks;
    for (const level of this.settled) if (level.decodes) blocksDecoded += level.cache.decoded;
    return {
      ...this.cache.stats(),
      blocksDecoded,
      pyramidBytes: this.pyramidSize,
      levelsUsed: [...this.used].sort((a, b) => a - b),
    };
  }

  private readonly settled: SampledLevel[] = [];

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.clear();
    await this.raster.close();
  }

  /** Source pixels per tile pixel at the tile's centre (the smaller of across and down). */
  private scaleOf(cellMap: (col: number, row: number) => [number, number]): number {
    const c = TILE_SIZE / 2;
    const [x0, y0] = cellMap(c, c);
    const [x1, y1] = cellMap(c + 1, c);
    const [x2, y2] = cellMap(c, c + 1);
    return Math.min(Math.hypot(x1 - x0, y1 - y0), Math.hypot(x2 - x0, y2 - y0));
  }

  private level(
    key: string,
    make: () => Promise<Omit<SampledLevel, 'cache' | 'decodes'>>,
  ): Promise<SampledLevel> {
    let level = this.levels.get(key);
    if (!level) {
      level = make().then((l) => {
        const sampled: SampledLevel = {
          factor: l.factor,
          blocks: l.blocks,
          bands: l.bands,
          cache: new BlockCache(l.blocks, l.bands, this.blockBudget(key)),
          decodes: !(l.blocks instanceof PyramidLevel),
        };
        this.settled.push(sampled);
        return sampled;
      });
      level.catch(() => this.levels.delete(key));
      this.levels.set(key, level);
    }
    return level;
  }

  /**
   * The block cache bytes of a level: the layer's budget shared by every level that decodes
   * (full resolution half of it when there are overviews, the overviews the other half).
   */
  private blockBudget(key: string): number {
    const total = this.options.blockCacheBytes ?? DEFAULT_BLOCK_CACHE_BYTES;
    const overviews = this.raster.overviewIndices.length;
    if (overviews === 0) return total;
    return key === '0' ? total / 2 : total / 2 / overviews;
  }

  /** The level to sample for `scale` source pixels per tile pixel. */
  private async levelFor(scale: number): Promise<SampledLevel> {
    const full = (): Promise<SampledLevel> =>
      this.level('0', async () => ({
        factor: [1, 1],
        blocks: await this.raster.level(0),
        bands: this.distinct,
      }));
    if (this.raster.overviewIndices.length > 0) {
      const overview = await overviewForScale(this.raster, scale);
      if (!overview) return full();
      return this.level(`o${overview.index}`, async () => ({
        factor: overview.factor,
        blocks: await this.raster.level(overview.index),
        bands: this.distinct,
      }));
    }
    const plan = pyramidPlan(
      this.scene.width,
      this.scene.height,
      this.distinct.length,
      (await this.raster.level(0)).dtype,
      this.options.pyramidBytes ?? DEFAULT_PYRAMID_BYTES,
      TILE_SIZE,
    );
    if (!plan || !(scale >= plan.firstFactor * (1 - 1e-9))) return full();
    this.pyramid ??= buildPyramid(await this.raster.level(0), this.distinct, this.raster.info.nodata, plan, {
      method: this.kind === 'classes' ? 'nearest' : 'average',
      onBlock: () => this.pyramidBlocks++,
    }).then((levels) => {
      this.pyramidSize = levels.reduce((s, l) => s + l.bytes, 0);
      return levels;
    });
    this.pyramid.catch(() => (this.pyramid = undefined));
    const levels = await this.pyramid;
    let best = levels[0]!;
    for (const l of levels)
      if (Math.max(...l.factor) <= scale * (1 + 1e-9) && l.factor[0] > best.factor[0]) best = l;
    return this.level(`p${best.factor[0]}`, async () => ({
      factor: best.factor,
      blocks: best,
      bands: best.bandIndices,
    }));
  }

  private async render(z: number, x: number, y: number): Promise<Buffer | null> {
    const tb = tileMercatorBounds({ x, y, z });
    const m = this.mercator;
    if (tb.right <= m.xmin || tb.left >= m.xmax || tb.top <= m.ymin || tb.bottom >= m.ymax) return null;
    const cell = webMercatorCell(this.scene, { x, y, z }, TILE_SIZE);
    const exact = this.mapping.chipToScene(cell);
    const map: ChipMap = cell.window
      ? windowMap(cell.window.col, cell.window.row, TILE_SIZE, TILE_SIZE)
      : this.mapOverRaster(exact, tb);
    const level = await this.levelFor(this.scaleOf(exact));
    const pixelMap = level.factor[0] === 1 && level.factor[1] === 1 ? map : scaleMap(map, level);
    const resampling: Resampling = this.kind === 'classes' ? 'nearest' : 'bilinear';
    const pixels = TILE_SIZE * TILE_SIZE;
    const keys = level.cache.neededBlocks(pixelMap, resampling);
    // blocks are fetched and decoded concurrently with other tiles' ...
    await level.cache.load(keys);
    const rgba = await this.lock.run(async () => {
      // ... and sampled one tile at a time, once every block is there: another tile's load may
      // have evicted some meanwhile; after two reloads this tile gets a cache of its own
      let cache = level.cache;
      for (let attempt = 0; !cache.hasAll(keys); attempt++) {
        if (attempt === 2) cache = new BlockCache(level.blocks, level.bands, 0);
        await cache.load(keys);
      }
      const count = resampleChip(
        pixelMap,
        cache,
        this.distinct.length,
        level.blocks.width,
        level.blocks.height,
        this.raster.info.nodata,
        resampling,
        this.values,
        this.valid,
      );
      this.used.add(level.factor[0]);
      if (count === 0) return null;
      return this.kind === 'classes' ? this.classPixels(pixels) : this.rgbPixels(pixels);
    });
    if (!rgba) return null;
    let visible = false;
    for (let i = 3; i < rgba.length; i += 4) {
      if (rgba[i] !== 0) {
        visible = true;
        break;
      }
    }
    if (!visible) return null;
    return sharp(rgba, { raw: { width: TILE_SIZE, height: TILE_SIZE, channels: 4 } })
      .png({ compressionLevel: 6 })
      .toBuffer();
  }

  /**
   * The tile's source positions, computed only over the tile pixels the raster's web-mercator
   * box covers (plus a pixel), NaN elsewhere: zoomed-out tiles of a small raster would otherwise
   * transform most of their pixels exactly, far outside the raster's CRS's useful domain.
   */
  private mapOverRaster(
    exact: (col: number, row: number) => [number, number],
    tb: { left: number; right: number; top: number },
  ): ChipMap {
    const m = this.mercator;
    const res = (tb.right - tb.left) / TILE_SIZE;
    const clamp = (v: number): number => Math.max(0, Math.min(TILE_SIZE, v));
    const c0 = clamp(Math.floor((m.xmin - tb.left) / res) - 1);
    const c1 = clamp(Math.ceil((m.xmax - tb.left) / res) + 1);
    const r0 = clamp(Math.floor((tb.top - m.ymax) / res) - 1);
    const r1 = clamp(Math.ceil((tb.top - m.ymin) / res) + 1);
    if (c0 === 0 && r0 === 0 && c1 === TILE_SIZE && r1 === TILE_SIZE) {
      return approximateMap(exact, TILE_SIZE, TILE_SIZE, DEFAULT_MAX_ERROR);
    }
    const w = c1 - c0;
    const part = approximateMap((col, row) => exact(col + c0, row + r0), w, r1 - r0, DEFAULT_MAX_ERROR);
    const xs = new Float64Array(TILE_SIZE * TILE_SIZE).fill(NaN);
    const ys = new Float64Array(TILE_SIZE * TILE_SIZE).fill(NaN);
    for (let r = r0; r < r1; r++) {
      xs.set(part.xs.subarray((r - r0) * w, (r - r0 + 1) * w), r * TILE_SIZE + c0);
      ys.set(part.ys.subarray((r - r0) * w, (r - r0 + 1) * w), r * TILE_SIZE + c0);
    }
    return { ...part, width: TILE_SIZE, height: TILE_SIZE, xs, ys };
  }

  private rgbPixels(pixels: number): Uint8Array {
    const float = this.source.dtype === 'float32' || this.source.dtype === 'float64';
    const out = toRgb(this.values, this.valid, this.maps, pixels, 4, float);
    if (this.alphaView >= 0) {
      const base = this.alphaView * pixels;
      for (let i = 0; i < pixels; i++) {
        if (this.valid[i]) out[i * 4 + 3] = Math.max(0, Math.min(255, Math.round(this.values[base + i]!)));
      }
    }
    return out;
  }

  private classPixels(pixels: number): Uint8Array {
    const out = new Uint8Array(pixels * 4);
    for (let i = 0; i < pixels; i++) {
      if (!this.valid[i]) continue;
      const colour = CLASS_PALETTE[this.values[i]!];
      if (!colour) continue;
      out.set(colour, i * 4);
    }
    return out;
  }
}
