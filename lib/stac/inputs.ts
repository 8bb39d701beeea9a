/**
 * The `stac:` input form of a pipeline: a saved STAC ItemCollection (or Item) file, local, on S3
 * or at an http(s) URL, read through storage and turned into input items. Planning reads only
 * this file, so a plan made from it is the same offline and later.
 */
import { StorageError } from '../storage/errors.js';
import type { InputItem } from '../storage/inputs.js';
import type { Storage } from '../storage/types.js';
import { isHttpUri, isS3Uri, joinUri, normalizeUri, toLocalPath } from '../storage/uri.js';
import { StacError } from './errors.js';
import { parseStacItems, stacInputItems } from './items.js';

export interface ExpandStacOptions {
  /** The asset key to take from every item; see `chooseAssetKey` for the rule without it. */
  readonly asset?: string;
  /**
   * What a relative file name resolves against (the pipeline file's directory).
   * @default process.cwd()
   */
  readonly baseDir?: string;
  readonly signal?: AbortSignal;
}

/** Where `file` is, as a storage URI: relative names against `baseDir` (a local directory or s3:// prefix). */
export function resolveStacFile(file: string, baseDir: string | undefined): string {
  if (isHttpUri(file) || isS3Uri(file)) return file;
  const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(file);
  if (baseDir !== undefined && isS3Uri(baseDir) && !hasScheme && !file.startsWith('/'))
    return joinUri(baseDir, file);
  return normalizeUri(file, baseDir === undefined ? process.cwd() : toLocalPath(baseDir));
}

/**
 * The input items of a STAC ItemCollection file: ids from the item ids, uris from the chosen
 * asset's href (see `stacInputItems`). A missing file is a 'NotFound' StorageError; a bad file, an
 * item without the asset, or a file without items a {@link StacError} naming the file.
 */
export async function expandStacInput(
  file: string,
  storage: Storage,
  options: ExpandStacOptions = {},
): Promise<InputItem[]> {
  const uri = resolveStacFile(file, options.baseDir);
  let text: string;
  try {
    text = (await storage.read(uri, options.signal ? { signal: options.signal } : {})).toString('utf8');
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') {
      throw new StorageError('NotFound', uri, 'STAC ItemCollection file not found', { cause: error });
    }
    throw error;
  }
  const items = stacInputItems(
    parseStacItems(text, uri),
    uri,
    options.asset === undefined ? {} : { asset: options.asset },
  );
  if (items.length === 0) throw new StacError(`${uri}: the ItemCollection has no items`);
  return items;
}
