// The tile engine's behaviour: kinds of layer (8-bit RGB, RGBA, 4-band uint16 through the stretch,
// JPEG 2000), no-data transparency, the rendered-tile cache and its byte bound, shared concurrent
// renders, the pyramid's byte bound, s3:// by byte ranges, and clear errors for bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeError } from '../../lib/cli/errors.js';
import { crsTransform } from '../../lib/geo/crs.js';
import { tileForLngLat, tileMercatorBounds, tilesCovering } from '../../lib/geo/web-mercator.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { emptyTilePng, openTileLayer, type TileLayer } from '../../lib/serve/tiles.js';
import { createStorage } from '../../lib/storage/index.js';
import { countingStorage } from '../helpers/counting-storage.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import {
  gdalCog,
  gdal2tilesSkip,
  rgbaOf,
  UTM_ORIGIN,
  writeSmoothScene,
  writeUint16Scene,
} from './tile-fixtures.js';

const storage = createStorage();

function tilesAt(layer: TileLayer, z: number): { z: number; x: number; y: number }[] {
  const [w, s, e, n] = layer.bounds;
  return tilesCovering({ west: w, south: s, east: e, north: n }, z);
}

/** The tile and pixel (col, row) where a UTM 33N point falls at zoom z. */
function tilePixel(
  easting: number,
  northing: number,
  z: number,
): { x: number; y: number; col: number; row: number } {
  const [lon, lat] = crsTransform({ epsg: 32633, text: 'EPSG:32633' }, { epsg: 4326, text: 'CRS84' }).forward(
    easting,
    northing,
  );
  const t = tileForLngLat(lon, lat, z);
  const [mx, my] = crsTransform({ epsg: 4326, text: 'CRS84' }, { epsg: 3857, text: 'EPSG:3857' }).forward(
    lon,
    lat,
  );
  const b = tileMercatorBounds(t);
  const res = (b.right - b.left) / 256;
  return { x: t.x, y: t.y, col: Math.floor((mx - b.left) / res), row: Math.floor((b.top - my) / res) };
}

describe('tile layers', () => {
  let dir: string;
  let scene: string;
  let holed: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'serve-tiles-'));
    scene = join(dir, 'scene.tif');
    holed = join(dir, 'holed.tif');
    await writeSmoothScene(scene, 1200, 1000);
    await writeSmoothScene(holed, 1200, 1000, { nodataSquare: [500, 400, 200] });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reports bounds in CRS84 and the zoom range gdal2tiles would choose', async () => {
    const layer = await openTileLayer(storage, scene);
    try {
      assert.equal(layer.id, 'scene');
      assert.equal(layer.kind, 'rgb');
      const [w, s, e, n] = layer.bounds;
      // the scene's corners, transformed independently
      const t = crsTransform({ epsg: 32633, text: 'EPSG:32633' }, { epsg: 4326, text: 'CRS84' });
      const corners = [
        [UTM_ORIGIN[0], UTM_ORIGIN[1]],
        [UTM_ORIGIN[0] + 9600, UTM_ORIGIN[1]],
        [UTM_ORIGIN[0], UTM_ORIGIN[1] - 8000],
        [UTM_ORIGIN[0] + 9600, UTM_ORIGIN[1] - 8000],
      ].map(([x, y]) => t.forward(x!, y!));
      assert.ok(Math.abs(w - Math.min(...corners.map((c) => c[0]))) < 1e-6);
      assert.ok(Math.abs(e - Math.max(...corners.map((c) => c[0]))) < 1e-6);
      assert.ok(Math.abs(s - Math.min(...corners.map((c) => c[1]))) < 1e-6);
      assert.ok(Math.abs(n - Math.max(...corners.map((c) => c[1]))) < 1e-6);
      // 8 m at 45.3°N is 11.4 m in web mercator: zoom 13 (19.1 m) is the last not finer; the
      // scene (13.7 km in mercator metres) fits one tile at zoom 11 (one tile = 19.6 km)
      assert.equal(layer.maxZoom, 13);
      assert.equal(layer.minZoom, 11);
      assert.deepEqual(layer.source, {
        width: 1200,
        height: 1000,
        bands: 3,
        dtype: 'uint8',
        overviews: 0,
        epsg: 32633,
      });
    } finally {
      await layer.close();
    }
  });

  it('draws no-data and the outside of the raster transparent, valid pixels opaque', async () => {
    const layer = await openTileLayer(storage, holed);
    try {
      // the centre of the no-data square (source pixels 500..700, 400..600)
      const p = tilePixel(UTM_ORIGIN[0] + 600 * 8, UTM_ORIGIN[1] - 500 * 8, 14);
      const a = await rgbaOf((await layer.tile(14, p.x, p.y))!);
      const alphaAt = (col: number, row: number): number => a[(row * 256 + col) * 4 + 3]!;
      assert.equal(alphaAt(p.col, p.row), 0, 'no-data square');
      // 120 source pixels west of the square: valid
      const q = tilePixel(UTM_ORIGIN[0] + 380 * 8, UTM_ORIGIN[1] - 500 * 8, 14);
      const b = await rgbaOf((await layer.tile(14, q.x, q.y))!);
      assert.equal(b[(q.row * 256 + q.col) * 4 + 3], 255, 'valid pixel');
      // just outside the scene's west edge
      const o = tilePixel(UTM_ORIGIN[0] - 40, UTM_ORIGIN[1] - 500 * 8, 14);
      const c = await rgbaOf((await layer.tile(14, o.x, o.y))!);
      assert.equal(c[(o.row * 256 + o.col) * 4 + 3], 0, 'outside the raster');
      // a tile far away is empty, answered without decoding anything
      const before = layer.stats().blocksDecoded;
      assert.equal(await layer.tile(14, 100, 100), null);
      assert.equal(layer.stats().blocksDecoded, before);
      const empty = await rgbaOf(await emptyTilePng());
      assert.ok(empty.every((v, i) => i % 4 !== 3 || v === 0));
    } finally {
      await layer.close();
    }
  });

  it('keeps rendered tiles within the byte budget, evicting the least recently used', async () => {
    const probe = await openTileLayer(storage, scene);
    const sizes: number[] = [];
    for (const t of tilesAt(probe, 14)) {
      const png = await probe.tile(t.z, t.x, t.y);
      if (png) sizes.push(png.length);
    }
    await probe.close();
    const budget = Math.max(...sizes) * 4;
    const layer = await openTileLayer(storage, scene, { cacheBytes: budget });
    try {
      const tiles = tilesAt(layer, 14);
      for (const t of tiles) await layer.tile(t.z, t.x, t.y);
      let stats = layer.stats();
      assert.equal(stats.renders, tiles.length);
      assert.ok(stats.bytes <= budget && stats.peakBytes <= budget, JSON.stringify(stats));
      assert.ok(stats.entries >= 4 && stats.entries < tiles.length, `${stats.entries} entries`);
      // the last tile is still cached, the first was evicted
      const last = tiles.at(-1)!;
      await layer.tile(last.z, last.x, last.y);
      assert.equal(layer.stats().renders, tiles.length);
      await layer.tile(tiles[0]!.z, tiles[0]!.x, tiles[0]!.y);
      stats = layer.stats();
      assert.equal(stats.renders, tiles.length + 1);
      assert.ok(stats.bytes <= budget);
    } finally {
      await layer.close();
    }
  });

  it('renders a tile once for concurrent requests, and concurrent different tiles as sequential ones', async () => {
    const layer = await openTileLayer(storage, scene);
    const sequential = await openTileLayer(storage, scene);
    try {
      const t = tilesAt(layer, 13)[3]!;
      const same = await Promise.all(Array.from({ length: 6 }, () => layer.tile(t.z, t.x, t.y)));
      assert.equal(layer.stats().renders, 1);
      assert.ok(same.every((png) => png === same[0]));
      // an aborted request does not stop the shared render for the others
      const controller = new AbortController();
      const u = tilesAt(layer, 13)[4]!;
      const aborted = layer.tile(u.z, u.x, u.y, controller.signal);
      const kept = layer.tile(u.z, u.x, u.y);
      controller.abort();
      await assert.rejects(aborted);
      assert.ok(await kept);
      const tiles = [...tilesAt(layer, 14), ...tilesAt(layer, 12)];
      const parallel = await Promise.all(tiles.map((k) => layer.tile(k.z, k.x, k.y)));
      // a block cache of 4 blocks: concurrent tiles evict each other's blocks
      const tight = await openTileLayer(storage, scene, { blockCacheBytes: 1 });
      const squeezed = await Promise.all(tiles.map((k) => tight.tile(k.z, k.x, k.y))).finally(() =>
        tight.close(),
      );
      for (let i = 0; i < tiles.length; i++) {
        const k = tiles[i]!;
        const one = await sequential.tile(k.z, k.x, k.y);
        assert.deepEqual(
          squeezed[i] && (await rgbaOf(squeezed[i]!)),
          one && (await rgbaOf(one)),
          `${k.z}/${k.x}/${k.y} with 4 cached blocks`,
        );
        assert.deepEqual(
          parallel[i] && (await rgbaOf(parallel[i]!)),
          one && (await rgbaOf(one)),
          `${k.z}/${k.x}/${k.y}`,
        );
      }
    } finally {
      await layer.close();
      await sequential.close();
    }
  });

  it('builds a pyramid within its byte budget for a raster without overviews, and zoomed-out tiles read only it', async () => {
    const budget = 200_000;
    const layer = await openTileLayer(storage, scene, { pyramidBytes: budget });
    try {
      // 1200 x 1000 x 3 bytes: factor 8 is the first level within 3/4 of the budget (56 kB), then 16, 32
      for (const t of tilesAt(layer, 10)) await layer.tile(t.z, t.x, t.y);
      let stats = layer.stats();
      assert.ok(stats.pyramidBytes > 0 && stats.pyramidBytes <= budget, `${stats.pyramidBytes} bytes`);
      assert.deepEqual(stats.levelsUsed, [8]);
      const decoded = stats.blocksDecoded;
      // the build read every source block once (1200 x 1000 in 256 px tiles: 5 x 4)
      assert.equal(decoded, 20);
      // zoom 12 (3.4 source pixels per tile pixel) is finer than the pyramid: full resolution
      for (const t of tilesAt(layer, 12)) await layer.tile(t.z, t.x, t.y);
      stats = layer.stats();
      assert.deepEqual(stats.levelsUsed, [1, 8]);
    } finally {
      await layer.close();
    }
  });

  it('shows a raw 4-band uint16 scene through the 2-98 percentile stretch (red, green, blue = bands 3, 2, 1)', async () => {
    const file = join(dir, 'ms.tif');
    await writeUint16Scene(file, 600, 500);
    const layer = await openTileLayer(storage, file);
    try {
      assert.equal(layer.kind, 'rgb');
      const reds: number[] = [];
      const blues: number[] = [];
      for (const t of tilesAt(layer, 13)) {
        const png = await layer.tile(t.z, t.x, t.y);
        if (!png) continue;
        const a = await rgbaOf(png);
        for (let i = 0; i < 65536; i += 7) {
          if (a[i * 4 + 3] !== 255) continue;
          reds.push(a[i * 4]!);
          blues.push(a[i * 4 + 2]!);
        }
      }
      reds.sort((x, y) => x - y);
      blues.sort((x, y) => x - y);
      // stretched to the full range (raw values / 256 would stay under 10)
      assert.ok(reds[0]! <= 5 && reds.at(-1)! >= 250, `red ${reds[0]}..${reds.at(-1)}`);
      assert.ok(blues[0]! <= 5 && blues.at(-1)! >= 250, `blue ${blues[0]}..${blues.at(-1)}`);
    } finally {
      await layer.close();
    }
  });

  it('serves a raster in geographic coordinates (EPSG:4326) too', async () => {
    const file = join(dir, 'lonlat.tif');
    const data = new Uint8Array(400 * 300 * 3).fill(180);
    await writeGeoTiff(file, data, {
      width: 400,
      height: 300,
      bands: 3,
      geotransform: [13.3, 0.0001, 0, 45.3, 0, -0.0001],
      epsg: 4326,
      tileSize: 256,
    });
    const layer = await openTileLayer(storage, file);
    try {
      const [w, s, e, n] = layer.bounds;
      assert.ok(Math.abs(w - 13.3) < 1e-9 && Math.abs(e - 13.34) < 1e-9, `${w} ${e}`);
      assert.ok(Math.abs(n - 45.3) < 1e-9 && Math.abs(s - 45.27) < 1e-9, `${s} ${n}`);
      const t = tileForLngLat(13.32, 45.285, 15);
      const a = await rgbaOf((await layer.tile(15, t.x, t.y))!);
      const b = tileMercatorBounds(t);
      const [mx, my] = crsTransform({ epsg: 4326, text: 'CRS84' }, { epsg: 3857, text: 'EPSG:3857' }).forward(
        13.32,
        45.285,
      );
      const col = Math.floor(((mx - b.left) / (b.right - b.left)) * 256);
      const row = Math.floor(((b.top - my) / (b.top - b.bottom)) * 256);
      assert.deepEqual(
        Array.from(a.subarray((row * 256 + col) * 4, (row * 256 + col) * 4 + 4)),
        [180, 180, 180, 255],
      );
    } finally {
      await layer.close();
    }
  });

  it('draws the alpha band of an RGBA raster as alpha', async () => {
    const width = 512;
    const height = 512;
    const data = new Uint8Array(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      data.set([200, 100, 50, i % width < width / 2 ? 0 : 255], i * 4);
    }
    const file = join(dir, 'rgba.tif');
    await writeGeoTiff(file, data, {
      width,
      height,
      bands: 4,
      alpha: true,
      geotransform: [UTM_ORIGIN[0], 8, 0, UTM_ORIGIN[1], 0, -8],
      epsg: 32633,
      tileSize: 256,
    });
    const layer = await openTileLayer(storage, file);
    try {
      const west = tilePixel(UTM_ORIGIN[0] + 100 * 8, UTM_ORIGIN[1] - 256 * 8, 14);
      const east = tilePixel(UTM_ORIGIN[0] + 400 * 8, UTM_ORIGIN[1] - 256 * 8, 14);
      const westTile = await layer.tile(14, west.x, west.y);
      // null: the whole tile is transparent
      if (westTile) assert.equal((await rgbaOf(westTile))[(west.row * 256 + west.col) * 4 + 3], 0);
      const e = await rgbaOf((await layer.tile(14, east.x, east.y))!);
      assert.deepEqual(
        Array.from(e.subarray((east.row * 256 + east.col) * 4, (east.row * 256 + east.col) * 4 + 4)),
        [200, 100, 50, 255],
      );
    } finally {
      await layer.close();
    }
  });

  it('rejects what cannot be served with one clear line', async () => {
    const text = join(dir, 'notes.tif');
    await writeFile(text, '{"not": "a raster"}');
    await assert.rejects(openTileLayer(storage, text), (e: Error) => {
      assert.equal(e.name, 'RasterError');
      assert.match(e.message, /notes\.tif: not a TIFF file .*JSON text/);
      return true;
    });
    await assert.rejects(openTileLayer(storage, join(dir, 'missing.tif')), /missing\.tif: no such file/);
    const plain = join(dir, 'plain.tif');
    await writeGeoTiff(plain, new Uint8Array(64 * 64), { width: 64, height: 64, bands: 1 });
    await assert.rejects(openTileLayer(storage, plain), (e: Error) => {
      assert.equal(e.name, 'TileError');
      assert.match(e.message, /plain\.tif: not georeferenced/);
      return true;
    });
    const unknown = join(dir, 'unknown-crs.tif');
    await writeGeoTiff(unknown, new Uint8Array(64 * 64), {
      width: 64,
      height: 64,
      bands: 1,
      geotransform: [0, 1, 0, 0, 0, -1],
      epsg: 32699,
    });
    await assert.rejects(openTileLayer(storage, unknown, { kind: 'rgb' }), (e: Error) => {
      assert.equal(e.name, 'TileError');
      assert.match(
        e.message,
        /unknown-crs\.tif: CRS EPSG:32699 cannot be used: EPSG code 32699 is not in the EPSG database/,
      );
      return true;
    });
    await assert.rejects(
      openTileLayer(storage, scene, { kind: 'classes' }),
      /a classes layer needs one integer band; this raster has 3 uint8 bands/,
    );
    const layer = await openTileLayer(storage, scene);
    try {
      await assert.rejects(
        layer.tile(25, 0, 0),
        /scene: tile zoom 25 is out of range; expected an integer in \[0, 24\]/,
      );
      await assert.rejects(layer.tile(1.5, 0, 0), /tile zoom 1.5 is out of range/);
      await assert.rejects(
        layer.tile(3, 8, 0),
        /scene: tile 3\/8\/0 is out of range; at zoom 3 x and y are integers in \[0, 7\]/,
      );
      await assert.rejects(layer.tile(3, 0, -1), /tile 3\/0\/-1 is out of range/);
      const error = await layer.tile(30, 0, 0).catch((e: unknown) => e);
      const handled = describeError(error);
      assert.equal(handled.exitCode, 1);
      assert.doesNotMatch(handled.message, /\n|at /, 'a user error: one line, no stack');
    } finally {
      await layer.close();
    }
    await assert.rejects(layer.tile(14, 0, 0), /the tile layer is closed/);
  });

  it('serves a JPEG 2000 scene with the same pixels as its GeoTIFF', { skip: jp2Skip() }, async () => {
    const jp2 = join(dir, 'scene.jp2');
    const r = spawnSync('gdal_translate', [
      '-q',
      '-of',
      'JP2OpenJPEG',
      '-co',
      'QUALITY=100',
      '-co',
      'REVERSIBLE=YES',
      scene,
      jp2,
    ]);
    assert.equal(r.status, 0, String(r.stderr));
    const a = await openTileLayer(storage, scene);
    const b = await openTileLayer(storage, jp2);
    try {
      assert.deepEqual(b.bounds, a.bounds);
      for (const t of tilesAt(a, 13)) {
        const pa = await a.tile(t.z, t.x, t.y);
        const pb = await b.tile(t.z, t.x, t.y);
        assert.deepEqual(pb && (await rgbaOf(pb)), pa && (await rgbaOf(pa)), `${t.z}/${t.x}/${t.y}`);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

function jp2Skip(): false | string {
  const r = spawnSync('gdalinfo', ['--formats'], { encoding: 'utf8' });
  if (r.status !== 0) return 'gdalinfo not found: install gdal-bin to make the JPEG 2000 fixture';
  return /JP2OpenJPEG/.test(r.stdout) ? false : 'GDAL has no JP2OpenJPEG driver';
}

describe('tile layers on S3', () => {
  let server: S3rverHandle;
  let dir: string;
  before(async () => {
    server = await startS3rver();
    dir = await mkdtemp(join(tmpdir(), 'serve-tiles-s3-'));
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads an s3:// GeoTIFF by byte ranges and renders the tiles a local copy gives', async () => {
    const file = join(dir, 'scene.tif');
    await writeSmoothScene(file, 1200, 1000);
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 'cache') });
    const bucket = await server.createBucket();
    const uri = `s3://${bucket}/scenes/scene.tif`;
    const bytes = await readFile(file);
    await s3.writeAtomic(uri, bytes);
    const counted = countingStorage(s3);
    const remote = await openTileLayer(counted.storage, uri);
    const local = await openTileLayer(storage, file);
    try {
      assert.equal(remote.id, 'scene');
      assert.deepEqual(remote.bounds, local.bounds);
      const t = tilesAt(local, 14)[10]!;
      const a = await remote.tile(t.z, t.x, t.y);
      const b = await local.tile(t.z, t.x, t.y);
      assert.ok(a && b);
      assert.deepEqual(await rgbaOf(a), await rgbaOf(b));
      // one full-resolution tile needs a few 256 px blocks, not the file
      assert.ok(counted.bytes() < bytes.length / 3, `${counted.bytes()} of ${bytes.length} bytes read`);
    } finally {
      await remote.close();
      await local.close();
    }
  });

  it(
    'answers a zoomed-out tile of an s3:// COG from its overviews without reading full-resolution blocks',
    { skip: gdal2tilesSkip },
    async () => {
      const plain = join(dir, 'big.tif');
      const cog = join(dir, 'big-cog.tif');
      await writeSmoothScene(plain, 2400, 2000, { tileSize: 512 });
      gdalCog(plain, cog);
      const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 'cache') });
      const bucket = await server.createBucket();
      const uri = `s3://${bucket}/big-cog.tif`;
      const bytes = await readFile(cog);
      await s3.writeAtomic(uri, bytes);
      const counted = countingStorage(s3);
      const layer = await openTileLayer(counted.storage, uri);
      try {
        assert.ok(layer.source.overviews >= 3);
        const opened = counted.bytes();
        for (const t of tilesAt(layer, layer.minZoom)) await layer.tile(t.z, t.x, t.y);
        const stats = layer.stats();
        assert.ok(!stats.levelsUsed.includes(1), `levels ${stats.levelsUsed.join(',')}`);
        assert.ok(
          counted.bytes() - opened < bytes.length / 8,
          `${counted.bytes() - opened} of ${bytes.length} bytes`,
        );
      } finally {
        await layer.close();
      }
    },
  );
});
