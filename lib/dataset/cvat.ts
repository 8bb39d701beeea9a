/**
 * CVAT's "COCO 1.0" export (annotations/instances_<subset>.json + images/) to a geobatch dataset.
 * What differs from geobatch's own COCO:
 * - rectangles come with `segmentation: []` (kept as boxes, no segmentation);
 * - crowd shapes and brush masks come as RLE with `iscrowd: 1` (uncompressed run lengths, or
 *   pycocotools' compressed string); they become polygons, one per 4-connected region of the
 *   mask, traced along pixel edges, with bbox and area from the mask and `iscrowd: 1` kept;
 * - per-annotation `attributes` (occluded, rotation, track_id, user attributes) are kept as they are;
 * - category ids start at 1 and may have gaps; categories carry `supercategory: ""`: the
 *   dataset numbers them 1..K in id order and keeps the names;
 * - the subset is in the file name: instances_Train.json -> train, instances_Validation.json ->
 *   val, instances_Test.json -> test, anything else (instances_default.json) -> the `split` option.
 * Image sizes are checked against the image headers.
 */
import { basename, dirname, join } from 'node:path';
import { roundPx } from '../labels/coco.js';
import { readImageSize } from '../raster/image-size.js';
import type { Storage } from '../storage/types.js';
import { normalizeUri, toLocalPath } from '../storage/uri.js';
import type { SplitName } from './build.js';
import { DatasetError } from './errors.js';
import { withStagedFolder, writeImportedDataset, type ImportSource } from './exchange.js';
import type { DatasetAnnotation, DatasetCoco, DatasetImage } from './merge.js';
import { parseRle, rleToPolygons, RleError } from './rle.js';
import type { ImportOptions, ImportResult } from './yolo.js';

export interface ImportCvatOptions extends ImportOptions {
  /** The folder CVAT's `file_name`s are relative to (the export's images/). */
  readonly images: string;
  /** Split of files whose name names no subset. @default 'train' */
  readonly split?: SplitName;
}

/** The split a CVAT annotation file holds, from its name; undefined when it names none. */
export function cvatSubsetSplit(file: string): SplitName | undefined {
  const subset = /^instances_(.+)\.json$/i.exec(basename(file))?.[1]?.toLowerCase();
  if (subset === 'train' || subset === 'training') return 'train';
  if (subset === 'val' || subset === 'validation') return 'val';
  if (subset === 'test' || subset === 'testing') return 'test';
  return undefined;
}

type Json = Record<string, unknown>;

export async function importCvatCoco(
  storage: Storage,
  files: readonly string[],
  options: ImportCvatOptions,
): Promise<ImportResult> {
  const signal = options.signal;
  const io = signal ? { signal } : {};
  const imagesRoot = toLocalPath(options.images).replace(/\/+$/, '');
  const warnings: string[] = [];
  const parsed: { file: string; split: SplitName; coco: Json }[] = [];
  for (const file of files) {
    let coco: Json;
    try {
      coco = JSON.parse((await storage.read(normalizeUri(file), io)).toString('utf8')) as Json;
    } catch (error) {
      if (error instanceof SyntaxError) throw new DatasetError(`${file}: not valid JSON: ${error.message}`);
      throw error;
    }
    for (const field of ['images', 'annotations', 'categories'])
      if (!Array.isArray(coco?.[field]))
        throw new DatasetError(
          `${file}: '${field}' is ${JSON.stringify(coco?.[field]) ?? 'missing'}; expected an array (a CVAT COCO 1.0 instances file)`,
        );
    parsed.push({ file, split: cvatSubsetSplit(file) ?? options.split ?? 'train', coco });
  }
  // categories: by name across files, numbered 1..K in the order of the first file's ids
  const names: string[] = [];
  for (const { file, coco } of parsed) {
    const list = [...(coco.categories as Json[])].sort((a, b) => (a.id as number) - (b.id as number));
    list.forEach((c, i) => {
      if (!Number.isInteger(c?.id) || typeof c.name !== 'string' || c.name === '')
        throw new DatasetError(`${file}: categories[${i}] is ${JSON.stringify(c)}; expected {id, name}`);
      if (!names.includes(c.name)) names.push(c.name);
    });
  }
  const categories = names.map((name, i) => ({ id: i + 1, name }));
  const idOf = new Map(names.map((n, i) => [n, i + 1]));
  const bySplit = new Map<SplitName, { images: DatasetImage[]; annotations: DatasetAnnotation[] }>();
  const total = parsed.reduce((n, p) => n + (p.coco.images as unknown[]).length, 0);
  let done = 0;
  let rles = 0;
  let holes = 0;
  let emptyMasks = 0;
  for (const { file, split, coco } of parsed) {
    const into = bySplit.get(split) ?? { images: [], annotations: [] };
    bySplit.set(split, into);
    const categoryOf = new Map(
      (coco.categories as Json[]).map((c) => [c.id as number, idOf.get(c.name as string)!]),
    );
    const imageOf = new Map<unknown, DatasetImage>();
    for (const [i, image] of (coco.images as Json[]).entries()) {
      const name = image?.file_name;
      if (typeof name !== 'string' || name === '' || name.split('/').includes('..'))
        throw new DatasetError(
          `${file}: images[${i}].file_name is ${JSON.stringify(name)}; expected a path relative to --images`,
        );
      if (imageOf.has(image.id))
        throw new DatasetError(`${file}: images[${i}].id ${JSON.stringify(image.id)} is used twice`);
      const path = join(imagesRoot, name);
      if (!(await storage.exists(normalizeUri(path), io)))
        throw new DatasetError(
          `${file}: images[${i}] '${name}' is not in --images ${imagesRoot} (expected ${path})`,
        );
      const size = await readImageSize(storage, normalizeUri(path), io);
      if (size.width !== image.width || size.height !== image.height)
        throw new DatasetError(
          `${file}: images[${i}] '${name}' is ${JSON.stringify(image.width)} x ${JSON.stringify(image.height)} in the annotations but ${size.width} x ${size.height} in ${path}; is --images the right folder?`,
        );
      const out: DatasetImage = {
        id: into.images.length + 1,
        file_name: name,
        width: size.width,
        height: size.height,
        scene: dirname(name),
        source_id: image.id,
      };
      into.images.push(out);
      imageOf.set(image.id, out);
      options.onProgress?.(++done, total);
    }
    for (const [i, a] of (coco.annotations as Json[]).entries()) {
      const where = `${file}: annotations[${i}] (id ${JSON.stringify(a?.id)})`;
      const image = imageOf.get(a?.image_id);
      if (!image)
        throw new DatasetError(`${where}: image_id ${JSON.stringify(a?.image_id)} is not the id of an image`);
      const category = categoryOf.get(a.category_id as number);
      if (category === undefined)
        throw new DatasetError(
          `${where}: category_id ${JSON.stringify(a.category_id)} is not the id of a category`,
        );
      const iscrowd = a.iscrowd === 1 || a.iscrowd === true ? 1 : 0;
      const base = {
        id: into.annotations.length + 1,
        image_id: image.id,
        category_id: category,
        iscrowd,
        source_id: a.id,
        ...(a.attributes && typeof a.attributes === 'object' ? { attributes: a.attributes } : {}),
      };
      const seg = a.segmentation;
      if (seg && !Array.isArray(seg) && typeof seg === 'object') {
        let mask;
        try {
          const rle = parseRle(seg);
          if (rle.width !== image.width || rle.height !== image.height)
            throw new RleError(
              `size is [${rle.height}, ${rle.width}]; expected the image's [${image.height}, ${image.width}]`,
            );
          mask = rleToPolygons(rle);
        } catch (error) {
          if (error instanceof RleError) throw new DatasetError(`${where}: segmentation: ${error.message}`);
          throw error;
        }
        rles++;
        if (!mask) {
          emptyMasks++;
          continue;
        }
        holes += mask.holes;
        into.annotations.push({ ...base, bbox: mask.bbox, area: mask.area, segmentation: mask.polygons });
        continue;
      }
      const bbox = a.bbox;
      if (
        !Array.isArray(bbox) ||
        bbox.length !== 4 ||
        !bbox.every((v) => typeof v === 'number' && Number.isFinite(v))
      )
        throw new DatasetError(`${where}: bbox is ${JSON.stringify(bbox)}; expected [x, y, width, height]`);
      const polygons = Array.isArray(seg) ? (seg as unknown[]) : [];
      polygons.forEach((p, k) => {
        if (
          !Array.isArray(p) ||
          p.length < 6 ||
          p.length % 2 !== 0 ||
          !p.every((v) => typeof v === 'number' && Number.isFinite(v))
        )
          throw new DatasetError(
            `${where}: segmentation[${k}] is not a polygon; expected [x1, y1, x2, y2, x3, y3, ...]`,
          );
      });
      into.annotations.push({
        ...base,
        bbox: bbox.map(roundPx) as unknown as [number, number, number, number],
        area:
          typeof a.area === 'number' ? roundPx(a.area) : roundPx((bbox[2] as number) * (bbox[3] as number)),
        ...(polygons.length ? { segmentation: (polygons as number[][]).map((p) => p.map(roundPx)) } : {}),
      });
    }
  }
  if (rles)
    warnings.push(
      `${rles} RLE mask(s) traced into polygons${holes ? ` (${holes} hole(s) left out: COCO polygons have none)` : ''}`,
    );
  if (emptyMasks) warnings.push(`${emptyMasks} empty RLE mask(s) skipped`);
  const splits: { split: SplitName; coco: DatasetCoco }[] = [];
  for (const split of ['train', 'val', 'test'] as const) {
    const s = bySplit.get(split) ?? (split === 'test' ? undefined : { images: [], annotations: [] });
    if (!s) continue;
    splits.push({
      split,
      coco: {
        info: { description: `geobatch dataset imported from CVAT COCO, ${split} split`, split },
        ...s,
        categories,
      },
    });
  }
  const source: ImportSource = { format: 'cvat-coco', files: [...files] };
  const manifest = await withStagedFolder(options.out, '--out', (staged) =>
    writeImportedDataset(staged.dir, { imagesRoot, categories, splits, source, warnings }, signal),
  );
  const out = toLocalPath(options.out).replace(/\/+$/, '');
  return {
    out,
    manifest: join(out, 'dataset.json'),
    categories,
    counts: Object.fromEntries(
      splits.map((s) => [s.split, { images: s.coco.images.length, annotations: s.coco.annotations.length }]),
    ),
    warnings: manifest.warnings,
  };
}
