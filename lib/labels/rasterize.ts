/**
 * Polygon rasterisation by scanlines, row band by row band, as GDAL's gdal_rasterize does it:
 * a pixel is burned when its centre is inside the shape (even-odd over every ring of the
 * shape, so holes stay holes and a shape's overlapping parts cancel, as in GDAL); with
 * `allTouched`, every pixel a ring's edge passes through is burned as well. Shapes are burned
 * in order, later ones over earlier ones. Memory holds the edges and one band of rows.
 * Pure, no I/O.
 */

/** A shape to burn: rings in pixel coordinates as flat [x0, y0, x1, y1, ...] lists (closed or not). */
export interface BurnShape {
  readonly rings: readonly (readonly number[])[];
  readonly value: number;
}

interface Edge {
  readonly shape: number;
  readonly value: number;
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
  /** min and max y of the edge. */
  readonly ymin: number;
  readonly ymax: number;
}

/** Burns shapes into rows of a width x height single-band image. */
export class ScanlineRasterizer {
  private readonly fillEdges: Edge[];
  private readonly touchEdges: Edge[];

  constructor(
    shapes: readonly BurnShape[],
    readonly width: number,
    readonly height: number,
    readonly allTouched = false,
  ) {
    const edges: Edge[] = [];
    shapes.forEach((shape, s) => {
      for (const ring of shape.rings) {
        const n = Math.floor(ring.length / 2);
        for (let i = 0; i < n; i++) {
          const j = (i + 1) % n;
          const x0 = ring[2 * i]!;
          const y0 = ring[2 * i + 1]!;
          const x1 = ring[2 * j]!;
          const y1 = ring[2 * j + 1]!;
          if (x0 === x1 && y0 === y1) continue;
          edges.push({
            shape: s,
            value: shape.value,
            x0,
            y0,
            x1,
            y1,
            ymin: Math.min(y0, y1),
            ymax: Math.max(y0, y1),
          });
        }
      }
    });
    this.fillEdges = edges.filter((e) => e.ymin !== e.ymax).sort((a, b) => a.ymin - b.ymin);
    this.touchEdges = allTouched ? [...edges].sort((a, b) => a.ymin - b.ymin) : [];
  }

  /** Burns image rows [y0, y1) into `out` (row-major, `width` per row, not cleared here). */
  fillRows(y0: number, y1: number, out: Uint8Array): void {
    const { width } = this;
    // edges that can matter for these rows, found by their sorted ymin
    const fill = activeEdges(this.fillEdges, y0, y1);
    const touch = this.allTouched ? activeEdges(this.touchEdges, y0, y1) : [];
    const spans: number[] = [];
    for (let row = y0; row < y1; row++) {
      spans.length = 0;
      const y = row + 0.5;
      // centre rule: crossings of the scanline through the pixel centres, half-open in y as GDAL
      const crossings: { shape: number; value: number; x: number }[] = [];
      for (const e of fill) {
        if (y < e.ymin || y >= e.ymax) continue;
        crossings.push({
          shape: e.shape,
          value: e.value,
          x: e.x0 + ((y - e.y0) * (e.x1 - e.x0)) / (e.y1 - e.y0),
        });
      }
      crossings.sort((a, b) => a.shape - b.shape || a.x - b.x);
      for (let i = 0; i + 1 < crossings.length;) {
        const a = crossings[i]!;
        const b = crossings[i + 1]!;
        if (b.shape !== a.shape) {
          i++;
          continue;
        }
        // pixels whose centre lies in (a.x, b.x], as GDAL rounds intersections
        const c0 = Math.max(0, Math.floor(a.x + 0.5));
        const c1 = Math.min(width, Math.floor(b.x + 0.5));
        if (c1 > c0) spans.push(a.shape, a.value, c0, c1);
        i += 2;
      }
      if (this.allTouched) {
        for (const e of touch) {
          if (e.ymax < row || e.ymin > row + 1) continue;
          const range = xRangeInRow(e, row);
          if (!range) continue;
          const c0 = Math.max(0, Math.floor(range[0]));
          const c1 = Math.min(width, Math.max(Math.floor(range[0]) + 1, Math.ceil(range[1])));
          if (c1 > c0) spans.push(e.shape, e.value, c0, c1);
        }
      }
      burnSpans(spans, out, (row - y0) * width);
    }
  }
}

/** Edges whose y range meets rows [y0, y1]. */
function activeEdges(sorted: readonly Edge[], y0: number, y1: number): Edge[] {
  const out: Edge[] = [];
  for (const e of sorted) {
    if (e.ymin > y1) break;
    if (e.ymax >= y0) out.push(e);
  }
  return out;
}

/** The x range an edge covers within row band [row, row + 1], or undefined when it does not enter it. */
function xRangeInRow(e: Edge, row: number): [number, number] | undefined {
  if (e.y0 === e.y1) return [Math.min(e.x0, e.x1), Math.max(e.x0, e.x1)];
  const ya = Math.max(row, e.ymin);
  const yb = Math.min(row + 1, e.ymax);
  if (ya > yb) return undefined;
  const xa = e.x0 + ((ya - e.y0) * (e.x1 - e.x0)) / (e.y1 - e.y0);
  const xb = e.x0 + ((yb - e.y0) * (e.x1 - e.x0)) / (e.y1 - e.y0);
  return [Math.min(xa, xb), Math.max(xa, xb)];
}

/** Burns spans (shape, value, c0, c1 quadruples) in shape order into one row starting at `offset`. */
function burnSpans(spans: number[], out: Uint8Array, offset: number): void {
  const n = spans.length / 4;
  if (n === 0) return;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => spans[4 * a]! - spans[4 * b]! || a - b);
  for (const i of order) out.fill(spans[4 * i + 1]!, offset + spans[4 * i + 2]!, offset + spans[4 * i + 3]!);
}
