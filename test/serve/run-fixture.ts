/**
 * A small finished run folder for the viewer tests: plan.json (rgb, mask, chip, predict, eval
 * stages and a geo-labels input), a 512 px 8-bit RGB GeoTIFF and its class mask (UTM 33N, 8 m),
 * chips of 128 px with footprints, COCO annotations and a no-data index, predictions and
 * evaluation errors as GeoJSON. Footprints are computed from the scene's geotransform.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import proj4 from 'proj4';
import sharp from 'sharp';
import { plan, stage } from '../helpers/plans.js';
import { UTM_ORIGIN, writeClassRaster, writeSmoothScene } from './tile-fixtures.js';

export const SCENE = 'scene-a';
export const SCENE_SIZE = 512;
export const CHIP_SIZE = 128;
const PIXEL = 8;
const utm = '+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs';

/** CRS84 [lon, lat] of scene pixel (col, row). */
export function lonLat(col: number, row: number): [number, number] {
  return proj4(utm, 'EPSG:4326', [UTM_ORIGIN[0] + col * PIXEL, UTM_ORIGIN[1] - row * PIXEL]) as [
    number,
    number,
  ];
}

function ring(x0: number, y0: number, x1: number, y1: number): [number, number][] {
  return [lonLat(x0, y0), lonLat(x0, y1), lonLat(x1, y1), lonLat(x1, y0), lonLat(x0, y0)];
}

/** The chips: a 2 x 2 grid of 128 px windows in the top-left of the scene. */
export const CHIPS = [0, 1, 2, 3].map((i) => {
  const x = (i % 2) * CHIP_SIZE;
  const y = Math.floor(i / 2) * CHIP_SIZE;
  return { name: `${SCENE}_${x}_${y}_${x + CHIP_SIZE}_${y + CHIP_SIZE}.png`, x, y };
});
/** The chips' embedding vectors (unit length), in CHIPS order: chip 0's nearest are 1, 2, then 3. */
export const CHIP_VECTORS = [
  [1, 0, 0, 0],
  [0.8, 0.6, 0, 0],
  [0.6, 0, 0.8, 0],
  [0, 0, 0, 1],
] as const;

/** The no-data classes the index gives the chips, in CHIPS order. */
export const CHIP_NODATA = ['all data', 'partial data', 'no data', 'all data'] as const;

export interface RunFixture {
  readonly root: string;
  readonly rgb: string;
  readonly mask: string;
  readonly labels: string;
}

/** Writes the run under `root` (an existing empty directory). */
export async function writeRunFixture(root: string): Promise<RunFixture> {
  const rgb = join(root, 'rgb', `${SCENE}.tif`);
  const mask = join(root, 'masks', `${SCENE}.tif`);
  const chipDir = join(root, 'chips', SCENE);
  const labels = join(root, 'inputs', 'outlines.geojson');
  for (const d of ['rgb', 'masks', 'predict', 'eval', 'inputs', join('chips', SCENE, 'images')])
    await mkdir(join(root, d), { recursive: true });
  await writeSmoothScene(rgb, SCENE_SIZE, SCENE_SIZE);
  await writeClassRaster(mask, SCENE_SIZE, SCENE_SIZE);

  const footprints = CHIPS.map((c) => ({
    type: 'Feature',
    properties: { chip: c.name, window: [c.x, c.y, c.x + CHIP_SIZE, c.y + CHIP_SIZE], source: rgb },
    geometry: { type: 'Polygon', coordinates: [ring(c.x, c.y, c.x + CHIP_SIZE, c.y + CHIP_SIZE)] },
  }));
  // one feature a line, as chip slice writes it
  await writeFile(
    join(chipDir, 'chips.geojson'),
    `{"type":"FeatureCollection","features":[\n${footprints.map((f) => JSON.stringify(f)).join(',\n')}\n]}\n`,
  );
  await writeFile(
    join(chipDir, 'annotations.json'),
    JSON.stringify({
      images: CHIPS.map((c, i) => ({ id: i + 1, file_name: c.name, width: CHIP_SIZE, height: CHIP_SIZE })),
      categories: [
        { id: 1, name: 'building' },
        { id: 2, name: 'vehicle' },
      ],
      annotations: [
        { id: 1, image_id: 1, category_id: 1, bbox: [10, 12, 30, 20], area: 600, iscrowd: 0 },
        { id: 2, image_id: 1, category_id: 2, bbox: [60, 70, 8, 6], area: 48, iscrowd: 0 },
        { id: 3, image_id: 4, category_id: 2, bbox: [5, 5, 10, 10], area: 100, iscrowd: 0 },
      ],
    }),
  );
  await writeFile(
    join(chipDir, 'nodata-index.json'),
    JSON.stringify({
      nodata: 0,
      counts: { 'all data': 2, 'partial data': 1, 'no data': 1 },
      chips: CHIPS.map((c, i) => ({ chip: c.name, class: CHIP_NODATA[i], validFraction: [1, 0.5, 0, 1][i] })),
    }),
  );
  for (const c of CHIPS) {
    const png = await sharp({
      create: { width: CHIP_SIZE, height: CHIP_SIZE, channels: 3, background: { r: 200, g: 100, b: 50 } },
    })
      .png()
      .toBuffer();
    await writeFile(join(chipDir, 'images', c.name), png);
  }

  const boxes = [
    { x: 300, y: 300, cls: 'building', id: 1, score: 0.9 },
    { x: 400, y: 380, cls: 'vehicle', id: 2, score: 0.3 },
  ];
  await writeFile(
    join(root, 'predict', `${SCENE}.geojson`),
    JSON.stringify({
      type: 'FeatureCollection',
      features: boxes.map((b) => ({
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: [ring(b.x, b.y, b.x + 40, b.y + 40)] },
        properties: { class: b.cls, category_id: b.id, score: b.score },
      })),
    }),
  );
  await writeFile(
    join(root, 'eval', 'errors.geojson'),
    JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { kind: 'fn', class: 'vehicle', score: null, iou: 0, scene: SCENE },
          geometry: { type: 'Polygon', coordinates: [ring(450, 450, 470, 470)] },
        },
      ],
    }),
  );
  // pretty-printed on purpose: the stream splitter must not rely on one feature a line
  await writeFile(
    labels,
    JSON.stringify(
      {
        type: 'FeatureCollection',
        name: 'outlines "features" [x]',
        features: [
          {
            type: 'Feature',
            properties: { class: 'building', note: 'a } brace and a \\" quote' },
            geometry: { type: 'Polygon', coordinates: [ring(20, 20, 60, 50)] },
          },
          {
            type: 'Feature',
            properties: { class: 'vehicle' },
            geometry: { type: 'Point', coordinates: lonLat(70, 80) },
          },
        ],
      },
      null,
      2,
    ),
  );

  // an embed stage's output: vectors.f32, chips.jsonl, embed.json last
  const embed = join(root, 'embed');
  await mkdir(embed, { recursive: true });
  await writeFile(join(embed, 'vectors.f32'), Buffer.from(Float32Array.from(CHIP_VECTORS.flat()).buffer));
  await writeFile(
    join(embed, 'chips.jsonl'),
    footprints
      .map((f, i) =>
        JSON.stringify({
          id: i,
          name: CHIPS[i]!.name,
          image: `chips/${SCENE}/images/${CHIPS[i]!.name}`,
          source: rgb,
          window: [CHIPS[i]!.x, CHIPS[i]!.y, CHIP_SIZE, CHIP_SIZE],
          footprint: f.geometry,
        }),
      )
      .join('\n') + '\n',
  );
  await writeFile(
    join(embed, 'embed.json'),
    JSON.stringify({
      version: 1,
      model: 'model.onnx',
      dim: 4,
      count: CHIPS.length,
      dtype: 'float32',
      normalized: true,
      metric: 'cosine',
      vectors: 'vectors.f32',
      chips: 'chips.jsonl',
    }),
  );

  const p = plan(
    root,
    [
      stage('rgb', { job: 'rgb', itemsFrom: 'scenes', count: 1 }),
      stage('masks', {
        job: 'mask',
        itemsFrom: 'rgb',
        count: 1,
        params: { labels: 'outlines', image: 'rgb', categories: { building: 1, vehicle: 2 } },
      }),
      stage('chips', { job: 'chip', itemsFrom: 'rgb', count: 1, params: { image: 'rgb', size: CHIP_SIZE } }),
      stage('predict', { job: 'predict', itemsFrom: 'rgb', count: 1 }),
      stage('eval', { job: 'eval' }),
      stage('embed', { job: 'embed' }),
    ],
    {
      scenes: [{ id: SCENE, uri: join(root, 'inputs', `${SCENE}-raw.tif`) }],
      outlines: [{ id: 'outlines', uri: labels }],
    },
  );
  await writeFile(join(root, 'plan.json'), JSON.stringify(p, null, 1));
  return { root, rgb, mask, labels };
}
