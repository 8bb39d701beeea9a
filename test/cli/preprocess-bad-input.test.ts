// Bad input to `geobatch rgb` and `geobatch labels`, through the real CLI: one clear line on
// stderr naming the file, feature, field and value, a non-zero exit, and no output left behind.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { geobatch } from '../helpers/cli.js';
import { tiffWithEntries, type TiffEntry } from '../helpers/tiny-tiff.js';
import { tempDir } from '../raster/fixtures.js';
import { gdalSkip } from '../raster/gdal-tools.js';
import { gdal, writeScene } from '../raster/scene-fixtures.js';

const data = join(import.meta.dirname, '../../../shared/data');

/** A minimal little-endian TIFF whose SamplesPerPixel is 0. */
function zeroBandTiff(): Buffer {
  const entries: TiffEntry[] = [
    [256, 3, 1], // ImageWidth
    [257, 3, 1], // ImageLength
    [258, 3, 8], // BitsPerSample
    [259, 3, 1], // Compression: none
    [262, 3, 1], // PhotometricInterpretation: min-is-black
    [273, 4, 8 + 2 + 10 * 12 + 4], // StripOffsets: right after the IFD
    [277, 3, 0], // SamplesPerPixel: 0
    [278, 3, 1], // RowsPerStrip
    [279, 4, 1], // StripByteCounts
    [284, 3, 1], // PlanarConfiguration
  ];
  return tiffWithEntries(entries, 1);
}

describe('bad input to rgb and labels', { skip: gdalSkip }, () => {
  const tmp = tempDir('bad-input');
  const dir = tmp.dir;
  const scene = join(dir, 'scene.tif');
  const plain = join(dir, 'no-georef.tif');
  const cog = join(dir, 'cog.tif');
  const labels = join(dir, 'labels.geojson');
  before(async () => {
    await writeScene(scene, { width: 150, height: 100, bands: 4, dtype: 'uint16', nodata: 0 });
    await writeScene(plain, { width: 50, height: 40, bands: 1, dtype: 'uint16', geotransform: null });
    // a COG keeps its header first, so a cut-off copy still has a readable header but not all tiles
    gdal('gdal_translate', [
      '-q',
      '-of',
      'COG',
      '-co',
      'BLOCKSIZE=64',
      '-co',
      'COMPRESS=DEFLATE',
      scene,
      cog,
    ]);
    writeFileSync(
      labels,
      JSON.stringify({
        type: 'FeatureCollection',
        crs: { type: 'name', properties: { name: 'EPSG:32633' } },
        features: [
          {
            type: 'Feature',
            properties: {},
            geometry: {
              type: 'Polygon',
              coordinates: [
                [
                  [455910, 5732500],
                  [455920, 5732500],
                  [455920, 5732490],
                  [455910, 5732500],
                ],
              ],
            },
          },
        ],
      }),
    );
  });
  after(() => tmp.cleanup());

  async function fails(args: string[], message: string, code = 1, nothingAt?: string): Promise<void> {
    const r = await geobatch(args);
    assert.equal(r.stderr, `geobatch: ${message}\n`);
    assert.equal(r.code, code);
    assert.equal(r.stdout, '');
    if (nothingAt) {
      assert.equal(existsSync(nothingAt), false, `${nothingAt} was left behind`);
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.includes('.tmp-')),
        [],
        'no temporary files left',
      );
    }
  }

  it('rgb: not a TIFF', async () => {
    const png = join(data, 'coco/terrain2.png');
    await fails(
      ['rgb', png, join(dir, 'out1.tif')],
      `${png}: not a TIFF file (it starts with bytes 89 50 4e 47, a PNG image; a TIFF starts with 'II*' or 'MM*')`,
      1,
      join(dir, 'out1.tif'),
    );
  });

  it('rgb: a truncated TIFF (tiles cut off)', async () => {
    const cut = join(dir, 'cut.tif');
    writeFileSync(cut, readFileSync(cog));
    const size = Math.floor(readFileSync(cog).length * 0.6);
    truncateSync(cut, size);
    const r = await geobatch(['rgb', cut, join(dir, 'out2.tif')]);
    assert.match(
      r.stderr,
      new RegExp(
        `^geobatch: ${cut}: truncated TIFF: tile \\d+ needs bytes \\d+\\.\\.\\d+ but the file has ${size} bytes\\n$`,
      ),
    );
    assert.equal(r.code, 1);
    assert.equal(existsSync(join(dir, 'out2.tif')), false);
  });

  it('rgb: a truncated TIFF (header cut off)', async () => {
    const cut = join(dir, 'cut-header.tif');
    writeFileSync(cut, readFileSync(scene).subarray(0, 4000));
    const r = await geobatch(['rgb', cut, join(dir, 'out3.tif')]);
    assert.match(
      r.stderr,
      new RegExp(
        `^geobatch: ${cut}: cannot read the TIFF header \\(4000 bytes; truncated or corrupt\\?\\): .+\\n$`,
      ),
    );
    assert.equal(r.code, 1);
  });

  it('rgb: zero bands', async () => {
    const zero = join(dir, 'zero.tif');
    writeFileSync(zero, zeroBandTiff());
    await fails(
      ['rgb', zero, join(dir, 'out4.tif')],
      `${zero}: the TIFF has 0 bands (SamplesPerPixel = 0); expected at least 1`,
    );
  });

  it('rgb: a band index out of range', async () => {
    await fails(
      ['rgb', scene, join(dir, 'out5.tif'), '--bands', '3,2,9'],
      `--bands: band 9 is out of range: ${scene} has 4 bands (valid: 1..4)`,
      1,
      join(dir, 'out5.tif'),
    );
  });

  it('rgb: a malformed --bands is a usage error', async () => {
    await fails(
      ['rgb', scene, join(dir, 'out6.tif'), '--bands', '3,2'],
      `--bands: expected one band or three comma-separated band numbers counted from 1 (e.g. 5,3,2) but got '3,2'`,
      2,
    );
  });

  it('rgb: an unsupported sample format (complex integers)', async () => {
    const complex = join(dir, 'complex.tif');
    gdal('gdal_translate', ['-q', '-ot', 'CInt16', '-b', '1', scene, complex]);
    await fails(
      ['rgb', complex, join(dir, 'out7.tif')],
      `${complex}: unsupported sample format: SampleFormat 5 (complex integer) with 32 bits per sample; supported: 8, 16 and 32-bit integers, 32 and 64-bit floats`,
    );
  });

  it('labels geojson: an image without georeferencing', async () => {
    await fails(
      ['labels', 'geojson', labels, '--image', plain, '--out', join(dir, 'out8.json')],
      `${plain}: has no georeferencing (no ModelTiepoint/ModelPixelScale or ModelTransformation tags); labels geojson needs it to place map coordinates on the image's pixels`,
      1,
      join(dir, 'out8.json'),
    );
  });

  it('labels mask: an image without georeferencing', async () => {
    await fails(
      ['labels', 'mask', labels, '--image', plain, '--out', join(dir, 'out9.tif')],
      `${plain}: has no georeferencing (no ModelTiepoint/ModelPixelScale or ModelTransformation tags); labels mask needs it to place map coordinates on the image's pixels`,
      1,
      join(dir, 'out9.tif'),
    );
  });

  it('labels geojson: GeoJSON that is not JSON', async () => {
    const text = join(dir, 'not-json.geojson');
    writeFileSync(text, 'type,id\nFeature,1\n');
    await fails(
      ['labels', 'geojson', text, '--image', scene, '--out', join(dir, 'out10.json')],
      `${text}: not a valid GeoJSON FeatureCollection at line 1, column 1: expected a GeoJSON FeatureCollection object ('{') but found 't'; the file is not JSON or not a GeoJSON object`,
      1,
      join(dir, 'out10.json'),
    );
  });

  it('labels geojson: a feature without geometry', async () => {
    const f = join(dir, 'no-geometry.geojson');
    const doc = JSON.parse(readFileSync(labels, 'utf8')) as { features: object[] };
    doc.features.push({ type: 'Feature', properties: { id: 2 }, geometry: null });
    writeFileSync(f, JSON.stringify(doc));
    await fails(
      ['labels', 'geojson', f, '--image', scene, '--out', join(dir, 'out11.json')],
      `${f}: feature 1 has no geometry ('geometry' is null); expected a Polygon or MultiPolygon`,
      1,
      join(dir, 'out11.json'),
    );
  });

  it('labels mask: NaN coordinates (as Python writes them)', async () => {
    const f = join(dir, 'nan.geojson');
    writeFileSync(f, readFileSync(labels, 'utf8').replace('[455920,5732500]', '[NaN,5732500]'));
    await fails(
      ['labels', 'mask', f, '--image', scene, '--out', join(dir, 'out12.tif')],
      `${f}: feature 0: geometry.coordinates[0][1][0] is NaN; expected finite numbers`,
      1,
      join(dir, 'out12.tif'),
    );
  });

  it('labels xview: a bounds_imcoords with 3 numbers', async () => {
    const f = join(dir, 'xview.geojson');
    const feature = (bounds: string) => ({
      type: 'Feature',
      properties: { bounds_imcoords: bounds, type_id: 73, image_id: 'scene.tif', feature_id: 1 },
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 0],
            [1, 1],
            [0, 0],
          ],
        ],
      },
    });
    writeFileSync(
      f,
      JSON.stringify({
        type: 'FeatureCollection',
        features: [feature('1,2,3,4'), feature('1,2,3,4'), feature('10,20,30')],
      }),
    );
    const out = join(dir, 'shards');
    const images = join(dir, 'xview-images');
    await writeScene(join(images, 'scene.tif'), { width: 50, height: 40, bands: 1, dtype: 'uint8' });
    await fails(
      ['labels', 'xview', f, '--images', images, '--out', out],
      `${f}: feature 2 (image_id 'scene.tif'): properties.bounds_imcoords = '10,20,30' has 3 numbers; expected 4: 'xmin,ymin,xmax,ymax'`,
      1,
      out,
    );
  });

  it('labels geojson: an unknown CRS in --crs', async () => {
    await fails(
      [
        'labels',
        'geojson',
        labels,
        '--image',
        scene,
        '--out',
        join(dir, 'out13.json'),
        '--crs',
        'EPSG:99999',
      ],
      `--crs: unknown CRS 'EPSG:99999': EPSG code 99999 is not in the EPSG database (epsg-index) or has no projection definition; expected a coordinate system code such as 4326 or 32633`,
      1,
      join(dir, 'out13.json'),
    );
  });

  it("labels geojson: an unknown CRS in the file's crs member", async () => {
    const f = join(dir, 'unknown-crs.geojson');
    writeFileSync(f, readFileSync(labels, 'utf8').replace('EPSG:32633', 'urn:ogc:def:crs:EPSG::99999'));
    await fails(
      ['labels', 'geojson', f, '--image', scene, '--out', join(dir, 'out14.json')],
      `${f}: unknown CRS 'urn:ogc:def:crs:EPSG::99999': EPSG code 99999 is not in the EPSG database (epsg-index) or has no projection definition; expected a coordinate system code such as 4326 or 32633 (from the GeoJSON 'crs' member)`,
      1,
      join(dir, 'out14.json'),
    );
  });

  it('labels geojson: a CRS name that is not one', async () => {
    await fails(
      ['labels', 'geojson', labels, '--image', scene, '--out', join(dir, 'out15.json'), '--crs', 'UTM 33'],
      `--crs: unknown CRS 'UTM 33': expected EPSG:<code> (e.g. EPSG:4326, EPSG:32633), urn:ogc:def:crs:EPSG::<code>, or CRS84`,
    );
  });
});
