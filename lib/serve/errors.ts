/**
 * The viewer's user error: a target that is neither a run nor a raster, a bad option (port,
 * host), or a request for something the run does not have. Messages name what was asked, the bad
 * value and what is valid.
 */
export class ServeError extends Error {
  override readonly name = 'ServeError';
}
