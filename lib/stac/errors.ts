/**
 * The STAC room's user error: a bad ItemCollection file, an item without the chosen asset, or a
 * STAC API that answered with an error. Messages name the file or URL, the feature and the field.
 */
export class StacError extends Error {
  override readonly name = 'StacError';
}
