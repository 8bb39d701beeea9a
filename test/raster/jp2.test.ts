// The JPEG 2000 reader against GDAL's JP2OpenJPEG driver and against the GeoTIFFs the JP2s were
// made from (lossless): header facts and georeferencing, every pixel, windows, resolution
// levels, reads from S3 by range, and one clear line for broken or oversized files.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PixelArray, RasterDType } from '../../lib/raster/geotiff-writer.js';
import { Jp2Raster } from '../../lib/raster/jp2-reader.js';
import { openRaster } from '../../lib/raster/reader.js';
import type { ImageBlocks, OpenRaster } from '../../lib/raster/reader.js';
import { readImageSize } from '../../lib/raster/image-size.js';
import { createStorage } from '../../lib/storage/index.js';
import { startS3rver } from '../helpers/s3rver.js';
import type { S3rverHandle } from '../helpers/s3rver.js';
import { tempDir } from './fixtures.js';
import { epsgOfWkt, gdalinfo } from './gdal-tools.js';
import { jp2Skip, LOSSLESS, makeJp2Fixtures, SHARED } from './jp2-fixtures.js';
import { gdal, gdalPixels } from './scene-fixtures.js';

const storage = createStorage();

/** A window of a level, every band, pixel-interleaved. */
async function readWindow(
  level: ImageBlocks,
  x0: number,
  y0: number,
  w: number,
  h: number,
): Promise<number[]> {
  const bands = Array.from({ length: level.bands }, (_, b) => b);
  const out = new Array<number>(w * h * level.bands).fill(-1);
  const refs = level.blocksInRows(y0, y0 + h).filter((ref) => {
    const r = level.blockRect(ref);
    return r.col < x0 + w && r.col + r.width > x0;
  });
  await level.readBlocks(refs, bands, (block) => {
    block.bands.forEach((view, b) => {
      for (let r = Math.max(y0, block.row); r < Math.min(y0 + h, block.row + block.height); r++) {
        for (let c = Math.max(x0, block.col); c < Math.min(x0 + w, block.col + block.width); c++) {
          const v =
            view.data[view.offset + (r - block.row) * view.rowStride + (c - block.col) * view.pixelStride]!;
          out[((r - y0) * w + (c - x0)) * level.bands + b] = v;
        }
      }
    });
  });
  return out;
}

async function readAll(raster: OpenRaster, index = 0): Promise<number[]> {
  const level = await raster.level(index);
  return readWindow(level, 0, 0, level.width, level.height);
}

function same(actual: number[], expected: PixelArray, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: sample count`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i])
      assert.fail(`${what}: sample ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

describe('JPEG 2000 reader', { skip: jp2Skip }, () => {
  const tmp = tempDir('jp2');
  let fx: ReturnType<typeof makeJp2Fixtures>;
  before(() => {
    fx = makeJp2Fixtures(tmp.dir);
  });
  after(() => tmp.cleanup());

  const cases: [
    string,
    (
      | 'rgbTiled'
      | 'rgbGml'
      | 'panTlm'
      | 'ms16'
      | 'sceneUntiled'
      | 'fourBands'
      | 'fourTiled'
      | 'twoBands8'
      | 'eightSigned'
    ),
    RasterDType,
    string,
  ][] = [
    ['8-bit RGB, 64 px tiles, GeoJP2', 'rgbTiled', 'uint8', 'sot'],
    ['8-bit RGB, untiled, GMLJP2 only', 'rgbGml', 'uint8', 'sot'],
    ['uint16, 256 px tiles with TLM, GeoJP2 + GMLJP2', 'panTlm', 'uint16', 'tlm'],
    ['3-band uint16, 128 px tiles', 'ms16', 'uint16', 'sot'],
    ['uint16 900 px untiled with no-data', 'sceneUntiled', 'uint16', 'sot'],
    // band counts the OpenJPEG wrapper refuses: decoded by component groups
    ['4-band uint16, untiled', 'fourBands', 'uint16', 'sot'],
    ['4-band uint16, 256 px tiles', 'fourTiled', 'uint16', 'sot'],
    ['2-band uint8, 64 px tiles', 'twoBands8', 'uint8', 'sot'],
    ['8-band int16, 256 px tiles', 'eightSigned', 'int16', 'sot'],
  ];
  for (const [name, key, dtype, index] of cases) {
    it(`${name}: size, bands, type and georeferencing as gdalinfo, pixels as the source GeoTIFF and GDAL's decode`, async () => {
      const { tif, jp2 } = fx[key];
      const raster = await openRaster(storage, jp2);
      try {
        assert.ok(raster instanceof Jp2Raster);
        assert.equal(raster.codestream.index, index);
        const gi = gdalinfo(jp2);
        assert.deepEqual([raster.info.width, raster.info.height], gi.size);
        assert.equal(raster.info.bands, gi.bands.length);
        assert.equal(raster.info.dtype, dtype);
        const gt = raster.info.geo?.geotransform;
        assert.ok(gt && gi.geoTransform);
        gt.forEach((v, i) =>
          assert.ok(
            Math.abs(v - gi.geoTransform![i]!) < 1e-6,
            `geotransform[${i}] ${v} vs ${gi.geoTransform![i]}`,
          ),
        );
        assert.equal(raster.info.geo?.epsg, epsgOfWkt(gi.coordinateSystem!.wkt));
        const gdalNodata = gi.bands[0]!.noDataValue;
        assert.equal(raster.info.nodata, gdalNodata === undefined ? null : Number(gdalNodata));
        const pixels = await readAll(raster);
        same(pixels, gdalPixels(jp2, dtype), `${key} vs GDAL's decode`);
        const source = await openRaster(storage, tif);
        try {
          same(
            pixels,
            Float64Array.from(await readAll(source)) as unknown as PixelArray,
            `${key} vs the GeoTIFF`,
          );
          raster.info.geo!.geotransform.forEach((v, i) =>
            assert.ok(
              Math.abs(v - source.info.geo!.geotransform[i]!) < 1e-6,
              `geotransform[${i}] vs the GeoTIFF`,
            ),
          );
          assert.equal(raster.info.geo?.epsg, source.info.geo?.epsg);
        } finally {
          await source.close();
        }
      } finally {
        await raster.close();
      }
    });
  }

  it('windows across tile edges and at the image edge equal gdal_translate -srcwin, decoding only the tiles they touch', async () => {
    const { jp2 } = fx.panTlm;
    for (const [x, y, w, h, tiles] of [
      [100, 200, 300, 150, 4],
      [550, 500, 50, 100, 2],
      [530, 530, 70, 70, 1],
      [0, 0, 256, 256, 1],
      [255, 255, 2, 2, 4],
    ] as const) {
      const raster = (await openRaster(storage, jp2)) as Jp2Raster;
      try {
        const got = await readWindow(await raster.level(0), x, y, w, h);
        same(
          got,
          gdalPixels(jp2, 'uint16', ['-srcwin', String(x), String(y), String(w), String(h)]),
          `window ${x},${y} ${w}x${h}`,
        );
        assert.equal(raster.stats.decodes, tiles, `window ${x},${y} ${w}x${h}: tiles decoded`);
        if (tiles === 1)
          assert.ok(raster.bytesRead < readFileSync(jp2).length / 3, `bytes read ${raster.bytesRead}`);
      } finally {
        await raster.close();
      }
    }
  });

  it('windows of 4- and 8-band JP2s (decoded by component groups) equal gdal_translate -srcwin', async () => {
    for (const [key, dtype] of [
      ['fourTiled', 'uint16'],
      ['eightSigned', 'int16'],
    ] as const) {
      const { jp2 } = fx[key];
      for (const [x, y, w, h, tiles] of [
        [200, 10, 90, 280, 4],
        [256, 256, 44, 44, 1],
        [3, 250, 12, 12, 2],
      ] as const) {
        const raster = (await openRaster(storage, jp2)) as Jp2Raster;
        try {
          same(
            await readWindow(await raster.level(0), x, y, w, h),
            gdalPixels(jp2, dtype, ['-srcwin', String(x), String(y), String(w), String(h)]),
            `${key} window ${x},${y} ${w}x${h}`,
          );
          assert.equal(raster.stats.decodes, tiles, `${key} window ${x},${y} ${w}x${h}: tiles decoded`);
        } finally {
          await raster.close();
        }
      }
    }
  });

  it('4-band JP2s in other progression orders, with quality layers, SOP and EPH markers or empty packets decode as GDAL; bypass coding is refused in one line', async () => {
    const make = (name: string, co: readonly string[]): string => {
      const jp2 = join(tmp.dir, `${name}.jp2`);
      gdal('gdal_translate', ['-q', ...LOSSLESS, ...co.flatMap((c) => ['-co', c]), fx.fourTiled.tif, jp2]);
      return jp2;
    };
    const tiles = ['BLOCKXSIZE=256', 'BLOCKYSIZE=256'];
    for (const co of [
      ['PROGRESSION=RPCL', 'QUALITY=20,50,100', 'SOP=YES', 'EPH=YES'],
      ['PROGRESSION=CPRL', 'YCC=NO', 'CODEBLOCK_WIDTH=32'],
      ['PROGRESSION=RLCP', 'QUALITY=30,100'],
    ]) {
      const jp2 = make(co.join('-').replace(/[=,]/g, '_'), [...tiles, ...co]);
      const raster = await openRaster(storage, jp2);
      try {
        same(await readAll(raster), gdalPixels(jp2, 'uint16'), co.join(' '));
      } finally {
        await raster.close();
      }
    }
    // a mostly no-data corner of a real scene: tiles whose last packet is empty (one byte)
    const corner = join(tmp.dir, 'cog4.tif');
    gdal('gdal_translate', [
      '-q',
      '-srcwin',
      '0',
      '0',
      '512',
      '512',
      '-b',
      '1',
      '-b',
      '1',
      '-b',
      '1',
      '-b',
      '1',
      join(SHARED, 'cog/cog.tif'),
      corner,
    ]);
    const cornerJp2 = join(tmp.dir, 'cog4.jp2');
    gdal('gdal_translate', ['-q', ...LOSSLESS, ...tiles.flatMap((c) => ['-co', c]), corner, cornerJp2]);
    const cornerRaster = await openRaster(storage, cornerJp2);
    try {
      same(await readAll(cornerRaster), gdalPixels(cornerJp2, 'uint16'), 'no-data corner');
    } finally {
      await cornerRaster.close();
    }
    const bypass = make('bypass', [...tiles, 'CODEBLOCK_STYLE=BYPASS']);
    const raster = await openRaster(storage, bypass);
    try {
      await assert.rejects(readAll(raster), (error: Error) => {
        assert.equal(error.name, 'RasterError');
        assert.match(
          error.message,
          new RegExp(`^${bypass}: unsupported JPEG 2000 file of 4 bands: code-block style 1 \\(bypass`),
        );
        assert.ok(!error.message.includes('\n'));
        return true;
      });
    } finally {
      await raster.close();
    }
  });

  it('resolution levels are the overviews, pixel for pixel as GDAL reads them (gdal_translate -ovr)', async () => {
    for (const [key, dtype] of [
      ['panTlm', 'uint16'],
      ['sceneUntiled', 'uint16'],
      ['fourBands', 'uint16'],
    ] as const) {
      const { jp2 } = fx[key];
      const raster = await openRaster(storage, jp2);
      try {
        const gi = gdalinfo(jp2) as unknown as { bands: { overviews?: { size: [number, number] }[] }[] };
        const gdalOverviews = gi.bands[0]!.overviews ?? [];
        assert.ok(gdalOverviews.length >= 2, `${key}: GDAL lists overviews`);
        for (let i = 0; i < gdalOverviews.length; i++) {
          const ov = raster.info.overviews[i]!;
          assert.deepEqual([ov.width, ov.height], gdalOverviews[i]!.size);
          same(
            await readAll(raster, raster.overviewIndices[i]),
            gdalPixels(jp2, dtype, ['-ovr', String(i)]),
            `${key} level ${i + 1}`,
          );
        }
      } finally {
        await raster.close();
      }
    }
  });

  it('readImageSize reads a JP2 header', async () => {
    assert.deepEqual(await readImageSize(storage, fx.ms16.jp2), {
      width: 300,
      height: 300,
      format: 'jpeg2000',
    });
  });

  it('a JP2 without georeferencing opens with no geo, as a GeoTIFF without it', async () => {
    const raster = await openRaster(storage, fx.noGeo.jp2);
    try {
      assert.equal(raster.info.geo, undefined);
      same(await readAll(raster), gdalPixels(fx.noGeo.jp2, 'uint8'), 'no-geo pixels');
    } finally {
      await raster.close();
    }
  });

  it('a truncated or corrupt JP2 is refused with one line naming the file', async () => {
    for (const [file, pattern] of [
      [fx.truncated, /truncated or corrupt JP2: box 'jp2c' at byte \d+ claims \d+ bytes but \d+ remain/],
      [fx.garbage, /corrupt JPEG 2000 codestream: it starts with 1111/],
    ] as const) {
      await assert.rejects(openRaster(storage, file), (error: Error) => {
        assert.equal(error.name, 'RasterError');
        assert.ok(error.message.startsWith(`${file}: `), error.message);
        assert.match(error.message, pattern);
        assert.doesNotMatch(error.message, /\n/);
        return true;
      });
    }
  });

  it('refuses to decode an untiled codestream above GEOBATCH_JP2_MAX_TILE_PIXELS, naming the limit and the way out', async () => {
    const saved = process.env.GEOBATCH_JP2_MAX_TILE_PIXELS;
    process.env.GEOBATCH_JP2_MAX_TILE_PIXELS = '500000';
    try {
      const raster = await openRaster(storage, fx.sceneUntiled.jp2);
      try {
        const level = await raster.level(0);
        await assert.rejects(readWindow(level, 0, 0, 10, 10), (error: Error) => {
          assert.equal(error.name, 'RasterError');
          assert.match(
            error.message,
            /untiled JPEG 2000 codestream of 900 x 900 px must be decoded whole .* the limit is 500000 px \(GEOBATCH_JP2_MAX_TILE_PIXELS\)/,
          );
          return true;
        });
        // a reduced level is small enough
        const half = await raster.level(1);
        same(
          await readWindow(half, 0, 0, half.width, half.height),
          gdalPixels(fx.sceneUntiled.jp2, 'uint16', ['-ovr', '0']),
          'level 1 under the limit',
        );
      } finally {
        await raster.close();
      }
    } finally {
      if (saved === undefined) delete process.env.GEOBATCH_JP2_MAX_TILE_PIXELS;
      else process.env.GEOBATCH_JP2_MAX_TILE_PIXELS = saved;
    }
  });

  describe('on S3', () => {
    let server: S3rverHandle;
    before(async () => {
      server = await startS3rver();
    });
    after(async () => {
      await server.stop();
    });

    it('reads the header boxes and only the tiles a window needs by range', async () => {
      const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(tmp.dir, 'cache') });
      const bucket = await server.createBucket();
      for (const key of ['panTlm', 'rgbTiled'] as const) {
        const uri = `s3://${bucket}/in/${key}.jp2`;
        const bytes = readFileSync(fx[key].jp2);
        await s3.writeAtomic(uri, bytes);
        const raster = (await openRaster(s3, uri)) as Jp2Raster;
        try {
          assert.deepEqual(
            raster.info.geo?.geotransform,
            (await openRaster(storage, fx[key].jp2)).info.geo?.geotransform,
          );
          const level = await raster.level(0);
          const got = await readWindow(level, 10, 20, 30, 40);
          same(
            got,
            gdalPixels(fx[key].jp2, raster.info.dtype as RasterDType, ['-srcwin', '10', '20', '30', '40']),
            `${key} window from S3`,
          );
          assert.equal(raster.stats.decodes, 1);
        } finally {
          await raster.close();
        }
      }
    });
  });
});
