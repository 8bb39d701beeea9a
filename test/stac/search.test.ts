import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StacError } from '../../lib/stac/errors.js';
import { parseBbox, parseDatetime } from '../../lib/stac/params.js';
import { searchBody, searchEndpoint, searchGetUrl, searchStac } from '../../lib/stac/search.js';
import { geobatch } from '../helpers/cli.js';
import { startStacApi, type StacApiHandle } from '../helpers/stac-api.js';

/** Seven items in two collections, with the fields a real API returns. */
const ITEMS = Array.from({ length: 7 }, (_, i) => ({
  type: 'Feature',
  stac_version: '1.0.0',
  id: `S2_${i}`,
  collection: i < 5 ? 'sentinel-2-l2a' : 'landsat-c2-l2',
  bbox: [13 + i / 10, 52, 13.1 + i / 10, 52.1],
  geometry: {
    type: 'Polygon',
    coordinates: [
      [
        [13, 52],
        [13.1, 52],
        [13.1, 52.1],
        [13, 52.1],
        [13, 52],
      ],
    ],
  },
  properties: { datetime: `2023-06-0${i + 1}T10:00:00Z`, 'eo:cloud_cover': i * 3.5 },
  assets: {
    visual: {
      href: `https://example.com/${i}/TCI.tif`,
      type: 'image/tiff; application=geotiff; profile=cloud-optimized',
      roles: ['visual'],
    },
    thumbnail: { href: `https://example.com/${i}/thumb.jpg`, type: 'image/jpeg', roles: ['thumbnail'] },
  },
  links: [],
}));
const SENTINEL = ITEMS.slice(0, 5);

const params = {
  bbox: [13, 52, 14, 53],
  datetime: '2023-06-01T00:00:00Z/2023-06-30T23:59:59Z',
  collections: ['sentinel-2-l2a'],
  limit: 2,
};

describe('searchStac against a STAC API stand-in', () => {
  let api: StacApiHandle;
  before(async () => {
    api = await startStacApi(ITEMS);
  });
  after(async () => {
    await api.close();
  });

  it('POSTs the search and follows POST next links that merge their body into the last one', async () => {
    const first = api.requests.length;
    const pages: number[] = [];
    const result = await searchStac({
      url: `${api.url}/post-merge`,
      params,
      onPage: (p) => pages.push(p.items),
    });
    assert.deepEqual(result.collection.features, SENTINEL, 'items are kept exactly as returned');
    assert.equal(result.pages, 3);
    assert.equal(result.method, 'POST');
    assert.equal(result.truncated, false);
    assert.equal(result.collection.numberMatched, 5);
    assert.equal(result.collection.numberReturned, 5);
    assert.deepEqual(pages, [2, 4, 5]);
    const sent = api.requests.slice(first);
    assert.deepEqual(
      sent.map((r) => [r.method, r.path]),
      [
        ['POST', '/post-merge/search'],
        ['POST', '/post-merge/search'],
        ['POST', '/post-merge/search'],
      ],
    );
    assert.deepEqual(sent[0]!.body, params);
    assert.deepEqual(sent[1]!.body, { ...params, token: 2 });
    assert.deepEqual(sent[2]!.body, { ...params, token: 4 });
  });

  it('follows POST next links that carry the whole body', async () => {
    const result = await searchStac({ url: `${api.url}/post-full/search`, params: { ...params, limit: 3 } });
    assert.deepEqual(
      result.collection.features.map((f) => (f as { id: string }).id),
      SENTINEL.map((i) => i.id),
    );
    assert.equal(result.pages, 2);
  });

  it('falls back to GET when POST is 405, and follows GET next hrefs', async () => {
    const first = api.requests.length;
    const result = await searchStac({ url: `${api.url}/get-only`, params });
    assert.equal(result.method, 'GET');
    assert.deepEqual(result.collection.features, SENTINEL);
    const sent = api.requests.slice(first);
    assert.deepEqual(
      sent.map((r) => r.method),
      ['POST', 'GET', 'GET', 'GET'],
    );
    assert.deepEqual(sent[1]!.query, {
      bbox: '13,52,14,53',
      datetime: params.datetime,
      collections: 'sentinel-2-l2a',
      limit: '2',
    });
    assert.equal(sent[3]!.query.token, '4');
  });

  it('retries a 429 and goes on', async () => {
    const retries: string[] = [];
    const result = await searchStac({
      url: `${api.url}/flaky`,
      params,
      backoffMs: 1,
      onRetry: (r) => retries.push(r.reason),
    });
    assert.deepEqual(retries, ['HTTP 429']);
    assert.equal(result.collection.features.length, 5);
  });

  it("stops with the status and the API's message on an HTTP error, after its retries", async () => {
    const first = api.requests.length;
    await assert.rejects(
      searchStac({ url: `${api.url}/broken`, params, retries: 2, backoffMs: 1 }),
      (error: unknown) =>
        error instanceof StacError &&
        error.message ===
          `${api.url}/broken/search: POST answered HTTP 500 Internal Server Error: InternalServerError: database is down`,
    );
    assert.equal(api.requests.length - first, 3, 'the first attempt and 2 retries');
    await assert.rejects(
      searchStac({ url: `${api.url}/bad-request`, params, backoffMs: 1 }),
      /HTTP 400 Bad Request: BadRequest: bbox must have 4 numbers$/,
    );
  });

  it('times out a request that gets no answer, retrying first', async () => {
    const first = api.requests.length;
    await assert.rejects(
      searchStac({ url: `${api.url}/hang`, params, timeoutMs: 200, retries: 1, backoffMs: 1 }),
      (error: unknown) =>
        error instanceof StacError &&
        error.message === `${api.url}/hang/search: POST failed: timed out after 200 ms`,
    );
    assert.equal(api.requests.length - first, 2, 'the first attempt and 1 retry');
  });

  it('stops at maxItems and says the result was cut', async () => {
    const result = await searchStac({ url: `${api.url}/post-merge`, params, maxItems: 3 });
    assert.deepEqual(
      result.collection.features.map((f) => (f as { id: string }).id),
      ['S2_0', 'S2_1', 'S2_2'],
    );
    assert.equal(result.truncated, true);
    assert.equal(result.pages, 2);
  });
});

describe('search parameters', () => {
  it('builds the POST body and GET URL from what was given only', () => {
    assert.deepEqual(searchBody({ collections: ['a'], filter: 'eo:cloud_cover < 10' }), {
      collections: ['a'],
      filter: 'eo:cloud_cover < 10',
      'filter-lang': 'cql2-text',
    });
    assert.equal(
      searchGetUrl('https://h/v1/search', { bbox: [1, 2, 3, 4], query: { 'eo:cloud_cover': { lt: 10 } } }),
      'https://h/v1/search?bbox=1%2C2%2C3%2C4&query=%7B%22eo%3Acloud_cover%22%3A%7B%22lt%22%3A10%7D%7D',
    );
    assert.equal(searchEndpoint('https://h/v1/'), 'https://h/v1/search');
    assert.equal(searchEndpoint('https://h/v1/search'), 'https://h/v1/search');
    assert.throws(
      () => searchEndpoint('ftp://h'),
      /--url: expected an http\(s\) URL of a STAC API but got 'ftp:\/\/h'/,
    );
  });

  const datetimes: ReadonlyArray<readonly [string, string]> = [
    ['2023-06-01', '2023-06-01T00:00:00Z/2023-06-01T23:59:59Z'],
    ['2023-06-01/2023-06-30', '2023-06-01T00:00:00Z/2023-06-30T23:59:59Z'],
    ['2023-06-01T10:00:00Z', '2023-06-01T10:00:00Z'],
    ['2023-06-01T10:00:00+02:00/..', '2023-06-01T10:00:00+02:00/..'],
    ['../2023-06-30', '../2023-06-30T23:59:59Z'],
  ];
  for (const [text, expected] of datetimes) {
    it(`reads --datetime ${text}`, () => assert.equal(parseDatetime(text), expected));
  }
  for (const bad of ['yesterday', '2023-13-01', '../..', '2023-06-30/2023-06-01', '2023-06-01T10:00']) {
    it(`refuses --datetime ${bad}`, () =>
      assert.throws(() => parseDatetime(bad), /^RangeError: --datetime: /));
  }

  it('reads --bbox and refuses bad ones', () => {
    assert.deepEqual(parseBbox('13.0, 52.3,13.8,52.7'), [13, 52.3, 13.8, 52.7]);
    assert.deepEqual(parseBbox('179,-10,-179,10'), [179, -10, -179, 10], 'across the antimeridian');
    for (const bad of ['1,2,3', '1,2,3,x', '0,50,1,40', '0,-91,1,0', '-181,0,0,1']) {
      assert.throws(() => parseBbox(bad), /^RangeError: --bbox: /, bad);
    }
  });
});

describe('geobatch stac search (CLI)', () => {
  let api: StacApiHandle;
  let dir: string;
  before(async () => {
    api = await startStacApi(ITEMS);
    dir = await mkdtemp(join(tmpdir(), 'geobatch-stac-cli-'));
  });
  after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one ItemCollection and prints a JSON summary', async () => {
    const run = await geobatch(
      [
        'stac',
        'search',
        '--url',
        `${api.url}/post-merge`,
        '--bbox',
        '13,52,14,53',
        '--datetime',
        '2023-06-01/2023-06-30',
        '--collections',
        'sentinel-2-l2a,landsat-c2-l2',
        '--limit',
        '3',
        '--out',
        'found/items.json',
        '--json',
      ],
      { cwd: dir },
    );
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.deepEqual(
      { ...summary, seconds: 0 },
      {
        out: 'found/items.json',
        items: 7,
        matched: 7,
        pages: 3,
        method: 'POST',
        truncated: false,
        seconds: 0,
      },
    );
    const saved = JSON.parse(await readFile(join(dir, 'found/items.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(saved.type, 'FeatureCollection');
    assert.deepEqual(saved.features, ITEMS);
    const search = saved['geobatch:search'] as Record<string, unknown>;
    assert.deepEqual(search.params, {
      bbox: [13, 52, 14, 53],
      datetime: '2023-06-01T00:00:00Z/2023-06-30T23:59:59Z',
      collections: ['sentinel-2-l2a', 'landsat-c2-l2'],
      limit: 3,
    });
    assert.deepEqual(await readdir(join(dir, 'found')), ['items.json'], 'no temporary file left');
  });

  it('fails with one line naming the status and message, and writes nothing', async () => {
    const run = await geobatch(
      ['stac', 'search', '--url', `${api.url}/broken`, '--retries', '0', '--out', 'none.json'],
      { cwd: dir },
    );
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr.trim(),
      `geobatch: ${api.url}/broken/search: POST answered HTTP 500 Internal Server Error: InternalServerError: database is down`,
    );
    assert.ok(!(await readdir(dir)).includes('none.json'));
  });

  it('refuses a bad --bbox as a usage error', async () => {
    const run = await geobatch(['stac', 'search', '--url', api.url, '--bbox', '1,2,3', '--out', 'x.json'], {
      cwd: dir,
    });
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /--bbox: expected west,south,east,north in degrees \(4 numbers\) but got '1,2,3'/,
    );
  });
});
