// Rasters for the tile engine tests, generated (no binary fixtures), and GDAL's gdal2tiles /
// gdalwarp run on them as the independent renderer the tiles are checked against.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { tileMercatorBounds } from '../../lib/geo/web-mercator.js';

/** False when gdal2tiles.py and gdalwarp are available; otherwise the reason to skip. */
export const gdal2tilesSkip: false | string =
  spawnSync('gdal2tiles.py', ['--version'], { encoding: 'utf8' }).status === 0 &&
  spawnSync('gdalwarp', ['--version'], { encoding: 'utf8' }).status === 0
    ? false
    : 'gdal2tiles.py / gdalwarp not found: install gdal-bin and python3-gdal to run the GDAL cross-checks';

/** UTM 33N origin of the test scenes: near 13.3°E 45.3°N, west of the zone's central meridian (grid convergence ~1.2°). */
export const UTM_ORIGIN: readonly [number, number] = [367000, 5018000];

/**
 * A smooth 3-band uint8 scene in EPSG:32633 (8 m pixels): low-frequency waves of at most ~2.5
 * levels per pixel, so resampling kernels agree within a few levels while a shift of a few
 * pixels does not. With `nodataSquare`, a square of all-zero pixels and no-data 0.
 */
export async function writeSmoothScene(
  path: string,
  width: number,
  height: number,
  options: { nodataSquare?: readonly [col: number, row: number, size: number]; tileSize?: number } = {},
): Promise<void> {
  const data = new Uint8Array(width * height * 3);
  const sq = options.nodataSquare;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const i = (r * width + c) * 3;
      if (sq && c >= sq[0] && c < sq[0] + sq[2] && r >= sq[1] && r < sq[1] + sq[2]) continue;
      data[i] = Math.round(128 + 100 * Math.sin(c / 60) * Math.cos(r / 45));
      data[i + 1] = Math.round(20 + (200 * (c + r)) / (width + height));
      data[i + 2] = Math.round(128 + 90 * Math.sin((c - 2 * r) / 80));
      // keep valid pixels off the no-data value
      if (sq && data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 0) data[i + 1] = 1;
    }
  }
  await writeGeoTiff(path, data, {
    width,
    height,
    bands: 3,
    geotransform: [UTM_ORIGIN[0], 8, 0, UTM_ORIGIN[1], 0, -8],
    epsg: 32633,
    tileSize: options.tileSize ?? 256,
    ...(sq ? { nodata: 0 } : {}),
  });
}

/** A 4-band uint16 scene (blue, green, red, NIR like the demo scenes), same place and waves. */
export async function writeUint16Scene(path: string, width: number, height: number): Promise<void> {
  const data = new Uint16Array(width * height * 4);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const i = (r * width + c) * 4;
      data[i] = 300 + Math.round(200 * (1 + Math.sin((c - 2 * r) / 80)));
      data[i + 1] = 400 + Math.round(((c + r) / (width + height)) * 1500);
      data[i + 2] = 500 + Math.round(1000 * (1 + Math.sin(c / 60) * Math.cos(r / 45)));
      data[i + 3] = 3000;
    }
  }
  await writeGeoTiff(path, data, {
    width,
    height,
    bands: 4,
    geotransform: [UTM_ORIGIN[0], 8, 0, UTM_ORIGIN[1], 0, -8],
    epsg: 32633,
    tileSize: 256,
  });
}

/**
 * A class raster (uint8, no-data 255): classes 0..4 in 24 px cells with a no-data band across the
 * top. In EPSG:32633 by default, or in EPSG:3857 on the pixel lattice of zoom `onZoom`, its
 * top-left `offset` pixels right of and below the top-left of tile (x, y).
 */
export async function writeClassRaster(
  path: string,
  width: number,
  height: number,
  place: { onZoom: number; x: number; y: number; offset: number } | undefined = undefined,
): Promise<void> {
  const data = new Uint8Array(width * height);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const cell = Math.floor(c / 24) * 7 + Math.floor(r / 24) * 3;
      data[r * width + c] = r < 20 ? 255 : cell % 5;
    }
  }
  let geotransform: [number, number, number, number, number, number];
  let epsg: number;
  if (place) {
    const b = tileMercatorBounds({ z: place.onZoom, x: place.x, y: place.y });
    const res = (b.right - b.left) / 256;
    geotransform = [b.left + place.offset * res, res, 0, b.top - place.offset * res, 0, -res];
    epsg = 3857;
  } else {
    geotransform = [UTM_ORIGIN[0], 8, 0, UTM_ORIGIN[1], 0, -8];
    epsg = 32633;
  }
  await writeGeoTiff(path, data, { width, height, bands: 1, geotransform, epsg, nodata: 255, tileSize: 256 });
}

/** A COG of `input` made by GDAL (256 px blocks, overviews by `resampling`). */
export function gdalCog(input: string, output: string, resampling = 'AVERAGE'): void {
  execFileSync('gdal_translate', [
    '-q',
    '-of',
    'COG',
    '-co',
    'BLOCKSIZE=256',
    '-co',
    `OVERVIEW_RESAMPLING=${resampling}`,
    '-co',
    'COMPRESS=DEFLATE',
    input,
    output,
  ]);
}

/** Runs `gdal2tiles.py --xyz` for one zoom (so it is a base zoom, read from the warped source) and lists the tiles written. */
export function gdal2tiles(
  input: string,
  out: string,
  zoom: number,
  resampling: string,
): Map<string, string> {
  execFileSync(
    'gdal2tiles.py',
    ['--xyz', '-q', '-x', '-w', 'none', '--processes', '1', '-r', resampling, '-z', String(zoom), input, out],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const tiles = new Map<string, string>();
  const zdir = join(out, String(zoom));
  if (!existsSync(zdir)) return tiles;
  for (const x of readdirSync(zdir)) {
    for (const file of readdirSync(join(zdir, x))) {
      if (file.endsWith('.png')) tiles.set(`${zoom}/${x}/${file.slice(0, -4)}`, join(zdir, x, file));
    }
  }
  return tiles;
}

/** `gdalwarp` of `input` onto tile (z, x, y) of web mercator, 256 x 256, nearest; returns band 1 and its alpha. */
export async function gdalwarpTile(
  input: string,
  output: string,
  z: number,
  x: number,
  y: number,
): Promise<{ values: Uint8Array; alpha: Uint8Array }> {
  const b = tileMercatorBounds({ z, x, y });
  execFileSync('gdalwarp', [
    '-q',
    '-overwrite',
    '-t_srs',
    'EPSG:3857',
    '-te',
    String(b.left),
    String(b.bottom),
    String(b.right),
    String(b.top),
    '-ts',
    '256',
    '256',
    '-r',
    'near',
    '-dstalpha',
    '-of',
    'GTiff',
    input,
    output,
  ]);
  const { data, info } = await sharp(output).raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const values = new Uint8Array(n);
  const alpha = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    values[i] = data[i * info.channels]!;
    alpha[i] = data[i * info.channels + info.channels - 1]!;
  }
  return { values, alpha };
}

/** A PNG (ours or GDAL's: grey+alpha or RGBA) as 256 x 256 RGBA. */
export async function rgbaOf(png: Buffer | string): Promise<Uint8Array> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    const s = i * info.channels;
    if (info.channels === 2) {
      out.set([data[s]!, data[s]!, data[s]!, data[s + 1]!], i * 4);
    } else if (info.channels === 4) {
      out.set([data[s]!, data[s + 1]!, data[s + 2]!, data[s + 3]!], i * 4);
    } else if (info.channels === 3) {
      out.set([data[s]!, data[s + 1]!, data[s + 2]!, 255], i * 4);
    } else {
      out.set([data[s]!, data[s]!, data[s]!, 255], i * 4);
    }
  }
  return out;
}

/** Whether pixel i of a 256 px tile has a neighbour (8-connected, itself included) whose alpha differs from its own. */
export function nearAlphaEdge(a: Uint8Array, b: Uint8Array, i: number): boolean {
  const x = i % 256;
  const y = Math.floor(i / 256);
  for (let dy = -1; dy <= 1; dy++) {
    for (let dx = -1; dx <= 1; dx++) {
      const xx = x + dx;
      const yy = y + dy;
      if (xx < 0 || yy < 0 || xx > 255 || yy > 255) continue;
      const j = (yy * 256 + xx) * 4 + 3;
      if (a[j] !== a[i * 4 + 3] || b[j] !== b[i * 4 + 3]) return true;
    }
  }
  return false;
}
