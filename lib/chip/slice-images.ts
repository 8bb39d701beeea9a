/**
 * `chip slice`: cuts 8-bit images (JPEG, PNG, 8-bit TIFF) into SAHI-compatible slices with their
 * COCO annotations (lib/labels/slice.ts). Each band of rows that a row of windows covers is decoded
 * once and the chips are cut from memory (REFERENCE §6); encodes run a few at a time. Chips are
 * written atomically and annotations.json last, so a failed run never leaves a dataset that looks
 * complete. Outputs are deterministic: same names, ids and bytes on every run.
 */
import sharp from 'sharp';
import { ChipFileWriter } from './chip-files.js';
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
import { readRasterInfo } from '../raster/info.js';
import { openTiff } from '../raster/source.js';
import { IMAGE_EXTENSIONS } from '../raster/image-size.js';
import { basenameUri, compareUtf8, joinUri, normalizeUri } from '../storage/uri.js';
import type { Storage } from '../storage/types.js';

export type ChipFormat = 'jpeg' | 'png';

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
  /** @default 'jpeg' */
  readonly format?: ChipFormat;
  /** JPEG quality. @default 90 */
  readonly quality?: number;
  /** Most bytes of decoded rows held at once (at least one row of windows is). @default 64 MiB */
  readonly bandBytes?: number;
  /** Encodes and writes in flight. @default 8 */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
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
  return format === 'jpeg' ? 'jpg' : 'png';
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

/** Copies a window out of a band of rows (`band` starts at row `top` and spans the full width). */
function cutWindow(
  band: Buffer,
  bandWidth: number,
  channels: number,
  top: number,
  window: SliceWindow,
): Buffer {
  const [x0, y0, x1, y1] = window;
  const rowBytes = (x1 - x0) * channels;
  const out = Buffer.allocUnsafe(rowBytes * (y1 - y0));
  for (let y = y0; y < y1; y++) {
    const start = ((y - top) * bandWidth + x0) * channels;
    band.copy(out, (y - y0) * rowBytes, start, start + rowBytes);
  }
  return out;
}

interface SourceGeoreference {
  readonly gt: GeoTransform;
  readonly epsg: number | null;
  /** From the source CRS to CRS84; absent without an EPSG code. */
  readonly toLonLat?: (x: number, y: number) => [number, number];
}

/** The geotransform and CRS of a GeoTIFF (GDAL's placement, PixelIsPoint included), if any. */
async function sourceGeoreference(
  storage: Storage,
  uri: string,
  signal?: AbortSignal,
): Promise<SourceGeoreference | undefined> {
  const { tiff } = await openTiff(storage, uri, signal ? { signal } : {});
  const geo = (await readRasterInfo(tiff)).geo;
  if (!geo) return undefined;
  if (geo.epsg === null) return { gt: geo.geotransform, epsg: null };
  const t = crsTransform({ epsg: geo.epsg, text: `EPSG:${geo.epsg}` }, CRS84);
  return { gt: geo.geotransform, epsg: geo.epsg, toLonLat: (x, y) => t.forward(x, y) };
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
  const bandBytes = options.bandBytes ?? 64 * 2 ** 20;
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

  const chipFiles = new ChipFileWriter(storage, signal);
  const pending = new Set<Promise<void>>();
  let failure: unknown;
  const schedule = async (task: () => Promise<void>): Promise<void> => {
    while (pending.size >= concurrency) await Promise.race(pending);
    if (failure !== undefined) throw failure;
    const p: Promise<void> = task()
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => pending.delete(p));
    pending.add(p);
  };

  for (const source of sources) {
    const path = await storage.localPath(source.uri, io);
    const meta = await sharp(path, { limitInputPixels: false }).metadata();
    if (!meta.width || !meta.height || !meta.channels) {
      throw new RasterError(`${source.uri}: cannot read the image size`);
    }
    if (meta.depth !== 'uchar') {
      throw new RasterError(
        `${source.uri}: samples are ${meta.depth ?? 'unknown'}; chip slice expects 8-bit images (convert with 'geobatch rgb' first)`,
      );
    }
    const geo = /\.tiff?$/i.test(source.uri)
      ? await sourceGeoreference(storage, source.uri, signal)
      : undefined;
    const prepared = prepareAnnotations(source.annotations, source.labelsUri ?? source.uri);
    zeroArea += prepared.zeroArea;
    rle += prepared.rle;
    const slices = planImageSlices(
      { width: meta.width, height: meta.height, stem: stemOf(source.name) },
      prepared.annotations,
      { size, overlap, minAreaRatio, ext, ...(options.ignoreNegatives ? { ignoreNegatives: true } : {}) },
    );
    // group the slices by their band of rows; windows of one row share y0 and y1
    const bands: { top: number; bottom: number; slices: typeof slices }[] = [];
    for (const s of slices) {
      const last = bands[bands.length - 1];
      if (last && last.top === s.window[1] && last.bottom === s.window[3]) last.slices.push(s);
      else bands.push({ top: s.window[1], bottom: s.window[3], slices: [s] });
    }
    if (bands.length === 0) continue;
    const width = meta.width;
    const channels = meta.channels;
    const rowBytes = width * channels;
    const emit = async (band: (typeof bands)[number], rows: Buffer, rowsTop: number): Promise<void> => {
      for (const s of band.slices) {
        signal?.throwIfAborted();
        const imageId = outImages.length + 1;
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
        if (geo?.toLonLat)
          footprints.push(footprintFeature(geo.gt, geo.toLonLat, s.window, s.fileName, source.uri));
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
        const pixels = cutWindow(rows, width, channels, rowsTop, s.window);
        await schedule(async () => {
          const encoder = sharp(pixels, { raw: { width: x1 - x0, height: y1 - y0, channels } });
          const bytes = await (
            format === 'jpeg' ? encoder.jpeg({ quality, optimiseCoding: false }) : encoder.png()
          ).toBuffer();
          await chipFiles.write(joinUri(options.out, 'images', s.fileName), bytes);
        });
      }
    };
    // decode spans of consecutive bands, each at most `bandBytes` (or one band), and cut the
    // chips from memory (REFERENCE §6); the next span decodes while this one's chips encode, so
    // peak memory is about two spans, whatever the scene's size
    const spans: { first: number; end: number; top: number; bottom: number }[] = [];
    for (let first = 0; first < bands.length;) {
      let end = first + 1;
      while (end < bands.length && (bands[end]!.bottom - bands[first]!.top) * rowBytes <= bandBytes) end++;
      spans.push({ first, end, top: bands[first]!.top, bottom: bands[end - 1]!.bottom });
      first = end;
    }
    const decode = async (span: (typeof spans)[number]): Promise<Buffer> => {
      const { data, info } = await sharp(path, { limitInputPixels: false })
        .extract({ left: 0, top: span.top, width, height: span.bottom - span.top })
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== channels || info.width !== width) {
        throw new RasterError(
          `${source.uri}: decoded ${info.channels} channels x ${info.width} px, expected ${channels} x ${width}; unsupported colour space '${meta.space ?? 'unknown'}'?`,
        );
      }
      return data;
    };
    let next: Promise<Buffer> = decode(spans[0]!);
    for (let k = 0; k < spans.length; k++) {
      const span = spans[k]!;
      const data = await next;
      if (k + 1 < spans.length) {
        next = decode(spans[k + 1]!);
        // a failure is reported when the span is awaited; don't let it surface as unhandled first
        next.catch(() => undefined);
      }
      for (let i = span.first; i < span.end; i++) await emit(bands[i]!, data, span.top);
    }
  }
  await Promise.all(pending);
  if (failure !== undefined) throw failure;

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
  };
}
