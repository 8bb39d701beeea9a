/**
 * xView labels to COCO, one shard per image. The GeoJSON (~600,000 features, ~300 MB for the real
 * training set) is streamed; each feature's pixel box (`bounds_imcoords`, a string
 * "xmin,ymin,xmax,ymax") is mapped to a category by `type_id`, clipped to its image and kept, or
 * dropped and counted: zero-area, outside the image, unmapped or excluded category, missing image.
 * Boxes are clipped (the usual converter does not, a known defect) and the clipped ones counted.
 */
import type { Storage } from '../storage/types.js';
import { basenameUri } from '../storage/uri.js';
import type { CategoryMap } from './categories.js';
import { roundPx } from './coco.js';
import type { CocoAnnotation, CocoDataset } from './coco.js';
import { LabelError } from './errors.js';
import { parseFeature, readFeatureCollection } from './geojson-stream.js';
import { fileStem } from './images.js';
import type { LabelImage } from './images.js';

/** What happened to the features: every feature is counted in exactly one of the first six. */
export interface XviewCounts {
  readonly features: number;
  readonly kept: number;
  readonly zeroArea: number;
  readonly outside: number;
  readonly unmappedCategory: number;
  /** Mapped to null on purpose by the category map. */
  readonly excludedCategory: number;
  readonly missingImage: number;
  /** Kept boxes that were partly outside their image and were clipped to it. */
  readonly clipped: number;
}

export interface XviewConversion {
  readonly source: string;
  readonly categories: string;
  readonly counts: XviewCounts;
  /** Features per type_id the category map does not know. */
  readonly unmappedTypeIds: Readonly<Record<string, number>>;
  /** Features per image_id that matches no image. */
  readonly missingImages: Readonly<Record<string, number>>;
  /** One dataset per image, in the order of `images` (images without labels get empty shards). */
  readonly shards: readonly { readonly image: LabelImage; readonly dataset: CocoDataset }[];
}

/** Parses `bounds_imcoords`: a "xmin,ymin,xmax,ymax" string (or an array of four numbers). */
export function parseBoundsImcoords(value: unknown, where: string): [number, number, number, number] {
  const raw = typeof value === 'string' ? value : Array.isArray(value) ? value.join(',') : undefined;
  if (raw === undefined) {
    throw new LabelError(
      `${where}: properties.bounds_imcoords is ${value === undefined ? 'missing' : JSON.stringify(value)}; expected a string 'xmin,ymin,xmax,ymax' of pixel coordinates`,
    );
  }
  const parts = raw.split(',');
  if (parts.length !== 4) {
    throw new LabelError(
      `${where}: properties.bounds_imcoords = '${raw}' has ${parts.length} number${parts.length === 1 ? '' : 's'}; expected 4: 'xmin,ymin,xmax,ymax'`,
    );
  }
  const numbers = parts.map((p) => (p.trim() === '' ? NaN : Number(p)));
  if (!numbers.every(Number.isFinite)) {
    throw new LabelError(
      `${where}: properties.bounds_imcoords = '${raw}' is not 4 finite numbers; expected 'xmin,ymin,xmax,ymax'`,
    );
  }
  return numbers as [number, number, number, number];
}

/** Converts the xView GeoJSON at `uri` to one COCO dataset per image. */
export async function convertXview(
  storage: Storage,
  uri: string,
  images: readonly LabelImage[],
  categories: CategoryMap,
  options: { signal?: AbortSignal; onProgress?: (features: number) => void } = {},
): Promise<XviewConversion> {
  const byName = new Map<string, number>();
  const byStem = new Map<string, number>();
  images.forEach((image, i) => {
    byName.set(image.name, i);
    byStem.set(fileStem(image.name), i);
    byStem.set(image.id, i);
  });
  const annotations = images.map((): CocoAnnotation[] => []);
  const counts = {
    features: 0,
    kept: 0,
    zeroArea: 0,
    outside: 0,
    unmappedCategory: 0,
    excludedCategory: 0,
    missingImage: 0,
    clipped: 0,
  };
  const unmapped: Record<string, number> = {};
  const missing: Record<string, number> = {};

  await readFeatureCollection(
    storage,
    uri,
    {
      onFeature: (text) => {
        counts.features++;
        if (options.onProgress && counts.features % 50_000 === 0) options.onProgress(counts.features);
        const feature = parseFeature(text, uri);
        const where = `${uri}: feature ${text.index}`;
        if (typeof feature !== 'object' || feature === null || Array.isArray(feature)) {
          throw new LabelError(
            `${where}: expected a GeoJSON Feature object but got ${JSON.stringify(feature)}`,
          );
        }
        const props = (feature as { properties?: unknown }).properties;
        if (typeof props !== 'object' || props === null || Array.isArray(props)) {
          throw new LabelError(
            `${where}: 'properties' is ${props === undefined ? 'missing' : JSON.stringify(props)}; expected an object with image_id, type_id and bounds_imcoords`,
          );
        }
        const p = props as Record<string, unknown>;
        const imageId = p.image_id;
        if (typeof imageId !== 'string' || imageId === '') {
          throw new LabelError(
            `${where}: properties.image_id is ${imageId === undefined ? 'missing' : JSON.stringify(imageId)}; expected the image's file name, e.g. "2355.tif"`,
          );
        }
        const [xmin, ymin, xmax, ymax] = parseBoundsImcoords(
          p.bounds_imcoords,
          `${where} (image_id '${imageId}')`,
        );
        const index = byName.get(imageId) ?? byStem.get(fileStem(imageId));
        if (index === undefined) {
          counts.missingImage++;
          missing[imageId] = (missing[imageId] ?? 0) + 1;
          return;
        }
        const category = categories.lookup(p.type_id);
        if (category === undefined) {
          counts.unmappedCategory++;
          const key = p.type_id === undefined ? '(missing)' : String(p.type_id);
          unmapped[key] = (unmapped[key] ?? 0) + 1;
          return;
        }
        if (category === null) {
          counts.excludedCategory++;
          return;
        }
        if (!(xmax > xmin && ymax > ymin)) {
          counts.zeroArea++;
          return;
        }
        const image = images[index]!;
        const x0 = Math.max(0, xmin);
        const y0 = Math.max(0, ymin);
        const x1 = Math.min(image.width, xmax);
        const y1 = Math.min(image.height, ymax);
        if (!(x1 > x0 && y1 > y0)) {
          counts.outside++;
          return;
        }
        if (x0 !== xmin || y0 !== ymin || x1 !== xmax || y1 !== ymax) counts.clipped++;
        counts.kept++;
        const list = annotations[index]!;
        const w = roundPx(x1 - x0);
        const h = roundPx(y1 - y0);
        list.push({
          id: list.length + 1,
          image_id: 1,
          category_id: category.id,
          bbox: [roundPx(x0), roundPx(y0), w, h],
          area: roundPx(w * h),
          iscrowd: 0,
          source_index: text.index,
          ...(typeof p.feature_id === 'number' ? { feature_id: p.feature_id } : {}),
        });
      },
    },
    options.signal ? { signal: options.signal } : {},
  );
  const info = { description: `xView labels converted by geobatch (${categories.source})`, source: uri };
  return {
    source: uri,
    categories: categories.source,
    counts,
    unmappedTypeIds: unmapped,
    missingImages: missing,
    shards: images.map((image, i) => ({
      image,
      dataset: {
        info,
        images: [
          {
            id: 1,
            file_name: basenameUri(image.uri),
            width: image.width,
            height: image.height,
            uri: image.uri,
          },
        ],
        annotations: annotations[i]!,
        categories: categories.categories,
      },
    })),
  };
}
