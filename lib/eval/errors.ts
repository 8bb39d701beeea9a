/**
 * The eval room's user error: predictions or truth that cannot be read or do not fit each other
 * (another scene, another CRS, unknown classes). Printed as one line by the CLI, exit non-zero.
 */
export class EvalError extends Error {
  override readonly name = 'EvalError';
}
