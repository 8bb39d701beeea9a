/**
 * The approximate index of an embeddings folder: an HNSW graph built with USearch (Unum's
 * `usearch` package: N-API prebuilt binaries in the npm package, so nothing compiles at install),
 * saved as `<emb>/index/usearch.bin` with `<emb>/index/index.json` written last, recording its
 * parameters and the sha256 of the embed.json it was built from: an index of other vectors is
 * stale and never used.
 *
 * The graph only proposes candidates; their cosine is computed again from the float32 vectors,
 * so the scores of a returned neighbour are exact, only the set may miss a true neighbour.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as UsearchNs from 'usearch';
import { z } from 'zod';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import type { Embeddings } from './embeddings.js';
import { EmbedError } from './errors.js';
import { dotRow } from './exact.js';
import type { TopK } from './exact.js';

/** HNSW parameters: graph degree and the candidate list lengths while adding and searching. */
export interface IndexParams {
  /** Links per node (HNSW's M). @default 16 */
  readonly connectivity: number;
  /** Candidates kept while inserting (efConstruction). @default 128 */
  readonly expansionAdd: number;
  /** Candidates kept while searching (efSearch); larger = better recall, slower. @default 64 */
  readonly expansionSearch: number;
}

export const defaultIndexParams: IndexParams = { connectivity: 16, expansionAdd: 128, expansionSearch: 64 };

export const indexFolder = 'index';
const graphName = 'usearch.bin';
const recordName = 'index.json';

const recordSchema = z.object({
  version: z.literal(1),
  library: z.literal('usearch'),
  libraryVersion: z.string(),
  metric: z.literal('ip'),
  connectivity: z.number().int().positive(),
  expansionAdd: z.number().int().positive(),
  expansionSearch: z.number().int().positive(),
  dim: z.number().int().positive(),
  count: z.number().int().nonnegative(),
  embedSha256: z.string(),
  file: z.string(),
  bytes: z.number().int().nonnegative(),
  buildSeconds: z.number().nonnegative(),
  builtAt: z.string(),
});

/** What `index/index.json` records. */
export type IndexRecord = z.infer<typeof recordSchema>;

type UsearchModule = typeof UsearchNs;
type UsearchIndex = InstanceType<UsearchModule['Index']>;

async function usearch(): Promise<UsearchModule> {
  try {
    const mod = (await import('usearch')) as UsearchModule & { default?: UsearchModule };
    return mod.default ?? mod;
  } catch (error) {
    throw new EmbedError(
      `the approximate index needs the 'usearch' package's prebuilt binary for ${process.platform}-${process.arch} (${error instanceof Error ? error.message : String(error)}); use --method exact`,
    );
  }
}

function usearchVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return (require('usearch/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function newIndex(mod: UsearchModule, dim: number, params: IndexParams): UsearchIndex {
  return new mod.Index({
    dimensions: dim,
    metric: mod.MetricKind.IP,
    quantization: mod.ScalarKind.F32,
    connectivity: params.connectivity,
    expansion_add: params.expansionAdd,
    expansion_search: params.expansionSearch,
    multi: false,
  });
}

/** A loaded index and the record it was saved with. */
export interface LoadedIndex {
  readonly record: IndexRecord;
  readonly search: (query: Float32Array, k: number) => { keys: number[]; distances: number[] };
}

/** Builds the index of every vector and saves it under `<emb>/index/` (the record last). */
export async function buildIndex(
  storage: Storage,
  emb: Embeddings,
  params: IndexParams = defaultIndexParams,
  options: {
    readonly onProgress?: (added: number, total: number) => void;
    readonly signal?: AbortSignal;
  } = {},
): Promise<IndexRecord> {
  const mod = await usearch();
  const started = process.hrtime.bigint();
  const index = newIndex(mod, emb.dim, params);
  const chunk = 10_000;
  for (let start = 0; start < emb.count; start += chunk) {
    options.signal?.throwIfAborted();
    const end = Math.min(emb.count, start + chunk);
    const keys = new BigUint64Array(end - start);
    for (let i = start; i < end; i++) keys[i - start] = BigInt(i);
    index.add(keys, emb.vectors.subarray(start * emb.dim, end * emb.dim));
    options.onProgress?.(end, emb.count);
    // let a Ctrl-C or a progress redraw through between chunks
    await new Promise((r) => setImmediate(r));
  }
  const dir = await mkdtemp(join(tmpdir(), 'geobatch-index-'));
  try {
    const file = join(dir, graphName);
    index.save(file);
    const bytes = (await stat(file)).size;
    const uri = joinUri(emb.uri, indexFolder, graphName);
    await storage.writeAtomic(uri, createReadStream(file), {
      contentType: 'application/octet-stream',
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const record: IndexRecord = {
      version: 1,
      library: 'usearch',
      libraryVersion: usearchVersion(),
      metric: 'ip',
      ...params,
      dim: emb.dim,
      count: emb.count,
      embedSha256: emb.manifestSha256,
      file: graphName,
      bytes,
      buildSeconds: Number(process.hrtime.bigint() - started) / 1e9,
      builtAt: new Date().toISOString(),
    };
    await storage.writeAtomic(
      joinUri(emb.uri, indexFolder, recordName),
      JSON.stringify(record, null, 2) + '\n',
      {
        contentType: 'application/json',
      },
    );
    return record;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The index record of an embeddings folder: `undefined` when there is none, `stale` when it was
 * built from other vectors (embed ran again) or is unreadable.
 */
export async function readIndexRecord(
  storage: Storage,
  emb: Embeddings,
): Promise<{ readonly record?: IndexRecord; readonly stale?: string }> {
  const uri = joinUri(emb.uri, indexFolder, recordName);
  if (!(await storage.exists(uri))) return {};
  let parsed: ReturnType<typeof recordSchema.safeParse>;
  try {
    parsed = recordSchema.safeParse(JSON.parse((await storage.read(uri)).toString('utf8')));
  } catch {
    return { stale: `${uri} is not JSON` };
  }
  if (!parsed.success) return { stale: `${uri} is not an index record this version reads` };
  const record = parsed.data;
  if (record.embedSha256 !== emb.manifestSha256 || record.count !== emb.count || record.dim !== emb.dim) {
    return {
      record,
      stale: `${uri} was built from other vectors (embed.json changed since ${record.builtAt})`,
    };
  }
  return { record };
}

/** Loads a fresh index (throws an EmbedError saying what to do when there is none or it is stale). */
export async function loadIndex(
  storage: Storage,
  emb: Embeddings,
  overrides: { readonly expansionSearch?: number } = {},
): Promise<LoadedIndex> {
  const { record, stale } = await readIndexRecord(storage, emb);
  if (stale) throw new EmbedError(`${stale}; rebuild it with 'geobatch similar ${emb.uri} --build-index'`);
  if (!record) {
    throw new EmbedError(
      `${joinUri(emb.uri, indexFolder, recordName)}: no approximate index; build it with 'geobatch similar ${emb.uri} --build-index', or use --method exact`,
    );
  }
  const mod = await usearch();
  const index = newIndex(mod, record.dim, {
    connectivity: record.connectivity,
    expansionAdd: record.expansionAdd,
    expansionSearch: overrides.expansionSearch ?? record.expansionSearch,
  });
  // local files are memory-mapped where they are; an S3 index comes through the download cache
  const path = await storage.localPath(joinUri(emb.uri, indexFolder, record.file));
  index.load(path);
  if (index.size() !== record.count) {
    throw new EmbedError(
      `${path}: holds ${index.size()} vectors, index.json says ${record.count}; rebuild it with --build-index`,
    );
  }
  return {
    record,
    search(query, k) {
      const found = index.search(query, Math.min(k, record.count), 1);
      return {
        keys: Array.from(found.keys, Number),
        distances: Array.from(found.distances),
      };
    },
  };
}

/**
 * The `k` best rows by the index, skipping `exclude`: asks the graph for `k + |exclude|`
 * candidates, scores them exactly from the vectors, best first (ties by row).
 */
export function approxTopK(
  loaded: LoadedIndex,
  emb: Embeddings,
  query: Float32Array,
  k: number,
  exclude: ReadonlySet<number> = new Set(),
): TopK {
  const found = loaded.search(query, k + exclude.size);
  const q = Float64Array.from(query);
  const scored: { id: number; score: number }[] = [];
  for (const id of found.keys) {
    if (exclude.has(id) || id < 0 || id >= emb.count) continue;
    scored.push({ id, score: dotRow(emb.vectors, id * emb.dim, q, emb.dim) });
  }
  scored.sort((a, b) => b.score - a.score || a.id - b.id);
  const best = scored.slice(0, k);
  return { ids: best.map((b) => b.id), scores: best.map((b) => b.score) };
}
