/**
 * The tile engine's user error: a layer that cannot be served (not georeferenced, no usable CRS,
 * a kind that does not fit the raster) or a tile request out of range. Messages name the layer,
 * the field, the bad value and what is valid.
 */
export class TileError extends Error {
  override readonly name = 'TileError';
}
