// The commands that read GeoTIFFs give the same outputs from the lossless JP2 made from the
// GeoTIFF: rgb, chip slice, chip grid, retile and inspect's statistics.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import type { Dirent } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { chipGrid } from '../../lib/chip/grid.js';
import { retileImage } from '../../lib/chip/retile.js';
import { sliceImages } from '../../lib/chip/slice-images.js';
import { openRaster, TiffRaster } from '../../lib/raster/reader.js';
import { convertToRgb } from '../../lib/raster/rgb.js';
import { sampleBandStats, sampleRasterStats } from '../../lib/raster/sample-stats.js';
import { createStorage } from '../../lib/storage/index.js';
import { tempDir } from './fixtures.js';
import { gdalinfo } from './gdal-tools.js';
import { jp2Skip, makeJp2Fixtures } from './jp2-fixtures.js';
import type { Jp2Fixture } from './jp2-fixtures.js';
import { gdalPixels } from './scene-fixtures.js';

const storage = createStorage();

async function rawPixels(path: string): Promise<Buffer> {
  return sharp(path).raw().toBuffer();
}

/** Files under a folder, recursively, relative names, sorted. */
function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

describe('commands on JPEG 2000 input', { skip: jp2Skip }, () => {
  const tmp = tempDir('jp2-commands');
  let fx: ReturnType<typeof makeJp2Fixtures>;
  /** The GeoTIFF and the JP2 of a fixture under one stem, each in its own folder. */
  const pair = (key: 'rgbTiled' | 'sceneUntiled' | 'panTlm' | 'fourTiled'): { tif: string; jp2: string } => {
    const f: Jp2Fixture = fx[key];
    const a = join(tmp.dir, `${key}-tif`);
    const b = join(tmp.dir, `${key}-jp2`);
    mkdirSync(a, { recursive: true });
    mkdirSync(b, { recursive: true });
    copyFileSync(f.tif, join(a, 'scene.tif'));
    copyFileSync(f.jp2, join(b, 'scene.jp2'));
    try {
      copyFileSync(`${f.jp2}.aux.xml`, join(b, 'scene.jp2.aux.xml'));
    } catch {
      // GDAL writes the sidecar only when it has something to keep (no-data)
    }
    return { tif: join(a, 'scene.tif'), jp2: join(b, 'scene.jp2') };
  };
  before(() => {
    fx = makeJp2Fixtures(tmp.dir);
  });
  after(() => tmp.cleanup());

  for (const [key, bands] of [
    ['rgbTiled', undefined],
    ['sceneUntiled', undefined],
    ['panTlm', undefined],
    // 4-band: the JP2 is decoded by component groups
    ['fourTiled', [4, 3, 2]],
  ] as const) {
    it(`rgb (${key}${bands ? `, bands ${bands.join(',')}` : ''}): PNG and GeoTIFF outputs from the JP2 equal those from the GeoTIFF`, async () => {
      const { tif, jp2 } = pair(key);
      const options = bands ? { bands } : {};
      const a = await convertToRgb(storage, tif, join(tmp.dir, `${key}-a.png`), options);
      const b = await convertToRgb(storage, jp2, join(tmp.dir, `${key}-b.png`), options);
      assert.deepEqual({ ...b, input: a.input, output: a.output, sidecars: a.sidecars }, a);
      if (bands) assert.deepEqual(b.bands, bands);
      assert.deepEqual(
        b.sidecars.map((f) => f.replace('-b.', '-a.')),
        a.sidecars,
      );
      assert.ok(
        (await rawPixels(join(tmp.dir, `${key}-a.png`))).equals(
          await rawPixels(join(tmp.dir, `${key}-b.png`)),
        ),
      );
      await convertToRgb(storage, tif, join(tmp.dir, `${key}-a.tif`), options);
      await convertToRgb(storage, jp2, join(tmp.dir, `${key}-b.tif`), options);
      const ia = gdalinfo(join(tmp.dir, `${key}-a.tif`));
      const ib = gdalinfo(join(tmp.dir, `${key}-b.tif`));
      assert.deepEqual(ib.size, ia.size);
      ib.geoTransform!.forEach((v, i) => assert.ok(Math.abs(v - ia.geoTransform![i]!) < 1e-6));
      assert.equal(ib.coordinateSystem?.wkt, ia.coordinateSystem?.wkt);
      assert.deepEqual(
        gdalPixels(join(tmp.dir, `${key}-b.tif`), 'uint8'),
        gdalPixels(join(tmp.dir, `${key}-a.tif`), 'uint8'),
      );
    });
  }

  it('chip slice: the same chips, pixels and georeferenced COCO from the JP2 as from the GeoTIFF', async () => {
    for (const key of ['rgbTiled', 'sceneUntiled'] as const) {
      const { tif, jp2 } = pair(key);
      const outA = join(tmp.dir, `${key}-slice-a`);
      const outB = join(tmp.dir, `${key}-slice-b`);
      const ra = await sliceImages(storage, {
        images: tif,
        out: outA,
        size: 128,
        overlap: 0.25,
        format: 'png',
      });
      const rb = await sliceImages(storage, {
        images: jp2,
        out: outB,
        size: 128,
        overlap: 0.25,
        format: 'png',
      });
      assert.equal(rb.chips, ra.chips);
      assert.ok(ra.chips > 1);
      const names = files(outA).filter((f) => f.endsWith('.png'));
      assert.deepEqual(
        files(outB).filter((f) => f.endsWith('.png')),
        names,
      );
      for (const name of names) {
        assert.ok(
          (await rawPixels(join(outB, name))).equals(await rawPixels(join(outA, name))),
          `${key} ${name}`,
        );
      }
      const coco = (dir: string) =>
        (
          JSON.parse(readFileSync(join(dir, 'annotations.json'), 'utf8')) as {
            images: Record<string, unknown>[];
          }
        ).images.map((im) => ({
          file_name: im.file_name,
          width: im.width,
          height: im.height,
          crs: im.crs,
          geotransform: im.geotransform,
        }));
      const ca = coco(outA);
      const cb = coco(outB);
      assert.equal(cb.length, ca.length);
      cb.forEach((im, i) => {
        assert.deepEqual({ ...im, geotransform: undefined }, { ...ca[i]!, geotransform: undefined });
        (im.geotransform as number[]).forEach((v, j) =>
          assert.ok(Math.abs(v - (ca[i]!.geotransform as number[])[j]!) < 1e-6),
        );
      });
    }
  });

  it('retile: the same tiles with the same pixels from the JP2 as from the GeoTIFF', async () => {
    const { tif, jp2 } = pair('panTlm');
    const outA = join(tmp.dir, 'retile-a');
    const outB = join(tmp.dir, 'retile-b');
    const ra = await retileImage(storage, tif, { out: outA, size: 250, overlap: 10 });
    const rb = await retileImage(storage, jp2, { out: outB, size: 250, overlap: 10 });
    assert.equal(rb.tiles, ra.tiles);
    const names = files(outA).filter((f) => f.endsWith('.tif'));
    assert.ok(names.length > 1);
    assert.deepEqual(
      files(outB).filter((f) => f.endsWith('.tif')),
      names,
    );
    for (const name of names) {
      assert.deepEqual(gdalPixels(join(outB, name), 'uint16'), gdalPixels(join(outA, name), 'uint16'), name);
      const ga = gdalinfo(join(outA, name));
      const gb = gdalinfo(join(outB, name));
      gb.geoTransform!.forEach((v, i) => assert.ok(Math.abs(v - ga.geoTransform![i]!) < 1e-6));
    }
  });

  it('chip grid: the same web-mercator chips from the JP2 as from the GeoTIFF', async () => {
    const { tif, jp2 } = pair('rgbTiled');
    const outA = join(tmp.dir, 'grid-a');
    const outB = join(tmp.dir, 'grid-b');
    const ra = await chipGrid(storage, { image: tif, out: outA, grid: 'webmercator', level: 17 });
    const rb = await chipGrid(storage, { image: jp2, out: outB, grid: 'webmercator', level: 17 });
    assert.equal(rb.cells, ra.cells);
    assert.deepEqual(rb.counts, ra.counts);
    const names = files(outA).filter((f) => f.endsWith('.png'));
    assert.ok(names.length > 0);
    assert.deepEqual(
      files(outB).filter((f) => f.endsWith('.png')),
      names,
    );
    for (const name of names) {
      assert.ok((await rawPixels(join(outB, name))).equals(await rawPixels(join(outA, name))), name);
    }
  });

  it("inspect's band statistics from the JP2 equal the GeoTIFF's", async () => {
    for (const key of ['rgbTiled', 'sceneUntiled'] as const) {
      const { tif, jp2 } = pair(key);
      const a = await openRaster(storage, tif);
      const b = await openRaster(storage, jp2);
      try {
        assert.ok(a instanceof TiffRaster);
        const sa = await sampleBandStats(a.tiff, { nodata: a.info.nodata });
        const sb = await sampleRasterStats(b, { nodata: b.info.nodata });
        assert.deepEqual(sb.stats, sa.stats);
        assert.equal(sb.sampledFrom, sa.sampledFrom);
      } finally {
        await a.close();
        await b.close();
      }
    }
  });
});
