/**
 * The dataset room's user error. The CLI's error handler prints it as one line and exits
 * non-zero; messages name the file or option, the bad value and what is valid.
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}
