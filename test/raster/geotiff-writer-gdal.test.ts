// GDAL (libtiff + libgeotiff) as an independent reader of what the writer produces.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { GeoTransform } from '../../lib/geo/affine.js';
import { RASTER_DTYPES, writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import type { GeoTiffMetadata, RasterDType } from '../../lib/raster/geotiff-writer.js';
import { bytesOf, samples, tempDir } from './fixtures.js';
import { epsgOfWkt, gdalinfo, gdalLocationValues, gdalRawPixels, gdalSkip } from './gdal-tools.js';

const GDAL_TYPE: Record<RasterDType, string> = {
  uint8: 'Byte',
  uint16: 'UInt16',
  int16: 'Int16',
  uint32: 'UInt32',
  int32: 'Int32',
  float32: 'Float32',
  float64: 'Float64',
};

const UTM_GT: GeoTransform = [600000, 0.5, 0, 5340000, 0, -0.5];

interface Case {
  readonly name: string;
  readonly dtype: RasterDType;
  readonly bands: number;
  readonly width: number;
  readonly height: number;
  readonly meta: Partial<GeoTiffMetadata>;
}

const BAND_COUNTS = [1, 3, 4, 8];
const CASES: Case[] = [
  ...RASTER_DTYPES.map((dtype, i) => ({
    name: `${dtype} x ${BAND_COUNTS[i % 4]} bands, UTM 33N`,
    dtype,
    bands: BAND_COUNTS[i % 4] as number,
    width: 301,
    height: 167,
    meta: { geotransform: UTM_GT, epsg: 32633, nodata: dtype.startsWith('int') ? -1 : 0 },
  })),
  {
    name: 'uint8 RGB, EPSG:4326',
    dtype: 'uint8',
    bands: 3,
    width: 100,
    height: 80,
    meta: { geotransform: [16.3, 1e-5, 0, 48.2, 0, -1e-5], epsg: 4326 },
  },
  {
    name: 'uint16 4 bands, BigTIFF, band names, 512 tiles',
    dtype: 'uint16',
    bands: 4,
    width: 700,
    height: 530,
    meta: {
      geotransform: UTM_GT,
      epsg: 32633,
      nodata: 0,
      bigTiff: true,
      bandNames: ['blue', 'green', 'red', 'nir'],
    },
  },
  {
    name: 'float32 NaN nodata, uncompressed, southern UTM',
    dtype: 'float32',
    bands: 2,
    width: 65,
    height: 33,
    meta: {
      geotransform: [334000, 2, 0, 6251000, 0, -2],
      epsg: 32756,
      nodata: Number.NaN,
      compression: 'none',
      tileSize: 32,
    },
  },
  {
    name: 'rotated geotransform',
    dtype: 'int16',
    bands: 1,
    width: 50,
    height: 40,
    meta: { geotransform: [1000, 0.4, 0.3, 2000, 0.3, -0.4], epsg: 32633, tileSize: 16 },
  },
  {
    name: 'an EPSG code without a built-in name (Swiss LV95)',
    dtype: 'uint8',
    bands: 1,
    width: 20,
    height: 20,
    meta: { geotransform: [2600000, 1, 0, 1200000, 0, -1], epsg: 2056, tileSize: 16 },
  },
];

describe('GDAL reads what the writer produces', { skip: gdalSkip }, () => {
  let tmp: { dir: string; cleanup: () => void };
  before(() => (tmp = tempDir('gdal')));
  after(() => tmp.cleanup());

  CASES.forEach((c, index) => {
    it(c.name, async () => {
      const path = join(tmp.dir, `case-${index}.tif`);
      const data = samples(c.dtype, c.width * c.height * c.bands, 100 + index);
      const tileSize = c.meta.tileSize ?? 256;
      await writeGeoTiff(path, data, {
        width: c.width,
        height: c.height,
        bands: c.bands,
        tileSize,
        ...c.meta,
      });

      const info = gdalinfo(path);
      assert.deepEqual(info.size, [c.width, c.height]);
      assert.equal(info.bands.length, c.bands);
      for (const band of info.bands) {
        assert.equal(band.type, GDAL_TYPE[c.dtype]);
        assert.deepEqual(band.block, [tileSize, tileSize]);
        const nodata = c.meta.nodata;
        if (nodata === undefined) assert.equal(band.noDataValue, undefined);
        else if (Number.isNaN(nodata)) assert.equal(String(band.noDataValue).toLowerCase(), 'nan');
        else assert.equal(band.noDataValue, nodata);
      }
      assert.equal(epsgOfWkt(info.coordinateSystem?.wkt ?? ''), c.meta.epsg);
      const gt = info.geoTransform ?? [];
      (c.meta.geotransform ?? []).forEach((v, i) =>
        assert.ok(Math.abs((gt[i] as number) - v) < 1e-9, `geoTransform ${gt}`),
      );
      assert.equal(info.metadata?.['']?.['AREA_OR_POINT'], 'Area');
      const structure = info.metadata?.['IMAGE_STRUCTURE'] ?? {};
      assert.equal(structure['INTERLEAVE'], c.bands > 1 ? 'PIXEL' : 'BAND');
      assert.equal(structure['COMPRESSION'], c.meta.compression === 'none' ? undefined : 'DEFLATE');
      assert.equal(
        structure['PREDICTOR'],
        c.dtype.startsWith('float') || c.meta.compression === 'none' ? undefined : '2',
      );
      if (c.meta.bandNames)
        assert.deepEqual(
          info.bands.map((b) => b.description),
          c.meta.bandNames,
        );
      if (c.bands === 3 && c.dtype === 'uint8') {
        assert.deepEqual(
          info.bands.map((b) => b.colorInterpretation),
          ['Red', 'Green', 'Blue'],
        );
      }

      // Every pixel, decoded by libtiff.
      const raw = gdalRawPixels(path, join(tmp.dir, `case-${index}.raw`));
      assert.ok(raw.equals(bytesOf(data)), 'GDAL decodes different pixel values');

      // A few points, by pixel/line, as a user would check them.
      const points: [number, number][] = [
        [0, 0],
        [c.width - 1, 0],
        [0, c.height - 1],
        [c.width - 1, c.height - 1],
        [Math.floor(c.width / 2), Math.floor(c.height / 3)],
      ];
      for (const [col, row] of points) {
        const expected = Array.from(
          data.subarray((row * c.width + col) * c.bands, (row * c.width + col + 1) * c.bands),
        );
        const actual = gdalLocationValues(path, col, row);
        expected.forEach((v, b) => {
          const a = actual[b] as number;
          const same = Number.isNaN(v)
            ? Number.isNaN(a)
            : c.dtype.startsWith('float')
              ? Math.abs(a - v) <= Math.abs(v) * 1e-6
              : a === v;
          assert.ok(same, `(${col}, ${row}) band ${b + 1}: GDAL ${a}, written ${v}`);
        });
      }
    });
  });
});
