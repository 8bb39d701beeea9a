/**
 * The images labels are converted for: found under a folder or S3 prefix, or given one by one,
 * each with the size read from its header.
 */
import { readImageSize, IMAGE_EXTENSIONS } from '../raster/image-size.js';
import type { Storage } from '../storage/types.js';
import { basenameUri } from '../storage/uri.js';
import { LabelError } from './errors.js';

/** An image labels refer to. */
export interface LabelImage {
  /** File name that labels use to refer to it (xView `image_id`, e.g. `2355.tif`). */
  readonly name: string;
  /** Name of its COCO shard (`<id>.json`): the file stem, or a pipeline item id. */
  readonly id: string;
  readonly uri: string;
  readonly width: number;
  readonly height: number;
}

/** The file name without its extension. */
export function fileStem(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(0, dot) : name;
}

/** Reads the size of each image, a few at a time. */
export async function describeImages(
  storage: Storage,
  refs: readonly { readonly uri: string; readonly name?: string; readonly id?: string }[],
  options: { signal?: AbortSignal; concurrency?: number } = {},
): Promise<LabelImage[]> {
  const out: LabelImage[] = new Array<LabelImage>(refs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < refs.length) {
      const i = next++;
      const ref = refs[i]!;
      const size = await readImageSize(storage, ref.uri, options.signal ? { signal: options.signal } : {});
      const name = ref.name ?? basenameUri(ref.uri);
      out[i] = { name, id: ref.id ?? fileStem(name), uri: ref.uri, width: size.width, height: size.height };
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 8, refs.length) }, worker));
  return out;
}

/**
 * The images (.tif, .tiff, .png, .jpg, .jpeg) under a folder or S3 prefix, recursively, in name
 * order; macOS resource-fork files (`._*`) are skipped.
 */
export async function listImages(
  storage: Storage,
  location: string,
  options: { signal?: AbortSignal } = {},
): Promise<LabelImage[]> {
  const prefix = location.endsWith('/') ? location : `${location}/`;
  const refs: { uri: string }[] = [];
  const names = new Map<string, string>();
  for await (const info of storage.list(prefix, options.signal ? { signal: options.signal } : {})) {
    const name = basenameUri(info.uri);
    const lower = name.toLowerCase();
    if (name.startsWith('._') || !IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext))) continue;
    const other = names.get(name);
    if (other !== undefined) {
      throw new LabelError(
        `--images ${location}: two images are named '${name}' (${other} and ${info.uri}); labels refer to images by file name, so names must be unique`,
      );
    }
    names.set(name, info.uri);
    refs.push({ uri: info.uri });
  }
  if (refs.length === 0) {
    throw new LabelError(`--images ${location}: no images (.tif, .tiff, .png, .jpg, .jpeg) found there`);
  }
  return describeImages(storage, refs, options);
}
