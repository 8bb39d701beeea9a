// GeoJSON polygons on an image's pixel grid: COCO and masks, checked against GDAL
// (gdal_rasterize for masks, ogr2ogr for reprojected copies of the labels).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseCategoryMap } from '../../lib/labels/categories.js';
import type { CocoAnnotation } from '../../lib/labels/coco.js';
import { geojsonToCoco, parseCrsOption, rasterizeMask } from '../../lib/labels/geo-labels.js';
import { ScanlineRasterizer } from '../../lib/labels/rasterize.js';
import { createStorage } from '../../lib/storage/index.js';
import { prng, tempDir } from '../raster/fixtures.js';
import { gdalinfo, gdalSkip } from '../raster/gdal-tools.js';
import { gdal, gdalPixels, writeScene } from '../raster/scene-fixtures.js';

const storage = createStorage();
const spacenet = join(import.meta.dirname, '../../../shared/data/spacenet');
const image = join(spacenet, 'sample_geotiff.tif');
const footprints = join(spacenet, 'geotiff_labels.geojson');

/** gdal_rasterize into a copy of `like`'s grid (one uint8 band of zeros). */
function gdalMask(like: string, labels: string, out: string, args: string[]): Uint8Array {
  gdal('gdal_create', ['-q', '-if', like, '-ot', 'Byte', '-bands', '1', '-burn', '0', out]);
  gdal('gdal_rasterize', ['-q', ...args, labels, out]);
  return gdalPixels(out, 'uint8') as Uint8Array;
}

function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function boxes(annotations: readonly CocoAnnotation[]): number[][] {
  return annotations.map((a) => [...a.bbox]);
}

describe('GeoJSON labels on the pixel grid', { skip: gdalSkip }, () => {
  const tmp = tempDir('geo-labels');
  after(() => tmp.cleanup());

  it("SpaceNet footprints (legacy 'crs' member, EPSG:32616) to COCO: 43 polygons in pixels", async () => {
    const { dataset, result } = await geojsonToCoco(storage, footprints, image, {
      categoryField: 'building',
    });
    assert.equal(result.crs, 'urn:ogc:def:crs:EPSG::32616');
    assert.equal(result.counts.kept, 43);
    assert.deepEqual(dataset.categories, [{ id: 1, name: 'yes' }]);
    assert.deepEqual(dataset.images, [
      { id: 1, file_name: 'sample_geotiff.tif', width: 900, height: 900, uri: image },
    ]);
    for (const a of dataset.annotations) {
      const [x, y, w, h] = a.bbox;
      assert.ok(x >= 0 && y >= 0 && x + w <= 900 && y + h <= 900 && a.area > 0 && a.area <= w * h + 1e-6);
      assert.equal(a.segmentation!.length, 1);
    }
    // the polygons' areas add up to what a rasteriser burns, up to edge pixels
    const mask = await rasterizeMask(storage, footprints, image, join(tmp.dir, 'area.tif'));
    const burned = (gdalPixels(mask.output, 'uint8') as Uint8Array).reduce((n, v) => n + (v ? 1 : 0), 0);
    const area = dataset.annotations.reduce((n, a) => n + a.area, 0);
    assert.ok(Math.abs(area - burned) / burned < 0.01, `area ${area} vs burned ${burned}`);
  });

  it('the same footprints in CRS84 (RFC 7946, no crs member, written by ogr2ogr) land on the same pixels', async () => {
    const lonlat = join(tmp.dir, 'footprints-crs84.geojson');
    gdal('ogr2ogr', [
      '-f',
      'GeoJSON',
      '-t_srs',
      'EPSG:4326',
      '-lco',
      'RFC7946=YES',
      '-lco',
      'COORDINATE_PRECISION=9',
      lonlat,
      footprints,
    ]);
    assert.equal((JSON.parse(readFileSync(lonlat, 'utf8')) as { crs?: unknown }).crs, undefined);
    const utm = await geojsonToCoco(storage, footprints, image);
    const crs84 = await geojsonToCoco(storage, lonlat, image);
    assert.equal(crs84.result.crs, 'CRS84');
    const a = boxes(utm.dataset.annotations);
    const b = boxes(crs84.dataset.annotations);
    assert.equal(b.length, 43);
    a.forEach((box, i) =>
      box.forEach((v, k) =>
        assert.ok(Math.abs(v - b[i]![k]!) <= 0.011, `feature ${i} bbox[${k}]: ${v} vs ${b[i]![k]}`),
      ),
    );
  });

  it('--crs overrides the file: a copy without its crs member, read as EPSG:32616', async () => {
    const doc = JSON.parse(readFileSync(footprints, 'utf8')) as Record<string, unknown>;
    delete doc.crs;
    const bare = join(tmp.dir, 'no-crs.geojson');
    writeFileSync(bare, JSON.stringify(doc));
    const given = await geojsonToCoco(storage, bare, image, { crs: parseCrsOption('EPSG:32616') });
    const original = await geojsonToCoco(storage, footprints, image);
    assert.deepEqual(boxes(given.dataset.annotations), boxes(original.dataset.annotations));
  });

  it('masks agree with gdal_rasterize pixel for pixel, centre rule and --all-touched', async () => {
    for (const allTouched of [false, true]) {
      const ours = await rasterizeMask(storage, footprints, image, join(tmp.dir, `ours-${allTouched}.tif`), {
        allTouched,
      });
      assert.equal(ours.counts.burned, 43);
      const info = gdalinfo(ours.output);
      assert.deepEqual(info.geoTransform, gdalinfo(image).geoTransform);
      assert.deepEqual(info.size, [900, 900]);
      const reference = gdalMask(image, footprints, join(tmp.dir, `gdal-${allTouched}.tif`), [
        '-burn',
        '255',
        ...(allTouched ? ['-at'] : []),
      ]);
      const mine = gdalPixels(ours.output, 'uint8') as Uint8Array;
      assert.ok(
        differing(mine, reference) <= 20,
        `${differing(mine, reference)} pixels differ (all touched: ${allTouched})`,
      );
    }
  });

  describe('holes, multipolygons, clipping, categories', () => {
    const grid = join(tmp.dir, 'grid.tif');
    const labels = join(tmp.dir, 'shapes.geojson');
    // image: 100 x 80 px of 1 m from (500000, 5000080) in UTM 33N
    const world = (x: number, y: number): [number, number] => [500000 + x, 5000080 - y];
    const ring = (pts: [number, number][]): [number, number][] =>
      [...pts, pts[0]!].map(([x, y]) => world(x, y));
    before(async () => {
      await writeScene(grid, {
        width: 100,
        height: 80,
        bands: 1,
        dtype: 'uint8',
        geotransform: [500000, 1, 0, 5000080, 0, -1],
        epsg: 32633,
      });
      const features = [
        // a 40 x 40 square with a 20 x 20 hole
        {
          class: 1,
          type: 'Polygon',
          coordinates: [
            ring([
              [5, 5],
              [45, 5],
              [45, 45],
              [5, 45],
            ]),
            ring([
              [15, 15],
              [35, 15],
              [35, 35],
              [15, 35],
            ]),
          ],
        },
        // two triangles as one feature
        {
          class: 2,
          type: 'MultiPolygon',
          coordinates: [
            [
              ring([
                [60, 5],
                [90, 5],
                [75, 30],
              ]),
            ],
            [
              ring([
                [60.5, 40.2],
                [90.3, 40.7],
                [75.1, 70.9],
              ]),
            ],
          ],
        },
        // half outside the right edge
        {
          class: 3,
          type: 'Polygon',
          coordinates: [
            ring([
              [90, 50],
              [110, 50],
              [110, 60],
              [90, 60],
            ]),
          ],
        },
        // wholly outside
        {
          class: 3,
          type: 'Polygon',
          coordinates: [
            ring([
              [200, 50],
              [210, 50],
              [210, 60],
            ]),
          ],
        },
        // no area
        {
          class: 3,
          type: 'Polygon',
          coordinates: [
            ring([
              [10, 70],
              [20, 70],
              [30, 70],
            ]),
          ],
        },
        { class: 3, type: 'Point', coordinates: world(3, 3) },
        {
          class: 9,
          type: 'Polygon',
          coordinates: [
            ring([
              [50, 50],
              [55, 50],
              [55, 55],
            ]),
          ],
        },
      ];
      writeFileSync(
        labels,
        JSON.stringify({
          type: 'FeatureCollection',
          crs: { type: 'name', properties: { name: 'EPSG:32633' } },
          features: features.map(({ class: c, ...geometry }) => ({
            type: 'Feature',
            properties: { class: c },
            geometry,
          })),
        }),
      );
    });

    it('COCO: holes excluded from the area, parts as polygons, clipped and dropped features counted', async () => {
      const { dataset, result } = await geojsonToCoco(storage, labels, grid, {
        categoryField: 'class',
        categories: parseCategoryMap('{"1": "ring", "2": "triangles", "3": "box"}', 'm'),
      });
      assert.deepEqual(result.counts, {
        features: 7,
        kept: 3,
        clipped: 1,
        outside: 1,
        zeroArea: 1,
        unsupportedGeometry: 1,
        unmappedCategory: 1,
        excludedCategory: 0,
        withHoles: 1,
      });
      assert.deepEqual(result.unmappedValues, { '9': 1 });
      assert.deepEqual(result.unsupportedTypes, { Point: 1 });
      const [square, triangles, clipped] = dataset.annotations;
      assert.equal(square!.area, 1600 - 400);
      assert.deepEqual(square!.bbox, [5, 5, 40, 40]);
      assert.equal(triangles!.segmentation!.length, 2);
      assert.deepEqual(clipped!.bbox, [90, 50, 10, 10]);
      assert.equal(clipped!.area, 100);
    });

    it('masks: holes stay holes, burn values from a field, close to gdal_rasterize', async () => {
      const ours = await rasterizeMask(storage, labels, grid, join(tmp.dir, 'shapes-mask.tif'), {
        burnField: 'class',
      });
      assert.deepEqual(ours.counts, {
        features: 7,
        burned: 5,
        outside: 1,
        unsupportedGeometry: 1,
        unmappedCategory: 0,
        excludedCategory: 0,
      });
      const mine = gdalPixels(ours.output, 'uint8') as Uint8Array;
      assert.equal(mine[25 * 100 + 25], 0, 'the hole is not burned');
      assert.equal(mine[10 * 100 + 10], 1);
      assert.equal(mine[20 * 100 + 75], 2);
      assert.equal(mine[55 * 100 + 95], 3);
      const reference = gdalMask(grid, labels, join(tmp.dir, 'shapes-gdal.tif'), ['-a', 'class']);
      assert.ok(differing(mine, reference) <= 10, `${differing(mine, reference)} pixels differ`);
    });

    it('a burn value that is not an integer 0..255 is refused, naming the feature and field', async () => {
      const out = join(tmp.dir, 'bad-burn.tif');
      const bad = join(tmp.dir, 'bad-burn.geojson');
      const doc = JSON.parse(readFileSync(labels, 'utf8')) as {
        features: { properties: Record<string, unknown> }[];
      };
      doc.features[1]!.properties.class = 'triangle';
      writeFileSync(bad, JSON.stringify(doc));
      await assert.rejects(rasterizeMask(storage, bad, grid, out, { burnField: 'class' }), {
        name: 'LabelError',
        message: `${bad}: feature 1: properties.class = "triangle" is not a burn value; expected an integer 0..255 (or map values to ids with --category-map)`,
      });
      assert.equal(existsSync(out), false);
    });
  });
});

describe('the scanline rasteriser', () => {
  function burn(
    shapes: { rings: number[][]; value: number }[],
    w: number,
    h: number,
    allTouched = false,
  ): Uint8Array {
    const out = new Uint8Array(w * h);
    const r = new ScanlineRasterizer(shapes, w, h, allTouched);
    // in two bands of rows, as the mask writer streams them
    r.fillRows(0, 3, out.subarray(0, 3 * w));
    r.fillRows(3, h, out.subarray(3 * w));
    return out;
  }
  const rows = (a: Uint8Array, w: number): string[] =>
    Array.from({ length: a.length / w }, (_, r) =>
      Array.from(a.subarray(r * w, (r + 1) * w), (v) => (v ? String(v) : '.')).join(''),
    );

  it('burns pixels whose centre is inside; holes stay holes; later shapes over earlier', () => {
    const square = [1, 1, 5, 1, 5, 5, 1, 5];
    const hole = [2, 2, 4, 2, 4, 4, 2, 4];
    assert.deepEqual(rows(burn([{ rings: [square, hole], value: 1 }], 7, 6), 7), [
      '.......',
      '.1111..',
      '.1..1..',
      '.1..1..',
      '.1111..',
      '.......',
    ]);
    assert.deepEqual(
      rows(
        burn(
          [
            { rings: [square], value: 1 },
            { rings: [[3, 0, 7, 0, 7, 3, 3, 3]], value: 2 },
          ],
          7,
          6,
        ),
        7,
      ),
      ['...2222', '.112222', '.112222', '.1111..', '.1111..', '.......'],
    );
  });

  it('--all-touched adds every pixel an edge passes through (both as gdal_rasterize burns this triangle)', () => {
    const triangle = [0.5, 0.5, 4.2, 0.5, 0.5, 4.2];
    // column 0's centres lie on the left edge: GDAL's rounding leaves them out
    assert.deepEqual(rows(burn([{ rings: [triangle], value: 1 }], 6, 5), 6), [
      '.111..',
      '.11...',
      '.1....',
      '......',
      '......',
    ]);
    assert.deepEqual(rows(burn([{ rings: [triangle], value: 1 }], 6, 5, true), 6), [
      '11111.',
      '1111..',
      '111...',
      '11....',
      '1.....',
    ]);
  });

  it(
    'random polygons with holes agree with gdal_rasterize but for a few edge pixels',
    { skip: gdalSkip },
    async () => {
      const tmp = tempDir('rasterize');
      try {
        const w = 120;
        const h = 90;
        const grid = join(tmp.dir, 'grid.tif');
        await writeScene(grid, {
          width: w,
          height: h,
          bands: 1,
          dtype: 'uint8',
          geotransform: [0, 1, 0, 0, 0, -1],
          epsg: 32633,
        });
        const random = prng(11);
        const features: object[] = [];
        const shapes: { rings: number[][]; value: number }[] = [];
        for (let k = 0; k < 25; k++) {
          const cx = random() * w;
          const cy = random() * h;
          const star = (radius: number, n: number): number[] => {
            const pts: number[] = [];
            for (let i = 0; i < n; i++) {
              const a = (2 * Math.PI * i) / n;
              const r = radius * (0.5 + random());
              pts.push(cx + r * Math.cos(a), cy + r * Math.sin(a));
            }
            return pts;
          };
          const outer = star(4 + random() * 14, 5 + Math.floor(random() * 9));
          const rings = k % 3 === 0 ? [outer, star(1.5, 6).reverse()] : [outer];
          const value = 1 + (k % 250);
          shapes.push({ rings, value });
          const toWorld = (r: number[]): number[][] => {
            const pts: number[][] = [];
            for (let i = 0; i < r.length; i += 2) pts.push([r[i]!, -r[i + 1]!]);
            return [...pts, pts[0]!];
          };
          features.push({
            type: 'Feature',
            properties: { v: value },
            geometry: { type: 'Polygon', coordinates: rings.map(toWorld) },
          });
        }
        const labels = join(tmp.dir, 'random.geojson');
        writeFileSync(
          labels,
          JSON.stringify({
            type: 'FeatureCollection',
            crs: { type: 'name', properties: { name: 'EPSG:32633' } },
            features,
          }),
        );
        for (const allTouched of [false, true]) {
          const mine = burn(shapes, w, h, allTouched);
          const reference = gdalMask(grid, labels, join(tmp.dir, `gdal-${allTouched}.tif`), [
            '-a',
            'v',
            ...(allTouched ? ['-at'] : []),
          ]);
          const burned = reference.reduce((n, v) => n + (v ? 1 : 0), 0);
          assert.ok(burned > 1000);
          assert.ok(
            differing(mine, reference) <= burned * 0.01,
            `${differing(mine, reference)} of ${burned} pixels differ (all touched: ${allTouched})`,
          );
        }
      } finally {
        tmp.cleanup();
      }
    },
  );
});
