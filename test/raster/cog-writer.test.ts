// The COG writer and `rgb --cog`, checked with GDAL: its COG validator (full check), the
// overview sizes gdalinfo reports, and overview pixels against gdal_translate -of COG's own.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { catalog } from '../../jobs/catalog.js';
import { CogWriter, overviewSizes } from '../../lib/raster/cog-writer.js';
import { GeoTiffWriteError, GeoTiffWriter } from '../../lib/raster/geotiff-writer.js';
import type { GeoTiffWriterOptions, PixelArray } from '../../lib/raster/geotiff-writer.js';
import { RasterError } from '../../lib/raster/errors.js';
import { openRaster } from '../../lib/raster/reader.js';
import { convertToRgb } from '../../lib/raster/rgb.js';
import { createStorage } from '../../lib/storage/index.js';
import { countingStorage } from '../helpers/counting-storage.js';
import { startS3rver } from '../helpers/s3rver.js';
import type { S3rverHandle } from '../helpers/s3rver.js';
import { gdalCog, gdalOverviewSizes, maxDifference, validateCog, validatorSkip } from './cog-gdal.js';
import { tempDir } from './fixtures.js';
import { gdalinfo, gdalSkip } from './gdal-tools.js';
import { gdal, gdalPixels, sceneSamples, UTM33_GT, writeScene } from './scene-fixtures.js';

const storage = createStorage();
const skip = gdalSkip || validatorSkip;

/** Writes `data` (pixel-interleaved) with the COG writer and the plain writer, in uneven bands of rows. */
async function writeBoth(
  cog: string,
  plain: string | undefined,
  data: PixelArray,
  options: GeoTiffWriterOptions & { resampling?: 'average' | 'nearest' },
): Promise<CogWriter> {
  const writer = await CogWriter.open(cog, options);
  const reference = plain ? await GeoTiffWriter.open(plain, options) : undefined;
  const rowSamples = options.width * options.bands;
  for (let y = 0; y < options.height; y += 77) {
    const rows = data.subarray(y * rowSamples, Math.min(options.height, y + 77) * rowSamples);
    await writer.writeRows(rows);
    await reference?.writeRows(rows);
  }
  await writer.close();
  await reference?.close();
  return writer;
}

/** Overview `index` (0: the largest) of a file as GDAL decodes it. */
function overview(path: string, index: number, dtype: 'uint8' | 'uint16'): PixelArray {
  return gdalPixels(path, dtype, ['-ovr', String(index)]);
}

describe('COG writer', { skip }, () => {
  const tmp = tempDir('cog');
  after(() => tmp.cleanup());

  it('overview sizes halve (rounded down) until one tile, as GDAL COG', () => {
    assert.deepEqual(overviewSizes(1001, 777, 256), [
      [500, 388],
      [250, 194],
    ]);
    assert.deepEqual(overviewSizes(600, 257, 256), [
      [300, 128],
      [150, 64],
    ]);
    assert.deepEqual(overviewSizes(512, 512, 512), []);
  });

  it('rgb --cog of a scene with no-data: valid COG (full check), LAYOUT=COG, overviews as GDAL average within 1, full resolution identical to plain rgb', async () => {
    const input = join(tmp.dir, 'scene.tif');
    await writeScene(input, {
      width: 1301,
      height: 903,
      bands: 4,
      dtype: 'uint16',
      nodataCorner: 400,
      nodata: 0,
    });
    const cog = join(tmp.dir, 'scene-cog.tif');
    const plain = join(tmp.dir, 'scene-plain.tif');
    const r = await convertToRgb(storage, input, cog, { cog: true, tileSize: 256 });
    const p = await convertToRgb(storage, input, plain, { tileSize: 256 });
    assert.equal(r.cog, true);
    assert.equal(r.outputNodata, 0);
    validateCog(cog);
    const info = gdalinfo(cog);
    assert.equal(info.metadata?.IMAGE_STRUCTURE?.LAYOUT, 'COG');
    assert.deepEqual(info.geoTransform, gdalinfo(plain).geoTransform);
    assert.deepEqual(
      info.bands.map((b) => b.noDataValue),
      [0, 0, 0],
    );
    const sizes = gdalOverviewSizes(cog);
    assert.deepEqual(sizes, overviewSizes(1301, 903, 256));
    assert.deepEqual(sizes, [
      [650, 451],
      [325, 225],
      [162, 112],
    ]);
    assert.deepEqual(gdalPixels(cog, 'uint8'), gdalPixels(plain, 'uint8'));
    assert.deepEqual(r.ranges, p.ranges);
    const reference = join(tmp.dir, 'scene-gdal.tif');
    gdalCog(plain, reference, 'AVERAGE', 256);
    assert.deepEqual(gdalOverviewSizes(reference), sizes);
    for (let i = 0; i < sizes.length; i++) {
      const diff = maxDifference(overview(cog, i, 'uint8'), overview(reference, i, 'uint8'));
      assert.ok(diff <= 1, `overview ${i}: differs from GDAL's by ${diff}`);
    }
  });

  it('alpha: every band averaged over the pixels with alpha > 0, all-transparent windows 0, as GDAL within 1', async () => {
    const input = join(tmp.dir, 'alpha-in.tif');
    await writeScene(input, {
      width: 700,
      height: 530,
      bands: 3,
      dtype: 'uint16',
      nodataCorner: 300,
      nodata: 0,
    });
    const cog = join(tmp.dir, 'alpha-cog.tif');
    const plain = join(tmp.dir, 'alpha-plain.tif');
    await convertToRgb(storage, input, cog, { cog: true, alpha: true, tileSize: 256 });
    await convertToRgb(storage, input, plain, { alpha: true, tileSize: 256 });
    validateCog(cog);
    assert.equal(gdalinfo(cog).bands[3]?.colorInterpretation, 'Alpha');
    const reference = join(tmp.dir, 'alpha-gdal.tif');
    gdalCog(plain, reference, 'AVERAGE', 256);
    const sizes = gdalOverviewSizes(cog);
    assert.deepEqual(sizes, gdalOverviewSizes(reference));
    assert.equal(sizes.length, 2);
    for (let i = 0; i < sizes.length; i++) {
      const diff = maxDifference(overview(cog, i, 'uint8'), overview(reference, i, 'uint8'));
      assert.ok(diff <= 1, `overview ${i}: differs from GDAL's by ${diff}`);
    }
  });

  it('uint16, 4 bands, BigTIFF, band names, predictor, nearest: valid COG, overviews exactly GDAL nearest, metadata kept', async () => {
    const width = 1100;
    const height = 650;
    const data = sceneSamples({ width, height, bands: 4, dtype: 'uint16', seed: 3 });
    const cog = join(tmp.dir, 'u16-cog.tif');
    const plain = join(tmp.dir, 'u16-plain.tif');
    const bandNames = ['blue', 'green', 'red', 'nir'];
    await writeBoth(cog, plain, data, {
      width,
      height,
      bands: 4,
      dtype: 'uint16',
      tileSize: 256,
      bigTiff: true,
      bandNames,
      nodata: 65535,
      geotransform: UTM33_GT,
      epsg: 32633,
      resampling: 'nearest',
    });
    validateCog(cog);
    assert.equal(readFileSync(cog).readUInt16LE(2), 43, 'BigTIFF');
    const info = gdalinfo(cog);
    assert.deepEqual(
      info.bands.map((b) => [b.description, b.noDataValue]),
      bandNames.map((n) => [n, 65535]),
    );
    assert.equal(info.metadata?.IMAGE_STRUCTURE?.PREDICTOR, '2');
    assert.deepEqual(gdalPixels(cog, 'uint16'), gdalPixels(plain, 'uint16'));
    const reference = join(tmp.dir, 'u16-gdal.tif');
    gdalCog(plain, reference, 'NEAREST', 256);
    const sizes = gdalOverviewSizes(cog);
    assert.deepEqual(sizes, gdalOverviewSizes(reference));
    for (let i = 0; i < sizes.length; i++) {
      assert.deepEqual(overview(cog, i, 'uint16'), overview(reference, i, 'uint16'), `overview ${i}`);
    }
  });

  it("the project's reader sees the overviews and decodes them as GDAL does", async () => {
    const cog = join(tmp.dir, 'scene-cog.tif');
    const raster = await openRaster(storage, cog);
    try {
      const sizes = gdalOverviewSizes(cog);
      assert.equal(raster.overviewIndices.length, sizes.length);
      for (let i = 0; i < sizes.length; i++) {
        const level = await raster.level(raster.overviewIndices[i]!);
        assert.deepEqual([level.width, level.height], sizes[i]);
        const ours = await readLevel(raster, raster.overviewIndices[i]!);
        assert.deepEqual(ours, overview(cog, i, 'uint8'), `overview ${i}`);
      }
    } finally {
      await raster.close();
    }
  });

  describe('on S3', () => {
    let server: S3rverHandle;
    before(async () => {
      server = await startS3rver();
    });
    after(async () => {
      await server?.stop();
    });
    it('rgb --cog to s3:// uploads the COG last; read back by byte ranges, the smallest overview costs a fraction of the file', async () => {
      const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(tmp.dir, 'cache') });
      const bucket = await server.createBucket();
      const input = join(tmp.dir, 'scene.tif');
      const uri = `s3://${bucket}/out/scene.tif`;
      await convertToRgb(s3, input, uri, { cog: true, tileSize: 256, tmpDir: tmp.dir });
      const local = join(tmp.dir, 'scene-cog.tif');
      const size = (await s3.stat(uri))?.size ?? 0;
      assert.equal(size, readFileSync(local).length);
      const counting = countingStorage(s3);
      const raster = await openRaster(counting.storage, uri);
      try {
        const smallest = raster.overviewIndices[raster.overviewIndices.length - 1]!;
        const pixels = await readLevel(raster, smallest);
        assert.deepEqual(pixels, overview(local, raster.overviewIndices.length - 1, 'uint8'));
      } finally {
        await raster.close();
      }
      assert.ok(counting.bytes() < size / 10, `read ${counting.bytes()} of ${size} bytes`);
      assert.deepEqual(
        readdirSync(tmp.dir).filter((f) => f.startsWith('geobatch-out-')),
        [],
      );
    });
  });

  it('abort mid-write, and close before every row, leave nothing behind; bad options give one clear error', async () => {
    const dir = join(tmp.dir, 'abort');
    gdal('mkdir', ['-p', dir]);
    const width = 900;
    const height = 700;
    const data = sceneSamples({ width, height, bands: 3, dtype: 'uint8' });
    const controller = new AbortController();
    const writer = await CogWriter.open(join(dir, 'a.tif'), {
      width,
      height,
      bands: 3,
      dtype: 'uint8',
      tileSize: 256,
      signal: controller.signal,
    });
    await writer.writeRows(data.subarray(0, 300 * width * 3) as Uint8Array);
    assert.ok(readdirSync(dir).length > 0, 'scratch files while writing');
    controller.abort(new Error('stop'));
    await assert.rejects(writer.writeRows(data.subarray(300 * width * 3) as Uint8Array), /stop/);
    await writer.abort();
    assert.deepEqual(readdirSync(dir), []);

    const short = await CogWriter.open(join(dir, 'b.tif'), { width, height, bands: 3, dtype: 'uint8' });
    await short.writeRows(data.subarray(0, 100 * width * 3) as Uint8Array);
    await assert.rejects(short.close(), /close\(\) after 100 of 700 rows/);
    assert.deepEqual(readdirSync(dir), []);

    const small = join(tmp.dir, 'small.tif');
    await writeScene(small, { width: 64, height: 48, bands: 3, dtype: 'uint8' });
    await assert.rejects(
      CogWriter.open(join(dir, 'c.tif'), {
        width,
        height,
        bands: 3,
        dtype: 'uint8',
        resampling: 'cubic' as 'average',
      }),
      (e: Error) =>
        e instanceof GeoTiffWriteError &&
        e.message ===
          `COG '${join(dir, 'c.tif')}': expected 'resampling' to be one of average, nearest but received cubic`,
    );
    await assert.rejects(
      convertToRgb(storage, small, join(dir, 'x.png'), { cog: true }),
      (e: Error) => e instanceof RasterError && /--cog: .*x\.png is written as PNG/.test(e.message),
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  it("the rgb job's cog parameter: false by default, true for GeoTIFF, refused with PNG naming the field", () => {
    const params = catalog.rgb.params;
    assert.equal((params.parse({}) as { cog: boolean }).cog, false);
    assert.equal((params.parse({ cog: true }) as { cog: boolean }).cog, true);
    const bad = params.safeParse({ cog: true, format: 'png' });
    assert.equal(bad.success, false);
    assert.deepEqual(
      bad.error?.issues.map((i) => [i.path.join('.'), i.message]),
      [['cog', "'cog' applies to format 'gtiff' only"]],
    );
  });
});

/** Every pixel of level `index` read through the project's reader, pixel-interleaved uint8. */
async function readLevel(raster: Awaited<ReturnType<typeof openRaster>>, index: number): Promise<Uint8Array> {
  const level = await raster.level(index);
  const bands = [...Array(level.bands).keys()];
  const out = new Uint8Array(level.width * level.height * level.bands);
  await level.readBlocks(level.blocksInRows(0, level.height), bands, (block) => {
    block.bands.forEach((view, b) => {
      for (let y = 0; y < block.height; y++) {
        for (let x = 0; x < block.width; x++) {
          const v = view.data[view.offset + y * view.rowStride + x * view.pixelStride]!;
          out[((block.row + y) * level.width + block.col + x) * level.bands + b] = v;
        }
      }
    });
  });
  return out;
}
