import { Command } from 'commander';
import { interruptible, UsageError } from './errors.js';
import { integerOption } from './options.js';
import { cliStorage } from './storage.js';
import type { StacSearchParams } from '../stac/search.js';

/** Runs an option parser, turning its error into a usage error (exit code 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

interface SearchOptions {
  url: string;
  out: string;
  bbox?: string;
  datetime?: string;
  collections?: string;
  ids?: string;
  query?: string;
  filter?: string;
  limit?: number;
  maxItems?: number;
  timeout: number;
  retries: number;
  json: boolean;
}

const searchCommand = new Command('search')
  .summary('search a STAC API and save the items as one ItemCollection file')
  .description(
    [
      'Search a STAC API (POST /search, or GET when the API answers 405),',
      "follow its 'next' links page by page (GET hrefs, and POST bodies with",
      'merge, as the STAC API spec defines) and write every item, as the API',
      'returned it, to one ItemCollection (a GeoJSON FeatureCollection), written',
      'atomically. A pipeline reads it as an input set:',
      '  inputs: { scenes: { stac: items.json, asset: visual } }',
      'so the plan is made offline from the saved file, the same every time.',
      '',
      'Requests time out after --timeout seconds and are retried with backoff on',
      'HTTP 429 and 5xx (Retry-After is honoured); an HTTP error stops with the',
      "status and the API's message. A date alone in --datetime is the whole day.",
      '',
      'Example:',
      '  geobatch stac search --url https://earth-search.aws.element84.com/v1 \\',
      '    --collections sentinel-2-l2a --bbox 13.0,52.3,13.8,52.7 \\',
      '    --datetime 2023-06-01/2023-06-30 --query \'{"eo:cloud_cover":{"lt":10}}\' \\',
      '    --max-items 50 --out items.json',
    ].join('\n'),
  )
  .requiredOption('--url <api>', "the STAC API's root URL (or its /search endpoint)")
  .requiredOption('--out <file>', 'where to write the ItemCollection (local path or s3:// URI)')
  .option('--bbox <w,s,e,n>', 'bounding box in degrees (CRS84): west,south,east,north')
  .option('--datetime <interval>', 'RFC 3339 instant or interval start/end, .. for an open end')
  .option('--collections <a,b>', 'collection ids, comma-separated')
  .option('--ids <a,b>', 'item ids, comma-separated')
  .option('--query <json>', 'Query extension object, e.g. \'{"eo:cloud_cover":{"lt":10}}\'')
  .option('--filter <cql2>', 'CQL2 filter: JSON (cql2-json) or text (cql2-text)')
  .option('--limit <n>', 'items per page asked of the API', integerOption('--limit', 1, 10_000))
  .option('--max-items <n>', 'stop after this many items', integerOption('--max-items', 1, 10_000_000))
  .option('--timeout <seconds>', 'time limit per request', integerOption('--timeout', 1, 3600), 60)
  .option(
    '--retries <n>',
    'retries per request on 429, 5xx and network errors',
    integerOption('--retries', 0, 20),
    4,
  )
  .option('--json', 'print a JSON summary instead of text', false)
  .action(async (opts: SearchOptions) => {
    const { parseBbox, parseDatetime, parseJsonObject, parseNameList } = await import('../stac/params.js');
    const params: StacSearchParams = {
      ...(opts.bbox === undefined ? {} : { bbox: usage(() => parseBbox(opts.bbox!)) }),
      ...(opts.datetime === undefined ? {} : { datetime: usage(() => parseDatetime(opts.datetime!)) }),
      ...(opts.collections === undefined
        ? {}
        : { collections: usage(() => parseNameList('--collections', opts.collections!)) }),
      ...(opts.ids === undefined ? {} : { ids: usage(() => parseNameList('--ids', opts.ids!)) }),
      ...(opts.query === undefined ? {} : { query: usage(() => parseJsonObject('--query', opts.query!)) }),
      ...(opts.filter === undefined
        ? {}
        : {
            filter: opts.filter.trim().startsWith('{')
              ? usage(() => parseJsonObject('--filter', opts.filter!))
              : opts.filter,
          }),
      ...(opts.limit === undefined ? {} : { limit: opts.limit }),
    };
    const { searchStac, writeItemCollection } = await import('../stac/search.js');
    const tty = !opts.json && process.stderr.isTTY === true;
    const started = Date.now();
    const result = await interruptible('stac search stopped; nothing was written', async (signal) => {
      const found = await searchStac({
        url: opts.url,
        params,
        ...(opts.maxItems === undefined ? {} : { maxItems: opts.maxItems }),
        timeoutMs: opts.timeout * 1000,
        retries: opts.retries,
        signal,
        onRetry: ({ reason, delayMs, attempt }) =>
          process.stderr.write(
            `${tty ? '\r\x1b[K' : ''}stac search: ${reason}, retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s\n`,
          ),
        onPage: ({ pages, items, matched }) => {
          if (tty)
            process.stderr.write(
              `\r\x1b[Kstac search: page ${pages}, ${items.toLocaleString('en-US')} items${matched === undefined ? '' : ` of ${matched.toLocaleString('en-US')}`}`,
            );
        },
      });
      if (tty) process.stderr.write('\r\x1b[K');
      await writeItemCollection(cliStorage(), opts.out, found.collection, signal);
      return found;
    });
    const summary = {
      out: opts.out,
      items: result.collection.numberReturned,
      ...(result.collection.numberMatched === undefined ? {} : { matched: result.collection.numberMatched }),
      pages: result.pages,
      method: result.method,
      truncated: result.truncated,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
    if (opts.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
      return;
    }
    const of = summary.matched === undefined ? '' : ` of ${summary.matched.toLocaleString('en-US')} matching`;
    process.stdout.write(
      `stac search: ${summary.items.toLocaleString('en-US')} items${of} in ${summary.pages} page${summary.pages === 1 ? '' : 's'} (${summary.method}) -> ${summary.out} in ${summary.seconds.toFixed(1)} s${summary.truncated ? ` (stopped at --max-items ${opts.maxItems})` : ''}\n`,
    );
  });

/** `geobatch stac ...` */
export const stacCommand = new Command('stac')
  .summary('find scenes in STAC catalogues')
  .description('Search STAC APIs and save the items, to use as a pipeline input set ({ stac: items.json }).')
  .addCommand(searchCommand.exitOverride());
