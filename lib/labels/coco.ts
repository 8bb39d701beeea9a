/**
 * The COCO shard geobatch writes for one image: `images` (one entry, id 1), `annotations`
 * (ids 1..n in source order), `categories` (every category of the map, so shards of one dataset
 * agree). Extra fields: `uri` on the image (where it lives), `source_index` on each annotation
 * (the feature's index in the source file; xView's `feature_id` too when present). A later
 * fan-in stage renumbers images and annotations across shards.
 */
import type { Storage } from '../storage/types.js';
import type { Category } from './categories.js';

export interface CocoImage {
  readonly id: number;
  readonly file_name: string;
  readonly width: number;
  readonly height: number;
  /** Where the image lives (local path or s3:// URI). */
  readonly uri?: string;
}

export interface CocoAnnotation {
  readonly id: number;
  readonly image_id: number;
  readonly category_id: number;
  /** [x, y, width, height] in pixels, (0, 0) the top-left corner of the top-left pixel. */
  readonly bbox: readonly [number, number, number, number];
  readonly area: number;
  readonly iscrowd: 0;
  /** Polygons as flat [x1, y1, x2, y2, ...] lists (outer rings; COCO polygons have no holes). */
  readonly segmentation?: readonly (readonly number[])[];
  /** Index of the feature in the source file. */
  readonly source_index: number;
  /** xView's feature id. */
  readonly feature_id?: number;
}

export interface CocoDataset {
  readonly info: { readonly description: string; readonly source: string };
  readonly images: readonly CocoImage[];
  readonly annotations: readonly CocoAnnotation[];
  readonly categories: readonly Category[];
}

/** Rounds pixel coordinates to 1/100 px: precise enough, and shards stay small. */
export function roundPx(v: number): number {
  return Math.round(v * 100) / 100;
}

/** COCO text: one annotation per line, so shards diff and stream well. */
export function cocoText(dataset: CocoDataset): string {
  const head = JSON.stringify({ info: dataset.info, images: dataset.images, categories: dataset.categories });
  const annotations = dataset.annotations.map((a) => JSON.stringify(a)).join(',\n');
  return `${head.slice(0, -1)},"annotations":[${annotations ? `\n${annotations}\n` : ''}]}\n`;
}

/** Writes COCO shards with a few writes in flight; each write is atomic. */
export async function writeShards(
  storage: Storage,
  shards: readonly { readonly uri: string; readonly dataset: CocoDataset }[],
  options: { signal?: AbortSignal; concurrency?: number } = {},
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < shards.length) {
      const shard = shards[next++]!;
      await storage.writeAtomic(shard.uri, cocoText(shard.dataset), {
        contentType: 'application/json',
        ...(options.signal ? { signal: options.signal } : {}),
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 8, shards.length) }, worker));
}
