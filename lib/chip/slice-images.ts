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
import sharp from 'sharp';
import { BoundedTasks, ChipFileWriter } from './chip-files.js';
import { isTiffName, RasterRows, SharpRows } from './slice-readers.js';
import type { ChipGeoreference, ChipRows, RowBand } from './slice-readers.js';
import { LabelError } from '../labels/errors.js';
import {
  planImageSlices,
  prepareAnnotations,
  validateSliceOptions,
  type SliceSourceAnnotation,
  type SliceWindow,
} from '../labels/slice.js';
import { pixelToWorld, windowGeoTransform, type GeoTransform } from '../geo/affine.js';
import { CRS84, crsTransform } from '../geo/crs.js';
import { RasterError } from '../raster/errors.js';
import { writeGeoTiff } from '../raster/geotiff-writer.js';
import { writeThroughLocalFile } from '../raster/output.js';
import type { Stretch } from '../raster/stretch.js';
import { IMAGE_EXTENSIONS } from '../raster/image-size.js';
import { basenameUri, compareUtf8, joinUri, normalizeUri, parseUri } from '../storage/uri.js';
import type { Storage } from '../storage/types.js';

export type ChipFormat = 'jpeg' | 'png' | 'tif';

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
  /** JPEG quality. @default 90 */
  readonly quality?: number;
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
}

/** Reads a COCO file (images, annotations and categories arrays checked). */
export { readCoco };

/**
 * Slices the given images into `options.out` (images/, annotations.json with `categories`,
 * chips.geojson for georeferenced sources).
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
  const quality = options.quality ?? 90;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const signal = options.signal;
  const io = signal ? { signal } : {};

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
  let zeroArea = 0;
  let rle = 0;
  let written = 0;
  let planned = 0;

  const chipFiles = new ChipFileWriter(storage, signal);
  const tasks = new BoundedTasks(concurrency);

  const converted: { uri: string; conversion: string; warnings: readonly string[] }[] = [];
  for (const source of sources) {
    const rows = await openChipRows(storage, source.uri, options);
    try {
      converted.push({ uri: source.uri, conversion: rows.conversion, warnings: rows.warnings });
      const geo = rows.geo;
      const toLonLat = geo?.epsg != null ? lonLatOf(geo.epsg) : undefined;
      const prepared = prepareAnnotations(source.annotations, source.labelsUri ?? source.uri);
      zeroArea += prepared.zeroArea;
      rle += prepared.rle;
      const slices = selectWindows(
        planImageSlices(
          { width: rows.width, height: rows.height, stem: stemOf(source.name) },
          prepared.annotations,
          { size, overlap, minAreaRatio, ext, ...(options.ignoreNegatives ? { ignoreNegatives: true } : {}) },
        ),
        options.windowGrid,
      );
      // group the slices by their band of rows; windows of one row share y0 and y1
      const bands: (RowBand & { slices: typeof slices })[] = [];
      for (const s of slices) {
        const last = bands[bands.length - 1];
        if (last && last.top === s.window[1] && last.bottom === s.window[3]) last.slices.push(s);
        else bands.push({ top: s.window[1], bottom: s.window[3], slices: [s] });
      }
      if (bands.length === 0) continue;
      rows.plan(bands, [
        Math.min(...slices.map((s) => s.window[0])),
        Math.max(...slices.map((s) => s.window[2])),
      ]);
      for (const band of bands) {
        await rows.load(band);
        for (const s of band.slices) {
          signal?.throwIfAborted();
          const imageId = outImages.length + 1;
          const [x0, y0, x1, y1] = s.window;
          const chipGt = geo ? windowGeoTransform(geo.gt, x0, y0) : undefined;
          outImages.push({
            id: imageId,
            file_name: s.fileName,
            width: x1 - x0,
            height: y1 - y0,
            ...(geo
              ? { geotransform: chipGt!, ...(geo.epsg !== null ? { crs: `EPSG:${geo.epsg}` } : {}) }
              : {}),
          });
          if (geo && toLonLat)
            footprints.push(footprintFeature(geo.gt, toLonLat, s.window, s.fileName, source.uri));
          for (const a of s.annotations) {
            outAnnotations.push({
              id: outAnnotations.length + 1,
              image_id: imageId,
              category_id: a.categoryId,
              bbox: a.bbox,
              segmentation: a.segmentation,
              area: a.area,
              iscrowd: 0,
            });
          }
          const pixels = rows.cut(s.window);
          const uri = joinUri(options.out, 'images', s.fileName);
          const chip = {
            width: x1 - x0,
            height: y1 - y0,
            channels: rows.channels as 1 | 2 | 3 | 4,
            alpha: rows.alpha,
          };
          await tasks.run(async () => {
            if (format === 'tif') {
              await writeTifChip(storage, uri, pixels, chip, rows.nodata, geo, chipGt, signal);
              return;
            }
            const encoder = sharp(pixels, {
              raw: { width: chip.width, height: chip.height, channels: chip.channels },
            });
            const bytes = await (
              format === 'jpeg' ? encoder.jpeg({ quality, optimiseCoding: false }) : encoder.png()
            ).toBuffer();
            await chipFiles.write(uri, bytes);
          });
        }
        written += band.slices.length;
        options.onProgress?.(written, planned + slices.length);
      }
      planned += slices.length;
    } finally {
      await rows.close();
    }
  }
  await tasks.drain();

  if (footprints.length > 0) {
    await storage.writeAtomic(
      joinUri(options.out, 'chips.geojson'),
      `{"type":"FeatureCollection","features":[\n${footprints.join(',\n')}\n]}\n`,
      { contentType: 'application/geo+json', ...io },
    );
  }
  const annotationsUri = joinUri(options.out, 'annotations.json');
  const head = JSON.stringify({ images: outImages, categories });
  const lines = outAnnotations.map((a) => JSON.stringify(a)).join(',\n');
  await storage.writeAtomic(
    annotationsUri,
    `${head.slice(0, -1)},"annotations":[${lines ? `\n${lines}\n` : ''}]}\n`,
    { contentType: 'application/json', ...io },
  );
  return {
    images: sources.length,
    footprints: footprints.length > 0,
    chips: outImages.length,
    annotations: outAnnotations.length,
    zeroArea,
    rle,
    annotationsUri,
    sources: converted,
  };
}

/** Opens an image for slicing: GeoTIFFs with lib/raster (any layout, converted to 8-bit RGB), others with sharp. */
async function openChipRows(
  storage: Storage,
  uri: string,
  options: Omit<SliceImagesOptions, 'images' | 'coco'>,
): Promise<ChipRows> {
  const signal = options.signal;
  if (isTiffName(uri)) {
    const rows = await RasterRows.open(storage, uri, {
      ...(options.bands ? { bands: options.bands } : {}),
      ...(options.stretch ? { stretch: options.stretch } : {}),
      ...(signal ? { signal } : {}),
    });
    // a local 8-bit RGB file taken as it is decodes faster with sharp (libtiff), to the same pixels
    if (!rows.identity || parseUri(uri).kind !== 'local') return rows;
    await rows.close();
    return SharpRows.open(storage, uri, {
      ...(options.bandBytes ? { spanBytes: options.bandBytes } : {}),
      ...(signal ? { signal } : {}),
      ...(rows.geo ? { geo: rows.geo } : {}),
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

/** Writes one GeoTIFF chip (DEFLATE, one tile), with the window's geotransform and the scene's CRS. */
async function writeTifChip(
  storage: Storage,
  uri: string,
  pixels: Buffer,
  chip: { width: number; height: number; channels: number; alpha: boolean },
  nodata: number | undefined,
  geo: ChipGeoreference | undefined,
  gt: GeoTransform | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const data = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  await writeThroughLocalFile(
    storage,
    uri,
    (path) =>
      writeGeoTiff(path, data, {
        width: chip.width,
        height: chip.height,
        bands: chip.channels,
        dtype: 'uint8',
        tileSize: Math.min(512, Math.ceil(Math.max(chip.width, chip.height) / 16) * 16),
        alpha: chip.alpha,
        ...(gt ? { geotransform: gt } : {}),
        ...(geo?.epsg != null ? { epsg: geo.epsg, crsKind: geo.crsKind } : {}),
        ...(nodata !== undefined ? { nodata } : {}),
        ...(signal ? { signal } : {}),
      }),
    signal ? { signal } : {},
  );
}
