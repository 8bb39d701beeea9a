// Asking Overpass, against a stand-in interpreter on 127.0.0.1: the query is POSTed as `data`
// with a geobatch User-Agent, a 429 is retried, the answer is cached by query hash (a rerun asks
// nothing), requests go one at a time, and an answer with a remark is refused and not cached.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LabelError } from '../../lib/labels/errors.js';
import { fetchOverpass, overpassCacheUri } from '../../lib/labels/osm-overpass.js';
import { createStorage } from '../../lib/storage/index.js';
import { tempDir } from '../raster/fixtures.js';
import { geobatch } from '../helpers/cli.js';

const storage = createStorage();

function answer(remark?: string): string {
  const ring = [
    [-84.479, 33.638],
    [-84.4785, 33.638],
    [-84.4785, 33.6384],
    [-84.479, 33.6384],
    [-84.479, 33.638],
  ];
  return JSON.stringify({
    version: 0.6,
    generator: 'stand-in',
    elements: [
      {
        type: 'way',
        id: 77,
        nodes: [1, 2, 3, 4, 1],
        geometry: ring.map(([lon, lat]) => ({ lat, lon })),
        tags: { building: 'yes', name: 'x' },
      },
      { type: 'node', id: 9, lat: 33.6381, lon: -84.4788, tags: { amenity: 'cafe' } },
    ],
    ...(remark ? { remark } : {}),
  });
}

interface Seen {
  query: string;
  userAgent: string | undefined;
}

describe('labels osm --overpass-query', () => {
  const tmp = tempDir('overpass');
  const seen: Seen[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let throttleNext = 0;
  let server: Server;
  let url = '';

  before(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const query = new URLSearchParams(body).get('data') ?? '';
        seen.push({ query, userAgent: req.headers['user-agent'] });
        setTimeout(() => {
          inFlight--;
          if (throttleNext > 0) {
            throttleNext--;
            res.writeHead(429, { 'Retry-After': '0', 'Content-Type': 'text/html' });
            res.end('<html><body>Too many requests</body></html>');
          } else if (query.includes('timeout-me')) {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(answer('runtime error: Query timed out in "query" at line 1 after 2 seconds.'));
          } else {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(answer());
          }
        }, 20);
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/interpreter`;
  });
  after(async () => {
    await new Promise<void>((done) => server.close(() => done()));
    tmp.cleanup();
  });

  it('asks politely once, retries a 429, and caches by query hash', async () => {
    const cache = join(tmp.dir, 'cache');
    const query = '[out:json][timeout:25];way["building"](33.63,-84.49,33.65,-84.47);out geom;';
    throttleNext = 1;
    const before = seen.length;
    const uri = await fetchOverpass(storage, query, { url, cache, backoffMs: 1 });
    assert.equal(uri, overpassCacheUri(cache, url, query));
    assert.equal(seen.length - before, 2, 'one 429, then the answer');
    assert.equal(seen.at(-1)!.query, query);
    assert.match(seen.at(-1)!.userAgent ?? '', /^geobatch /);
    assert.equal(readFileSync(uri, 'utf8'), answer());
    assert.equal(await fetchOverpass(storage, query, { url, cache, backoffMs: 1 }), uri);
    assert.equal(seen.length - before, 2, 'the cached answer is reused');
    // several queries at once still go one at a time
    const many = await Promise.all(
      [1, 2, 3].map((i) =>
        fetchOverpass(storage, `[out:json];node(${i});out;`, { url, cache, backoffMs: 1 }),
      ),
    );
    assert.equal(new Set(many).size, 3);
    assert.equal(maxInFlight, 1);
  });

  it('refuses an answer with a remark, a query without [out:json], and an HTTP error', async () => {
    const cache = join(tmp.dir, 'cache-bad');
    const query = '[out:json];way["building"];out geom; // timeout-me';
    await assert.rejects(
      fetchOverpass(storage, query, { url, cache, backoffMs: 1 }),
      (e: unknown) =>
        e instanceof LabelError &&
        /the Overpass answer has the remark "runtime error: Query timed out/.test(e.message),
    );
    assert.ok(!existsSync(overpassCacheUri(cache, url, query)), 'a failed answer is not cached');
    await assert.rejects(
      fetchOverpass(storage, 'way["building"];out geom;', { url, cache }),
      /does not ask for JSON: start it with \[out:json\]/,
    );
    throttleNext = 3;
    await assert.rejects(
      fetchOverpass(storage, '[out:json];node(5);out;', { url, cache, backoffMs: 1, retries: 2 }),
      (e: unknown) =>
        e instanceof LabelError && e.message === `--overpass-url ${url}: HTTP 429: Too many requests`,
    );
  });

  it('runs through the CLI: query file in, features out, cached for the rerun', async () => {
    const queryFile = join(tmp.dir, 'buildings.overpassql');
    writeFileSync(queryFile, '[out:json];(way["building"];node["amenity"];);out geom;\n');
    const out = join(tmp.dir, 'cli');
    const args = [
      'labels',
      'osm',
      '--overpass-query',
      queryFile,
      '--overpass-url',
      url,
      '--out',
      out,
      '--json',
    ];
    const before = seen.length;
    const r = await geobatch([...args, '--class', 'building:building=*', '--class', 'cafe:amenity=cafe']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { byClass: Record<string, number> };
    assert.deepEqual(summary.byClass, { building: 1, cafe: 1 });
    const doc = JSON.parse(readFileSync(join(out, 'features.geojson'), 'utf8')) as {
      features: { id: string; properties: { class: string; tags: Record<string, string> } }[];
    };
    assert.deepEqual(
      doc.features.map((f) => [f.id, f.properties.class, f.properties.tags]),
      [
        ['way/77', 'building', { building: 'yes' }],
        ['node/9', 'cafe', { amenity: 'cafe' }],
      ],
    );
    const again = await geobatch([...args, '--class', 'building:building=*']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(seen.length - before, 1, 'the second run reads the cache');
  });
});
