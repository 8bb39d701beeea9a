import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StacError } from '../../lib/stac/errors.js';
import {
  chooseAssetKey,
  isGeoTiffMediaType,
  parseStacItems,
  resolveAssetHref,
  safeItemId,
  stacInputItems,
  type StacAsset,
  type StacItem,
} from '../../lib/stac/items.js';

const FILE = '/data/stac/items.json';
const COG = 'image/tiff; application=geotiff; profile=cloud-optimized';

function item(id: string, assets: Record<string, StacAsset>, extra: Record<string, unknown> = {}): StacItem {
  return { type: 'Feature', id, assets, ...extra } as StacItem;
}

function collection(...features: unknown[]): string {
  return JSON.stringify({ type: 'FeatureCollection', features });
}

describe('parseStacItems', () => {
  it('reads an ItemCollection, a FeatureCollection of Items and a single Item, keeping every field', () => {
    const a = item(
      'a',
      { visual: { href: 'a.tif' } },
      { properties: { datetime: '2023-06-01T00:00:00Z' }, bbox: [1, 2, 3, 4] },
    );
    const api = JSON.stringify({
      type: 'FeatureCollection',
      features: [a],
      links: [],
      numberMatched: 1,
      context: {},
    });
    assert.deepEqual(parseStacItems(api, FILE), [a]);
    assert.deepEqual(
      parseStacItems(collection(a, item('b', {})), FILE).map((i) => i.id),
      ['a', 'b'],
    );
    assert.deepEqual(parseStacItems(JSON.stringify(a), FILE), [a]);
  });

  const bad: ReadonlyArray<readonly [string, string, RegExp]> = [
    ['not JSON', '{"type":', /^\/data\/stac\/items\.json: not valid JSON/],
    ['an array', '[]', /expected a STAC ItemCollection or Item \(a JSON object\) but got \[\]/],
    [
      'another type',
      '{"type":"Catalog"}',
      /type: expected "FeatureCollection" \(a STAC ItemCollection\) or "Feature" \(a STAC Item\) but got "Catalog"/,
    ],
    [
      'features missing',
      '{"type":"FeatureCollection"}',
      /features: expected an array of STAC Items but got undefined/,
    ],
    [
      'a feature without id',
      collection({ type: 'Feature', assets: {} }),
      /features\[0\]\.id: expected a non-empty string \(the item id\) but got undefined/,
    ],
    [
      'a numeric id',
      collection({ type: 'Feature', id: 7, assets: {} }),
      /features\[0\]\.id: expected a non-empty string/,
    ],
    [
      'no assets',
      collection(item('ok', {}), { type: 'Feature', id: 'x' }),
      /features\[1\] \('x'\)\.assets: expected an object of assets by key but got undefined/,
    ],
    [
      'an asset without href',
      collection({ type: 'Feature', id: 'x', assets: { visual: { type: COG } } }),
      /features\[0\] \('x'\)\.assets\.visual\.href: expected a non-empty string but got undefined/,
    ],
    [
      'roles not strings',
      collection({ type: 'Feature', id: 'x', assets: { v: { href: 'a', roles: 'data' } } }),
      /assets\.v\.roles: expected an array of strings but got "data"/,
    ],
    [
      'not a Feature',
      collection({ type: 'Polygon', id: 'x' }),
      /features\[0\]\.type: expected "Feature" but got "Polygon"/,
    ],
  ];
  for (const [name, text, message] of bad) {
    it(`rejects ${name}, naming the file and the field`, () => {
      assert.throws(
        () => parseStacItems(text, FILE),
        (error: unknown) =>
          error instanceof StacError && message.test(error.message) && error.message.startsWith(`${FILE}: `),
      );
    });
  }
});

describe('chooseAssetKey', () => {
  const sentinel = item('s2', {
    thumbnail: { href: 't.jpg', type: 'image/jpeg', roles: ['thumbnail'] },
    visual: { href: 'TCI.tif', type: COG, roles: ['visual'] },
    red: { href: 'B04.tif', type: COG, roles: ['data'] },
    nir: { href: 'B08.tif', type: COG, roles: ['data'] },
  });

  it('takes the named asset, and names the keys an item has when it lacks it', () => {
    assert.equal(chooseAssetKey(sentinel, FILE, 'visual'), 'visual');
    assert.throws(
      () => chooseAssetKey(sentinel, FILE, 'rgb'),
      /^StacError: \/data\/stac\/items\.json: item 's2' has no asset 'rgb' \(it has thumbnail, visual, red, nir\)$/,
    );
  });

  const rules: ReadonlyArray<readonly [string, Record<string, StacAsset>, string]> = [
    [
      'the one GeoTIFF data asset',
      {
        image: { href: 'x.tif', type: COG, roles: ['data'] },
        overview: { href: 'o.tif', type: COG, roles: ['overview'] },
      },
      'image',
    ],
    [
      'the one GeoTIFF asset when none has role data',
      {
        thumb: { href: 't.png', type: 'image/png' },
        img: { href: 'x', type: 'image/tiff; application=geotiff' },
      },
      'img',
    ],
    [
      'a data asset with a .tif href when no asset says its type',
      {
        meta: { href: 'm.xml', roles: ['metadata'] },
        scene: { href: 'https://h/x.TIF?sig=1', roles: ['data'] },
      },
      'scene',
    ],
  ];
  for (const [name, assets, key] of rules) {
    it(`without a key, takes ${name}`, () => assert.equal(chooseAssetKey(item('i', assets), FILE), key));
  }

  it('without a key, refuses several candidates of the best rule, naming them', () => {
    assert.throws(
      () => chooseAssetKey(sentinel, FILE),
      /item 's2' has 2 GeoTIFF data assets \(red, nir\): name the one to use with 'asset:'/,
    );
  });

  it('without a key, refuses an item with nothing to choose', () => {
    assert.throws(
      () => chooseAssetKey(item('j', { thumb: { href: 't.jpg', type: 'image/jpeg' } }), FILE),
      /item 'j' has no GeoTIFF or data asset to choose \(it has thumb\): name the one to use with 'asset:'/,
    );
  });

  it('recognises GeoTIFF media types with and without a profile, in any case and spacing', () => {
    for (const t of [COG, 'image/tiff; application=geotiff', 'IMAGE/TIFF;APPLICATION=GEOTIFF'])
      assert.ok(isGeoTiffMediaType(t), t);
    for (const t of [undefined, 'image/tiff', 'image/jp2', 'application/geotiff'])
      assert.ok(!isGeoTiffMediaType(t), String(t));
  });
});

describe('resolveAssetHref', () => {
  const cases: ReadonlyArray<readonly [string, string, string, string]> = [
    [
      'a relative href against a local file',
      'scenes/a.tif',
      '/data/stac/items.json',
      '/data/stac/scenes/a.tif',
    ],
    ['../ and percent-escapes locally', '../img/a%20b.tif', '/data/stac/items.json', '/data/img/a b.tif'],
    ['an absolute path', '/x/y.tif', '/data/stac/items.json', '/x/y.tif'],
    ['a file:// URL', 'file:///x/y%20z.tif', '/data/stac/items.json', '/x/y z.tif'],
    [
      'a relative href against an S3 file',
      '../img/a%20b.tif',
      's3://bucket/stac/v1/items.json',
      's3://bucket/stac/img/a b.tif',
    ],
    [
      'a relative href against an https file',
      './a.tif',
      'https://host/cat/items.json',
      'https://host/cat/a.tif',
    ],
    ['an s3:// href as it is', 's3://other/k.tif', '/data/items.json', 's3://other/k.tif'],
    [
      'an https:// href as it is',
      'https://cdn/x.tif?token=1',
      's3://b/items.json',
      'https://cdn/x.tif?token=1',
    ],
  ];
  for (const [name, href, base, expected] of cases) {
    it(`resolves ${name}`, () => assert.equal(resolveAssetHref(href, base, 'here'), expected));
  }

  it('refuses other schemes, naming where the href is', () => {
    assert.throws(
      () => resolveAssetHref('gs://b/x.tif', FILE, "items.json: item 'a' asset 'visual'"),
      /^StacError: items\.json: item 'a' asset 'visual': href 'gs:\/\/b\/x\.tif' has scheme 'gs'/,
    );
  });
});

describe('stacInputItems: ids', () => {
  const tif = (href: string): Record<string, StacAsset> => ({ visual: { href, type: COG, roles: ['data'] } });

  it('uses item ids, sorted, with the asset href as the uri', () => {
    const items = [
      item('S2B_33UUP_20230602', tif('b.tif')),
      item('S2A_33UUP_20230601', tif('https://h/a.tif')),
    ];
    assert.deepEqual(stacInputItems(items, FILE), [
      { id: 'S2A_33UUP_20230601', uri: 'https://h/a.tif' },
      { id: 'S2B_33UUP_20230602', uri: '/data/stac/b.tif' },
    ]);
  });

  it('sanitises ids to [A-Za-z0-9._-] with no leading dot', () => {
    assert.equal(safeItemId('LC08 L2SP/042:034'), 'LC08_L2SP_042_034');
    assert.equal(safeItemId('.hidden'), '_hidden');
    assert.equal(safeItemId('é'), '_');
  });

  it('makes ids that collide after sanitising unique, in order of the original ids, whatever the file order', () => {
    const forward = [
      item('a:1', tif('1.tif')),
      item('a/1', tif('2.tif')),
      item('A_1', tif('3.tif')),
      item('a_1-2', tif('4.tif')),
    ];
    const expected = [
      { id: 'A_1', uri: '/data/stac/3.tif' },
      { id: 'a_1-2', uri: '/data/stac/4.tif' },
      { id: 'a_1-3', uri: '/data/stac/2.tif' },
      { id: 'a_1-4', uri: '/data/stac/1.tif' },
    ];
    assert.deepEqual(stacInputItems(forward, FILE), expected);
    assert.deepEqual(stacInputItems([...forward].reverse(), FILE), expected);
  });

  it('tells the same id in two collections apart by the collection', () => {
    const items = [
      item('x', tif('l8.tif'), { collection: 'landsat' }),
      item('x', tif('s2.tif'), { collection: 'sentinel' }),
      item('y', tif('y.tif'), { collection: 'sentinel' }),
    ];
    assert.deepEqual(
      stacInputItems(items, FILE).map((i) => i.id),
      ['x_landsat', 'x_sentinel', 'y'],
    );
  });

  it('keeps an item repeated with the same href once (overlapping pages)', () => {
    assert.deepEqual(stacInputItems([item('x', tif('a.tif')), item('x', tif('a.tif'))], FILE), [
      { id: 'x', uri: '/data/stac/a.tif' },
    ]);
  });

  it('refuses two items that cannot be told apart: the same id and collection, different hrefs', () => {
    assert.throws(
      () =>
        stacInputItems(
          [item('x', tif('a.tif'), { collection: 'c' }), item('x', tif('b.tif'), { collection: 'c' })],
          FILE,
        ),
      /^StacError: \/data\/stac\/items\.json: two items have the id 'x' in collection 'c' with different 'visual' hrefs \(\/data\/stac\/a\.tif, \/data\/stac\/b\.tif\): they cannot be told apart; remove one$/,
    );
  });
});
