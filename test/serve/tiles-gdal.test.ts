// Tile pixels checked against GDAL: imagery against `gdal2tiles.py --xyz -r bilinear`, one base
// zoom at a time, on a smooth UTM scene as a COG (overviews) and as a plain GeoTIFF (our pyramid);
// class rasters against gdalwarp's nearest neighbour.
//
// Tolerances, and why: gdal2tiles warps to a native-resolution web-mercator VRT by nearest
// neighbour, reads it into a 512 px buffer (nearest again) and halves that bilinearly; we sample
// the source (or its overview just finer than the tile) bilinearly once. On these waves (at most
// ~2.5 levels per source pixel) the kernels agree within 10 levels (mean under 1.5) where the tile
// is at most 2x coarser than the level read, and within 20 (mean under 3) at the coarsest zoom
// checked, where both resample 4-7 source pixels per tile pixel. Alpha is equal except on pixels
// next to an alpha edge (the raster's outline and the no-data square), where the kernels' support
// differs by a pixel.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tileForLngLat, tilesCovering } from '../../lib/geo/web-mercator.js';
import { CLASS_PALETTE } from '../../lib/serve/palette.js';
import { openTileLayer, type TileLayer } from '../../lib/serve/tiles.js';
import { createStorage } from '../../lib/storage/index.js';
import {
  gdal2tiles,
  gdal2tilesSkip,
  gdalCog,
  gdalwarpTile,
  nearAlphaEdge,
  rgbaOf,
  writeClassRaster,
  writeSmoothScene,
} from './tile-fixtures.js';

const storage = createStorage();

/** Every non-empty tile of a layer at zoom z, by `z/x/y`. */
async function ourTiles(layer: TileLayer, z: number): Promise<Map<string, Buffer>> {
  const [w, s, e, n] = layer.bounds;
  const out = new Map<string, Buffer>();
  for (const t of tilesCovering({ west: w, south: s, east: e, north: n }, z)) {
    const png = await layer.tile(t.z, t.x, t.y);
    if (png) out.set(`${t.z}/${t.x}/${t.y}`, png);
  }
  return out;
}

interface Comparison {
  max: number;
  mean: number;
  /** Pixels whose alpha differs away from alpha edges. */
  alphaOffEdge: number;
  compared: number;
}

/** Colour differences on pixels opaque in both and away from alpha edges; `shift` moves ours right by that many pixels. */
async function compare(ours: Buffer, gdalPath: string, shift = 0): Promise<Comparison> {
  const a = await rgbaOf(ours);
  const g = await rgbaOf(gdalPath);
  let max = 0;
  let sum = 0;
  let compared = 0;
  let alphaOffEdge = 0;
  for (let i = 0; i < 256 * 256; i++) {
    const x = i % 256;
    if (a[i * 4 + 3] !== g[i * 4 + 3] && !nearAlphaEdge(a, g, i)) alphaOffEdge++;
    if (x + shift > 255) continue;
    const j = i + shift;
    if (a[i * 4 + 3] !== 255 || g[j * 4 + 3] !== 255 || nearAlphaEdge(a, g, i) || nearAlphaEdge(a, g, j))
      continue;
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(a[i * 4 + c]! - g[j * 4 + c]!);
      if (d > max) max = d;
      sum += d;
      compared++;
    }
  }
  return { max, mean: sum / Math.max(1, compared), alphaOffEdge, compared };
}

describe('tiles against GDAL', { skip: gdal2tilesSkip }, () => {
  let dir: string;
  let plain: string;
  let cog: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'serve-tiles-gdal-'));
    plain = join(dir, 'scene.tif');
    cog = join(dir, 'scene-cog.tif');
    await writeSmoothScene(plain, 1200, 1000, { nodataSquare: [500, 400, 200] });
    gdalCog(plain, cog);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: { file: () => string; name: string; zooms: [number, number, number][] }[] = [
    // [zoom, max, mean]; zoom 14 is finer than the scene, 12 and 11 read the 2x and 4x overviews
    {
      name: 'COG with overviews',
      file: () => cog,
      zooms: [
        [14, 10, 1.5],
        [12, 10, 1.5],
        [11, 20, 3],
      ],
    },
    // no overviews: zoom 12 and 11 read our decimated pyramid
    {
      name: 'GeoTIFF without overviews',
      file: () => plain,
      zooms: [
        [12, 10, 1.5],
        [11, 20, 3],
      ],
    },
  ];
  for (const c of cases) {
    it(`renders the tiles gdal2tiles --xyz -r bilinear renders: ${c.name}`, async () => {
      const layer = await openTileLayer(storage, c.file());
      try {
        assert.equal(layer.kind, 'rgb');
        for (const [z, maxTol, meanTol] of c.zooms) {
          const gdal = gdal2tiles(c.file(), join(dir, `g2t-${c.name.length}-${z}`), z, 'bilinear');
          const ours = await ourTiles(layer, z);
          assert.ok(gdal.size >= 2, `zoom ${z}: gdal2tiles wrote ${gdal.size} tiles`);
          assert.deepEqual([...ours.keys()].sort(), [...gdal.keys()].sort(), `zoom ${z}: tile sets differ`);
          let shifted = 0;
          let straight = 0;
          for (const [key, path] of gdal) {
            const r = await compare(ours.get(key)!, path);
            assert.equal(
              r.alphaOffEdge,
              0,
              `${key}: ${r.alphaOffEdge} pixels differ in alpha away from edges`,
            );
            assert.ok(r.compared > 1000, `${key}: only ${r.compared} samples compared`);
            assert.ok(r.max <= maxTol, `${key}: a channel differs by ${r.max} (tolerance ${maxTol})`);
            assert.ok(
              r.mean <= meanTol,
              `${key}: mean difference ${r.mean.toFixed(3)} (tolerance ${meanTol})`,
            );
            straight += r.mean;
            shifted += (await compare(ours.get(key)!, path, 8)).mean;
          }
          // the tolerance would catch a misplacement: eight pixels off differs far more
          assert.ok(
            shifted > 2.5 * straight,
            `zoom ${z}: shifted ${shifted.toFixed(2)} vs ${straight.toFixed(2)}`,
          );
        }
        const used = layer.stats().levelsUsed;
        if (c.file() === cog) {
          assert.deepEqual(used, [1, 2, 4], 'full resolution for z14, overviews 2x and 4x for z12 and z11');
        } else {
          assert.equal(layer.stats().pyramidBytes > 0, true);
          assert.ok(
            !used.includes(1),
            `levels used ${used.join(',')}: zoomed-out tiles must not read full resolution`,
          );
        }
      } finally {
        await layer.close();
      }
    });
  }

  it('samples class rasters by nearest neighbour as gdalwarp -r near does, with the fixed palette', async () => {
    const utm = join(dir, 'classes.tif');
    await writeClassRaster(utm, 700, 600);
    const layer = await openTileLayer(storage, utm);
    try {
      assert.equal(layer.kind, 'classes');
      assert.equal(layer.palette, CLASS_PALETTE);
      for (const z of [13, 14]) {
        const gdal = gdal2tiles(utm, join(dir, `g2t-classes-${z}`), z, 'near');
        const ours = await ourTiles(layer, z);
        assert.deepEqual([...ours.keys()].sort(), [...gdal.keys()].sort(), `zoom ${z}: tile sets differ`);
        let differ = 0;
        let total = 0;
        for (const key of ours.keys()) {
          const [, x, y] = key.split('/').map(Number) as [number, number, number];
          const w = await gdalwarpTile(utm, join(dir, 'warp.tif'), z, x, y);
          const a = await rgbaOf(ours.get(key)!);
          const colour = (i: number): string =>
            (w.alpha[i] ? CLASS_PALETTE[w.values[i]!]! : [0, 0, 0, 0]).join();
          for (let i = 0; i < 256 * 256; i++) {
            total++;
            const mine = Array.from(a.subarray(i * 4, i * 4 + 4)).join();
            if (mine === colour(i)) continue;
            differ++;
            // a pixel centre within the transformers' difference of a source pixel edge: a neighbour's class
            const near: string[] = [];
            for (const d of [-257, -256, -255, -1, 1, 255, 256, 257])
              if (i + d >= 0 && i + d < 65536) near.push(colour(i + d));
            assert.ok(
              near.includes(mine),
              `${key} pixel ${i}: ${mine} is not gdalwarp's ${colour(i)} nor a neighbour's`,
            );
          }
        }
        assert.ok(differ / total < 0.001, `zoom ${z}: ${differ} of ${total} pixels differ from gdalwarp`);
      }
      // zoomed out (decimated pyramid): still only class colours, never a blend
      const allowed = new Set([1, 2, 3, 4].map((v) => CLASS_PALETTE[v]!.join()));
      for (const png of (await ourTiles(layer, 11)).values()) {
        const a = await rgbaOf(png);
        for (let i = 0; i < 65536; i++) {
          if (a[i * 4 + 3] === 0) continue;
          assert.ok(allowed.has(Array.from(a.subarray(i * 4, i * 4 + 4)).join()), `a blended colour at ${i}`);
        }
      }
    } finally {
      await layer.close();
    }
  });

  it('reads a class raster on the tiles’ own pixel lattice as plain windows, exactly equal to gdalwarp', async () => {
    const t = tileForLngLat(13.35, 45.27, 14);
    const file = join(dir, 'classes-3857.tif');
    await writeClassRaster(file, 600, 520, { onZoom: 14, x: t.x, y: t.y, offset: 37 });
    const layer = await openTileLayer(storage, file, { kind: 'classes' });
    try {
      const ours = await ourTiles(layer, 14);
      assert.ok(ours.size >= 6, `${ours.size} tiles`);
      for (const [key, png] of ours) {
        const [, x, y] = key.split('/').map(Number) as [number, number, number];
        const w = await gdalwarpTile(file, join(dir, 'warp.tif'), 14, x, y);
        const a = await rgbaOf(png);
        for (let i = 0; i < 65536; i++) {
          const expected = w.alpha[i] ? CLASS_PALETTE[w.values[i]!]! : [0, 0, 0, 0];
          assert.deepEqual(Array.from(a.subarray(i * 4, i * 4 + 4)), [...expected], `${key} pixel ${i}`);
        }
      }
    } finally {
      await layer.close();
    }
  });
});
