/**
 * A static file server on 127.0.0.1 for tests of http(s) reading: serves files of one directory
 * with HEAD, ETag, Last-Modified and single `Range: bytes=a-b` requests (206 / 416), the way
 * public COG hosts do; `ignoreRanges` makes it answer 200 with the whole file instead.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

export interface HttpFilesHandle {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Method, path and Range header of every request, in order. */
  readonly requests: { method: string; path: string; range: string | undefined }[];
  close(): Promise<void>;
}

export interface HttpFilesOptions {
  /** Answer ranged GETs with 200 and the whole file. */
  readonly ignoreRanges?: boolean;
  /** Answer HEAD with 405 (as some presigned-URL hosts do). */
  readonly refuseHead?: boolean;
  /** Paths answered with this status once, then served normally (e.g. 503 to exercise retries). */
  readonly failOnce?: Readonly<Record<string, number>>;
}

/** Starts the server over `root`. */
export async function startHttpFiles(root: string, options: HttpFilesOptions = {}): Promise<HttpFilesHandle> {
  const requests: HttpFilesHandle['requests'] = [];
  const failed = new Set<string>();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const range = req.headers.range;
    requests.push({ method: req.method ?? '', path, range });
    const failStatus = options.failOnce?.[path];
    if (failStatus !== undefined && !failed.has(path)) {
      failed.add(path);
      res.writeHead(failStatus, { 'retry-after': '0' }).end('try again');
      return;
    }
    if (req.method === 'HEAD' && options.refuseHead) {
      res.writeHead(405).end();
      return;
    }
    const file = join(root, normalize(path));
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const headers = {
      'accept-ranges': 'bytes',
      etag: `"${info.size}-${info.mtimeMs}"`,
      'last-modified': info.mtime.toUTCString(),
    };
    const match = /^bytes=(\d+)-(\d*)$/.exec(range ?? '');
    if (match && !options.ignoreRanges && req.method === 'GET') {
      const start = Number(match[1]);
      const end = Math.min(info.size - 1, match[2] === '' ? info.size - 1 : Number(match[2]));
      if (start >= info.size) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${info.size}` }).end();
        return;
      }
      res.writeHead(206, {
        ...headers,
        'content-length': String(end - start + 1),
        'content-range': `bytes ${start}-${end}/${info.size}`,
      });
      createReadStream(file, { start, end }).pipe(res);
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(info.size) });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  return { ...(await listenOnLoopback(server)), requests };
}

/** Starts `server` on a free port of 127.0.0.1: its base URL, and a close that drops open connections. */
export async function listenOnLoopback(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
