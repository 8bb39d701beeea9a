/**
 * Any GeoTIFF to an analysis-ready 8-bit RGB image: three bands chosen (defaults by band count),
 * stretched per band (percentiles of a sample of valid pixels by default), no-data kept as
 * no-data, georeferencing kept. GeoTIFF output streams in bands of rows, so memory does not
 * grow with the image; PNG and JPEG are encoded whole (with a world file and a .aux.xml CRS).
 */
import sharp from 'sharp';
import type { GeoTransform } from '../geo/affine.js';
import type { Storage } from '../storage/types.js';
import { sampleBands } from './band-sample.js';
import { RasterError } from './errors.js';
import { CogWriter } from './cog-writer.js';
import { GeoTiffWriter } from './geotiff-writer.js';
import type { GeoTiffWriterOptions } from './geotiff-writer.js';
import type { SampleType } from './info.js';
import { pamAuxXml, worldFileText, worldFileUri, writeThroughLocalFile } from './output.js';
import { openRaster } from './reader.js';
import type { BandArray, DecodedBlock, OpenRaster } from './reader.js';
import {
  buildLut,
  checkBands,
  defaultBands,
  DEFAULT_PERCENTILES,
  describeStretch,
  lutSize,
  mapValue,
  stretchRanges,
} from './stretch.js';
import type { LinearMap, Stretch } from './stretch.js';

export type RgbFormat = 'gtiff' | 'png' | 'jpeg';

/** PNG and JPEG are encoded from one buffer: the largest image they take (16384 x 16384). */
export const MAX_ENCODED_PIXELS = 16384 * 16384;

export interface RgbOptions {
  /** 1-based source bands for R, G, B. @default by band count, see {@link defaultBands} */
  readonly bands?: readonly number[];
  /** @default none for 8-bit data, percentile 2-98 for anything else */
  readonly stretch?: Stretch;
  /** No-data value of the input; null ignores the file's. @default the file's GDAL_NODATA */
  readonly srcNodata?: number | null;
  /**
   * Mark no-data with an alpha band instead of the value 0 (valid pixels then use 0..255).
   * @default true for PNG when the input has no-data, else false
   */
  readonly alpha?: boolean;
  /** @default from the output's extension: .tif/.tiff gtiff, .png png, .jpg/.jpeg jpeg */
  readonly format?: RgbFormat;
  /** JPEG quality 1..100. @default 90 */
  readonly quality?: number;
  /**
   * Write a Cloud Optimized GeoTIFF: overviews (average resampling) and every IFD before the
   * tile data. GeoTIFF output only.
   * @default false
   */
  readonly cog?: boolean;
  /** GeoTIFF tile size. @default 512 */
  readonly tileSize?: number;
  /** Pixels read for the stretch statistics at most. @default 4,194,304 */
  readonly sampleMaxPixels?: number;
  readonly signal?: AbortSignal;
  /** Where an s3:// GeoTIFF output is staged before upload. @default os.tmpdir() */
  readonly tmpDir?: string;
  /** Rows converted so far. */
  readonly onProgress?: (rows: number, height: number) => void;
}

export interface RgbResult {
  readonly input: string;
  readonly output: string;
  readonly format: RgbFormat;
  /** Whether the GeoTIFF is Cloud Optimized (overviews, IFDs first). */
  readonly cog: boolean;
  readonly width: number;
  readonly height: number;
  readonly inputType: SampleType;
  /** 1-based source bands used for R, G, B. */
  readonly bands: readonly number[];
  readonly stretch: string;
  /** Source value range mapped to the output range, per output band. */
  readonly ranges: readonly (readonly [number, number])[];
  readonly nodata: number | null;
  /** The output's no-data value (0), or null (none, or an alpha band). */
  readonly outputNodata: number | null;
  readonly alpha: boolean;
  /** What the statistics were computed on; null when the stretch needed none. */
  readonly sampledFrom: string | null;
  readonly epsg: number | null;
  readonly geotransform: GeoTransform | null;
  /** World file and .aux.xml written next to a PNG or JPEG. */
  readonly sidecars: readonly string[];
  readonly warnings: readonly string[];
}

/** The output format an output name implies. */
export function formatFromUri(uri: string): RgbFormat {
  const ext = /\.([^./]+)$/.exec(uri)?.[1]?.toLowerCase();
  if (ext === 'tif' || ext === 'tiff') return 'gtiff';
  if (ext === 'png') return 'png';
  if (ext === 'jpg' || ext === 'jpeg') return 'jpeg';
  throw new RasterError(
    `${uri}: cannot tell the output format from the extension '${ext ?? ''}'; expected .tif, .tiff, .png, .jpg or .jpeg, or pass --format gtiff|png|jpeg`,
  );
}

/** The file extension of a format. */
export function formatExtension(format: RgbFormat): string {
  return format === 'gtiff' ? '.tif' : format === 'png' ? '.png' : '.jpg';
}

export interface ChannelMap {
  /** Index into the block's band views. */
  readonly view: number;
  readonly map: LinearMap;
  readonly lut: Uint8Array | undefined;
  readonly lutOffset: number;
}

/** The per-channel maps from source bands to 8-bit, with what they came from (see {@link rgbChannelMaps}). */
export interface RgbChannelMaps {
  /** One map per output channel (R, G, B), indexing into the views of blocks read with `distinct`. */
  readonly maps: ChannelMap[];
  /** 0-based source bands to read, each once. */
  readonly distinct: number[];
  /** Source value range mapped to the output range, per output band. */
  readonly ranges: [number, number][];
  /** What the statistics were computed on; null when the stretch needed none. */
  readonly sampledFrom: string | null;
  readonly warnings: string[];
}

/**
 * The maps `geobatch rgb` applies to turn 1-based source `bands` (R, G, B) of a raster's full
 * resolution into 8-bit values: the stretch's ranges, from sampled statistics of valid pixels
 * when it needs them (computed here, once), and a lookup table per band for 8- and 16-bit
 * integers. With `reserveZero`, valid pixels map to 1..255 and 0 is left for no-data.
 */
export async function rgbChannelMaps(
  raster: OpenRaster,
  bands: readonly number[],
  stretch: Stretch,
  nodata: number | null,
  reserveZero: boolean,
  options: { readonly sampleMaxPixels?: number; readonly signal?: AbortSignal } = {},
): Promise<RgbChannelMaps> {
  const level = await raster.level(0);
  const distinct = [...new Set(bands.map((b) => b - 1))];
  const warnings: string[] = [];
  let sampledFrom: string | null = null;
  let histograms: Parameters<typeof stretchRanges>[1] = [];
  if (stretch.kind === 'percentile' || stretch.kind === 'minmax') {
    const sample = await sampleBands(raster, distinct, {
      nodata,
      ...(options.sampleMaxPixels ? { maxPixels: options.sampleMaxPixels } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    sampledFrom = sample.sampledFrom;
    histograms = bands.map((b) => sample.histograms[distinct.indexOf(b - 1)]);
    if (sample.validPixels === 0) {
      warnings.push(
        `${raster.uri}: the statistics sample (${sample.sampledFrom}) has no valid pixels; bands map [0, 1]`,
      );
    }
  }
  const ranges = stretchRanges(stretch, histograms, 3);
  const maps: ChannelMap[] = bands.map((b, i) => {
    const [lo, hi] = ranges[i]!;
    const map: LinearMap =
      stretch.kind === 'none'
        ? { lo: 0, hi: 255, dstMin: 0, dstMax: 255, floor: reserveZero ? 1 : 0 }
        : { lo, hi, dstMin: reserveZero ? 1 : 0, dstMax: 255 };
    const table = lutSize(level.dtype) ? buildLut(map, level.dtype) : undefined;
    return { view: distinct.indexOf(b - 1), map, lut: table?.lut, lutOffset: table?.offset ?? 0 };
  });
  return { maps, distinct, ranges, sampledFrom, warnings };
}

/** Converts `input` to an 8-bit RGB image at `output` (local path or s3://). */
export async function convertToRgb(
  storage: Storage,
  input: string,
  output: string,
  options: RgbOptions = {},
): Promise<RgbResult> {
  const signal = options.signal;
  const format = options.format ?? formatFromUri(output);
  const raster = await openRaster(storage, input, signal ? { signal } : {});
  try {
    const info = raster.info;
    const level = await raster.level(0);
    const warnings: string[] = [];
    const geo = info.geo;
    if (geo?.rotated) {
      throw new RasterError(
        `${input}: the geotransform is rotated or sheared ([${geo.geotransform.join(', ')}]); geobatch reads north-up rasters only, so pixels would be misplaced: warp it first (e.g. gdalwarp in.tif north-up.tif)`,
      );
    }
    if (!geo) warnings.push(`${input} has no georeferencing: the output has none either`);
    else if (geo.epsg === null) {
      warnings.push(`${input}: the CRS has no EPSG code; the output keeps the geotransform but not the CRS`);
    }

    const bands = options.bands
      ? [...options.bands]
      : defaultBands(level.bands, info.photometric === 'rgb' || level.mode === 'rgb', input);
    if (bands.length !== 3) {
      throw new RasterError(`--bands: expected 3 bands (R,G,B) or 1 (grey) but got ${bands.length}`);
    }
    checkBands(bands, level.bands, input);
    const distinct = [...new Set(bands.map((b) => b - 1))];
    const float = level.dtype === 'float32' || level.dtype === 'float64';
    const nodata = options.srcNodata !== undefined ? options.srcNodata : info.nodata;
    const stretch: Stretch =
      options.stretch ??
      (level.dtype === 'uint8' ? { kind: 'none' } : { kind: 'percentile', ...DEFAULT_PERCENTILES });
    if (stretch.kind === 'range' && stretch.ranges.length !== 1 && stretch.ranges.length !== 3) {
      throw new RasterError(`--range: expected 1 or 3 ranges but got ${stretch.ranges.length}`);
    }

    if (options.cog && format !== 'gtiff') {
      throw new RasterError(
        `--cog: ${output} is written as ${format.toUpperCase()}; a Cloud Optimized GeoTIFF needs GeoTIFF output (.tif or --format gtiff)`,
      );
    }
    const maskable = nodata !== null || float;
    if (options.alpha && format === 'jpeg') {
      throw new RasterError(
        `--alpha: JPEG has no alpha channel; write a GeoTIFF or PNG, or leave --alpha out`,
      );
    }
    const alpha = options.alpha ?? (format === 'png' && maskable);
    const channels = alpha ? 4 : 3;
    // without alpha, 0 marks no-data, so valid pixels use 1..255
    const reserveZero = maskable && !alpha;
    const outputNodata = reserveZero && format === 'gtiff' ? 0 : null;

    const channelMaps = await rgbChannelMaps(raster, bands, stretch, nodata, reserveZero, {
      ...(options.sampleMaxPixels ? { sampleMaxPixels: options.sampleMaxPixels } : {}),
      ...(signal ? { signal } : {}),
    });
    const { maps, ranges, sampledFrom } = channelMaps;
    warnings.push(...channelMaps.warnings);

    const { width, height } = level;
    if (format !== 'gtiff' && width * height > MAX_ENCODED_PIXELS) {
      throw new RasterError(
        `${input}: ${width} x ${height} is too large for ${format.toUpperCase()} output (at most ${MAX_ENCODED_PIXELS.toLocaleString('en-US')} pixels, encoded whole in memory); write a GeoTIFF instead`,
      );
    }
    if (format === 'jpeg' && (width > 65535 || height > 65535)) {
      throw new RasterError(
        `${input}: JPEG images are at most 65535 pixels on a side but this one is ${width} x ${height}`,
      );
    }
    const maskNodata = nodata === null ? null : nodata;
    const convert = (block: DecodedBlock, out: Uint8Array, firstRow: number): void =>
      convertBlock(block, maps, out, firstRow, width, channels, maskNodata, float, alpha);

    const targetRows = Math.max(1, Math.min(256, Math.floor((64 * 1024 * 1024) / (width * channels))));
    const rowsPerBand = level.blockHeight * Math.max(1, Math.floor(targetRows / level.blockHeight));
    const sidecars: string[] = [];
    const readBand = async (y0: number, out: Uint8Array, firstRow: number): Promise<number> => {
      const y1 = Math.min(height, y0 + rowsPerBand);
      await level.readBlocks(level.blocksInRows(y0, y1), distinct, (block) => convert(block, out, firstRow), {
        differenced: level.dtype === 'uint16' || level.dtype === 'uint8',
        ...(signal ? { signal } : {}),
      });
      options.onProgress?.(y1, height);
      return y1;
    };

    if (format === 'gtiff') {
      const modelType = raster.modelType;
      await writeThroughLocalFile(
        storage,
        output,
        async (path) => {
          const open = options.cog
            ? (p: string, o: GeoTiffWriterOptions & { dtype: 'uint8' }) =>
                CogWriter.open(p, { ...o, resampling: 'average' })
            : (p: string, o: GeoTiffWriterOptions & { dtype: 'uint8' }) => GeoTiffWriter.open(p, o);
          const writer = await open(path, {
            width,
            height,
            bands: channels,
            dtype: 'uint8',
            tileSize: options.tileSize ?? 512,
            alpha,
            ...(geo ? { geotransform: geo.geotransform } : {}),
            ...(geo?.epsg ? { epsg: geo.epsg, crsKind: modelType === 2 ? 'geographic' : 'projected' } : {}),
            ...(outputNodata !== null ? { nodata: outputNodata } : {}),
            ...(signal ? { signal } : {}),
          });
          try {
            const buffer = new Uint8Array(rowsPerBand * width * channels);
            for (let y0 = 0; y0 < height;) {
              const y1 = await readBand(y0, buffer, y0);
              await writer.writeRows(buffer.subarray(0, (y1 - y0) * width * channels));
              y0 = y1;
            }
            await writer.close();
          } catch (error) {
            await writer.abort();
            throw error;
          }
        },
        { ...(signal ? { signal } : {}), ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}) },
      );
    } else {
      const image = new Uint8Array(width * height * channels);
      for (let y0 = 0; y0 < height;) y0 = await readBand(y0, image, 0);
      const encoder = sharp(image, { raw: { width, height, channels }, limitInputPixels: false });
      const encoded =
        format === 'png'
          ? await encoder.png({ compressionLevel: 6 }).toBuffer()
          : await encoder.jpeg({ quality: options.quality ?? 90, optimiseCoding: false }).toBuffer();
      if (geo) {
        const world = worldFileUri(output);
        await storage.writeAtomic(world, worldFileText(geo.geotransform), signal ? { signal } : {});
        sidecars.push(world);
        if (geo.epsg !== null) {
          const aux = `${output}.aux.xml`;
          await storage.writeAtomic(aux, pamAuxXml(geo.epsg), signal ? { signal } : {});
          sidecars.push(aux);
        }
      }
      try {
        await storage.writeAtomic(output, encoded, signal ? { signal } : {});
      } catch (error) {
        await Promise.allSettled(sidecars.map((uri) => storage.delete(uri)));
        throw error;
      }
    }
    return {
      input,
      output,
      format,
      cog: options.cog === true,
      width,
      height,
      inputType: info.dtype,
      bands,
      stretch: describeStretch(stretch),
      ranges,
      nodata,
      outputNodata,
      alpha,
      sampledFrom,
      epsg: geo?.epsg ?? null,
      geotransform: geo?.geotransform ?? null,
      sidecars,
      warnings,
    };
  } finally {
    await raster.close();
  }
}

/**
 * Maps one decoded block into rows of `out` (pixel-interleaved RGB or RGBA, `width` wide, whose
 * first row is image row `firstRow`). A pixel is no-data when every selected band equals
 * `nodata`, or (floats) when any is NaN: it becomes 0 (and alpha 0).
 */
export function convertBlock(
  block: DecodedBlock,
  maps: readonly ChannelMap[],
  out: Uint8Array,
  firstRow: number,
  width: number,
  channels: number,
  nodata: number | null,
  float: boolean,
  alpha: boolean,
): void {
  const [m0, m1, m2] = maps as [ChannelMap, ChannelMap, ChannelMap];
  const v0 = block.bands[m0.view]!;
  const v1 = block.bands[m1.view]!;
  const v2 = block.bands[m2.view]!;
  const a0 = v0.data;
  const a1 = v1.data;
  const a2 = v2.data;
  const w = block.width;
  if (m0.lut && m1.lut && m2.lut) {
    // NaN equals nothing, so a missing no-data value needs no separate loop
    const nd = nodata ?? NaN;
    const diffMask = v0.differenced ? m0.lut.length - 1 : 0;
    // the common case (pixel-interleaved file, RGB out): one array, one stride, unsigned
    const shared =
      a0 === a1 &&
      a1 === a2 &&
      v0.pixelStride === v1.pixelStride &&
      v1.pixelStride === v2.pixelStride &&
      v0.rowStride === v1.rowStride &&
      v1.rowStride === v2.rowStride &&
      m0.lutOffset === 0 &&
      !alpha;
    if (shared) {
      for (let r = 0; r < block.height; r++) {
        const d = ((block.row + r - firstRow) * width + block.col) * channels;
        const base = r * v0.rowStride;
        if (diffMask) {
          sharedDiffRow(
            a0,
            base,
            v0.offset,
            v1.offset,
            v2.offset,
            v0.pixelStride,
            m0.lut,
            m1.lut,
            m2.lut,
            out,
            d,
            w,
            nd,
            diffMask,
          );
        } else {
          sharedRow(
            a0,
            base,
            v0.offset,
            v1.offset,
            v2.offset,
            v0.pixelStride,
            m0.lut,
            m1.lut,
            m2.lut,
            out,
            d,
            w,
            nd,
          );
        }
      }
      return;
    }
    for (let r = 0; r < block.height; r++) {
      lutRow(
        a0,
        a1,
        a2,
        v0.offset + r * v0.rowStride,
        v1.offset + r * v1.rowStride,
        v2.offset + r * v2.rowStride,
        v0.pixelStride,
        v1.pixelStride,
        v2.pixelStride,
        m0.lut,
        m1.lut,
        m2.lut,
        m0.lutOffset,
        out,
        ((block.row + r - firstRow) * width + block.col) * channels,
        w,
        channels,
        alpha,
        nd,
        diffMask,
      );
    }
    return;
  }
  for (let r = 0; r < block.height; r++) {
    let d = ((block.row + r - firstRow) * width + block.col) * channels;
    for (let c = 0; c < w; c++) {
      const x0 = a0[v0.offset + r * v0.rowStride + c * v0.pixelStride]!;
      const x1 = a1[v1.offset + r * v1.rowStride + c * v1.pixelStride]!;
      const x2 = a2[v2.offset + r * v2.rowStride + c * v2.pixelStride]!;
      const invalid =
        (float && (x0 !== x0 || x1 !== x1 || x2 !== x2)) || (x0 === nodata && x1 === nodata && x2 === nodata);
      if (invalid) {
        out[d] = 0;
        out[d + 1] = 0;
        out[d + 2] = 0;
        if (alpha) out[d + 3] = 0;
      } else {
        out[d] = mapValue(m0.map, x0);
        out[d + 1] = mapValue(m1.map, x1);
        out[d + 2] = mapValue(m2.map, x2);
        if (alpha) out[d + 3] = 255;
      }
      d += channels;
    }
  }
}

/**
 * One row of the lookup-table path. With `diffMask` (unsigned types only) the samples are
 * horizontal differences, summed here modulo mask + 1 instead of in a separate pass.
 */
function lutRow(
  a0: BandArray,
  a1: BandArray,
  a2: BandArray,
  s0: number,
  s1: number,
  s2: number,
  p0: number,
  p1: number,
  p2: number,
  l0: Uint8Array,
  l1: Uint8Array,
  l2: Uint8Array,
  off: number,
  out: Uint8Array,
  d: number,
  w: number,
  channels: number,
  alpha: boolean,
  nodata: number,
  diffMask: number,
): void {
  let x0 = 0;
  let x1 = 0;
  let x2 = 0;
  for (let c = 0; c < w; c++) {
    if (diffMask) {
      x0 = (x0 + a0[s0]!) & diffMask;
      x1 = (x1 + a1[s1]!) & diffMask;
      x2 = (x2 + a2[s2]!) & diffMask;
    } else {
      x0 = a0[s0]!;
      x1 = a1[s1]!;
      x2 = a2[s2]!;
    }
    if (x0 === nodata && x1 === nodata && x2 === nodata) {
      out[d] = 0;
      out[d + 1] = 0;
      out[d + 2] = 0;
      if (alpha) out[d + 3] = 0;
    } else {
      out[d] = l0[x0 + off]!;
      out[d + 1] = l1[x1 + off]!;
      out[d + 2] = l2[x2 + off]!;
      if (alpha) out[d + 3] = 255;
    }
    s0 += p0;
    s1 += p1;
    s2 += p2;
    d += channels;
  }
}

/** One row from one pixel-interleaved array into RGB (unsigned data, no alpha). */
function sharedRow(
  a: BandArray,
  base: number,
  o0: number,
  o1: number,
  o2: number,
  p: number,
  l0: Uint8Array,
  l1: Uint8Array,
  l2: Uint8Array,
  out: Uint8Array,
  d: number,
  w: number,
  nodata: number,
): void {
  let s = base;
  const end = d + w * 3;
  for (; d < end; d += 3) {
    const x0 = a[s + o0]!;
    const x1 = a[s + o1]!;
    const x2 = a[s + o2]!;
    if (x0 === nodata && x1 === nodata && x2 === nodata) {
      out[d] = 0;
      out[d + 1] = 0;
      out[d + 2] = 0;
    } else {
      out[d] = l0[x0]!;
      out[d + 1] = l1[x1]!;
      out[d + 2] = l2[x2]!;
    }
    s += p;
  }
}

/** {@link sharedRow} for horizontal differences, summed modulo `mask + 1` on the way. */
function sharedDiffRow(
  a: BandArray,
  base: number,
  o0: number,
  o1: number,
  o2: number,
  p: number,
  l0: Uint8Array,
  l1: Uint8Array,
  l2: Uint8Array,
  out: Uint8Array,
  d: number,
  w: number,
  nodata: number,
  mask: number,
): void {
  let s = base;
  let x0 = 0;
  let x1 = 0;
  let x2 = 0;
  const end = d + w * 3;
  for (; d < end; d += 3) {
    x0 = (x0 + a[s + o0]!) & mask;
    x1 = (x1 + a[s + o1]!) & mask;
    x2 = (x2 + a[s + o2]!) & mask;
    if (x0 === nodata && x1 === nodata && x2 === nodata) {
      out[d] = 0;
      out[d + 1] = 0;
      out[d + 2] = 0;
    } else {
      out[d] = l0[x0]!;
      out[d + 1] = l1[x1]!;
      out[d + 2] = l2[x2]!;
    }
    s += p;
  }
}
