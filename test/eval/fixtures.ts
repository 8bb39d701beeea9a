/**
 * Small hand-made scenes for the eval tests: a 200 x 160 px GeoTIFF in UTM 33N (0.5 m pixels),
 * geo-labels drawn on it in pixel coordinates and written in map coordinates, and prediction
 * folders written by hand in the format of PREDICT.md (what `geobatch predict` writes).
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GeoTransform } from '../../lib/geo/affine.js';
import { pixelToWorld } from '../../lib/geo/affine.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';

export const EPSG = 32633;
export const WIDTH = 200;
export const HEIGHT = 160;
export const GT: GeoTransform = [500000, 0.5, 0, 4500000, 0, -0.5];
export const CLASSES = [
  { id: 1, name: 'building' },
  { id: 2, name: 'car' },
];

type Ring = [number, number][];

/** A feature drawn in scene pixels: rings (outer, then holes) and its class. */
export interface PixelFeature {
  readonly rings: Ring[];
  readonly cls: 'building' | 'car' | string;
}

const rect = (x0: number, y0: number, x1: number, y1: number): Ring => [
  [x0, y0],
  [x1, y0],
  [x1, y1],
  [x0, y1],
];

/**
 * The truth of scene "s1": three buildings (a rectangle, an L, a rectangle with a hole), one
 * building cut by the right edge, two cars, and one building entirely off the scene.
 */
export const FEATURES: readonly PixelFeature[] = [
  { rings: [rect(10, 10, 50, 40)], cls: 'building' },
  {
    rings: [
      [
        [60, 10],
        [100, 10],
        [100, 30],
        [80, 30],
        [80, 60],
        [60, 60],
      ],
    ],
    cls: 'building',
  },
  { rings: [rect(120, 80, 180, 150), rect(140, 100, 160, 120)], cls: 'building' },
  { rings: [rect(190, 5, 230, 25)], cls: 'building' },
  { rings: [rect(20, 100, 30, 106)], cls: 'car' },
  { rings: [rect(40, 120, 48, 126)], cls: 'car' },
  { rings: [rect(500, 500, 520, 520)], cls: 'building' },
];

/** A GeoJSON of pixel features in EPSG:32633 (legacy `crs` member), `class` and `class_id` properties. */
export function geoLabelsText(
  features: readonly PixelFeature[],
  options: { crsName?: string; shift?: [number, number] } = {},
): string {
  const [dx, dy] = options.shift ?? [0, 0];
  return JSON.stringify({
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: options.crsName ?? `urn:ogc:def:crs:EPSG::${EPSG}` } },
    features: features.map((f) => ({
      type: 'Feature',
      properties: { class: f.cls, class_id: CLASSES.find((c) => c.name === f.cls)?.id ?? 9 },
      geometry: {
        type: 'Polygon',
        coordinates: f.rings.map((r) => {
          const ring = r.map(([x, y]) => {
            const [wx, wy] = pixelToWorld(GT, x, y);
            return [wx + dx, wy + dy];
          });
          return [...ring, ring[0]!];
        }),
      },
    })),
  });
}

/** A grey uint8 scene GeoTIFF `<dir>/<id>.tif` on the fixture grid. */
export async function writeScene(dir: string, id: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${id}.tif`);
  const data = new Uint8Array(WIDTH * HEIGHT).map((_, i) => (i * 7) % 251);
  await writeGeoTiff(path, data, {
    width: WIDTH,
    height: HEIGHT,
    geotransform: GT,
    epsg: EPSG,
    tileSize: 64,
  });
  return path;
}

/** A detection as predict writes it: scene-pixel xyxy box, score, class index. */
export interface FixtureDetection {
  readonly box: readonly [number, number, number, number];
  readonly score: number;
  readonly label: number;
}

/** `<dir>/<id>.predict.json` and the files it names, as PREDICT.md specifies. */
export async function writePredictFolder(
  dir: string,
  id: string,
  content:
    | { task: 'detection'; detections: readonly FixtureDetection[]; georeferenced?: boolean }
    | { task: 'segmentation'; classesTif: string; geojson?: string },
  classes = CLASSES,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const outputs: Record<string, string> = {};
  const georeferenced = content.task === 'segmentation' || content.georeferenced !== false;
  if (content.task === 'detection') {
    const coco = {
      images: [{ id: 1, file_name: `${id}.tif`, width: WIDTH, height: HEIGHT }],
      categories: classes.map((c) => ({ id: c.id, name: c.name })),
      annotations: content.detections.map((d, i) => {
        const [x0, y0, x1, y1] = d.box;
        return {
          id: i + 1,
          image_id: 1,
          category_id: classes[d.label]!.id,
          bbox: [x0, y0, x1 - x0, y1 - y0],
          area: (x1 - x0) * (y1 - y0),
          score: d.score,
          iscrowd: 0,
        };
      }),
    };
    outputs.coco = `${id}.coco.json`;
    await writeFile(join(dir, outputs.coco), JSON.stringify(coco));
  } else {
    outputs.classes = `${id}.classes.tif`;
    await copyFile(content.classesTif, join(dir, outputs.classes));
    if (content.geojson !== undefined) {
      outputs.geojson = `${id}.geojson`;
      await writeFile(join(dir, outputs.geojson), content.geojson);
    }
  }
  const doc = {
    format: 'geobatch-predictions',
    version: 1,
    scene: `/scenes/${id}.tif`,
    id,
    model: '/models/m/bundle.json',
    task: content.task,
    width: WIDTH,
    height: HEIGHT,
    epsg: georeferenced ? EPSG : null,
    geotransform: georeferenced ? GT : null,
    windows: { size: 64, overlap: 0.2, count: 12, rows: 3 },
    conversion: 'grey',
    merge: null,
    blend: null,
    scoreThreshold: 0.3,
    classes,
    counts: {},
    outputs,
    seconds: 1,
    windowsPerSecond: 12,
  };
  const uri = join(dir, `${id}.predict.json`);
  await writeFile(uri, JSON.stringify(doc));
  return uri;
}
