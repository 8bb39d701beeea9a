// Polygons of class rasters: hand-drawn cases with their exact rings, and random blob rasters
// against gdal_polygonize.py (4-connected, its default) region by region.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { signedArea, type Polygon, type Ring } from '../../lib/labels/geometry.js';
import { PredictError } from '../../lib/predict/errors.js';
import { polygonizeClasses, type ClassPolygon } from '../../lib/predict/polygonize.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { createStorage } from '../../lib/storage/index.js';
import { prng, tempDir } from '../raster/fixtures.js';
import { gdalSkip } from '../raster/gdal-tools.js';

const storage = createStorage();
const dir = tempDir('polygonize');
after(() => dir.cleanup());
let files = 0;

/** A uint8 class raster from rows of characters: '.' = 0, '#' = 255, a digit = that class. */
function art(rows: readonly string[]): { width: number; height: number; data: Uint8Array } {
  const width = rows[0]!.length;
  const data = new Uint8Array(width * rows.length);
  rows.forEach((row, y) => {
    assert.equal(row.length, width);
    for (let x = 0; x < width; x++) {
      const c = row[x]!;
      data[y * width + x] = c === '.' ? 0 : c === '#' ? 255 : Number(c);
    }
  });
  return { width, height: rows.length, data };
}

async function writeClasses(
  raster: { width: number; height: number; data: Uint8Array },
  meta: { nodata?: number; tileSize?: number } = {},
): Promise<string> {
  const path = join(dir.dir, `classes-${files++}.tif`);
  await writeGeoTiff(path, raster.data, { width: raster.width, height: raster.height, ...meta });
  return path;
}

async function collect(
  path: string,
  options: Parameters<typeof polygonizeClasses>[2] = {},
): Promise<ClassPolygon[]> {
  const out: ClassPolygon[] = [];
  for await (const p of polygonizeClasses(storage, path, options)) out.push(p);
  return out;
}

/** The ring started at its top-most, then left-most point (same orientation). */
function normalized(ring: Ring): Ring {
  let best = 0;
  ring.forEach((p, i) => {
    const b = ring[best]!;
    if (p[1] < b[1] || (p[1] === b[1] && p[0] < b[0])) best = i;
  });
  return [...ring.slice(best), ...ring.slice(0, best)];
}

/** What every polygon must satisfy: axis-aligned edges, no collinear points, orientation, area. */
function checkShape(p: ClassPolygon): void {
  const [outer, ...holes] = p.polygon;
  assert.ok(outer && outer.length >= 4);
  assert.ok(signedArea(outer) < 0, 'outer ring counter-clockwise on screen (negative signed area)');
  for (const h of holes) assert.ok(signedArea(h) > 0, 'holes the other way');
  let area = -signedArea(outer);
  for (const h of holes) area -= signedArea(h);
  assert.equal(area, p.areaPx);
  for (const ring of p.polygon) {
    for (let i = 0; i < ring.length; i++) {
      const a = ring[(i + ring.length - 1) % ring.length]!;
      const b = ring[i]!;
      const c = ring[(i + 1) % ring.length]!;
      assert.ok(a[0] === b[0] || a[1] === b[1], 'axis-aligned edge');
      const collinear = (a[0] === b[0] && b[0] === c[0]) || (a[1] === b[1] && b[1] === c[1]);
      assert.ok(!collinear, `no collinear point at ${b.join(',')}`);
    }
  }
}

async function polygonsOf(rows: readonly string[], meta: { nodata?: number } = {}): Promise<ClassPolygon[]> {
  const found = await collect(await writeClasses(art(rows), meta));
  found.forEach(checkShape);
  return found;
}

function rings(p: ClassPolygon): Ring[] {
  return p.polygon.map(normalized);
}

describe('polygonizeClasses: hand cases', () => {
  it('a single pixel is the unit square at its corner, counter-clockwise on screen', async () => {
    const [p, ...rest] = await polygonsOf(['....', '..3.', '....']);
    assert.equal(rest.length, 0);
    assert.equal(p!.value, 3);
    assert.equal(p!.areaPx, 1);
    assert.deepEqual(rings(p!), [
      [
        [2, 1],
        [2, 2],
        [3, 2],
        [3, 1],
      ],
    ]);
  });

  it('an L shape is one ring of six corners', async () => {
    const [p, ...rest] = await polygonsOf(['1..', '1..', '11.']);
    assert.equal(rest.length, 0);
    assert.equal(p!.areaPx, 4);
    assert.deepEqual(rings(p!), [
      [
        [0, 0],
        [0, 3],
        [2, 3],
        [2, 2],
        [1, 2],
        [1, 0],
      ],
    ]);
  });

  it('a ring of pixels has a hole, and a pixel inside the hole is its own polygon', async () => {
    const found = await polygonsOf(['.....', '.111.', '.1.1.', '.111.', '.....']);
    assert.equal(found.length, 1);
    assert.equal(found[0]!.areaPx, 8);
    assert.deepEqual(rings(found[0]!), [
      [
        [1, 1],
        [1, 4],
        [4, 4],
        [4, 1],
      ],
      [
        [2, 2],
        [3, 2],
        [3, 3],
        [2, 3],
      ],
    ]);
    const withIsland = await polygonsOf([
      '1111111',
      '1.....1',
      '1.....1',
      '1..1..1',
      '1.....1',
      '1.....1',
      '1111111',
    ]);
    const areas = withIsland.map((p) => [p.value, p.areaPx, p.polygon.length]).sort((a, b) => a[1]! - b[1]!);
    assert.deepEqual(areas, [
      [1, 1, 1],
      [1, 24, 2],
    ]);
    const island = withIsland.find((p) => p.areaPx === 1)!;
    assert.deepEqual(rings(island)[0]![0], [3, 3]);
    // an island of another class in a hole of class 1, with a hole of its own
    const nested = await polygonsOf([
      '1111111',
      '1.....1',
      '1.222.1',
      '1.2.2.1',
      '1.222.1',
      '1.....1',
      '1111111',
    ]);
    const byValue = nested.map((p) => [p.value, p.areaPx, p.polygon.length]).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(byValue, [
      [1, 24, 2],
      [2, 8, 2],
    ]);
  });

  it('pixels touching only at a corner are separate regions', async () => {
    const found = await polygonsOf(['1.', '.1', '1.']);
    assert.equal(found.length, 3);
    for (const p of found) assert.equal(p.areaPx, 1);
    const corners = found.map((p) => rings(p)[0]![0]!).sort((a, b) => a[1] - b[1]);
    assert.deepEqual(corners, [
      [0, 0],
      [1, 1],
      [0, 2],
    ]);
  });

  it('a region touching itself at a corner: the hole is its own ring, touching the outline there', async () => {
    const [p] = await polygonsOf(['111.', '1..1', '1..1', '1111']);
    assert.equal(p!.areaPx, 11);
    assert.deepEqual(rings(p!), [
      [
        [0, 0],
        [0, 4],
        [4, 4],
        [4, 1],
        [3, 1],
        [3, 0],
      ],
      [
        [1, 1],
        [3, 1],
        [3, 3],
        [1, 3],
      ],
    ]);
    // mirrored: the corner leans the other way
    const [m] = await polygonsOf(['.111', '1..1', '1..1', '1111']);
    assert.deepEqual(rings(m!), [
      [
        [1, 0],
        [1, 1],
        [0, 1],
        [0, 4],
        [4, 4],
        [4, 0],
      ],
      [
        [1, 1],
        [3, 1],
        [3, 3],
        [1, 3],
      ],
    ]);
  });

  it('regions touching the raster edges, and one that fills the raster', async () => {
    const [all] = await polygonsOf(['222', '222']);
    assert.deepEqual(rings(all!), [
      [
        [0, 0],
        [0, 2],
        [3, 2],
        [3, 0],
      ],
    ]);
    const edges = await polygonsOf(['1.2', '1.2', '333']);
    const summary = edges.map((p) => [p.value, p.areaPx, rings(p)[0]!.length]).sort((a, b) => a[0]! - b[0]!);
    assert.deepEqual(summary, [
      [1, 2, 4],
      [2, 2, 4],
      [3, 3, 4],
    ]);
    assert.deepEqual(rings(edges.find((p) => p.value === 3)!)[0], [
      [0, 2],
      [0, 3],
      [3, 3],
      [3, 2],
    ]);
  });

  it("no-data pixels (the file's, or the option's) and the background make no polygons and cut regions", async () => {
    const rows = ['11#11', '11#11', '.....'];
    const fromFile = await polygonsOf(rows, { nodata: 255 });
    assert.deepEqual(
      fromFile.map((p) => [p.value, p.areaPx]),
      [
        [1, 4],
        [1, 4],
      ],
    );
    // without a no-data value, 255 is a class
    const noNodata = await polygonsOf(rows);
    assert.deepEqual(noNodata.map((p) => p.value).sort(), [1, 1, 255]);
    const path = await writeClasses(art(['1177', '7777']));
    const other = await collect(path, { background: 7, nodata: 1 });
    assert.equal(other.length, 0);
    const sevens = await collect(path, { background: 1 });
    assert.deepEqual(
      sevens.map((p) => [p.value, p.areaPx]),
      [[7, 6]],
    );
  });

  it('stops between bands of rows when its signal is aborted', async () => {
    const path = await writeClasses(art(['1.', '..', '.1', '..', '1.', '..']));
    const controller = new AbortController();
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const p of polygonizeClasses(storage, path, { signal: controller.signal, bandRows: 2 })) {
        seen.push(p.areaPx);
        controller.abort();
      }
    }, /abort/i);
    assert.deepEqual(seen, [1]);
  });

  it('refuses a float raster, naming the file and the type', async () => {
    const path = join(dir.dir, 'float.tif');
    await writeGeoTiff(path, new Float32Array(4), { width: 2, height: 2 });
    await assert.rejects(
      collect(path),
      (e: unknown) => e instanceof PredictError && /float\.tif: .*float32.*expected integer/.test(e.message),
    );
  });
});

/** Blobs of classes 1..4 on background 0, with speckle (diagonal contacts) and no-data holes. */
function blobs(width: number, height: number, seed: number): Uint8Array {
  const random = prng(seed);
  const data = new Uint8Array(width * height);
  const n = Math.round((width * height) / 400);
  for (let k = 0; k < n; k++) {
    const cx = random() * width;
    const cy = random() * height;
    const r = 1 + random() * 12;
    const value = k % 17 === 0 ? 255 : 1 + Math.floor(random() * 4);
    const ring = random() < 0.3;
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(height, cy + r); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(width, cx + r); x++) {
        const d = Math.hypot(x - cx, y - cy);
        if (d < r && (!ring || d > r * 0.6)) data[y * width + x] = value;
      }
    }
  }
  for (let i = 0; i < data.length / 20; i++) {
    data[Math.floor(random() * data.length)] = Math.floor(random() * 5);
  }
  return data;
}

type Summary = Map<number, { count: number; area: number; areas: number[]; boxes: string[] }>;

function summarize(items: readonly { value: number; polygon: Polygon }[]): Summary {
  const out: Summary = new Map();
  for (const { value, polygon } of items) {
    const entry = out.get(value) ?? { count: 0, area: 0, areas: [], boxes: [] };
    out.set(value, entry);
    const area =
      Math.abs(signedArea(polygon[0]!)) - polygon.slice(1).reduce((s, h) => s + Math.abs(signedArea(h)), 0);
    const xs = polygon[0]!.map((p) => p[0]);
    const ys = polygon[0]!.map((p) => p[1]);
    entry.count++;
    entry.area += area;
    entry.areas.push(area);
    entry.boxes.push(
      [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys), area, polygon.length].join(','),
    );
  }
  for (const entry of out.values()) {
    entry.areas.sort((a, b) => a - b);
    entry.boxes.sort();
  }
  return new Map([...out].sort((a, b) => a[0] - b[0]));
}

/** gdal_polygonize.py (4-connected) of a file without georeferencing: coordinates are pixel corners. */
function gdalPolygons(path: string): { value: number; polygon: Polygon }[] {
  const out = `${path}.geojson`;
  const result = spawnSync('gdal_polygonize.py', ['-q', path, '-f', 'GeoJSON', out, 'classes', 'DN'], {
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  const json = JSON.parse(readFileSync(out, 'utf8')) as {
    features: { properties: { DN: number }; geometry: { type: string; coordinates: number[][][] } }[];
  };
  return json.features
    .filter((f) => f.properties.DN !== 0)
    .map((f) => {
      assert.equal(f.geometry.type, 'Polygon');
      return {
        value: f.properties.DN,
        polygon: f.geometry.coordinates.map((r) =>
          r.slice(0, -1).map((p): [number, number] => [p[0]!, p[1]!]),
        ),
      };
    });
}

describe('polygonizeClasses against gdal_polygonize.py', { skip: gdalSkip }, () => {
  for (const [width, height, seed] of [
    [300, 200, 1],
    [257, 131, 2],
    [64, 64, 3],
  ] as const) {
    it(`random blobs ${width} x ${height} (seed ${seed}): same regions per class, same areas and boxes`, async () => {
      const path = await writeClasses({ width, height, data: blobs(width, height, seed) }, { nodata: 255 });
      const ours = await collect(path);
      ours.forEach(checkShape);
      const theirs = summarize(gdalPolygons(path));
      assert.ok(theirs.size === 4 && [...theirs.values()].every((e) => e.count > 10), 'a varied test raster');
      assert.deepEqual(summarize(ours), theirs);
    });
  }

  it("a tall raster read in bands of 7 rows (tiles of 16) gives the polygons of one band, and GDAL's", async () => {
    const width = 90;
    const height = 1500;
    const data = blobs(width, height, 7);
    // and a region from the top row to the bottom one
    for (let y = 0; y < height; y++) data[y * width] = 1;
    const path = await writeClasses({ width, height, data }, { nodata: 255, tileSize: 16 });
    const banded = await collect(path, { bandRows: 7 });
    const whole = await collect(path, { bandRows: height });
    assert.deepEqual(banded, whole);
    banded.forEach(checkShape);
    assert.ok(banded.some((p) => p.value === 1 && p.areaPx >= height));
    assert.deepEqual(summarize(banded), summarize(gdalPolygons(path)));
  });
});
