/**
 * The tile grids' user error (bad level, latitude out of range, malformed quadkey or cell id).
 * The CLI prints it as one line; messages name the field, the bad value and the valid range.
 */
export class GridError extends Error {
  override readonly name = 'GridError';
}
