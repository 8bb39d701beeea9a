/**
 * Map-coordinate labels (polygons in any CRS, in GeoJSON, Shapefile, GeoPackage or FlatGeobuf)
 * on an image's pixel grid: COCO polygons for detection and segmentation training, or a
 * rasterised mask aligned pixel for pixel with the image. The labels' CRS is `--crs`, else the
 * file's (GeoJSON: the legacy `crs` member, else CRS84 as RFC 7946 says; the other formats: see
 * vector-files.ts);
 * coordinates are reprojected to the image's CRS with proj4 (EPSG definitions shipped with the
 * package, no network) and placed through the image's geotransform.
 */
import { invertGeoTransform } from '../geo/affine.js';
import type { GeoTransform } from '../geo/affine.js';
import { CRS84, CrsError, crsTransform, parseCrs } from '../geo/crs.js';
import type { CrsRef } from '../geo/crs.js';
import { RasterError } from '../raster/errors.js';
import { GeoTiffWriter } from '../raster/geotiff-writer.js';
import { writeThroughLocalFile } from '../raster/output.js';
import { openRaster } from '../raster/reader.js';
import type { Storage } from '../storage/types.js';
import { basenameUri } from '../storage/uri.js';
import { categoriesFromValues, singleCategory } from './categories.js';
import type { CategoryMap } from './categories.js';
import { roundPx } from './coco.js';
import type { CocoAnnotation, CocoDataset } from './coco.js';
import { LabelError } from './errors.js';
import { parseFeature, readFeatureCollection } from './geojson-stream.js';
import {
  clipPolygon,
  featureProperties,
  featureShape,
  mapPolygons,
  polygonArea,
  polygonsBounds,
} from './geometry.js';
import type { FeatureShape } from './geometry.js';
import { ScanlineRasterizer } from './rasterize.js';
import type { BurnShape } from './rasterize.js';
import { readVectorFile, vectorFormatOf } from './vector-files.js';

/** An image with what placing map coordinates on it needs. */
export interface GeoreferencedImage {
  readonly uri: string;
  readonly width: number;
  readonly height: number;
  readonly epsg: number;
  readonly geotransform: GeoTransform;
}

/** A parsed feature: its index in the file, properties and polygons (or why it has none). */
export interface GeoFeature {
  readonly index: number;
  readonly properties: Record<string, unknown>;
  readonly shape: FeatureShape;
}

/** Reads a GeoTIFF's header and checks it can take map labels: georeferenced, north-up, an EPSG CRS. */
export async function openGeoreferencedImage(
  storage: Storage,
  uri: string,
  purpose: string,
  options: { signal?: AbortSignal } = {},
): Promise<GeoreferencedImage> {
  const raster = await openRaster(storage, uri, options);
  try {
    const { geo, width, height } = raster.info;
    if (!geo) {
      throw new RasterError(
        `${uri}: has no georeferencing (no ModelTiepoint/ModelPixelScale or ModelTransformation tags); ${purpose} needs it to place map coordinates on the image's pixels`,
      );
    }
    if (geo.rotated) {
      throw new RasterError(
        `${uri}: the geotransform is rotated or sheared ([${geo.geotransform.join(', ')}]); geobatch reads north-up rasters only: warp it first (e.g. gdalwarp in.tif north-up.tif)`,
      );
    }
    if (geo.epsg === null) {
      throw new RasterError(
        `${uri}: its CRS has no EPSG code (a user-defined CRS); ${purpose} needs an EPSG code to reproject labels`,
      );
    }
    return { uri, width, height, epsg: geo.epsg, geotransform: geo.geotransform };
  } finally {
    await raster.close();
  }
}

/** Parses `--crs`; an unknown CRS is a {@link LabelError} naming the option. */
export function parseCrsOption(text: string): CrsRef {
  try {
    return parseCrs(text);
  } catch (error) {
    if (error instanceof CrsError) throw new LabelError(`--crs: ${error.message}`);
    throw error;
  }
}

/** The CRS a legacy GeoJSON `crs` member names (`{"type": "name", "properties": {"name": ...}}` or `{"type": "EPSG", ...}`). */
export function crsFromMember(member: unknown, uri: string): CrsRef {
  const m = member as { type?: unknown; properties?: { name?: unknown; code?: unknown } } | null;
  const name =
    m?.type === 'name' && typeof m.properties?.name === 'string'
      ? m.properties.name
      : m?.type === 'EPSG' &&
          (typeof m.properties?.code === 'number' || typeof m.properties?.code === 'string')
        ? `EPSG:${m.properties.code}`
        : undefined;
  if (name === undefined) {
    throw new LabelError(
      `${uri}: the 'crs' member ${JSON.stringify(member)} names no CRS; expected {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::<code>"}} (or pass --crs)`,
    );
  }
  try {
    return parseCrs(name);
  } catch (error) {
    if (error instanceof CrsError)
      throw new LabelError(`${uri}: ${error.message} (from the GeoJSON 'crs' member)`);
    throw error;
  }
}

/** Reads every feature of a GeoJSON FeatureCollection with its polygons, and its legacy `crs` member if any. */
export async function readGeoFeatures(
  storage: Storage,
  uri: string,
  options: { signal?: AbortSignal } = {},
): Promise<{ features: GeoFeature[]; crsMember: unknown }> {
  const features: GeoFeature[] = [];
  let crsMember: unknown;
  let hasCrs = false;
  await readFeatureCollection(
    storage,
    uri,
    {
      onMember: (key, value) => {
        if (key === 'crs' && value !== null) {
          crsMember = value;
          hasCrs = true;
        }
      },
      onFeature: (text) => {
        const feature = parseFeature(text, uri);
        features.push({
          index: text.index,
          properties: featureProperties(feature),
          shape: featureShape(feature, text.index, uri),
        });
      },
    },
    options,
  );
  return { features, crsMember: hasCrs ? crsMember : undefined };
}

/** Where labels are read from, besides the file: the layer (GeoPackage, zipped shapefiles) and a CRS over the file's. */
export interface LabelsReadOptions {
  readonly layer?: string;
  /** How the user gives the layer, for messages. @default '--layer (layer: in a pipeline)' */
  readonly layerOption?: string;
  readonly crs?: CrsRef;
  readonly signal?: AbortSignal;
}

/**
 * Reads a labels file in any format geobatch takes (by its name: `.shp`, `.zip`, `.gpkg`, `.fgb`;
 * anything else as a GeoJSON FeatureCollection) and the CRS of its coordinates: `options.crs`,
 * else the file's.
 */
export async function readLabelFeatures(
  storage: Storage,
  uri: string,
  options: LabelsReadOptions = {},
): Promise<{ features: GeoFeature[]; crs: CrsRef; layer?: string }> {
  const format = vectorFormatOf(uri);
  if (format !== undefined) return readVectorFile(storage, uri, format, options);
  if (options.layer !== undefined) {
    throw new LabelError(
      `${uri}: layer '${options.layer}' given, but a GeoJSON file has one layer; a layer chooses a GeoPackage table or a shapefile in a .zip`,
    );
  }
  const read = await readGeoFeatures(storage, uri, options.signal ? { signal: options.signal } : {});
  const crs = options.crs ?? (read.crsMember !== undefined ? crsFromMember(read.crsMember, uri) : CRS84);
  return { features: read.features, crs };
}

/** Features' polygons in the image's pixel coordinates (unsupported geometries pass through). */
export function featuresToPixels(
  features: readonly GeoFeature[],
  from: CrsRef,
  image: GeoreferencedImage,
): { features: GeoFeature[]; warnings: readonly string[] } {
  const transform = crsTransform(from, { epsg: image.epsg, text: `EPSG:${image.epsg}` });
  const inv = invertGeoTransform(image.geotransform);
  const toPixel = (x: number, y: number): [number, number] => {
    const [wx, wy] = transform.forward(x, y);
    return [inv[0] + wx * inv[1] + wy * inv[2], inv[3] + wx * inv[4] + wy * inv[5]];
  };
  const out = features.map((f): GeoFeature => {
    if (f.shape.kind !== 'polygons') return f;
    const polygons = mapPolygons(f.shape.polygons, toPixel);
    for (const p of polygons) {
      for (const r of p) {
        for (const [x, y] of r) {
          if (!Number.isFinite(x) || !Number.isFinite(y)) {
            throw new LabelError(
              `feature ${f.index}: its coordinates cannot be transformed from ${from.text} to EPSG:${image.epsg} (outside the projection's domain?)`,
            );
          }
        }
      }
    }
    return { ...f, shape: { kind: 'polygons', polygons } };
  });
  return { features: out, warnings: transform.warnings };
}

/** How features are sorted into categories. */
export interface CategoryChoice {
  /** Every feature gets this category. */
  readonly category?: string;
  /** The property whose value names the category. */
  readonly categoryField?: string;
  /** Maps the field's values to categories; default: its distinct values, ids in sorted order. */
  readonly categories?: CategoryMap;
}

function categoryMapFor(
  choice: CategoryChoice,
  features: readonly GeoFeature[],
  command: string,
): CategoryMap {
  if (choice.category !== undefined && choice.categoryField !== undefined) {
    throw new LabelError(`${command}: use --category or --category-field, not both`);
  }
  if (choice.category !== undefined) return singleCategory(choice.category);
  if (choice.categoryField !== undefined) {
    const field = choice.categoryField;
    return (
      choice.categories ??
      categoriesFromValues(
        features.map((f) => f.properties[field]),
        field,
      )
    );
  }
  if (choice.categories) {
    throw new LabelError(`${command}: a category map needs --category-field to say which property it maps`);
  }
  return singleCategory('object');
}

/** Counts of what became of the features of one labels file on one image. */
export interface GeoLabelCounts {
  readonly features: number;
  readonly kept: number;
  readonly clipped: number;
  readonly outside: number;
  readonly zeroArea: number;
  readonly unsupportedGeometry: number;
  readonly unmappedCategory: number;
  readonly excludedCategory: number;
  /** Kept features with holes (COCO polygons cannot show them; `area` excludes them). */
  readonly withHoles: number;
}

export interface GeoLabelsResult {
  readonly labels: string;
  readonly image: string;
  readonly crs: string;
  readonly categories: string;
  readonly counts: GeoLabelCounts;
  readonly unmappedValues: Readonly<Record<string, number>>;
  readonly unsupportedTypes: Readonly<Record<string, number>>;
  readonly warnings: readonly string[];
}

export interface GeoLabelsOptions extends CategoryChoice {
  /** The labels' CRS, over the file's (GeoJSON: its `crs` member, else CRS84). */
  readonly crs?: CrsRef;
  /** The GeoPackage table or zipped shapefile to read (needed when the file has several). */
  readonly layer?: string;
  /** The image the COCO shard points at (`uri`, and `file_name` its file name), when it is not the georeferenced raster itself (e.g. a PNG on the same grid). @default the raster */
  readonly imageUri?: string;
  readonly signal?: AbortSignal;
}

function key(value: unknown): string {
  return value === undefined ? '(missing)' : value === null ? '(null)' : String(value);
}

/** Reads labels and an image and places the labels' polygons on the image (shared by COCO and masks). */
async function placeLabels(
  storage: Storage,
  labelsUri: string,
  imageUri: string,
  purpose: string,
  options: LabelsReadOptions,
): Promise<{ image: GeoreferencedImage; features: GeoFeature[]; crs: CrsRef; warnings: readonly string[] }> {
  const io = options.signal ? { signal: options.signal } : {};
  const image = await openGeoreferencedImage(storage, imageUri, purpose, io);
  const read = await readLabelFeatures(storage, labelsUri, options);
  const crs = read.crs;
  let placed: ReturnType<typeof featuresToPixels>;
  try {
    placed = featuresToPixels(read.features, crs, image);
  } catch (error) {
    if (error instanceof CrsError) throw new LabelError(`${labelsUri}: ${error.message}`);
    if (error instanceof LabelError) throw new LabelError(`${labelsUri}: ${error.message}`);
    throw error;
  }
  return { image, features: placed.features, crs, warnings: placed.warnings };
}

/** GeoJSON polygons to one COCO dataset for one image: polygons clipped to it, outside ones dropped. */
export async function geojsonToCoco(
  storage: Storage,
  labelsUri: string,
  imageUri: string,
  options: GeoLabelsOptions = {},
): Promise<{ dataset: CocoDataset; result: GeoLabelsResult }> {
  const { image, features, crs, warnings } = await placeLabels(
    storage,
    labelsUri,
    imageUri,
    'labels geojson',
    options,
  );
  const categories = categoryMapFor(options, features, 'labels geojson');
  const counts = {
    features: features.length,
    kept: 0,
    clipped: 0,
    outside: 0,
    zeroArea: 0,
    unsupportedGeometry: 0,
    unmappedCategory: 0,
    excludedCategory: 0,
    withHoles: 0,
  };
  const unmapped: Record<string, number> = {};
  const unsupported: Record<string, number> = {};
  const annotations: CocoAnnotation[] = [];
  for (const f of features) {
    if (f.shape.kind !== 'polygons') {
      counts.unsupportedGeometry++;
      unsupported[f.shape.type] = (unsupported[f.shape.type] ?? 0) + 1;
      continue;
    }
    const value = options.categoryField === undefined ? undefined : f.properties[options.categoryField];
    const category = categories.lookup(value);
    if (category === undefined) {
      counts.unmappedCategory++;
      unmapped[key(value)] = (unmapped[key(value)] ?? 0) + 1;
      continue;
    }
    if (category === null) {
      counts.excludedCategory++;
      continue;
    }
    const whole = f.shape.polygons;
    const area = whole.reduce((sum, p) => sum + polygonArea(p), 0);
    if (!(area > 0)) {
      counts.zeroArea++;
      continue;
    }
    const clipped = whole.flatMap((p) => clipPolygon(p, image.width, image.height));
    const clippedArea = clipped.reduce((sum, p) => sum + polygonArea(p), 0);
    if (clipped.length === 0 || !(clippedArea > 0)) {
      counts.outside++;
      continue;
    }
    if (Math.abs(clippedArea - area) > 1e-6 * Math.max(1, area)) counts.clipped++;
    if (clipped.some((p) => p.length > 1)) counts.withHoles++;
    counts.kept++;
    const [x0, y0, x1, y1] = polygonsBounds(clipped);
    annotations.push({
      id: annotations.length + 1,
      image_id: 1,
      category_id: category.id,
      bbox: [roundPx(x0), roundPx(y0), roundPx(x1 - x0), roundPx(y1 - y0)],
      area: roundPx(clippedArea),
      iscrowd: 0,
      segmentation: clipped.map((p) => p[0]!.flatMap(([x, y]) => [roundPx(x), roundPx(y)])),
      source_index: f.index,
    });
  }
  const dataset: CocoDataset = {
    info: { description: `Map labels converted by geobatch (${categories.source})`, source: labelsUri },
    images: [
      {
        id: 1,
        file_name: basenameUri(options.imageUri ?? imageUri),
        width: image.width,
        height: image.height,
        uri: options.imageUri ?? imageUri,
      },
    ],
    annotations,
    categories: categories.categories,
  };
  return {
    dataset,
    result: {
      labels: labelsUri,
      image: imageUri,
      crs: crs.text,
      categories: categories.source,
      counts,
      unmappedValues: unmapped,
      unsupportedTypes: unsupported,
      warnings,
    },
  };
}

export interface MaskOptions {
  /** The property whose value is burned (an integer 0..255, or mapped by `categories`). @default every polygon burns 255 */
  readonly burnField?: string;
  /** Maps the burn field's values to category ids, which are burned. */
  readonly categories?: CategoryMap;
  /** Burn every pixel a polygon touches, not only those whose centre it contains. @default false */
  readonly allTouched?: boolean;
  readonly crs?: CrsRef;
  /** The GeoPackage table or zipped shapefile to read (needed when the file has several). */
  readonly layer?: string;
  readonly signal?: AbortSignal;
  /** Where an s3:// output is staged before upload. */
  readonly tmpDir?: string;
}

export interface MaskResult {
  readonly labels: string;
  readonly image: string;
  readonly output: string;
  readonly crs: string;
  readonly width: number;
  readonly height: number;
  readonly counts: {
    readonly features: number;
    readonly burned: number;
    readonly outside: number;
    readonly unsupportedGeometry: number;
    readonly unmappedCategory: number;
    readonly excludedCategory: number;
  };
  /** Features per burned value. */
  readonly values: Readonly<Record<string, number>>;
  readonly unmappedValues: Readonly<Record<string, number>>;
  readonly warnings: readonly string[];
}

/**
 * Rasterises GeoJSON polygons into a single-band uint8 GeoTIFF aligned pixel for pixel with the
 * image (same size, CRS and geotransform), streamed by bands of rows.
 */
export async function rasterizeMask(
  storage: Storage,
  labelsUri: string,
  imageUri: string,
  outputUri: string,
  options: MaskOptions = {},
): Promise<MaskResult> {
  const { image, features, crs, warnings } = await placeLabels(
    storage,
    labelsUri,
    imageUri,
    'labels mask',
    options,
  );
  const counts = {
    features: features.length,
    burned: 0,
    outside: 0,
    unsupportedGeometry: 0,
    unmappedCategory: 0,
    excludedCategory: 0,
  };
  const values: Record<string, number> = {};
  const unmapped: Record<string, number> = {};
  const shapes: BurnShape[] = [];
  for (const f of features) {
    if (f.shape.kind !== 'polygons') {
      counts.unsupportedGeometry++;
      continue;
    }
    let burn = 255;
    if (options.burnField !== undefined) {
      const raw = f.properties[options.burnField];
      if (options.categories) {
        const category = options.categories.lookup(raw);
        if (category === undefined) {
          counts.unmappedCategory++;
          unmapped[key(raw)] = (unmapped[key(raw)] ?? 0) + 1;
          continue;
        }
        if (category === null) {
          counts.excludedCategory++;
          continue;
        }
        burn = category.id;
        if (burn > 255) {
          throw new LabelError(
            `${labelsUri}: feature ${f.index}: category id ${burn} of '${category.name}' does not fit a uint8 mask; expected ids 0..255`,
          );
        }
      } else {
        const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 255) {
          throw new LabelError(
            `${labelsUri}: feature ${f.index}: properties.${options.burnField} = ${raw === undefined ? 'missing' : JSON.stringify(raw)} is not a burn value; expected an integer 0..255 (or map values to ids with --category-map)`,
          );
        }
        burn = n;
      }
    }
    const [x0, y0, x1, y1] = polygonsBounds(f.shape.polygons);
    if (x1 <= 0 || y1 <= 0 || x0 >= image.width || y0 >= image.height) {
      counts.outside++;
      continue;
    }
    counts.burned++;
    values[String(burn)] = (values[String(burn)] ?? 0) + 1;
    shapes.push({ rings: f.shape.polygons.flatMap((p) => p.map((r) => r.flat())), value: burn });
  }
  const rasterizer = new ScanlineRasterizer(shapes, image.width, image.height, options.allTouched ?? false);
  const tile = 512;
  await writeThroughLocalFile(
    storage,
    outputUri,
    async (path) => {
      const writer = await GeoTiffWriter.open(path, {
        width: image.width,
        height: image.height,
        bands: 1,
        dtype: 'uint8',
        tileSize: tile,
        geotransform: image.geotransform,
        epsg: image.epsg,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      try {
        const rows = new Uint8Array(tile * image.width);
        for (let y0 = 0; y0 < image.height; y0 += tile) {
          const y1 = Math.min(image.height, y0 + tile);
          rows.fill(0);
          rasterizer.fillRows(y0, y1, rows);
          await writer.writeRows(rows.subarray(0, (y1 - y0) * image.width));
        }
        await writer.close();
      } catch (error) {
        await writer.abort();
        throw error;
      }
    },
    {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
    },
  );
  return {
    labels: labelsUri,
    image: imageUri,
    output: outputUri,
    crs: crs.text,
    width: image.width,
    height: image.height,
    counts,
    values,
    unmappedValues: unmapped,
    warnings,
  };
}
