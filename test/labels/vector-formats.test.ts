// Labels in Shapefile (plain and zipped), GeoPackage and FlatGeobuf: the SpaceNet footprints
// (plus a multipolygon, a polygon with a hole, a point and a line) converted by ogr2ogr to each
// format, read by geobatch, and checked against ogr2ogr's GeoJSON of the same file: identical COCO
// shards and byte-identical mask pixels.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { evaluate } from '../../lib/eval/eval.js';
import { readTruth } from '../../lib/eval/inputs.js';
import { geojsonToCoco, parseCrsOption, rasterizeMask } from '../../lib/labels/geo-labels.js';
import type { GeoLabelsOptions } from '../../lib/labels/geo-labels.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { tempDir } from '../raster/fixtures.js';
import { gdal, gdalPixels } from '../raster/scene-fixtures.js';
import { geobatch } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

const ogrSkip: false | string =
  spawnSync('ogr2ogr', ['--version'], { encoding: 'utf8' }).status === 0
    ? false
    : 'ogr2ogr not found on PATH: install gdal-bin (apt-get install gdal-bin) to make the vector fixtures';

const storage = createStorage();
const spacenet = join(import.meta.dirname, '../../../shared/data/spacenet');
const image = join(spacenet, 'sample_geotiff.tif');
const footprints = join(spacenet, 'geotiff_labels.geojson');

type Position = [number, number];
interface Feature {
  type: 'Feature';
  properties: Record<string, unknown>;
  geometry: { type: string; coordinates: unknown } | null;
}

/** The footprints with a class per feature, a two-part multipolygon and a polygon with a hole. */
function polygonFeatures(): Feature[] {
  const doc = JSON.parse(readFileSync(footprints, 'utf8')) as { features: Feature[] };
  const src = doc.features;
  const features: Feature[] = src.map((f, i) => ({
    type: 'Feature',
    properties: { kind: i % 2 ? 'house' : 'shed', cls: 1 + (i % 3), name: `b${i}` },
    geometry: f.geometry,
  }));
  const outer = (f: Feature): Position[] => (f.geometry!.coordinates as Position[][])[0]!;
  features.push({
    type: 'Feature',
    properties: { kind: 'multi', cls: 7, name: 'multi' },
    geometry: { type: 'MultiPolygon', coordinates: [[outer(src[3]!)], [outer(src[4]!)]] },
  });
  const ring = outer(src[5]!);
  const cx = ring.reduce((s, p) => s + p[0], 0) / ring.length;
  const cy = ring.reduce((s, p) => s + p[1], 0) / ring.length;
  const hole = ring.map(([x, y]): Position => [cx + (x - cx) * 0.4, cy + (y - cy) * 0.4]).reverse();
  features.push({
    type: 'Feature',
    properties: { kind: 'holed', cls: 9, name: 'holed' },
    geometry: { type: 'Polygon', coordinates: [ring, hole] },
  });
  return features;
}

function collection(features: Feature[]): string {
  return JSON.stringify({
    type: 'FeatureCollection',
    crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32616' } },
    features,
  });
}

/** ogr2ogr's GeoJSON of a file (a layer of it), coordinates at full precision. */
function toGeoJson(src: string, out: string, layer?: string): string {
  gdal('ogr2ogr', ['-f', 'GeoJSON', '-lco', 'WRITE_NAME=NO', out, src, ...(layer ? [layer] : [])]);
  return out;
}

/** A COCO shard as text without `info.source` (the labels file's name, which differs by design). */
async function shard(labels: string, options: GeoLabelsOptions = {}, s: Storage = storage): Promise<string> {
  const { dataset } = await geojsonToCoco(s, labels, image, { categoryField: 'kind', ...options });
  return JSON.stringify({ ...dataset, info: { description: dataset.info.description } });
}

async function maskPixels(labels: string, out: string, layer?: string): Promise<Uint8Array> {
  await rasterizeMask(storage, labels, image, out, {
    burnField: 'cls',
    ...(layer ? { layer } : {}),
  });
  return gdalPixels(out, 'uint8') as Uint8Array;
}

describe('vector labels: Shapefile, GeoPackage, FlatGeobuf', { skip: ogrSkip }, () => {
  const tmp = tempDir('vector-labels');
  const f = (name: string): string => join(tmp.dir, name);
  after(() => tmp.cleanup());

  before(() => {
    const polys = polygonFeatures();
    writeFileSync(f('polys.geojson'), collection(polys));
    writeFileSync(
      f('mixed.geojson'),
      collection([
        ...polys,
        {
          type: 'Feature',
          properties: { kind: 'point', cls: 3, name: 'p' },
          geometry: { type: 'Point', coordinates: [734100, 3724700] },
        },
        {
          type: 'Feature',
          properties: { kind: 'line', cls: 3, name: 'l' },
          geometry: {
            type: 'LineString',
            coordinates: [
              [734000, 3724600],
              [734100, 3724650],
            ],
          },
        },
      ]),
    );
    gdal('ogr2ogr', ['-f', 'ESRI Shapefile', f('polys.shp'), f('polys.geojson')]);
    // a non-WGS 84 datum, zipped: NAD83 / UTM 16N
    gdal('ogr2ogr', ['-f', 'ESRI Shapefile', '-t_srs', 'EPSG:26916', f('nad83.shp'), f('polys.geojson')]);
    const zip: Record<string, Uint8Array> = {};
    for (const ext of ['shp', 'shx', 'dbf', 'prj', 'cpg']) {
      if (existsSync(f(`nad83.${ext}`))) zip[`nad83/nad83.${ext}`] = readFileSync(f(`nad83.${ext}`));
    }
    writeFileSync(f('nad83.shp.zip'), zipSync(zip));
    // two layers: the footprints in UTM and everything in WGS 84 longitude/latitude
    gdal('ogr2ogr', ['-f', 'GPKG', '-nln', 'footprints', f('labels.gpkg'), f('polys.geojson')]);
    gdal('ogr2ogr', [
      ...['-update', '-f', 'GPKG', '-nln', 'mixed', '-nlt', 'GEOMETRY', '-t_srs', 'EPSG:4326'],
      ...[f('labels.gpkg'), f('mixed.geojson')],
    ]);
    gdal('ogr2ogr', ['-f', 'FlatGeobuf', '-nlt', 'GEOMETRY', f('mixed.fgb'), f('mixed.geojson')]);
  });

  const cases: { name: string; file: string; layer?: string; crs: string; kept: number }[] = [
    { name: 'Shapefile (EPSG:32616 from the .prj)', file: 'polys.shp', crs: 'EPSG:32616', kept: 45 },
    { name: 'zipped Shapefile in NAD83 / UTM 16N', file: 'nad83.shp.zip', crs: 'EPSG:26916', kept: 45 },
    {
      name: "GeoPackage layer 'footprints'",
      file: 'labels.gpkg',
      layer: 'footprints',
      crs: 'EPSG:32616',
      kept: 45,
    },
    {
      name: "GeoPackage layer 'mixed' (EPSG:4326)",
      file: 'labels.gpkg',
      layer: 'mixed',
      crs: 'EPSG:4326',
      kept: 45,
    },
    { name: 'FlatGeobuf (spatially indexed, so reordered)', file: 'mixed.fgb', crs: 'EPSG:32616', kept: 45 },
  ];

  for (const c of cases) {
    it(`${c.name}: the same COCO shard and mask as ogr2ogr's GeoJSON of it`, async () => {
      const file = f(c.file);
      const layer = c.layer ? { layer: c.layer } : {};
      const gdalName = c.file.endsWith('.zip') ? `/vsizip/${file}/nad83/nad83.shp` : file;
      const json = toGeoJson(gdalName, f(`${c.file}-${c.layer ?? ''}.geojson`), c.layer);
      const { result } = await geojsonToCoco(storage, file, image, { categoryField: 'kind', ...layer });
      assert.equal(result.crs, c.crs);
      assert.equal(result.counts.kept, c.kept);
      assert.equal(result.counts.withHoles, 1);
      const mixed = c.file === 'mixed.fgb' || c.layer === 'mixed';
      assert.deepEqual(result.unsupportedTypes, mixed ? { Point: 1, LineString: 1 } : {});
      assert.equal(await shard(file, layer), await shard(json));
      const ours = await maskPixels(file, f(`${c.file}-${c.layer ?? ''}.tif`), c.layer);
      const reference = await maskPixels(json, f(`${c.file}-${c.layer ?? ''}.json.tif`));
      assert.ok(
        ours.some((v) => v === 9) && ours.some((v) => v === 7),
        'the holed and multi features are burned',
      );
      assert.ok(Buffer.from(ours).equals(Buffer.from(reference)), 'mask pixels identical');
    });
  }

  it('a shapefile in UTM 16N gives the same shard as the GeoJSON it was made from', async () => {
    assert.equal(await shard(f('polys.shp')), await shard(f('polys.geojson')));
    assert.equal(await shard(f('labels.gpkg'), { layer: 'footprints' }), await shard(f('polys.geojson')));
  });

  it('null geometries are skipped and counted', async () => {
    const doc = JSON.parse(readFileSync(f('polys.geojson'), 'utf8')) as { features: Feature[] };
    doc.features.splice(2, 0, {
      type: 'Feature',
      properties: { kind: 'none', cls: 1, name: 'x' },
      geometry: null,
    });
    writeFileSync(f('nulls.geojson'), JSON.stringify(doc));
    gdal('ogr2ogr', ['-f', 'ESRI Shapefile', f('nulls.shp'), f('nulls.geojson')]);
    gdal('ogr2ogr', ['-f', 'GPKG', f('nulls.gpkg'), f('nulls.geojson')]);
    // (GDAL 3.6 drops features without geometry when it writes FlatGeobuf: none to test there)
    for (const file of ['nulls.shp', 'nulls.gpkg']) {
      const { result } = await geojsonToCoco(storage, f(file), image, { categoryField: 'kind' });
      assert.equal(result.counts.features, 46, file);
      assert.equal(result.counts.kept, 45, file);
      assert.deepEqual(result.unsupportedTypes, { 'null geometry': 1 }, file);
    }
  });

  it('--crs overrides the file, and stands in for a missing .prj', async () => {
    for (const ext of ['shp', 'shx', 'dbf'])
      writeFileSync(f(`noprj.${ext}`), readFileSync(f(`polys.${ext}`)));
    await assert.rejects(
      geojsonToCoco(storage, f('noprj.shp'), image),
      (e: Error) =>
        e.name === 'LabelError' &&
        e.message.startsWith(`${f('noprj.prj')}: missing`) &&
        e.message.includes('--crs EPSG:<code>'),
    );
    assert.equal(
      await shard(f('noprj.shp'), { crs: parseCrsOption('EPSG:32616') }),
      await shard(f('polys.shp')),
    );
    // the NAD83 zip read as WGS 84 UTM: the datums share a zero shift in proj4, the codes differ
    const { result } = await geojsonToCoco(storage, f('nad83.shp.zip'), image, {
      crs: parseCrsOption('EPSG:32616'),
    });
    assert.equal(result.crs, 'EPSG:32616');
  });

  it('labels on S3: a shapefile with its sidecars, a GeoPackage and a FlatGeobuf', async () => {
    let server: S3rverHandle | undefined;
    try {
      server = await startS3rver();
      const s3 = createStorage({ s3: server.clientConfig, cacheDir: f('s3-cache') });
      const bucket = await server.createBucket();
      for (const name of ['polys.shp', 'polys.dbf', 'polys.prj', 'labels.gpkg', 'mixed.fgb']) {
        await s3.writeAtomic(`s3://${bucket}/labels/${name}`, readFileSync(f(name)));
      }
      const mk = (name: string): string => `s3://${bucket}/labels/${name}`;
      assert.equal(await shard(mk('polys.shp'), {}, s3), await shard(f('polys.shp')));
      assert.equal(
        await shard(mk('labels.gpkg'), { layer: 'mixed' }, s3),
        await shard(f('labels.gpkg'), { layer: 'mixed' }),
      );
      assert.equal(await shard(mk('mixed.fgb'), {}, s3), await shard(f('mixed.fgb')));
    } finally {
      await server?.stop();
    }
  });

  it("eval reads shapefile, GeoPackage and FlatGeobuf truth with the file's CRS", async () => {
    const geo = await readTruth(storage, f('polys.geojson'));
    for (const file of ['polys.shp', 'nad83.shp.zip', 'mixed.fgb']) {
      const truth = await readTruth(storage, f(file));
      assert.equal(truth.length, 1);
      assert.equal(truth[0]!.kind, 'geo-labels');
      assert.equal(truth[0]!.geo!.features.filter((g) => g.shape.kind === 'polygons').length, 45, file);
      assert.equal(truth[0]!.geo!.crs.epsg, file.startsWith('nad83') ? 26916 : 32616);
    }
    assert.equal(geo[0]!.geo!.features.length, 45);
  });

  describe('bad input: one line naming the file', () => {
    const rejects = async (
      labels: string,
      pattern: RegExp,
      options: GeoLabelsOptions = {},
    ): Promise<void> => {
      await assert.rejects(geojsonToCoco(storage, labels, image, options), (e: Error) => {
        assert.equal(e.name, 'LabelError');
        assert.match(e.message, pattern);
        assert.ok(!e.message.includes('\n'), e.message);
        return true;
      });
    };

    it('a .shp without its .dbf', async () => {
      for (const ext of ['shp', 'shx', 'prj'])
        writeFileSync(f(`nodbf.${ext}`), readFileSync(f(`polys.${ext}`)));
      await rejects(f('nodbf.shp'), new RegExp(`^${f('nodbf.dbf')}: missing; a shapefile's attributes`));
    });

    it('a corrupt .shp, .gpkg, .fgb and .zip', async () => {
      const junk = Buffer.from('this is not a vector file at all, just some text padding it out '.repeat(4));
      for (const [name, what] of [
        ['bad.shp', 'shapefile'],
        ['bad.gpkg', 'GeoPackage'],
        ['bad.fgb', 'FlatGeobuf file'],
        ['bad.zip', 'zip file'],
      ] as const) {
        writeFileSync(f(name), junk);
        if (name === 'bad.shp') {
          writeFileSync(f('bad.dbf'), readFileSync(f('polys.dbf')));
          writeFileSync(f('bad.prj'), readFileSync(f('polys.prj')));
        }
        await rejects(f(name), new RegExp(`^${f(name)}: not a readable ${what} \\(`));
      }
      // a truncated shapefile: the header promises more than there is
      writeFileSync(f('cut.shp'), readFileSync(f('polys.shp')).subarray(0, 300));
      for (const ext of ['dbf', 'prj']) writeFileSync(f(`cut.${ext}`), readFileSync(f(`polys.${ext}`)));
      await rejects(f('cut.shp'), new RegExp(`^${f('cut.shp')}: not a readable shapefile`));
    });

    it('a GeoPackage layer that is not there, or no layer chosen among several', async () => {
      await rejects(
        f('labels.gpkg'),
        /: no layer 'roads' in the GeoPackage; its layers: footprints, mixed$/,
        {
          layer: 'roads',
        },
      );
      await rejects(
        f('labels.gpkg'),
        /the GeoPackage has 2 layers \(footprints, mixed\); choose one with --layer \(layer: in a pipeline\)$/,
      );
      await rejects(f('polys.shp'), /layer 'x' given, but a shapefile has one layer/, { layer: 'x' });
    });

    it('a .prj that names no CRS geobatch can match', async () => {
      for (const ext of ['shp', 'shx', 'dbf'])
        writeFileSync(f(`lambert.${ext}`), readFileSync(f(`polys.${ext}`)));
      writeFileSync(
        f('lambert.prj'),
        'PROJCS["My_Local_Grid",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",0.0],UNIT["Meter",1.0]]',
      );
      await rejects(
        f('lambert.shp'),
        new RegExp(`^${f('lambert.prj')}: unknown CRS 'My_Local_Grid': .*pass the CRS as EPSG:<code>$`),
      );
    });
  });

  it('geobatch labels geojson and mask take --layer on the command line', () => {
    const bin = join(import.meta.dirname, '../../bin/geobatch.ts');
    const run = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, ['--import', 'tsx', bin, ...args], { encoding: 'utf8' });
    const coco = run([
      'labels',
      'geojson',
      f('labels.gpkg'),
      '--layer',
      'footprints',
      '--image',
      image,
      '--out',
      f('cli.json'),
      '--category-field',
      'kind',
      '--json',
    ]);
    assert.equal(coco.status, 0, coco.stderr);
    assert.equal((JSON.parse(coco.stdout) as { counts: { kept: number } }).counts.kept, 45);
    const mask = run(['labels', 'mask', f('labels.gpkg'), '--image', image, '--out', f('cli.tif')]);
    assert.notEqual(mask.status, 0);
    assert.equal(
      mask.stderr.trim(),
      `geobatch: ${f('labels.gpkg')}: the GeoPackage has 2 layers (footprints, mixed); choose one with --layer (layer: in a pipeline)`,
    );
    assert.ok(!existsSync(f('cli.tif')), 'no mask left behind');
    rmSync(f('cli.json'));
  });

  it('the labels and mask jobs read a GeoPackage layer (params.layer) in a pipeline', async () => {
    writeFileSync(
      f('vector.yaml'),
      `version: 1
name: vector
output: ${f('runs')}
inputs:
  scenes: ${image}
  outlines: ${f('labels.gpkg')}
stages:
  polygons:
    job: labels
    foreach: scenes
    params: { labels: outlines, categoryField: kind, layer: footprints }
  masks:
    job: mask
    foreach: scenes
    params: { labels: outlines, burnField: cls, layer: mixed }
`,
    );
    const r = await geobatch(['run', f('vector.yaml'), '--json']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const run = join(
      f('runs/vector'),
      readdirSync(f('runs/vector')).find((n) => n !== 'latest.json')!,
    );
    const staged = JSON.parse(readFileSync(join(run, 'polygons/sample_geotiff.json'), 'utf8')) as {
      annotations: unknown;
      categories: unknown;
    };
    const direct = JSON.parse(await shard(f('polys.geojson'))) as typeof staged;
    assert.deepEqual(staged.annotations, direct.annotations);
    assert.deepEqual(staged.categories, direct.categories);
    const mask = gdalPixels(join(run, 'masks/sample_geotiff.tif'), 'uint8') as Uint8Array;
    const reference = await maskPixels(f('mixed.geojson'), f('pipeline-reference.tif'));
    assert.ok(Buffer.from(mask).equals(Buffer.from(reference)), 'mask pixels identical');
  });

  it('geobatch eval scores against GeoPackage truth (truthLayer) as against the GeoJSON it came from', async () => {
    const preds = f('preds');
    const { dataset } = await geojsonToCoco(storage, f('polys.geojson'), image, { categoryField: 'kind' });
    await storage.writeAtomic(join(preds, 'sample_geotiff.json'), JSON.stringify(dataset));
    const score = async (truth: string, out: string, truthLayer?: string) =>
      evaluate(storage, {
        predictions: preds,
        truth,
        out: f(out),
        images: [image],
        classField: 'kind',
        ...(truthLayer ? { truthLayer } : {}),
      });
    const geo = await score(f('polys.geojson'), 'eval-geojson');
    const gpkg = await score(f('labels.gpkg'), 'eval-gpkg', 'footprints');
    assert.equal(gpkg.overall.detection!.f1, 1);
    assert.deepEqual(gpkg.overall, geo.overall);
    await assert.rejects(
      score(f('labels.gpkg'), 'eval-none'),
      /choose one with --truth-layer \(truthLayer: in a pipeline\)$/,
    );
  });
});
