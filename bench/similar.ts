/**
 * `npm run bench -- similar [--quick]`: nearest-neighbour search over embeddings folders of
 * seeded unit vectors (uniform on the sphere, and clustered like real embeddings): geobatch's
 * exact search and numpy's brute force (matrix-vector products through BLAS) side by side, then
 * the USearch HNSW index: build time, size, query/s and recall@10 against exact search at two
 * efSearch settings. Peak RSS is this process's high-water mark (vectors + index in memory).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildIndex } from '../lib/embed/ann.js';
import { openEmbeddings, SimilarSearch } from '../lib/embed/similar.js';
import { createStorage } from '../lib/storage/index.js';
import { clusteredUnitVectors, randomUnitVectors, writeEmbeddings } from '../test/helpers/embeddings.js';

const run = promisify(execFile);

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

const numpyQps = `
import sys, time
import numpy as np
path, dim, queries = sys.argv[1], int(sys.argv[2]), [int(q) for q in sys.argv[3].split(',')]
v = np.fromfile(path, dtype='<f4').reshape(-1, dim)
t = time.perf_counter()
for q in queries:
    s = v @ v[q]
    np.argpartition(-s, 10)[:11]
print(len(queries) / (time.perf_counter() - t))
`;

export async function benchSimilar(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const count = quick ? 20_000 : 100_000;
  const dim = quick ? 128 : 256;
  const queries = Array.from({ length: quick ? 100 : 200 }, (_, i) => (i * 7919) % count);
  const storage = createStorage();
  const work = await mkdtemp(join(tmpdir(), 'geobatch-bench-similar-'));
  try {
    for (const [kind, vectors] of [
      ['uniform', randomUnitVectors(count, dim, 1)],
      ['clustered (200 clusters)', clusteredUnitVectors(count, dim, 200, 0.6, 2)],
    ] as const) {
      const folder = join(work, kind.split(' ')[0]!);
      await writeEmbeddings(storage, folder, vectors, dim);
      const emb = await openEmbeddings(storage, folder);
      const search = new SimilarSearch(storage, emb);
      console.log(
        `similar: ${count.toLocaleString('en')} ${kind} unit vectors of dim ${dim}, ${queries.length} queries, k = 10`,
      );

      let t = performance.now();
      const truth: Set<number>[] = [];
      for (const q of queries) {
        const r = await search.search({ chip: q, k: 10, method: 'exact' });
        truth.push(new Set(r.neighbours.map((n) => n.id)));
      }
      const exactQps = queries.length / ((performance.now() - t) / 1000);
      const { stdout } = await run('/usr/bin/python3', [
        '-c',
        numpyQps,
        join(folder, 'vectors.f32'),
        String(dim),
        queries.join(','),
      ]);
      console.log(
        `  exact, geobatch (JS, 1 thread)         ${exactQps.toFixed(1).padStart(8)} queries/s   recall 1`,
      );
      console.log(
        `  exact, numpy brute force (BLAS)        ${Number(stdout).toFixed(1).padStart(8)} queries/s   (reference)`,
      );

      t = performance.now();
      const record = await buildIndex(storage, emb);
      const buildS = (performance.now() - t) / 1000;
      console.log(
        `  index build (USearch HNSW, M ${record.connectivity}, efConstruction ${record.expansionAdd})   ${buildS.toFixed(1)} s, ${(record.bytes / 1e6).toFixed(1)} MB (vectors: ${((count * dim * 4) / 1e6).toFixed(1)} MB)`,
      );
      for (const ef of [64, 256]) {
        const approx = new SimilarSearch(storage, emb);
        await approx.search({ chip: 0, k: 10, method: 'approx', expansionSearch: ef }); // load
        t = performance.now();
        let hits = 0;
        for (const [i, q] of queries.entries()) {
          const r = await approx.search({ chip: q, k: 10, method: 'approx', expansionSearch: ef });
          hits += r.neighbours.filter((n) => truth[i]!.has(n.id)).length;
        }
        const qps = queries.length / ((performance.now() - t) / 1000);
        console.log(
          `  approx, efSearch ${String(ef).padEnd(4)}                    ${qps.toFixed(1).padStart(8)} queries/s   recall@10 ${(hits / (queries.length * 10)).toFixed(4)}`,
        );
      }
      console.log(`  peak RSS so far                        ${peakRssMiB().toFixed(0)} MiB`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
