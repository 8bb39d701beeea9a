/**
 * The no-data class of a chip: `all data`, `partial data` or `no data`, from its valid pixels.
 * A pixel is valid when its alpha is above 0 (images with alpha), else when any colour channel
 * differs from the no-data value (0 for `geobatch rgb` output); with no no-data value and no
 * alpha every pixel is valid. Pure, no I/O.
 */
export type NodataClass = 'all data' | 'partial data' | 'no data';

/** The class of a chip with `valid` of `total` pixels valid. */
export function nodataClass(valid: number, total: number): NodataClass {
  if (!Number.isInteger(valid) || !Number.isInteger(total) || total <= 0 || valid < 0 || valid > total) {
    throw new RangeError(
      `Expected 0 <= valid <= total and total > 0 but received valid ${valid}, total ${total}`,
    );
  }
  return valid === total ? 'all data' : valid === 0 ? 'no data' : 'partial data';
}

/** Valid pixels of interleaved 8-bit pixels (`channels` per pixel, the last one alpha when `alpha`). */
export function countValidPixels(
  pixels: Uint8Array,
  channels: number,
  options: { readonly alpha: boolean; readonly nodata: number | null },
): number {
  const total = Math.floor(pixels.length / channels);
  let valid = 0;
  if (options.alpha) {
    for (let i = channels - 1; i < pixels.length; i += channels) if (pixels[i]! > 0) valid++;
    return valid;
  }
  const nodata = options.nodata;
  if (nodata === null) return total;
  for (let p = 0; p < pixels.length; p += channels) {
    for (let c = 0; c < channels; c++) {
      if (pixels[p + c] !== nodata) {
        valid++;
        break;
      }
    }
  }
  return valid;
}
