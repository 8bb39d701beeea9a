/**
 * Exact nearest neighbours by cosine over unit vectors (= dot product), every row compared:
 * dot products accumulated in float64 over the float32 rows, the best k kept in a bounded heap.
 * Order: score descending, equal scores by row ascending, so results are reproducible.
 */

/** Neighbours as rows and scores, best first. */
export interface TopK {
  readonly ids: number[];
  readonly scores: number[];
}

/** `a` ranks after `b`: lower score, or the same score and a larger row. */
function worse(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa < sb || (sa === sb && ia > ib);
}

/**
 * A fixed-capacity heap whose root is the worst kept candidate, so a new candidate is compared
 * with one value and most rows are rejected at once.
 */
class BoundedHeap {
  readonly ids: Int32Array;
  readonly scores: Float64Array;
  size = 0;

  constructor(readonly capacity: number) {
    this.ids = new Int32Array(capacity);
    this.scores = new Float64Array(capacity);
  }

  offer(id: number, score: number): void {
    if (this.size < this.capacity) {
      let i = this.size++;
      // sift up: parents are worse than children
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(score, id, this.scores[p]!, this.ids[p]!)) break;
        this.ids[i] = this.ids[p]!;
        this.scores[i] = this.scores[p]!;
        i = p;
      }
      this.ids[i] = id;
      this.scores[i] = score;
      return;
    }
    if (!worse(this.scores[0]!, this.ids[0]!, score, id)) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= this.size) break;
      const r = l + 1;
      let c = l;
      if (r < this.size && worse(this.scores[r]!, this.ids[r]!, this.scores[l]!, this.ids[l]!)) c = r;
      if (!worse(this.scores[c]!, this.ids[c]!, score, id)) break;
      this.ids[i] = this.ids[c]!;
      this.scores[i] = this.scores[c]!;
      i = c;
    }
    this.ids[i] = id;
    this.scores[i] = score;
  }

  sorted(): TopK {
    const order = Array.from({ length: this.size }, (_, i) => i);
    order.sort((a, b) => this.scores[b]! - this.scores[a]! || this.ids[a]! - this.ids[b]!);
    return { ids: order.map((i) => this.ids[i]!), scores: order.map((i) => this.scores[i]!) };
  }
}

/**
 * Dot product of the row at `base` with `q`, in float64 with four partial sums (independent
 * additions the JIT can overlap); every search scores rows with it, so equal inputs give equal scores.
 */
export function dotRow(vectors: Float32Array, base: number, q: Float64Array, dim: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const tail = dim - (dim % 4);
  let j = 0;
  for (; j < tail; j += 4) {
    s0 += vectors[base + j]! * q[j]!;
    s1 += vectors[base + j + 1]! * q[j + 1]!;
    s2 += vectors[base + j + 2]! * q[j + 2]!;
    s3 += vectors[base + j + 3]! * q[j + 3]!;
  }
  for (; j < dim; j++) s0 += vectors[base + j]! * q[j]!;
  return s0 + s1 + (s2 + s3);
}

/**
 * The `k` rows of `vectors` (count x dim) with the largest dot product with `query`, skipping
 * the rows in `exclude`; fewer when there are fewer rows.
 */
export function exactTopK(
  vectors: Float32Array,
  dim: number,
  query: ArrayLike<number>,
  k: number,
  exclude: ReadonlySet<number> = new Set(),
): TopK {
  const count = Math.floor(vectors.length / dim);
  const heap = new BoundedHeap(Math.max(0, Math.min(k, count - exclude.size)));
  if (heap.capacity === 0) return { ids: [], scores: [] };
  const q = Float64Array.from(query);
  const skip = exclude.size > 0;
  for (let r = 0, base = 0; r < count; r++, base += dim) {
    if (skip && exclude.has(r)) continue;
    heap.offer(r, dotRow(vectors, base, q, dim));
  }
  return heap.sorted();
}
