/**
 * GDAL-style affine geotransforms: pixel (col, row) -> world (x, y) as
 *   x = originX + col * pixelWidth + row * rotX
 *   y = originY + col * rotY       + row * pixelHeight
 * where (col, row) are pixel-corner coordinates: (0, 0) is the top-left corner of the
 * top-left pixel and (0.5, 0.5) its centre. Pure functions, no I/O.
 */

/** `[originX, pixelWidth, rotX, originY, rotY, pixelHeight]`, the order of GDAL's `GetGeoTransform()`. */
export type GeoTransform = readonly [
  originX: number,
  pixelWidth: number,
  rotX: number,
  originY: number,
  rotY: number,
  pixelHeight: number,
];

/** A rectangle of pixels: offset of its top-left pixel and its size, in pixels. */
export interface PixelWindow {
  readonly col: number;
  readonly row: number;
  readonly width: number;
  readonly height: number;
}

/** An axis-aligned box in world coordinates. */
export interface Bounds {
  readonly minX: number;
  readonly minY: number;
  readonly maxX: number;
  readonly maxY: number;
}

/** A north-up geotransform from the world position of the top-left corner and the pixel size (positive). */
export function northUpGeoTransform(
  originX: number,
  originY: number,
  pixelWidth: number,
  pixelHeight = pixelWidth,
): GeoTransform {
  return [originX, pixelWidth, 0, originY, 0, -pixelHeight];
}

/** World coordinates of pixel-corner coordinates (col, row). */
export function pixelToWorld(gt: GeoTransform, col: number, row: number): [x: number, y: number] {
  return [gt[0] + col * gt[1] + row * gt[2], gt[3] + col * gt[4] + row * gt[5]];
}

/** Pixel-corner coordinates (col, row) of a world point; fractional, not rounded. */
export function worldToPixel(gt: GeoTransform, x: number, y: number): [col: number, row: number] {
  const inv = invertGeoTransform(gt);
  return pixelToWorld(inv, x, y);
}

/** The transform from world to pixel coordinates; throws when `gt` is singular. */
export function invertGeoTransform(gt: GeoTransform): GeoTransform {
  const [x0, a, b, y0, c, d] = gt;
  const det = a * d - b * c;
  if (!Number.isFinite(det) || det === 0) {
    throw new Error(
      `Expected an invertible geotransform but received [${gt.join(', ')}] (determinant ${det})`,
    );
  }
  // Exact for north-up transforms (the common case): avoids 1/x rounding in the products.
  if (b === 0 && c === 0) return [-x0 / a, 1 / a, 0, -y0 / d, 0, 1 / d];
  const ia = d / det;
  const ib = -b / det;
  const ic = -c / det;
  const id = a / det;
  return [-(ia * x0 + ib * y0), ia, ib, -(ic * x0 + id * y0), ic, id];
}

/** The geotransform of a window whose top-left pixel is (col, row) of the image `gt` describes. */
export function windowGeoTransform(gt: GeoTransform, col: number, row: number): GeoTransform {
  const [x, y] = pixelToWorld(gt, col, row);
  return [x, gt[1], gt[2], y, gt[4], gt[5]];
}

/** The geotransform of the same image resampled by `factor` (2 = half the pixels per side, as an overview). */
export function scaleGeoTransform(gt: GeoTransform, factorX: number, factorY = factorX): GeoTransform {
  return [gt[0], gt[1] * factorX, gt[2] * factorY, gt[3], gt[4] * factorX, gt[5] * factorY];
}

/** World bounds of a pixel window (all four corners, so rotated transforms are covered). */
export function windowBounds(gt: GeoTransform, window: PixelWindow): Bounds {
  const corners = [
    pixelToWorld(gt, window.col, window.row),
    pixelToWorld(gt, window.col + window.width, window.row),
    pixelToWorld(gt, window.col, window.row + window.height),
    pixelToWorld(gt, window.col + window.width, window.row + window.height),
  ];
  const xs = corners.map((c) => c[0]);
  const ys = corners.map((c) => c[1]);
  return { minX: Math.min(...xs), minY: Math.min(...ys), maxX: Math.max(...xs), maxY: Math.max(...ys) };
}

/** True when the transform has rotation or shear terms (not north-up / axis-aligned). */
export function isRotated(gt: GeoTransform): boolean {
  return gt[2] !== 0 || gt[4] !== 0;
}

/** Pixel window (whole pixels, clipped to the image) that covers world `bounds`; undefined when they do not overlap. */
export function boundsToWindow(
  gt: GeoTransform,
  bounds: Bounds,
  imageWidth: number,
  imageHeight: number,
): PixelWindow | undefined {
  const inv = invertGeoTransform(gt);
  const corners = [
    pixelToWorld(inv, bounds.minX, bounds.minY),
    pixelToWorld(inv, bounds.maxX, bounds.minY),
    pixelToWorld(inv, bounds.minX, bounds.maxY),
    pixelToWorld(inv, bounds.maxX, bounds.maxY),
  ];
  const cols = corners.map((c) => c[0]);
  const rows = corners.map((c) => c[1]);
  // A tolerance keeps bounds that end exactly on a pixel edge from pulling in one more pixel.
  const eps = 1e-9;
  const col0 = Math.max(0, Math.floor(Math.min(...cols) + eps));
  const row0 = Math.max(0, Math.floor(Math.min(...rows) + eps));
  const col1 = Math.min(imageWidth, Math.ceil(Math.max(...cols) - eps));
  const row1 = Math.min(imageHeight, Math.ceil(Math.max(...rows) - eps));
  if (col1 <= col0 || row1 <= row0) return undefined;
  return { col: col0, row: row0, width: col1 - col0, height: row1 - row0 };
}
