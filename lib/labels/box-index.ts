/**
 * A uniform-grid spatial index of axis-aligned boxes, for "which annotations can touch this
 * window" without testing every annotation against every window. Pure, no I/O.
 */

/** [minX, minY, maxX, maxY]. */
export type Box = readonly [number, number, number, number];

/**
 * Boxes bucketed into square cells of `cellSize`; a query returns the ids (insertion indexes)
 * of every box whose cells meet the query's cells, in ascending order. Callers apply their own
 * exact overlap test to the candidates.
 */
export class BoxIndex {
  private readonly cells = new Map<number, number[]>();
  private readonly boxes: Box[] = [];
  private readonly stamp: number[] = [];
  private query = 0;
  private static readonly SPAN = 1 << 20;

  constructor(private readonly cellSize: number) {
    if (!(cellSize > 0) || !Number.isFinite(cellSize)) {
      throw new RangeError(`Expected positive cell size for BoxIndex but received ${cellSize}`);
    }
  }

  /** Number of boxes inserted. */
  get size(): number {
    return this.boxes.length;
  }

  /** Adds a box; returns its id (0, 1, 2, ...). */
  insert(box: Box): number {
    const id = this.boxes.length;
    this.boxes.push(box);
    this.stamp.push(-1);
    const [cx0, cy0, cx1, cy1] = this.cellRange(box);
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const key = cy * BoxIndex.SPAN + cx;
        const list = this.cells.get(key);
        if (list) list.push(id);
        else this.cells.set(key, [id]);
      }
    }
    return id;
  }

  /** Ids of boxes that may overlap `box` (a superset of the overlapping ones), ascending. */
  candidates(box: Box): number[] {
    const q = this.query++;
    const out: number[] = [];
    const [cx0, cy0, cx1, cy1] = this.cellRange(box);
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const list = this.cells.get(cy * BoxIndex.SPAN + cx);
        if (!list) continue;
        for (const id of list) {
          if (this.stamp[id] === q) continue;
          this.stamp[id] = q;
          out.push(id);
        }
      }
    }
    return out.sort((a, b) => a - b);
  }

  private cellRange(box: Box): [number, number, number, number] {
    const clamp = (v: number): number =>
      Math.min(BoxIndex.SPAN / 2 - 1, Math.max(-BoxIndex.SPAN / 2, Math.floor(v / this.cellSize)));
    return [clamp(box[0]), clamp(box[1]), clamp(box[2]), clamp(box[3])];
  }
}
