/**
 * What the dataset exports and imports share: reading a geobatch dataset (dataset.json and its
 * COCO splits), writing one from imported splits, and the local output folder that is built
 * under a temporary name and renamed into place at the end, so a failed run leaves nothing.
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { writeFileAtomic } from '../storage/local.js';
import type { Storage } from '../storage/types.js';
import { isS3Uri, joinUri, normalizeUri, toLocalPath } from '../storage/uri.js';
import type { DatasetManifest, SplitName } from './build.js';
import type { DatasetCategory } from './categories.js';
import { classDistributionSvg, cooccurrenceSvg } from './charts.js';
import { DatasetError } from './errors.js';
import { multiHotCsv, sparseLabelsJsonl, type SplitCoco } from './labels.js';
import { datasetCocoText, type DatasetCoco } from './merge.js';
import { datasetStats } from './stats.js';
import { svgToPng } from './svg.js';

/** A geobatch dataset read whole (its COCO splits, not its images). */
export interface ReadDataset {
  /** The dataset folder (canonical URI). */
  readonly uri: string;
  /** Where `file_name`s are relative to (URI). */
  readonly imagesRoot: string;
  /** Sorted by id. */
  readonly categories: readonly DatasetCategory[];
  readonly splits: readonly { readonly split: SplitName; readonly uri: string; readonly coco: DatasetCoco }[];
}

async function readJson(storage: Storage, uri: string, signal?: AbortSignal): Promise<unknown> {
  const text = (await storage.read(uri, signal ? { signal } : {})).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new DatasetError(`${uri}: not valid JSON: ${(error as Error).message}`);
  }
}

function checkCoco(value: unknown, uri: string): DatasetCoco {
  const coco = (value ?? {}) as Record<string, unknown>;
  for (const field of ['images', 'annotations', 'categories'] as const) {
    if (!Array.isArray(coco[field]))
      throw new DatasetError(
        `${uri}: '${field}' is ${JSON.stringify(coco[field]) ?? 'missing'}; expected an array`,
      );
  }
  const images = coco.images as Record<string, unknown>[];
  const ids = new Set<number>();
  images.forEach((image, i) => {
    const name = image?.file_name;
    if (typeof name !== 'string' || name === '' || name.split('/').includes('..'))
      throw new DatasetError(
        `${uri}: images[${i}].file_name is ${JSON.stringify(name)}; expected a relative path`,
      );
    for (const k of ['width', 'height'] as const)
      if (!Number.isInteger(image[k]) || (image[k] as number) < 1)
        throw new DatasetError(
          `${uri}: images[${i}].${k} is ${JSON.stringify(image[k])}; expected a positive integer`,
        );
    ids.add(image.id as number);
  });
  (coco.annotations as Record<string, unknown>[]).forEach((a, i) => {
    if (!ids.has(a?.image_id as number))
      throw new DatasetError(
        `${uri}: annotations[${i}].image_id is ${JSON.stringify(a?.image_id)}; expected the id of an image`,
      );
    const b = a.bbox;
    if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw new DatasetError(
        `${uri}: annotations[${i}].bbox is ${JSON.stringify(b)}; expected [x, y, width, height]`,
      );
  });
  return coco as unknown as DatasetCoco;
}

/**
 * Reads the dataset at `uri`: a folder with dataset.json (what `dataset build`, the merge job
 * and `dataset import` write) or that file itself; a folder with train.json and val.json (and
 * test.json) and images/ also works.
 */
export async function readGeobatchDataset(
  storage: Storage,
  uri: string,
  signal?: AbortSignal,
): Promise<ReadDataset> {
  let folder = normalizeUri(uri).replace(/\/+$/, '');
  if (folder.endsWith('/dataset.json')) folder = folder.slice(0, -'/dataset.json'.length);
  const io = signal ? { signal } : {};
  const manifestUri = joinUri(folder, 'dataset.json');
  const files: Partial<Record<SplitName, string>> = {};
  let imagesRoot = joinUri(folder, 'images');
  let categories: DatasetCategory[] | undefined;
  if (await storage.exists(manifestUri, io)) {
    const m = (await readJson(storage, manifestUri, signal)) as Partial<DatasetManifest> | null;
    if (m?.version !== 1 || typeof m.imagesRoot !== 'string' || typeof m.splits !== 'object')
      throw new DatasetError(
        `${manifestUri}: expected a geobatch dataset manifest (version 1, imagesRoot, splits)`,
      );
    const root = m.imagesRoot;
    imagesRoot =
      isS3Uri(root) || isAbsolute(root) || root.startsWith('file:')
        ? normalizeUri(root)
        : joinUri(folder, root);
    for (const [split, file] of Object.entries(m.splits)) files[split as SplitName] = joinUri(folder, file);
    if (Array.isArray(m.categories)) categories = m.categories.map((c) => ({ id: c.id, name: c.name }));
  } else {
    for (const split of ['train', 'val', 'test'] as const) {
      const file = joinUri(folder, `${split}.json`);
      if (await storage.exists(file, io)) files[split] = file;
    }
    if (!files.train)
      throw new DatasetError(
        `${uri}: no dataset.json and no train.json in it; expected a dataset folder (the output of 'geobatch dataset build' or 'dataset import')`,
      );
  }
  const splits: { split: SplitName; uri: string; coco: DatasetCoco }[] = [];
  for (const split of ['train', 'val', 'test'] as const) {
    const file = files[split];
    if (file) splits.push({ split, uri: file, coco: checkCoco(await readJson(storage, file, signal), file) });
  }
  categories ??= splits[0]!.coco.categories.map((c) => ({ id: c.id, name: c.name }));
  return { uri: folder, imagesRoot, categories: [...categories].sort((a, b) => a.id - b.id), splits };
}

/**
 * A local output folder written under a temporary sibling name (`.<name>.partial`, removed first
 * if an interrupted run left it) and renamed into place by {@link commit}.
 */
export class StagedFolder {
  private constructor(
    /** The final folder. */
    readonly out: string,
    /** Where to write until {@link commit}. */
    readonly dir: string,
  ) {}

  /** Refuses an s3:// output and a folder that exists and is not empty (`describe` says what is there). */
  static async open(out: string, flag: string): Promise<StagedFolder> {
    if (isS3Uri(out))
      throw new DatasetError(
        `${flag} ${out}: expected a local folder (the output is renamed into place when complete; copy it to S3 afterwards)`,
      );
    const path = toLocalPath(out).replace(/\/+$/, '');
    const there = await stat(path).catch(() => undefined);
    if (there && (!there.isDirectory() || (await readdir(path)).length > 0))
      throw new DatasetError(
        `${flag} ${path}: already exists and is not empty; remove it or choose another folder`,
      );
    const dir = join(dirname(path), `.${basename(path)}.partial`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return new StagedFolder(path, dir);
  }

  /** Moves the finished folder into place. */
  async commit(): Promise<void> {
    await rm(this.out, { recursive: true, force: true }); // an empty folder at most (checked in open)
    await rename(this.dir, this.out);
  }

  /** Removes what was written. */
  async discard(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs `work` in a staged folder: committed when it succeeds, removed when it throws. */
export async function withStagedFolder<T>(
  out: string,
  flag: string,
  work: (staged: StagedFolder) => Promise<T>,
): Promise<T> {
  const staged = await StagedFolder.open(out, flag);
  try {
    const result = await work(staged);
    await staged.commit();
    return result;
  } catch (error) {
    await staged.discard();
    throw error;
  }
}

/** Where an imported dataset came from, recorded in its dataset.json. */
export interface ImportSource {
  readonly format: 'yolo' | 'cvat-coco';
  /** The files read (data.yaml, or the CVAT annotation files). */
  readonly files: readonly string[];
}

/**
 * Writes an imported dataset into `dir` as `dataset build` lays one out (COCO splits, labels.csv,
 * labels.jsonl, stats.json, the two charts; no contact sheet), dataset.json last.
 */
export async function writeImportedDataset(
  dir: string,
  input: {
    readonly imagesRoot: string;
    readonly categories: readonly DatasetCategory[];
    readonly splits: readonly { readonly split: SplitName; readonly coco: DatasetCoco }[];
    readonly source: ImportSource;
    readonly warnings: readonly string[];
  },
  signal?: AbortSignal,
): Promise<DatasetManifest & { readonly source: ImportSource }> {
  const write = (name: string, body: string | Buffer): Promise<void> =>
    writeFileAtomic(join(dir, name), body, signal);
  const splits: SplitCoco[] = input.splits.map((s) => ({ split: s.split, coco: s.coco }));
  for (const s of input.splits) await write(`${s.split}.json`, datasetCocoText(s.coco));
  await write('labels.csv', multiHotCsv(splits, input.categories));
  await write('labels.jsonl', sparseLabelsJsonl(splits, input.categories));
  const stats = datasetStats(splits, input.categories);
  await write('stats.json', JSON.stringify(stats, null, 2) + '\n');
  await write('class-distribution.png', await svgToPng(classDistributionSvg(stats)));
  await write('cooccurrence.png', await svgToPng(cooccurrenceSvg(stats)));
  const total = input.splits.reduce((n, s) => n + s.coco.images.length, 0);
  const share = (name: SplitName): number => {
    const n = input.splits.find((s) => s.split === name)?.coco.images.length ?? 0;
    return total ? Math.round((n / total) * 1e4) / 1e4 : 0;
  };
  const scenesOf = (coco: DatasetCoco): string[] => [...new Set(coco.images.map((i) => i.scene))].sort();
  const manifest = {
    version: 1 as const,
    imagesRoot: input.imagesRoot,
    splits: Object.fromEntries(
      input.splits.map((s) => [s.split, `${s.split}.json`]),
    ) as DatasetManifest['splits'],
    scenes: Object.fromEntries(
      input.splits.map((s) => [s.split, scenesOf(s.coco)]),
    ) as unknown as DatasetManifest['scenes'],
    categories: input.categories,
    counts: Object.fromEntries(
      input.splits.map((s) => [
        s.split,
        {
          scenes: scenesOf(s.coco).length,
          images: s.coco.images.length,
          annotations: s.coco.annotations.length,
        },
      ]),
    ),
    seed: 0,
    fractions: { val: share('val'), test: share('test') },
    labels: { multiHot: 'labels.csv' as const, sparse: 'labels.jsonl' as const },
    stats: 'stats.json' as const,
    figures: { classDistribution: 'class-distribution.png', cooccurrence: 'cooccurrence.png' },
    copiedImages: false,
    warnings: input.warnings,
    source: input.source,
  };
  await write('dataset.json', JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
