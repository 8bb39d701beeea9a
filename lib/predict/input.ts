/**
 * A window's pixels as the network's input: RGB, resized to size x size exactly as the trainer's
 * Pillow BILINEAR resize (lib/raster/pil-resize.ts), then [0, 1] float32 planes (NCHW), as the
 * trainer's to_tensor divides by 255.
 */
import type { ChipPixels } from '../chip/jpeg.js';
import { resizeBilinearLikePil } from '../raster/pil-resize.js';

/** A window's pixels (1 grey, 2 grey+alpha, 3 RGB or 4 RGBA channels) as packed RGB, as Pillow's convert('RGB'). */
export function toRgb(pixels: ChipPixels): Uint8Array {
  const { width, height, channels, stride, data } = pixels;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    let s = y * stride * channels;
    let d = y * width * 3;
    for (let x = 0; x < width; x++, s += channels, d += 3) {
      if (channels >= 3) {
        out[d] = data[s]!;
        out[d + 1] = data[s + 1]!;
        out[d + 2] = data[s + 2]!;
      } else {
        out[d] = out[d + 1] = out[d + 2] = data[s]!;
      }
    }
  }
  return out;
}

/**
 * Writes a window as the network's input: planes R, G, B of `size` x `size` float32 in [0, 1] at
 * `out[offset..offset + 3 * size * size)`.
 */
export function windowInput(pixels: ChipPixels, size: number, out: Float32Array, offset: number): void {
  const { width, height } = pixels;
  const rgb = resizeBilinearLikePil(toRgb(pixels), width, height, 3, size, size);
  const plane = size * size;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[offset + i] = rgb[p]! / 255;
    out[offset + plane + i] = rgb[p + 1]! / 255;
    out[offset + 2 * plane + i] = rgb[p + 2]! / 255;
  }
}
