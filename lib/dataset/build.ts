/**
 * `dataset build` and the `merge` job: per-scene chip folders -> a dataset folder with
 * train.json / val.json (/ test.json), labels.csv, labels.jsonl, stats.json, pictures, and
 * dataset.json, the manifest, written last: a dataset is complete when its manifest exists.
 * Chips are referenced where they are (or copied with `copyImages`). Same inputs and seed give
 * the same bytes.
 */
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import { unifyCategories, type DatasetCategory } from './categories.js';
import { classDistributionSvg, cooccurrenceSvg } from './charts.js';
import { pickSheetChips, renderContactSheet } from './contact-sheet.js';
import { DatasetError } from './errors.js';
import { commonImagesRoot } from './images-root.js';
import { multiHotCsv, sparseLabelsJsonl, type SplitCoco } from './labels.js';
import { datasetCocoText, mergeSplit } from './merge.js';
import { findSceneFolders, readSceneShard, type SceneShard } from './shards.js';
import { splitScenes, validateFractions } from './split.js';
import { datasetStats } from './stats.js';
import { svgToPng } from './svg.js';

export const SPLITS = ['train', 'val', 'test'] as const;
export type SplitName = (typeof SPLITS)[number];

export interface BuildDatasetOptions {
  /** Chip folders (with annotations.json, or a complete set of part files) or folders of them; local paths or s3:// URIs. */
  readonly inputs: readonly string[];
  /** The dataset folder (local or s3://). */
  readonly out: string;
  /** Share of scenes in val, in (0, 1). @default 0.2 */
  readonly val?: number;
  /** Share of scenes in test, in [0, 1); val + test < 1. @default 0 */
  readonly test?: number;
  /** Seed of the scene shuffle (an integer >= 0). @default 0 */
  readonly seed?: number;
  /** Chips on the contact sheet; 0 draws none. @default 24 */
  readonly contactSheet?: number;
  /** Copy the chips to `<out>/images/<scene>/` so the dataset stands alone. @default false */
  readonly copyImages?: boolean;
  /** Keep only categories with annotations (`used`) or every category the shards list. @default 'used' */
  readonly categories?: 'used' | 'all';
  /** Names of the options in error messages (the CLI's flags or the job's params). */
  readonly optionNames?: {
    readonly val: string;
    readonly test: string;
    readonly seed: string;
    readonly contactSheet: string;
  };
  readonly signal?: AbortSignal;
  /** Called as work advances (phase names: read, copy, write, contact-sheet). */
  readonly onProgress?: (phase: string, done: number, total: number) => void;
}

export interface DatasetManifest {
  readonly version: 1;
  /** The folder every `file_name` is relative to: a chip is at `imagesRoot + '/' + file_name`. */
  readonly imagesRoot: string;
  readonly splits: Partial<Record<SplitName, string>> & { readonly train: string; readonly val: string };
  readonly scenes: Partial<Record<SplitName, readonly string[]>> & {
    readonly train: readonly string[];
    readonly val: readonly string[];
  };
  readonly categories: readonly DatasetCategory[];
  readonly counts: Partial<Record<SplitName, { scenes: number; images: number; annotations: number }>>;
  readonly seed: number;
  readonly fractions: { readonly val: number; readonly test: number };
  readonly labels: { readonly multiHot: 'labels.csv'; readonly sparse: 'labels.jsonl' };
  readonly stats: 'stats.json';
  readonly figures: Readonly<Record<string, string>>;
  readonly copiedImages: boolean;
  /** Category conflicts between shards and split adjustments (one scene, too few for test). */
  readonly warnings: readonly string[];
}

export interface BuildDatasetResult {
  readonly manifestUri: string;
  readonly manifest: DatasetManifest;
  /** Every file written, the manifest last. */
  readonly outputs: readonly string[];
}

const DEFAULT_NAMES = { val: 'val', test: 'test', seed: 'seed', contactSheet: 'contactSheet' };

async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export async function buildDataset(
  storage: Storage,
  options: BuildDatasetOptions,
): Promise<BuildDatasetResult> {
  const names = options.optionNames ?? DEFAULT_NAMES;
  const fractions = { val: options.val ?? 0.2, test: options.test ?? 0 };
  validateFractions(fractions, names);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new DatasetError(`${names.seed}: expected an integer in [0, 4294967295] but got ${seed}`);
  }
  const sheetSize = options.contactSheet ?? 24;
  if (!Number.isInteger(sheetSize) || sheetSize < 0 || sheetSize > 1000) {
    throw new DatasetError(`${names.contactSheet}: expected an integer in [0, 1000] but got ${sheetSize}`);
  }
  const signal = options.signal;
  const io = signal ? { signal } : {};
  const progress = options.onProgress ?? (() => undefined);

  const folders = await findSceneFolders(storage, options.inputs, signal);
  let read = 0;
  const shards = await mapLimit(folders, 8, async (folder) => {
    const shard = await readSceneShard(storage, folder, signal);
    progress('read', ++read, folders.length);
    return shard;
  });
  const split = splitScenes(
    shards.map((s) => s.scene),
    fractions,
    seed,
  );
  const unified = unifyCategories(shards, options.categories ?? 'used');
  const warnings = [...split.warnings, ...unified.conflicts];

  const out = options.out.replace(/\/+$/, '');
  let imagesRoot: string;
  let prefix: (shard: SceneShard) => string;
  const copyImages = options.copyImages ?? false;
  if (copyImages) {
    imagesRoot = joinUri(out, 'images');
    prefix = (shard) => `${shard.scene}/`;
    await copyChips(storage, shards, imagesRoot, progress, signal);
  } else {
    const { root, relative } = commonImagesRoot(folders);
    imagesRoot = root;
    prefix = (shard) => `${relative.get(shard.folder)}/images/`;
  }

  const byScene = new Map(shards.map((s) => [s.scene, s]));
  const withTest = fractions.test > 0;
  const splitNames: SplitName[] = withTest ? ['train', 'val', 'test'] : ['train', 'val'];
  const splits: SplitCoco[] = splitNames.map((name) => ({
    split: name,
    coco: mergeSplit(
      name,
      split[name].map((scene) => byScene.get(scene)!),
      unified.categories,
      unified.remap,
      prefix,
    ),
  }));

  const outputs: string[] = [];
  const write = async (name: string, body: string | Buffer, contentType: string): Promise<void> => {
    const uri = joinUri(out, name);
    await storage.writeAtomic(uri, body, { contentType, ...io });
    outputs.push(uri);
    progress('write', outputs.length, 0);
  };
  for (const { split: name, coco } of splits)
    await write(`${name}.json`, datasetCocoText(coco), 'application/json');
  if (!withTest) await storage.delete(joinUri(out, 'test.json'), io);
  await write('labels.csv', multiHotCsv(splits, unified.categories), 'text/csv');
  await write('labels.jsonl', sparseLabelsJsonl(splits, unified.categories), 'application/x-ndjson');
  const stats = datasetStats(splits, unified.categories);
  await write('stats.json', JSON.stringify(stats, null, 2) + '\n', 'application/json');
  const figures: Record<string, string> = {};
  await write('class-distribution.png', await svgToPng(classDistributionSvg(stats)), 'image/png');
  figures.classDistribution = 'class-distribution.png';
  await write('cooccurrence.png', await svgToPng(cooccurrenceSvg(stats)), 'image/png');
  figures.cooccurrence = 'cooccurrence.png';
  const sheet = pickSheetChips(splits, sheetSize);
  if (sheet.length > 0) {
    progress('contact-sheet', 0, sheet.length);
    const png = await renderContactSheet(
      storage,
      sheet,
      unified.categories,
      (image) => joinUri(imagesRoot, image.file_name),
      signal ? { signal } : {},
    );
    await write('contact-sheet.png', png, 'image/png');
    figures.contactSheet = 'contact-sheet.png';
  }

  const counts: DatasetManifest['counts'] = Object.fromEntries(
    splits.map(({ split: name, coco }) => [
      name,
      {
        scenes: split[name as SplitName].length,
        images: coco.images.length,
        annotations: coco.annotations.length,
      },
    ]),
  );
  const manifest: DatasetManifest = {
    version: 1,
    imagesRoot,
    splits: Object.fromEntries(splitNames.map((n) => [n, `${n}.json`])) as DatasetManifest['splits'],
    scenes: Object.fromEntries(splitNames.map((n) => [n, split[n]])) as DatasetManifest['scenes'],
    categories: unified.categories,
    counts,
    seed,
    fractions,
    labels: { multiHot: 'labels.csv', sparse: 'labels.jsonl' },
    stats: 'stats.json',
    figures,
    copiedImages: copyImages,
    warnings,
  };
  const manifestUri = joinUri(out, 'dataset.json');
  await storage.writeAtomic(manifestUri, JSON.stringify(manifest, null, 2) + '\n', {
    contentType: 'application/json',
    ...io,
  });
  outputs.push(manifestUri);
  return { manifestUri, manifest, outputs };
}

/** Copies every chip to `<root>/<scene>/<file_name>`, skipping copies already there with the same size. */
async function copyChips(
  storage: Storage,
  shards: readonly SceneShard[],
  root: string,
  progress: (phase: string, done: number, total: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  const io = signal ? { signal } : {};
  const jobs = shards.flatMap((shard) =>
    shard.images.map((image) => ({
      from: joinUri(shard.folder, 'images', image.file_name),
      to: joinUri(root, shard.scene, image.file_name),
    })),
  );
  let done = 0;
  await mapLimit(jobs, 8, async ({ from, to }) => {
    const [source, existing] = await Promise.all([storage.stat(from, io), storage.stat(to, io)]);
    if (!source) throw new DatasetError(`${from}: chip listed in its scene's annotations does not exist`);
    if (!existing || existing.size !== source.size)
      await storage.writeAtomic(to, await storage.read(from, io), io);
    progress('copy', ++done, jobs.length);
  });
}
