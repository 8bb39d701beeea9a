/**
 * The dataset a training run reads, made local: a `geobatch dataset build` folder (dataset.json
 * naming the split files and the images root) or a plain folder with train.json, val.json and
 * images/. Local images are used where they are; remote ones (S3) are synced into
 * `<cache>/datasets/<hash of imagesRoot>/images/<file_name>` with bounded concurrency, skipping
 * files already there with the right size (and ETag, from the manifest of the previous sync).
 *
 * Why not `storage.localPath()`: its download cache stores each object under a hash of its
 * identity, but the trainer needs the COCO layout (`<imagesDir>/<file_name>`, sub-folders kept),
 * so the sync writes that tree itself, with the same atomic writes (writeFileAtomic).
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { defaultCacheDir } from '../storage/cache.js';
import { writeFileAtomic } from '../storage/local.js';
import type { ObjectInfo, Storage } from '../storage/types.js';
import { isS3Uri, joinUri, normalizeUri, toLocalPath } from '../storage/uri.js';
import { TrainError } from './errors.js';
import { forEachLimit } from './pool.js';

export interface TrainClass {
  readonly id: number;
  readonly name: string;
}

export interface SplitSummary {
  /** URI of the split's COCO file. */
  readonly uri: string;
  readonly images: number;
  readonly annotations: number;
  /** Annotations per class name. */
  readonly perClass: Record<string, number>;
}

export interface PreparedDataset {
  /** The dataset URI as given (normalised). */
  readonly uri: string;
  /** Where the images live (URI). */
  readonly imagesRoot: string;
  /** `data` of the trainer config. */
  readonly data: {
    readonly root: string;
    readonly train: string;
    readonly val: string;
    readonly imagesDir: string;
  };
  readonly classes: readonly TrainClass[];
  readonly splits: { readonly train: SplitSummary; readonly val: SplitSummary };
  /** dataset.json, when the dataset has one. */
  readonly meta?: Record<string, unknown>;
  readonly sync: { readonly files: number; readonly downloaded: number; readonly bytes: number };
}

export interface PrepareDatasetOptions {
  /** @default GEOBATCH_CACHE_DIR, else ~/.cache/geobatch */
  readonly cacheDir?: string;
  /** Downloads in flight. @default 16 */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  /** Files synced so far (downloaded or already there) of the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

interface CocoSplit {
  readonly images: { readonly id: unknown; readonly file_name: string }[];
  readonly annotations: { readonly category_id: unknown }[];
  readonly categories: { readonly id: number; readonly name: string }[];
}

interface Manifest {
  readonly version: 1;
  readonly imagesRoot: string;
  readonly files: Record<string, { size: number; etag?: string }>;
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

async function readJson(storage: Storage, uri: string, signal?: AbortSignal): Promise<unknown> {
  const bytes = await storage.read(uri, { signal });
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new TrainError('data', `${uri}: not valid JSON (${(error as Error).message})`);
  }
}

function parseSplit(value: unknown, uri: string): CocoSplit {
  const coco = value as Partial<Record<keyof CocoSplit, unknown>>;
  if (typeof value !== 'object' || value === null || !Array.isArray(coco.images)) {
    throw new TrainError('data', `${uri}: expected a COCO object with an 'images' array`);
  }
  for (const [i, image] of (coco.images as unknown[]).entries()) {
    const name = (image as { file_name?: unknown } | null)?.file_name;
    if (typeof name !== 'string' || name === '' || isAbsolute(name) || name.split('/').includes('..')) {
      throw new TrainError(
        'data',
        `${uri}: images[${i}].file_name = ${JSON.stringify(name)}: expected a relative path inside the images root`,
      );
    }
  }
  const categories = Array.isArray(coco.categories) ? coco.categories : [];
  for (const [i, c] of categories.entries()) {
    const cat = c as { id?: unknown; name?: unknown } | null;
    if (!Number.isInteger(cat?.id) || typeof cat?.name !== 'string') {
      throw new TrainError('data', `${uri}: categories[${i}] = ${JSON.stringify(c)}: expected {id, name}`);
    }
  }
  return {
    images: coco.images as CocoSplit['images'],
    annotations: Array.isArray(coco.annotations) ? (coco.annotations as CocoSplit['annotations']) : [],
    categories: categories as CocoSplit['categories'],
  };
}

function summarise(split: CocoSplit, uri: string, classes: readonly TrainClass[]): SplitSummary {
  const names = new Map(classes.map((c) => [c.id, c.name]));
  const perClass: Record<string, number> = Object.fromEntries(classes.map((c) => [c.name, 0]));
  for (const a of split.annotations) {
    const name = names.get(a.category_id as number);
    if (name !== undefined) perClass[name] = (perClass[name] ?? 0) + 1;
  }
  return { uri, images: split.images.length, annotations: split.annotations.length, perClass };
}

/** Categories of dataset.json (when it lists {id, name}), else the union of the splits' by id. */
function classesOf(meta: Record<string, unknown> | undefined, splits: readonly CocoSplit[]): TrainClass[] {
  const byId = new Map<number, string>();
  const fromMeta = meta?.['categories'];
  if (Array.isArray(fromMeta)) {
    for (const c of fromMeta as { id?: unknown; name?: unknown }[]) {
      if (Number.isInteger(c?.id) && typeof c?.name === 'string') byId.set(c.id as number, c.name);
    }
  }
  if (byId.size === 0)
    for (const s of splits) for (const c of s.categories) if (!byId.has(c.id)) byId.set(c.id, c.name);
  return [...byId.entries()].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id, name }));
}

function splitName(meta: Record<string, unknown>, split: 'train' | 'val', uri: string): string {
  const value = (meta['splits'] as Record<string, unknown> | undefined)?.[split];
  if (typeof value !== 'string' || value === '') {
    throw new TrainError(
      'data',
      `${uri}: splits.${split} = ${JSON.stringify(value)}: expected the name of the split's COCO file`,
    );
  }
  return value;
}

/** Resolves the dataset at `uri` and makes its images local (see the module comment). */
export async function prepareDataset(
  storage: Storage,
  datasetUri: string,
  options: PrepareDatasetOptions = {},
): Promise<PreparedDataset> {
  const uri = normalizeUri(datasetUri);
  const signal = options.signal;
  const metaUri = joinUri(uri, 'dataset.json');
  let meta: Record<string, unknown> | undefined;
  let trainUri = joinUri(uri, 'train.json');
  let valUri = joinUri(uri, 'val.json');
  let imagesRoot = joinUri(uri, 'images');
  if (await storage.exists(metaUri, { signal })) {
    const value = await readJson(storage, metaUri, signal);
    if (typeof value !== 'object' || value === null || (value as { version?: unknown }).version !== 1) {
      throw new TrainError('data', `${metaUri}: expected a dataset.json object with version 1`);
    }
    meta = value as Record<string, unknown>;
    trainUri = joinUri(uri, splitName(meta, 'train', metaUri));
    valUri = joinUri(uri, splitName(meta, 'val', metaUri));
    const root = meta['imagesRoot'];
    if (typeof root !== 'string' || root === '') {
      throw new TrainError(
        'data',
        `${metaUri}: imagesRoot = ${JSON.stringify(root)}: expected the URI of the images`,
      );
    }
    imagesRoot =
      isS3Uri(root) || isAbsolute(root) || root.startsWith('file:') ? normalizeUri(root) : joinUri(uri, root);
  } else {
    for (const split of [trainUri, valUri]) {
      if (!(await storage.exists(split, { signal }))) {
        throw new TrainError(
          'data',
          `dataset ${uri}: neither dataset.json nor ${split} exists (expected the output of 'geobatch dataset build' or a folder with train.json, val.json and images/)`,
        );
      }
    }
  }
  const trainRaw = await readJson(storage, trainUri, signal);
  const valRaw = await readJson(storage, valUri, signal);
  const train = parseSplit(trainRaw, trainUri);
  const val = parseSplit(valRaw, valUri);
  const classes = classesOf(meta, [train, val]);
  if (classes.length === 0) {
    throw new TrainError(
      'data',
      `${trainUri}: no categories (a COCO 'categories' list of {id, name} is needed)`,
    );
  }
  const splits = { train: summarise(train, trainUri, classes), val: summarise(val, valUri, classes) };

  const cacheRoot = join(options.cacheDir ?? defaultCacheDir(), 'datasets', hash(imagesRoot));
  // split files: used in place when local, else copied next to the synced images
  let root: string;
  let trainFile: string;
  let valFile: string;
  if (!isS3Uri(trainUri) && !isS3Uri(valUri)) {
    root = toLocalPath(uri);
    trainFile = relative(root, toLocalPath(trainUri));
    valFile = relative(root, toLocalPath(valUri));
  } else {
    root = cacheRoot;
    const dir = join('splits', hash(uri));
    trainFile = join(dir, 'train.json');
    valFile = join(dir, 'val.json');
    await writeFileAtomic(join(root, trainFile), JSON.stringify(trainRaw), signal);
    await writeFileAtomic(join(root, valFile), JSON.stringify(valRaw), signal);
  }
  const files = [...new Set([...train.images, ...val.images].map((i) => i.file_name))].sort();
  let imagesDir: string;
  let sync = { files: files.length, downloaded: 0, bytes: 0 };
  if (!isS3Uri(imagesRoot)) {
    imagesDir = relative(root, toLocalPath(imagesRoot)) || '.';
  } else {
    sync = await syncImages(storage, imagesRoot, files, cacheRoot, options);
    imagesDir = relative(root, join(cacheRoot, 'images')) || '.';
  }
  return {
    uri,
    imagesRoot,
    data: { root, train: trainFile, val: valFile, imagesDir },
    classes,
    splits,
    ...(meta ? { meta } : {}),
    sync,
  };
}

async function readManifest(path: string, imagesRoot: string): Promise<Manifest['files']> {
  try {
    const manifest = JSON.parse(await readFile(path, 'utf8')) as Manifest;
    return manifest.version === 1 && manifest.imagesRoot === imagesRoot ? manifest.files : {};
  } catch {
    return {};
  }
}

async function localSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Copies `files` (relative to `imagesRoot`) into `<cacheRoot>/images/`, skipping those present with
 * the remote size and ETag; `<cacheRoot>/manifest.json` records what was synced and is written last.
 */
export async function syncImages(
  storage: Storage,
  imagesRoot: string,
  files: readonly string[],
  cacheRoot: string,
  options: PrepareDatasetOptions = {},
): Promise<{ files: number; downloaded: number; bytes: number }> {
  const signal = options.signal;
  const prefix = imagesRoot.endsWith('/') ? imagesRoot : `${imagesRoot}/`;
  const remote = new Map<string, ObjectInfo>();
  const wanted = new Set(files);
  for await (const info of storage.list(prefix, { signal })) {
    const rel = info.uri.slice(prefix.length);
    if (wanted.has(rel)) remote.set(rel, info);
  }
  const missing = files.filter((f) => !remote.has(f));
  if (missing.length > 0) {
    throw new TrainError(
      'data',
      `${missing.length} image(s) of the dataset are missing under ${prefix}: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''}`,
    );
  }
  const manifestPath = join(cacheRoot, 'manifest.json');
  const previous = await readManifest(manifestPath, imagesRoot);
  const synced: Manifest['files'] = { ...previous };
  let done = 0;
  let downloaded = 0;
  let bytes = 0;
  options.onProgress?.(0, files.length);
  await forEachLimit(files, options.concurrency ?? 16, async (file) => {
    const info = remote.get(file)!;
    const path = join(cacheRoot, 'images', file);
    const known = previous[file];
    const fresh =
      (await localSize(path)) === info.size &&
      (known === undefined ||
        known.etag === undefined ||
        info.etag === undefined ||
        known.etag === info.etag);
    if (!fresh) {
      await writeFileAtomic(path, await storage.createReadStream(info.uri, { signal }), signal);
      downloaded++;
      bytes += info.size;
    }
    synced[file] = info.etag === undefined ? { size: info.size } : { size: info.size, etag: info.etag };
    options.onProgress?.(++done, files.length);
  });
  const manifest: Manifest = { version: 1, imagesRoot, files: synced };
  await writeFileAtomic(manifestPath, JSON.stringify(manifest), signal);
  return { files: files.length, downloaded, bytes };
}
