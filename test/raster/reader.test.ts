// The streaming block reader against GDAL's decode of the same files, over the TIFF layouts
// users bring: strips and tiles, chunky and planar, every codec geotiff.js reads, both byte
// orders, predictors, sparse blocks, JPEG and YCbCr JPEG.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PixelArray, RasterDType } from '../../lib/raster/geotiff-writer.js';
import { openRaster, undoDifferences } from '../../lib/raster/reader.js';
import type { OpenRaster } from '../../lib/raster/reader.js';
import { createStorage } from '../../lib/storage/index.js';
import { tempDir } from './fixtures.js';
import { gdalSkip } from './gdal-tools.js';
import { gdal, gdalPixels, writeScene } from './scene-fixtures.js';

const storage = createStorage();
const shared = join(import.meta.dirname, '../../../shared/data');

/** Every band of the full image as the reader delivers it, pixel-interleaved. */
async function readAll(raster: OpenRaster, options: { differenced?: boolean } = {}): Promise<number[]> {
  const level = await raster.level(0);
  const bands = Array.from({ length: level.bands }, (_, b) => b);
  const out = new Array<number>(level.width * level.height * level.bands).fill(-1);
  await level.readBlocks(
    level.blocksInRows(0, level.height),
    bands,
    (block) => {
      block.bands.forEach((view, b) => {
        if (view.differenced) undoDifferences(view, block.width, block.height);
        for (let r = 0; r < block.height; r++) {
          for (let c = 0; c < block.width; c++) {
            const v = view.data[view.offset + r * view.rowStride + c * view.pixelStride]!;
            out[((block.row + r) * level.width + block.col + c) * level.bands + b] = v;
          }
        }
      });
    },
    options,
  );
  return out;
}

function assertSame(actual: number[], expected: PixelArray, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: sample count`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i]) && !(Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) {
      assert.fail(`${label}: sample ${i} is ${actual[i]} but GDAL reads ${expected[i]}`);
    }
  }
}

describe('reading TIFF layouts block by block', { skip: gdalSkip }, () => {
  const tmp = tempDir('reader');
  const base = join(tmp.dir, 'base-uint16.tif');
  const baseInt16 = join(tmp.dir, 'base-int16.tif');
  const baseFloat = join(tmp.dir, 'base-float32.tif');
  before(async () => {
    await writeScene(base, {
      width: 150,
      height: 100,
      bands: 4,
      dtype: 'uint16',
      nodata: 0,
      nodataCorner: 40,
    });
    await writeScene(baseInt16, { width: 150, height: 100, bands: 2, dtype: 'int16' });
    await writeScene(baseFloat, { width: 150, height: 100, bands: 3, dtype: 'float32' });
  });
  after(() => tmp.cleanup());

  const cases: {
    name: string;
    from: 'u16' | 'i16' | 'f32';
    co: string[];
    dtype: RasterDType;
    mode: string;
  }[] = [
    {
      name: 'the writer itself (tiles, DEFLATE, predictor 2)',
      from: 'u16',
      co: [],
      dtype: 'uint16',
      mode: 'blocks',
    },
    { name: 'strips, uncompressed', from: 'u16', co: ['TILED=NO'], dtype: 'uint16', mode: 'blocks' },
    {
      name: 'one-row strips, LZW, predictor 2',
      from: 'u16',
      co: ['BLOCKYSIZE=1', 'COMPRESS=LZW', 'PREDICTOR=2'],
      dtype: 'uint16',
      mode: 'blocks',
    },
    {
      name: 'planar tiles, DEFLATE, predictor 2',
      from: 'u16',
      co: [
        'TILED=YES',
        'BLOCKXSIZE=32',
        'BLOCKYSIZE=48',
        'COMPRESS=DEFLATE',
        'PREDICTOR=2',
        'INTERLEAVE=BAND',
      ],
      dtype: 'uint16',
      mode: 'blocks',
    },
    {
      name: 'big-endian strips, DEFLATE, predictor 2',
      from: 'u16',
      co: ['ENDIANNESS=BIG', 'COMPRESS=DEFLATE', 'PREDICTOR=2'],
      dtype: 'uint16',
      mode: 'blocks',
    },
    {
      name: 'PackBits tiles',
      from: 'u16',
      co: ['TILED=YES', 'COMPRESS=PACKBITS'],
      dtype: 'uint16',
      mode: 'blocks',
    },
    { name: 'ZSTD strips', from: 'u16', co: ['COMPRESS=ZSTD'], dtype: 'uint16', mode: 'blocks' },
    {
      name: 'sparse tiles (missing blocks are no-data)',
      from: 'u16',
      co: ['TILED=YES', 'BLOCKXSIZE=16', 'BLOCKYSIZE=16', 'SPARSE_OK=TRUE'],
      dtype: 'uint16',
      mode: 'blocks',
    },
    {
      name: 'int16, DEFLATE, predictor 2',
      from: 'i16',
      co: ['COMPRESS=DEFLATE', 'PREDICTOR=2'],
      dtype: 'int16',
      mode: 'blocks',
    },
    {
      name: 'float32, DEFLATE, floating-point predictor',
      from: 'f32',
      co: ['COMPRESS=DEFLATE', 'PREDICTOR=3'],
      dtype: 'float32',
      mode: 'blocks',
    },
  ];
  for (const c of cases) {
    it(`${c.name}: the same samples as GDAL`, async (t) => {
      const src = c.from === 'u16' ? base : c.from === 'i16' ? baseInt16 : baseFloat;
      const path = join(tmp.dir, `${c.name.replace(/[^a-z0-9]+/gi, '-')}.tif`);
      if (c.co.length === 0) copyFileSync(src, path);
      else {
        try {
          gdal('gdal_translate', ['-q', ...c.co.flatMap((o) => ['-co', o]), src, path]);
        } catch (error) {
          if (/ZSTD/.test(c.co.join()) && /not supported|Cannot create/i.test((error as Error).message)) {
            t.skip('this GDAL has no ZSTD');
            return;
          }
          throw error;
        }
      }
      const raster = await openRaster(storage, path);
      try {
        assert.equal((await raster.level(0)).mode, c.mode);
        const expected = gdalPixels(path, c.dtype);
        assertSame(await readAll(raster), expected, c.name);
        assertSame(await readAll(raster, { differenced: true }), expected, `${c.name} (differenced)`);
      } finally {
        await raster.close();
      }
    });
  }

  it('greyscale JPEG tiles (read through geotiff.js windows): within 1 of GDAL on average', async () => {
    const path = join(tmp.dir, 'jpeg-grey.tif');
    gdal('gdal_translate', [
      '-q',
      '-b',
      '3',
      '-ot',
      'Byte',
      '-scale',
      '0',
      '2500',
      '0',
      '255',
      '-co',
      'TILED=YES',
      '-co',
      'COMPRESS=JPEG',
      base,
      path,
    ]);
    const raster = await openRaster(storage, path);
    try {
      assert.equal((await raster.level(0)).mode, 'windows');
      const ours = await readAll(raster);
      const gdalValues = gdalPixels(path, 'uint8');
      let diff = 0;
      ours.forEach((v, i) => (diff += Math.abs(v - gdalValues[i]!)));
      assert.ok(diff / ours.length <= 1, `mean difference ${diff / ours.length}`);
    } finally {
      await raster.close();
    }
  });

  it('YCbCr JPEG COG (cog_rgb.tif) is read as RGB: within 2 of GDAL on average', async () => {
    const path = join(shared, 'cog/cog_rgb.tif');
    const raster = await openRaster(storage, path);
    try {
      const level = await raster.level(0);
      assert.equal(level.mode, 'rgb');
      assert.equal(level.bands, 3);
      const ours = await readAll(raster);
      const gdalValues = gdalPixels(path, 'uint8');
      let diff = 0;
      ours.forEach((v, i) => (diff += Math.abs(v - gdalValues[i]!)));
      assert.ok(diff / ours.length <= 2, `mean difference ${diff / ours.length}`);
    } finally {
      await raster.close();
    }
  });

  it('lists the overviews of the data, not those of an internal mask', async () => {
    // a single-band COG with an internal mask: GDAL writes the mask and its reductions as
    // single-band images too (NewSubfileType 4 and 5)
    const masked = join(tmp.dir, 'masked-cog.tif');
    execFileSync('gdal_translate', [
      ...['-q', '-of', 'COG', '-co', 'COMPRESS=DEFLATE', '-mask', '1'],
      ...[join(shared, 'cog/cog_nodata.tif'), masked],
    ]);
    const raster = await openRaster(storage, masked);
    try {
      const sizes: number[] = [];
      for (const i of raster.overviewIndices) sizes.push((await raster.level(i)).width);
      const info = JSON.parse(execFileSync('gdalinfo', ['-json', masked]).toString()) as {
        bands: { overviews: { size: [number, number] }[] }[];
      };
      assert.deepEqual(
        sizes,
        info.bands[0]!.overviews.map((o) => o.size[0]),
      );
    } finally {
      await raster.close();
    }
  });

  it('reads only the blocks asked for, in bounded requests', async () => {
    const raster = await openRaster(storage, join(shared, 'cog/cog.tif'));
    try {
      const level = await raster.level(0);
      let pixels = 0;
      await level.readBlocks([{ bx: 3, by: 4 }], [0], (block) => {
        assert.deepEqual([block.col, block.row, block.width, block.height], [768, 1024, 256, 256]);
        pixels += block.width * block.height;
      });
      assert.equal(pixels, 256 * 256);
      // the last column of blocks is clipped to the image
      await level.readBlocks([{ bx: level.blocksAcross - 1, by: 0 }], [0], (block) => {
        assert.equal(block.width, 2658 - (level.blocksAcross - 1) * 256);
      });
    } finally {
      await raster.close();
    }
  });
});
