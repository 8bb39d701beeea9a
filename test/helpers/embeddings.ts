/**
 * Embeddings folders for tests, in the layout `geobatch embed` writes (embed.json last), from
 * given vectors: seeded random unit vectors, clustered ones (closer to real embeddings, whose
 * neighbours are crowded), and the chips' rows.
 */
import type { Storage } from '../../lib/storage/types.js';
import { joinUri } from '../../lib/storage/uri.js';

/** A seeded generator (mulberry32) with normal deviates (Box-Muller). */
export function seededRandom(seed: number): { uniform(): number; normal(): number } {
  let a = seed >>> 0;
  const uniform = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    uniform,
    normal: () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()),
  };
}

function normalizeRows(v: Float32Array, dim: number): Float32Array {
  for (let base = 0; base < v.length; base += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += v[base + j]! * v[base + j]!;
    const n = Math.sqrt(s);
    for (let j = 0; j < dim; j++) v[base + j] = v[base + j]! / n;
  }
  return v;
}

/** `count` unit vectors uniformly on the sphere. */
export function randomUnitVectors(count: number, dim: number, seed = 1): Float32Array {
  const r = seededRandom(seed);
  const v = new Float32Array(count * dim);
  for (let i = 0; i < v.length; i++) v[i] = r.normal();
  return normalizeRows(v, dim);
}

/** `count` unit vectors around `clusters` random centres (spread: noise relative to the centre). */
export function clusteredUnitVectors(
  count: number,
  dim: number,
  clusters: number,
  spread = 0.35,
  seed = 2,
): Float32Array {
  const r = seededRandom(seed);
  const centres = randomUnitVectors(clusters, dim, seed + 1000);
  const v = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) {
    const c = Math.floor(r.uniform() * clusters);
    for (let j = 0; j < dim; j++)
      v[i * dim + j] = centres[c * dim + j]! + (spread / Math.sqrt(dim)) * r.normal();
  }
  return normalizeRows(v, dim);
}

export interface TestChip {
  readonly name: string;
  readonly source?: string;
  readonly window?: [number, number, number, number];
  readonly labels?: string[];
}

/** Writes vectors.f32, chips.jsonl and (last) embed.json under `uri`; chip names default to `chip-<i>`. */
export async function writeEmbeddings(
  storage: Storage,
  uri: string,
  vectors: Float32Array,
  dim: number,
  chips?: readonly TestChip[],
  manifest: Record<string, unknown> = {},
): Promise<void> {
  const count = vectors.length / dim;
  const rows = Array.from({ length: count }, (_, i) => {
    const c = chips?.[i];
    const x = (i % 50) * 256;
    const y = Math.floor(i / 50) * 256;
    const lon = 15 + x * 1e-5;
    const lat = 45 - y * 1e-5;
    return JSON.stringify({
      id: i,
      name: c?.name ?? `chip-${i}`,
      image: `chips/${c?.source ?? 'scene'}/images/${c?.name ?? `chip-${i}`}.png`,
      source: c?.source ?? 'scene',
      window: c?.window ?? [x, y, 256, 256],
      footprint: {
        type: 'Polygon',
        coordinates: [
          [
            [lon, lat],
            [lon + 0.00256, lat],
            [lon + 0.00256, lat - 0.00256],
            [lon, lat - 0.00256],
            [lon, lat],
          ],
        ],
      },
      split: i % 5 === 0 ? 'val' : 'train',
      labels: c?.labels ?? [],
    });
  });
  await storage.writeAtomic(
    joinUri(uri, 'vectors.f32'),
    Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength),
  );
  await storage.writeAtomic(joinUri(uri, 'chips.jsonl'), rows.map((r) => r + '\n').join(''));
  await storage.writeAtomic(
    joinUri(uri, 'embed.json'),
    JSON.stringify({
      version: 1,
      model: 'model.onnx',
      modelSha256: '0'.repeat(64),
      output: 'embedding',
      dim,
      count,
      dtype: 'float32',
      normalized: true,
      metric: 'cosine',
      vectors: 'vectors.f32',
      chips: 'chips.jsonl',
      createdAt: '2026-12-03T00:00:00.000Z',
      ...manifest,
    }),
  );
}
