/**
 * Polygons of the 4-connected regions of a class raster (as GDAL's `gdal_polygonize.py` makes
 * by default), streamed: the raster is read in bands of rows and scanned one row at a time.
 * Each row is cut into runs of equal value; a run joins the regions of the runs above it that
 * have its value (union-find over regions), and the pixel edges between runs of different
 * values become boundary segments of the regions on either side (horizontal ones merged along a
 * run, vertical ones extended down from row to row). A region whose runs all end above the
 * current row is complete: its segments are linked into rings and the polygon is handed out,
 * then forgotten.
 *
 * Memory: the band of rows being scanned (`bandRows` x width samples), the runs of two rows, and
 * the boundary segments of the regions that reach the current row. It does not grow with the
 * raster height, only with the outlines of regions still open, which are at most what those
 * polygons hold anyway.
 *
 * Coordinates are pixel corners: the pixel (x, y) is the square [x, x + 1] x [y, y + 1], with y
 * growing down the image. Rings are not closed (the first point is not repeated, as in
 * lib/labels/geometry.ts) and have no collinear points. Orientation: the outer ring runs
 * counter-clockwise as the image is seen on screen (y down), which is a negative
 * {@link signedArea} on the raw pixel numbers; holes run the other way. Through a north-up
 * geotransform (negative y pixel size) that becomes RFC 7946's orientation: outer rings
 * counter-clockwise in lon/lat, holes clockwise. Where a region touches itself diagonally (two
 * of its pixels share only a corner), the rings are split at that corner so that they touch
 * there without crossing: a hole that meets the outline at one point is its own ring.
 */
import type { Polygon, Ring } from '../labels/geometry.js';
import { openRaster } from '../raster/reader.js';
import type { SampleType } from '../raster/info.js';
import type { Storage } from '../storage/types.js';
import { PredictError } from './errors.js';

/** One polygonized region. */
export interface ClassPolygon {
  /** The pixel value of the region (the class id in a class raster). */
  readonly value: number;
  /** Outer ring then holes, in pixel coordinates (see the module comment for orientation). */
  readonly polygon: Polygon;
  /** Number of pixels in the region (the polygon's area). */
  readonly areaPx: number;
}

export interface PolygonizeOptions {
  readonly signal?: AbortSignal;
  /** Value that is no region. @default 0 */
  readonly background?: number;
  /** Value that is no region either. @default the raster's no-data value (GDAL_NODATA), if any */
  readonly nodata?: number;
  /** Rows read at a time. @default the raster's block height, at least 64 */
  readonly bandRows?: number;
}

/** A boundary segment from (x0, y0) to (x1, y1), horizontal or vertical, region on its right-hand side (y up). */
class Segment {
  constructor(
    public x0: number,
    public y0: number,
    public x1: number,
    public y1: number,
  ) {}
}

class Region {
  parent: Region = this;
  area = 0;
  segments: Segment[] = [];
  /** Last row that holds one of its runs (on the root). */
  lastRow = -1;
  emitted = false;
  constructor(readonly value: number) {}
}

function find(r: Region): Region {
  let root = r;
  while (root.parent !== root) root = root.parent;
  while (r.parent !== root) {
    const next = r.parent;
    r.parent = root;
    r = next;
  }
  return root;
}

function union(a: Region, b: Region): Region {
  const ra = find(a);
  const rb = find(b);
  if (ra === rb) return ra;
  const [big, small] = ra.segments.length >= rb.segments.length ? [ra, rb] : [rb, ra];
  for (const s of small.segments) big.segments.push(s);
  small.segments = [];
  big.area += small.area;
  small.parent = big;
  return big;
}

/** The runs of equal value of one row, with their regions and vertical boundary segments. */
class RowRuns {
  count = 0;
  start: Int32Array;
  end: Int32Array;
  value: Float64Array;
  region: (Region | null)[] = [];
  left: (Segment | null)[] = [];
  right: (Segment | null)[] = [];

  constructor(width: number) {
    this.start = new Int32Array(width + 1);
    this.end = new Int32Array(width + 1);
    this.value = new Float64Array(width + 1);
  }

  /** A row outside the raster: one run that matches no value. */
  setOutside(width: number): void {
    this.count = 1;
    this.start[0] = 0;
    this.end[0] = width;
    this.value[0] = NaN;
    this.region.length = 1;
    this.region[0] = null;
  }

  setRow(row: ArrayLike<number>, width: number): void {
    let n = 0;
    let s = 0;
    for (let x = 1; x <= width; x++) {
      if (x === width || row[x] !== row[s]) {
        this.start[n] = s;
        this.end[n] = x;
        this.value[n] = row[s]!;
        n++;
        s = x;
      }
    }
    this.count = n;
    this.region.length = n;
    this.left.length = n;
    this.right.length = n;
    this.region.fill(null);
    this.left.fill(null);
    this.right.fill(null);
  }
}

/**
 * The scanning part of {@link polygonizeClasses}, without I/O: feed rows top to bottom with
 * {@link pushRow}, then call {@link finish}; each returns the regions completed by then.
 */
export class RegionTracer {
  private prev: RowRuns;
  private cur: RowRuns;
  private y = 0;
  private finished = false;
  private readonly isRegion: (v: number) => boolean;

  constructor(
    readonly width: number,
    options: { readonly background?: number; readonly nodata?: number | null } = {},
  ) {
    if (!Number.isInteger(width) || width < 1)
      throw new RangeError(`width must be a positive integer, got ${width}`);
    const background = options.background ?? 0;
    const nodata = options.nodata ?? null;
    this.isRegion = (v) => v !== background && v !== nodata;
    this.prev = new RowRuns(width);
    this.cur = new RowRuns(width);
    this.prev.setOutside(width);
  }

  /** Number of rows pushed so far. */
  get rows(): number {
    return this.y;
  }

  /** Scans the next row (`width` values); returns the regions that ended above it. */
  pushRow(row: ArrayLike<number>): ClassPolygon[] {
    if (this.finished) throw new Error('RegionTracer: pushRow() after finish()');
    if (row.length < this.width) throw new RangeError(`row has ${row.length} values, expected ${this.width}`);
    this.cur.setRow(row, this.width);
    this.link();
    this.horizontalEdges();
    const done = this.complete();
    [this.prev, this.cur] = [this.cur, this.prev];
    this.y++;
    return done;
  }

  /** Closes the last row; returns the regions still open. */
  finish(): ClassPolygon[] {
    if (this.finished) return [];
    this.finished = true;
    this.cur.setOutside(this.width);
    this.horizontalEdges();
    return this.complete();
  }

  /** Regions of the current row's runs, joined with those above; vertical edges of its runs. */
  private link(): void {
    const { prev, cur, y } = this;
    let j = 0;
    for (let i = 0; i < cur.count; i++) {
      const s = cur.start[i]!;
      const e = cur.end[i]!;
      const v = cur.value[i]!;
      while (prev.end[j]! <= s) j++;
      if (!this.isRegion(v)) continue;
      let region: Region | null = null;
      let left: Segment | null = null;
      let right: Segment | null = null;
      for (let k = j; k < prev.count && prev.start[k]! < e; k++) {
        const above = prev.region[k];
        if (prev.value[k] !== v || !above) continue;
        region = region ? union(region, above) : find(above);
        if (prev.start[k] === s) left = prev.left[k]!;
        if (prev.end[k] === e) right = prev.right[k]!;
      }
      region ??= new Region(v);
      const root = find(region);
      root.area += e - s;
      // the run's left edge goes down, its right edge up (the region stays on the right-hand side, y up)
      if (left) left.y1 = y + 1;
      else root.segments.push((left = new Segment(s, y, s, y + 1)));
      if (right) right.y0 = y + 1;
      else root.segments.push((right = new Segment(e, y + 1, e, y)));
      cur.region[i] = region;
      cur.left[i] = left;
      cur.right[i] = right;
    }
  }

  /** Boundary segments along the line between the previous row and the current one. */
  private horizontalEdges(): void {
    const { prev, cur, y } = this;
    let i = 0;
    let j = 0;
    // the open segment of each side, extended while the intervals stay in the same run
    let above: Segment | null = null;
    let aboveRun = -1;
    let below: Segment | null = null;
    let belowRun = -1;
    while (i < cur.count && j < prev.count) {
      const a = Math.max(cur.start[i]!, prev.start[j]!);
      const b = Math.min(cur.end[i]!, prev.end[j]!);
      if (a < b && cur.value[i] !== prev.value[j]) {
        const up = prev.region[j];
        if (up) {
          // the region above: its bottom edge runs to +x
          if (above && aboveRun === j && above.x1 === a) above.x1 = b;
          else find(up).segments.push((above = new Segment(a, y, b, y)));
          aboveRun = j;
        }
        const down = cur.region[i];
        if (down) {
          // the region below: its top edge runs to -x
          if (below && belowRun === i && below.x0 === a) below.x0 = b;
          else find(down).segments.push((below = new Segment(b, y, a, y)));
          belowRun = i;
        }
      }
      const ce = cur.end[i]!;
      const pe = prev.end[j]!;
      if (ce <= pe) i++;
      if (pe <= ce) j++;
    }
  }

  /** Regions of the previous row that the current row does not continue. */
  private complete(): ClassPolygon[] {
    const { prev, cur, y } = this;
    for (let i = 0; i < cur.count; i++) {
      const r = cur.region[i];
      if (r) {
        const root = find(r);
        root.lastRow = y;
        cur.region[i] = root;
      }
    }
    const done: ClassPolygon[] = [];
    for (let j = 0; j < prev.count; j++) {
      const r = prev.region[j];
      if (!r) continue;
      const root = find(r);
      if (root.lastRow === y || root.emitted) continue;
      root.emitted = true;
      done.push({ value: root.value, polygon: rings(root.segments, this.width), areaPx: root.area });
      root.segments = [];
    }
    return done;
  }
}

function direction(s: Segment): number {
  // 0: +x, 1: +y, 2: -x, 3: -y
  if (s.y0 === s.y1) return s.x1 > s.x0 ? 0 : 2;
  return s.y1 > s.y0 ? 1 : 3;
}

const DX = [1, 0, -1, 0];
const DY = [0, 1, 0, -1];

/** Links a region's boundary segments into rings: the outer ring first, then the holes. */
function rings(segments: readonly Segment[], width: number): Polygon {
  const stride = width + 1;
  const outgoing = new Map<number, number | [number, number]>();
  segments.forEach((s, i) => {
    const key = s.y0 * stride + s.x0;
    const had = outgoing.get(key);
    outgoing.set(key, had === undefined ? i : typeof had === 'number' ? [had, i] : had);
  });
  const used = new Uint8Array(segments.length);
  let outer: Ring | undefined;
  const holes: Ring[] = [];
  for (let first = 0; first < segments.length; first++) {
    if (used[first]) continue;
    const order: number[] = [];
    let k = first;
    for (;;) {
      if (used[k]) throw new Error('polygonize: boundary segments do not form rings (internal error)');
      used[k] = 1;
      order.push(k);
      const s = segments[k]!;
      const at = outgoing.get(s.y1 * stride + s.x1);
      if (at === undefined) throw new Error('polygonize: open boundary (internal error)');
      if (typeof at === 'number') k = at;
      else {
        // a corner where the region touches itself diagonally: turn away from the region
        // (counter-clockwise with y up), so that the rings touch there but do not cross
        const d = direction(s);
        const c = direction(segments[at[0]]!);
        k = DX[d]! * DY[c]! - DY[d]! * DX[c]! > 0 ? at[0] : at[1];
      }
      if (k === first) break;
    }
    const ring: Ring = [];
    let area2 = 0;
    for (let n = 0; n < order.length; n++) {
      const s = segments[order[n]!]!;
      const before = segments[order[(n + order.length - 1) % order.length]!]!;
      if (direction(before) !== direction(s)) ring.push([s.x0, s.y0]);
      area2 += s.x0 * s.y1 - s.x1 * s.y0;
    }
    if (area2 < 0) {
      if (outer) throw new Error('polygonize: a region with two outer rings (internal error)');
      outer = ring;
    } else holes.push(ring);
  }
  if (!outer) throw new Error('polygonize: a region without an outer ring (internal error)');
  return [outer, ...holes];
}

type IntegerType = Exclude<SampleType, 'float32' | 'float64'>;
const ROW_ARRAYS: Record<
  IntegerType,
  new (length: number) => Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
> = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
};

/**
 * The 4-connected regions of each value of band 1 of a class raster that is neither
 * `background` nor `nodata`, as polygons with holes in pixel coordinates (orientation and memory
 * in the module comment), each yielded as soon as the scan has passed its last row. Integer
 * rasters only.
 */
export async function* polygonizeClasses(
  storage: Storage,
  uri: string,
  options: PolygonizeOptions = {},
): AsyncIterable<ClassPolygon> {
  const { signal } = options;
  const raster = await openRaster(storage, uri, signal ? { signal } : {});
  try {
    const level = await raster.level(0);
    if (level.dtype === 'float32' || level.dtype === 'float64') {
      throw new PredictError(
        `${uri}: the class raster has sample type ${level.dtype}; expected integer classes (uint8, as predict writes)`,
      );
    }
    const bandRows = options.bandRows ?? Math.max(64, level.blockHeight);
    if (!Number.isInteger(bandRows) || bandRows < 1) {
      throw new PredictError(`${uri}: bandRows is ${bandRows}; expected a positive integer`);
    }
    const nodata = options.nodata ?? raster.info.nodata;
    const { width, height } = level;
    const tracer = new RegionTracer(width, { background: options.background ?? 0, nodata });
    const buffer = new ROW_ARRAYS[level.dtype](Math.min(bandRows, height) * width);
    for (let y0 = 0; y0 < height; y0 += bandRows) {
      signal?.throwIfAborted();
      const y1 = Math.min(height, y0 + bandRows);
      await level.readBlocks(
        level.blocksInRows(y0, y1),
        [0],
        (block) => {
          const view = block.bands[0]!;
          const from = Math.max(y0, block.row);
          const to = Math.min(y1, block.row + block.height);
          for (let y = from; y < to; y++) {
            let src = view.offset + (y - block.row) * view.rowStride;
            let dst = (y - y0) * width + block.col;
            if (view.pixelStride === 1 && view.data.constructor === buffer.constructor) {
              buffer.set(view.data.subarray(src, src + block.width) as typeof buffer, dst);
              continue;
            }
            for (let c = 0; c < block.width; c++, src += view.pixelStride) buffer[dst++] = view.data[src]!;
          }
        },
        signal ? { signal } : {},
      );
      for (let y = y0; y < y1; y++) {
        const row = buffer.subarray((y - y0) * width, (y - y0 + 1) * width);
        for (const done of tracer.pushRow(row)) yield done;
      }
    }
    for (const done of tracer.finish()) yield done;
  } finally {
    await raster.close();
  }
}
