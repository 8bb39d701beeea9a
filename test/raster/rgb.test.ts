// `rgb` on the real files in ../shared/data and on generated scenes, checked with GDAL: the
// georeferencing GDAL reads back, and pixels against gdal_translate -ot Byte -scale.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convertToRgb } from '../../lib/raster/rgb.js';
import type { RgbResult } from '../../lib/raster/rgb.js';
import { createStorage } from '../../lib/storage/index.js';
import { startS3rver } from '../helpers/s3rver.js';
import type { S3rverHandle } from '../helpers/s3rver.js';
import { tempDir } from './fixtures.js';
import { epsgOfWkt, gdalinfo, gdalSkip } from './gdal-tools.js';
import { gdal, gdalPixels, writeScene } from './scene-fixtures.js';

const storage = createStorage();
const data = join(import.meta.dirname, '../../../shared/data');

function assertGeoTransform(
  actual: readonly number[] | undefined,
  expected: readonly number[] | undefined,
): void {
  assert.ok(actual && expected, 'both have a geotransform');
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]!) < 1e-9, `geotransform[${i}]: ${v} vs ${expected[i]}`),
  );
}

/** gdal_translate with the ranges our conversion used, as the reference for its pixels. */
function gdalScaled(input: string, out: string, r: RgbResult, dstMin: number): Uint8Array {
  const scale = r.ranges.flatMap(([lo, hi], i) => [
    `-scale_${i + 1}`,
    String(lo),
    String(hi),
    String(dstMin),
    '255',
  ]);
  gdal('gdal_translate', [
    '-q',
    '-ot',
    'Byte',
    ...r.bands.flatMap((b) => ['-b', String(b)]),
    ...scale,
    input,
    out,
  ]);
  return gdalPixels(out, 'uint8') as Uint8Array;
}

describe('rgb', { skip: gdalSkip }, () => {
  const tmp = tempDir('rgb');
  after(() => tmp.cleanup());

  it('1-band uint16 with no-data (sample_geotiff.tif): grey RGB, same CRS and geotransform, pixels as gdal_translate -scale', async () => {
    const input = join(data, 'spacenet/sample_geotiff.tif');
    const out = join(tmp.dir, 'sample.tif');
    const r = await convertToRgb(storage, input, out);
    assert.deepEqual(r.bands, [1, 1, 1]);
    assert.equal(r.stretch, 'percentile 2-98');
    assert.equal(r.nodata, 0);
    assert.equal(r.outputNodata, 0);
    const src = gdalinfo(input);
    const info = gdalinfo(out);
    assert.deepEqual(info.size, [900, 900]);
    assertGeoTransform(info.geoTransform, src.geoTransform);
    assert.equal(epsgOfWkt(info.coordinateSystem!.wkt), 32616);
    assert.deepEqual(
      info.bands.map((b) => [b.type, b.colorInterpretation, b.noDataValue]),
      [
        ['Byte', 'Red', 0],
        ['Byte', 'Green', 0],
        ['Byte', 'Blue', 0],
      ],
    );
    const ours = gdalPixels(out, 'uint8');
    const reference = gdalScaled(input, join(tmp.dir, 'sample-gdal.tif'), r, 1);
    const values = gdalPixels(input, 'uint16');
    const [lo, hi] = r.ranges[0]!;
    let compared = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      const mine = ours[i * 3]!;
      assert.equal(ours[i * 3 + 1], mine);
      if (v === 0) assert.equal(mine, 0, `no-data pixel ${i}`);
      else if (v < lo) assert.equal(mine, 1, `below-range pixel ${i} stays valid`);
      else if (v <= hi) {
        assert.equal(mine, reference[i * 3]!, `pixel ${i} (value ${v})`);
        compared++;
      } else assert.equal(mine, 255);
    }
    assert.ok(compared > 700_000);
  });

  it('PixelIsPoint COG (cog.tif): the output sits where GDAL places the input, half a pixel from the tie point', async () => {
    const input = join(data, 'cog/cog.tif');
    const out = join(tmp.dir, 'cog.tif');
    const r = await convertToRgb(storage, input, out);
    assert.match(r.sampledFrom!, /^overview /);
    const src = gdalinfo(input);
    assertGeoTransform(gdalinfo(out).geoTransform, src.geoTransform);
    assertGeoTransform(r.geotransform!, src.geoTransform);
    assert.equal(epsgOfWkt(gdalinfo(out).coordinateSystem!.wkt), 32621);
  });

  it('no-data 1 (cog_nodata.tif): excluded from statistics and written as 0', async () => {
    const input = join(data, 'cog/cog_nodata.tif');
    const out = join(tmp.dir, 'cog_nodata.tif');
    const r = await convertToRgb(storage, input, out);
    assert.equal(r.nodata, 1);
    assert.ok(r.ranges[0]![0] > 1000, `low end ${r.ranges[0]![0]} ignores the no-data 1s`);
    const values = gdalPixels(input, 'uint16');
    const ours = gdalPixels(out, 'uint8');
    let nodata = 0;
    for (let i = 0; i < values.length; i++) {
      if (values[i] === 1) {
        nodata++;
        assert.equal(ours[i * 3], 0);
      } else assert.ok(ours[i * 3]! >= 1);
    }
    assert.ok(nodata > 10_000);
  });

  it('4-band float64 (ms1.tif): bands 3,2,1 by default, within 1 of gdal_translate -scale', async () => {
    const input = join(data, 'spacenet/ms1.tif');
    const out = join(tmp.dir, 'ms1.tif');
    const r = await convertToRgb(storage, input, out);
    assert.deepEqual(r.bands, [3, 2, 1]);
    const ours = gdalPixels(out, 'uint8');
    // float inputs keep 0 for NaN: valid pixels map to 1..255
    const reference = gdalScaled(input, join(tmp.dir, 'ms1-gdal.tif'), r, 1);
    for (let i = 0; i < ours.length; i++) {
      if (reference[i]! >= 1)
        assert.ok(Math.abs(ours[i]! - reference[i]!) <= 1, `sample ${i}: ${ours[i]} vs ${reference[i]}`);
    }
    assertGeoTransform(gdalinfo(out).geoTransform, gdalinfo(input).geoTransform);
  });

  it('PNG with a world file and .aux.xml (pan1.tif): GDAL reads the same geotransform and CRS', async () => {
    const input = join(data, 'spacenet/pan1.tif');
    const out = join(tmp.dir, 'pan1.png');
    const r = await convertToRgb(storage, input, out);
    assert.deepEqual(r.sidecars, [join(tmp.dir, 'pan1.pgw'), `${out}.aux.xml`]);
    assert.equal(r.alpha, false, 'no no-data, so no alpha');
    const info = gdalinfo(out);
    assertGeoTransform(info.geoTransform, gdalinfo(input).geoTransform);
    assert.equal(epsgOfWkt(info.coordinateSystem!.wkt), 32631);
    assert.equal(info.bands.length, 3);
  });

  it('YCbCr JPEG COG (cog_rgb.tif) to JPEG: decoded as RGB, kept as is, georeferenced by its world file', async () => {
    const input = join(data, 'cog/cog_rgb.tif');
    const out = join(tmp.dir, 'cog_rgb.jpg');
    const r = await convertToRgb(storage, input, out);
    assert.equal(r.stretch, 'none');
    assert.deepEqual(r.bands, [1, 2, 3]);
    assert.ok(existsSync(join(tmp.dir, 'cog_rgb.jgw')));
    const info = gdalinfo(out);
    assert.deepEqual(info.size, [383, 232]);
    assertGeoTransform(info.geoTransform, gdalinfo(input).geoTransform);
    assert.equal(epsgOfWkt(info.coordinateSystem!.wkt), 26913);
  });

  it('8-bit RGB (rgb_unmasked.tif) is copied pixel for pixel', async () => {
    const input = join(data, 'spacenet/rgb_unmasked.tif');
    const out = join(tmp.dir, 'rgb.tif');
    await convertToRgb(storage, input, out);
    assert.deepEqual(gdalPixels(out, 'uint8'), gdalPixels(input, 'uint8'));
  });

  describe('generated scenes', () => {
    const eight = join(tmp.dir, 'eight.tif');
    const four = join(tmp.dir, 'four.tif');
    before(async () => {
      await writeScene(eight, { width: 200, height: 120, bands: 8, dtype: 'uint16' });
      await writeScene(four, {
        width: 200,
        height: 120,
        bands: 4,
        dtype: 'uint16',
        nodata: 0,
        nodataCorner: 50,
      });
    });

    it('8 bands: WorldView red, green, blue = 5,3,2 by default', async () => {
      const a = await convertToRgb(storage, eight, join(tmp.dir, 'eight-default.tif'));
      const b = await convertToRgb(storage, eight, join(tmp.dir, 'eight-532.tif'), { bands: [5, 3, 2] });
      assert.deepEqual(a.bands, [5, 3, 2]);
      assert.deepEqual(a.ranges, b.ranges);
      assert.deepEqual(
        gdalPixels(join(tmp.dir, 'eight-default.tif'), 'uint8'),
        gdalPixels(join(tmp.dir, 'eight-532.tif'), 'uint8'),
      );
    });

    it('a fixed range gives exactly the pixels of gdal_translate -scale over that range', async () => {
      const out = join(tmp.dir, 'range.tif');
      const r = await convertToRgb(storage, eight, out, {
        bands: [4, 3, 2],
        stretch: { kind: 'range', ranges: [[400, 1800]] },
      });
      assert.deepEqual(r.ranges, [
        [400, 1800],
        [400, 1800],
        [400, 1800],
      ]);
      assert.equal(r.outputNodata, null);
      assert.deepEqual(gdalPixels(out, 'uint8'), gdalScaled(eight, join(tmp.dir, 'range-gdal.tif'), r, 0));
    });

    it('--alpha: an RGBA GeoTIFF whose alpha is 0 exactly on no-data', async () => {
      const out = join(tmp.dir, 'alpha.tif');
      const r = await convertToRgb(storage, four, out, { alpha: true });
      assert.equal(r.alpha, true);
      assert.equal(r.outputNodata, null);
      const info = gdalinfo(out);
      assert.deepEqual(
        info.bands.map((b) => b.colorInterpretation),
        ['Red', 'Green', 'Blue', 'Alpha'],
      );
      const px = gdalPixels(out, 'uint8');
      for (let y = 0; y < 120; y++) {
        for (let x = 0; x < 200; x++)
          assert.equal(px[(y * 200 + x) * 4 + 3], x + y < 50 ? 0 : 255, `alpha at ${x},${y}`);
      }
    });

    it('statistics from a sample of blocks when the image is larger than the budget', async () => {
      const r = await convertToRgb(storage, four, join(tmp.dir, 'sampled.tif'), {
        sampleMaxPixels: 64 * 64 * 2,
      });
      assert.match(r.sampledFrom!, /^2 of 8 blocks of the full image 200x120$/);
    });

    it('a rotated geotransform is refused, and nothing is written', async () => {
      const rotated = join(tmp.dir, 'rotated.tif');
      await writeScene(rotated, {
        width: 40,
        height: 30,
        bands: 1,
        dtype: 'uint16',
        geotransform: [500000, 0.5, 0.1, 5000000, 0.1, -0.5],
      });
      const out = join(tmp.dir, 'rotated-out.tif');
      await assert.rejects(convertToRgb(storage, rotated, out), {
        name: 'RasterError',
        message: `${rotated}: the geotransform is rotated or sheared ([500000, 0.5, 0.1, 5000000, 0.1, -0.5]); geobatch reads north-up rasters only, so pixels would be misplaced: warp it first (e.g. gdalwarp in.tif north-up.tif)`,
      });
      assert.equal(existsSync(out), false);
    });

    describe('on S3', () => {
      let server: S3rverHandle;
      before(async () => {
        server = await startS3rver();
      });
      after(async () => {
        await server?.stop();
      });
      it('reads the input by ranges from s3:// and uploads the output whole', async () => {
        const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(tmp.dir, 'cache') });
        const bucket = await server.createBucket();
        await s3.writeAtomic(`s3://${bucket}/in/four.tif`, readFileSync(four));
        const r = await convertToRgb(s3, `s3://${bucket}/in/four.tif`, `s3://${bucket}/out/four.tif`, {
          tmpDir: tmp.dir,
        });
        const local = join(tmp.dir, 'from-s3.tif');
        await storage.writeAtomic(local, await s3.read(`s3://${bucket}/out/four.tif`));
        const reference = join(tmp.dir, 'four-local.tif');
        const l = await convertToRgb(storage, four, reference);
        assert.deepEqual(r.ranges, l.ranges);
        assert.deepEqual(gdalPixels(local, 'uint8'), gdalPixels(reference, 'uint8'));
      });
    });
  });
});
