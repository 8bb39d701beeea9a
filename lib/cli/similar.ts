import { Command, Option } from 'commander';
import { defaultIndexParams } from '../embed/ann.js';
import type { IndexParams } from '../embed/ann.js';
import { exactUpTo } from '../embed/similar.js';
import type { Neighbour, SearchMethod } from '../embed/similar.js';
import { interruptible, UsageError } from './errors.js';
import { numberOption } from './options.js';
import { cliStorage } from './storage.js';

interface SimilarOptions {
  chip?: string;
  k: number;
  method: SearchMethod;
  json: boolean;
  includeSelf: boolean;
  buildIndex: boolean;
  connectivity: number;
  efConstruction: number;
  efSearch?: number;
}

function table(query: Neighbour | undefined, neighbours: readonly Neighbour[], method: string): string {
  const rows = [['rank', 'score', 'chip', 'scene', 'window', 'labels']];
  neighbours.forEach((n, i) =>
    rows.push([
      String(i + 1),
      n.score.toFixed(4),
      n.name,
      n.source ?? '-',
      n.window ? n.window.join(',') : '-',
      n.labels.join(' ') || '-',
    ]),
  );
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const head = query
    ? `nearest to ${query.name}${query.source ? ` (${query.source})` : ''} by cosine, ${method} search:`
    : `nearest by cosine, ${method} search:`;
  return [
    head,
    ...rows.map((r) =>
      r
        .map((v, c) => (c <= 1 ? v.padStart(widths[c]!) : v.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    ),
  ].join('\n');
}

export const similarCommand = new Command('similar')
  .description(
    'Find the chips that look most like one chip: its nearest neighbours by cosine in an embeddings folder ' +
      "written by 'geobatch embed' (embed.json, vectors.f32, chips.jsonl; local or s3://). " +
      `Search is exact (every vector compared) below ${exactUpTo.toLocaleString('en')} vectors or without an index; with an ` +
      'index built by --build-index (USearch HNSW, saved in <emb>/index/) larger folders are searched approximately: ' +
      'the index proposes candidates, their scores are computed exactly. An index built from other vectors is never used.',
  )
  .argument('<emb>', 'embeddings folder (local dir or s3:// prefix)')
  .option('--chip <name>', "the query chip's name (as in chips.jsonl), or its row as #<id>")
  .option('--k <n>', 'neighbours to return', numberOption('--k', 1, 10_000, true), 10)
  .addOption(
    new Option('--method <method>', 'exact, approx (needs --build-index once), or auto')
      .choices(['exact', 'approx', 'auto'])
      .default('auto'),
  )
  .option('--include-self', 'keep the query chip among its neighbours (score 1)', false)
  .option('--build-index', 'build (or rebuild) the approximate index of the folder first', false)
  .option(
    '--connectivity <m>',
    'index: links per node (HNSW M)',
    numberOption('--connectivity', 2, 256, true),
    defaultIndexParams.connectivity,
  )
  .option(
    '--ef-construction <n>',
    'index: candidates kept while building',
    numberOption('--ef-construction', 8, 4096, true),
    defaultIndexParams.expansionAdd,
  )
  .option(
    '--ef-search <n>',
    `index: candidates kept while searching (default: the index's, ${defaultIndexParams.expansionSearch})`,
    numberOption('--ef-search', 1, 4096, true),
  )
  .option('--json', 'print the result as JSON', false)
  .action(async (emb: string, opts: SimilarOptions) => {
    if (!opts.chip && !opts.buildIndex) throw new UsageError('similar: give --chip <name>, or --build-index');
    const storage = cliStorage();
    const { openEmbeddings, SimilarSearch } = await import('../embed/similar.js');
    const embeddings = await openEmbeddings(storage, emb);
    if (opts.buildIndex) {
      const { buildIndex } = await import('../embed/ann.js');
      const params: IndexParams = {
        connectivity: opts.connectivity,
        expansionAdd: opts.efConstruction,
        expansionSearch: opts.efSearch ?? defaultIndexParams.expansionSearch,
      };
      const tty = !opts.json && process.stderr.isTTY === true;
      const record = await interruptible('similar: index build interrupted; nothing was written', (signal) =>
        buildIndex(storage, embeddings, params, {
          signal,
          onProgress: (added, total) => {
            if (tty)
              process.stderr.write(
                `\rindexing ${added.toLocaleString('en')} / ${total.toLocaleString('en')} vectors`,
              );
          },
        }),
      );
      if (tty) process.stderr.write('\n');
      const line = `index: ${record.count.toLocaleString('en')} vectors of dim ${record.dim}, ${(record.bytes / 1e6).toFixed(1)} MB, built in ${record.buildSeconds.toFixed(1)} s (M ${record.connectivity}, efConstruction ${record.expansionAdd}, efSearch ${record.expansionSearch})`;
      if (!opts.chip) {
        process.stdout.write(opts.json ? JSON.stringify({ index: record }, null, 2) + '\n' : line + '\n');
        return;
      }
      process.stderr.write(line + '\n');
    }
    const chip = /^#\d+$/.test(opts.chip!) ? Number(opts.chip!.slice(1)) : opts.chip!;
    const search = new SimilarSearch(storage, embeddings);
    const result = await search.search({
      chip,
      k: opts.k,
      method: opts.method,
      excludeSelf: !opts.includeSelf,
      ...(opts.efSearch ? { expansionSearch: opts.efSearch } : {}),
    });
    if (opts.json) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    process.stdout.write(table(result.query, result.neighbours, result.method) + '\n');
  });
