/**
 * Asking an Overpass API endpoint, politely: one request at a time in this process, a
 * User-Agent naming geobatch, retries on 429 and 5xx that honour Retry-After (lib/storage/http),
 * and every answer cached on disk (or S3) by the hash of endpoint and query, so a rerun or a
 * second scene asks nothing. An answer with a `remark` (a failed or cut-short query) is refused
 * and not cached.
 */
import { createHash } from 'node:crypto';
import { httpRequest, type HttpRetryOptions } from '../storage/http.js';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import { LabelError } from './errors.js';
import { parseOverpassJson } from './osm-elements.js';

export const DEFAULT_OVERPASS_URL = 'https://overpass-api.de/api/interpreter';
export const OVERPASS_USER_AGENT = 'geobatch (labels osm; https://github.com/geobatch)';

export interface OverpassOptions extends HttpRetryOptions {
  readonly url?: string;
  /** Folder or S3 prefix of the cache. */
  readonly cache: string;
  readonly signal?: AbortSignal;
}

let queue: Promise<unknown> = Promise.resolve();

/** Runs requests one after another, whoever asks. */
function oneAtATime<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.then(task, task);
  queue = run.catch(() => undefined);
  return run;
}

/** The cached answer's URI for a query: `<cache>/overpass-<sha256 of url and query, 16 hex>.json`. */
export function overpassCacheUri(cache: string, url: string, query: string): string {
  const hash = createHash('sha256').update(`${url}\n${query.trim()}`).digest('hex').slice(0, 16);
  return joinUri(cache, `overpass-${hash}.json`);
}

/**
 * Returns the URI of the answer to an Overpass QL query (asking the endpoint only when it is not
 * cached yet). The query must ask for JSON (`[out:json]`).
 */
export async function fetchOverpass(
  storage: Storage,
  query: string,
  options: OverpassOptions,
): Promise<string> {
  const url = options.url ?? DEFAULT_OVERPASS_URL;
  if (!/\[\s*out\s*:\s*json\s*\]/.test(query)) {
    throw new LabelError(
      `the Overpass query does not ask for JSON: start it with [out:json]; (and end with 'out geom;' or 'out body; >; out skel qt;')`,
    );
  }
  const io = options.signal ? { signal: options.signal } : {};
  const cached = overpassCacheUri(options.cache, url, query);
  if (await storage.exists(cached, io)) return cached;
  return oneAtATime(async () => {
    if (await storage.exists(cached, io)) return cached;
    let text: string;
    let status: number;
    try {
      const { response, settle } = await httpRequest(
        url,
        {
          method: 'POST',
          headers: { 'User-Agent': OVERPASS_USER_AGENT, 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ data: query }).toString(),
        },
        { ...options, ...io },
      );
      try {
        status = response.status;
        text = await response.text();
      } finally {
        settle();
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new LabelError(
        `--overpass-url ${url}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (status !== 200) {
      const line = text
        .replace(/<[^>]+>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 200);
      throw new LabelError(`--overpass-url ${url}: HTTP ${status}${line ? `: ${line}` : ''}`);
    }
    parseOverpassJson(text, url);
    await storage.writeAtomic(cached, text, { contentType: 'application/json', ...io });
    return cached;
  });
}
