/**
 * Which chips look like this one: the nearest rows of an embeddings folder by cosine, exactly
 * (every row compared) or through the approximate index, with the chips' names, scenes, windows
 * and footprints so a viewer can show them.
 */
import type { Storage } from '../storage/types.js';
import { approxTopK, loadIndex, readIndexRecord } from './ann.js';
import type { LoadedIndex } from './ann.js';
import { closeNames } from './embeddings.js';
import type { EmbeddedChip, Embeddings } from './embeddings.js';
import { EmbedError } from './errors.js';
import { exactTopK } from './exact.js';

export { openEmbeddings } from './embeddings.js';
export type { EmbeddedChip, Embeddings } from './embeddings.js';

/** `auto` searches exactly below this many vectors, and through a fresh index at or above it. */
export const exactUpTo = 50_000;

export type SearchMethod = 'exact' | 'approx' | 'auto';

export interface SimilarQuery {
  /** A chip name, a row id, or a vector of the folder's dimension (unit length or not). */
  readonly chip: string | number | ArrayLike<number>;
  readonly k: number;
  /** @default 'auto' */
  readonly method?: SearchMethod;
  /** Leave the query chip out of its own neighbours. @default true */
  readonly excludeSelf?: boolean;
  /** Candidates the index keeps while searching (approx only). */
  readonly expansionSearch?: number;
}

/** One neighbour: the chip's row and description, and its cosine with the query. */
export interface Neighbour {
  readonly id: number;
  readonly name: string;
  readonly score: number;
  readonly image: string | null;
  readonly source: string | null;
  readonly window: readonly [number, number, number, number] | null;
  readonly footprint: EmbeddedChip['footprint'] | null;
  readonly labels: readonly string[];
}

export interface SimilarResult {
  /** The query chip's row (undefined for a vector query). */
  readonly query?: Neighbour;
  readonly method: 'exact' | 'approx';
  readonly neighbours: readonly Neighbour[];
}

function neighbour(emb: Embeddings, id: number, score: number): Neighbour {
  const c = emb.chips[id]!;
  return {
    id,
    name: c.name,
    score,
    image: c.image ?? null,
    source: c.source ?? null,
    window: c.window ?? null,
    footprint: c.footprint ?? null,
    labels: c.labels ?? [],
  };
}

/** The row of a chip given by name or id, or an EmbedError that suggests close names. */
export function chipRow(emb: Embeddings, chip: string | number): number {
  if (typeof chip === 'number') {
    if (Number.isInteger(chip) && chip >= 0 && chip < emb.count) return chip;
    throw new EmbedError(`chip id ${chip}: not a row of ${emb.uri} (ids 0..${emb.count - 1})`);
  }
  const row = emb.byName.get(chip);
  if (row !== undefined) return row;
  const close = closeNames(emb.byName.keys(), chip);
  throw new EmbedError(
    `chip '${chip}': not in ${emb.uri} (${emb.count} chips)${close.length ? `; close names: ${close.join(', ')}` : ''}`,
  );
}

/** A searcher over one embeddings folder that loads the index once, for many queries. */
export class SimilarSearch {
  private index: Promise<LoadedIndex | undefined> | undefined;

  constructor(
    readonly storage: Storage,
    readonly emb: Embeddings,
  ) {}

  /** Which way `method` searches this folder: auto = exact below {@link exactUpTo} or without a fresh index. */
  async resolveMethod(method: SearchMethod = 'auto'): Promise<'exact' | 'approx'> {
    if (method !== 'auto') return method;
    if (this.emb.count < exactUpTo) return 'exact';
    const { record, stale } = await readIndexRecord(this.storage, this.emb);
    return record && !stale ? 'approx' : 'exact';
  }

  async search(query: SimilarQuery): Promise<SimilarResult> {
    const { emb } = this;
    if (!Number.isInteger(query.k) || query.k < 1) {
      throw new EmbedError(`k ${query.k}: expected a whole number >= 1`);
    }
    let vector: Float32Array;
    let self: number | undefined;
    if (typeof query.chip === 'string' || typeof query.chip === 'number') {
      self = chipRow(emb, query.chip);
      vector = emb.vectors.slice(self * emb.dim, (self + 1) * emb.dim);
    } else {
      if (query.chip.length !== emb.dim) {
        throw new EmbedError(
          `query vector of length ${query.chip.length}; ${emb.uri} holds vectors of dim ${emb.dim}`,
        );
      }
      vector = unit(Float32Array.from(query.chip));
    }
    const exclude = new Set<number>(self !== undefined && query.excludeSelf !== false ? [self] : []);
    const method = await this.resolveMethod(query.method);
    let top;
    if (method === 'exact') {
      top = exactTopK(emb.vectors, emb.dim, vector, query.k, exclude);
    } else {
      this.index ??= loadIndex(
        this.storage,
        emb,
        query.expansionSearch ? { expansionSearch: query.expansionSearch } : {},
      );
      const loaded = (await this.index)!;
      top = approxTopK(loaded, emb, vector, query.k, exclude);
    }
    return {
      ...(self !== undefined ? { query: neighbour(emb, self, 1) } : {}),
      method,
      neighbours: top.ids.map((id, i) => neighbour(emb, id, top.scores[i]!)),
    };
  }
}

function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s);
  if (!(n > 0)) throw new EmbedError('query vector has length 0: no direction to compare');
  for (let i = 0; i < v.length; i++) v[i] = v[i]! / n;
  return v;
}

/** One search over an embeddings folder (opens nothing: pass an opened folder). */
export async function searchSimilar(
  storage: Storage,
  emb: Embeddings,
  query: SimilarQuery,
): Promise<SimilarResult> {
  return new SimilarSearch(storage, emb).search(query);
}
