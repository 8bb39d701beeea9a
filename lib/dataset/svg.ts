/**
 * Small helpers for the dataset's pictures: SVG text made safe, a colour per class, an estimate
 * of text width (DejaVu Sans, the font sharp's SVG renderer finds on Debian), and SVG -> PNG.
 */
import sharp from 'sharp';

export const FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"';

export const SPLIT_COLOURS: Readonly<Record<string, string>> = {
  train: '#3366aa',
  val: '#dd7722',
  test: '#449955',
};

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Width in px of `text` at `size` px, a little generous (DejaVu Sans averages ~0.6 em). */
export function textWidth(text: string, size: number): number {
  return Math.ceil(text.length * size * 0.62);
}

/** `text` cut to at most `max` characters, with an ellipsis when cut. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`;
}

function hslToHex(h: number, s: number, l: number): string {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): string => {
    const k = (n + h / 30) % 12;
    const v = l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(v * 255)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

/** A colour for class `index` (0-based): hues spread by the golden angle, so neighbours differ. */
export function classColour(index: number): string {
  const hue = (index * 137.508 + 20) % 360;
  return hslToHex(hue, 0.75, index % 2 === 0 ? 0.45 : 0.55);
}

/** Renders an SVG document to PNG bytes. */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}
