/**
 * The embed room's user error: an embeddings folder that is missing or inconsistent, a chip that
 * is not in it, a stale index. The CLI prints it as one line and exits non-zero; messages name
 * the file, the field, the bad value and what would be valid.
 */
export class EmbedError extends Error {
  override readonly name = 'EmbedError';
}
