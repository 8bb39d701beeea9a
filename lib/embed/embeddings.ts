/**
 * An embeddings folder as `geobatch embed` writes it (local or s3://):
 * - `embed.json`, written last: the manifest (dimension, count, model, file names);
 * - `vectors.f32`: count x dim little-endian float32, row i = chip i, unit length;
 * - `chips.jsonl`: row i describes chip i (name, image, source scene, window, footprint, labels).
 * Opening checks that the three agree, so a search never reads past a vector or names the
 * wrong chip.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { StorageError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import { EmbedError } from './errors.js';

/** The folder's files (the contract between `geobatch embed`, which writes them, and their readers). */
export const EMBED_FILE = 'embed.json';
export const VECTORS_FILE = 'vectors.f32';
export const CHIPS_FILE = 'chips.jsonl';

const manifestSchema = z.object({
  version: z.literal(1),
  /** The train output folder (or ONNX file) of the model. */
  model: z.string(),
  /** SHA-256 (hex) of the ONNX file. */
  modelSha256: z.string().optional(),
  /** The ONNX output the vectors are. */
  output: z.string().optional(),
  dim: z.number().int().positive(),
  count: z.number().int().nonnegative(),
  dtype: z.literal('float32'),
  normalized: z.literal(true),
  metric: z.literal('cosine'),
  /** The vectors' file, relative to embed.json. */
  vectors: z.string().min(1),
  /** The chips' file, relative to embed.json. */
  chips: z.string().min(1),
  createdAt: z.string().optional(),
});

/** What a reader accepts in `embed.json` (search needs no model identity or time). */
export type StoredManifest = z.infer<typeof manifestSchema>;

/** What `geobatch embed` writes in `embed.json`: every field. */
export type EmbedManifest = Required<StoredManifest>;

const polygonSchema = z.object({
  type: z.literal('Polygon'),
  coordinates: z.array(z.array(z.array(z.number()))),
});

const chipSchema = z.object({
  id: z.number().int().nonnegative(),
  name: z.string().min(1),
  image: z.string().nullable().optional(),
  source: z.string().nullable().optional(),
  window: z.tuple([z.number(), z.number(), z.number(), z.number()]).nullable().optional(),
  footprint: polygonSchema.nullable().optional(),
  split: z.string().nullable().optional(),
  labels: z.array(z.string()).optional(),
});

/** One row of `chips.jsonl`. */
export type EmbeddedChip = z.infer<typeof chipSchema>;

/** An opened embeddings folder: the manifest, every vector in one matrix, the chips by row. */
export interface Embeddings {
  readonly uri: string;
  readonly manifest: StoredManifest;
  /** sha256 of embed.json's bytes: what an index records it was built from. */
  readonly manifestSha256: string;
  readonly dim: number;
  readonly count: number;
  /** Row-major count x dim. */
  readonly vectors: Float32Array;
  readonly chips: readonly EmbeddedChip[];
  /** Row of each chip name. */
  readonly byName: ReadonlyMap<string, number>;
}

/** Largest deviation of a vector's length from 1 accepted as "unit length" (float32 rounding). */
export const normTolerance = 1e-3;

async function readOrExplain(storage: Storage, uri: string, what: string): Promise<Buffer> {
  try {
    return await storage.read(uri);
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') {
      throw new EmbedError(`${uri}: not found (${what}); write an embeddings folder with 'geobatch embed'`);
    }
    throw error;
  }
}

function issueText(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
}

/** Reads and checks an embeddings folder; `checkNorms` (default true) verifies every row is unit length. */
export async function openEmbeddings(
  storage: Storage,
  uri: string,
  options: { readonly checkNorms?: boolean } = {},
): Promise<Embeddings> {
  const manifestUri = joinUri(uri, EMBED_FILE);
  const manifestBytes = await readOrExplain(storage, manifestUri, 'the manifest embed writes last');
  let raw: unknown;
  try {
    raw = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    throw new EmbedError(`${manifestUri}: not JSON`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    throw new EmbedError(
      `${manifestUri}: not an embeddings manifest (${issueText(parsed.error)}); expected version 1, float32, normalized, cosine`,
    );
  }
  const manifest = parsed.data;
  const { dim, count } = manifest;
  const vectorsUri = joinUri(uri, manifest.vectors);
  const chipsUri = joinUri(uri, manifest.chips);
  const [vectorBytes, chipBytes] = await Promise.all([
    readOrExplain(storage, vectorsUri, `the vectors embed.json names`),
    readOrExplain(storage, chipsUri, `the chips embed.json names`),
  ]);
  if (vectorBytes.length !== count * dim * 4) {
    throw new EmbedError(
      `${vectorsUri}: ${vectorBytes.length} bytes, but embed.json says count ${count} x dim ${dim} float32 = ${count * dim * 4}`,
    );
  }
  // a copy into an aligned buffer: Buffer slices may start at any byte offset
  const vectors = new Float32Array(count * dim);
  new Uint8Array(vectors.buffer).set(vectorBytes);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new EmbedError('vectors.f32 is little-endian; this machine is big-endian');
  }
  const lines = chipBytes.toString('utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length !== count) {
    throw new EmbedError(`${chipsUri}: ${lines.length} rows, but embed.json says count ${count}`);
  }
  const chips: EmbeddedChip[] = [];
  const byName = new Map<string, number>();
  for (const [i, line] of lines.entries()) {
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new EmbedError(`${chipsUri}: line ${i + 1} is not JSON`);
    }
    const chip = chipSchema.safeParse(row);
    if (!chip.success) throw new EmbedError(`${chipsUri}: line ${i + 1}: ${issueText(chip.error)}`);
    if (chip.data.id !== i) {
      throw new EmbedError(
        `${chipsUri}: line ${i + 1} has id ${chip.data.id}; row i must have id i (here ${i})`,
      );
    }
    if (byName.has(chip.data.name)) {
      throw new EmbedError(
        `${chipsUri}: line ${i + 1}: chip name '${chip.data.name}' already on line ${byName.get(chip.data.name)! + 1}; names must be unique`,
      );
    }
    byName.set(chip.data.name, i);
    chips.push(chip.data);
  }
  if (options.checkNorms !== false) {
    for (let r = 0; r < count; r++) {
      let s = 0;
      for (let j = r * dim, end = j + dim; j < end; j++) s += vectors[j]! * vectors[j]!;
      const norm = Math.sqrt(s);
      if (!(Math.abs(norm - 1) <= normTolerance)) {
        throw new EmbedError(
          `${vectorsUri}: row ${r} (chip '${chips[r]!.name}') has length ${norm.toPrecision(6)}, not 1 (embed.json says normalized); write it again with 'geobatch embed'`,
        );
      }
    }
  }
  return {
    uri,
    manifest,
    manifestSha256: createHash('sha256').update(manifestBytes).digest('hex'),
    dim,
    count,
    vectors,
    chips,
    byName,
  };
}

/** Up to `n` chip names closest to `name` by edit distance (for "did you mean"). */
export function closeNames(names: Iterable<string>, name: string, n = 3): string[] {
  const scored: [number, string][] = [];
  for (const candidate of names) scored.push([editDistance(candidate, name), candidate]);
  scored.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
  return scored.slice(0, n).map(([, c]) => c);
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}
