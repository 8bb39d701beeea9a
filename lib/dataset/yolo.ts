/**
 * A geobatch dataset to and from the YOLO layout the Ultralytics tools read:
 *
 * ```
 * data.yaml                 path, train, val (test), nc, names (index -> name)
 * images/<split>/<name>     the images (copied, hard-linked or symlinked)
 * labels/<split>/<stem>.txt one line per object (see yolo-format.ts); empty when none
 * ```
 *
 * Class indices are 0-based in category id order. An image's `<name>` is its dataset
 * `file_name` without folders called `images` or `labels` (Ultralytics finds a label file by
 * swapping the last `/images/` of the image path for `/labels/`, so the name must not hold one).
 */
import { copyFile, link, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { readImageSize } from '../raster/image-size.js';
import type { Storage } from '../storage/types.js';
import { compareUtf8, isS3Uri, joinUri, normalizeUri, toLocalPath } from '../storage/uri.js';
import type { SplitName } from './build.js';
import type { DatasetCategory } from './categories.js';
import { DatasetError } from './errors.js';
import {
  readGeobatchDataset,
  withStagedFolder,
  writeImportedDataset,
  type ImportSource,
} from './exchange.js';
import type { DatasetAnnotation, DatasetCoco, DatasetImage } from './merge.js';
import {
  joinPolygonParts,
  labelPathOf,
  parseYoloLine,
  polygonArea,
  polygonBbox,
  yoloBoxLine,
  yoloPolygonLine,
  YoloLineError,
  type ExportClamps,
} from './yolo-format.js';

export type YoloTask = 'detect' | 'segment';
export type ImageMode = 'copy' | 'link' | 'symlink';

export interface ExportYoloOptions {
  /** The geobatch dataset (folder or its dataset.json; local or s3://). */
  readonly dataset: string;
  /** The YOLO folder to create (local; must not exist or be empty). */
  readonly out: string;
  /** @default 'segment' when some annotation has a polygon, else 'detect' */
  readonly task?: YoloTask;
  /** How images get into the folder; `link` and `symlink` need local images. @default 'copy' */
  readonly images?: ImageMode;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface ExportYoloResult {
  readonly out: string;
  readonly dataYaml: string;
  readonly task: YoloTask;
  readonly images: ImageMode;
  readonly classes: readonly string[];
  readonly counts: Readonly<Record<string, { images: number; objects: number }>>;
  readonly warnings: readonly string[];
}

function polygonsOf(a: DatasetAnnotation): number[][] {
  const seg = a.segmentation;
  if (!Array.isArray(seg)) return [];
  return (seg as unknown[]).filter(
    (p): p is number[] => Array.isArray(p) && p.length >= 6 && p.every((v) => typeof v === 'number'),
  );
}

/** The file name inside images/<split>/ (see the module comment). */
function exportName(fileName: string): string {
  // a dataset imported from YOLO has file names images/<split>/...: keep them as they were
  return fileName
    .replace(/^images\/(train|val|test)\//, '')
    .split('/')
    .filter((s) => s !== 'images' && s !== 'labels' && s !== '' && s !== '.')
    .join('/');
}

async function placeImage(
  storage: Storage,
  from: string,
  to: string,
  mode: ImageMode,
  signal?: AbortSignal,
): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  if (mode === 'copy') {
    if (isS3Uri(from)) {
      await pipeline(await storage.createReadStream(from, signal ? { signal } : {}), createWriteStream(to));
    } else {
      await copyFile(toLocalPath(from), to);
    }
    return;
  }
  if (isS3Uri(from))
    throw new DatasetError(`--images ${mode}: ${from} is on S3; links need local images (use --images copy)`);
  const source = toLocalPath(from);
  try {
    if (mode === 'link') await link(source, to);
    else await symlink(resolve(source), to);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DatasetError(`${source}: image listed in the dataset does not exist`);
    if (code === 'EXDEV')
      throw new DatasetError(
        `--images link: ${source} is on another file system than the output; hard links cannot cross file systems (use --images symlink or copy)`,
      );
    throw error;
  }
}

/** Writes `options.dataset` as a YOLO folder (see the module comment). */
export async function exportYolo(storage: Storage, options: ExportYoloOptions): Promise<ExportYoloResult> {
  const signal = options.signal;
  const dataset = await readGeobatchDataset(storage, options.dataset, signal);
  const classIndex = new Map(dataset.categories.map((c, i) => [c.id, i]));
  const hasPolygons = dataset.splits.some((s) => s.coco.annotations.some((a) => polygonsOf(a).length > 0));
  const task = options.task ?? (hasPolygons ? 'segment' : 'detect');
  const mode = options.images ?? 'copy';
  const warnings: string[] = [];
  const total = dataset.splits.reduce((n, s) => n + s.coco.images.length, 0);
  let done = 0;
  const clamps: ExportClamps = { clamped: 0 };
  let joined = 0;
  let boxesAsPolygons = 0;
  const counts: Record<string, { images: number; objects: number }> = {};
  const result = await withStagedFolder(options.out, '--out', async (staged) => {
    for (const { split, uri, coco } of dataset.splits) {
      const byImage = new Map<number, DatasetAnnotation[]>();
      for (const a of coco.annotations) byImage.set(a.image_id, [...(byImage.get(a.image_id) ?? []), a]);
      const seen = new Map<string, string>();
      await mkdir(join(staged.dir, 'images', split), { recursive: true });
      await mkdir(join(staged.dir, 'labels', split), { recursive: true });
      let objects = 0;
      for (const image of coco.images) {
        const name = exportName(image.file_name);
        const label = labelPathOf(`/images/${name}`)!.slice('/labels/'.length);
        const other = seen.get(label);
        if (other !== undefined)
          throw new DatasetError(
            `${uri}: images '${other}' and '${image.file_name}' would share the label file labels/${split}/${label}; expected file names that differ in more than their extension or an 'images' folder`,
          );
        seen.set(label, image.file_name);
        const lines: string[] = [];
        for (const a of byImage.get(image.id) ?? []) {
          const k = classIndex.get(a.category_id);
          if (k === undefined)
            throw new DatasetError(
              `${uri}: annotation ${a.id} has category_id ${a.category_id}, which the dataset does not list`,
            );
          if (task === 'detect') {
            lines.push(yoloBoxLine(k, a.bbox, image.width, image.height, clamps));
            continue;
          }
          const parts = polygonsOf(a);
          let ring: number[];
          if (parts.length === 0) {
            const [x, y, w, h] = a.bbox;
            ring = [x, y, x + w, y, x + w, y + h, x, y + h];
            boxesAsPolygons++;
          } else {
            if (parts.length > 1) joined++;
            ring = joinPolygonParts(parts);
          }
          lines.push(yoloPolygonLine(k, ring, image.width, image.height, clamps));
        }
        objects += lines.length;
        await placeImage(
          storage,
          joinUri(dataset.imagesRoot, image.file_name),
          join(staged.dir, 'images', split, name),
          mode,
          signal,
        );
        const labelFile = join(staged.dir, 'labels', split, label);
        await mkdir(dirname(labelFile), { recursive: true });
        await writeFile(labelFile, lines.length ? lines.join('\n') + '\n' : '');
        options.onProgress?.(++done, total);
      }
      counts[split] = { images: coco.images.length, objects };
      if (coco.images.length === 0)
        warnings.push(`split ${split} has no images: Ultralytics needs images in train and val`);
    }
    if (clamps.clamped)
      warnings.push(`${clamps.clamped} object(s) reached outside their image: clamped to its edges`);
    if (joined)
      warnings.push(
        `${joined} object(s) with several polygons: joined into one ring each (YOLO has one polygon per line)`,
      );
    if (boxesAsPolygons)
      warnings.push(`${boxesAsPolygons} object(s) without a polygon: written as their box's 4 corners`);
    const names = new Map<number, string>();
    dataset.categories.forEach((c, i) => names.set(i, c.name));
    const data: Record<string, unknown> = { path: staged.out };
    for (const { split } of dataset.splits) data[split] = `images/${split}`;
    if (!data.val) data.val = 'images/val';
    data.nc = dataset.categories.length;
    data.names = names;
    await writeFile(
      join(staged.dir, 'data.yaml'),
      `# written by geobatch dataset export from ${dataset.uri} (task: ${task})\n${stringifyYaml(data)}`,
    );
    return { out: staged.out, dataYaml: join(staged.out, 'data.yaml') };
  });
  return {
    ...result,
    task,
    images: mode,
    classes: dataset.categories.map((c) => c.name),
    counts,
    warnings,
  };
}

export interface ImportOptions {
  /** The geobatch dataset folder to create (local; must not exist or be empty). */
  readonly out: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface ImportResult {
  readonly out: string;
  readonly manifest: string;
  readonly categories: readonly DatasetCategory[];
  readonly counts: Readonly<Record<string, { images: number; annotations: number }>>;
  readonly warnings: readonly string[];
}

/** Image extensions an import reads (their sizes come from the file headers). */
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.tif', '.tiff']);
/** Images Ultralytics reads that geobatch cannot size from a header. */
const OTHER_IMAGES = new Set(['.bmp', '.webp', '.dng', '.mpo', '.pfm', '.heic']);

function extension(path: string): string {
  const name = basename(path);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot).toLowerCase() : '';
}

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const ext = extension(e.name);
        if (IMAGE_EXTENSIONS.has(ext)) out.push(p);
        else if (OTHER_IMAGES.has(ext))
          throw new DatasetError(
            `${p}: ${ext} images are not supported by geobatch; convert them to PNG or JPEG`,
          );
      }
    }
  };
  await walk(dir);
  return out.sort(compareUtf8);
}

interface YoloData {
  readonly yaml: string;
  readonly root: string;
  readonly names: readonly string[];
  readonly splits: Partial<Record<SplitName, readonly string[]>>;
}

/** Reads data.yaml (`input` is it or its folder). */
async function readDataYaml(input: string): Promise<YoloData> {
  let yaml = toLocalPath(input);
  if (!/\.ya?ml$/i.test(yaml)) {
    const candidates = (
      await readdir(yaml).catch(() => {
        throw new DatasetError(`${yaml}: no such folder or data.yaml`);
      })
    ).filter((f) => /\.ya?ml$/i.test(f));
    const pick = candidates.includes('data.yaml')
      ? 'data.yaml'
      : candidates.length === 1
        ? candidates[0]!
        : undefined;
    if (!pick)
      throw new DatasetError(
        `${yaml}: ${candidates.length ? `several YAML files (${candidates.join(', ')}) and no data.yaml` : 'no data.yaml'}; pass the dataset's YAML file`,
      );
    yaml = join(yaml, pick);
  }
  let doc: Record<string, unknown>;
  try {
    doc = (parseYaml(await readFile(yaml, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetError(`${yaml}: no such file`);
    throw new DatasetError(`${yaml}: not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const names = doc.names;
  let list: string[];
  if (Array.isArray(names)) list = names.map(String);
  else if (names && typeof names === 'object') {
    const entries = Object.entries(names as Record<string, unknown>);
    list = [];
    for (const [k, v] of entries) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i >= entries.length)
        throw new DatasetError(
          `${yaml}: names: key ${k} is not a class index; expected 0..${entries.length - 1}`,
        );
      list[i] = String(v);
    }
  } else
    throw new DatasetError(
      `${yaml}: names is ${JSON.stringify(names) ?? 'missing'}; expected a mapping of class index to name (or a list)`,
    );
  if (list.length === 0) throw new DatasetError(`${yaml}: names is empty; expected at least one class`);
  if (doc.nc !== undefined && doc.nc !== list.length)
    throw new DatasetError(`${yaml}: nc is ${JSON.stringify(doc.nc)} but names lists ${list.length} classes`);
  const dup = list.find((n, i) => list.indexOf(n) !== i);
  if (dup !== undefined)
    throw new DatasetError(`${yaml}: names lists '${dup}' twice; expected unique class names`);
  const base = dirname(resolve(yaml));
  const root = typeof doc.path === 'string' && doc.path !== '' ? resolve(base, doc.path) : base;
  const splits: Partial<Record<SplitName, string[]>> = {};
  for (const split of ['train', 'val', 'test'] as const) {
    const v = doc[split];
    if (v === undefined || v === null || v === '') continue;
    const items = Array.isArray(v) ? v : [v];
    if (!items.every((x) => typeof x === 'string'))
      throw new DatasetError(
        `${yaml}: ${split} is ${JSON.stringify(v)}; expected a folder, a .txt list of images, or a list of them`,
      );
    splits[split] = (items as string[]).map((x) => (isAbsolute(x) ? x : join(root, x)));
  }
  if (!splits.train)
    throw new DatasetError(`${yaml}: train is missing; expected the folder of the training images`);
  return { yaml, root, names: list, splits };
}

/** The image files of one split entry: a folder (searched recursively) or a .txt list. */
async function splitImages(entry: string, yaml: string, root: string): Promise<string[]> {
  if (entry.toLowerCase().endsWith('.txt')) {
    const text = await readFile(entry, 'utf8').catch(() => {
      throw new DatasetError(`${yaml}: image list ${entry} does not exist`);
    });
    return text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter(Boolean)
      .map((l) => (l.startsWith('./') ? join(dirname(entry), l) : isAbsolute(l) ? l : join(root, l)));
  }
  return listImages(entry).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new DatasetError(`${yaml}: image folder ${entry} does not exist`);
    throw error;
  });
}

/** Reads a YOLO folder (data.yaml, images/, labels/) into a geobatch dataset in `out`. */
export async function importYolo(
  storage: Storage,
  input: string,
  options: ImportOptions,
): Promise<ImportResult> {
  const signal = options.signal;
  const data = await readDataYaml(input);
  const categories = data.names.map((name, i) => ({ id: i + 1, name }));
  const lists: { split: SplitName; files: string[] }[] = [];
  for (const [split, entries] of Object.entries(data.splits) as [SplitName, string[]][]) {
    const files: string[] = [];
    for (const e of entries) files.push(...(await splitImages(e, data.yaml, data.root)));
    lists.push({ split, files });
  }
  if (!lists.some((l) => l.split === 'val')) lists.push({ split: 'val', files: [] });
  const warnings: string[] = [];
  const total = lists.reduce((n, l) => n + l.files.length, 0);
  let done = 0;
  let backgrounds = 0;
  const splits: { split: SplitName; coco: DatasetCoco }[] = [];
  for (const { split, files } of lists) {
    const images: DatasetImage[] = [];
    const annotations: DatasetAnnotation[] = [];
    for (const file of files) {
      let size;
      try {
        size = await readImageSize(storage, normalizeUri(file), signal ? { signal } : {});
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT' || !(await storage.exists(normalizeUri(file))))
          throw new DatasetError(`${file}: image listed in ${data.yaml} (${split}) does not exist`);
        throw error;
      }
      const rel = relative(data.root, file);
      const fileName = rel.startsWith('..') || isAbsolute(rel) ? resolve(file) : rel.split('\\').join('/');
      const id = images.length + 1;
      images.push({
        id,
        file_name: fileName,
        width: size.width,
        height: size.height,
        scene: dirname(fileName),
      });
      const labelFile = labelPathOf(resolve(file));
      const text = labelFile ? await readFile(labelFile, 'utf8').catch(() => undefined) : undefined;
      if (text === undefined) backgrounds++;
      (text ?? '').split(/\r?\n/).forEach((line, i) => {
        if (line.trim() === '') return;
        let object;
        try {
          object = parseYoloLine(line, categories.length, size.width, size.height);
        } catch (error) {
          if (error instanceof YoloLineError)
            throw new DatasetError(`${labelFile}:${i + 1}: ${error.message}`);
          throw error;
        }
        const base = {
          id: annotations.length + 1,
          image_id: id,
          category_id: object.classIndex + 1,
          iscrowd: 0,
        };
        if (object.kind === 'box') {
          annotations.push({
            ...base,
            bbox: object.bbox,
            area: Math.round(object.bbox[2] * object.bbox[3] * 100) / 100,
          });
        } else {
          annotations.push({
            ...base,
            bbox: polygonBbox(object.points),
            area: polygonArea(object.points),
            segmentation: [object.points],
          });
        }
      });
      options.onProgress?.(++done, total);
    }
    splits.push({
      split,
      coco: {
        info: { description: `geobatch dataset imported from YOLO, ${split} split`, split },
        images,
        annotations,
        categories,
      },
    });
  }
  if (backgrounds)
    warnings.push(
      `${backgrounds} image(s) without a label file: imported without objects (as Ultralytics treats them)`,
    );
  const source: ImportSource = { format: 'yolo', files: [data.yaml] };
  const manifest = await withStagedFolder(options.out, '--out', (staged) =>
    writeImportedDataset(staged.dir, { imagesRoot: data.root, categories, splits, source, warnings }, signal),
  );
  return {
    out: toLocalPath(options.out).replace(/\/+$/, ''),
    manifest: join(toLocalPath(options.out).replace(/\/+$/, ''), 'dataset.json'),
    categories,
    counts: Object.fromEntries(
      splits.map((s) => [s.split, { images: s.coco.images.length, annotations: s.coco.annotations.length }]),
    ),
    warnings: manifest.warnings,
  };
}
