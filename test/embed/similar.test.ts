// geobatch similar: exact search against numpy's brute force, the USearch index's recall against
// exact search, a folder on S3 (s3rver), stale indexes and bad folders.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { buildIndex, loadIndex } from '../../lib/embed/ann.js';
import { EmbedError } from '../../lib/embed/errors.js';
import { exactTopK } from '../../lib/embed/exact.js';
import { exactUpTo, openEmbeddings, SimilarSearch } from '../../lib/embed/similar.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';
import { clusteredUnitVectors, randomUnitVectors, writeEmbeddings } from '../helpers/embeddings.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

const run = promisify(execFile);
const storage = createStorage();
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geobatch-similar-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** numpy's brute force: float64 dot products of the stored float32 rows, best k by (-score, row). */
const numpyTopK = `
import json, sys
import numpy as np
path, dim, k, queries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
v = np.fromfile(path, dtype='<f4').reshape(-1, dim).astype(np.float64)
out = []
for q in queries:
    s = v @ v[q]
    ids = np.arange(len(s))
    keep = ids != q
    s, ids = s[keep], ids[keep]
    order = np.lexsort((ids, -s))[:k]
    out.append({"ids": ids[order].tolist(), "scores": s[order].tolist()})
print(json.dumps(out))
`;

async function numpy(
  folder: string,
  dim: number,
  k: number,
  queries: number[],
): Promise<{ ids: number[]; scores: number[] }[]> {
  const { stdout } = await run(
    '/usr/bin/python3',
    ['-c', numpyTopK, join(folder, 'vectors.f32'), String(dim), String(k), JSON.stringify(queries)],
    {
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  return JSON.parse(stdout) as { ids: number[]; scores: number[] }[];
}

describe('exact search', () => {
  test('equals numpy brute-force cosine: same rows in the same order, scores within 1e-9, ties by row', async () => {
    const dim = 48;
    const vectors = randomUnitVectors(3000, dim, 7);
    // exact ties: rows 10..14 are copies of row 3, so a query near them has equal scores
    for (const copy of [10, 11, 12, 13, 14]) vectors.copyWithin(copy * dim, 3 * dim, 4 * dim);
    const folder = join(dir, 'exact');
    await writeEmbeddings(storage, folder, vectors, dim);
    const emb = await openEmbeddings(storage, folder);
    const search = new SimilarSearch(storage, emb);
    const queries = [0, 3, 11, 1234, 2999];
    const expected = await numpy(folder, dim, 10, queries);
    for (const [i, q] of queries.entries()) {
      const got = await search.search({ chip: `chip-${q}`, k: 10, method: 'exact' });
      assert.equal(got.method, 'exact');
      assert.deepEqual(
        got.neighbours.map((n) => n.id),
        expected[i]!.ids,
        `query ${q}`,
      );
      for (const [j, n] of got.neighbours.entries())
        assert.ok(Math.abs(n.score - expected[i]!.scores[j]!) < 1e-9);
    }
    // the copies of row 3 come first for query 3, in row order, each with score 1
    const three = await search.search({ chip: 'chip-3', k: 5 });
    assert.deepEqual(
      three.neighbours.map((n) => n.id),
      [10, 11, 12, 13, 14],
    );
    assert.ok(three.neighbours.every((n) => Math.abs(n.score - 1) < 1e-6));
    // the chip's description travels with it
    assert.equal(three.query?.name, 'chip-3');
    assert.deepEqual(three.neighbours[0]!.window, [2560, 0, 256, 256]);
    assert.equal(three.neighbours[0]!.footprint?.type, 'Polygon');
  });

  test('k larger than the folder returns every other chip; --include-self keeps the query first', async () => {
    const dim = 8;
    const folder = join(dir, 'small');
    await writeEmbeddings(storage, folder, randomUnitVectors(7, dim, 3), dim);
    const emb = await openEmbeddings(storage, folder);
    const search = new SimilarSearch(storage, emb);
    const all = await search.search({ chip: 'chip-2', k: 50 });
    const expected = await numpy(folder, dim, 50, [2]);
    assert.deepEqual(
      all.neighbours.map((n) => n.id),
      expected[0]!.ids,
    );
    assert.equal(all.neighbours.length, 6);
    const self = await search.search({ chip: 2, k: 3, excludeSelf: false });
    assert.equal(self.neighbours[0]!.id, 2);
    // a vector query is normalised first: a scaled copy of row 5 finds row 5 with score 1
    const scaled = Array.from(emb.vectors.subarray(5 * dim, 6 * dim), (x) => 3 * x);
    const byVector = await search.search({ chip: scaled, k: 1 });
    assert.equal(byVector.neighbours[0]!.id, 5);
    assert.ok(Math.abs(byVector.neighbours[0]!.score - 1) < 1e-6);
  });

  test('exactTopK skips excluded rows and keeps the best k of many', () => {
    const dim = 4;
    const v = randomUnitVectors(500, dim, 11);
    const q = v.slice(0, dim);
    const top = exactTopK(v, dim, q, 5, new Set([0]));
    const all = Array.from({ length: 500 }, (_, r) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += v[r * dim + j]! * q[j]!;
      return { r, s };
    })
      .filter((x) => x.r !== 0)
      .sort((a, b) => b.s - a.s || a.r - b.r);
    assert.deepEqual(
      top.ids,
      all.slice(0, 5).map((x) => x.r),
    );
  });
});

describe('approximate index (USearch HNSW)', () => {
  const dim = 64;
  const count = 20_000;
  let folder = '';

  before(async () => {
    folder = join(dir, 'ann');
    // clustered data: neighbours are crowded, as in real embeddings, and harder for the graph
    await writeEmbeddings(storage, folder, clusteredUnitVectors(count, dim, 40, 0.6, 5), dim);
  });

  test('recall@10 against exact search is at least 0.95 on 200 queries; scores are exact', async () => {
    const result = await geobatch(['similar', folder, '--build-index', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const { index } = JSON.parse(result.stdout) as {
      index: { count: number; connectivity: number; embedSha256: string };
    };
    assert.equal(index.count, count);
    assert.equal(index.connectivity, 16);
    const emb = await openEmbeddings(storage, folder);
    assert.equal(index.embedSha256, emb.manifestSha256);
    const search = new SimilarSearch(storage, emb);
    // at this size auto searches exactly; approx is asked for
    assert.ok(count < exactUpTo);
    assert.equal(await search.resolveMethod('auto'), 'exact');
    let hits = 0;
    const queries = Array.from({ length: 200 }, (_, i) => i * 97);
    for (const q of queries) {
      const exact = await search.search({ chip: q, k: 10, method: 'exact' });
      const approx = await search.search({ chip: q, k: 10, method: 'approx' });
      assert.equal(approx.method, 'approx');
      const truth = new Set(exact.neighbours.map((n) => n.id));
      hits += approx.neighbours.filter((n) => truth.has(n.id)).length;
      // a neighbour the index found carries its exact score
      for (const n of approx.neighbours) {
        const e = exact.neighbours.find((x) => x.id === n.id);
        if (e) assert.equal(n.score, e.score);
      }
      assert.ok(!approx.neighbours.some((n) => n.id === q), 'the query is left out');
    }
    const recall = hits / (queries.length * 10);
    assert.ok(recall >= 0.95, `recall@10 ${recall}`);
  });

  test('an index of other vectors is stale: refused for approx, auto falls back to exact', async () => {
    const other = join(dir, 'stale');
    await writeEmbeddings(storage, other, randomUnitVectors(300, 16, 9), 16);
    const emb = await openEmbeddings(storage, other);
    await buildIndex(storage, emb);
    assert.equal((await loadIndex(storage, emb)).record.count, 300);
    // embed ran again: new vectors, new manifest
    await writeEmbeddings(storage, other, randomUnitVectors(300, 16, 10), 16, undefined, {
      createdAt: '2026-12-04T00:00:00.000Z',
    });
    const again = await openEmbeddings(storage, other);
    await assert.rejects(
      loadIndex(storage, again),
      (e: unknown) =>
        e instanceof EmbedError &&
        /was built from other vectors/.test(e.message) &&
        /--build-index/.test(e.message),
    );
    const search = new SimilarSearch(storage, again);
    assert.equal(await search.resolveMethod('auto'), 'exact');
    const cli = await geobatch(['similar', other, '--chip', 'chip-1', '--method', 'approx']);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /index\.json was built from other vectors.*geobatch similar .* --build-index/);
  });
});

describe('the command', () => {
  test('prints a table, or JSON with the neighbours and their scores', async () => {
    const dim = 16;
    const folder = join(dir, 'cli');
    await writeEmbeddings(
      storage,
      folder,
      randomUnitVectors(40, dim, 4),
      dim,
      Array.from({ length: 40 }, (_, i) => ({
        name: `104001-${String(i).padStart(3, '0')}`,
        source: i < 20 ? 'demo-001' : 'demo-002',
        labels: i % 2 ? ['building'] : [],
      })),
    );
    const text = await geobatch(['similar', folder, '--chip', '104001-007', '--k', '3']);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split('\n');
    assert.match(lines[0]!, /^nearest to 104001-007 \(demo-001\) by cosine, exact search:$/);
    assert.match(lines[1]!, /^rank\s+score\s+chip\s+scene\s+window\s+labels$/);
    assert.equal(lines.length, 5);
    const json = await geobatch(['similar', folder, '--chip', '104001-007', '--k', '3', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as {
      method: string;
      neighbours: { name: string; score: number }[];
    };
    assert.equal(parsed.neighbours.length, 3);
    assert.ok(parsed.neighbours[0]!.score >= parsed.neighbours[2]!.score);
    for (const [i, n] of parsed.neighbours.entries())
      assert.match(lines[2 + i]!, new RegExp(`\\b${n.name}\\b`));
    const expected = await numpy(folder, dim, 3, [7]);
    assert.deepEqual(
      parsed.neighbours.map((n) => n.name),
      expected[0]!.ids.map((id) => `104001-${String(id).padStart(3, '0')}`),
    );
  });

  test('an unknown chip suggests close names; a bad k is a usage error', async () => {
    const folder = join(dir, 'cli');
    const unknown = await geobatch(['similar', folder, '--chip', '104001-07']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /chip '104001-07': not in .*cli \(40 chips\); close names: 104001-007, /);
    const badK = await geobatch(['similar', folder, '--chip', '104001-007', '--k', '0']);
    assert.equal(badK.code, 2);
    assert.match(badK.stderr, /--k/);
    const nothing = await geobatch(['similar', folder]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /give --chip <name>, or --build-index/);
  });
});

describe('bad folders', () => {
  test('each inconsistency names the file and what is wrong', async () => {
    const dim = 4;
    const folder = join(dir, 'bad');
    await writeEmbeddings(storage, folder, randomUnitVectors(10, dim, 1), dim);
    const reject = (pattern: RegExp) =>
      assert.rejects(
        openEmbeddings(storage, folder),
        (e: unknown) => e instanceof EmbedError && pattern.test(e.message),
      );
    await openEmbeddings(storage, folder);

    const manifest = JSON.parse(await readFile(join(folder, 'embed.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    await writeFile(join(folder, 'embed.json'), JSON.stringify({ ...manifest, count: 11 }));
    await reject(/vectors\.f32: 160 bytes, but embed.json says count 11 x dim 4 float32 = 176/);

    await writeFile(join(folder, 'embed.json'), JSON.stringify({ ...manifest, dtype: 'float16' }));
    await reject(/embed\.json: not an embeddings manifest \(dtype: /);

    await writeFile(join(folder, 'embed.json'), JSON.stringify(manifest));
    const v = randomUnitVectors(10, dim, 1);
    v[4 * dim] = 2;
    await writeFile(join(folder, 'vectors.f32'), Buffer.from(v.buffer));
    await reject(/vectors\.f32: row 4 \(chip 'chip-4'\) has length \S+, not 1/);

    await writeEmbeddings(storage, folder, randomUnitVectors(10, dim, 1), dim);
    const rows = (await readFile(join(folder, 'chips.jsonl'), 'utf8')).split('\n');
    rows[6] = rows[6]!.replace('"chip-6"', '"chip-5"');
    await writeFile(join(folder, 'chips.jsonl'), rows.join('\n'));
    await reject(/chips\.jsonl: line 7: chip name 'chip-5' already on line 6; names must be unique/);

    await assert.rejects(
      openEmbeddings(storage, join(dir, 'missing')),
      (e: unknown) =>
        e instanceof EmbedError && /missing\/embed\.json: not found .*geobatch embed/.test(e.message),
    );
  });
});

describe('on S3 (s3rver)', () => {
  let server: S3rverHandle;
  before(async () => {
    server = await startS3rver();
  });
  after(async () => {
    await server.stop();
  });

  test('a folder and its index on S3 are searched as locally', async () => {
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 's3-cache') });
    const bucket = await server.createBucket();
    const uri = `s3://${bucket}/runs/r1/emb`;
    const dim = 32;
    const vectors = clusteredUnitVectors(2000, dim, 10, 0.5, 8);
    await writeEmbeddings(s3, uri, vectors, dim);
    const local = join(dir, 'same-as-s3');
    await writeEmbeddings(storage, local, vectors, dim);
    const remote = new SimilarSearch(s3, await openEmbeddings(s3, uri));
    const here = new SimilarSearch(storage, await openEmbeddings(storage, local));
    assert.deepEqual(
      await remote.search({ chip: 'chip-42', k: 10 }).then((r) => r.neighbours),
      await here.search({ chip: 'chip-42', k: 10 }).then((r) => r.neighbours),
    );
    await buildIndex(s3, remote.emb);
    assert.ok(await s3.exists(`${uri}/index/usearch.bin`));
    assert.ok(await s3.exists(`${uri}/index/index.json`));
    const approx = await remote.search({ chip: 'chip-42', k: 10, method: 'approx' });
    assert.equal(approx.method, 'approx');
    assert.equal(approx.neighbours.length, 10);
  });
});
