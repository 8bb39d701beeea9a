// JPEG 2000 fixtures made at test time from the real GeoTIFFs under ../shared/data with GDAL's
// JP2OpenJPEG driver, lossless, in the layouts users bring: tiled and untiled, GeoJP2 and/or
// GMLJP2, with or without a TLM index, 8-bit RGB and 16-bit multiband.
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gdal } from './scene-fixtures.js';

export const SHARED = join(import.meta.dirname, '../../../shared/data');

/** False when GDAL has the JP2OpenJPEG driver; else the reason to skip. */
export const jp2Skip: false | string = (() => {
  const r = spawnSync('gdalinfo', ['--formats'], { encoding: 'utf8' });
  if (r.status !== 0) return 'gdalinfo not found on PATH: install gdal-bin to run the JPEG 2000 cross-checks';
  return /JP2OpenJPEG/.test(r.stdout) ? false : 'GDAL has no JP2OpenJPEG driver (gdalinfo --formats)';
})();

export interface Jp2Fixture {
  /** The GeoTIFF the JP2 was made from. */
  readonly tif: string;
  readonly jp2: string;
}

/** gdal_translate options for a lossless JP2. */
export const LOSSLESS = ['-of', 'JP2OpenJPEG', '-co', 'QUALITY=100', '-co', 'REVERSIBLE=YES'];

/** Makes every fixture under `dir`. */
export function makeJp2Fixtures(dir: string): Record<
  | 'rgbTiled'
  | 'rgbGml'
  | 'panTlm'
  | 'ms16'
  | 'sceneUntiled'
  | 'noGeo'
  | 'fourBands'
  | 'fourTiled'
  | 'twoBands8'
  | 'eightSigned',
  Jp2Fixture
> & {
  truncated: string;
  garbage: string;
} {
  const make = (name: string, tif: string, co: readonly string[]): Jp2Fixture => {
    const jp2 = join(dir, `${name}.jp2`);
    gdal('gdal_translate', ['-q', ...LOSSLESS, ...co.flatMap((c) => ['-co', c]), tif, jp2]);
    return { tif, jp2 };
  };
  const rgb = join(SHARED, 'spacenet/rgb_unmasked.tif');
  // 3-band and 4-band uint16 GeoTIFFs from the float64 multispectral sample (bands differ)
  const ms = join(SHARED, 'spacenet/ms1.tif');
  const ms16 = join(dir, 'ms16.tif');
  gdal('gdal_translate', [
    '-q',
    '-ot',
    'UInt16',
    '-scale',
    '0',
    '3000',
    '0',
    '60000',
    '-b',
    '1',
    '-b',
    '2',
    '-b',
    '3',
    ms,
    ms16,
  ]);
  const ms4 = join(dir, 'ms4.tif');
  gdal('gdal_translate', ['-q', '-ot', 'UInt16', '-scale', '0', '3000', '0', '60000', ms, ms4]);
  // 2-band uint8 (red and green of the RGB sample) and 8-band int16 (the 4 bands, then the same
  // 4 scaled to the negative range): band counts the OpenJPEG wrapper refuses
  const two8 = join(dir, 'two8.tif');
  gdal('gdal_translate', ['-q', '-b', '1', '-b', '2', rgb, two8]);
  const ms4s = join(dir, 'ms4s.tif');
  gdal('gdal_translate', ['-q', '-ot', 'Int16', '-scale', '0', '3000', '-30000', '30000', ms, ms4s]);
  const ms4n = join(dir, 'ms4n.tif');
  gdal('gdal_translate', ['-q', '-ot', 'Int16', '-scale', '0', '3000', '0', '-32000', ms, ms4n]);
  const eight = join(dir, 'eight.tif');
  gdal('gdal_merge.py', ['-q', '-separate', '-ot', 'Int16', '-o', eight, ms4s, ms4n]);
  const fixtures = {
    // 200 x 200 RGB in 64 px tiles: edge tiles are partial; GeoJP2 only
    rgbTiled: make('rgb-tiled', rgb, ['BLOCKXSIZE=64', 'BLOCKYSIZE=64', 'GMLJP2=NO', 'GeoJP2=YES']),
    // one tile, GMLJP2 only
    rgbGml: make('rgb-gml', rgb, ['GMLJP2=YES', 'GeoJP2=NO']),
    // 600 x 600 uint16 in 256 px tiles with a TLM index and 2 reduced resolution levels
    panTlm: make('pan-tlm', join(SHARED, 'spacenet/pan1.tif'), [
      'BLOCKXSIZE=256',
      'BLOCKYSIZE=256',
      'TLM=YES',
      'RESOLUTIONS=3',
    ]),
    ms16: make('ms16', ms16, ['BLOCKXSIZE=128', 'BLOCKYSIZE=128']),
    // 900 x 900 uint16 with no-data 0, untiled
    sceneUntiled: make('scene', join(SHARED, 'spacenet/sample_geotiff.tif'), []),
    fourBands: make('ms4', ms4, []),
    // 4-band uint16 in 256 px tiles over 300 px: partial edge tiles, component transform on 1-3
    fourTiled: make('ms4-tiled', ms4, ['BLOCKXSIZE=256', 'BLOCKYSIZE=256']),
    twoBands8: make('two8', two8, ['BLOCKXSIZE=64', 'BLOCKYSIZE=64']),
    eightSigned: make('eight', eight, ['BLOCKXSIZE=256', 'BLOCKYSIZE=256']),
    noGeo: make('no-geo', join(SHARED, 'spacenet/sample_fp_mask.tif'), ['GMLJP2=NO', 'GeoJP2=NO']),
  };
  const truncated = join(dir, 'truncated.jp2');
  const bytes = readFileSync(fixtures.panTlm.jp2);
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const garbage = join(dir, 'garbage.jp2');
  copyFileSync(fixtures.rgbTiled.jp2, garbage);
  const g = readFileSync(garbage);
  // keep the boxes, break the codestream's main header
  const at = g.indexOf(Buffer.from('jp2c', 'latin1')) + 4;
  g.fill(0x11, at, at + 64);
  writeFileSync(garbage, g);
  return { ...fixtures, truncated, garbage };
}
