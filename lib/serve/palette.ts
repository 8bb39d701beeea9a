/**
 * The fixed colours of class rasters (masks, predicted `<scene>.classes.tif`): one RGBA entry per
 * 8-bit value. 0 (background) and 255 (no-data, as `geobatch predict` writes it) are
 * transparent; classes 1..254 cycle through 20 distinct opaque colours, so class 1 is always the
 * same colour on the map and in the page's legend.
 */

/** An RGBA colour, 0..255 each. */
export type Rgba = readonly [number, number, number, number];

/** Value drawn transparent as background. */
export const BACKGROUND_CLASS = 0;
/** Value drawn transparent as no-data. */
export const NODATA_CLASS = 255;

// a categorical set of well-separated colours (in the spirit of Tableau 20 / Kelly), our own order
const BASE: readonly (readonly [number, number, number])[] = [
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [0, 130, 200],
  [245, 130, 48],
  [145, 30, 180],
  [70, 240, 240],
  [240, 50, 230],
  [210, 245, 60],
  [250, 190, 212],
  [0, 128, 128],
  [220, 190, 255],
  [170, 110, 40],
  [255, 250, 200],
  [128, 0, 0],
  [170, 255, 195],
  [128, 128, 0],
  [255, 215, 180],
  [0, 0, 128],
  [128, 128, 128],
];

function build(): Rgba[] {
  const out: Rgba[] = [];
  for (let v = 0; v < 256; v++) {
    if (v === BACKGROUND_CLASS || v === NODATA_CLASS) out.push([0, 0, 0, 0]);
    else {
      const [r, g, b] = BASE[(v - 1) % BASE.length]!;
      out.push([r, g, b, 255]);
    }
  }
  return out;
}

/** Colour of every class value 0..255 (index = value). */
export const CLASS_PALETTE: readonly Rgba[] = build();

/** The colour of a class value; values outside 0..255 are transparent. */
export function classColor(value: number): Rgba {
  return CLASS_PALETTE[value] ?? [0, 0, 0, 0];
}

/** `#rrggbb` of a class value, for legends (transparent values give null). */
export function classHex(value: number): string | null {
  const [r, g, b, a] = classColor(value);
  if (a === 0) return null;
  return `#${[r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}
