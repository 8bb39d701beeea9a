import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromFile } from 'geotiff';
import { writeDemoData } from '../../lib/demo/write-demo-data.js';
import type { DemoDataResult } from '../../lib/demo/write-demo-data.js';
import { pixelToWorld, worldToPixel } from '../../lib/geo/affine.js';
import type { GeoTransform } from '../../lib/geo/affine.js';
import { lonLatToUtm } from '../../lib/geo/utm.js';
import { tempDir } from '../raster/fixtures.js';
import { epsgOfWkt, gdalinfo, gdalLocationValues, gdalSkip } from '../raster/gdal-tools.js';

const SIZE = 600;

interface Feature {
  type: string;
  geometry: { type: string; coordinates: [number, number][][] };
  properties: Record<string, unknown>;
}
interface Collection {
  type: string;
  crs?: { type: string; properties: { name: string } };
  features: Feature[];
}
interface ManifestScene {
  id: string;
  image: string;
  labels: string;
  epsg: number;
  geotransform: GeoTransform;
  width: number;
  height: number;
  objects: Record<string, number>;
}

let tmp: { dir: string; cleanup: () => void };
let result: DemoDataResult;
let dir: string;

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function allFiles(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? allFiles(root, join(prefix, e.name)) : [join(prefix, e.name)]))
    .sort();
}

before(async () => {
  tmp = tempDir('demo');
  dir = join(tmp.dir, 'data');
  result = await writeDemoData(dir, { size: SIZE, scenes: 2, seed: 42 });
});
after(() => tmp.cleanup());

describe('writeDemoData output', () => {
  it('writes the images, both label files per scene, the manifest and the README, and nothing else', () => {
    assert.deepEqual(allFiles(dir), [
      'README.txt',
      'demo-001.tif',
      'demo-002.tif',
      'demo.json',
      'labels/demo-001.geojson',
      'labels/demo-002.geojson',
      'labels/xview_demo.geojson',
    ]);
    assert.equal(result.dir, dir);
    assert.deepEqual(
      result.scenes.map((s) => s.image),
      [join(dir, 'demo-001.tif'), join(dir, 'demo-002.tif')],
    );
  });

  it('the manifest describes every scene with relative paths', () => {
    const manifest = readJson<{ scenes: ManifestScene[]; image: { bands: string[]; nodata: number } }>(
      join(dir, 'demo.json'),
    );
    assert.deepEqual(manifest.image.bands, ['blue', 'green', 'red', 'nir']);
    assert.equal(manifest.image.nodata, 0);
    assert.deepEqual(
      manifest.scenes.map((s) => [s.id, s.image, s.labels, s.epsg, s.width]),
      [
        ['demo-001', 'demo-001.tif', 'labels/demo-001.geojson', 32633, SIZE],
        ['demo-002', 'demo-002.tif', 'labels/demo-002.geojson', 32633, SIZE],
      ],
    );
    assert.notDeepEqual(
      manifest.scenes[0]?.geotransform,
      manifest.scenes[1]?.geotransform,
      'scenes share a place',
    );
    assert.ok(
      !readFileSync(join(dir, 'demo.json'), 'utf8').includes(tmp.dir),
      'absolute paths in the manifest',
    );
  });

  for (const index of [0, 1]) {
    it(`scene ${index + 1} reads back with geotiff.js: size, bands, dtype, georeferencing, no-data`, async () => {
      const scene = result.scenes[index]!;
      const tiff = await fromFile(scene.image);
      try {
        const image = await tiff.getImage();
        assert.equal(image.getWidth(), SIZE);
        assert.equal(image.getHeight(), SIZE);
        assert.equal(image.getSamplesPerPixel(), 4);
        assert.equal(image.getBitsPerSample(), 16);
        assert.equal(image.getSampleFormat(), 1);
        assert.equal(image.getGeoKeys()?.ProjectedCSTypeGeoKey, 32633);
        assert.equal(image.getGDALNoData(), 0);
        const gt = scene.geotransform;
        assert.deepEqual(image.getOrigin(), [gt[0], gt[3], 0]);
        assert.deepEqual(image.getResolution(), [gt[1], gt[5], 0]);
        const raster = (await image.readRasters({ interleave: true })) as unknown as Uint16Array;
        assert.deepEqual(Array.from(raster.subarray(0, 4)), [0, 0, 0, 0], 'top-left corner is no-data');
        let max = 0;
        for (const v of raster) max = Math.max(max, v);
        assert.ok(max <= 2047 && max > 1500, `max ${max}`);
      } finally {
        await tiff.close();
      }
    });
  }

  it(
    'GDAL reads the scene with the same CRS, geotransform, no-data and pixel values',
    { skip: gdalSkip },
    async () => {
      const scene = result.scenes[0]!;
      const info = gdalinfo(scene.image);
      assert.deepEqual(info.size, [SIZE, SIZE]);
      assert.equal(epsgOfWkt(info.coordinateSystem?.wkt ?? ''), 32633);
      assert.deepEqual(info.geoTransform, [...scene.geotransform]);
      assert.deepEqual(
        info.bands.map((b) => [b.type, b.noDataValue, b.description]),
        [
          ['UInt16', 0, 'blue'],
          ['UInt16', 0, 'green'],
          ['UInt16', 0, 'red'],
          ['UInt16', 0, 'nir'],
        ],
      );
      const tiff = await fromFile(scene.image);
      try {
        const raster = (await (
          await tiff.getImage()
        ).readRasters({ interleave: true })) as unknown as Uint16Array;
        for (const [col, row] of [
          [0, 0],
          [300, 300],
          [599, 17],
          [123, 456],
        ] as const) {
          const k = (row * SIZE + col) * 4;
          assert.deepEqual(gdalLocationValues(scene.image, col, row), Array.from(raster.subarray(k, k + 4)));
        }
      } finally {
        await tiff.close();
      }
    },
  );
});

describe('xView-style labels', () => {
  const collection = (): Collection => readJson<Collection>(join(dir, 'labels/xview_demo.geojson'));
  const gtOf = (imageId: string): GeoTransform =>
    result.scenes.find((s) => s.image.endsWith(`/${imageId}`))!.geotransform;

  it('is a CRS84 FeatureCollection with xView properties for every object of every scene', () => {
    const c = collection();
    assert.equal(c.type, 'FeatureCollection');
    assert.equal(c.crs?.properties.name, 'urn:ogc:def:crs:OGC:1.3:CRS84');
    const total = result.scenes.reduce(
      (n, s) => n + s.counts.building + s.counts.vehicle + s.counts.storage_tank,
      0,
    );
    assert.equal(c.features.length, total);
    const ids = new Set<unknown>();
    for (const f of c.features) {
      const p = f.properties;
      assert.deepEqual(Object.keys(p).sort(), [
        'bounds_imcoords',
        'cat_id',
        'feature_id',
        'image_id',
        'type_id',
      ]);
      assert.equal(typeof p['bounds_imcoords'], 'string');
      assert.match(p['bounds_imcoords'] as string, /^\d+,\d+,\d+,\d+$/);
      assert.ok([18, 19, 20, 23, 73, 86].includes(p['type_id'] as number));
      assert.ok(['demo-001.tif', 'demo-002.tif'].includes(p['image_id'] as string));
      assert.match(p['cat_id'] as string, /^104001[0-9A-F]{10}$/);
      assert.ok(Number.isInteger(p['feature_id']));
      ids.add(p['feature_id']);
    }
    assert.equal(ids.size, c.features.length, 'feature ids are unique');
    for (const image of ['demo-001.tif', 'demo-002.tif']) {
      const types = new Set(
        c.features.filter((f) => f.properties['image_id'] === image).map((f) => f.properties['type_id']),
      );
      assert.ok(types.has(73) && types.has(18) && types.has(86), `${image} types ${[...types]}`);
    }
  });

  it('every box lies inside its image, and its lon/lat polygon projects back onto it within 0.1 px', () => {
    for (const f of collection().features) {
      const [x0, y0, x1, y1] = (f.properties['bounds_imcoords'] as string).split(',').map(Number) as [
        number,
        number,
        number,
        number,
      ];
      assert.ok(
        x0 >= 0 && y0 >= 0 && x1 <= SIZE && y1 <= SIZE && x0 < x1 && y0 < y1,
        `box ${x0},${y0},${x1},${y1}`,
      );
      const gt = gtOf(f.properties['image_id'] as string);
      const ring = f.geometry.coordinates[0]!;
      assert.equal(f.geometry.type, 'Polygon');
      assert.equal(ring.length, 5);
      assert.deepEqual(ring[0], ring[4]);
      const pixels = ring
        .slice(0, 4)
        .map(([lon, lat]) => worldToPixel(gt, ...lonLatToUtm(lon, lat, { zone: 33, north: true })));
      const corners: [number, number][] = [
        [x0, y0],
        [x1, y0],
        [x1, y1],
        [x0, y1],
      ];
      for (const [cx, cy] of corners) {
        const error = Math.min(...pixels.map(([px, py]) => Math.hypot(px - cx, py - cy)));
        assert.ok(
          error < 0.1,
          `corner (${cx}, ${cy}) of feature ${f.properties['feature_id']} is ${error} px off`,
        );
      }
      // Counter-clockwise (GeoJSON right-hand rule).
      let area = 0;
      for (let i = 0; i < 4; i++) area += ring[i]![0] * ring[i + 1]![1] - ring[i + 1]![0] * ring[i]![1];
      assert.ok(area > 0, 'ring is clockwise');
    }
  });
});

describe('labels in the image CRS', () => {
  it('are polygons in EPSG:32633 that line up with the xView boxes of the same features', () => {
    const xview = new Map(
      readJson<Collection>(join(dir, 'labels/xview_demo.geojson')).features.map((f) => [
        f.properties['feature_id'],
        f,
      ]),
    );
    for (const scene of result.scenes) {
      const c = readJson<Collection & { name: string }>(scene.labels);
      assert.equal(c.crs?.properties.name, 'urn:ogc:def:crs:EPSG::32633');
      assert.equal(
        c.features.length,
        scene.counts.building + scene.counts.vehicle + scene.counts.storage_tank,
      );
      for (const f of c.features) {
        const cls = f.properties['class'] as string;
        const typeId = f.properties['type_id'] as number;
        const expected =
          cls === 'building'
            ? [73]
            : cls === 'storage_tank'
              ? [86]
              : cls === 'vehicle'
                ? [18, 19, 20, 23]
                : [];
        assert.ok(expected.includes(typeId), `${cls} with type ${typeId}`);
        const twin = xview.get(f.properties['feature_id']);
        assert.ok(twin, `feature ${f.properties['feature_id']} has no xView twin`);
        assert.equal(twin.properties['type_id'], typeId);
        assert.equal(twin.properties['image_id'], f.properties['image_id']);
        const ring = f.geometry.coordinates[0]!;
        assert.deepEqual(ring[0], ring.at(-1));
        const pixels = ring.map(([e, n]) => worldToPixel(scene.geotransform, e, n));
        const [minX, minY, maxX, maxY] = [
          Math.min(...pixels.map((p) => p[0])),
          Math.min(...pixels.map((p) => p[1])),
          Math.max(...pixels.map((p) => p[0])),
          Math.max(...pixels.map((p) => p[1])),
        ];
        // The xView box is the polygon's bounds grown to whole pixels: inside it, less than a pixel short.
        const [x0, y0, x1, y1] = (twin.properties['bounds_imcoords'] as string)
          .split(',')
          .map(Number) as number[];
        for (const gap of [minX - x0!, minY - y0!, x1! - maxX, y1! - maxY]) {
          assert.ok(
            gap > -0.01 && gap < 1.01,
            `feature ${f.properties['feature_id']}: polygon and box are ${gap} px apart`,
          );
        }
      }
    }
  });

  it('a polygon outline matches the pixels of the object', async () => {
    // The centre of each storage tank is bright (a white roof) in every band.
    const scene = result.scenes[0]!;
    const c = readJson<Collection>(scene.labels);
    const tiff = await fromFile(scene.image);
    try {
      const raster = (await (
        await tiff.getImage()
      ).readRasters({ interleave: true })) as unknown as Uint16Array;
      const tanks = c.features.filter((f) => f.properties['class'] === 'storage_tank');
      assert.ok(tanks.length > 0);
      for (const t of tanks) {
        const ring = t.geometry.coordinates[0]!.slice(0, -1);
        const e = ring.reduce((s, p) => s + p[0], 0) / ring.length;
        const n = ring.reduce((s, p) => s + p[1], 0) / ring.length;
        const [col, row] = worldToPixel(scene.geotransform, e, n).map(Math.floor) as [number, number];
        const k = (row * SIZE + col) * 4;
        assert.ok(
          Array.from(raster.subarray(k, k + 4)).every((v) => v > 1400),
          `tank centre ${raster.subarray(k, k + 4)}`,
        );
      }
      const [x, y] = pixelToWorld(scene.geotransform, 0, 0);
      assert.deepEqual([x, y], [scene.geotransform[0], scene.geotransform[3]]);
    } finally {
      await tiff.close();
    }
  });
});

describe('determinism and hygiene', () => {
  it('the same options give the same bytes; another seed gives another image', async () => {
    const again = join(tmp.dir, 'again');
    await writeDemoData(again, { size: SIZE, scenes: 2, seed: 42 });
    for (const file of allFiles(dir)) {
      assert.ok(readFileSync(join(dir, file)).equals(readFileSync(join(again, file))), `${file} differs`);
    }
    const other = join(tmp.dir, 'other');
    await writeDemoData(other, { size: SIZE, scenes: 1, seed: 7 });
    assert.ok(!readFileSync(join(dir, 'demo-001.tif')).equals(readFileSync(join(other, 'demo-001.tif'))));
  });

  it('a smaller rerun removes the scenes the previous manifest listed', async () => {
    const d = join(tmp.dir, 'rerun');
    await writeDemoData(d, { size: 128, scenes: 2, seed: 1 });
    assert.ok(existsSync(join(d, 'demo-002.tif')));
    await writeDemoData(d, { size: 128, scenes: 1, seed: 1 });
    assert.deepEqual(allFiles(d), [
      'README.txt',
      'demo-001.tif',
      'demo.json',
      'labels/demo-001.geojson',
      'labels/xview_demo.geojson',
    ]);
  });

  it('an abort leaves no partial file behind', async () => {
    const d = join(tmp.dir, 'aborted');
    const controller = new AbortController();
    const run = writeDemoData(d, { size: 2000, seed: 3, tileSize: 256, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('stop')), 150);
    await assert.rejects(run, /stop|aborted/);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(allFiles(d), []);
  });

  const invalid: [Record<string, number>, RegExp][] = [
    [{ size: 10 }, /Expected integer in 64..20000 for demo-data 'size' but received 10/],
    [{ scenes: 0 }, /Expected integer in 1..100 for demo-data 'scenes' but received 0/],
    [{ seed: -1 }, /Expected integer in 0..2147483647 for demo-data 'seed' but received -1/],
    [{ tileSize: 100 }, /Expected a multiple of 16 for demo-data 'tileSize' but received 100/],
    [{ resolution: 0 }, /Expected a number in 0.05..10 for demo-data 'resolution' but received 0/],
  ];
  for (const [options, message] of invalid) {
    it(`rejects ${JSON.stringify(options)}`, async () => {
      const d = join(tmp.dir, 'invalid');
      await assert.rejects(writeDemoData(d, options), message);
      assert.ok(!existsSync(d));
    });
  }
});
