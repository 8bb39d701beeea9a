/**
 * The labels room's user error. The CLI's error handler prints it as one line and exits
 * non-zero; messages name the file, the feature index, the field, the bad value and what is valid.
 */
export class LabelError extends Error {
  override readonly name = 'LabelError';
}
