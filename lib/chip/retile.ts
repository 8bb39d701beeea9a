/**
 * `chip retile`: cuts one GeoTIFF (local or s3://, any layout) into GeoTIFF tiles on the
 * gdal_retile grid (lib/chip/retile-grid.ts), keeping bands, data type, no-data, CRS and each
 * tile's geotransform.
 *
 * Streaming: the source is read through the block reader (range reads, never downloaded or
 * decoded whole) one row of tiles at a time, in bands of 512 rows that are handed to the
 * streaming writers of every tile of that row. Memory is about three bands of 512 rows across
 * the tiles being written, whatever the image height.
 *
 * Outputs: each tile is written to a temporary name and renamed (local) or uploaded whole
 * (s3://), and `<out>/tiles.json` is written last. While tiles are written, `<out>/.retile-run.json`
 * holds the run's source and settings. A rerun skips everything when the index matches the same
 * source and settings; after an interrupted run with the same settings (run file), every tile whose
 * file exists with the expected size, bands, type and no-data (an existing file is complete: tiles
 * only ever appear whole); with other settings, or tiles of unknown origin, everything is rewritten.
 *
 * Sources without georeferencing are retiled too; their tiles have none (geotransform null in
 * the index). A PixelIsPoint source gives tiles with GDAL's placement (half a pixel up-left of the
 * tie point), written as PixelIsArea, as gdal_retile does.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { windowGeoTransform, type GeoTransform, type PixelWindow } from '../geo/affine.js';
import { RasterError } from '../raster/errors.js';
import { GeoTiffWriter, newPixelArray, type PixelArray, type RasterDType } from '../raster/geotiff-writer.js';
import { openRaster, type BandArray, type DecodedBlock, type ImageBlocks } from '../raster/reader.js';
import { basenameUri, isS3Uri, joinUri, normalizeUri, toLocalPath } from '../storage/uri.js';
import type { Storage } from '../storage/types.js';
import { retileGrid, retileStem, validateRetileOptions, type RetileTile } from './retile-grid.js';

export type RetileCompression = 'deflate' | 'none';

export interface RetileOptions {
  /** Output folder or s3:// prefix. */
  readonly out: string;
  /** Tile width and height in pixels. @default 5120 */
  readonly size?: number;
  /** Pixels shared by neighbouring tiles, in [0, size). @default 0 */
  readonly overlap?: number;
  /** Compression of the tiles. @default 'deflate' */
  readonly compress?: RetileCompression;
  /** Scratch folder for tiles bound for s3://. @default os.tmpdir() */
  readonly tmpDir?: string;
  /** Called after each row of tiles with tiles finished (written or skipped) and the total. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

export type IndexNodata = number | 'nan' | null;

/** One tile as `tiles.json` lists it. */
export interface RetileIndexTile {
  readonly name: string;
  readonly row: number;
  readonly col: number;
  readonly window: PixelWindow;
  /** GDAL-style geotransform of the tile, or null when the source has no georeferencing. */
  readonly geotransform: GeoTransform | null;
}

/** `<out>/tiles.json` */
export interface RetileIndex {
  readonly source: string;
  readonly width: number;
  readonly height: number;
  readonly bands: number;
  readonly dtype: RasterDType;
  /** No-data value of every band ('nan' for NaN, which JSON cannot hold), or null. */
  readonly nodata: IndexNodata;
  readonly epsg: number | null;
  readonly size: number;
  readonly overlap: number;
  readonly compress: RetileCompression;
  readonly rows: number;
  readonly cols: number;
  readonly tiles: readonly RetileIndexTile[];
}

export interface RetileResult {
  readonly input: string;
  readonly out: string;
  readonly indexUri: string;
  readonly width: number;
  readonly height: number;
  readonly bands: number;
  readonly dtype: RasterDType;
  readonly nodata: IndexNodata;
  readonly epsg: number | null;
  readonly rows: number;
  readonly cols: number;
  readonly tiles: number;
  /** Tiles written by this run. */
  readonly written: number;
  /** Tiles found complete from an earlier run and left alone. */
  readonly skipped: number;
  readonly warnings: readonly string[];
}

/** Rows fed to the writers at a time: one row of their 512 px internal tiles. */
const BAND_ROWS = 512;

const COMPRESSIONS: readonly RetileCompression[] = ['deflate', 'none'];

/** The index file of a retile output folder. */
export function retileIndexUri(out: string): string {
  return joinUri(out, 'tiles.json');
}

/** `<out>/.retile-run.json`: the settings of a run in progress, so that a rerun knows whose tiles are there. */
function runFileUri(out: string): string {
  return joinUri(out, '.retile-run.json');
}

/** Cuts `input` into tiles under `options.out` (see the module comment). */
export async function retileImage(
  storage: Storage,
  input: string,
  options: RetileOptions,
): Promise<RetileResult> {
  const { size, overlap } = validateRetileOptions({
    size: options.size ?? 5120,
    overlap: options.overlap ?? 0,
  });
  const compress = options.compress ?? 'deflate';
  if (!COMPRESSIONS.includes(compress)) {
    throw new RasterError(
      `retile compress: expected one of ${COMPRESSIONS.join(', ')} but got ${String(compress)}`,
    );
  }
  const signal = options.signal;
  const io = signal ? { signal } : {};
  const out = normalizeUri(options.out);
  const source = normalizeUri(input);
  const raster = await openRaster(storage, source, io);
  try {
    const info = raster.info;
    const level = await raster.level(0);
    if (level.dtype === 'int8') {
      throw new RasterError(
        `${source}: int8 samples are not supported by the GeoTIFF writer (supported: uint8, uint16, int16, uint32, int32, float32, float64); convert first (gdal_translate -ot Int16)`,
      );
    }
    const dtype: RasterDType = level.dtype;
    const { width, height, bands } = level;
    const warnings: string[] = [];
    const geo = info.geo;
    const epsg = geo?.epsg ?? null;
    if (!geo) warnings.push(`${source} has no georeferencing: the tiles have none either`);
    else if (epsg === null) {
      warnings.push(`${source}: the CRS has no EPSG code; the tiles keep the geotransform but not the CRS`);
    }
    if (level.mode === 'rgb') {
      warnings.push(`${source}: ${info.photometric} pixels are written as 8-bit RGB tiles`);
    }
    const nodata = level.mode === 'rgb' ? null : info.nodata;
    const indexNodata: IndexNodata = nodata !== null && Number.isNaN(nodata) ? 'nan' : nodata;
    const modelType = raster.modelType;
    const grid = retileGrid(width, height, retileStem(basenameUri(source)), { size, overlap });
    const index: RetileIndex = {
      source,
      width,
      height,
      bands,
      dtype,
      nodata: indexNodata,
      epsg,
      size,
      overlap,
      compress,
      rows: grid.rows,
      cols: grid.cols,
      tiles: grid.tiles.map((t) => ({
        name: t.name,
        row: t.row,
        col: t.col,
        window: t.window,
        geotransform: geo ? windowGeoTransform(geo.geotransform, t.window.col, t.window.row) : null,
      })),
    };
    const result = (written: number): RetileResult => ({
      input: source,
      out,
      indexUri: retileIndexUri(out),
      width,
      height,
      bands,
      dtype,
      nodata: indexNodata,
      epsg,
      rows: grid.rows,
      cols: grid.cols,
      tiles: grid.tiles.length,
      written,
      skipped: grid.tiles.length - written,
      warnings,
    });

    const done = await finishedTiles(storage, out, index, io);
    if (done.names.size === grid.tiles.length && done.indexMatches) {
      options.onProgress?.(grid.tiles.length, grid.tiles.length);
      return result(0);
    }
    // a stale index must not describe the folder while its tiles are being replaced
    if (done.indexExists) await storage.delete(retileIndexUri(out), io);
    if (!done.runMatches) await storage.writeAtomic(runFileUri(out), JSON.stringify(index) + '\n', io);

    const local = !isS3Uri(out);
    if (local) await mkdir(toLocalPath(out), { recursive: true });
    const scratch = local ? undefined : await mkdtemp(join(options.tmpDir ?? tmpdir(), 'geobatch-retile-'));
    let written = 0;
    let finished = done.names.size;
    try {
      for (let row = 1; row <= grid.rows; row++) {
        const todo = grid.tiles.filter((t) => t.row === row && !done.names.has(t.name));
        if (todo.length > 0) {
          await writeTileRow(storage, level, todo, {
            out,
            scratch,
            dtype,
            compress,
            nodata,
            epsg,
            crsKind: modelType === 2 ? 'geographic' : 'projected',
            geotransform: geo?.geotransform,
            signal,
          });
          written += todo.length;
          finished += todo.length;
        }
        options.onProgress?.(finished, grid.tiles.length);
      }
    } finally {
      if (scratch) await rm(scratch, { recursive: true, force: true });
    }
    // written last: its presence says every tile is complete
    await storage.writeAtomic(retileIndexUri(out), JSON.stringify(index, null, 1) + '\n', {
      ...io,
      contentType: 'application/json',
    });
    await storage.delete(runFileUri(out), io);
    return result(written);
  } finally {
    await raster.close();
  }
}

interface FinishedTiles {
  /** Names of complete tiles. */
  readonly names: ReadonlySet<string>;
  readonly indexExists: boolean;
  /** The index lists the same source and settings. */
  readonly indexMatches: boolean;
  /** The run file names the same source and settings (an interrupted run of this one). */
  readonly runMatches: boolean;
}

/** Settings that must match for an earlier run's tiles to count as this run's. */
function sameSettings(a: RetileIndex, b: RetileIndex): boolean {
  const keys = [
    'source',
    'width',
    'height',
    'bands',
    'dtype',
    'nodata',
    'epsg',
    'size',
    'overlap',
    'compress',
  ] as const;
  return keys.every((k) => a[k] === b[k]) && a.tiles.length === b.tiles.length;
}

async function readIndexFile(
  storage: Storage,
  uri: string,
  io: { signal?: AbortSignal },
): Promise<RetileIndex | undefined> {
  try {
    return JSON.parse((await storage.read(uri, io)).toString('utf8')) as RetileIndex;
  } catch (error) {
    if (io.signal?.aborted) throw error;
    return undefined;
  }
}

/**
 * Names of the tiles an earlier run with the same settings left complete under `out`: all of
 * them when its index matches, else (an interrupted run, known by its run file) those whose
 * header has the expected size, bands, type and no-data. Tiles of other settings or of unknown
 * origin are written again.
 */
async function finishedTiles(
  storage: Storage,
  out: string,
  index: RetileIndex,
  io: { signal?: AbortSignal },
): Promise<FinishedTiles> {
  const wanted = new Map(index.tiles.map((t) => [t.name, t]));
  const existing = new Set<string>();
  const prefix = joinUri(out, `${retileStem(basenameUri(index.source))}_`);
  for await (const info of storage.list(prefix, io)) {
    const name = basenameUri(info.uri);
    if (wanted.has(name) && joinUri(out, name) === info.uri) existing.add(name);
  }
  const previous = await readIndexFile(storage, retileIndexUri(out), io);
  const run = await readIndexFile(storage, runFileUri(out), io);
  const indexExists = previous !== undefined || (await storage.exists(retileIndexUri(out), io));
  const indexMatches = previous !== undefined && sameSettings(previous, index);
  const runMatches = run !== undefined && sameSettings(run, index);
  if (indexMatches && existing.size === index.tiles.length) {
    return { names: existing, indexExists, indexMatches, runMatches };
  }
  const finished = new Set<string>();
  if (!indexMatches && !runMatches) return { names: finished, indexExists, indexMatches, runMatches };
  for (const name of existing) {
    const tile = wanted.get(name)!;
    try {
      const r = await openRaster(storage, joinUri(out, name), io);
      const i = r.info;
      await r.close();
      if (
        i.width === tile.window.width &&
        i.height === tile.window.height &&
        i.bands === index.bands &&
        i.dtype === index.dtype &&
        (i.nodata === null ? null : Number.isNaN(i.nodata) ? 'nan' : i.nodata) === index.nodata
      ) {
        finished.add(name);
      }
    } catch (error) {
      if (io.signal?.aborted) throw error;
      // unreadable: written again
    }
  }
  return { names: finished, indexExists, indexMatches, runMatches };
}

interface TileRowSettings {
  readonly out: string;
  /** Local folder for tiles bound for s3://; undefined for local output. */
  readonly scratch: string | undefined;
  readonly dtype: RasterDType;
  readonly compress: RetileCompression;
  readonly nodata: number | null;
  readonly epsg: number | null;
  readonly crsKind: 'projected' | 'geographic';
  readonly geotransform: GeoTransform | undefined;
  readonly signal: AbortSignal | undefined;
}

/**
 * Writes the tiles `todo` (all in one row of the grid): their rows are read in bands of
 * {@link BAND_ROWS} across the columns they span and fed to one streaming writer per tile.
 */
async function writeTileRow(
  storage: Storage,
  level: ImageBlocks,
  todo: readonly RetileTile[],
  s: TileRowSettings,
): Promise<void> {
  const bands = level.bands;
  const y0 = todo[0]!.window.row;
  const height = todo[0]!.window.height;
  const x0 = Math.min(...todo.map((t) => t.window.col));
  const x1 = Math.max(...todo.map((t) => t.window.col + t.window.width));
  const span = x1 - x0;
  const band = newPixelArray(s.dtype, Math.min(BAND_ROWS, height) * span * bands);
  const maxTileWidth = Math.max(...todo.map((t) => t.window.width));
  const tileRows =
    maxTileWidth === span
      ? undefined
      : newPixelArray(s.dtype, Math.min(BAND_ROWS, height) * maxTileWidth * bands);
  const bandIndices = Array.from({ length: bands }, (_, b) => b);
  const paths = todo.map((t) => (s.scratch ? join(s.scratch, t.name) : toLocalPath(joinUri(s.out, t.name))));
  const writers: GeoTiffWriter[] = [];
  try {
    for (const [i, t] of todo.entries()) {
      writers.push(
        await GeoTiffWriter.open(paths[i]!, {
          width: t.window.width,
          height: t.window.height,
          bands,
          dtype: s.dtype,
          tileSize: 512,
          compression: s.compress,
          ...(s.geotransform
            ? { geotransform: windowGeoTransform(s.geotransform, t.window.col, t.window.row) }
            : {}),
          ...(s.epsg !== null ? { epsg: s.epsg, crsKind: s.crsKind } : {}),
          ...(s.nodata !== null ? { nodata: s.nodata } : {}),
          alpha: false,
          ...(s.signal ? { signal: s.signal } : {}),
        }),
      );
    }
    for (let cy = 0; cy < height; cy += BAND_ROWS) {
      const rows = Math.min(BAND_ROWS, height - cy);
      const ya = y0 + cy;
      const yb = ya + rows;
      const blocks = level.blocksInRows(ya, yb).filter((ref) => {
        const r = level.blockRect(ref);
        return r.col < x1 && r.col + r.width > x0;
      });
      await level.readBlocks(
        blocks,
        bandIndices,
        (block) => copyBlock(block, band, x0, x1, ya, yb, bands),
        s.signal ? { signal: s.signal } : {},
      );
      for (const [i, t] of todo.entries()) {
        const w = t.window.width;
        let data: PixelArray;
        if (tileRows === undefined) data = band.subarray(0, rows * span * bands);
        else {
          const from = (t.window.col - x0) * bands;
          for (let r = 0; r < rows; r++) {
            const start = r * span * bands + from;
            tileRows.set(band.subarray(start, start + w * bands), r * w * bands);
          }
          data = tileRows.subarray(0, rows * w * bands);
        }
        await writers[i]!.writeRows(data);
      }
    }
    for (const writer of writers) await writer.close();
  } catch (error) {
    await Promise.all(writers.map((w) => w.abort()));
    if (s.scratch) await Promise.all(paths.map((p) => rm(p, { force: true })));
    throw error;
  }
  if (s.scratch) {
    for (const [i, t] of todo.entries()) {
      await storage.writeAtomic(joinUri(s.out, t.name), createReadStream(paths[i]!), {
        ...(s.signal ? { signal: s.signal } : {}),
        contentType: 'image/tiff',
      });
      await rm(paths[i]!, { force: true });
    }
  }
}

/**
 * Copies the part of `block` inside columns [x0, x1) and rows [ya, yb) into `out`, a
 * pixel-interleaved buffer of `x1 - x0` columns whose first row is image row `ya`.
 */
export function copyBlock(
  block: DecodedBlock,
  out: PixelArray,
  x0: number,
  x1: number,
  ya: number,
  yb: number,
  bands: number,
): void {
  const c0 = Math.max(block.col, x0);
  const c1 = Math.min(block.col + block.width, x1);
  const r0 = Math.max(block.row, ya);
  const r1 = Math.min(block.row + block.height, yb);
  if (c0 >= c1 || r0 >= r1) return;
  const span = x1 - x0;
  const n = c1 - c0;
  const views = block.bands;
  const first = views[0]!;
  // a pixel-interleaved block with every band in order: whole row segments at once
  const interleaved =
    first.pixelStride === bands &&
    views.every((v, b) => v.data === first.data && v.offset === first.offset + b && v.pixelStride === bands);
  if (interleaved) {
    const data = first.data as BandArray;
    for (let r = r0; r < r1; r++) {
      const from = first.offset + (r - block.row) * first.rowStride + (c0 - block.col) * bands;
      out.set(data.subarray(from, from + n * bands), ((r - ya) * span + (c0 - x0)) * bands);
    }
    return;
  }
  for (let b = 0; b < bands; b++) {
    const v = views[b]!;
    const data = v.data;
    const p = v.pixelStride;
    for (let r = r0; r < r1; r++) {
      let from = v.offset + (r - block.row) * v.rowStride + (c0 - block.col) * p;
      let to = ((r - ya) * span + (c0 - x0)) * bands + b;
      for (let c = 0; c < n; c++, from += p, to += bands) out[to] = data[from]!;
    }
  }
}
