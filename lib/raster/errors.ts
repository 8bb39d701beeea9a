/**
 * The raster room's user error. The CLI's error handler prints it as one line and exits
 * non-zero; messages name the file, the field or option, the bad value and what is valid.
 */
export class RasterError extends Error {
  override readonly name = 'RasterError';
}
