/**
 * The predict room's user error: a model bundle that is missing or does not fit the scene, a
 * scene predict cannot read. The CLI prints it as one line and exits non-zero; messages name
 * the file, the field, the bad value and what would be valid.
 */
export class PredictError extends Error {
  override readonly name = 'PredictError';
}
