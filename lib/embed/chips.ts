/**
 * The chips `geobatch embed` reads, in the order of the vectors it writes: a dataset (dataset.json
 * or train.json / val.json / test.json, as `dataset build` and the merge job write them: splits in
 * the order train, val, test, images in file order) or chip folders (`<scene>/annotations.json` +
 * `images/`, as `chip slice` and the chip job write them, one scene folder or a folder of them,
 * scenes in name order). Footprints and windows come from each scene's chips.geojson (or its part
 * files) when there is one.
 */
import { readGeobatchDataset } from '../dataset/exchange.js';
import { findSceneFolders, readSceneShard } from '../dataset/shards.js';
import { DatasetError } from '../dataset/errors.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, compareUtf8, dirnameUri, joinUri, normalizeUri } from '../storage/uri.js';
import { EmbedError } from './errors.js';

/** A GeoJSON Polygon in CRS84. */
export interface FootprintPolygon {
  readonly type: 'Polygon';
  readonly coordinates: number[][][];
}

/** One row of chips.jsonl (without its id, the row number). */
export interface ChipEntry {
  /** The chip's file name without its extension (the COCO file_name's stem). */
  readonly name: string;
  /** Where the chip image is (path or URI). */
  readonly image: string;
  /** The scene the chip was cut from. */
  readonly source: string | null;
  /** [x, y, width, height] in the scene's pixels, when known. */
  readonly window: readonly [number, number, number, number] | null;
  readonly footprint: FootprintPolygon | null;
  readonly split: 'train' | 'val' | 'test' | null;
  /** Names of the classes of the chip's annotations, in category id order. */
  readonly labels: readonly string[];
}

export interface ChipList {
  /** 'dataset' or 'chips' (chip folders). */
  readonly kind: 'dataset' | 'chips';
  /** The input as read (canonical URI). */
  readonly uri: string;
  readonly chips: readonly ChipEntry[];
}

interface SceneFootprint {
  readonly window: [number, number, number, number] | null;
  readonly footprint: FootprintPolygon | null;
}

const stem = (fileName: string): string => basenameUri(fileName).replace(/\.[^.]*$/, '');

/** `<scene>_<x0>_<y0>_<x1>_<y1>`, the chip slice name, as a window [x, y, w, h]. */
function windowFromName(name: string, scene: string | null): [number, number, number, number] | null {
  if (scene === null || !name.startsWith(`${scene}_`)) return null;
  const m = /^(\d+)_(\d+)_(\d+)_(\d+)$/.exec(name.slice(scene.length + 1));
  if (!m) return null;
  const [x0, y0, x1, y1] = m.slice(1).map(Number) as [number, number, number, number];
  return x1 > x0 && y1 > y0 ? [x0, y0, x1 - x0, y1 - y0] : null;
}

/** Parses chips.geojson (or a part of it): chip file name -> window and footprint. */
function parseFootprints(text: string, uri: string, into: Map<string, SceneFootprint>): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new EmbedError(`${uri}: not JSON (${(error as Error).message})`);
  }
  const features = (doc as { features?: unknown } | null)?.features;
  if (!Array.isArray(features)) {
    throw new EmbedError(`${uri}: no 'features' array; expected the chips.geojson chip slice writes`);
  }
  features.forEach((f: unknown, i: number) => {
    const feature = f as {
      properties?: { chip?: unknown; window?: unknown };
      geometry?: { type?: unknown; coordinates?: unknown };
    } | null;
    const chip = feature?.properties?.chip;
    if (typeof chip !== 'string' || chip === '') {
      throw new EmbedError(
        `${uri}: features[${i}].properties.chip is ${JSON.stringify(chip)}; expected the chip's file name`,
      );
    }
    const w = feature?.properties?.window;
    const window =
      Array.isArray(w) && w.length === 4 && w.every((v) => Number.isFinite(v))
        ? ([w[0], w[1], w[2] - w[0], w[3] - w[1]] as [number, number, number, number])
        : null;
    const g = feature?.geometry;
    const footprint =
      g?.type === 'Polygon' && Array.isArray(g.coordinates)
        ? { type: 'Polygon' as const, coordinates: g.coordinates as number[][][] }
        : null;
    into.set(chip, { window, footprint });
  });
}

/** The footprints of a scene folder's chips: chips.geojson, else its part files; empty when there are none. */
async function readSceneFootprints(
  storage: Storage,
  folder: string,
  signal?: AbortSignal,
): Promise<Map<string, SceneFootprint>> {
  const io = signal ? { signal } : {};
  const out = new Map<string, SceneFootprint>();
  const whole = joinUri(folder, 'chips.geojson');
  if (await storage.exists(whole, io)) {
    parseFootprints((await storage.read(whole, io)).toString('utf8'), whole, out);
    return out;
  }
  const parts: string[] = [];
  for await (const info of storage.list(joinUri(folder, 'chips.part-'), io)) {
    if (/\/chips\.part-\d+-of-\d+\.geojson$/.test(info.uri)) parts.push(info.uri);
  }
  for (const uri of parts.sort(compareUtf8)) {
    parseFootprints((await storage.read(uri, io)).toString('utf8'), uri, out);
  }
  return out;
}

interface CocoLike {
  readonly images: readonly {
    readonly id: unknown;
    readonly file_name: string;
    readonly [k: string]: unknown;
  }[];
  readonly annotations: readonly { readonly image_id: unknown; readonly category_id: unknown }[];
}

/** Per image id: the class names of its annotations, in the order of `categories` (by id). */
function labelsByImage(
  coco: CocoLike,
  categories: readonly { readonly id: number; readonly name: string }[],
): Map<unknown, string[]> {
  const rank = new Map(categories.map((c, k) => [c.id, k]));
  const sets = new Map<unknown, Set<number>>();
  for (const a of coco.annotations) {
    const k = rank.get(a.category_id as number);
    if (k === undefined) continue;
    let set = sets.get(a.image_id);
    if (!set) sets.set(a.image_id, (set = new Set()));
    set.add(k);
  }
  const out = new Map<unknown, string[]>();
  for (const [id, set] of sets)
    out.set(
      id,
      [...set].sort((a, b) => a - b).map((k) => categories[k]!.name),
    );
  return out;
}

async function isDataset(storage: Storage, uri: string, signal?: AbortSignal): Promise<boolean> {
  const io = signal ? { signal } : {};
  if (uri.endsWith('/dataset.json')) return true;
  return (
    (await storage.exists(joinUri(uri, 'dataset.json'), io)) || storage.exists(joinUri(uri, 'train.json'), io)
  );
}

/** The chips of a dataset or of chip folders (see the module comment). */
export async function listChips(storage: Storage, input: string, signal?: AbortSignal): Promise<ChipList> {
  const uri = normalizeUri(input).replace(/\/+$/, '');
  try {
    return (await isDataset(storage, uri, signal))
      ? await datasetChips(storage, uri, signal)
      : await folderChips(storage, uri, signal);
  } catch (error) {
    // the dataset room's messages name the file and field; embed reports them as its own
    if (error instanceof DatasetError) throw new EmbedError(`--chips ${input}: ${error.message}`);
    throw error;
  }
}

async function datasetChips(storage: Storage, uri: string, signal?: AbortSignal): Promise<ChipList> {
  const dataset = await readGeobatchDataset(storage, uri, signal);
  const footprints = new Map<string, Map<string, SceneFootprint>>();
  const chips: ChipEntry[] = [];
  for (const { split, coco } of dataset.splits) {
    const labels = labelsByImage(coco, dataset.categories);
    for (const image of coco.images) {
      const fileName = image.file_name;
      const dir = dirnameUri(joinUri(dataset.imagesRoot, fileName));
      // referenced chips are <scene>/images/<chip>: the scene folder has the footprints
      const folder = basenameUri(dir) === 'images' ? dirnameUri(dir) : dir;
      let scene = footprints.get(folder);
      if (!scene) footprints.set(folder, (scene = await readSceneFootprints(storage, folder, signal)));
      const source =
        typeof image['scene'] === 'string'
          ? (image['scene'] as string)
          : fileName.includes('/')
            ? fileName.split('/')[0]!
            : null;
      const name = stem(fileName);
      const known = scene.get(basenameUri(fileName));
      chips.push({
        name,
        image: joinUri(dataset.imagesRoot, fileName),
        source,
        window: known?.window ?? windowFromName(name, source),
        footprint: known?.footprint ?? null,
        split,
        labels: labels.get(image.id) ?? [],
      });
    }
  }
  return { kind: 'dataset', uri: dataset.uri, chips };
}

async function folderChips(storage: Storage, uri: string, signal?: AbortSignal): Promise<ChipList> {
  const folders = await findSceneFolders(storage, [uri], signal);
  const chips: ChipEntry[] = [];
  for (const folder of folders) {
    const shard = await readSceneShard(storage, folder, signal);
    const categories = [...shard.categories].sort((a, b) => a.id - b.id);
    const labels = labelsByImage(shard, categories);
    const scene = await readSceneFootprints(storage, folder, signal);
    for (const image of shard.images) {
      const name = stem(image.file_name);
      const known = scene.get(basenameUri(image.file_name));
      chips.push({
        name,
        image: joinUri(folder, 'images', image.file_name),
        source: shard.scene,
        window: known?.window ?? windowFromName(name, shard.scene),
        footprint: known?.footprint ?? null,
        split: null,
        labels: labels.get(image.id) ?? [],
      });
    }
  }
  return { kind: 'chips', uri, chips };
}
