/**
 * The viewer's similar-chip search: `/api/similar` over an embeddings folder (an `embed` stage's
 * output or `--embeddings <dir>`), through lib/embed's search. The embeddings room is loaded only
 * when a folder is given.
 */
import type { Storage } from '../storage/types.js';
import type { SimilarLookup } from './server.js';

/** Opens `uri` (embed.json, vectors.f32, chips.jsonl) and answers name -> k nearest chips. */
export async function embeddingsLookup(storage: Storage, uri: string): Promise<SimilarLookup> {
  const { openEmbeddings, SimilarSearch } = await import('../embed/similar.js');
  const search = new SimilarSearch(storage, await openEmbeddings(storage, uri));
  return async (chip, k) => {
    const result = await search.search({ chip, k });
    return result.neighbours.map((n) => ({
      name: n.name,
      score: n.score,
      footprint: n.footprint,
      source: n.source,
      window: n.window,
    }));
  };
}
