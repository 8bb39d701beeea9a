/** GDAL's COG validator and GDAL's own COG, as the references for the COG writer's tests. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { gdal } from './scene-fixtures.js';

const VALIDATOR = '/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py';

/** Why the validator cannot run here, or false. */
export const validatorSkip: false | string = existsSync(VALIDATOR)
  ? false
  : `GDAL's COG validator is not installed (${VALIDATOR}; Debian python3-gdal)`;

/** Runs GDAL's COG validator with the full check; returns its output, throws with it when the file is not a valid COG. */
export function validateCog(path: string): string {
  const r = spawnSync('/usr/bin/python3', [VALIDATOR, '--full-check=yes', path], { encoding: 'utf8' });
  const text = `${r.stdout}${r.stderr}`;
  if (r.status !== 0 || !text.includes('is a valid cloud optimized GeoTIFF')) {
    throw new Error(`${path} is not a valid COG (exit ${r.status}):\n${text}`);
  }
  return text;
}

/** `gdal_translate -of COG` of `input` with the given resampling and tile size. */
export function gdalCog(
  input: string,
  output: string,
  resampling: 'AVERAGE' | 'NEAREST',
  tileSize: number,
): void {
  gdal('gdal_translate', [
    '-q',
    '-of',
    'COG',
    '-co',
    `BLOCKSIZE=${tileSize}`,
    '-co',
    `RESAMPLING=${resampling}`,
    '-co',
    'COMPRESS=DEFLATE',
    input,
    output,
  ]);
}

/** Overview sizes [width, height] of band 1 as `gdalinfo -json` reports them. */
export function gdalOverviewSizes(path: string): [number, number][] {
  const info = JSON.parse(gdal('gdalinfo', ['-json', path])) as {
    bands: { overviews?: { size: [number, number] }[] }[];
  };
  return (info.bands[0]?.overviews ?? []).map((o) => o.size);
}

/** The largest difference between two equally long sample arrays. */
export function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}
