/**
 * Width and height of an image from its header alone (a few KB read by range): TIFF through
 * geotiff.js, PNG from its IHDR chunk, JPEG from its start-of-frame marker, JPEG 2000 from its
 * header boxes and main header.
 */
import type { Storage } from '../storage/types.js';
import { RasterError } from './errors.js';
import { isJpeg2000Head, openRaster } from './reader.js';
import { openTiff } from './source.js';

export interface ImageSize {
  readonly width: number;
  readonly height: number;
  readonly format: 'tiff' | 'png' | 'jpeg' | 'jpeg2000';
}

/** File extensions of images {@link readImageSize} reads. */
export const IMAGE_EXTENSIONS = ['.tif', '.tiff', '.png', '.jpg', '.jpeg', '.jp2', '.j2k', '.j2c'];

/** Reads an image's size from its header (TIFF, PNG or JPEG). */
export async function readImageSize(
  storage: Storage,
  uri: string,
  options: { signal?: AbortSignal } = {},
): Promise<ImageSize> {
  const head = await storage.readRange(uri, 0, 64 * 1024, options);
  const magic = head.subarray(0, 4).toString('hex');
  if (['49492a00', '4d4d002a', '49492b00', '4d4d002b'].includes(magic)) {
    try {
      const { tiff } = await openTiff(storage, uri, options);
      const image = await tiff.getImage(0);
      return { width: image.getWidth(), height: image.getHeight(), format: 'tiff' };
    } catch (error) {
      throw new RasterError(
        `${uri}: cannot read the TIFF header (truncated or corrupt?): ${(error as Error).message}`,
      );
    }
  }
  if (isJpeg2000Head(head)) {
    const raster = await openRaster(storage, uri, options);
    try {
      return { width: raster.info.width, height: raster.info.height, format: 'jpeg2000' };
    } finally {
      await raster.close();
    }
  }
  if (magic === '89504e47' && head.length >= 24 && head.subarray(12, 16).toString('latin1') === 'IHDR') {
    return { width: head.readUInt32BE(16), height: head.readUInt32BE(20), format: 'png' };
  }
  if (magic.startsWith('ffd8')) {
    let data = head;
    for (let limit = 64 * 1024; ; limit *= 4) {
      const size = jpegSize(data);
      if (size) return { ...size, format: 'jpeg' };
      if (data.length < limit || limit >= 16 * 1024 * 1024) break;
      data = await storage.readRange(uri, 0, limit * 4, options);
    }
    throw new RasterError(
      `${uri}: no JPEG frame header (SOF marker) found; the file is truncated or not a JPEG`,
    );
  }
  throw new RasterError(
    `${uri}: not a TIFF, PNG, JPEG or JPEG 2000 image (it starts with bytes ${[...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`,
  );
}

/** Size from the first SOF marker of a JPEG, or undefined when it is not in `data`. */
function jpegSize(data: Buffer): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 9 < data.length) {
    if (data[i] !== 0xff) return undefined;
    const marker = data[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = data.readUInt16BE(i + 2);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: data.readUInt16BE(i + 5), width: data.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  return undefined;
}
