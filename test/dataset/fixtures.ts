// Hand-made chip folders, as the chip job writes them: <root>/<scene>/annotations.json and
// <scene>/images/*.png (small solid-colour PNGs made with sharp).
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

export interface FixtureChip {
  readonly name: string;
  /** [category id, x, y, w, h] per annotation, in the shard's own category ids. */
  readonly boxes: readonly (readonly [number, number, number, number, number])[];
}

export interface FixtureScene {
  readonly scene: string;
  readonly categories: readonly { id: number; name: string }[];
  readonly chips: readonly FixtureChip[];
}

export const SIZE = 64;

/** COCO of one scene: images and annotations numbered in the given order. */
export function sceneCoco(scene: FixtureScene): object {
  const annotations: object[] = [];
  scene.chips.forEach((chip, i) => {
    for (const [category, x, y, w, h] of chip.boxes) {
      annotations.push({
        id: annotations.length + 1,
        image_id: i + 1,
        category_id: category,
        bbox: [x, y, w, h],
        segmentation: [[x, y, x + w, y, x + w, y + h, x, y + h]],
        area: w * h,
        iscrowd: 0,
      });
    }
  });
  return {
    images: scene.chips.map((c, i) => ({ id: i + 1, file_name: c.name, width: SIZE, height: SIZE })),
    categories: scene.categories,
    annotations,
  };
}

/** Writes the scenes under `root` and returns their folders. */
export async function writeScenes(root: string, scenes: readonly FixtureScene[]): Promise<string[]> {
  const folders: string[] = [];
  for (const [s, scene] of scenes.entries()) {
    const folder = join(root, scene.scene);
    await mkdir(join(folder, 'images'), { recursive: true });
    for (const [i, chip] of scene.chips.entries()) {
      const png = await sharp({
        create: { width: SIZE, height: SIZE, channels: 3, background: { r: 40 * s, g: 20 * i, b: 120 } },
      })
        .png()
        .toBuffer();
      await writeFile(join(folder, 'images', chip.name), png);
    }
    await writeFile(join(folder, 'annotations.json'), JSON.stringify(sceneCoco(scene)));
    folders.push(folder);
  }
  return folders;
}

/** `n` scenes of two chips each: scene-NN with classes car (id 1) and house (id 2). */
export function simpleScenes(n: number): FixtureScene[] {
  return Array.from({ length: n }, (_, i) => {
    const scene = `scene-${String(i + 1).padStart(2, '0')}`;
    return {
      scene,
      categories: [
        { id: 1, name: 'car' },
        { id: 2, name: 'house' },
      ],
      chips: [
        { name: `${scene}_0.png`, boxes: [[1, 2, 2, 10, 8]] },
        { name: `${scene}_1.png`, boxes: [] },
      ],
    };
  });
}

interface SceneCocoShape {
  images: { id: number }[];
  annotations: { image_id: number }[];
  categories: unknown[];
}

/**
 * A scene's COCO as a chip stage split in `ends.length` parts writes it: part k holds the images
 * [ends[k - 1], ends[k]) (by position) and their annotations, with the ids the whole run gives, in
 * `annotations.part-<k>-of-<n>.json`. `ends` is increasing and ends at the number of images; a
 * part with no images is written with empty arrays, as the chip job does.
 */
export function cocoParts(coco: object, ends: readonly number[]): Map<string, object> {
  const whole = coco as SceneCocoShape;
  const parts = new Map<string, object>();
  let start = 0;
  ends.forEach((end, k) => {
    const images = whole.images.slice(start, end);
    const ids = new Set(images.map((i) => i.id));
    parts.set(`annotations.part-${k + 1}-of-${ends.length}.json`, {
      images,
      categories: whole.categories,
      annotations: whole.annotations.filter((a) => ids.has(a.image_id)),
    });
    start = end;
  });
  return parts;
}

/** Replaces `<folder>/annotations.json` by its parts (see {@link cocoParts}); returns their names. */
export async function splitSceneFolder(folder: string, ends: readonly number[]): Promise<string[]> {
  const coco = JSON.parse(await readFile(join(folder, 'annotations.json'), 'utf8')) as object;
  const parts = cocoParts(coco, ends);
  for (const [name, part] of parts) await writeFile(join(folder, name), JSON.stringify(part));
  await rm(join(folder, 'annotations.json'));
  return [...parts.keys()];
}
