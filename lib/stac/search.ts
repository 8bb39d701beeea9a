/**
 * A STAC API item search, saved as one ItemCollection: POST /search (GET when the API answers
 * 405), pages followed through their `next` links (GET hrefs, or POST bodies with `merge`, as the
 * STAC API item-search spec defines), each request timed out and retried on 429 and 5xx.
 * @see https://github.com/radiantearth/stac-api-spec/tree/main/item-search
 */
import { httpRequest, type HttpRetryOptions } from '../storage/http.js';
import type { Storage } from '../storage/types.js';
import { StacError } from './errors.js';

/** What to search for; the names are the STAC API's. */
export interface StacSearchParams {
  /** [west, south, east, north] in CRS84 degrees (west > east crosses the antimeridian). */
  readonly bbox?: readonly number[];
  /** An RFC 3339 instant or interval (`start/end`, `..` for an open end). */
  readonly datetime?: string;
  readonly collections?: readonly string[];
  readonly ids?: readonly string[];
  /** Items per page the API is asked for. */
  readonly limit?: number;
  /** The Query extension's object, e.g. `{ "eo:cloud_cover": { "lt": 10 } }`. */
  readonly query?: Readonly<Record<string, unknown>>;
  /** A CQL2 filter: a JSON object (cql2-json) or a string (cql2-text). */
  readonly filter?: unknown;
}

export interface StacSearchOptions extends HttpRetryOptions {
  /** The API's root (`https://host/v1`) or its search endpoint (`.../search`). */
  readonly url: string;
  readonly params: StacSearchParams;
  /** Stop after this many items (the last page is cut). @default no limit */
  readonly maxItems?: number;
  /** Headers sent with every request. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Called after each page. */
  readonly onPage?: (page: StacSearchPage) => void;
  readonly signal?: AbortSignal;
}

export interface StacSearchPage {
  /** Pages read so far, this one included. */
  readonly pages: number;
  /** Items kept so far. */
  readonly items: number;
  /** Items the API says match the search, when it says. */
  readonly matched?: number;
}

export interface StacSearchResult {
  /** The ItemCollection: `type`, `features` as the API returned them, `numberMatched` when known, and the search it came from. */
  readonly collection: StacItemCollection;
  readonly pages: number;
  /** How the first page was asked for: POST, or GET after a 405. */
  readonly method: 'GET' | 'POST';
  /** True when maxItems stopped the search before the API ran out of pages. */
  readonly truncated: boolean;
}

/** What `geobatch stac search` writes. */
export interface StacItemCollection {
  readonly type: 'FeatureCollection';
  readonly features: readonly unknown[];
  readonly numberMatched?: number;
  readonly numberReturned: number;
  /** Where the items came from, so that a saved search can be told from another and repeated. */
  readonly 'geobatch:search': {
    readonly url: string;
    readonly params: StacSearchParams;
    readonly method: 'GET' | 'POST';
    readonly pages: number;
    readonly searchedAt: string;
    readonly truncated: boolean;
  };
}

interface SearchRequest {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly body?: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The search endpoint of an API given by its root or by the endpoint itself. */
export function searchEndpoint(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StacError(`--url: expected an http(s) URL of a STAC API but got '${url}'`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new StacError(`--url: expected an http(s) URL of a STAC API but got '${url}'`);
  }
  if (/\/search\/?$/.test(parsed.pathname)) return parsed.href;
  parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/search`;
  return parsed.href;
}

/** The POST body of a search: only the parameters given. */
export function searchBody(params: StacSearchParams): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (params.bbox) body.bbox = [...params.bbox];
  if (params.datetime !== undefined) body.datetime = params.datetime;
  if (params.collections) body.collections = [...params.collections];
  if (params.ids) body.ids = [...params.ids];
  if (params.limit !== undefined) body.limit = params.limit;
  if (params.query) body.query = params.query;
  if (params.filter !== undefined) {
    body.filter = params.filter;
    body['filter-lang'] = typeof params.filter === 'string' ? 'cql2-text' : 'cql2-json';
  }
  return body;
}

/** The GET URL of a search: arrays comma-separated, objects as JSON, as STAC APIs read them. */
export function searchGetUrl(endpoint: string, params: StacSearchParams): string {
  const url = new URL(endpoint);
  for (const [key, value] of Object.entries(searchBody(params))) {
    const text = Array.isArray(value)
      ? value.join(',')
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
    url.searchParams.set(key, text);
  }
  return url.href;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The message a STAC API error carries (`{ code, description }`), or the start of the body. */
function apiMessage(text: string): string {
  try {
    const json: unknown = JSON.parse(text);
    if (isObject(json)) {
      const parts = [json.code, json.description ?? json.detail ?? json.message].filter(
        (part): part is string => typeof part === 'string' && part !== '',
      );
      if (parts.length > 0) return parts.join(': ');
    }
  } catch {
    // not JSON: the text itself
  }
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 300)}...` : flat;
}

/** The request a `next` link asks for, or undefined when there is none. */
function nextRequest(
  page: Record<string, unknown>,
  previous: SearchRequest,
  where: string,
): SearchRequest | undefined {
  const links = Array.isArray(page.links) ? page.links : [];
  const next = links.find((link): link is Record<string, unknown> => isObject(link) && link.rel === 'next');
  if (!next) return undefined;
  if (typeof next.href !== 'string' || next.href === '') {
    throw new StacError(`${where}: links: the 'next' link has no href`);
  }
  const url = new URL(next.href, previous.url).href;
  const method = typeof next.method === 'string' ? next.method.toUpperCase() : 'GET';
  const headers = isObject(next.headers)
    ? Object.fromEntries(
        Object.entries(next.headers).filter((e): e is [string, string] => typeof e[1] === 'string'),
      )
    : undefined;
  if (method === 'GET') return { method, url, ...(headers ? { headers } : {}) };
  if (method !== 'POST') {
    throw new StacError(
      `${where}: links: the 'next' link has method '${String(next.method)}': expected GET or POST`,
    );
  }
  const own = isObject(next.body) ? next.body : {};
  // merge: the link's body holds only what changes (e.g. a token) over the request before it
  const body = next.merge === true ? { ...(previous.body ?? {}), ...own } : own;
  return { method, url, body, ...(headers ? { headers } : {}) };
}

/**
 * Runs a search to its end (or `maxItems`) and returns every item as one ItemCollection, items
 * kept exactly as the API returned them. An HTTP error (after retries for 429/5xx) is a
 * {@link StacError} with the status and the API's message; so is an answer that is not a page of
 * items, and a `next` link that asks again for the page just read.
 */
export async function searchStac(options: StacSearchOptions): Promise<StacSearchResult> {
  const endpoint = searchEndpoint(options.url);
  const features: unknown[] = [];
  let matched: number | undefined;
  let pages = 0;
  let truncated = false;
  let request: SearchRequest | undefined = {
    method: 'POST',
    url: endpoint,
    body: searchBody(options.params),
  };
  let firstMethod: 'GET' | 'POST' = 'POST';
  const seen = new Set<string>();
  while (request) {
    const key = JSON.stringify([request.method, request.url, request.body ?? null]);
    if (seen.has(key)) {
      throw new StacError(
        `${request.url}: the API's 'next' link asks for a page already read (page ${pages}): stopping`,
      );
    }
    seen.add(key);
    let page = await fetchPage(request, options);
    if (page === 'method-not-allowed') {
      if (pages > 0 || request.method !== 'POST') {
        throw new StacError(`${request.url}: HTTP 405 Method Not Allowed for ${request.method}`);
      }
      request = { method: 'GET', url: searchGetUrl(endpoint, options.params) };
      firstMethod = 'GET';
      seen.add(JSON.stringify([request.method, request.url, null]));
      page = await fetchPage(request, options);
      if (page === 'method-not-allowed') {
        throw new StacError(
          `${endpoint}: HTTP 405 Method Not Allowed for both POST and GET: is this a STAC API search endpoint?`,
        );
      }
    }
    pages++;
    const where = `${request.url} (page ${pages})`;
    if (page.type !== 'FeatureCollection' || !Array.isArray(page.features)) {
      throw new StacError(
        `${where}: expected an ItemCollection (type FeatureCollection with features) but got ${JSON.stringify(page).slice(0, 120)}`,
      );
    }
    if (matched === undefined) {
      const context = isObject(page.context) ? page.context.matched : undefined;
      const count = typeof page.numberMatched === 'number' ? page.numberMatched : context;
      if (typeof count === 'number') matched = count;
    }
    for (const feature of page.features) {
      if (options.maxItems !== undefined && features.length >= options.maxItems) {
        truncated = true;
        break;
      }
      features.push(feature);
    }
    options.onPage?.({ pages, items: features.length, ...(matched === undefined ? {} : { matched }) });
    const next = nextRequest(page, request, where);
    if (options.maxItems !== undefined && features.length >= options.maxItems) {
      truncated ||= next !== undefined;
      break;
    }
    // an empty page ends the search even with a next link (some APIs link past the last page)
    request = page.features.length === 0 ? undefined : next;
  }
  return {
    collection: {
      type: 'FeatureCollection',
      features,
      ...(matched === undefined ? {} : { numberMatched: matched }),
      numberReturned: features.length,
      'geobatch:search': {
        url: endpoint,
        params: options.params,
        method: firstMethod,
        pages,
        searchedAt: new Date().toISOString(),
        truncated,
      },
    },
    pages,
    method: firstMethod,
    truncated,
  };
}

async function fetchPage(
  request: SearchRequest,
  options: StacSearchOptions,
): Promise<Record<string, unknown> | 'method-not-allowed'> {
  const headers: Record<string, string> = {
    accept: 'application/geo+json, application/json',
    ...options.headers,
    ...request.headers,
  };
  if (request.method === 'POST') headers['content-type'] = 'application/json';
  let attempt;
  try {
    attempt = await httpRequest(
      request.url,
      {
        method: request.method,
        headers,
        ...(request.method === 'POST' ? { body: JSON.stringify(request.body ?? {}) } : {}),
      },
      {
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.retries === undefined ? {} : { retries: options.retries }),
        ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }),
        ...(options.onRetry ? { onRetry: options.onRetry } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new StacError(`${request.url}: ${request.method} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const { response, settle } = attempt;
  try {
    const text = await response.text();
    if (response.status === 405) return 'method-not-allowed';
    if (!response.ok) {
      const message = apiMessage(text);
      throw new StacError(
        `${request.url}: ${request.method} answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${message ? `: ${message}` : ''}`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StacError(`${request.url}: the answer is not JSON (${apiMessage(text).slice(0, 80)})`);
    }
    if (!isObject(json)) throw new StacError(`${request.url}: expected a JSON object (an ItemCollection)`);
    return json;
  } catch (error) {
    if (error instanceof StacError || options.signal?.aborted) throw error;
    throw new StacError(`${request.url}: reading the answer failed: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    settle();
  }
}

/** Writes a search's ItemCollection to `out` (local or s3://) in one atomic write. */
export async function writeItemCollection(
  storage: Storage,
  out: string,
  collection: StacItemCollection,
  signal?: AbortSignal,
): Promise<void> {
  await storage.writeAtomic(out, JSON.stringify(collection, null, 1) + '\n', {
    contentType: 'application/geo+json',
    ...(signal ? { signal } : {}),
  });
}
