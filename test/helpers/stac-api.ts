/**
 * A STAC API stand-in on 127.0.0.1 for search tests: /<style>/search pages through a fixed list
 * of items, filtered by `collections`, `limit` items a page, with `next` links in the style the
 * path names. Every request (method, path, query, body) is recorded.
 *
 * Styles: `post-merge` (POST next links whose body holds only the token, merge: true),
 * `post-full` (POST next links with the whole body), `get-only` (POST answers 405; GET pages with
 * next hrefs), `flaky` (like post-merge, but the first request gets 429), `broken` (always 500
 * with a STAC error body), `bad-request` (400 with a STAC error body), `hang` (never answers).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listenOnLoopback } from './http-files.js';

export interface StacApiRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly body: Record<string, unknown> | undefined;
}

export interface StacApiHandle {
  readonly url: string;
  readonly requests: StacApiRequest[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(
  res: ServerResponse,
  status: number,
  json: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/geo+json', ...headers }).end(JSON.stringify(json));
}

/** Starts the stand-in serving `items` (STAC Items with a `collection`). */
export async function startStacApi(items: readonly Record<string, unknown>[]): Promise<StacApiHandle> {
  const requests: StacApiRequest[] = [];
  let flakyAnswered = false;
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const text = await readBody(req);
      const body = text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>);
      const query = Object.fromEntries(url.searchParams);
      requests.push({ method: req.method ?? '', path: url.pathname, query, body });
      const style = /^\/([a-z-]+)\/search$/.exec(url.pathname)?.[1];
      if (style === undefined)
        return send(res, 404, { code: 'NotFound', description: `no route ${url.pathname}` });
      if (style === 'hang') return; // never answers: the client's timeout must end the wait
      if (style === 'broken')
        return send(res, 500, { code: 'InternalServerError', description: 'database is down' });
      if (style === 'bad-request')
        return send(res, 400, { code: 'BadRequest', description: 'bbox must have 4 numbers' });
      if (style === 'flaky' && !flakyAnswered) {
        flakyAnswered = true;
        return send(res, 429, { code: 'TooManyRequests', description: 'slow down' }, { 'retry-after': '0' });
      }
      if (style === 'get-only' && req.method === 'POST') return send(res, 405, { code: 'MethodNotAllowed' });
      const params: Record<string, unknown> =
        req.method === 'POST'
          ? (body ?? {})
          : {
              ...query,
              ...(query.collections ? { collections: query.collections.split(',') } : {}),
            };
      const collections = Array.isArray(params.collections) ? (params.collections as string[]) : undefined;
      const matching = items.filter(
        (item) => !collections || collections.includes(item.collection as string),
      );
      const limit = Number(params.limit ?? 10);
      const offset = Number(params.token ?? 0);
      const page = matching.slice(offset, offset + limit);
      const links: Record<string, unknown>[] = [{ rel: 'self', href: url.href }];
      const nextOffset = offset + limit;
      if (nextOffset < matching.length) {
        const search = `http://${req.headers.host}${url.pathname}`;
        if (req.method === 'GET') {
          const next = new URL(search);
          for (const [k, v] of Object.entries(query)) next.searchParams.set(k, v);
          next.searchParams.set('token', String(nextOffset));
          links.push({ rel: 'next', href: next.href, type: 'application/geo+json' });
        } else if (style === 'post-full') {
          links.push({ rel: 'next', href: search, method: 'POST', body: { ...params, token: nextOffset } });
        } else {
          links.push({ rel: 'next', href: search, method: 'POST', body: { token: nextOffset }, merge: true });
        }
      }
      send(res, 200, {
        type: 'FeatureCollection',
        features: page,
        links,
        numberMatched: matching.length,
        numberReturned: page.length,
      });
    })().catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  return { ...(await listenOnLoopback(server)), requests };
}
