/**
 * The dataset registry's user error: a bad `datasets.yaml` (one line per problem, each naming the
 * file, the YAML path, the bad value and what is valid, with its line), an unknown tag, a file that
 * is missing or fails its checksum.
 */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
}
