/**
 * COCO run-length masks (`{"size": [h, w], "counts": ...}`) to polygons. `counts` is either a
 * list of run lengths (uncompressed, as CVAT/Datumaro write crowd masks) or pycocotools'
 * compressed string; runs alternate background / object starting with background, in column-major
 * order (down each column, columns left to right). Pure.
 *
 * Only the mask's bounding box is held in memory; each 4-connected region becomes its outer
 * ring, traced along pixel edges (so the polygons cover exactly the mask's pixels, holes aside:
 * COCO polygons have none).
 */
import { RegionTracer } from '../predict/polygonize.js';

export interface RleMask {
  readonly height: number;
  readonly width: number;
  /** Run lengths, first run background. */
  readonly counts: readonly number[];
}

/** Why an RLE was refused; the caller adds where it is. */
export class RleError extends Error {
  override readonly name = 'RleError';
}

/** pycocotools' compressed counts string to run lengths. */
export function decodeRleString(text: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= text.length) throw new RleError('compressed counts end in the middle of a number');
      const c = text.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new RleError(`compressed counts hold '${text[p]}', not a counts character`);
      x |= (c & 0x1f) << (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2]!;
    counts.push(x);
  }
  return counts;
}

/** Checks a COCO `segmentation` RLE object and returns its runs. */
export function parseRle(value: unknown): RleMask {
  const rle = value as { size?: unknown; counts?: unknown };
  const size = rle.size;
  if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isInteger(v) && v > 0))
    throw new RleError(`size is ${JSON.stringify(size)}; expected [height, width]`);
  const [height, width] = size as [number, number];
  let counts: number[];
  if (typeof rle.counts === 'string') counts = decodeRleString(rle.counts);
  else if (Array.isArray(rle.counts) && rle.counts.every((v) => Number.isInteger(v) && v >= 0))
    counts = rle.counts as number[];
  else
    throw new RleError(
      `counts is ${JSON.stringify(rle.counts)?.slice(0, 60)}; expected run lengths or a compressed string`,
    );
  const sum = counts.reduce((a, b) => a + b, 0);
  if (counts.some((c) => c < 0) || sum !== height * width)
    throw new RleError(`counts add up to ${sum} pixels; expected height x width = ${height * width}`);
  return { height, width, counts };
}

export interface MaskPolygons {
  /** Outer rings as flat [x1, y1, ...] pixel-corner lists, one per 4-connected region. */
  readonly polygons: number[][];
  /** [x, y, w, h] of the mask's pixels. */
  readonly bbox: [number, number, number, number];
  /** Pixels in the mask. */
  readonly area: number;
  /** Holes left out of the polygons. */
  readonly holes: number;
}

/** Polygons of a mask (see the module comment); undefined for an empty mask. */
export function rleToPolygons(mask: RleMask): MaskPolygons | undefined {
  const { height, width, counts } = mask;
  let x0 = width;
  let x1 = -1;
  let y0 = height;
  let y1 = -1;
  let pos = 0;
  let area = 0;
  counts.forEach((n, i) => {
    if (i % 2 === 1 && n > 0) {
      const first = pos;
      const last = pos + n - 1;
      area += n;
      const c0 = Math.floor(first / height);
      const c1 = Math.floor(last / height);
      x0 = Math.min(x0, c0);
      x1 = Math.max(x1, c1);
      if (c0 === c1) {
        y0 = Math.min(y0, first % height);
        y1 = Math.max(y1, last % height);
      } else {
        y0 = 0;
        y1 = height - 1;
      }
    }
    pos += n;
  });
  if (area === 0) return undefined;
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  const crop = new Uint8Array(w * h);
  pos = 0;
  counts.forEach((n, i) => {
    if (i % 2 === 1) {
      for (let p = pos; p < pos + n; p++) {
        const y = p % height;
        const x = Math.floor(p / height);
        crop[(y - y0) * w + (x - x0)] = 1;
      }
    }
    pos += n;
  });
  const tracer = new RegionTracer(w);
  const regions = [];
  for (let y = 0; y < h; y++) regions.push(...tracer.pushRow(crop.subarray(y * w, (y + 1) * w)));
  regions.push(...tracer.finish());
  let holes = 0;
  const polygons = regions.map((r) => {
    holes += r.polygon.length - 1;
    return r.polygon[0]!.flatMap(([x, y]) => [x + x0, y + y0]);
  });
  return { polygons, bbox: [x0, y0, w, h], area, holes };
}
