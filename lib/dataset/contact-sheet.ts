/**
 * The contact sheet: a grid of sample chips with their boxes (outlines) and polygon masks (filled,
 * half transparent) drawn in per-class colours, a caption per chip and a legend. The choice of
 * chips is deterministic: chips with labels first, taken at even steps through the splits (so
 * every scene and split can show up), then chips without labels if there are too few.
 */
import sharp from 'sharp';
import type { Storage } from '../storage/types.js';
import type { DatasetCategory } from './categories.js';
import type { SplitCoco } from './labels.js';
import type { DatasetAnnotation, DatasetImage } from './merge.js';
import { FONT, classColour, clip, escapeXml, textWidth } from './svg.js';

export interface SheetChip {
  readonly split: string;
  readonly image: DatasetImage;
  readonly annotations: readonly DatasetAnnotation[];
}

function evenly<T>(values: readonly T[], n: number): T[] {
  if (values.length <= n) return [...values];
  return Array.from({ length: n }, (_, i) => values[Math.floor((i * values.length) / n)]!);
}

/** Up to `n` chips, chosen as the module comment says. Pure. */
export function pickSheetChips(splits: readonly SplitCoco[], n: number): SheetChip[] {
  const labelled: SheetChip[] = [];
  const empty: SheetChip[] = [];
  for (const { split, coco } of splits) {
    const byImage = coco.images.map((): DatasetAnnotation[] => []);
    for (const a of coco.annotations) byImage[a.image_id - 1]!.push(a);
    coco.images.forEach((image, i) => {
      (byImage[i]!.length > 0 ? labelled : empty).push({ split, image, annotations: byImage[i]! });
    });
  }
  const picked = evenly(labelled, n);
  return [...picked, ...evenly(empty, n - picked.length)];
}

export interface ContactSheetOptions {
  /** Tile edge in px (chips are scaled to fit). @default 192 */
  readonly tile?: number;
  /** @default 6 */
  readonly columns?: number;
  readonly signal?: AbortSignal;
}

function polygonPoints(flat: readonly number[], scale: number): string {
  const points: string[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    points.push(`${(flat[i]! * scale).toFixed(1)},${(flat[i + 1]! * scale).toFixed(1)}`);
  }
  return points.join(' ');
}

/**
 * Renders the sheet to PNG. `imageUri` gives where a chip lives; chips are read (a few at a time)
 * through storage, so local and S3 datasets both work.
 */
export async function renderContactSheet(
  storage: Storage,
  chips: readonly SheetChip[],
  categories: readonly DatasetCategory[],
  imageUri: (image: DatasetImage) => string,
  options: ContactSheetOptions = {},
): Promise<Buffer> {
  const tile = options.tile ?? 192;
  const columns = Math.max(1, Math.min(options.columns ?? 6, chips.length));
  const rows = Math.ceil(chips.length / columns);
  const pad = 8;
  const caption = 30;
  const font = 12;
  const colourOf = new Map(categories.map((c, i) => [c.id, classColour(i)]));
  // legend: one row of swatches, wrapped to the sheet's width
  const width = Math.max(columns * (tile + pad) + pad, 480);
  const legendItems = categories.map((c) => ({ c, w: 22 + textWidth(clip(c.name, 32), font) + 16 }));
  const legendRows: (typeof legendItems)[] = [[]];
  let used = pad;
  for (const item of legendItems) {
    if (used + item.w > width - pad && legendRows[legendRows.length - 1]!.length > 0) {
      legendRows.push([]);
      used = pad;
    }
    legendRows[legendRows.length - 1]!.push(item);
    used += item.w;
  }
  const header = 34;
  const gridHeight = rows * (tile + caption + pad);
  const height = header + gridHeight + pad + legendRows.length * 22 + pad;

  const tiles = new Array<{ input: Buffer; left: number; top: number; scale: number; w: number; h: number }>(
    chips.length,
  );
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < chips.length) {
      const i = next++;
      const chip = chips[i]!;
      const scale = tile / Math.max(chip.image.width, chip.image.height);
      const w = Math.max(1, Math.round(chip.image.width * scale));
      const h = Math.max(1, Math.round(chip.image.height * scale));
      const bytes = await storage.read(
        imageUri(chip.image),
        options.signal ? { signal: options.signal } : {},
      );
      const input = await sharp(bytes).resize(w, h, { fit: 'fill' }).removeAlpha().png().toBuffer();
      const col = i % columns;
      const row = Math.floor(i / columns);
      tiles[i] = {
        input,
        left: pad + col * (tile + pad),
        top: header + row * (tile + caption + pad),
        scale,
        w,
        h,
      };
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, chips.length) }, worker));

  const svg: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ${FONT} font-size="${font}">`,
    `<text x="${pad}" y="22" font-size="16" font-weight="bold">Sample chips (${chips.length}) with their labels</text>`,
  ];
  chips.forEach((chip, i) => {
    const t = tiles[i]!;
    svg.push(`<g transform="translate(${t.left},${t.top})">`);
    for (const a of chip.annotations) {
      const colour = colourOf.get(a.category_id) ?? '#ff00ff';
      if (Array.isArray(a.segmentation)) {
        for (const ring of a.segmentation as unknown[]) {
          if (Array.isArray(ring) && ring.length >= 6) {
            svg.push(
              `<polygon points="${polygonPoints(ring as number[], t.scale)}" fill="${colour}" fill-opacity="0.35" stroke="none"/>`,
            );
          }
        }
      }
      const [x, y, w, h] = a.bbox;
      svg.push(
        `<rect x="${(x * t.scale).toFixed(1)}" y="${(y * t.scale).toFixed(1)}" width="${(w * t.scale).toFixed(1)}" height="${(h * t.scale).toFixed(1)}" fill="none" stroke="${colour}" stroke-width="2"/>`,
      );
    }
    svg.push(`<rect x="0" y="0" width="${t.w}" height="${t.h}" fill="none" stroke="#222222"/>`);
    const name = chip.image.file_name.slice(chip.image.file_name.lastIndexOf('/') + 1);
    const chars = Math.floor(tile / (font * 0.62));
    svg.push(`<text x="0" y="${t.h + 13}">${escapeXml(clip(name, chars))}</text>`);
    svg.push(
      `<text x="0" y="${t.h + 26}" fill="#555555">${escapeXml(clip(`${chip.split} · ${chip.annotations.length} labels`, chars))}</text>`,
    );
    svg.push('</g>');
  });
  legendRows.forEach((items, r) => {
    let x = pad;
    const y = header + gridHeight + pad + r * 22;
    for (const { c, w } of items) {
      svg.push(
        `<rect x="${x}" y="${y}" width="16" height="16" fill="${colourOf.get(c.id)}" fill-opacity="0.6" stroke="${colourOf.get(c.id)}" stroke-width="2"/>`,
      );
      svg.push(`<text x="${x + 22}" y="${y + 13}">${escapeXml(clip(c.name, 32))}</text>`);
      x += w;
    }
  });
  svg.push('</svg>');

  return sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([
      ...tiles.map((t) => ({ input: t.input, left: t.left, top: t.top })),
      { input: Buffer.from(svg.join('\n')), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
}
