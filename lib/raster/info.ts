/**
 * What a GeoTIFF is: size, bands, sample type, layout, overviews and georeferencing, read from
 * its header only. Georeferencing follows GDAL: a PixelIsPoint raster's origin is half a pixel
 * up-left of its tie point, and a ModelTransformation with rotation is reported as such.
 */
import type { GeoTIFF, GeoTIFFImage } from 'geotiff';
import type { GeoTransform } from '../geo/affine.js';
import { RasterError } from './errors.js';

export type SampleType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';

export interface RasterInfo {
  readonly width: number;
  readonly height: number;
  readonly bands: number;
  readonly dtype: SampleType;
  readonly layout: { readonly tiled: boolean; readonly blockWidth: number; readonly blockHeight: number };
  readonly compression: string;
  readonly photometric: string;
  /** Overview sizes, largest first (COGs). */
  readonly overviews: readonly { readonly width: number; readonly height: number }[];
  readonly nodata: number | null;
  /** Present when the file is georeferenced. */
  readonly geo?: {
    readonly geotransform: GeoTransform;
    readonly epsg: number | null;
    readonly pixelIsPoint: boolean;
    readonly rotated: boolean;
    /** [minX, minY, maxX, maxY] in the raster's CRS. */
    readonly bounds: readonly [number, number, number, number];
  };
}

const compressionNames: Record<number, string> = {
  1: 'none',
  5: 'lzw',
  6: 'ojpeg',
  7: 'jpeg',
  8: 'deflate',
  32773: 'packbits',
  32946: 'deflate',
  34887: 'lerc',
  50000: 'zstd',
  50001: 'webp',
};
const photometricNames: Record<number, string> = {
  0: 'min-is-white',
  1: 'min-is-black',
  2: 'rgb',
  3: 'palette',
  4: 'mask',
  5: 'cmyk',
  6: 'ycbcr',
};

const SAMPLE_FORMAT_NAMES: Record<number, string> = {
  1: 'unsigned integer',
  2: 'signed integer',
  3: 'floating point',
  4: 'undefined',
  5: 'complex integer',
  6: 'complex floating point',
};

/** The sample type of band 0 (geotiff.js reports per sample; mixed types are rare and refused later). */
export function sampleType(image: GeoTIFFImage): SampleType {
  const format = image.getSampleFormat(0) ?? 1;
  const bits = image.getBitsPerSample(0);
  if (format === 3) {
    if (bits === 32) return 'float32';
    if (bits === 64) return 'float64';
  } else if (format === 2) {
    if (bits === 8) return 'int8';
    if (bits === 16) return 'int16';
    if (bits === 32) return 'int32';
  } else if (format === 1 || format === 4) {
    if (bits === 8) return 'uint8';
    if (bits === 16) return 'uint16';
    if (bits === 32) return 'uint32';
  }
  const kind = SAMPLE_FORMAT_NAMES[format] ?? 'unknown';
  throw new RasterError(
    `unsupported sample format: SampleFormat ${format} (${kind}) with ${bits} bits per sample; supported: 8, 16 and 32-bit integers, 32 and 64-bit floats`,
  );
}

function tagNumbers(image: GeoTIFFImage, tag: string): number[] | undefined {
  const dir = image.getFileDirectory();
  if (!dir.hasTag(tag as never)) return undefined;
  const v = dir.getValue(tag as never) as unknown;
  if (v === undefined || v === null) return undefined;
  return Array.from(v as ArrayLike<number>);
}

/** The GDAL-style geotransform of an image, or undefined when it has no georeferencing. */
export function imageGeoTransform(
  image: GeoTIFFImage,
): { gt: GeoTransform; pixelIsPoint: boolean } | undefined {
  const keys = image.getGeoKeys() as Record<string, unknown> | null;
  const pixelIsPoint = keys?.GTRasterTypeGeoKey === 2;
  const transform = tagNumbers(image, 'ModelTransformation');
  let gt: [number, number, number, number, number, number];
  if (transform && transform.length >= 16) {
    const [a, b, , d, e, f, , h] = transform as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    gt = [d, a, b, h, e, f];
  } else {
    const tie = tagNumbers(image, 'ModelTiepoint');
    const scale = tagNumbers(image, 'ModelPixelScale');
    if (!tie || tie.length < 6 || !scale || scale.length < 2) return undefined;
    const [i, j, , x, y] = tie as [number, number, number, number, number];
    const [sx, sy] = scale as [number, number];
    gt = [x - i * sx, sx, 0, y + j * sy, 0, -sy];
  }
  if (pixelIsPoint) {
    // the tie point names a pixel's centre: its corner is half a pixel up-left
    gt = [gt[0] - 0.5 * gt[1] - 0.5 * gt[2], gt[1], gt[2], gt[3] - 0.5 * gt[4] - 0.5 * gt[5], gt[4], gt[5]];
  }
  return { gt, pixelIsPoint };
}

/** The EPSG code of the image's CRS from its GeoKeys, or null when it has none or a custom one. */
export function imageEpsg(image: GeoTIFFImage): number | null {
  const keys = image.getGeoKeys() as Record<string, unknown> | null;
  if (!keys) return null;
  const projected = keys.ProjectedCSTypeGeoKey;
  if (typeof projected === 'number' && projected > 0 && projected < 32767) return projected;
  const geographic = keys.GeographicTypeGeoKey;
  if (typeof geographic === 'number' && geographic > 0 && geographic < 32767) return geographic;
  return null;
}

/** Reads the header facts of a TIFF (first image plus the sizes of its overviews). */
export async function readRasterInfo(tiff: GeoTIFF): Promise<RasterInfo> {
  const image = await tiff.getImage(0);
  const count = await tiff.getImageCount();
  const overviews: { width: number; height: number }[] = [];
  for (let i = 1; i < count; i++) {
    const ov = await tiff.getImage(i);
    // masks and unrelated sub-files are skipped: an overview is smaller and has the same bands
    if (ov.getWidth() < image.getWidth() && ov.getSamplesPerPixel() === image.getSamplesPerPixel()) {
      overviews.push({ width: ov.getWidth(), height: ov.getHeight() });
    }
  }
  const dir = image.getFileDirectory();
  const compression = Number(dir.getValue('Compression' as never) ?? 1);
  const photometric = Number(dir.getValue('PhotometricInterpretation' as never) ?? 1);
  const geo = imageGeoTransform(image);
  const width = image.getWidth();
  const height = image.getHeight();
  let geoInfo: RasterInfo['geo'];
  if (geo) {
    const { gt } = geo;
    const xs = [gt[0], gt[0] + width * gt[1], gt[0] + height * gt[2], gt[0] + width * gt[1] + height * gt[2]];
    const ys = [gt[3], gt[3] + width * gt[4], gt[3] + height * gt[5], gt[3] + width * gt[4] + height * gt[5]];
    geoInfo = {
      geotransform: gt,
      epsg: imageEpsg(image),
      pixelIsPoint: geo.pixelIsPoint,
      rotated: gt[2] !== 0 || gt[4] !== 0,
      bounds: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)],
    };
  }
  return {
    width,
    height,
    bands: image.getSamplesPerPixel(),
    dtype: sampleType(image),
    layout: { tiled: image.isTiled, blockWidth: image.getTileWidth(), blockHeight: image.getTileHeight() },
    compression: compressionNames[compression] ?? `code ${compression}`,
    photometric: photometricNames[photometric] ?? `code ${photometric}`,
    overviews,
    nodata: image.getGDALNoData(),
    ...(geoInfo ? { geo: geoInfo } : {}),
  };
}
