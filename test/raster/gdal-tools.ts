// Helpers that run the GDAL command-line tools (gdal-bin) as an independent reader of the
// files we write. CI installs gdal-bin; without it the tests that need GDAL are skipped.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

function hasGdal(): boolean {
  const result = spawnSync('gdalinfo', ['--version'], { encoding: 'utf8' });
  return result.status === 0;
}

/** False when the GDAL tools are available; otherwise the reason to pass as `{ skip }`. */
export const gdalSkip: false | string = hasGdal()
  ? false
  : 'gdalinfo not found on PATH: install gdal-bin (apt-get install gdal-bin) to run the GDAL cross-checks';

export interface GdalBand {
  readonly band: number;
  readonly block: [number, number];
  readonly type: string;
  readonly description?: string;
  readonly noDataValue?: number | string;
  readonly colorInterpretation?: string;
}

export interface GdalInfo {
  readonly size: [number, number];
  readonly geoTransform?: number[];
  readonly coordinateSystem?: { readonly wkt: string };
  readonly metadata?: Record<string, Record<string, string>>;
  readonly bands: GdalBand[];
}

/** Runs `gdalinfo -json`; throws when GDAL prints a warning or an error. */
export function gdalinfo(path: string): GdalInfo {
  const result = spawnSync('gdalinfo', ['-json', path], { encoding: 'utf8' });
  if (result.status !== 0 || /warning|error/i.test(result.stderr)) {
    throw new Error(`gdalinfo ${path} failed (${result.status}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as GdalInfo;
}

/** The EPSG code at the end of a WKT2 CRS (its outermost ID). */
export function epsgOfWkt(wkt: string): number | undefined {
  const match = /ID\["EPSG",(\d+)\]\]\s*$/.exec(wkt);
  return match ? Number(match[1]) : undefined;
}

/** Every band's value at pixel (col, row), via `gdallocationinfo -valonly`. */
export function gdalLocationValues(path: string, col: number, row: number): number[] {
  const out = execFileSync('gdallocationinfo', ['-valonly', path, String(col), String(row)], {
    encoding: 'utf8',
  });
  return out
    .trim()
    .split(/\s+/)
    .map((v) => Number(v));
}

/** Decodes the whole raster with GDAL (`gdal_translate` to raw pixel-interleaved ENVI) and returns its bytes. */
export function gdalRawPixels(path: string, outPath: string): Buffer {
  const result = spawnSync('gdal_translate', ['-q', '-of', 'ENVI', '-co', 'INTERLEAVE=BIP', path, outPath], {
    encoding: 'utf8',
  });
  if (result.status !== 0 || /warning|error/i.test(result.stderr)) {
    throw new Error(`gdal_translate ${path} failed (${result.status}): ${result.stderr}`);
  }
  return readFileSync(outPath);
}
