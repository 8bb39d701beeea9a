/**
 * Where raster outputs go: writers that need a local file (the streaming GeoTIFF writer) write
 * straight to a local destination, or to a temporary file that is uploaded whole to an s3://
 * destination. Plus the sidecars that georeference PNG and JPEG files for GDAL and GIS tools.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { GeoTransform } from '../geo/affine.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, isS3Uri, toLocalPath } from '../storage/uri.js';

/**
 * Runs `write(path)` for destination `uri`: `path` is the local destination itself (its folder is
 * created), or for s3:// a temporary file that is uploaded whole once `write` resolves.
 * `write` must leave nothing at `path` when it fails (the GeoTIFF writer renames last).
 */
export async function writeThroughLocalFile(
  storage: Storage,
  uri: string,
  write: (path: string) => Promise<void>,
  options: { signal?: AbortSignal; tmpDir?: string } = {},
): Promise<void> {
  if (!isS3Uri(uri)) {
    const path = toLocalPath(uri);
    await mkdir(dirname(path), { recursive: true });
    await write(path);
    return;
  }
  const dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'geobatch-out-'));
  try {
    const path = join(dir, basenameUri(uri));
    await write(path);
    await storage.writeAtomic(uri, createReadStream(path), options.signal ? { signal: options.signal } : {});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The world file next to an image: `x.png` -> `x.pgw`, `x.jpg` -> `x.jgw` (first and last letter of the extension + w). */
export function worldFileUri(uri: string): string {
  const m = /\.([A-Za-z0-9]+)$/.exec(uri);
  if (!m) return `${uri}.wld`;
  const ext = m[1]!;
  const wext = ext.length >= 3 ? `${ext[0]}${ext[ext.length - 1]}w` : `${ext}w`;
  return uri.slice(0, -ext.length) + wext;
}

/**
 * A world file's six lines: pixel width, row rotation, column rotation, pixel height, and the
 * centre of the top-left pixel (a world file names pixel centres, a geotransform pixel corners).
 */
export function worldFileText(gt: GeoTransform): string {
  const [x0, a, b, y0, d, e] = gt;
  const lines = [a, d, b, e, x0 + a / 2 + b / 2, y0 + d / 2 + e / 2];
  return lines.map((v) => String(v)).join('\n') + '\n';
}

/**
 * A GDAL PAM sidecar (`<image>.aux.xml`) that gives a PNG or JPEG its CRS; the axis mapping keeps
 * x = easting/longitude as in the world file.
 */
export function pamAuxXml(epsg: number): string {
  return `<PAMDataset>\n  <SRS dataAxisToSRSAxisMapping="1,2">EPSG:${epsg}</SRS>\n</PAMDataset>\n`;
}
