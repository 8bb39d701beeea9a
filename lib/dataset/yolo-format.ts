/**
 * YOLO label lines as the Ultralytics tools read them, to and from COCO pixel geometry. Pure.
 *
 * - Detection: `class cx cy w h`, the box centre and size divided by the image width / height.
 * - Segmentation: `class x1 y1 x2 y2 ...`, one polygon (at least 3 points) per object, each
 *   point divided by the image width / height.
 *
 * Class indices are 0-based. Coordinates are written with {@link yoloDecimals} decimals, enough
 * that converting back and rounding to 1/100 px (as geobatch COCO is) gives the original value.
 */
import { roundPx } from '../labels/coco.js';

/** One object of a YOLO label file, in pixels. */
export type YoloObject =
  | {
      readonly kind: 'box';
      readonly classIndex: number;
      readonly bbox: readonly [number, number, number, number];
    }
  | { readonly kind: 'polygon'; readonly classIndex: number; readonly points: readonly number[] };

/**
 * Decimals of normalised coordinates for an image whose larger side is `size` px: the rounding
 * error (half a unit of the last decimal, times the size) stays at or under 1/400 px, a quarter
 * of the 1/100 px grid — 6 decimals up to 5,000 px, 7 up to 50,000 px.
 */
export function yoloDecimals(size: number): number {
  return Math.max(6, Math.ceil(Math.log10(Math.max(1, size) * 200)));
}

/** `v` with `decimals` decimals, trailing zeros dropped (`0.5`, `0`, `0.123457`). */
function formatNumber(v: number, decimals: number): string {
  const text = v.toFixed(decimals);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** What a value outside the image became on export. */
export interface ExportClamps {
  clamped: number;
}

/** A detection line for a COCO `bbox` ([x, y, w, h] px) on a `width` x `height` image. */
export function yoloBoxLine(
  classIndex: number,
  bbox: readonly number[],
  width: number,
  height: number,
  clamps?: ExportClamps,
): string {
  const d = yoloDecimals(Math.max(width, height));
  let [x0, y0, w, h] = bbox as [number, number, number, number];
  let x1 = x0 + w;
  let y1 = y0 + h;
  const inside = (v: number, max: number): number => Math.min(Math.max(v, 0), max);
  const cx0 = inside(x0, width);
  const cy0 = inside(y0, height);
  const cx1 = inside(x1, width);
  const cy1 = inside(y1, height);
  if (clamps && (cx0 !== x0 || cy0 !== y0 || cx1 !== x1 || cy1 !== y1)) clamps.clamped++;
  [x0, y0, x1, y1] = [cx0, cy0, cx1, cy1];
  w = x1 - x0;
  h = y1 - y0;
  const values = [(x0 + w / 2) / width, (y0 + h / 2) / height, w / width, h / height];
  return [String(classIndex), ...values.map((v) => formatNumber(clamp01(v), d))].join(' ');
}

/** A segmentation line for one flat polygon [x1, y1, ...] px on a `width` x `height` image. */
export function yoloPolygonLine(
  classIndex: number,
  points: readonly number[],
  width: number,
  height: number,
  clamps?: ExportClamps,
): string {
  const d = yoloDecimals(Math.max(width, height));
  const out = [String(classIndex)];
  let clamped = false;
  for (let i = 0; i + 1 < points.length; i += 2) {
    const x = points[i]! / width;
    const y = points[i + 1]! / height;
    if (x < 0 || x > 1 || y < 0 || y > 1) clamped = true;
    out.push(formatNumber(clamp01(x), d), formatNumber(clamp01(y), d));
  }
  if (clamps && clamped) clamps.clamped++;
  return out.join(' ');
}

/**
 * Several polygons of one object as one ring, the way a YOLO segment line must hold them: each
 * further part is visited from the first by a bridge between their closest vertices, walked
 * there and back, so the bridges add no area.
 */
export function joinPolygonParts(parts: readonly (readonly number[])[]): number[] {
  if (parts.length === 0) return [];
  const first = parts[0]!;
  if (parts.length === 1) return [...first];
  const n = first.length / 2;
  // per vertex of the first part: the parts bridged from it, in part order
  const inserts = new Map<number, number[][]>();
  for (const part of parts.slice(1)) {
    let best = Infinity;
    let at = 0;
    let from = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j + 1 < part.length; j += 2) {
        const dx = first[2 * i]! - part[j]!;
        const dy = first[2 * i + 1]! - part[j + 1]!;
        const dist = dx * dx + dy * dy;
        if (dist < best) {
          best = dist;
          at = i;
          from = j / 2;
        }
      }
    }
    const m = part.length / 2;
    const walk: number[] = [];
    for (let k = 0; k <= m; k++) {
      const v = (from + k) % m;
      walk.push(part[2 * v]!, part[2 * v + 1]!);
    }
    walk.push(first[2 * at]!, first[2 * at + 1]!);
    inserts.set(at, [...(inserts.get(at) ?? []), walk]);
  }
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(first[2 * i]!, first[2 * i + 1]!);
    for (const walk of inserts.get(i) ?? []) out.push(...walk);
  }
  return out;
}

/** Why a label line was refused; the caller adds the file and line number. */
export class YoloLineError extends Error {
  override readonly name = 'YoloLineError';
}

/** Values this far outside [0, 1] are taken as rounding and clamped; beyond, the line is refused. */
export const YOLO_TOLERANCE = 1e-6;

/**
 * Parses one label line (already known not to be blank) of a `width` x `height` image into
 * pixels rounded to 1/100 px. Throws a {@link YoloLineError} saying what is wrong.
 */
export function parseYoloLine(line: string, classCount: number, width: number, height: number): YoloObject {
  const tokens = line.trim().split(/\s+/);
  const numbers = tokens.map(Number);
  const bad = tokens.findIndex((t, i) => t === '' || !Number.isFinite(numbers[i]));
  if (bad >= 0) throw new YoloLineError(`'${tokens[bad]}' is not a number`);
  const classIndex = numbers[0]!;
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= classCount) {
    throw new YoloLineError(
      `class ${tokens[0]} is not a class index: expected an integer in [0, ${classCount - 1}] (data.yaml names ${classCount} classes)`,
    );
  }
  const coords = numbers.slice(1);
  const isBox = coords.length === 4;
  const isPolygon = coords.length >= 6 && coords.length % 2 === 0;
  if (!isBox && !isPolygon) {
    throw new YoloLineError(
      `${tokens.length} values; expected 5 (class cx cy w h) or an odd number of at least 7 (class x1 y1 x2 y2 x3 y3 ...)`,
    );
  }
  coords.forEach((v, i) => {
    if (v < -YOLO_TOLERANCE || v > 1 + YOLO_TOLERANCE) {
      const what = isBox ? ['cx', 'cy', 'w', 'h'][i]! : `${i % 2 === 0 ? 'x' : 'y'}${Math.floor(i / 2) + 1}`;
      throw new YoloLineError(
        `${what} = ${tokens[i + 1]} is outside [0, 1]; expected coordinates normalised by the image size`,
      );
    }
  });
  const c = coords.map(clamp01);
  if (isBox) {
    const [cx, cy, w, h] = c as [number, number, number, number];
    const x = (cx - w / 2) * width;
    const y = (cy - h / 2) * height;
    return {
      kind: 'box',
      classIndex,
      bbox: [roundPx(x), roundPx(y), roundPx(w * width), roundPx(h * height)],
    };
  }
  return {
    kind: 'polygon',
    classIndex,
    points: c.map((v, i) => roundPx(v * (i % 2 === 0 ? width : height))),
  };
}

/** Extents [x, y, w, h] of a flat polygon. */
export function polygonBbox(points: readonly number[]): [number, number, number, number] {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let i = 0; i + 1 < points.length; i += 2) {
    x0 = Math.min(x0, points[i]!);
    x1 = Math.max(x1, points[i]!);
    y0 = Math.min(y0, points[i + 1]!);
    y1 = Math.max(y1, points[i + 1]!);
  }
  return [x0, y0, roundPx(x1 - x0), roundPx(y1 - y0)];
}

/** Area of a flat polygon (shoelace), rounded to 1/100 px². */
export function polygonArea(points: readonly number[]): number {
  let twice = 0;
  const n = points.length / 2;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    twice += points[2 * i]! * points[2 * j + 1]! - points[2 * j]! * points[2 * i + 1]!;
  }
  return roundPx(Math.abs(twice) / 2);
}

/**
 * The label file of an image as Ultralytics finds it: the last `/images/` folder of the path
 * replaced by `/labels/`, and the extension by `.txt`; undefined when the path has no `images`
 * folder.
 */
export function labelPathOf(imagePath: string): string | undefined {
  const at = imagePath.lastIndexOf('/images/');
  if (at < 0) return undefined;
  const swapped = `${imagePath.slice(0, at)}/labels/${imagePath.slice(at + '/images/'.length)}`;
  const dot = swapped.lastIndexOf('.');
  const slash = swapped.lastIndexOf('/');
  return `${dot > slash ? swapped.slice(0, dot) : swapped}.txt`;
}
