import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromFile } from 'geotiff';
import sharp from 'sharp';
import type { GeoTransform } from '../../lib/geo/affine.js';
import {
  GeoTiffWriter,
  RASTER_DTYPES,
  dtypeOfArray,
  needsBigTiff,
  writeGeoTiff,
} from '../../lib/raster/geotiff-writer.js';
import type { GeoTiffWriterOptions, PixelArray, RasterDType } from '../../lib/raster/geotiff-writer.js';
import { bytesOf, samples, tempDir } from './fixtures.js';

const UTM_GT: GeoTransform = [600000, 0.5, 0, 5340000, 0, -0.5];
const SAMPLE_FORMAT: Record<RasterDType, number> = {
  uint8: 1,
  uint16: 1,
  int16: 2,
  uint32: 1,
  int32: 2,
  float32: 3,
  float64: 3,
};
const BITS: Record<RasterDType, number> = {
  uint8: 8,
  uint16: 16,
  int16: 16,
  uint32: 32,
  int32: 32,
  float32: 32,
  float64: 64,
};

async function readBack(path: string) {
  const tiff = await fromFile(path);
  try {
    const image = await tiff.getImage();
    const raster = (await image.readRasters({ interleave: true })) as unknown as PixelArray;
    return {
      width: image.getWidth(),
      height: image.getHeight(),
      bands: image.getSamplesPerPixel(),
      tileWidth: image.getTileWidth(),
      sampleFormat: image.getSampleFormat(),
      bits: image.getBitsPerSample(),
      origin: image.fileDirectory.hasTag('ModelTiepoint') ? image.getOrigin() : undefined,
      resolution: image.fileDirectory.hasTag('ModelPixelScale') ? image.getResolution() : undefined,
      geoKeys: image.getGeoKeys(),
      nodata: image.getGDALNoData(),
      raster,
      fileDirectory: image.fileDirectory,
    };
  } finally {
    await tiff.close();
  }
}

let tmp: { dir: string; cleanup: () => void };
before(() => (tmp = tempDir('writer')));
after(() => tmp.cleanup());

describe('round trip through geotiff.js: every dtype x 1/3/4/8 bands, sizes not a multiple of the tile', () => {
  let seed = 1;
  for (const dtype of RASTER_DTYPES) {
    for (const bands of [1, 3, 4, 8]) {
      const width = 300;
      const height = 170;
      const s = seed++;
      it(`${dtype} x ${bands} band(s)`, async () => {
        const path = join(tmp.dir, `rt-${dtype}-${bands}.tif`);
        const data = samples(dtype, width * height * bands, s);
        const nodata = dtype.startsWith('float') ? -9999 : dtype === 'int16' || dtype === 'int32' ? -1 : 0;
        await writeGeoTiff(path, data, {
          width,
          height,
          bands,
          tileSize: 256,
          geotransform: UTM_GT,
          epsg: 32633,
          nodata,
        });
        const back = await readBack(path);
        assert.equal(back.width, width);
        assert.equal(back.height, height);
        assert.equal(back.bands, bands);
        assert.equal(back.tileWidth, 256);
        assert.equal(back.sampleFormat, SAMPLE_FORMAT[dtype]);
        assert.equal(back.bits, BITS[dtype]);
        assert.equal(dtypeOfArray(back.raster), dtype);
        assert.deepEqual(back.origin, [600000, 5340000, 0]);
        assert.deepEqual(back.resolution, [0.5, -0.5, 0]);
        assert.equal(back.geoKeys?.ProjectedCSTypeGeoKey, 32633);
        assert.equal(back.geoKeys?.GTRasterTypeGeoKey, 1);
        assert.equal(back.nodata, nodata);
        assert.ok(bytesOf(back.raster).equals(bytesOf(data)), 'pixel values differ');
      });
    }
  }
});

describe('writer layouts', () => {
  const layouts: [
    string,
    Partial<GeoTiffWriterOptions> & { width: number; height: number; bands: number; dtype: RasterDType },
  ][] = [
    ['default 512 tiles, image smaller than one tile', { width: 100, height: 60, bands: 2, dtype: 'uint16' }],
    ['512 tiles, 2 x 3 tiles with ragged edges', { width: 1100, height: 600, bands: 1, dtype: 'uint8' }],
    ['16 px tiles', { width: 50, height: 33, bands: 3, dtype: 'uint8', tileSize: 16 }],
    [
      'no compression',
      { width: 77, height: 91, bands: 4, dtype: 'uint16', compression: 'none', tileSize: 32 },
    ],
    [
      'deflate without predictor',
      { width: 77, height: 91, bands: 2, dtype: 'int32', predictor: false, tileSize: 64 },
    ],
    ['deflate level 1', { width: 77, height: 91, bands: 1, dtype: 'float32', deflateLevel: 1, tileSize: 64 }],
    [
      'BigTIFF on request',
      { width: 130, height: 70, bands: 4, dtype: 'uint16', bigTiff: true, tileSize: 64 },
    ],
    ['one pixel', { width: 1, height: 1, bands: 1, dtype: 'float64' }],
  ];
  for (const [name, options] of layouts) {
    it(name, async () => {
      const path = join(tmp.dir, `layout-${name.replace(/\W+/g, '-')}.tif`);
      const data = samples(options.dtype, options.width * options.height * options.bands, 99);
      await writeGeoTiff(path, data, options);
      const back = await readBack(path);
      assert.equal(back.width, options.width);
      assert.equal(back.height, options.height);
      assert.equal(back.bands, options.bands);
      assert.ok(bytesOf(back.raster).equals(bytesOf(data)), 'pixel values differ');
      const header = readFileSync(path).subarray(0, 4);
      assert.equal(header.toString('latin1', 0, 2), 'II');
      assert.equal(header.readUInt16LE(2), options.bigTiff === true ? 43 : 42);
    });
  }

  it('per-band arrays give the same file as pixel-interleaved data', async () => {
    const [width, height, bands] = [123, 45, 3];
    const data = samples('int16', width * height * bands, 5) as Int16Array;
    const perBand = Array.from({ length: bands }, (_, b) => data.filter((_v, i) => i % bands === b));
    const a = join(tmp.dir, 'interleaved.tif');
    const b = join(tmp.dir, 'per-band.tif');
    await writeGeoTiff(a, data, { width, height, bands, tileSize: 32 });
    await writeGeoTiff(b, perBand, { width, height, tileSize: 32 });
    assert.ok(readFileSync(a).equals(readFileSync(b)));
  });

  it('writeRows in uneven chunks gives the same file as writeTileRow', async () => {
    const [width, height, bands] = [90, 75, 2];
    const data = samples('uint16', width * height * bands, 6) as Uint16Array;
    const a = join(tmp.dir, 'by-tile-row.tif');
    await writeGeoTiff(a, data, { width, height, bands, tileSize: 32 });
    const b = join(tmp.dir, 'by-rows.tif');
    const writer = await GeoTiffWriter.open(b, { width, height, bands, dtype: 'uint16', tileSize: 32 });
    let row = 0;
    for (const rows of [1, 40, 3, 20, 11]) {
      await writer.writeRows(data.subarray(row * width * bands, (row + rows) * width * bands));
      row += rows;
    }
    assert.equal(row, height);
    await writer.close();
    assert.ok(readFileSync(a).equals(readFileSync(b)));
  });

  it('a full-height last tile row is accepted and its extra rows ignored', async () => {
    const [width, height] = [40, 40];
    const data = samples('uint8', width * height, 7);
    const path = join(tmp.dir, 'padded-last.tif');
    const writer = await GeoTiffWriter.open(path, { width, height, bands: 1, dtype: 'uint8', tileSize: 32 });
    await writer.writeTileRow(0, data.subarray(0, 32 * width) as Uint8Array);
    const last = new Uint8Array(32 * width);
    last.set(data.subarray(32 * width));
    await writer.writeTileRow(1, last);
    await writer.close();
    assert.ok(bytesOf((await readBack(path)).raster).equals(bytesOf(data)));
  });

  it('the caller may reuse its buffer as soon as writeTileRow resolves', async () => {
    const [width, height] = [64, 96];
    const data = samples('uint16', width * height, 8) as Uint16Array;
    const path = join(tmp.dir, 'reuse.tif');
    const writer = await GeoTiffWriter.open(path, { width, height, bands: 1, dtype: 'uint16', tileSize: 32 });
    const scratch = new Uint16Array(32 * width);
    for (let t = 0; t < writer.tileRows; t++) {
      scratch.set(data.subarray(t * 32 * width, (t + 1) * 32 * width));
      await writer.writeTileRow(t, scratch);
      scratch.fill(12345);
    }
    await writer.close();
    assert.ok(bytesOf((await readBack(path)).raster).equals(bytesOf(data)));
  });

  it('same input, same bytes', async () => {
    const data = samples('uint16', 200 * 150 * 4, 9);
    const meta = {
      width: 200,
      height: 150,
      bands: 4,
      tileSize: 64,
      geotransform: UTM_GT,
      epsg: 32633,
      nodata: 0,
    };
    await writeGeoTiff(join(tmp.dir, 'same-a.tif'), data, meta);
    await writeGeoTiff(join(tmp.dir, 'same-b.tif'), data, meta);
    assert.ok(readFileSync(join(tmp.dir, 'same-a.tif')).equals(readFileSync(join(tmp.dir, 'same-b.tif'))));
  });
});

describe('georeferencing tags', () => {
  it('EPSG:4326 is written as a geographic CRS', async () => {
    const path = join(tmp.dir, 'geographic.tif');
    await writeGeoTiff(path, new Uint8Array(20 * 10), {
      width: 20,
      height: 10,
      geotransform: [16.3, 0.001, 0, 48.2, 0, -0.001],
      epsg: 4326,
    });
    const back = await readBack(path);
    assert.equal(back.geoKeys?.GTModelTypeGeoKey, 2);
    assert.equal(back.geoKeys?.GeographicTypeGeoKey, 4326);
    assert.equal(back.geoKeys?.ProjectedCSTypeGeoKey, undefined);
    assert.deepEqual(back.origin, [16.3, 48.2, 0]);
  });

  it('a rotated geotransform is written as ModelTransformation', async () => {
    const path = join(tmp.dir, 'rotated.tif');
    const gt: GeoTransform = [1000, 0.4, 0.3, 2000, 0.3, -0.4];
    await writeGeoTiff(path, new Uint8Array(20 * 10), {
      width: 20,
      height: 10,
      geotransform: gt,
      epsg: 32633,
    });
    const back = await readBack(path);
    const matrix = await back.fileDirectory.loadValue('ModelTransformation');
    assert.deepEqual(
      Array.from(matrix as ArrayLike<number>),
      [0.4, 0.3, 0, 1000, 0.3, -0.4, 0, 2000, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    assert.equal(back.fileDirectory.hasTag('ModelTiepoint'), false);
  });

  it('NaN nodata for floats', async () => {
    const path = join(tmp.dir, 'nan-nodata.tif');
    await writeGeoTiff(path, new Float32Array(16), { width: 4, height: 4, nodata: Number.NaN });
    assert.ok(Number.isNaN((await readBack(path)).nodata));
  });

  it('no geotransform and no EPSG: a plain TIFF without geo tags', async () => {
    const path = join(tmp.dir, 'plain.tif');
    await writeGeoTiff(path, new Uint8Array(16), { width: 4, height: 4 });
    const back = await readBack(path);
    assert.equal(back.geoKeys, null);
    assert.equal(back.fileDirectory.hasTag('ModelPixelScale'), false);
    assert.equal(back.nodata, null);
  });
});

describe('sharp reads what we write', () => {
  // sharp takes 4 samples as grey + alpha + 2 and, left alone, converts them to 6 sRGB channels
  // (GDAL's own 4-band files do the same): asking for grey16 keeps the 4 bands as they are.
  it('4-band uint16 (B,G,R,NIR like WorldView) keeps 4 channels and the values with toColourspace(grey16)', async () => {
    const [width, height, bands] = [90, 70, 4];
    const data = samples('uint16', width * height * bands, 11) as Uint16Array;
    const path = join(tmp.dir, 'sharp-4band.tif');
    await writeGeoTiff(path, data, { width, height, bands, tileSize: 32, nodata: 0 });
    const { data: raw, info } = await sharp(path)
      .toColourspace('grey16')
      .raw({ depth: 'ushort' })
      .toBuffer({ resolveWithObject: true });
    assert.equal(info.channels, 4);
    assert.equal(info.width, width);
    assert.ok(raw.equals(bytesOf(data)));
  });
  it('3-band uint8 is RGB', async () => {
    const data = samples('uint8', 40 * 30 * 3, 12);
    const path = join(tmp.dir, 'sharp-rgb.tif');
    await writeGeoTiff(path, data, { width: 40, height: 30, bands: 3, tileSize: 16 });
    const meta = await sharp(path).metadata();
    assert.equal(meta.space, 'srgb');
    assert.equal(meta.channels, 3);
    const raw = await sharp(path).raw().toBuffer();
    assert.ok(raw.equals(bytesOf(data)));
  });
});

describe('invalid options fail with a message naming the field', () => {
  const base: GeoTiffWriterOptions = { width: 10, height: 10, bands: 1, dtype: 'uint8' };
  const cases: [Partial<Record<keyof GeoTiffWriterOptions, unknown>>, RegExp][] = [
    [{ width: 0 }, /expected integer >= 1 for 'width' but received 0/],
    [{ height: 2.5 }, /expected integer >= 1 for 'height' but received 2.5/],
    [{ bands: 0 }, /expected integer in 1..65535 for 'bands' but received 0/],
    [
      { dtype: 'int8' },
      /expected 'dtype' to be one of uint8, uint16, int16, uint32, int32, float32, float64 but received int8/,
    ],
    [{ tileSize: 100 }, /expected 'tileSize' to be a multiple of 16 but received 100/],
    [{ tileSize: 8 }, /expected integer in 16..65520 for 'tileSize' but received 8/],
    [{ compression: 'lzw' }, /expected 'compression' to be one of deflate, none but received lzw/],
    [{ dtype: 'float32', predictor: true }, /'predictor' applies to integer dtypes only, not float32/],
    [{ compression: 'none', predictor: true }, /'predictor' needs compression 'deflate'/],
    [{ deflateLevel: 0 }, /expected integer in 1..9 for 'deflateLevel' but received 0/],
    [{ geotransform: [0, 1, 0, 0, 0] }, /expected 'geotransform' to be 6 finite numbers/],
    [{ geotransform: [0, 0, 0, 0, 0, -1] }, /'geotransform' \[0, 0, 0, 0, 0, -1\] is singular/],
    [{ epsg: 12 }, /expected integer in 1024..32766 for 'epsg' but received 12/],
    [{ nodata: -1 }, /expected 'nodata' to be an integer in 0..255 for uint8 but received -1/],
    [{ nodata: 0.5 }, /expected 'nodata' to be an integer in 0..255 for uint8 but received 0.5/],
    [{ bandNames: ['a', 'b'] }, /expected 1 'bandNames' but received 2/],
  ];
  for (const [patch, message] of cases) {
    it(JSON.stringify(patch), async () => {
      const path = join(tmp.dir, 'invalid.tif');
      await assert.rejects(GeoTiffWriter.open(path, { ...base, ...patch } as GeoTiffWriterOptions), message);
      assert.ok(!existsSync(path));
    });
  }
  it('a missing folder is reported with the file name', async () => {
    await assert.rejects(
      GeoTiffWriter.open(join(tmp.dir, 'no-such-dir', 'x.tif'), base),
      /GeoTIFF '.*no-such-dir\/x.tif': cannot create a file in its folder: ENOENT/,
    );
  });
  it('errors name the file', async () => {
    await assert.rejects(
      GeoTiffWriter.open('/x/y.tif', { ...base, width: -1 }),
      /^RasterError: GeoTIFF '\/x\/y.tif': /,
    );
  });
});

describe('nothing partial is left behind', () => {
  function leftovers(dir: string): string[] {
    return readdirSync(dir).filter((f) => /^\..+\.tmp-[0-9a-f]{12}$/.test(f));
  }

  it('abort() removes the temporary file and leaves an existing destination untouched', async () => {
    const { dir, cleanup } = tempDir('abort');
    try {
      const path = join(dir, 'out.tif');
      writeFileSync(path, 'previous');
      const writer = await GeoTiffWriter.open(path, {
        width: 64,
        height: 64,
        bands: 1,
        dtype: 'uint8',
        tileSize: 32,
      });
      await writer.writeTileRow(0, new Uint8Array(32 * 64));
      assert.equal(leftovers(dir).length, 1);
      await writer.abort();
      await writer.abort();
      assert.deepEqual(leftovers(dir), []);
      assert.equal(readFileSync(path, 'utf8'), 'previous');
      await assert.rejects(writer.writeTileRow(1, new Uint8Array(32 * 64)), /the writer is aborted/);
    } finally {
      cleanup();
    }
  });

  const misuse: [string, (w: GeoTiffWriter<'uint8'>) => Promise<void>, RegExp][] = [
    [
      'tile rows out of order',
      (w) => w.writeTileRow(1, new Uint8Array(32 * 64)),
      /expected tile row 0 \(of 2\) but received 1/,
    ],
    [
      'wrong length',
      (w) => w.writeTileRow(0, new Uint8Array(10)),
      /expected tile row 0 to hold 32 rows x 64 px x 1 bands = 2048 samples but received 10/,
    ],
    [
      'wrong array type',
      (w) => w.writeTileRow(0, new Uint16Array(32 * 64) as unknown as Uint8Array),
      /expected a Uint8Array for dtype uint8 but received Uint16Array/,
    ],
    [
      'close() before every tile row',
      (w) => w.close(),
      /close\(\) after 0 of 2 tile rows; every tile row must be written/,
    ],
    [
      'too many rows',
      (w) => w.writeRows(new Uint8Array(65 * 64)),
      /writeRows\(\) received more rows than the image height 64/,
    ],
    [
      'partial rows',
      (w) => w.writeRows(new Uint8Array(100)),
      /expected writeRows\(\) data to hold whole rows of 64 samples but received 100/,
    ],
  ];
  for (const [name, act, message] of misuse) {
    it(`${name}: rejects, removes the temporary file, writes no destination`, async () => {
      const { dir, cleanup } = tempDir('misuse');
      try {
        const path = join(dir, 'out.tif');
        const writer = await GeoTiffWriter.open(path, {
          width: 64,
          height: 64,
          bands: 1,
          dtype: 'uint8',
          tileSize: 32,
        });
        await assert.rejects(act(writer), message);
        assert.deepEqual(readdirSync(dir), []);
      } finally {
        cleanup();
      }
    });
  }

  it('an AbortSignal removes the temporary file and later calls reject with its reason', async () => {
    const { dir, cleanup } = tempDir('signal');
    try {
      const controller = new AbortController();
      const path = join(dir, 'out.tif');
      const writer = await GeoTiffWriter.open(path, {
        width: 64,
        height: 64,
        bands: 1,
        dtype: 'uint8',
        tileSize: 32,
        signal: controller.signal,
      });
      await writer.writeTileRow(0, new Uint8Array(32 * 64));
      controller.abort(new Error('stop now'));
      await assert.rejects(writer.writeTileRow(1, new Uint8Array(32 * 64)), /the writer is aborted|stop now/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(readdirSync(dir), []);
    } finally {
      cleanup();
    }
  });

  it('an already aborted signal fails open()', async () => {
    await assert.rejects(
      GeoTiffWriter.open(join(tmp.dir, 'never.tif'), {
        width: 1,
        height: 1,
        bands: 1,
        dtype: 'uint8',
        signal: AbortSignal.abort(new Error('cancelled')),
      }),
      /cancelled/,
    );
  });
});

describe('needsBigTiff', () => {
  const cases: [string, Parameters<typeof needsBigTiff>[0], boolean][] = [
    ['3000 px 4-band uint16', { width: 3000, height: 3000, bands: 4, dtype: 'uint16' }, false],
    ['50,000 px square uint8 (2.5 GB)', { width: 50000, height: 50000, bands: 1, dtype: 'uint8' }, false],
    [
      '50,000 px square 4-band uint16 (20 GB)',
      { width: 50000, height: 50000, bands: 4, dtype: 'uint16' },
      true,
    ],
    [
      '65,536 px square uint8 (4 GB + padding)',
      { width: 65536, height: 65536, bands: 1, dtype: 'uint8' },
      true,
    ],
    ['just under 4 GB', { width: 60000, height: 60000, bands: 1, dtype: 'uint8', tileSize: 512 }, false],
  ];
  for (const [name, options, expected] of cases)
    it(name, () => assert.equal(needsBigTiff(options), expected));
  it('the writer picks BigTIFF from the estimate by default', async () => {
    const path = join(tmp.dir, 'auto.tif');
    const writer = await GeoTiffWriter.open(path, { width: 50000, height: 50000, bands: 4, dtype: 'uint16' });
    assert.equal(writer.bigTiff, true);
    await writer.abort();
  });
});
