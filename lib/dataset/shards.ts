/**
 * The inputs of a dataset: one chip folder per scene (`<folder>/annotations.json` and
 * `<folder>/images/*`, as `chip slice` and the chip job write them), found from folder arguments
 * and read with their COCO checked. A folder argument is one scene's folder or a parent whose
 * direct subfolders are scenes. A scene chipped in parts (a chip stage with `tasksPerItem`, or
 * `chip slice --part k/n`) has `annotations.part-<k>-of-<n>.json` for k = 1..n instead of
 * annotations.json: the parts are read in k order and joined (their ids are the whole run's).
 */
import type { Storage } from '../storage/types.js';
import { basenameUri, compareUtf8, joinUri, normalizeUri } from '../storage/uri.js';
import { DatasetError } from './errors.js';

export interface ShardImage {
  readonly id: number;
  /** Relative to `<folder>/images/`. */
  readonly file_name: string;
  readonly width: number;
  readonly height: number;
  readonly [extra: string]: unknown;
}

export interface ShardAnnotation {
  readonly id: number;
  readonly image_id: number;
  readonly category_id: number;
  readonly bbox: readonly [number, number, number, number];
  readonly area: number;
  readonly segmentation?: readonly (readonly number[])[] | unknown;
  readonly [extra: string]: unknown;
}

export interface ShardCategory {
  readonly id: number;
  readonly name: string;
  readonly [extra: string]: unknown;
}

/** One scene's chips. */
export interface SceneShard {
  /** The scene's name: its folder's name. */
  readonly scene: string;
  /** The chip folder (canonical URI). */
  readonly folder: string;
  /** The COCO files read: `<folder>/annotations.json`, or the scene's part files in part order. */
  readonly annotationsUris: readonly string[];
  readonly images: readonly ShardImage[];
  readonly annotations: readonly ShardAnnotation[];
  readonly categories: readonly ShardCategory[];
}

const ANNOTATIONS = 'annotations.json';
const PART_PREFIX = 'annotations.part-';
/** `annotations.part-<k>-of-<n>.json`, k and n without leading zeros. */
const PART_FILE = /^annotations\.part-([1-9]\d*)-of-([1-9]\d*)\.json$/;

/** The name of part `k` (1-based) of `n` of a scene's annotations. */
export function annotationsPartName(k: number, n: number): string {
  return `${PART_PREFIX}${k}-of-${n}.json`;
}

/** Whether `name` is a scene's annotations: annotations.json or one of its part files. */
function isAnnotationsName(name: string): boolean {
  return name === ANNOTATIONS || PART_FILE.test(name);
}

/** The scene folders named by `inputs` (each a scene folder or a parent of scene folders), sorted by URI. */
export async function findSceneFolders(
  storage: Storage,
  inputs: readonly string[],
  signal?: AbortSignal,
): Promise<string[]> {
  const io = signal ? { signal } : {};
  if (inputs.length === 0) throw new DatasetError('no chip folders given: expected at least one');
  const folders = new Set<string>();
  for (const input of inputs) {
    const base = normalizeUri(input).replace(/\/+$/, '');
    if (await storage.exists(joinUri(base, ANNOTATIONS), io)) {
      folders.add(base);
      continue;
    }
    const found = new Set<string>();
    let parts = false;
    for await (const info of storage.list(base + '/', io)) {
      const rest = info.uri.slice(base.length + 1).split('/');
      if (rest.length === 1 && PART_FILE.test(rest[0]!)) parts = true;
      else if (rest.length === 2 && isAnnotationsName(rest[1]!)) found.add(joinUri(base, rest[0]!));
    }
    if (parts) {
      // the folder is a scene chipped in parts
      folders.add(base);
      continue;
    }
    if (found.size === 0) {
      throw new DatasetError(
        `${input}: no ${ANNOTATIONS} in it or in its direct subfolders (expected a chip folder <scene>/${ANNOTATIONS} + images/, or a folder of them; a scene chipped in parts has ${PART_PREFIX}<k>-of-<n>.json files instead)`,
      );
    }
    for (const f of found) folders.add(f);
  }
  const sorted = [...folders].sort(compareUtf8);
  const byName = new Map<string, string>();
  for (const folder of sorted) {
    const name = basenameUri(folder);
    const other = byName.get(name);
    if (other !== undefined) {
      throw new DatasetError(
        `scene '${name}' found twice (${other} and ${folder}): scene names (folder names) must be unique`,
      );
    }
    byName.set(name, folder);
  }
  return sorted;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** The COCO files of a scene folder: annotations.json, else its complete set of part files in part order. */
async function sceneAnnotationFiles(
  storage: Storage,
  folder: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const io = signal ? { signal } : {};
  const whole = joinUri(folder, ANNOTATIONS);
  if (await storage.exists(whole, io)) return [whole];
  const found = new Map<number, Set<number>>();
  for await (const info of storage.list(joinUri(folder, PART_PREFIX), io)) {
    const m = PART_FILE.exec(info.uri.slice(folder.length + 1));
    if (!m) continue;
    const [k, n] = [Number(m[1]), Number(m[2])];
    if (k > n) {
      throw new DatasetError(
        `${joinUri(folder, basenameUri(info.uri))}: part ${k} of ${n} does not exist; expected ${annotationsPartName(1, n)} .. ${annotationsPartName(n, n)}`,
      );
    }
    let ks = found.get(n);
    if (!ks) found.set(n, (ks = new Set()));
    ks.add(k);
  }
  if (found.size === 0) {
    throw new DatasetError(
      `${folder}: no ${ANNOTATIONS} and no ${PART_PREFIX}<k>-of-<n>.json part files (expected a chip folder)`,
    );
  }
  const counts = [...found.keys()].sort((a, b) => a - b);
  if (counts.length > 1) {
    throw new DatasetError(
      `${folder}: part files of ${counts.length} different splits (${counts
        .map(
          (n) =>
            `${[...found.get(n)!]
              .sort((a, b) => a - b)
              .map((k) => annotationsPartName(k, n))
              .join(', ')}`,
        )
        .join('; ')}); expected one set k = 1..n of the same n`,
    );
  }
  const n = counts[0]!;
  const ks = found.get(n)!;
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((k) => !ks.has(k));
  if (missing.length > 0) {
    const shown = missing.slice(0, 10).map((k) => annotationsPartName(k, n));
    const more = missing.length > 10 ? ` and ${missing.length - 10} more` : '';
    throw new DatasetError(
      `${folder}: incomplete set of parts: ${ks.size} of ${n} present, missing ${shown.join(', ')}${more} (has every task of the chip stage finished?)`,
    );
  }
  return Array.from({ length: n }, (_, i) => joinUri(folder, annotationsPartName(i + 1, n)));
}

/** One COCO file read and checked on its own. */
interface CheckedCoco {
  readonly images: ShardImage[];
  readonly annotations: ShardAnnotation[];
  readonly categories: ShardCategory[];
}

async function readCheckedCoco(storage: Storage, uri: string, signal?: AbortSignal): Promise<CheckedCoco> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((await storage.read(uri, signal ? { signal } : {})).toString('utf8'));
  } catch (error) {
    if (error instanceof SyntaxError) throw new DatasetError(`${uri}: not valid JSON: ${error.message}`);
    throw error;
  }
  const coco = (parsed ?? {}) as Record<string, unknown>;
  for (const field of ['images', 'annotations', 'categories'] as const) {
    if (!Array.isArray(coco[field])) {
      throw new DatasetError(
        `${uri}: '${field}' is ${JSON.stringify(coco[field]) ?? 'missing'}; expected an array`,
      );
    }
  }
  const fail = (where: string, value: unknown, expected: string): never => {
    throw new DatasetError(`${uri}: ${where} is ${JSON.stringify(value) ?? 'missing'}; expected ${expected}`);
  };
  const images = coco.images as Record<string, unknown>[];
  const imageIds = new Set<number>();
  images.forEach((image, i) => {
    if (!Number.isInteger(image?.id)) fail(`images[${i}].id`, image?.id, 'an integer');
    if (imageIds.has(image.id as number)) fail(`images[${i}].id`, image.id, 'an id no other image has');
    imageIds.add(image.id as number);
    if (typeof image.file_name !== 'string' || image.file_name === '' || image.file_name.includes('..')) {
      fail(`images[${i}].file_name`, image.file_name, 'a file name relative to images/');
    }
    for (const k of ['width', 'height'] as const) {
      if (!Number.isInteger(image[k]) || (image[k] as number) < 1)
        fail(`images[${i}].${k}`, image[k], 'a positive integer');
    }
  });
  const categories = coco.categories as Record<string, unknown>[];
  const categoryIds = new Set<number>();
  categories.forEach((c, i) => {
    if (!Number.isInteger(c?.id)) fail(`categories[${i}].id`, c?.id, 'an integer');
    if (typeof c.name !== 'string' || c.name === '')
      fail(`categories[${i}].name`, c.name, 'a non-empty string');
    if (categoryIds.has(c.id as number)) fail(`categories[${i}].id`, c.id, 'an id no other category has');
    categoryIds.add(c.id as number);
  });
  const annotations = coco.annotations as Record<string, unknown>[];
  annotations.forEach((a, i) => {
    if (!Number.isInteger(a?.id)) fail(`annotations[${i}].id`, a?.id, 'an integer');
    if (!imageIds.has(a.image_id as number))
      fail(`annotations[${i}].image_id`, a.image_id, 'the id of an image');
    if (!categoryIds.has(a.category_id as number)) {
      fail(`annotations[${i}].category_id`, a.category_id, 'the id of a category');
    }
    const bbox = a.bbox;
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(isFiniteNumber)) {
      fail(`annotations[${i}].bbox`, bbox, '[x, y, width, height]');
    }
    if (!isFiniteNumber(a.area)) fail(`annotations[${i}].area`, a.area, 'a number');
  });
  return {
    images: images as unknown as ShardImage[],
    annotations: annotations as unknown as ShardAnnotation[],
    categories: categories as unknown as ShardCategory[],
  };
}

/**
 * Reads and checks one scene's annotations.json or, for a scene chipped in parts, its complete
 * set of part files, joined in part order (the same categories in each, ids unique across them).
 */
export async function readSceneShard(
  storage: Storage,
  folder: string,
  signal?: AbortSignal,
): Promise<SceneShard> {
  const uris = await sceneAnnotationFiles(storage, folder, signal);
  const parts: CheckedCoco[] = [];
  for (const uri of uris) parts.push(await readCheckedCoco(storage, uri, signal));
  const first = parts[0]!;
  const categories = JSON.stringify(first.categories);
  const imageIn = new Map<number, string>();
  const annotationIn = new Map<number, string>();
  parts.forEach((part, p) => {
    const uri = uris[p]!;
    if (p > 0 && JSON.stringify(part.categories) !== categories) {
      throw new DatasetError(
        `${uri}: its categories differ from those of ${uris[0]}; expected every part of scene '${basenameUri(folder)}' to list the same categories`,
      );
    }
    if (uris.length === 1) return;
    for (const [seen, list, what] of [
      [imageIn, part.images, 'image'],
      [annotationIn, part.annotations, 'annotation'],
    ] as const) {
      for (const { id } of list) {
        const other = seen.get(id);
        if (other !== undefined) {
          throw new DatasetError(
            `${uri}: ${what} id ${id} is also in ${other}; expected the parts of a scene to number their ${what}s as one run does`,
          );
        }
        seen.set(id, uri);
      }
    }
  });
  return {
    scene: basenameUri(folder),
    folder,
    annotationsUris: uris,
    images: parts.flatMap((p) => p.images),
    annotations: parts.flatMap((p) => p.annotations),
    categories: first.categories,
  };
}
