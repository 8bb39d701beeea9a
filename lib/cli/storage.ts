/** The storage every command uses (one per process). */
import { createStorage } from '../storage/index.js';
import type { Storage } from '../storage/types.js';

let storage: Storage | undefined;

/** The process-wide storage: local paths and s3:// URIs. */
export function cliStorage(): Storage {
  storage ??= createStorage();
  return storage;
}
