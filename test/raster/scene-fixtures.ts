// Small rasters for the reader and rgb tests: a seeded multiband scene written by the project's
// GeoTIFF writer, re-encoded by gdal_translate into other TIFF layouts (strips, tiles, planes,
// codecs, byte orders), and GDAL's own decode of any file as the reference.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { GeoTransform } from '../../lib/geo/affine.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import type { PixelArray, RasterDType } from '../../lib/raster/geotiff-writer.js';
import { prng } from './fixtures.js';

export const UTM33_GT: GeoTransform = [455904, 0.5, 0, 5732523, 0, -0.5];

const CTORS: Record<RasterDType, new (n: number) => PixelArray> = {
  uint8: Uint8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  float64: Float64Array,
};

export interface SceneOptions {
  readonly width: number;
  readonly height: number;
  readonly bands: number;
  readonly dtype: RasterDType;
  readonly seed?: number;
  /** Pixels with col + row < this are no-data (every band). */
  readonly nodataCorner?: number;
  readonly nodata?: number;
  readonly geotransform?: GeoTransform | null;
  readonly epsg?: number;
  readonly tileSize?: number;
}

/** Pixel-interleaved samples of a smooth multiband scene with noise (values 100..~2200, or scaled for uint8). */
export function sceneSamples(o: SceneOptions): PixelArray {
  const out = new CTORS[o.dtype](o.width * o.height * o.bands);
  const random = prng(o.seed ?? 7);
  const scale = o.dtype === 'uint8' ? 0.1 : 1;
  const offset = o.dtype === 'int16' ? -800 : 0;
  for (let y = 0; y < o.height; y++) {
    for (let x = 0; x < o.width; x++) {
      for (let b = 0; b < o.bands; b++) {
        const i = (y * o.width + x) * o.bands + b;
        if (o.nodataCorner !== undefined && x + y < o.nodataCorner) {
          out[i] = o.nodata ?? 0;
          continue;
        }
        const v =
          300 + 200 * b + 800 * (0.5 + 0.5 * Math.sin(x / 23 + b) * Math.cos(y / 17)) + random() * 300;
        out[i] = o.dtype.startsWith('float') ? v / 7 : Math.round(v * scale + offset);
      }
    }
  }
  return out;
}

/** Writes {@link sceneSamples} as a GeoTIFF with the project's writer. */
export async function writeScene(path: string, o: SceneOptions): Promise<PixelArray> {
  const data = sceneSamples(o);
  mkdirSync(dirname(path), { recursive: true });
  const gt = o.geotransform === undefined ? UTM33_GT : o.geotransform;
  await writeGeoTiff(path, data, {
    width: o.width,
    height: o.height,
    bands: o.bands,
    dtype: o.dtype,
    tileSize: o.tileSize ?? 64,
    ...(gt ? { geotransform: gt, epsg: o.epsg ?? 32633 } : {}),
    ...(o.nodata !== undefined ? { nodata: o.nodata } : {}),
  });
  return data;
}

/** Runs a GDAL command-line tool; throws with its stderr when it fails. */
export function gdal(tool: string, args: readonly string[]): string {
  const result = spawnSync(tool, args, { encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(`${tool} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** GDAL's decode of every band, pixel-interleaved, as a typed array of `dtype`. */
export function gdalPixels(path: string, dtype: RasterDType, extra: readonly string[] = []): PixelArray {
  const raw = `${path}.gdal.raw`;
  gdal('gdal_translate', ['-q', '-of', 'ENVI', '-co', 'INTERLEAVE=BIP', ...extra, path, raw]);
  const bytes = readFileSync(raw);
  rmSync(raw, { force: true });
  rmSync(`${raw.replace(/\.raw$/, '')}.raw.hdr`, { force: true });
  rmSync(`${raw}.hdr`, { force: true });
  rmSync(`${raw}.aux.xml`, { force: true });
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const Ctor = CTORS[dtype] as unknown as new (b: ArrayBuffer) => PixelArray;
  return new Ctor(copy.buffer);
}
