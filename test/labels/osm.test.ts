// OpenStreetMap labels: a small OSM XML extract (buildings as closed ways, a multipolygon with a
// hole joined from three member ways, a road, a footway, a POI node) written by the test,
// converted to .osm.pbf by osmium, read by geobatch and checked against osmium's own tags-filter
// (same ids) and export (same polygons, lines, points to 1e-7); the same data as Overpass JSON
// gives the same features; clipping to the SpaceNet GeoTIFF's footprint is checked against
// gdalinfo's wgs84Extent and ogr2ogr -clipsrc; per-chip encodings on a hand case.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LabelError } from '../../lib/labels/errors.js';
import { openOsmSource, parseOverpassJson } from '../../lib/labels/osm-elements.js';
import { parseClassesFile, parseFilterExpression, parseInlineClasses } from '../../lib/labels/osm-filters.js';
import { ringArea } from '../../lib/labels/osm-geometry.js';
import { extractOsmFeatures, osmLabels, sceneFootprint } from '../../lib/labels/osm.js';
import type { OsmFeature, OsmGeometry } from '../../lib/labels/osm.js';
import { createStorage } from '../../lib/storage/index.js';
import { tempDir } from '../raster/fixtures.js';
import { geobatch } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { CLASSES, osmium, osmiumSkip, osmXml, overpassJson, poi, type P } from '../helpers/osm-extract.js';

const gdalSkip: false | string =
  spawnSync('ogr2ogr', ['--version'], { encoding: 'utf8' }).status === 0
    ? false
    : 'ogr2ogr not found: install gdal-bin';

const storage = createStorage();
const image = join(import.meta.dirname, '../../../shared/data/spacenet/sample_geotiff.tif');

const classes = parseClassesFile(CLASSES, 'classes.yaml');

/** Polygons as sorted, rotation- and orientation-free rings (closing point dropped). */
function normalPolygons(g: { type: string; coordinates: unknown }): P[][][] {
  const polys = (g.type === 'Polygon' ? [g.coordinates] : g.coordinates) as P[][][];
  const ring = (r: P[]): P[] => {
    let open = r.slice(0, -1);
    if (ringArea([...open, open[0]!]) < 0) open = open.reverse();
    const cmp = (a: P, b: P): number => a[0] - b[0] || a[1] - b[1];
    const start = open.indexOf([...open].sort(cmp)[0]!);
    return [...open.slice(start), ...open.slice(0, start)];
  };
  const key = (r: P[]): string => JSON.stringify(r[0]);
  return polys
    .map((p) => [
      ring(p[0]!),
      ...p
        .slice(1)
        .map(ring)
        .sort((a, b) => key(a).localeCompare(key(b))),
    ])
    .sort((a, b) => key(a[0]!).localeCompare(key(b[0]!)));
}

function assertClose(actual: unknown, expected: unknown, tol: number, where: string): void {
  if (typeof expected === 'number') {
    assert.ok(
      typeof actual === 'number' && Math.abs(actual - expected) <= tol,
      `${where}: ${String(actual)} != ${expected}`,
    );
    return;
  }
  assert.ok(Array.isArray(actual) && Array.isArray(expected), `${where}: not arrays`);
  assert.equal(actual.length, expected.length, `${where}: lengths differ`);
  expected.forEach((e, i) => assertClose((actual as unknown[])[i], e, tol, `${where}[${i}]`));
}

function featureId(f: OsmFeature): string {
  return `${f.osmType[0]}${f.osmId}`;
}

describe('labels osm', { skip: osmiumSkip }, () => {
  const tmp = tempDir('osm');
  const xml = join(tmp.dir, 'extract.osm');
  const pbf = join(tmp.dir, 'extract.osm.pbf');
  let pbfFeatures: OsmFeature[] = [];
  let skipped: Record<string, number> = {};

  before(async () => {
    writeFileSync(xml, osmXml());
    osmium(['cat', xml, '-o', pbf, '-O']);
    const extraction = await extractOsmFeatures(await openOsmSource(storage, pbf), classes);
    pbfFeatures = extraction.features;
    skipped = extraction.skipped;
  });
  after(() => tmp.cleanup());

  it('keeps the ids osmium tags-filter keeps, less the open way of an area class (counted)', () => {
    const filtered = join(tmp.dir, 'filtered.opl');
    osmium([
      'tags-filter',
      pbf,
      'nwr/building',
      'nwr/highway=residential,primary',
      'nwr/landuse=forest',
      'nwr/natural=water',
      'nwr/amenity=cafe,restaurant',
      '-R',
      '-f',
      'opl',
      '-o',
      filtered,
      '-O',
    ]);
    const ids = readFileSync(filtered, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ')[0]!);
    const ours = pbfFeatures.map(featureId);
    assert.deepEqual([...ours, 'w13'].sort(), [...ids].sort());
    assert.deepEqual(skipped, { 'open way (the class keeps no lines)': 1 });
    const byId = new Map(pbfFeatures.map((x) => [featureId(x), x]));
    assert.equal(byId.get('w30')!.cls, 'road');
    assert.equal(byId.get('r100')!.cls, 'forest');
    assert.deepEqual(byId.get('w11')!.tags, { building: 'house' });
    assert.deepEqual(byId.get(`n${poi}`)!.tags, { amenity: 'cafe' });
  });

  it("gives osmium export's polygons, lines and points to 1e-7, outer rings counter-clockwise", () => {
    const exported = JSON.parse(
      osmium(['export', pbf, '-f', 'geojson', '--add-unique-id=type_id', '-o', '-']),
    ) as {
      features: { id: string; geometry: { type: string; coordinates: unknown } }[];
    };
    const areas = new Map<string, { type: string; coordinates: unknown }>();
    const others = new Map<string, { type: string; coordinates: unknown }>();
    for (const e of exported.features) {
      if (e.id.startsWith('a')) {
        const n = Number(e.id.slice(1));
        areas.set(n % 2 === 0 ? `w${n / 2}` : `r${(n - 1) / 2}`, e.geometry);
      } else others.set(e.id, e.geometry);
    }
    let polygons = 0;
    for (const feature of pbfFeatures) {
      const id = featureId(feature);
      const g: OsmGeometry = feature.geometry;
      if (g.type === 'Polygon' || g.type === 'MultiPolygon') {
        polygons++;
        const theirs = areas.get(id);
        assert.ok(theirs, `osmium made no area of ${id}`);
        assertClose(normalPolygons(g), normalPolygons(theirs), 1e-7, id);
        for (const p of g.type === 'Polygon' ? [g.coordinates] : g.coordinates) {
          assert.ok(ringArea(p[0]!) > 0, `${id}: outer ring clockwise`);
          for (const hole of p.slice(1)) assert.ok(ringArea(hole) < 0, `${id}: inner ring counter-clockwise`);
        }
      } else {
        const theirs = others.get(id);
        assert.ok(theirs, `osmium exported no ${id}`);
        assert.equal(g.type, theirs.type);
        assertClose(g.coordinates, theirs.coordinates, 1e-7, id);
      }
    }
    assert.equal(polygons, 5); // w10, w11, w12, w40, r100
    const forest = pbfFeatures.find((x) => x.osmId === 100)!.geometry;
    assert.equal(forest.type, 'Polygon');
    assert.equal((forest.coordinates as P[][]).length, 2, 'the forest keeps its hole');
  });

  it('reads the same features from OSM XML and from both Overpass JSON forms', async () => {
    const key = (fs: OsmFeature[]): OsmFeature[] =>
      [...fs].sort((a, b) => featureId(a).localeCompare(featureId(b)));
    const fromXml = await extractOsmFeatures(await openOsmSource(storage, xml), classes);
    assert.deepEqual(key(fromXml.features), key(pbfFeatures));
    for (const form of ['geom', 'skel'] as const) {
      const json = join(tmp.dir, `overpass-${form}.json`);
      writeFileSync(json, overpassJson(form));
      const fromJson = await extractOsmFeatures(await openOsmSource(storage, json), classes);
      const ours = key(fromJson.features);
      const expected = key(pbfFeatures);
      assert.deepEqual(ours.map(featureId), expected.map(featureId), form);
      ours.forEach((x, i) => {
        assert.deepEqual(x.tags, expected[i]!.tags);
        const g = x.geometry;
        if (g.type === 'Polygon')
          assert.deepEqual(
            normalPolygons(g),
            normalPolygons(expected[i]!.geometry as { type: string; coordinates: unknown }),
          );
        else assert.deepEqual(g, expected[i]!.geometry);
      });
    }
  });

  it("clips to the GeoTIFF's footprint as ogr2ogr -clipsrc does", { skip: gdalSkip }, async () => {
    const scene = await sceneFootprint(storage, image);
    const info = JSON.parse(spawnSync('gdalinfo', ['-json', image], { encoding: 'utf8' }).stdout) as {
      wgs84Extent: { coordinates: P[][] };
    };
    const corners = info.wgs84Extent.coordinates[0]!.slice(0, 4);
    for (const c of corners) {
      assert.ok(
        scene.footprint.some((q) => Math.abs(q[0] - c[0]) < 2e-7 && Math.abs(q[1] - c[1]) < 2e-7),
        `corner ${c.join(',')}`,
      );
    }
    const out = join(tmp.dir, 'scenes');
    const result = await osmLabels(storage, await openOsmSource(storage, pbf), {
      classes,
      out,
      scenes: [image],
    });
    assert.equal(result.scenes[0]!.output, join(out, 'sample_geotiff.geojson'));
    const doc = JSON.parse(readFileSync(join(out, 'sample_geotiff.geojson'), 'utf8')) as {
      features: {
        id: string;
        properties: { class: string; osm_id: number };
        geometry: { type: string; coordinates: P[][] };
      }[];
    };
    const ids = doc.features.map((x) => x.id).sort();
    assert.deepEqual(ids, ['node/' + poi, 'relation/100', 'way/10', 'way/11', 'way/30', 'way/40'].sort());
    // features wholly inside are unchanged
    const inside = doc.features.find((x) => x.id === 'way/10')!;
    assert.deepEqual(inside.geometry, pbfFeatures.find((x) => featureId(x) === 'w10')!.geometry);
    // the building across the east edge: as ogr2ogr clips it
    const whole = join(tmp.dir, 'whole.geojson');
    writeFileSync(
      whole,
      JSON.stringify({
        type: 'FeatureCollection',
        features: [
          { type: 'Feature', properties: {}, geometry: pbfFeatures.find((x) => x.osmId === 11)!.geometry },
        ],
      }),
    );
    const wkt = `POLYGON((${[...scene.footprint].map((p) => `${p[0]} ${p[1]}`).join(', ')}))`;
    const ogrOut = join(tmp.dir, 'ogr-clipped.geojson');
    const r = spawnSync('ogr2ogr', ['-f', 'GeoJSON', ogrOut, whole, '-clipsrc', wkt], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const ogr = JSON.parse(readFileSync(ogrOut, 'utf8')) as {
      features: { geometry: { type: string; coordinates: unknown } }[];
    };
    const clipped = doc.features.find((x) => x.id === 'way/11')!.geometry;
    assertClose(normalPolygons(clipped), normalPolygons(ogr.features[0]!.geometry), 1e-9, 'w11 clipped');
    assert.ok(
      Math.abs(ringArea(clipped.coordinates[0]!)) <
        Math.abs(ringArea((pbfFeatures.find((x) => x.osmId === 11)!.geometry.coordinates as P[][])[0]!)),
    );
    // the road is inside whole; summary.json lists it all
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      byClass: Record<string, number>;
    };
    assert.deepEqual(summary.byClass, { building: 3, road: 1, forest: 1, water: 1, poi: 1 });
  });

  it('encodes per-chip multi-labels by spatial join (hand case)', async () => {
    const chipsDir = join(tmp.dir, 'chips');
    const box = (x0: number, y0: number, x1: number, y1: number): P[][] => [
      [
        [x0, y1],
        [x0, y0],
        [x1, y0],
        [x1, y1],
        [x0, y1],
      ],
    ];
    const chips = [
      // over building 10 and the cafe
      { chip: 'a.tif', ring: box(-84.4796, 33.6379, -84.4788, 33.6385) },
      // inside the forest's hole: no forest; touches nothing else
      { chip: 'b,hole.tif', ring: box(-84.4805, 33.6393, -84.4803, 33.6395) },
      // over the forest (outside the hole) and the water
      { chip: 'c.tif', ring: box(-84.48, 33.6396, -84.4784, 33.6399) },
      // crossed by the road only
      { chip: 'd.tif', ring: box(-84.4792, 33.6372, -84.4788, 33.6378) },
    ];
    await storage.writeAtomic(
      join(chipsDir, 'chips.geojson'),
      JSON.stringify({
        type: 'FeatureCollection',
        features: chips.map((c) => ({
          type: 'Feature',
          properties: { chip: c.chip },
          geometry: { type: 'Polygon', coordinates: c.ring },
        })),
      }),
    );
    const out = join(tmp.dir, 'chip-labels');
    const result = await osmLabels(storage, await openOsmSource(storage, pbf), {
      classes,
      out,
      chips: chipsDir,
    });
    assert.equal(
      readFileSync(join(out, 'labels.csv'), 'utf8'),
      [
        'chip,building,road,forest,water,poi',
        'a.tif,1,0,0,0,1',
        '"b,hole.tif",0,0,0,0,0',
        'c.tif,0,0,1,1,0',
        'd.tif,0,1,0,0,0',
        '',
      ].join('\n'),
    );
    assert.equal(
      readFileSync(join(out, 'labels.jsonl'), 'utf8'),
      [
        '{"chip":"a.tif","labels":["building","poi"]}',
        '{"chip":"b,hole.tif","labels":[]}',
        '{"chip":"c.tif","labels":["forest","water"]}',
        '{"chip":"d.tif","labels":["road"]}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(result.chips!.byClass, { building: 1, road: 1, forest: 1, water: 1, poi: 1 });
    assert.ok(existsSync(join(out, 'features.geojson')));
    // a rerun with the same input and options is skipped; other classes redo the work
    const again = await osmLabels(storage, await openOsmSource(storage, pbf), {
      classes,
      out,
      chips: chipsDir,
    });
    assert.equal(again.reused, true);
    const fewer = await osmLabels(storage, await openOsmSource(storage, pbf), {
      classes: classes.slice(0, 2),
      out,
      chips: chipsDir,
    });
    assert.equal(fewer.reused, undefined);
    assert.equal(readFileSync(join(out, 'labels.csv'), 'utf8').split('\n')[0], 'chip,building,road');
  });

  it('reads a PBF of many blobs as osmium does, and the CLI writes the same from a classes file', async () => {
    // 4,000 buildings: 16,000 nodes in several dense-node blocks (osmium writes 8,000 a block)
    const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="geobatch-test">'];
    const wayLines: string[] = [];
    for (let b = 0; b < 4000; b++) {
      const lon = -84.481 + (b % 80) * 0.00005;
      const lat = 33.6365 + Math.floor(b / 80) * 0.00007;
      const ids = [0, 1, 2, 3].map((k) => 1_000_000 + b * 4 + k);
      const pts: P[] = [
        [lon, lat],
        [lon + 0.00003, lat],
        [lon + 0.00003, lat + 0.00004],
        [lon, lat + 0.00004],
      ];
      ids.forEach((id, k) =>
        lines.push(
          ` <node id="${id}" version="1" lat="${pts[k]![1].toFixed(7)}" lon="${pts[k]![0].toFixed(7)}"/>`,
        ),
      );
      const tag = b % 3 === 0 ? '<tag k="building" v="yes"/>' : '<tag k="landuse" v="grass"/>';
      wayLines.push(
        ` <way id="${5000 + b}" version="1">${[...ids, ids[0]!].map((r) => `<nd ref="${r}"/>`).join('')}${tag}</way>`,
      );
    }
    const big = join(tmp.dir, 'big.osm');
    const bigPbf = join(tmp.dir, 'big.osm.pbf');
    writeFileSync(big, [...lines, ...wayLines, '</osm>'].join('\n') + '\n');
    osmium(['cat', big, '-o', bigPbf, '-O']);
    const blobs = osmium(['fileinfo', '-e', '-g', 'data.buffers.count', bigPbf]).trim();
    assert.ok(Number(blobs) > 2, `only ${blobs} data blobs`);
    const classesFile = join(tmp.dir, 'classes.yaml');
    writeFileSync(classesFile, CLASSES);
    const out = join(tmp.dir, 'cli-out');
    const r = await geobatch([
      'labels',
      'osm',
      bigPbf,
      '--classes',
      classesFile,
      '--images',
      // a glob
      join(image, '..', 'sample_geo*.tif'),
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as {
      features: number;
      nodesKept: number;
      byClass: Record<string, number>;
    };
    assert.equal(summary.byClass.building, 1334);
    assert.equal(summary.nodesKept, 1334 * 4, 'only the nodes of matched ways are kept');
    const exported = JSON.parse(
      osmium(['export', bigPbf, '-f', 'geojson', '--add-unique-id=type_id', '-o', '-']),
    ) as {
      features: {
        id: string;
        properties: Record<string, string>;
        geometry: { type: string; coordinates: unknown };
      }[];
    };
    const theirs = new Map(
      exported.features
        .filter((e) => e.id.startsWith('a') && e.properties.building)
        .map((e) => [`way/${Number(e.id.slice(1)) / 2}`, e.geometry]),
    );
    const ours = JSON.parse(readFileSync(join(out, 'sample_geotiff.geojson'), 'utf8')) as {
      features: { id: string; geometry: { type: string; coordinates: unknown } }[];
    };
    assert.equal(ours.features.length, theirs.size);
    for (const x of ours.features)
      assertClose(normalPolygons(x.geometry), normalPolygons(theirs.get(x.id)!), 1e-7, x.id);
  });

  it('streams a PBF from S3 (s3rver) to the same features', async () => {
    let server: S3rverHandle | undefined;
    try {
      server = await startS3rver();
      const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(tmp.dir, 's3-cache') });
      const bucket = await server.createBucket();
      const uri = `s3://${bucket}/osm/extract.osm.pbf`;
      await s3.writeAtomic(uri, readFileSync(pbf));
      const fromS3 = await extractOsmFeatures(await openOsmSource(s3, uri), classes);
      assert.deepEqual(fromS3.features, pbfFeatures);
    } finally {
      await server?.stop();
    }
  });

  it('refuses bad input with one clear line, leaving nothing behind', async () => {
    const corrupt = join(tmp.dir, 'corrupt.osm.pbf');
    const bytes = readFileSync(pbf);
    // keep the header blob, garble the data blob's zlib stream
    const garbled = Buffer.from(bytes);
    for (let i = garbled.length - 40; i < garbled.length - 4; i++) garbled[i] = 0x5a;
    writeFileSync(corrupt, garbled);
    const out = join(tmp.dir, 'bad-out');
    const r = await geobatch(['labels', 'osm', corrupt, '--class', 'building:building=*', '--out', out]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /corrupt\.osm\.pbf: not a valid \.osm\.pbf file \(blob at byte \d+\)/);
    assert.ok(!existsSync(join(out, 'summary.json')));
    writeFileSync(join(tmp.dir, 'truncated.osm.pbf'), bytes.subarray(0, bytes.length - 10));
    await assert.rejects(
      async () =>
        extractOsmFeatures(await openOsmSource(storage, join(tmp.dir, 'truncated.osm.pbf')), classes),
      /truncated\.osm\.pbf: not a valid \.osm\.pbf file \(blob at byte \d+\): the file ends inside a blob/,
    );
    writeFileSync(join(tmp.dir, 'random.osm.pbf'), Buffer.from('this is not protobuf at all'));
    await assert.rejects(
      async () => extractOsmFeatures(await openOsmSource(storage, join(tmp.dir, 'random.osm.pbf')), classes),
      (e: unknown) =>
        e instanceof LabelError && /random\.osm\.pbf: not a valid \.osm\.pbf file/.test(e.message),
    );

    assert.throws(
      () => parseInlineClasses(['road:highway=']),
      (e: unknown) =>
        e instanceof LabelError &&
        /--class: class 'road': bad filter expression "highway=": empty value/.test(e.message),
    );
    assert.throws(
      () => parseFilterExpression('high way=primary', 'f.yaml'),
      /f\.yaml: bad filter expression "high way=primary": "high way" is not a tag key; valid: key, key=\*/,
    );
    assert.throws(
      () => parseClassesFile('road: { match: 3 }', 'c.yaml'),
      /c\.yaml: class 'road' is \{"match":3\}; expected an expression/,
    );
    assert.throws(
      () => parseInlineClasses(['building=*']),
      /--class "building=\*": expected NAME:EXPRESSION/,
    );

    const remark = JSON.stringify({
      version: 0.6,
      elements: [{ type: 'node', id: 1, lat: 0, lon: 0 }],
      remark: 'runtime error: Query timed out in "query" at line 3 after 25 seconds.',
    });
    assert.throws(
      () => parseOverpassJson(remark, 'answer.json'),
      (e: unknown) =>
        e instanceof LabelError &&
        /^answer\.json: the Overpass answer has the remark "runtime error: Query timed out.*rerun the query$/.test(
          e.message,
        ),
    );
  });
});
