/**
 * The embed room's user error: a model without an embedding, inputs with no chips, a chip that
 * cannot be read. The CLI prints it as one line; messages name the file, the field and what would
 * be valid.
 */
export class EmbedError extends Error {
  override readonly name = 'EmbedError';
}
