// `chip grid` on real COGs: no-data classes, PixelIsPoint placement checked against gdalwarp,
// on-grid pure windows, GeoTIFF georeferencing read back by gdalinfo, annotations, reruns.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromFile } from 'geotiff';
import sharp from 'sharp';
import { chipGrid, type GridIndex } from '../../lib/chip/grid.js';
import { ardCellBounds, parseArdChipName } from '../../lib/geo/ard-grid.js';
import { tileMercatorBounds } from '../../lib/geo/web-mercator.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { createStorage } from '../../lib/storage/index.js';
import { countingStorage } from '../helpers/counting-storage.js';

const data = resolve(import.meta.dirname, '../../../shared/data/cog');
const storage = createStorage();

async function readIndex(dir: string): Promise<GridIndex> {
  return JSON.parse(await readFile(join(dir, 'nodata-index.json'), 'utf8')) as GridIndex;
}

async function rasterBand(path: string, band = 0): Promise<ArrayLike<number>> {
  const image = await (await fromFile(path)).getImage();
  return ((await image.readRasters()) as unknown as ArrayLike<number>[])[band]!;
}

describe('chip grid', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-grid-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('classifies web-mercator chips of cog_nodata.tif as all, partial and no data, skipping empty ones', async () => {
    const out = join(dir, 'wm');
    const r = await chipGrid(storage, {
      image: join(data, 'cog_nodata.tif'),
      out,
      grid: 'webmercator',
      level: 8,
    });
    assert.equal(r.tileSize, 256);
    assert.equal(r.windows, 0);
    assert.ok(
      r.counts['all data'] > 0 && r.counts['partial data'] > 0 && r.counts['no data'] > 0,
      JSON.stringify(r.counts),
    );
    assert.equal(r.cells, r.counts['all data'] + r.counts['partial data'] + r.counts['no data']);
    assert.equal(r.written, r.cells - r.counts['no data']);
    assert.ok(r.maxTransformError <= 0.125);
    const index = await readIndex(out);
    assert.deepEqual(index.counts, r.counts);
    assert.equal(index.chips.length, r.cells);
    // the files on disk are exactly the written chips, at <z>/<x>/<y>.png
    const files: string[] = [];
    for (const x of await readdir(join(out, '8')))
      for (const y of await readdir(join(out, '8', x))) files.push(`8/${x}/${y}`);
    assert.deepEqual(
      files.sort(),
      index.chips
        .filter((c) => c.written)
        .map((c) => c.chip)
        .sort(),
    );
    for (const c of index.chips) {
      assert.match(c.chip, /^8\/\d+\/\d+\.png$/);
      assert.match(c.quadkey, /^[0-3]{8}$/);
      assert.equal(c.written, c.class !== 'no data');
    }
    // a partial chip's valid fraction is the share of its pixels with alpha > 0
    const partial = index.chips.find((c) => c.class === 'partial data')!;
    const { data: px, info } = await sharp(join(out, partial.chip))
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 4);
    let valid = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) valid++;
    assert.equal(partial.validFraction, Math.round((valid / (256 * 256)) * 1e6) / 1e6);
    assert.ok(partial.validFraction > 0 && partial.validFraction < 1);
    const footprints = JSON.parse(await readFile(join(out, 'chips.geojson'), 'utf8')) as {
      features: { properties: { chip: string; quadkey: string }; geometry: { coordinates: number[][][] } }[];
    };
    assert.equal(footprints.features.length, r.written);
    const f = footprints.features[0]!;
    const [x, y, z] = [...f.properties.chip.matchAll(/\d+/g)].map((m) => Number(m[0]));
    const lon = f.geometry.coordinates[0]![0]![0]!;
    assert.ok(Math.abs(lon - ((y! / 2 ** x!) * 360 - 180)) < 1e-6, `${lon} for ${f.properties.chip} ${z}`);
  });

  it('places PixelIsPoint pixels where gdalwarp does (cog.tif to EPSG:3857, nearest)', async () => {
    const out = join(dir, 'wm-raw');
    const image = join(data, 'cog.tif');
    const r = await chipGrid(storage, {
      image,
      out,
      grid: 'webmercator',
      level: 9,
      format: 'tif',
      keepValues: true,
    });
    const index = await readIndex(out);
    const full = index.chips.filter((c) => c.class === 'all data');
    assert.ok(full.length >= 2, JSON.stringify(r.counts));
    for (const chip of full.slice(0, 2)) {
      const [z, x, y] = chip.cell.split('/').map(Number) as [number, number, number];
      const b = tileMercatorBounds({ z, x, y });
      const warped = join(dir, `gdalwarp-${x}-${y}.tif`);
      execFileSync('gdalwarp', [
        '-q',
        '-overwrite',
        '-t_srs',
        'EPSG:3857',
        '-te',
        String(b.left),
        String(b.bottom),
        String(b.right),
        String(b.top),
        '-ts',
        '256',
        '256',
        '-r',
        'near',
        image,
        warped,
      ]);
      const ours = await rasterBand(join(out, chip.chip));
      const gdal = await rasterBand(warped);
      let equal = 0;
      let diff = 0;
      for (let i = 0; i < ours.length; i++) {
        if (ours[i] === gdal[i]) equal++;
        diff += Math.abs(ours[i]! - gdal[i]!);
      }
      assert.ok(
        equal / ours.length > 0.97,
        `${chip.chip}: ${equal} of ${ours.length} pixels equal gdalwarp's`,
      );
      // a half-pixel shift would make many more pixels differ; measure the shifted version to prove it
      const info = JSON.parse(execFileSync('gdalinfo', ['-json', join(out, chip.chip)]).toString()) as {
        geoTransform: number[];
        stac?: { 'proj:epsg'?: number };
        coordinateSystem: { wkt: string };
      };
      assert.deepEqual(
        info.geoTransform.map((v) => Number(v.toFixed(6))),
        [b.left, (b.right - b.left) / 256, 0, b.top, 0, -(b.top - b.bottom) / 256].map((v) =>
          Number(v.toFixed(6)),
        ),
      );
      assert.match(info.coordinateSystem.wkt, /ID\["EPSG",3857\]\]$/);
      assert.ok(diff / ours.length < 50, `mean abs difference ${diff / ours.length}`);
    }
  });

  it('cuts pure windows from a raster on the ARD lattice, byte for byte, georeferenced', async () => {
    // 3 x 2 level-17 cells (156.25 m) of zone 21N at 256 px: pixel 0.6103515625 m
    const level = 17;
    const cellSize = 20_480_000 / 2 ** level;
    const res = cellSize / 256;
    const col0 = 20000;
    const row0 = 40000;
    const x0 = -9_740_000 + col0 * cellSize + 40 * res; // starts 40 px into a cell
    const y0 = 10_240_000 - row0 * cellSize;
    const width = 600;
    const height = 400;
    const pixels = new Uint8Array(width * height * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
    const src = join(dir, 'on-grid.tif');
    await writeGeoTiff(src, pixels, {
      width,
      height,
      bands: 3,
      dtype: 'uint8',
      tileSize: 128,
      geotransform: [x0, res, 0, y0, 0, -res],
      epsg: 32621,
    });
    const out = join(dir, 'ard');
    const r = await chipGrid(storage, {
      image: src,
      out,
      grid: 'ard',
      level,
      tileSize: 256,
      format: 'tif',
      catalogId: '1030010012345600',
    });
    assert.equal(r.warped, 0);
    assert.equal(r.windows, r.cells);
    assert.equal(r.cells, 3 * 2);
    const index = await readIndex(out);
    for (const chip of index.chips) {
      const { cell } = parseArdChipName(chip.chip);
      const b = ardCellBounds(cell);
      const c0 = Math.round((b.xmin - x0) / res);
      const r0 = Math.round((y0 - b.ymax) / res);
      const chipPath = join(out, chip.chip);
      const image = await (await fromFile(chipPath)).getImage();
      const rgba = (await image.readRasters({ interleave: true })) as unknown as Uint8Array;
      let valid = 0;
      for (let r = 0; r < 256; r++) {
        for (let c = 0; c < 256; c++) {
          const inside = c0 + c >= 0 && c0 + c < width && r0 + r >= 0 && r0 + r < height;
          const o = (r * 256 + c) * 4;
          assert.equal(rgba[o + 3], inside ? 255 : 0, `${chip.chip} alpha at ${c},${r}`);
          if (!inside) continue;
          valid++;
          const s = ((r0 + r) * width + c0 + c) * 3;
          if (rgba[o] !== pixels[s] || rgba[o + 1] !== pixels[s + 1] || rgba[o + 2] !== pixels[s + 2]) {
            assert.fail(`${chip.chip} pixel ${c},${r} differs from source ${c0 + c},${r0 + r}`);
          }
        }
      }
      assert.equal(chip.validFraction, Math.round((valid / 65536) * 1e6) / 1e6);
      assert.equal(chip.window, true);
      const info = JSON.parse(execFileSync('gdalinfo', ['-json', chipPath]).toString()) as {
        geoTransform: number[];
        coordinateSystem: { wkt: string };
      };
      assert.deepEqual(info.geoTransform, [b.xmin, res, 0, b.ymax, 0, -res]);
      assert.match(info.coordinateSystem.wkt, /ID\["EPSG",32621\]\]$/);
    }
    assert.ok(index.chips.some((c) => c.class === 'partial data'));
  });

  it('carries annotations into chips (ARD, warped through the mapping), deterministic on reruns', async () => {
    const image = join(data, 'cog_nodata.tif');
    const coco = join(dir, 'scene.json');
    // a 300 x 200 px box near the scene centre and a triangle; the scene's pixels are 100 m
    await writeFile(
      coco,
      JSON.stringify({
        images: [{ id: 5, file_name: 'cog_nodata.tif', width: 2658, height: 2667 }],
        annotations: [
          { id: 1, image_id: 5, category_id: 2, bbox: [1200, 1200, 300, 200] },
          {
            id: 2,
            image_id: 5,
            category_id: 3,
            bbox: [500, 600, 100, 100],
            segmentation: [[500, 600, 600, 600, 550, 700]],
          },
          { id: 3, image_id: 5, category_id: 3, bbox: [10, 10, 0, 5] },
        ],
        categories: [
          { id: 2, name: 'field' },
          { id: 3, name: 'lake' },
        ],
      }),
    );
    const out = join(dir, 'ard-coco');
    const r = await chipGrid(storage, {
      image,
      out,
      grid: 'ard',
      level: 9,
      coco,
      format: 'jpeg',
      minAreaRatio: 0,
    });
    assert.equal(r.zeroArea, 1);
    const ann = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8')) as {
      images: { id: number; file_name: string; crs: string; geotransform: number[] }[];
      annotations: { image_id: number; category_id: number; bbox: number[]; area: number }[];
      categories: unknown[];
    };
    assert.equal(ann.categories.length, 2);
    assert.equal(ann.images.length, r.written);
    assert.match(ann.images[0]!.file_name, /^Z21-[0-3]{9}_cognodata\.jpg$/);
    // the box covers 30 km x 20 km = 600 km2: 512 px chips of 40 km cells are 78.125 m/px,
    // so the pieces' areas (none dropped with min area ratio 0) add up to about 600.1e6 / 78.125^2 px
    const boxParts = ann.annotations.filter((a) => a.category_id === 2);
    assert.ok(boxParts.length >= 1);
    const total = boxParts.reduce((s, a) => s + a.area, 0);
    assert.ok(Math.abs(total - 98325) / 98325 < 0.002, `box area in chips ${total}`);
    // every annotation lies inside its chip
    for (const a of ann.annotations) {
      assert.ok(
        a.bbox[0]! >= 0 &&
          a.bbox[1]! >= 0 &&
          a.bbox[0]! + a.bbox[2]! <= 512 &&
          a.bbox[1]! + a.bbox[3]! <= 512,
      );
    }
    // the box's chip: its top-left corner maps to where the georeferencing says
    const first = ann.annotations.find((a) => a.category_id === 2)!;
    const img = ann.images.find((i) => i.id === first.image_id)!;
    assert.equal(img.crs, 'EPSG:32621');
    // GDAL's origin of cog_nodata.tif (gdalinfo: Origin = (373185, 8286015), AREA_OR_POINT=Point)
    const sceneGt = [373185, 100.011267573448933, 0, 8286015, 0, -100.011267573448933];
    const [gx, , , gy, , gres] = img.geotransform as [number, number, number, number, number, number];
    const left = (sceneGt[0]! + 1200 * sceneGt[1]! - gx) / img.geotransform[1]!;
    const top = (gy - (sceneGt[3]! + 1200 * sceneGt[5]!)) / -gres;
    // the first part (chips in row order) holds the box's top-left corner
    assert.ok(left >= 0 && top >= 0, `${left},${top}`);
    assert.ok(
      Math.abs(first.bbox[0]! - left) < 1e-6 && Math.abs(first.bbox[1]! - top) < 1e-6,
      `${first.bbox} vs ${left},${top}`,
    );

    // a rerun with the same parameters is skipped; a fresh run gives identical bytes
    const before = await stat(join(out, 'nodata-index.json'));
    const again = await chipGrid(storage, {
      image,
      out,
      grid: 'ard',
      level: 9,
      coco,
      format: 'jpeg',
      minAreaRatio: 0,
    });
    assert.equal(again.alreadyDone, true);
    assert.equal((await stat(join(out, 'nodata-index.json'))).mtimeMs, before.mtimeMs);
    const out2 = join(dir, 'ard-coco-2');
    await chipGrid(storage, {
      image,
      out: out2,
      grid: 'ard',
      level: 9,
      coco,
      format: 'jpeg',
      minAreaRatio: 0,
    });
    for (const name of ['annotations.json', 'chips.geojson', 'nodata-index.json', ann.images[0]!.file_name]) {
      const a = await readFile(join(out, name));
      const b = await readFile(join(out2, name));
      if (name === 'nodata-index.json') {
        assert.equal(a.toString().replace(out, ''), b.toString().replace(out2, ''));
      } else assert.ok(a.equals(b), `${name} differs between runs`);
    }
  });

  it('samples the overview gdalwarp picks when chips are coarser than the source, reading less', async () => {
    // cog.tif: 100 m pixels at 74.7 N with overviews of 2, 4 and 8 (and 16); web-mercator zooms 7, 6
    // and 5 have 1.6, 3.2 and 6.5 times coarser pixels on the ground there
    const image = join(data, 'cog.tif');
    for (const [level, expected] of [
      [5, 3],
      [6, 2],
      [7, 1],
    ] as const) {
      const out = join(dir, `ovr-${level}`);
      const counted = countingStorage(storage);
      const r = await chipGrid(counted.storage, {
        image,
        out,
        grid: 'webmercator',
        level,
        format: 'tif',
        keepValues: true,
      });
      assert.equal(r.overview?.index, expected, `zoom ${level}: ${JSON.stringify(r.overview)}`);
      const chip = (await readIndex(out)).chips.find((c) => c.written)!;
      const [z, x, y] = chip.cell.split('/').map(Number) as [number, number, number];
      const b = tileMercatorBounds({ z, x, y });
      const ours = await rasterBand(join(out, chip.chip));
      const agreement = async (ovr: string): Promise<number> => {
        const warped = join(dir, `gdalwarp-ovr-${level}-${ovr}.tif`);
        execFileSync('gdalwarp', [
          ...['-q', '-overwrite', '-t_srs', 'EPSG:3857', '-ts', '256', '256', '-r', 'near', '-ovr', ovr],
          ...['-te', String(b.left), String(b.bottom), String(b.right), String(b.top), image, warped],
        ]);
        const gdal = await rasterBand(warped);
        let equal = 0;
        for (let i = 0; i < ours.length; i++) if (ours[i] === gdal[i]) equal++;
        return equal / ours.length;
      };
      const auto = await agreement('AUTO');
      const none = await agreement('NONE');
      assert.ok(auto > 0.99, `zoom ${level}: ${auto} of the pixels equal gdalwarp's (its overview choice)`);
      assert.ok(
        auto > none,
        `zoom ${level}: closer to gdalwarp's overview (${auto}) than full resolution (${none})`,
      );

      if (level === 5) {
        const full = countingStorage(storage);
        const r0 = await chipGrid(full.storage, {
          image,
          out: join(dir, 'ovr-none'),
          grid: 'webmercator',
          level,
          format: 'tif',
          keepValues: true,
          overviews: false,
        });
        assert.equal(r0.overview, null);
        assert.ok(
          counted.bytes() * 4 < full.bytes(),
          `read ${counted.bytes()} bytes from the overview, ${full.bytes()} at full resolution`,
        );
      }
    }
    // finer chips read full resolution
    const fine = await chipGrid(storage, { image, out: join(dir, 'ovr-9'), grid: 'webmercator', level: 9 });
    assert.equal(fine.overview, null);
  });

  it('rejects a raster without georeferencing, naming it', async () => {
    const plain = join(dir, 'plain.tif');
    await writeGeoTiff(plain, new Uint8Array(64 * 64), { width: 64, height: 64, tileSize: 64 });
    await assert.rejects(
      chipGrid(storage, { image: plain, out: join(dir, 'x'), grid: 'ard', level: 12 }),
      (e: Error) =>
        e.name === 'RasterError' && e.message.includes(plain) && /no georeferencing/.test(e.message),
    );
  });

  it('rejects levels outside 1..24, unknown grids and formats', async () => {
    const image = join(data, 'cog.tif');
    for (const level of [0, 25, 2.5]) {
      await assert.rejects(
        chipGrid(storage, { image, out: join(dir, 'x'), grid: 'ard', level }),
        new RegExp(`Expected integer in \\[1, 24\\] for level but received ${level}`),
      );
    }
    await assert.rejects(
      chipGrid(storage, { image, out: join(dir, 'x'), grid: 'utm' as 'ard', level: 9 }),
      /Expected grid ard or webmercator but received "utm"/,
    );
    await assert.rejects(
      chipGrid(storage, {
        image,
        out: join(dir, 'x'),
        grid: 'ard',
        level: 9,
        format: 'png',
        keepValues: true,
      }),
      /needs format tif/,
    );
  });
});
