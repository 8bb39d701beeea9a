/**
 * SAHI-compatible slicing (SAHI 0.11 `sahi coco slice`, see docs REFERENCE §1): the slice
 * windows of an image and the COCO annotations kept in each, clipped to the window. Pure,
 * no I/O; the chip writer and the `chip slice` command build on it.
 *
 * Deliberate differences from SAHI (documented for users):
 * - annotations of zero area are skipped and counted (SAHI divides by zero);
 * - RLE segmentations are skipped and counted (SAHI cannot slice them);
 * - an annotation whose bbox overlaps a window but whose clipped geometry is empty is never kept,
 *   even with a minimum area ratio of 0;
 * - a polygon with an edge along the window's edge is kept, clipped to its area (SAHI's shapely
 *   intersection gives a GeometryCollection there and SAHI drops the annotation);
 * - zero-width parts left by clipping are removed (see clipRingParts): a concave polygon that the
 *   window cuts into several pieces gives one ring per piece, as SAHI's MultiPolygon does.
 */
import { BoxIndex, type Box } from './box-index.js';
import { clipRingParts, signedArea, type Ring } from './geometry.js';
import { LabelError } from './errors.js';

/** [x0, y0, x1, y1] in pixels, x1/y1 exclusive. */
export type SliceWindow = readonly [number, number, number, number];

export interface SliceOptions {
  /** Slice width and height in pixels. @default 300 */
  readonly size: number;
  /** Overlap ratio in [0, 1) (of columns, and of rows unless overlapHeight is given). @default 0.2 */
  readonly overlap: number;
  /** Overlap ratio of rows, when it differs from `overlap`. */
  readonly overlapHeight?: number;
  /** Keep a clipped annotation when trunc(clipped area) / trunc(area) >= this, in [0, 1]. @default 0.1 */
  readonly minAreaRatio: number;
}

export const DEFAULT_SLICE_OPTIONS: SliceOptions = { size: 300, overlap: 0.2, minAreaRatio: 0.1 };

/** Throws a LabelError in the one shape every bad parameter gets. */
export function validateSliceOptions(options: SliceOptions): void {
  const { size, overlap, minAreaRatio } = options;
  if (options.overlapHeight !== undefined)
    validateSliceOptions({ size, overlap: options.overlapHeight, minAreaRatio });
  if (!Number.isInteger(size) || size <= 0) {
    throw new LabelError(`Expected positive integer for slice size but received ${size}`);
  }
  if (!Number.isFinite(overlap) || overlap < 0 || overlap >= 1) {
    throw new LabelError(`Expected number in [0, 1) for overlap ratio but received ${overlap}`);
  }
  if (!Number.isFinite(minAreaRatio) || minAreaRatio < 0 || minAreaRatio > 1) {
    throw new LabelError(`Expected number in [0, 1] for min area ratio but received ${minAreaRatio}`);
  }
}

/** floor(overlap * size) pixels shared by neighbouring windows. */
export function overlapPixels(size: number, overlap: number): number {
  return Math.floor(overlap * size);
}

/**
 * The slice windows of a `width` x `height` image, rows outer and columns inner. A window that
 * would cross the right or bottom edge is shifted back to end at the edge; no padding.
 * `overlap` applies to columns and, unless `overlapHeight` is given, to rows too (SAHI's
 * overlap_width_ratio and overlap_height_ratio).
 */
export function sliceWindows(
  width: number,
  height: number,
  size: number,
  overlap: number,
  overlapHeight: number = overlap,
): SliceWindow[] {
  validateSliceOptions({ size, overlap, minAreaRatio: 0 });
  validateSliceOptions({ size, overlap: overlapHeight, minAreaRatio: 0 });
  if (!Number.isInteger(width) || width <= 0 || !Number.isInteger(height) || height <= 0) {
    throw new LabelError(`Expected positive integer image size but received ${width} x ${height}`);
  }
  const starts = (extent: number, ratio: number): [number, number][] => {
    const step = size - overlapPixels(size, ratio);
    const out: [number, number][] = [];
    let end = 0;
    for (let start = 0; end < extent; start += step) {
      end = start + size;
      const e = Math.min(extent, end);
      out.push([Math.max(0, e - size), e]);
    }
    return out;
  };
  const xs = starts(width, overlap);
  const windows: SliceWindow[] = [];
  for (const [y0, y1] of starts(height, overlapHeight)) {
    for (const [x0, x1] of xs) windows.push([x0, y0, x1, y1]);
  }
  return windows;
}

/** An input COCO annotation as slicing reads it (extra fields are ignored). */
export interface SliceSourceAnnotation {
  readonly id?: number;
  readonly image_id?: number;
  readonly category_id: number;
  readonly bbox: readonly number[];
  readonly segmentation?: unknown;
}

/** An annotation ready to slice: its geometry (rings in image pixels), bounds and truncated area. */
export interface PreparedAnnotation {
  /** Index in the input list. */
  readonly source: number;
  readonly categoryId: number;
  readonly rings: readonly Ring[];
  readonly bounds: Box;
  readonly area: number;
}

export interface PreparedAnnotations {
  readonly annotations: readonly PreparedAnnotation[];
  /** Annotations whose truncated area is zero (SAHI crashes on them). */
  readonly zeroArea: number;
  /** RLE segmentations, which are not sliced. */
  readonly rle: number;
}

function bboxOf(a: SliceSourceAnnotation, where: string): Box {
  const b = a.bbox;
  if (!Array.isArray(b) || b.length !== 4 || !b.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new LabelError(
      `${where}.bbox is ${JSON.stringify(b)}; expected [x, y, width, height] of finite numbers`,
    );
  }
  const [x, y, w, h] = b as [number, number, number, number];
  return [x, y, x + w, y + h];
}

function ringsOf(segmentation: readonly unknown[], where: string): Ring[] {
  return segmentation.map((flat, i) => {
    if (
      !Array.isArray(flat) ||
      flat.length % 2 !== 0 ||
      !flat.every((v) => typeof v === 'number' && Number.isFinite(v))
    ) {
      throw new LabelError(
        `${where}.segmentation[${i}] is not a flat list of x, y numbers; expected [x1, y1, x2, y2, ...]`,
      );
    }
    const ring: Ring = [];
    for (let k = 0; k < flat.length; k += 2) ring.push([flat[k] as number, flat[k + 1] as number]);
    const first = ring[0];
    const last = ring[ring.length - 1];
    if (ring.length > 1 && first && last && first[0] === last[0] && first[1] === last[1]) ring.pop();
    return ring;
  });
}

function ringsArea(rings: readonly Ring[]): number {
  let area = 0;
  for (const r of rings) area += Math.abs(signedArea(r));
  return area;
}

/**
 * Geometry of each annotation: its polygon segmentation when present and non-empty, else its bbox
 * as a rectangle. `file` names the COCO file in errors.
 */
export function prepareAnnotations(
  annotations: readonly SliceSourceAnnotation[],
  file: string,
): PreparedAnnotations {
  const out: PreparedAnnotation[] = [];
  let zeroArea = 0;
  let rle = 0;
  annotations.forEach((a, i) => {
    const where = `${file}: annotations[${i}]`;
    const bounds = bboxOf(a, where);
    const seg = a.segmentation;
    if (seg !== undefined && seg !== null && !Array.isArray(seg)) {
      rle++;
      return;
    }
    const rings =
      Array.isArray(seg) && seg.length > 0
        ? ringsOf(seg, where).filter((r) => r.length >= 3)
        : [
            [
              [bounds[0], bounds[1]],
              [bounds[2], bounds[1]],
              [bounds[2], bounds[3]],
              [bounds[0], bounds[3]],
            ] as Ring,
          ];
    const area = Math.trunc(ringsArea(rings));
    if (area <= 0) {
      zeroArea++;
      return;
    }
    out.push({ source: i, categoryId: a.category_id, rings, bounds, area });
  });
  return { annotations: out, zeroArea, rle };
}

/** An annotation clipped to a window, in the window's pixels. */
export interface SlicedAnnotation {
  readonly source: number;
  readonly categoryId: number;
  readonly bbox: [number, number, number, number];
  /** One flat ring per clipped part. */
  readonly segmentation: number[][];
  /** trunc(clipped area), as SAHI stores it. */
  readonly area: number;
}

/** A clipped annotation as a COCO annotation of the chip `imageId`. */
export function cocoAnnotation(id: number, imageId: number, a: SlicedAnnotation) {
  return {
    id,
    image_id: imageId,
    category_id: a.categoryId,
    bbox: a.bbox,
    segmentation: a.segmentation,
    area: a.area,
    iscrowd: 0 as const,
  };
}

/** Indexes prepared annotations by bounds, with cells about one slice wide. */
export function indexAnnotations(annotations: readonly PreparedAnnotation[], cellSize: number): BoxIndex {
  const index = new BoxIndex(cellSize);
  for (const a of annotations) index.insert(a.bounds);
  return index;
}

function clean(v: number): number {
  return v === 0 ? 0 : v;
}

/**
 * The annotations kept in one window: those whose bounds strictly overlap the window (touching an
 * edge is not enough), clipped, and kept when trunc(clipped area) / area >= minAreaRatio.
 */
export function sliceAnnotations(
  annotations: readonly PreparedAnnotation[],
  index: BoxIndex,
  window: SliceWindow,
  minAreaRatio: number,
): SlicedAnnotation[] {
  const [x0, y0, x1, y1] = window;
  const w = x1 - x0;
  const h = y1 - y0;
  const kept: SlicedAnnotation[] = [];
  for (const id of index.candidates(window)) {
    const a = annotations[id]!;
    const [left, top, right, bottom] = a.bounds;
    if (left >= x1 || top >= y1 || right <= x0 || bottom <= y0) continue;
    const parts: Ring[] = [];
    let area = 0;
    for (const ring of a.rings) {
      const shifted: Ring = ring.map(([x, y]) => [x - x0, y - y0]);
      for (const clipped of clipRingParts(shifted, w, h)) {
        area += Math.abs(signedArea(clipped));
        parts.push(clipped);
      }
    }
    if (parts.length === 0) continue;
    const truncated = Math.trunc(area);
    if (truncated / a.area < minAreaRatio) continue;
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (const r of parts) {
      for (const [x, y] of r) {
        if (x < minX) minX = x;
        if (y < minY) minY = y;
        if (x > maxX) maxX = x;
        if (y > maxY) maxY = y;
      }
    }
    kept.push({
      source: a.source,
      categoryId: a.categoryId,
      bbox: [clean(minX), clean(minY), maxX - minX, maxY - minY],
      segmentation: parts.map((r) => r.flatMap(([x, y]) => [clean(x), clean(y)])),
      area: truncated,
    });
  }
  return kept;
}

/** Name of a slice file, as SAHI 0.11.14 names it: `{stem}_{x0}_{y0}_{x1}_{y1}.{ext}`. */
export function sliceFileName(stem: string, window: SliceWindow, ext: string): string {
  return `${stem}_${window[0]}_${window[1]}_${window[2]}_${window[3]}.${ext}`;
}

/** One output slice: its window, file name and kept annotations. */
export interface PlannedSlice {
  readonly window: SliceWindow;
  readonly fileName: string;
  readonly annotations: readonly SlicedAnnotation[];
}

/**
 * Every slice of one image with its annotations; with `ignoreNegatives`, windows without a kept
 * annotation are left out (and their files are not written, unlike SAHI).
 */
export function planImageSlices(
  image: { readonly width: number; readonly height: number; readonly stem: string },
  prepared: readonly PreparedAnnotation[],
  options: SliceOptions & { readonly ignoreNegatives?: boolean; readonly ext: string },
): PlannedSlice[] {
  validateSliceOptions(options);
  const windows = sliceWindows(
    image.width,
    image.height,
    options.size,
    options.overlap,
    options.overlapHeight,
  );
  const index = indexAnnotations(prepared, options.size);
  const out: PlannedSlice[] = [];
  for (const window of windows) {
    const annotations = sliceAnnotations(prepared, index, window, options.minAreaRatio);
    if (options.ignoreNegatives && annotations.length === 0) continue;
    out.push({ window, fileName: sliceFileName(image.stem, window, options.ext), annotations });
  }
  return out;
}
