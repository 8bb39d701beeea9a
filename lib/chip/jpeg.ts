/**
 * JPEG encoding of chips. Chips are small (300 px) and many (thousands per scene), so the cost
 * per call matters more than the cost per pixel: through sharp (libvips + mozjpeg) a 300 px RGB
 * chip costs 2.4-3.2 ms of CPU, of which most is pipeline set-up, against 0.85 ms through
 * libjpeg-turbo's TurboJPEG API (measured on chips of the bench scene; PIL, libjpeg-turbo too,
 * 1.0 ms). So grey and RGB chips are encoded with libjpeg-turbo (@julusian/jpeg-turbo, prebuilt
 * N-API binaries, on libuv's thread pool), straight from the decoded rows with a row stride, no
 * copy; other channel counts (grey + alpha, RGBA: JPEG drops the alpha) go through sharp, as does
 * everything when the native module cannot load on this platform.
 */
import { createRequire } from 'node:module';
import type * as TurboJpeg from '@julusian/jpeg-turbo';
import sharp from 'sharp';

type Turbo = typeof TurboJpeg;

let turbo: Turbo | null | undefined;

/** libjpeg-turbo's binding, or null when it cannot load here (unsupported platform). */
function loadTurbo(): Turbo | null {
  if (turbo === undefined) {
    try {
      turbo = createRequire(import.meta.url)('@julusian/jpeg-turbo') as Turbo;
    } catch {
      turbo = null;
    }
  }
  return turbo;
}

/** Pixels of a chip: `height` rows of `width` pixels, row r at `data[r * stride * channels]`. */
export interface ChipPixels {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  /** Pixels from one row's start to the next's (>= width). */
  readonly stride: number;
}

/** Which encoder `encodeJpeg` uses for this many channels. */
export function jpegEncoder(channels: number): 'libjpeg-turbo' | 'sharp' {
  return (channels === 1 || channels === 3) && loadTurbo() ? 'libjpeg-turbo' : 'sharp';
}

/** Packs strided pixels into a buffer of exactly width x height x channels. */
export function packPixels(pixels: ChipPixels): Buffer {
  const { data, width, height, channels, stride } = pixels;
  const rowBytes = width * channels;
  if (stride === width && data.byteLength === rowBytes * height) {
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  const out = Buffer.allocUnsafe(rowBytes * height);
  for (let r = 0; r < height; r++) {
    const start = r * stride * channels;
    out.set(data.subarray(start, start + rowBytes), r * rowBytes);
  }
  return out;
}

/**
 * Encodes a chip as baseline JPEG at `quality` (1..100), 4:2:0 chroma subsampling for colour
 * (as PIL and sharp do by default). `pixels.data` must stay unchanged until the promise settles.
 */
export async function encodeJpeg(pixels: ChipPixels, quality: number): Promise<Buffer> {
  const { data, width, height, channels, stride } = pixels;
  const jt = (channels === 1 || channels === 3) && loadTurbo();
  // TurboJPEG checks that stride x height pixels fit after the start, the last row included
  if (jt && data.byteLength >= stride * height * channels) {
    const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return jt.compress(buffer, {
      format: channels === 1 ? jt.FORMAT_GRAY : jt.FORMAT_RGB,
      subsampling: channels === 1 ? jt.SAMP_GRAY : jt.SAMP_420,
      width,
      height,
      stride,
      quality,
    });
  }
  if (jt) return encodeJpeg({ ...pixels, data: packPixels(pixels), stride: width }, quality);
  return sharp(packPixels(pixels), { raw: { width, height, channels: channels as 1 | 2 | 3 | 4 } })
    .jpeg({ quality, optimiseCoding: false })
    .toBuffer();
}
