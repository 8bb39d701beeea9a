/**
 * The inputs of a dataset: one chip folder per scene (`<folder>/annotations.json` and
 * `<folder>/images/*`, as `chip slice` and the chip job write them), found from folder arguments
 * and read with their COCO checked. A folder argument is one scene's folder (it has
 * annotations.json) or a parent whose direct subfolders are scenes.
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
  readonly annotationsUri: string;
  readonly images: readonly ShardImage[];
  readonly annotations: readonly ShardAnnotation[];
  readonly categories: readonly ShardCategory[];
}

const ANNOTATIONS = 'annotations.json';

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
    const found: string[] = [];
    for await (const info of storage.list(base + '/', io)) {
      const rest = info.uri.slice(base.length + 1).split('/');
      if (rest.length === 2 && rest[1] === ANNOTATIONS) found.push(joinUri(base, rest[0]!));
    }
    if (found.length === 0) {
      throw new DatasetError(
        `${input}: no ${ANNOTATIONS} in it or in its direct subfolders (expected a chip folder <scene>/${ANNOTATIONS} + images/, or a folder of them)`,
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

/** Reads and checks one scene's annotations.json. */
export async function readSceneShard(
  storage: Storage,
  folder: string,
  signal?: AbortSignal,
): Promise<SceneShard> {
  const uri = joinUri(folder, ANNOTATIONS);
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
    scene: basenameUri(folder),
    folder,
    annotationsUri: uri,
    images: images as unknown as ShardImage[],
    annotations: annotations as unknown as ShardAnnotation[],
    categories: categories as unknown as ShardCategory[],
  };
}
