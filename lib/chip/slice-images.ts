/**
 * `chip slice`: cuts images into SAHI-compatible slices with their COCO annotations
 * (lib/labels/slice.ts). GeoTIFFs of any band count and sample type, local or s3://, are read
 * block by block (byte ranges on S3, only the blocks the windows need) and converted to 8-bit RGB
 * on the fly as `geobatch rgb` does; JPEG and PNG are decoded with sharp (lib/chip/slice-readers.ts).
 * The rows a row of windows covers are decoded once and the chips are cut from memory
 * (REFERENCE §6); encodes run a few at a time. Chips are JPEG, PNG or georeferenced GeoTIFF,
 * written atomically, and annotations.json last, so a failed run never leaves a dataset that
 * looks complete. Outputs are deterministic: same names, ids and bytes on every run.
 */
import {
  cutBands,
  type ChipFormat,
  type ChipOutput,
  type PlannedBand,
  type PlannedChip,
} from './slice-bands.js';
import { RasterRows, type ChipRows } from './slice-readers.js';
import {
  openSliceRows,
  ResampledRows,
  scaleAnnotations,
  validateResample,
  type SliceResample,
  type SliceResampling,
} from './slice-resample.js';
import { digestOf, filesUnder, progressKey, RunProgress } from './progress.js';
import { defaultSliceWorkers, runSliceWorkers, splitBands } from './slice-workers.js';
import { LabelError } from '../labels/errors.js';
import {
  cocoAnnotation,
  planImageSlices,
  prepareAnnotations,
  validateSliceOptions,
  type SliceSourceAnnotation,
  type SliceWindow,
} from '../labels/slice.js';
import { pixelToWorld, windowGeoTransform, type GeoTransform } from '../geo/affine.js';
import { CRS84, crsTransform } from '../geo/crs.js';
import { RasterError } from '../raster/errors.js';
import type { Stretch } from '../raster/stretch.js';
import { IMAGE_EXTENSIONS } from '../raster/image-size.js';
import { portableStorageOptions } from '../storage/index.js';
import { basenameUri, compareUtf8, joinUri, normalizeUri } from '../storage/uri.js';
import type { Storage } from '../storage/types.js';

export type { ChipFormat } from './slice-bands.js';

export interface SliceImagesOptions {
  /** An image file, or a directory / s3 prefix of images. */
  readonly images: string;
  /** COCO file whose images are looked up by file name under `images`. */
  readonly coco?: string;
  readonly out: string;
  /** @default 300 */
  readonly size?: number;
  /** @default 0.2 */
  readonly overlap?: number;
  /** @default 0.1 */
  readonly minAreaRatio?: number;
  /** Leave out (and do not write) windows without a kept annotation. @default false */
  readonly ignoreNegatives?: boolean;
  /** @default 'jpeg'; 'tif': GeoTIFF chips, georeferenced when the source is */
  readonly format?: ChipFormat;
  /** 1-based GeoTIFF bands for R, G, B (or one band, repeated). @default by band count, as `geobatch rgb` */
  readonly bands?: readonly number[];
  /** How GeoTIFF samples become 8-bit. @default none for 8-bit data, percentile 2-98 otherwise, as `geobatch rgb` */
  readonly stretch?: Stretch;
  /**
   * Only these rows and columns of windows (0-based, end exclusive, in the order the windows are
   * planned), e.g. to split a very large scene into several tasks; only the blocks they cover are read.
   * @default every window
   */
  readonly windowGrid?: {
    readonly rows?: readonly [number, number];
    readonly cols?: readonly [number, number];
  };
  /**
   * Cut only this part of each image's rows of windows (`count` contiguous runs of rows, as even
   * as possible), e.g. one task of several over a very large scene; annotations and footprints
   * go to part files (see {@link partFileName}) with the ids the whole run gives.
   */
  readonly part?: SlicePart;
  /** JPEG quality. @default 90 */
  readonly quality?: number;
  /**
   * Resample each (georeferenced, projected) image to this many metres per pixel before slicing,
   * as `gdalwarp -tr gsd gsd` on the same origin; `size` and windows are then in output pixels,
   * and annotations, geotransforms and footprints follow. @default the image's own resolution
   */
  readonly gsd?: number;
  /** With `gsd`. @default 'average' when coarser on both axes, else 'bilinear' */
  readonly resampling?: SliceResampling;
  /**
   * Worker threads for one large image (rows of windows split between them; small images are
   * cut on this thread). Only with a storage made by createStorage. @default half the cores, at most 4
   */
  readonly workers?: number;
  /**
   * JPEG/PNG: most bytes of decoded rows held at once (at least one row of windows is). GeoTIFFs
   * hold the block rows a row of windows covers, plus one. @default 64 MiB
   */
  readonly bandBytes?: number;
  /** Encodes and writes in flight. @default 8 */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /** Called after each row of windows with the chips written so far and the chips planned in all. */
  readonly onProgress?: (chips: number, planned: number) => void;
}

export interface SliceImagesResult {
  readonly images: number;
  readonly chips: number;
  readonly annotations: number;
  /** Annotations skipped because their area is zero. */
  readonly zeroArea: number;
  /** RLE segmentations skipped. */
  readonly rle: number;
  readonly annotationsUri: string;
  /**
   * Chips an earlier, interrupted run of the same slicing had finished (whole rows of windows
   * whose chips are all there), kept instead of cut again; counted in `chips`.
   */
  readonly resumed: number;
  /**
   * The rows of windows cut (summed over images) and the pixel rows they cover (over several
   * images, the span across them); null when no window was cut.
   */
  readonly rows: { readonly windows: number; readonly top: number; readonly bottom: number } | null;
  /** The most threads one image was cut on (1: the calling thread only; see `workers`). */
  readonly threads: number;
  /** Whether chips.geojson was written (georeferenced sources). */
  readonly footprints: boolean;
  /** Per image: how its pixels became 8-bit (e.g. bands and stretch), and warnings. */
  readonly sources: readonly {
    readonly uri: string;
    readonly conversion: string;
    readonly warnings: readonly string[];
  }[];
}

export interface CocoInput {
  readonly images: {
    readonly id: number;
    readonly file_name: string;
    readonly width?: number;
    readonly height?: number;
  }[];
  readonly annotations: (SliceSourceAnnotation & { readonly image_id: number })[];
  readonly categories: unknown[];
}

function extensionOf(format: ChipFormat): string {
  return format === 'jpeg' ? 'jpg' : format;
}

function isImage(uri: string): boolean {
  const lower = uri.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e)) && !basenameUri(uri).startsWith('._');
}

/** The images under `images` (a file, directory or prefix), sorted by name. */
async function listImages(storage: Storage, images: string, signal?: AbortSignal): Promise<string[]> {
  const io = signal ? { signal } : {};
  if (isImage(images) && (await storage.exists(images, io))) return [normalizeUri(images)];
  const found: string[] = [];
  for await (const info of storage.list(images, io)) if (isImage(info.uri)) found.push(info.uri);
  if (found.length === 0) {
    throw new RasterError(
      `--images ${images}: no images found (expected ${IMAGE_EXTENSIONS.join(', ')} files)`,
    );
  }
  return found.sort(compareUtf8);
}

async function readCoco(storage: Storage, uri: string, signal?: AbortSignal): Promise<CocoInput> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((await storage.read(uri, signal ? { signal } : {})).toString('utf8'));
  } catch (error) {
    if (error instanceof SyntaxError) throw new LabelError(`${uri}: not valid JSON: ${error.message}`);
    throw error;
  }
  const coco = parsed as Partial<CocoInput>;
  for (const field of ['images', 'annotations', 'categories'] as const) {
    if (!Array.isArray(coco[field])) {
      throw new LabelError(
        `${uri}: '${field}' is ${JSON.stringify(coco[field]) ?? 'missing'}; expected an array`,
      );
    }
  }
  return coco as CocoInput;
}

function stemOf(name: string): string {
  const base = basenameUri(name);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** A chip's footprint as a GeoJSON feature in CRS84 (its four corners, lon/lat to 1e-9 degrees). */
function footprintFeature(
  gt: GeoTransform,
  toLonLat: (x: number, y: number) => [number, number],
  window: SliceWindow,
  chip: string,
  source: string,
): string {
  const [x0, y0, x1, y1] = window;
  const ring = [
    [x0, y0],
    [x0, y1],
    [x1, y1],
    [x1, y0],
    [x0, y0],
  ].map(([c, r]) => {
    const [x, y] = pixelToWorld(gt, c!, r!);
    const [lon, lat] = toLonLat(x, y);
    return [Math.round(lon * 1e9) / 1e9, Math.round(lat * 1e9) / 1e9];
  });
  return JSON.stringify({
    type: 'Feature',
    properties: { chip, window: [x0, y0, x1, y1], source },
    geometry: { type: 'Polygon', coordinates: [ring] },
  });
}

/** Slices every image; returns counts. Throws LabelError/RasterError naming the file for bad input. */
export async function sliceImages(storage: Storage, options: SliceImagesOptions): Promise<SliceImagesResult> {
  validateSliceImagesOptions(options);
  const signal = options.signal;
  const available = await listImages(storage, options.images, signal);
  const coco = options.coco ? await readCoco(storage, options.coco, signal) : undefined;
  const byName = new Map(available.map((uri) => [basenameUri(uri), uri]));
  const sources: SliceSource[] = [];
  if (coco) {
    const perImage = new Map<number, SliceSourceAnnotation[]>();
    for (const a of coco.annotations) {
      const list = perImage.get(a.image_id);
      if (list) list.push(a);
      else perImage.set(a.image_id, [a]);
    }
    coco.images.forEach((image, i) => {
      const name = basenameUri(String(image.file_name));
      const uri = byName.get(name);
      if (!uri) {
        throw new LabelError(
          `${options.coco}: images[${i}].file_name ${JSON.stringify(image.file_name)} is not under --images ${options.images}`,
        );
      }
      sources.push({ uri, name, annotations: perImage.get(image.id) ?? [], labelsUri: options.coco! });
    });
  } else {
    for (const uri of available) sources.push({ uri, name: basenameUri(uri), annotations: [] });
  }
  return sliceSources(storage, sources, coco?.categories ?? [], options);
}

/** One image to slice, with its annotations. */
export interface SliceSource {
  readonly uri: string;
  /** File name whose stem names the chips. */
  readonly name: string;
  readonly annotations: readonly SliceSourceAnnotation[];
  /** The labels file, for error messages. */
  readonly labelsUri?: string;
}

function validateSliceImagesOptions(options: Omit<SliceImagesOptions, 'images'>): void {
  const format = options.format ?? 'jpeg';
  if (!['jpeg', 'png', 'tif'].includes(format)) {
    throw new RasterError(`--format: expected jpeg, png or tif but got '${String(format)}'`);
  }
  validateSliceOptions({
    size: options.size ?? 300,
    overlap: options.overlap ?? 0.2,
    minAreaRatio: options.minAreaRatio ?? 0.1,
  });
  const quality = options.quality ?? 90;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new RasterError(`Expected integer in [1, 100] for JPEG quality but received ${quality}`);
  }
  const resample = resampleOf(options);
  if (resample) validateResample(resample);
  else if (options.resampling !== undefined) {
    throw new RasterError(`resampling ${options.resampling} needs gsd (the target metres per pixel)`);
  }
}

function resampleOf(options: Pick<SliceImagesOptions, 'gsd' | 'resampling'>): SliceResample | undefined {
  if (options.gsd === undefined) return undefined;
  return { gsd: options.gsd, ...(options.resampling ? { resampling: options.resampling } : {}) };
}

/** Reads a COCO file (images, annotations and categories arrays checked). */
export { readCoco };

/**
 * The progress file `chip slice` resumes from (lib/chip/progress.ts; units: the top rows of
 * finished rows of windows): `.chip-slice-progress.json`, or `.chip-slice-progress.part-2-of-4.json`.
 */
export function progressFileName(part?: SlicePart): string {
  return part
    ? `.chip-slice-progress.part-${part.index + 1}-of-${part.count}.json`
    : '.chip-slice-progress.json';
}

/** The name of a part's annotations (or footprints) file: `annotations.part-2-of-4.json`. */
export function partFileName(base: 'annotations' | 'chips', part: SlicePart): string {
  return `${base}.part-${part.index + 1}-of-${part.count}.${base === 'chips' ? 'geojson' : 'json'}`;
}

/**
 * Slices the given images into `options.out` (images/, annotations.json with `categories`,
 * chips.geojson for georeferenced sources; with `part`, that part's chips and part files).
 */
export async function sliceSources(
  storage: Storage,
  sources: readonly SliceSource[],
  categories: readonly unknown[],
  options: Omit<SliceImagesOptions, 'images' | 'coco'>,
): Promise<SliceImagesResult> {
  validateSliceImagesOptions(options);
  const size = options.size ?? 300;
  const overlap = options.overlap ?? 0.2;
  const minAreaRatio = options.minAreaRatio ?? 0.1;
  const format = options.format ?? 'jpeg';
  const output: ChipOutput = {
    out: options.out,
    format,
    quality: options.quality ?? 90,
    concurrency: Math.max(1, options.concurrency ?? 8),
  };
  const part = options.part;
  const signal = options.signal;
  const io = signal ? { signal } : {};
  const workers = options.workers ?? defaultSliceWorkers();
  const portable = workers > 1 ? portableStorageOptions(storage) : undefined;
  const resample = resampleOf(options);
  // everything but the source that decides which chips a row has and their bytes
  const runParams = {
    size,
    overlap,
    minAreaRatio,
    ignoreNegatives: options.ignoreNegatives ?? false,
    format,
    quality: output.quality,
    bands: options.bands ?? null,
    stretch: options.stretch ?? null,
    windowGrid: options.windowGrid ?? null,
    part: part ?? null,
    // only when given, so that the progress of runs without it stays valid
    ...(resample ? { resample } : {}),
  };
  const progress = await RunProgress.open(storage, joinUri(options.out, progressFileName(part)), io);
  let existing: Set<string> | undefined;
  let resumed = 0;

  const ext = extensionOf(format);
  const outImages: {
    id: number;
    file_name: string;
    width: number;
    height: number;
    geotransform?: GeoTransform;
    crs?: string;
  }[] = [];
  const footprints: string[] = [];
  const outAnnotations: {
    id: number;
    image_id: number;
    category_id: number;
    bbox: number[];
    segmentation: number[][];
    area: number;
    iscrowd: 0;
  }[] = [];
  // ids as the whole (unsplit) run numbers them: a part skips those of the windows before it
  let nextImageId = 1;
  let nextAnnotationId = 1;
  let zeroArea = 0;
  let rle = 0;
  let written = 0;
  let planned = 0;
  let georeferenced = false;
  let threads = 1;
  const rowsCut = { windows: 0, top: Infinity, bottom: -Infinity };

  const converted: { uri: string; conversion: string; warnings: readonly string[] }[] = [];
  for (const source of sources) {
    const rows = await openSliceRows(storage, source.uri, {
      ...(options.bands ? { bands: options.bands } : {}),
      ...(options.stretch ? { stretch: options.stretch } : {}),
      ...(options.bandBytes ? { bandBytes: options.bandBytes } : {}),
      ...(resample ? { resample } : {}),
      ...(signal ? { signal } : {}),
    });
    let closed = false;
    try {
      converted.push({ uri: source.uri, conversion: rows.conversion, warnings: rows.warnings });
      const geo = rows.geo;
      const toLonLat = geo?.epsg != null ? lonLatOf(geo.epsg) : undefined;
      if (toLonLat) georeferenced = true;
      // annotations are in source pixels; a resampled image scales them with it
      const annotations =
        rows instanceof ResampledRows
          ? scaleAnnotations(source.annotations, ...rows.scale)
          : source.annotations;
      const prepared = prepareAnnotations(annotations, source.labelsUri ?? source.uri);
      zeroArea += prepared.zeroArea;
      rle += prepared.rle;
      const selected = selectWindows(
        planImageSlices(
          { width: rows.width, height: rows.height, stem: stemOf(source.name) },
          prepared.annotations,
          { size, overlap, minAreaRatio, ext, ...(options.ignoreNegatives ? { ignoreNegatives: true } : {}) },
        ),
        options.windowGrid,
      );
      const [first, end] = part ? partRange(selected, part) : [0, selected.length];
      for (const s of selected.slice(0, first)) {
        nextImageId++;
        nextAnnotationId += s.annotations.length;
      }
      const slices = selected.slice(first, end);
      for (const s of slices) {
        const imageId = nextImageId++;
        const [x0, y0, x1, y1] = s.window;
        outImages.push({
          id: imageId,
          file_name: s.fileName,
          width: x1 - x0,
          height: y1 - y0,
          ...(geo
            ? {
                geotransform: windowGeoTransform(geo.gt, x0, y0),
                ...(geo.epsg !== null ? { crs: `EPSG:${geo.epsg}` } : {}),
              }
            : {}),
        });
        if (geo && toLonLat)
          footprints.push(footprintFeature(geo.gt, toLonLat, s.window, s.fileName, source.uri));
        for (const a of s.annotations) outAnnotations.push(cocoAnnotation(nextAnnotationId++, imageId, a));
      }
      for (const s of selected.slice(end)) {
        nextImageId++;
        nextAnnotationId += s.annotations.length;
      }
      // group the slices by their band of rows; windows of one row share y0 and y1
      const plannedBands: { top: number; bottom: number; chips: PlannedChip[] }[] = [];
      for (const s of slices) {
        const chip = { window: s.window, fileName: s.fileName };
        const last = plannedBands[plannedBands.length - 1];
        if (last && last.top === s.window[1] && last.bottom === s.window[3]) last.chips.push(chip);
        else plannedBands.push({ top: s.window[1], bottom: s.window[3], chips: [chip] });
      }
      // rows an interrupted run of the same slicing finished are kept, not cut again
      const key = await progressKey(
        storage,
        source.uri,
        { ...runParams, annotations: digestOf(source.annotations) },
        io,
      );
      const earlier = progress.section(key, source.uri);
      const finished = new Set<number>();
      if (earlier.size > 0) {
        existing ??= await filesUnder(storage, joinUri(options.out, 'images'), io);
        for (const band of plannedBands) {
          const there = band.chips.every((c) => existing!.has(c.fileName));
          if (earlier.has(String(band.top)) && there) finished.add(band.top);
        }
        progress.keep(
          key,
          [...finished].map((top) => [String(top), 1]),
        );
      }
      const bands = plannedBands.filter((b) => !finished.has(b.top));
      const kept = slices.length - bands.reduce((n, b) => n + b.chips.length, 0);
      resumed += kept;
      if (bands.length > 0) {
        rowsCut.windows += bands.length;
        rowsCut.top = Math.min(rowsCut.top, bands[0]!.top);
        rowsCut.bottom = Math.max(rowsCut.bottom, bands[bands.length - 1]!.bottom);
      }
      const total = planned + slices.length;
      written += kept;
      if (kept > 0) options.onProgress?.(written, total);
      const onBand = (chips: number): void => {
        written += chips;
        options.onProgress?.(written, total);
      };
      const cutChips = slices.length - kept;
      const runs = portable ? splitBands(bands, workerCount(workers, rows, bands, cutChips)) : [bands];
      if (runs.length > 1) {
        // the workers reopen the image; this thread's copy is not needed meanwhile
        const open = {
          ...(options.bands ? { bands: options.bands } : {}),
          ...(options.stretch ? { stretch: options.stretch } : {}),
          ...(options.bandBytes ? { bandBytes: options.bandBytes } : {}),
          ...(rows instanceof RasterRows ? { maps: rows.channelMaps } : {}),
          ...(rows instanceof ResampledRows && rows.inner instanceof RasterRows
            ? { maps: rows.inner.channelMaps }
            : {}),
          ...(resample ? { resample } : {}),
        };
        await rows.close();
        closed = true;
        threads = Math.max(threads, runs.length);
        await runSliceWorkers(
          runs.map((run) => ({ storage: portable!, uri: source.uri, open, bands: run, output })),
          {
            onBand,
            onWritten: (task, band) => progress.markDone(key, String(runs[task]![band]!.top)),
            ...(signal ? { signal } : {}),
          },
        );
      } else {
        await cutBands(storage, rows, bands, output, {
          onBand,
          onWritten: (band) => progress.markDone(key, String(bands[band]!.top)),
          ...(signal ? { signal } : {}),
        });
      }
      planned = total;
    } finally {
      if (!closed) await rows.close();
      // the rows finished (also before a failure or an interruption) are kept for a rerun; a
      // failure to record them only means they are cut again, and must not hide another error
      await progress.flush().catch(() => undefined);
    }
  }

  const annotationsUri = joinUri(options.out, part ? partFileName('annotations', part) : 'annotations.json');
  // a part of a georeferenced scene writes its footprints file even when it has no chips, so
  // that every part has one
  const writeFootprints = footprints.length > 0 || (part !== undefined && georeferenced);
  if (writeFootprints) {
    await storage.writeAtomic(
      joinUri(options.out, part ? partFileName('chips', part) : 'chips.geojson'),
      `{"type":"FeatureCollection","features":[${footprints.length ? `\n${footprints.join(',\n')}\n` : ''}]}\n`,
      { contentType: 'application/geo+json', ...io },
    );
  }
  const head = JSON.stringify({ images: outImages, categories });
  const lines = outAnnotations.map((a) => JSON.stringify(a)).join(',\n');
  await storage.writeAtomic(
    annotationsUri,
    `${head.slice(0, -1)},"annotations":[${lines ? `\n${lines}\n` : ''}]}\n`,
    { contentType: 'application/json', ...io },
  );
  return {
    images: sources.length,
    footprints: writeFootprints,
    rows: rowsCut.windows > 0 ? rowsCut : null,
    threads,
    chips: outImages.length,
    resumed,
    annotations: outAnnotations.length,
    zeroArea,
    rle,
    annotationsUri,
    sources: converted,
  };
}

/** One of `count` tasks a scene's rows of windows are split into, 0-based. */
export interface SlicePart {
  readonly index: number;
  readonly count: number;
}

/** The slices [first, end) of part `part`: its share of the rows of windows, contiguous. */
function partRange(slices: readonly { readonly window: SliceWindow }[], part: SlicePart): [number, number] {
  const tops: number[] = [];
  const firstOfRow: number[] = [];
  slices.forEach((s, i) => {
    if (tops[tops.length - 1] !== s.window[1]) {
      tops.push(s.window[1]);
      firstOfRow.push(i);
    }
  });
  const rows = tops.length;
  const from = Math.floor((part.index * rows) / part.count);
  const to = Math.floor(((part.index + 1) * rows) / part.count);
  return [firstOfRow[from] ?? slices.length, firstOfRow[to] ?? slices.length];
}

/**
 * Worker threads for one image: none (0 or 1) for small images, where starting a thread costs
 * more than it saves; never more than keep their decoded rows within 512 MiB together.
 */
function workerCount(workers: number, rows: ChipRows, bands: readonly PlannedBand[], chips: number): number {
  if (workers <= 1 || chips < MIN_CHIPS_PER_WORKER * 2) return 1;
  const byChips = Math.floor(chips / MIN_CHIPS_PER_WORKER);
  const byMemory = Math.floor((512 * 2 ** 20) / Math.max(1, rows.bytesFor(bands)));
  return Math.max(1, Math.min(workers, byChips, byMemory));
}

/** Fewer chips than this per worker are cut on the calling thread. */
const MIN_CHIPS_PER_WORKER = 128;

/** From a CRS (EPSG code) to CRS84 lon/lat. */
function lonLatOf(epsg: number): (x: number, y: number) => [number, number] {
  const t = crsTransform({ epsg, text: `EPSG:${epsg}` }, CRS84);
  return (x, y) => t.forward(x, y);
}

/** The planned slices in the rows and columns of windows `grid` selects (all without one). */
function selectWindows<T extends { readonly window: SliceWindow }>(
  slices: readonly T[],
  grid: SliceImagesOptions['windowGrid'],
): T[] {
  if (!grid || (!grid.rows && !grid.cols)) return [...slices];
  for (const [name, range] of [
    ['rows', grid.rows],
    ['cols', grid.cols],
  ] as const) {
    if (
      range &&
      !(Number.isInteger(range[0]) && Number.isInteger(range[1]) && range[0] >= 0 && range[1] > range[0])
    ) {
      throw new RasterError(
        `windowGrid.${name}: expected [first, end) with 0 <= first < end, integers, but got ${JSON.stringify(range)}`,
      );
    }
  }
  const ys = [...new Set(slices.map((s) => s.window[1]))].sort((a, b) => a - b);
  const xs = [...new Set(slices.map((s) => s.window[0]))].sort((a, b) => a - b);
  const inRange = (i: number, r: readonly [number, number] | undefined): boolean =>
    !r || (i >= r[0] && i < r[1]);
  return slices.filter(
    (s) => inRange(ys.indexOf(s.window[1]), grid.rows) && inRange(xs.indexOf(s.window[0]), grid.cols),
  );
}
