/** Small georeferenced RGB scenes for the predict tests, and GDAL's view of files. */
import { execFileSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';

/** EPSG:32631 (UTM 31N), 0.5 m pixels, near Rotterdam. */
export const SCENE_GT = [592300, 0.5, 0, 5750100, 0, -0.5] as const;

/**
 * An 8-bit RGB GeoTIFF of smooth blobs and stripes (so that an untrained network's classes vary
 * across it); `nodata`: a box [x0, y0, x1, y1] set to 0,0,0 and the file's no-data value 0.
 * `tile`: repeat the first `tile` columns across the width (windows that see the same pixels).
 */
export async function writeScene(
  path: string,
  width: number,
  height: number,
  options: {
    nodata?: readonly [number, number, number, number];
    tile?: number;
    seed?: number;
    epsg?: number | null;
  } = {},
): Promise<string> {
  const data = new Uint8Array(width * height * 3);
  const seed = options.seed ?? 1;
  for (let y = 0; y < height; y++) {
    for (let x0 = 0; x0 < width; x0++) {
      const x = options.tile ? x0 % options.tile : x0;
      const i = (y * width + x0) * 3;
      const v = Math.sin((x + seed * 13) / 17) * Math.cos((y - seed * 7) / 23);
      data[i] = 1 + Math.round(127 + 120 * v);
      data[i + 1] = 1 + ((x * 3 + y * 5 + seed) % 200);
      data[i + 2] = 1 + Math.round(127 + 120 * Math.sin((x * y) / 900 + seed));
    }
  }
  const box = options.nodata;
  if (box) {
    for (let y = box[1]; y < box[3]; y++) data.fill(0, (y * width + box[0]) * 3, (y * width + box[2]) * 3);
  }
  const epsg = options.epsg === undefined ? 32631 : options.epsg;
  await writeGeoTiff(path, data, {
    width,
    height,
    bands: 3,
    dtype: 'uint8',
    tileSize: 128,
    ...(epsg !== null ? { geotransform: SCENE_GT, epsg } : {}),
    ...(box ? { nodata: 0 } : {}),
  });
  return path;
}

/** `gdalinfo -json` of a file. */
export function gdalinfo(path: string): {
  size: [number, number];
  geoTransform: number[];
  coordinateSystem: { wkt: string };
  cornerCoordinates: Record<string, number[]>;
  bands: { block: number[]; type: string; noDataValue?: number }[];
  metadata: Record<string, Record<string, string>>;
} {
  return JSON.parse(execFileSync('gdalinfo', ['-json', '-mm', path], { encoding: 'utf8' })) as ReturnType<
    typeof gdalinfo
  >;
}

/** Pixel (x, y) of `scene` in CRS84 lon/lat, by GDAL. */
export function gdalLonLat(
  scene: string,
  points: readonly (readonly [number, number])[],
): [number, number][] {
  const out = execFileSync('gdaltransform', ['-t_srs', 'OGC:CRS84', scene], {
    input: points.map(([x, y]) => `${x} ${y}`).join('\n') + '\n',
    encoding: 'utf8',
  });
  return out
    .trim()
    .split('\n')
    .map((l) => {
      const [lon, lat] = l.trim().split(/\s+/).map(Number);
      return [lon!, lat!];
    });
}

/** The band-1 values of a uint8 raster, by GDAL (as raw bytes). */
export function gdalBytes(path: string, tmp: string): Buffer {
  const out = join(tmp, `gdal-${Math.random().toString(36).slice(2)}.bin`);
  execFileSync('gdal_translate', ['-q', '-of', 'ENVI', '-b', '1', path, out]);
  return execFileSync('cat', [out]);
}

/** Every file under a folder, relative, sorted (hidden ones too). */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
