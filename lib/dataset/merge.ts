/**
 * One split's COCO from its scenes' shards: scenes in name order, images and annotations in
 * their shard's id order, ids renumbered 1..n, categories remapped to the unified ones, each
 * image's `file_name` made relative to the dataset's images root and tagged with its `scene`.
 * Pure.
 */
import type { DatasetCategory } from './categories.js';
import type { SceneShard, ShardAnnotation, ShardImage } from './shards.js';

export interface DatasetImage extends ShardImage {
  readonly scene: string;
}

export interface DatasetAnnotation extends ShardAnnotation {
  readonly iscrowd: number;
}

export interface DatasetCoco {
  readonly info: { readonly description: string; readonly split: string };
  readonly images: readonly DatasetImage[];
  readonly annotations: readonly DatasetAnnotation[];
  readonly categories: readonly DatasetCategory[];
}

/**
 * @param imagePrefix per scene: what goes before the shard's file_name (e.g. `demo-001/images/`).
 */
export function mergeSplit(
  split: string,
  shards: readonly SceneShard[],
  categories: readonly DatasetCategory[],
  remap: ReadonlyMap<string, ReadonlyMap<number, number>>,
  imagePrefix: (shard: SceneShard) => string,
): DatasetCoco {
  const images: DatasetImage[] = [];
  const annotations: DatasetAnnotation[] = [];
  for (const shard of shards) {
    const prefix = imagePrefix(shard);
    const imageId = new Map<number, number>();
    for (const image of [...shard.images].sort((a, b) => a.id - b.id)) {
      const id = images.length + 1;
      imageId.set(image.id, id);
      images.push({ ...image, id, file_name: prefix + image.file_name, scene: shard.scene });
    }
    const categoryId = remap.get(shard.scene)!;
    for (const a of [...shard.annotations].sort((x, y) => x.id - y.id)) {
      annotations.push({
        ...a,
        id: annotations.length + 1,
        image_id: imageId.get(a.image_id)!,
        category_id: categoryId.get(a.category_id)!,
        iscrowd: typeof a.iscrowd === 'number' ? a.iscrowd : 0,
      });
    }
  }
  return {
    info: { description: `geobatch dataset, ${split} split`, split },
    images,
    annotations,
    categories,
  };
}

/** COCO text with one image and one annotation per line, so files diff and stream well. */
export function datasetCocoText(coco: DatasetCoco): string {
  const lines = (items: readonly unknown[]): string =>
    items.length ? `\n${items.map((x) => JSON.stringify(x)).join(',\n')}\n` : '';
  return (
    `{"info":${JSON.stringify(coco.info)},"categories":${JSON.stringify(coco.categories)},` +
    `"images":[${lines(coco.images)}],"annotations":[${lines(coco.annotations)}]}\n`
  );
}
