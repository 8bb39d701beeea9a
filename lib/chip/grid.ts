/**
 * `chip grid`: cuts a georeferenced raster into the chips of a tile grid (Maxar ARD cells of
 * one UTM zone, or web-mercator XYZ tiles), one tileSize x tileSize chip per cell it overlaps.
 *
 * - On the grid (same CRS, pixel lattice aligned with the cell's within 1e-6 px) a chip is a pure
 *   pixel window of the source; otherwise output pixels are warped by inverse mapping through an
 *   approximate transformer (lib/chip/warp.ts, max error 0.125 source px) with nearest or bilinear
 *   resampling.
 * - Chips coarser than the source sample its overview closest to their resolution, never coarser
 *   (what gdalwarp's -ovr AUTO picks), unless `overviews: false`.
 * - Source pixels come from decoded blocks (byte ranges on S3), cached while chips are processed
 *   in row order, so memory does not grow with the scene.
 * - Any band count and sample type becomes 8-bit RGB as `geobatch rgb` makes it (default bands by
 *   count, 2-98 percentile stretch of a sample computed once per scene; 8-bit data kept as is).
 *   No-data (outside the source, or every band equal to the source no-data) is alpha 0 in PNG and
 *   GeoTIFF chips and 0 in JPEG chips (whose valid pixels then use 1..255).
 * - Outputs: the chips, `chips.geojson` (CRS84 footprints of written chips), `annotations.json`
 *   with --coco, and `nodata-index.json` last: every cell with its class and valid fraction,
 *   including the empty cells that `skipEmpty` leaves unwritten (`written: false`). A rerun with
 *   the same parameters over a finished output does nothing.
 * - Resuming: `<out>/.chip-grid-progress.json` records the finished cells and their valid pixel
 *   counts (lib/chip/progress.ts); a rerun after an interruption keeps those whose chip is still
 *   there (or that had none), without reading their pixels, and ends with the outputs of an
 *   uninterrupted run. The file is removed once the index is written.
 */
import sharp from 'sharp';
import { encodeJpeg } from './jpeg.js';
import { GridError } from '../geo/grid-error.js';
import { BoxIndex } from '../labels/box-index.js';
import { LabelError } from '../labels/errors.js';
import { signedArea, type Ring } from '../labels/geometry.js';
import {
  cocoAnnotation,
  indexAnnotations,
  prepareAnnotations,
  sliceAnnotations,
  type PreparedAnnotation,
  type SliceSourceAnnotation,
} from '../labels/slice.js';
import { RasterError } from '../raster/errors.js';
import { rgbChannelMaps, type ChannelMap } from '../raster/rgb.js';
import { newPixelArray, writeGeoTiff, type PixelArray, type RasterDType } from '../raster/geotiff-writer.js';
import { writeThroughLocalFile } from '../raster/output.js';
import { openRaster, type OpenRaster } from '../raster/reader.js';
import { defaultBands, DEFAULT_PERCENTILES, mapValue } from '../raster/stretch.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, compareUtf8, joinUri } from '../storage/uri.js';
import { BoundedTasks, ChipFileWriter } from './chip-files.js';
import {
  DEFAULT_TILE_SIZE,
  planGridCells,
  SceneGridMapping,
  validateGridOptions,
  type GridCell,
  type GridKind,
  type SceneGeoreference,
} from './grid-cells.js';
import { BlockCache } from './grid-source.js';
import { filesUnder, progressKey, RunProgress } from './progress.js';
import { nodataClass, type NodataClass } from './nodata.js';
import { readCoco } from './slice-images.js';
import {
  approximateMap,
  DEFAULT_MAX_ERROR,
  resampleChip,
  windowMap,
  type ChipMap,
  type Resampling,
} from './warp.js';

export type GridChipFormat = 'png' | 'jpeg' | 'tif';
export const GRID_CHIP_FORMATS: readonly GridChipFormat[] = ['png', 'jpeg', 'tif'];
export const RESAMPLINGS: readonly Resampling[] = ['nearest', 'bilinear'];

export interface ChipGridOptions {
  /** A GeoTIFF (local path or s3://). */
  readonly image: string;
  /** Output folder or s3:// prefix. */
  readonly out: string;
  readonly grid: GridKind;
  /** ARD level or web-mercator zoom, 1..24. */
  readonly level: number;
  /** @default 512 for ARD, 256 for web mercator */
  readonly tileSize?: number;
  /** @default 'png' */
  readonly format?: GridChipFormat;
  /** @default 'nearest' */
  readonly resampling?: Resampling;
  /** Write no chip for cells without valid pixels (they stay in the index, `written: false`). @default true */
  readonly skipEmpty?: boolean;
  /** ARD chips' catalog id. @default the image's file stem, letters and digits only */
  readonly catalogId?: string;
  /** COCO file with annotations in the scene's pixels. */
  readonly coco?: string;
  /** Keep a clipped annotation when trunc(clipped area) / trunc(area in the chip) >= this. @default 0.1 */
  readonly minAreaRatio?: number;
  /** JPEG quality. @default 90 */
  readonly quality?: number;
  /**
   * GeoTIFF chips with every source band and the source's sample values (resampled, not
   * stretched); no-data pixels get the source no-data value (0 without one). Only with format tif.
   * @default false
   */
  readonly keepValues?: boolean;
  /**
   * Sample an overview of the source when the chips are coarser than it: the coarsest whose
   * pixels are still no larger than the chips' anywhere in the scene (read far fewer blocks, and
   * no aliasing from sampling full resolution). @default true
   */
  readonly overviews?: boolean;
  /** Decoded source blocks kept for reuse, bytes. @default 128 MiB */
  readonly cacheBytes?: number;
  /** Encodes and writes in flight. @default 4 */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /** Cells processed so far. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface GridIndexEntry {
  /** Chip path relative to the output folder. */
  readonly chip: string;
  readonly class: NodataClass;
  readonly validFraction: number;
  readonly written: boolean;
  /** Cell id (`Z21-0312...` or `z/x/y`). */
  readonly cell: string;
  readonly quadkey: string;
  /** Whether the chip is a pure window of the source (no resampling). */
  readonly window: boolean;
}

/** `<out>/nodata-index.json`: the shape `chip nodata-index` writes, with grid facts added. */
export interface GridIndex {
  /** The chips' no-data value: 0 for JPEG chips, null for chips with alpha. */
  readonly nodata: number | null;
  readonly counts: Record<NodataClass, number>;
  readonly chips: readonly GridIndexEntry[];
  /** What produced the index; a rerun with equal params is skipped. */
  readonly params: Record<string, unknown>;
}

export interface ChipGridResult {
  readonly image: string;
  readonly grid: GridKind;
  readonly level: number;
  readonly tileSize: number;
  readonly format: GridChipFormat;
  readonly cells: number;
  readonly written: number;
  readonly counts: Record<NodataClass, number>;
  /** Chips that were pure source windows, and warped ones. */
  readonly windows: number;
  readonly warped: number;
  /** Largest interpolation error of the approximate transformer at its check points, source px. */
  readonly maxTransformError: number;
  readonly annotations: number;
  readonly zeroArea: number;
  readonly rle: number;
  readonly indexUri: string;
  readonly footprintsUri: string | undefined;
  readonly annotationsUri: string | undefined;
  /** The output was already complete for these parameters; nothing was done. */
  readonly alreadyDone: boolean;
  /** Cells an interrupted earlier run of the same parameters had finished, kept as they were. */
  readonly resumed: number;
  /**
   * The overview the pixels were sampled from (null: full resolution): its image index in the
   * file, size, and its pixels' size in full-resolution pixels.
   */
  readonly overview: GridOverview | null;
}

/** An overview chosen for sampling grid chips. */
export interface GridOverview {
  /** Image index in the TIFF (1: the first overview). */
  readonly index: number;
  readonly width: number;
  readonly height: number;
  /** Full-resolution pixels per overview pixel, across and down. */
  readonly factor: readonly [number, number];
}

/** The progress file a `chip grid` run resumes from (units: chip paths; values: valid pixels). */
export const GRID_PROGRESS_FILE = '.chip-grid-progress.json';

const EXTENSIONS: Record<GridChipFormat, string> = { png: 'png', jpeg: 'jpg', tif: 'tif' };

function validate(options: ChipGridOptions): void {
  validateGridOptions(options);
  const format = options.format ?? 'png';
  if (!GRID_CHIP_FORMATS.includes(format)) {
    throw new GridError(
      `Expected chip format ${GRID_CHIP_FORMATS.join(', ')} but received ${JSON.stringify(format)}`,
    );
  }
  const resampling = options.resampling ?? 'nearest';
  if (!RESAMPLINGS.includes(resampling)) {
    throw new GridError(
      `Expected resampling ${RESAMPLINGS.join(' or ')} but received ${JSON.stringify(resampling)}`,
    );
  }
  const ratio = options.minAreaRatio ?? 0.1;
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new LabelError(`Expected number in [0, 1] for min area ratio but received ${ratio}`);
  }
  const quality = options.quality ?? 90;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new RasterError(`Expected integer in [1, 100] for JPEG quality but received ${quality}`);
  }
  if (options.keepValues && format !== 'tif') {
    throw new GridError(`keepValues (--keep-values) needs format tif but format is ${format}`);
  }
  if (options.catalogId !== undefined && !/^[A-Za-z0-9]+$/.test(options.catalogId)) {
    throw new GridError(
      `Expected an alphanumeric catalog id but received ${JSON.stringify(options.catalogId)}`,
    );
  }
}

function ringArea(rings: readonly Ring[]): number {
  let area = 0;
  for (const r of rings) area += Math.abs(signedArea(r));
  return area;
}

/** The annotations of the scene for the image `name`: matched by file name, or the only image. */
async function sceneAnnotations(
  storage: Storage,
  coco: string,
  image: string,
  signal?: AbortSignal,
): Promise<{ annotations: SliceSourceAnnotation[]; categories: readonly unknown[] }> {
  const data = await readCoco(storage, coco, signal);
  const name = basenameUri(image);
  let match = data.images.find((i) => basenameUri(String(i.file_name)) === name);
  if (!match && data.images.length === 1) match = data.images[0];
  if (!match) {
    throw new LabelError(
      `${coco}: no image has file_name ${JSON.stringify(name)} (of --image ${image}) and the file lists ${data.images.length} images; expected one image or one named ${name}`,
    );
  }
  return {
    annotations: data.annotations.filter((a) => a.image_id === match.id),
    categories: data.categories,
  };
}

/** Cuts the scene into grid chips; throws RasterError/GridError/LabelError naming the file for bad input. */
export async function chipGrid(storage: Storage, options: ChipGridOptions): Promise<ChipGridResult> {
  validate(options);
  const signal = options.signal;
  const io = signal ? { signal } : {};
  const format = options.format ?? 'png';
  const ext = EXTENSIONS[format];
  const resampling = options.resampling ?? 'nearest';
  const skipEmpty = options.skipEmpty ?? true;
  const tileSize = options.tileSize ?? DEFAULT_TILE_SIZE[options.grid];
  const minAreaRatio = options.minAreaRatio ?? 0.1;
  const quality = options.quality ?? 90;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const indexUri = joinUri(options.out, 'nodata-index.json');

  const raster = await openRaster(storage, options.image, io);
  try {
    const info = raster.info;
    if (!info.geo) {
      throw new RasterError(
        `${options.image}: has no georeferencing (no ModelTiepoint/ModelPixelScale or ModelTransformation tags); chip grid needs a georeferenced GeoTIFF (assign one with gdal_translate -a_srs -a_ullr)`,
      );
    }
    if (info.geo.epsg === null) {
      throw new RasterError(
        `${options.image}: the CRS has no EPSG code (user-defined GeoKeys); chip grid needs an EPSG CRS (reproject with gdalwarp -t_srs EPSG:<code>)`,
      );
    }
    const params: Record<string, unknown> = {
      image: options.image,
      size: raster.fileSize,
      grid: options.grid,
      level: options.level,
      tileSize,
      format,
      resampling,
      skipEmpty,
      catalogId: options.catalogId ?? null,
      coco: options.coco ?? null,
      minAreaRatio,
      quality,
      keepValues: options.keepValues ?? false,
      overviews: options.overviews ?? true,
    };
    const previous = await readPreviousIndex(storage, indexUri, io);
    if (previous && JSON.stringify(previous.params) === JSON.stringify(params)) {
      const written = previous.chips.filter((c) => c.written).length;
      return {
        image: options.image,
        grid: options.grid,
        level: options.level,
        tileSize,
        format,
        cells: previous.chips.length,
        written,
        counts: previous.counts,
        windows: previous.chips.filter((c) => c.window).length,
        warped: previous.chips.filter((c) => !c.window).length,
        maxTransformError: 0,
        annotations: 0,
        zeroArea: 0,
        rle: 0,
        indexUri,
        footprintsUri: written > 0 ? joinUri(options.out, 'chips.geojson') : undefined,
        annotationsUri: options.coco ? joinUri(options.out, 'annotations.json') : undefined,
        alreadyDone: true,
        resumed: 0,
        overview: null,
      };
    }
    const scene: SceneGeoreference = {
      uri: options.image,
      width: info.width,
      height: info.height,
      geotransform: info.geo.geotransform,
      epsg: info.geo.epsg,
    };
    const cells = planGridCells(scene, {
      grid: options.grid,
      level: options.level,
      tileSize,
      ...(options.catalogId !== undefined ? { catalogId: options.catalogId } : {}),
    });
    const mapping = new SceneGridMapping(scene);
    const level = await raster.level(0);

    // bands and stretch as `geobatch rgb` chooses them, statistics sampled once per scene
    const keepValues = options.keepValues ?? false;
    if (keepValues && level.dtype === 'int8') {
      throw new RasterError(
        `${options.image}: int8 samples cannot be kept in GeoTIFF chips (--keep-values); leave it out for 8-bit RGB chips`,
      );
    }
    const bands = keepValues
      ? Array.from({ length: level.bands }, (_, i) => i + 1)
      : defaultBands(level.bands, info.photometric === 'rgb' || level.mode === 'rgb', options.image);
    const nodata = info.nodata;
    const alpha = format !== 'jpeg' && !keepValues;
    const float = level.dtype === 'float32' || level.dtype === 'float64';
    // valid JPEG pixels use 1..255, leaving 0 for no-data
    const { maps, distinct } = keepValues
      ? { maps: [], distinct: bands.map((b) => b - 1) }
      : await rgbChannelMaps(
          raster,
          bands,
          level.dtype === 'uint8' ? { kind: 'none' } : { kind: 'percentile', ...DEFAULT_PERCENTILES },
          nodata,
          !alpha,
          io,
        );
    const channels = keepValues ? distinct.length : alpha ? 4 : 3;

    // annotations in scene pixels, indexed by their bounds
    let prepared: readonly PreparedAnnotation[] = [];
    let categories: readonly unknown[] = [];
    let zeroArea = 0;
    let rle = 0;
    if (options.coco) {
      const found = await sceneAnnotations(storage, options.coco, options.image, signal);
      const p = prepareAnnotations(found.annotations, options.coco);
      prepared = p.annotations;
      zeroArea = p.zeroArea;
      rle = p.rle;
      categories = found.categories;
    }
    const sceneIndex = new BoxIndex(Math.max(64, Math.ceil(Math.max(info.width, info.height) / 64)));
    for (const a of prepared) sceneIndex.insert(a.bounds);

    // chips coarser than the source are sampled from an overview (positions scaled to its pixels)
    const overview =
      (options.overviews ?? true) ? await chooseOverview(raster, cells, mapping, tileSize) : null;
    const pixelLevel = overview ? await raster.level(overview.index) : level;
    const cache = new BlockCache(pixelLevel, distinct, options.cacheBytes);
    const pixels = tileSize * tileSize;
    const values = new Float64Array(distinct.length * pixels);
    const valid = new Uint8Array(pixels);
    const entries: GridIndexEntry[] = [];
    const counts: Record<NodataClass, number> = { 'all data': 0, 'partial data': 0, 'no data': 0 };
    const images: Record<string, unknown>[] = [];
    const annotations: Record<string, unknown>[] = [];
    const footprints: string[] = [];
    let windows = 0;
    let maxTransformError = 0;
    const files = new ChipFileWriter(storage, signal);
    const tasks = new BoundedTasks(concurrency);

    // cells an interrupted run with these parameters finished: their valid pixel counts
    const progressUri = joinUri(options.out, GRID_PROGRESS_FILE);
    const progress = await RunProgress.open(storage, progressUri, io);
    const key = await progressKey(storage, options.image, params, io);
    const earlier = progress.section(key, options.image);
    const existing = earlier.size > 0 ? await filesUnder(storage, options.out, io) : new Set<string>();
    let resumed = 0;

    let done = 0;
    try {
      for (const cell of cells) {
        signal?.throwIfAborted();
        let map: ChipMap;
        if (cell.window) {
          windows++;
          map = windowMap(cell.window.col, cell.window.row, tileSize, tileSize);
        } else {
          map = approximateMap(mapping.chipToScene(cell), tileSize, tileSize, DEFAULT_MAX_ERROR);
          maxTransformError = Math.max(maxTransformError, map.maxError);
        }
        const file = `${cell.name}.${ext}`;
        const recorded = earlier.get(file);
        const keep =
          recorded !== undefined &&
          (existing.has(file) || (skipEmpty && nodataClass(recorded, pixels) === 'no data'));
        let count: number;
        if (keep) {
          count = recorded;
          resumed++;
          progress.keep(key, [[file, count]]);
        } else {
          const pixelMap = overview ? scaleMap(map, overview) : map;
          await cache.load(cache.neededBlocks(pixelMap, resampling), signal);
          count = resampleChip(
            pixelMap,
            cache,
            distinct.length,
            pixelLevel.width,
            pixelLevel.height,
            nodata,
            resampling,
            values,
            valid,
          );
        }
        const cls = nodataClass(count, pixels);
        counts[cls]++;
        const write = !(skipEmpty && cls === 'no data');
        entries.push({
          chip: file,
          class: cls,
          validFraction: Math.round((count / pixels) * 1e6) / 1e6,
          written: write,
          cell: cell.id,
          quadkey: cell.quadkey,
          window: cell.window !== undefined,
        });
        if (!write && !keep) progress.markDone(key, file, count);
        if (write) {
          const rgb = keep
            ? undefined
            : keepValues
              ? rawPixels(values, valid, level.dtype as RasterDType, distinct.length, pixels, nodata ?? 0)
              : toRgb(values, valid, maps, pixels, channels, float);
          const imageId = images.length + 1;
          images.push({
            id: imageId,
            file_name: file,
            width: tileSize,
            height: tileSize,
            geotransform: cell.geotransform,
            crs: `EPSG:${cell.epsg}`,
            cell: cell.id,
            quadkey: cell.quadkey,
          });
          footprints.push(
            JSON.stringify({
              type: 'Feature',
              properties: { chip: file, cell: cell.id, quadkey: cell.quadkey, source: options.image },
              geometry: { type: 'Polygon', coordinates: [cell.lonLatRing] },
            }),
          );
          if (prepared.length > 0) {
            for (const a of chipAnnotations(
              prepared,
              sceneIndex,
              map,
              mapping.sceneToChip(cell),
              tileSize,
              minAreaRatio,
            )) {
              annotations.push(cocoAnnotation(annotations.length + 1, imageId, a));
            }
          }
          if (rgb) {
            const uri = joinUri(options.out, file);
            await tasks.run(async () => {
              if (format === 'tif') {
                await writeThroughLocalFile(
                  storage,
                  uri,
                  (path) =>
                    writeGeoTiff(path, rgb, {
                      width: tileSize,
                      height: tileSize,
                      bands: channels,
                      dtype: keepValues ? (level.dtype as RasterDType) : 'uint8',
                      tileSize: Math.min(tileSize, 512),
                      alpha,
                      geotransform: cell.geotransform,
                      epsg: cell.epsg,
                      crsKind: 'projected',
                      ...(keepValues ? { nodata: nodata ?? 0 } : {}),
                      ...(signal ? { signal } : {}),
                    }),
                  io,
                );
              } else {
                const pixels = rgb as Uint8Array;
                const bytes =
                  format === 'jpeg'
                    ? await encodeJpeg(
                        { data: pixels, width: tileSize, height: tileSize, channels, stride: tileSize },
                        quality,
                      )
                    : await sharp(pixels, {
                        raw: { width: tileSize, height: tileSize, channels: channels as 3 | 4 },
                      })
                        .png({ compressionLevel: 6 })
                        .toBuffer();
                await files.write(uri, bytes);
              }
              progress.markDone(key, file, count);
            });
          }
        }
        options.onProgress?.(++done, cells.length);
      }
      await tasks.drain();
    } finally {
      // what finished before a failure or an interruption is kept for the rerun (a failure to
      // record it must not hide the error that stopped the run)
      await tasks.drain().catch(() => undefined);
      await progress.flush().catch(() => undefined);
    }

    const footprintsUri = footprints.length > 0 ? joinUri(options.out, 'chips.geojson') : undefined;
    if (footprintsUri) {
      await storage.writeAtomic(
        footprintsUri,
        `{"type":"FeatureCollection","features":[\n${footprints.join(',\n')}\n]}\n`,
        { contentType: 'application/geo+json', ...io },
      );
    }
    let annotationsUri: string | undefined;
    if (options.coco) {
      annotationsUri = joinUri(options.out, 'annotations.json');
      const head = JSON.stringify({ images, categories });
      const lines = annotations.map((a) => JSON.stringify(a)).join(',\n');
      await storage.writeAtomic(
        annotationsUri,
        `${head.slice(0, -1)},"annotations":[${lines ? `\n${lines}\n` : ''}]}\n`,
        { contentType: 'application/json', ...io },
      );
    }
    entries.sort((a, b) => compareUtf8(a.chip, b.chip));
    const index: GridIndex = {
      nodata: keepValues ? (nodata ?? 0) : alpha ? null : 0,
      counts,
      chips: entries,
      params,
    };
    await storage.writeAtomic(indexUri, JSON.stringify(index, null, 1) + '\n', {
      contentType: 'application/json',
      ...io,
    });
    // the index now says the run is complete
    await storage.delete(progressUri, io);
    return {
      image: options.image,
      grid: options.grid,
      level: options.level,
      tileSize,
      format,
      cells: cells.length,
      written: images.length,
      counts,
      windows,
      warped: cells.length - windows,
      maxTransformError,
      annotations: annotations.length,
      zeroArea,
      rle,
      indexUri,
      footprintsUri,
      annotationsUri,
      alreadyDone: false,
      resumed,
      overview,
    };
  } finally {
    await raster.close();
  }
}

/**
 * The overview to sample chips from: the coarsest whose pixels are no larger than the chips'
 * pixels (measured in source pixels at every cell's centre, the smallest across and down), or
 * null when the chips are finer than twice the source's pixels or the file has no overviews.
 * GDAL's gdalwarp picks the same overview for these cases (its -ovr AUTO).
 */
async function chooseOverview(
  raster: OpenRaster,
  cells: readonly GridCell[],
  mapping: SceneGridMapping,
  tileSize: number,
): Promise<GridOverview | null> {
  if (raster.overviewIndices.length === 0) return null;
  let scale = Infinity;
  const c = tileSize / 2;
  for (const cell of cells) {
    if (cell.window) return null;
    const m = mapping.chipToScene(cell);
    const [x0, y0] = m(c, c);
    const [x1, y1] = m(c + 1, c);
    const [x2, y2] = m(c, c + 1);
    const across = Math.hypot(x1 - x0, y1 - y0);
    const down = Math.hypot(x2 - x0, y2 - y0);
    if (Number.isFinite(across) && Number.isFinite(down)) scale = Math.min(scale, across, down);
  }
  return overviewForScale(raster, scale);
}

/**
 * The overview to sample for outputs of `scale` full-resolution pixels per output pixel: the
 * coarsest whose pixels are not larger than that (what gdalwarp's -ovr AUTO picks), or null when
 * full resolution is the one (no overviews, or scale below 2).
 */
export async function overviewForScale(raster: OpenRaster, scale: number): Promise<GridOverview | null> {
  if (raster.overviewIndices.length === 0) return null;
  if (!(scale >= 2) || !Number.isFinite(scale)) return null;
  const { width, height } = raster.info;
  let best: GridOverview | null = null;
  for (const index of raster.overviewIndices) {
    const level = await raster.level(index);
    const factor: [number, number] = [width / level.width, height / level.height];
    if (Math.max(...factor) > scale * (1 + 1e-9)) continue;
    if (!best || factor[0] > best.factor[0])
      best = { index, width: level.width, height: level.height, factor };
  }
  return best;
}

/** A chip's sample positions in an overview's pixels instead of full-resolution ones. */
export function scaleMap(map: ChipMap, overview: Pick<GridOverview, 'factor'>): ChipMap {
  const [fx, fy] = overview.factor;
  const xs = new Float64Array(map.xs.length);
  const ys = new Float64Array(map.ys.length);
  for (let i = 0; i < xs.length; i++) {
    xs[i] = map.xs[i]! / fx;
    ys[i] = map.ys[i]! / fy;
  }
  return { ...map, xs, ys };
}

async function readPreviousIndex(
  storage: Storage,
  uri: string,
  io: { signal?: AbortSignal },
): Promise<GridIndex | undefined> {
  if (!(await storage.exists(uri, io))) return undefined;
  try {
    const index = JSON.parse((await storage.read(uri, io)).toString('utf8')) as Partial<GridIndex>;
    return index.params && Array.isArray(index.chips) && index.counts ? (index as GridIndex) : undefined;
  } catch {
    return undefined;
  }
}

/** Pixel-interleaved source values of a chip (integers rounded), `fill` where no data. */
function rawPixels(
  values: Float64Array,
  valid: Uint8Array,
  dtype: RasterDType,
  bands: number,
  pixels: number,
  fill: number,
): PixelArray {
  const out = newPixelArray(dtype, pixels * bands);
  const round = dtype !== 'float32' && dtype !== 'float64';
  for (let b = 0; b < bands; b++) {
    for (let i = 0, d = b; i < pixels; i++, d += bands) {
      const v = valid[i] ? values[b * pixels + i]! : fill;
      out[d] = round ? Math.round(v) : v;
    }
  }
  return out;
}

/** 8-bit RGB(A) pixels of a chip from its resampled band values. */
export function toRgb(
  values: Float64Array,
  valid: Uint8Array,
  maps: readonly ChannelMap[],
  pixels: number,
  channels: number,
  float: boolean,
): Uint8Array {
  const out = new Uint8Array(pixels * channels);
  for (let c = 0; c < 3; c++) {
    const m = maps[c]!;
    const base = m.view * pixels;
    const lut = m.lut;
    for (let i = 0, d = c; i < pixels; i++, d += channels) {
      if (!valid[i]) continue;
      const v = values[base + i]!;
      out[d] = lut && !float ? lut[Math.round(v) + m.lutOffset]! : mapValue(m.map, v);
    }
  }
  if (channels === 4) for (let i = 0, d = 3; i < pixels; i++, d += 4) out[d] = valid[i] ? 255 : 0;
  return out;
}

/** The scene's annotations carried into one chip: mapped to chip pixels, then clipped as slicing clips. */
function chipAnnotations(
  prepared: readonly PreparedAnnotation[],
  index: BoxIndex,
  map: ChipMap,
  toChip: (col: number, row: number) => [number, number],
  tileSize: number,
  minAreaRatio: number,
): ReturnType<typeof sliceAnnotations> {
  // the chip's extent in scene pixels, from the positions of its samples (plus a pixel)
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < map.xs.length; i++) {
    const x = map.xs[i]!;
    const y = map.ys[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  if (minX === Infinity) return [];
  const pad = Math.max(1, (maxX - minX) / tileSize);
  const mapped: PreparedAnnotation[] = [];
  for (const id of index.candidates([minX - pad, minY - pad, maxX + pad, maxY + pad])) {
    const a = prepared[id]!;
    const rings = a.rings.map((r) => r.map(([x, y]) => toChip(x, y)));
    const area = Math.trunc(ringArea(rings));
    if (area <= 0) continue;
    let l = Infinity;
    let t = Infinity;
    let r = -Infinity;
    let b = -Infinity;
    for (const ring of rings) {
      for (const [x, y] of ring) {
        l = Math.min(l, x);
        t = Math.min(t, y);
        r = Math.max(r, x);
        b = Math.max(b, y);
      }
    }
    mapped.push({ source: a.source, categoryId: a.categoryId, rings, bounds: [l, t, r, b], area });
  }
  if (mapped.length === 0) return [];
  return sliceAnnotations(
    mapped,
    indexAnnotations(mapped, tileSize),
    [0, 0, tileSize, tileSize],
    minAreaRatio,
  );
}
