/** A tiny detection/segmentation/classification dataset for the training tests: bright rectangles on dark noise. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { createRandom } from '../../lib/demo/noise.js';

export const TINY_CLASSES = [
  { id: 1, name: 'building' },
  { id: 7, name: 'vehicle' },
];
const COLORS: Record<number, [number, number, number]> = { 1: [250, 250, 250], 7: [40, 250, 40] };

export interface TinyImage {
  readonly fileName: string;
  readonly bytes: Buffer;
}

export interface TinyDataset {
  readonly train: object;
  readonly val: object;
  readonly images: readonly TinyImage[];
}

/**
 * Images `<split>-<i>.png` (size x size) with 1-2 rectangles (building white, vehicle green); every
 * third validation image is a negative. `prefix` is put before each file_name (e.g. 'scene-a/images/').
 */
export async function tinyDataset(
  options: { nTrain?: number; nVal?: number; size?: number; prefix?: string } = {},
): Promise<TinyDataset> {
  const { nTrain = 4, nVal = 2, size = 64, prefix = '' } = options;
  const rand = createRandom(1);
  const images: TinyImage[] = [];
  const splits: Record<string, object> = {};
  for (const [split, n] of [
    ['train', nTrain],
    ['val', nVal],
  ] as const) {
    const entries: object[] = [];
    const annotations: object[] = [];
    for (let i = 0; i < n; i++) {
      const pixels = Buffer.alloc(size * size * 3);
      for (let p = 0; p < pixels.length; p++) pixels[p] = Math.floor(rand() * 40);
      const objects = split === 'val' && i % 3 === 2 ? [] : [1, 7].slice(0, 1 + (i % 2));
      objects.forEach((cat, j) => {
        const w = Math.floor(size / 5 + rand() * (size / 8));
        const h = Math.floor(size / 5 + rand() * (size / 8));
        const x = Math.floor(rand() * (size / 2 - w)) + (j ? size / 2 : 0);
        const y = Math.floor(rand() * (size - h));
        for (let yy = y; yy < y + h; yy++)
          for (let xx = x; xx < x + w; xx++) pixels.set(COLORS[cat]!, (yy * size + xx) * 3);
        annotations.push({
          id: annotations.length + 1,
          image_id: i + 1,
          category_id: cat,
          bbox: [x, y, w, h],
          area: w * h,
          iscrowd: 0,
          segmentation: [[x, y, x + w, y, x + w, y + h, x, y + h]],
        });
      });
      const fileName = `${prefix}${split}-${i}.png`;
      images.push({
        fileName,
        bytes: await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
          .png()
          .toBuffer(),
      });
      entries.push({ id: i + 1, file_name: fileName, width: size, height: size });
    }
    splits[split] = { images: entries, annotations, categories: TINY_CLASSES };
  }
  return { train: splits['train']!, val: splits['val']!, images };
}

/** Writes the dataset as a plain folder: train.json, val.json, images/. */
export async function writeTinyDataset(
  dir: string,
  options: Parameters<typeof tinyDataset>[0] = {},
): Promise<TinyDataset> {
  const data = await tinyDataset(options);
  for (const image of data.images) {
    const path = join(dir, 'images', image.fileName);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, image.bytes);
  }
  await writeFile(join(dir, 'train.json'), JSON.stringify(data.train));
  await writeFile(join(dir, 'val.json'), JSON.stringify(data.val));
  return data;
}
