/**
 * Writes the quickstart's demo data: synthetic WorldView-like scenes (4-band uint16 GeoTIFFs
 * in UTM), their labels as xView-style GeoJSON (lon/lat boxes with `bounds_imcoords`) and as
 * polygons in each image's CRS, a `demo.json` manifest and a README. Deterministic: the same
 * options give the same bytes. Every file is written atomically.
 */
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { GeoTransform } from '../geo/affine.js';
import { pixelToWorld } from '../geo/affine.js';
import { utmToLonLat } from '../geo/utm.js';
import { GeoTiffWriter } from '../raster/geotiff-writer.js';
import { writeFileAtomic } from '../storage/local.js';
import { hash3 } from './noise.js';
import { DEMO_BANDS, DEMO_NODATA, DEMO_PLACES, XVIEW_TYPE_NAMES, planDemoScene } from './demo-scene.js';
import type { DemoClass, DemoPlace, DemoScene } from './demo-scene.js';
import { ringArea } from './shapes.js';
import type { Point } from './shapes.js';

/** What to generate. */
export interface DemoDataOptions {
  /**
   * Width and height of each scene in pixels.
   * @default 3000
   */
  readonly size?: number;
  /**
   * Number of scenes (each with its own seed and place).
   * @default 1
   */
  readonly scenes?: number;
  /**
   * Seed everything follows from.
   * @default 42
   */
  readonly seed?: number;
  /**
   * Metres per pixel.
   * @default 0.5
   */
  readonly resolution?: number;
  /**
   * GeoTIFF tile size.
   * @default 512
   */
  readonly tileSize?: number;
  /** Stops between rows of tiles; nothing partial is left behind. */
  readonly signal?: AbortSignal;
}

/** One scene that was written. */
export interface DemoSceneResult {
  /** e.g. `demo-001`. */
  readonly id: string;
  /** Absolute path of the GeoTIFF. */
  readonly image: string;
  /** Absolute path of the GeoJSON of polygons in the image's CRS. */
  readonly labels: string;
  readonly width: number;
  readonly height: number;
  readonly epsg: number;
  readonly geotransform: GeoTransform;
  readonly place: DemoPlace;
  /** xView-style catalog id of the scene (`cat_id`). */
  readonly catalogId: string;
  /** Objects per class. */
  readonly counts: Readonly<Record<DemoClass, number>>;
  /** Size of the GeoTIFF in bytes. */
  readonly bytes: number;
}

/** Everything `writeDemoData` wrote. */
export interface DemoDataResult {
  /** Absolute path of the output folder. */
  readonly dir: string;
  readonly scenes: readonly DemoSceneResult[];
  /** Absolute path of the xView-style GeoJSON with the labels of every scene. */
  readonly xviewLabels: string;
  /** Absolute path of `demo.json`. */
  readonly manifest: string;
  /** Absolute path of `README.txt`. */
  readonly readme: string;
}

/** A bad option: names the option, the value and what would be valid. */
export class DemoDataError extends Error {
  // The CLI's error handler reports user errors by name.
  override readonly name = 'InputError';
}

/** Options with defaults filled in. */
export interface ResolvedDemoDataOptions {
  readonly size: number;
  readonly scenes: number;
  readonly seed: number;
  readonly resolution: number;
  readonly tileSize: number;
}

const MANIFEST = 'demo.json';
const README = 'README.txt';
const XVIEW_LABELS = 'labels/xview_demo.geojson';
const CLASSES: readonly DemoClass[] = ['building', 'vehicle', 'storage_tank'];

function checkInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DemoDataError(
      `Expected integer in ${min}..${max} for demo-data '${name}' but received ${value}`,
    );
  }
  return value;
}

/** Validates options and fills in defaults (the CLI uses the same rules). */
export function resolveDemoDataOptions(options: DemoDataOptions = {}): ResolvedDemoDataOptions {
  const resolution = options.resolution ?? 0.5;
  if (!(typeof resolution === 'number' && resolution >= 0.05 && resolution <= 10)) {
    throw new DemoDataError(
      `Expected a number in 0.05..10 for demo-data 'resolution' but received ${resolution}`,
    );
  }
  const tileSize = checkInteger('tileSize', options.tileSize ?? 512, 16, 4096);
  if (tileSize % 16 !== 0) {
    throw new DemoDataError(`Expected a multiple of 16 for demo-data 'tileSize' but received ${tileSize}`);
  }
  return {
    size: checkInteger('size', options.size ?? 3000, 64, 20000),
    scenes: checkInteger('scenes', options.scenes ?? 1, 1, 100),
    seed: checkInteger('seed', options.seed ?? 42, 0, 2 ** 31 - 1),
    resolution,
    tileSize,
  };
}

/** Seed of scene `index` (0-based) of a run. */
function sceneSeed(seed: number, index: number): number {
  return index === 0 ? seed : hash3(seed, index, 0x64656d6f) & 0x7fffffff;
}

/** A WorldView-looking catalog id (16 hex digits starting 104001), from the scene's seed. */
function catalogId(seed: number): string {
  const a = hash3(seed, 1, 0x63617431).toString(16).padStart(8, '0');
  const b = hash3(seed, 2, 0x63617431).toString(16).padStart(8, '0');
  return `104001${a}${b}`.slice(0, 16).toUpperCase();
}

const round = (v: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};

/** Closes a ring and makes it counter-clockwise (GeoJSON's right-hand rule) in world coordinates. */
function closedCcwRing(points: readonly Point[]): Point[] {
  const ring = ringArea(points) < 0 ? [...points].reverse() : [...points];
  return [...ring, ring[0] as Point];
}

interface XviewFeature {
  readonly type: 'Feature';
  readonly geometry: { readonly type: 'Polygon'; readonly coordinates: Point[][] };
  readonly properties: {
    readonly bounds_imcoords: string;
    readonly cat_id: string;
    readonly type_id: number;
    readonly image_id: string;
    readonly feature_id: number;
  };
}

/** GeoJSON text with one feature per line: small, and readable in a diff. */
function featureCollectionText(header: Record<string, unknown>, features: readonly unknown[]): string {
  const head = JSON.stringify({ type: 'FeatureCollection', ...header });
  const body = features.map((f) => JSON.stringify(f)).join(',\n');
  return `${head.slice(0, -1)},"features":[\n${body}\n]}\n`;
}

async function writeSceneImage(
  path: string,
  scene: DemoScene,
  tileSize: number,
  signal?: AbortSignal,
): Promise<void> {
  const { width, height } = scene;
  const writer = await GeoTiffWriter.open(path, {
    width,
    height,
    bands: DEMO_BANDS.length,
    dtype: 'uint16',
    tileSize,
    // Sensor noise leaves little to squeeze: level 1 is within 2% of level 6 in size and 2-3x faster.
    deflateLevel: 1,
    geotransform: scene.geotransform,
    epsg: scene.epsg,
    crsName: scene.crsName,
    nodata: DEMO_NODATA,
    bandNames: DEMO_BANDS,
    signal,
  });
  try {
    const rowSamples = width * DEMO_BANDS.length;
    const buffer = new Uint16Array(tileSize * rowSamples);
    for (let t = 0; t < writer.tileRows; t++) {
      const rows = writer.rowsInTileRow(t);
      scene.renderRows(t * tileSize, rows, buffer);
      await writer.writeTileRow(t, buffer.subarray(0, rows * rowSamples));
    }
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

/** Removes files a previous run listed in its manifest that this run does not write again. */
async function removeStale(dir: string, keep: ReadonlySet<string>): Promise<void> {
  let previous: unknown;
  try {
    previous = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8'));
  } catch {
    return;
  }
  const scenes = (previous as { scenes?: unknown }).scenes;
  if (!Array.isArray(scenes)) return;
  for (const s of scenes as { image?: unknown; labels?: unknown }[]) {
    for (const file of [s.image, s.labels]) {
      if (
        typeof file === 'string' &&
        /^(labels\/)?demo-\d{3}\.(tif|geojson)$/.test(file) &&
        !keep.has(file)
      ) {
        await rm(join(dir, file), { force: true });
      }
    }
  }
}

/** Generates the demo scenes and labels into `dir` (created if needed) and returns what it wrote. */
export async function writeDemoData(dir: string, options: DemoDataOptions = {}): Promise<DemoDataResult> {
  const o = resolveDemoDataOptions(options);
  const root = resolve(dir);
  await mkdir(join(root, 'labels'), { recursive: true });
  const firstPlace = hash3(o.seed, 0, 0x706c6163) % DEMO_PLACES.length;
  const xviewFeatures: XviewFeature[] = [];
  const results: DemoSceneResult[] = [];
  const manifestScenes: Record<string, unknown>[] = [];

  for (let i = 0; i < o.scenes; i++) {
    options.signal?.throwIfAborted();
    const id = `demo-${String(i + 1).padStart(3, '0')}`;
    const imageName = `${id}.tif`;
    const labelsName = `labels/${id}.geojson`;
    const seed = sceneSeed(o.seed, i);
    const place = DEMO_PLACES[(firstPlace + i) % DEMO_PLACES.length] as DemoPlace;
    const scene = planDemoScene({ seed, width: o.size, height: o.size, resolution: o.resolution, place });
    const cat = catalogId(seed);
    const gt = scene.geotransform;
    const toLonLat = (x: number, y: number): Point => {
      const [e, n] = pixelToWorld(gt, x, y);
      const [lon, lat] = utmToLonLat(e, n, scene.zone);
      return [round(lon, 9), round(lat, 9)];
    };

    await writeSceneImage(join(root, imageName), scene, o.tileSize, options.signal);

    const crsFeatures = scene.objects.map((obj) => {
      const featureId = xviewFeatures.length + 1;
      const [x0, y0, x1, y1] = obj.box;
      const box: Point[] = [
        [x0, y0],
        [x1, y0],
        [x1, y1],
        [x0, y1],
      ];
      xviewFeatures.push({
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: [closedCcwRing(box.map(([x, y]) => toLonLat(x, y)))] },
        properties: {
          bounds_imcoords: `${x0},${y0},${x1},${y1}`,
          cat_id: cat,
          type_id: obj.typeId,
          image_id: imageName,
          feature_id: featureId,
        },
      });
      const ring = obj.outline.map(([x, y]): Point => {
        const [e, n] = pixelToWorld(gt, x, y);
        return [round(e, 3), round(n, 3)];
      });
      return {
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: [closedCcwRing(ring)] },
        properties: { feature_id: featureId, class: obj.class, type_id: obj.typeId, image_id: imageName },
      };
    });
    const crsText = featureCollectionText(
      { name: id, crs: { type: 'name', properties: { name: `urn:ogc:def:crs:EPSG::${scene.epsg}` } } },
      crsFeatures,
    );
    await writeFileAtomic(join(root, labelsName), crsText, options.signal);

    const counts = Object.fromEntries(
      CLASSES.map((c) => [c, scene.objects.filter((obj) => obj.class === c).length]),
    ) as Record<DemoClass, number>;
    const typeCounts: Record<string, number> = {};
    for (const obj of scene.objects) typeCounts[obj.typeId] = (typeCounts[obj.typeId] ?? 0) + 1;
    const bytes = (await stat(join(root, imageName))).size;
    const w = scene.width;
    const h = scene.height;
    const corners = [toLonLat(0, 0), toLonLat(w, 0), toLonLat(w, h), toLonLat(0, h)];
    results.push({
      id,
      image: join(root, imageName),
      labels: join(root, labelsName),
      width: w,
      height: h,
      epsg: scene.epsg,
      geotransform: gt,
      place,
      catalogId: cat,
      counts,
      bytes,
    });
    manifestScenes.push({
      id,
      image: imageName,
      labels: labelsName,
      seed,
      cat_id: cat,
      place: place.name,
      center_lonlat: [place.lon, place.lat],
      width: w,
      height: h,
      epsg: scene.epsg,
      crs: scene.crsName,
      geotransform: gt,
      bounds: [gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3]],
      bounds_lonlat: [
        Math.min(...corners.map((c) => c[0])),
        Math.min(...corners.map((c) => c[1])),
        Math.max(...corners.map((c) => c[0])),
        Math.max(...corners.map((c) => c[1])),
      ],
      nodata_corner: `pixels with col + row < ${scene.nodataCorner} are no-data`,
      objects: counts,
      xview_type_counts: typeCounts,
      bytes,
    });
  }

  await writeFileAtomic(
    join(root, XVIEW_LABELS),
    featureCollectionText(
      { crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:OGC:1.3:CRS84' } } },
      xviewFeatures,
    ),
    options.signal,
  );

  const manifest = {
    generator: 'geobatch demo-data',
    format_version: 1,
    options: {
      size: o.size,
      scenes: o.scenes,
      seed: o.seed,
      resolution: o.resolution,
      tile_size: o.tileSize,
    },
    image: {
      bands: DEMO_BANDS,
      dtype: 'uint16',
      value_range: [50, 2047],
      nodata: DEMO_NODATA,
      compression: 'deflate',
      predictor: 2,
      interleave: 'pixel',
    },
    classes: [
      { name: 'building', xview_type_ids: [73] },
      { name: 'vehicle', xview_type_ids: [18, 19, 20, 23] },
      { name: 'storage_tank', xview_type_ids: [86] },
    ],
    xview_type_names: XVIEW_TYPE_NAMES,
    labels: { xview: XVIEW_LABELS, crs_polygons: 'labels/<scene id>.geojson' },
    scenes: manifestScenes,
  };
  const keep = new Set(manifestScenes.flatMap((s) => [s['image'] as string, s['labels'] as string]));
  await removeStale(root, keep);
  await writeFileAtomic(join(root, MANIFEST), JSON.stringify(manifest, null, 2) + '\n', options.signal);
  await writeFileAtomic(join(root, README), readmeText(o, results), options.signal);
  return {
    dir: root,
    scenes: results,
    xviewLabels: join(root, XVIEW_LABELS),
    manifest: join(root, MANIFEST),
    readme: join(root, README),
  };
}

function readmeText(o: ResolvedDemoDataOptions, scenes: readonly DemoSceneResult[]): string {
  const lines = [
    'geobatch demo data',
    '==================',
    '',
    `Made by \`geobatch demo-data\` (seed ${o.seed}, ${o.scenes} scene(s) of ${o.size} x ${o.size} px at ${o.resolution} m).`,
    'Everything here is synthetic and made by code: the same options give the same bytes.',
    '',
    'Files',
    '-----',
    ...scenes.flatMap((s) => [
      `${s.id}.tif  ${s.width} x ${s.height} px, EPSG:${s.epsg}, near ${s.place.name}; cat_id ${s.catalogId};`,
      `    ${s.counts.building} buildings, ${s.counts.vehicle} vehicles, ${s.counts.storage_tank} storage tanks`,
    ]),
    `${XVIEW_LABELS}  labels of all scenes in the xView format (FeatureCollection, CRS84)`,
    'labels/demo-NNN.geojson  the same objects as polygons in the image CRS, with a "class" property',
    `${MANIFEST}  machine-readable description of all of this`,
    '',
    'Images',
    '------',
    'GeoTIFF, 4 bands of uint16 in the order blue, green, red, near-infrared (like a WorldView',
    'multispectral tile), values 50..2047 (11-bit); no-data = 0 in a cut corner at the top left.',
    `Tiled ${o.tileSize} x ${o.tileSize}, DEFLATE with horizontal predictor, georeferenced in WGS 84 / UTM (PixelIsArea).`,
    '',
    'Labels',
    '------',
    'xView style: per feature, bounds_imcoords is a string "xmin,ymin,xmax,ymax" in pixels',
    '(whole pixels around the object; xmax/ymax are the far edges), type_id an xView type id,',
    'image_id the tif file name, cat_id the scene catalog id, feature_id unique in the file; the',
    'geometry is the lon/lat polygon of that pixel box.',
    'xView type ids used: 73 Building, 18 Small Car, 20 Pickup Truck, 23 Truck, 19 Bus, 86 Storage Tank.',
    'The CRS polygons carry class = building | vehicle | storage_tank and the same feature_id.',
    '',
  ];
  return lines.join('\n');
}
