import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { parseFeature, readFeatureCollection } from '../../lib/labels/geojson-stream.js';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { tempDir } from '../raster/fixtures.js';

const disk = createStorage();

/** A storage whose read stream hands out `chunkSize`-byte chunks, to cut values at every place. */
function chunked(chunkSize: number): Storage {
  return {
    ...disk,
    createReadStream: async (uri: string) => {
      const bytes = await disk.read(uri);
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
      return Readable.from(chunks);
    },
  };
}

async function collect(
  storage: Storage,
  uri: string,
): Promise<{ members: Record<string, unknown>; features: unknown[]; offsets: number[] }> {
  const members: Record<string, unknown> = {};
  const features: unknown[] = [];
  const offsets: number[] = [];
  await readFeatureCollection(storage, uri, {
    onMember: (k, v) => (members[k] = v),
    onFeature: (f) => {
      features.push(parseFeature(f, uri));
      offsets.push(f.offset);
    },
  });
  return { members, features, offsets };
}

describe('streaming a FeatureCollection', () => {
  const tmp = tempDir('geojson-stream');
  after(() => tmp.cleanup());
  const file = (name: string, text: string): string => {
    const path = join(tmp.dir, name);
    writeFileSync(path, text);
    return path;
  };

  const doc = {
    type: 'FeatureCollection',
    name: 'tricky "names" with \\ and } and ]',
    crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32633' } },
    features: [
      {
        type: 'Feature',
        properties: { a: '}]{["\\"', n: 1.5e3, t: true, z: null },
        geometry: { type: 'Point', coordinates: [1, 2] },
      },
      { type: 'Feature', properties: { 'ü-ключ': '雪' }, geometry: null },
      {
        type: 'Feature',
        properties: {},
        geometry: {
          type: 'Polygon',
          coordinates: [
            [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 0],
            ],
          ],
        },
      },
    ],
    bbox: [0, 0, 1, 2],
  };

  it('gives every feature and top-level member, whatever the chunk boundaries', async () => {
    const uri = file('doc.geojson', '\ufeff' + JSON.stringify(doc, null, 2));
    for (const size of [1, 2, 3, 7, 64, 1 << 20]) {
      const got = await collect(chunked(size), uri);
      assert.deepEqual(got.features, doc.features, `chunks of ${size}`);
      assert.deepEqual(
        got.members,
        { type: doc.type, name: doc.name, crs: doc.crs, bbox: doc.bbox },
        `chunks of ${size}`,
      );
    }
  });

  it('reports byte offsets of features, and an empty features array', async () => {
    const text = '{"features":[ {"a":1},{"b":2} ]}';
    const got = await collect(disk, file('offsets.geojson', text));
    assert.deepEqual(got.offsets, [text.indexOf('{"a"'), text.indexOf('{"b"')]);
    assert.deepEqual(
      (await collect(disk, file('empty.geojson', '{"type":"FeatureCollection","features":[]}'))).features,
      [],
    );
  });

  it("reads Python's NaN and Infinity in a feature as strings, for geometry checks to name", () => {
    const feature = parseFeature(
      {
        index: 4,
        offset: 0,
        bytes: Buffer.from('{"geometry":{"coordinates":[NaN,-Infinity,Infinity]},"p":"NaN in a string"}'),
      },
      'x.geojson',
    );
    assert.deepEqual(feature, {
      geometry: { coordinates: ['NaN', '-Infinity', 'Infinity'] },
      p: 'NaN in a string',
    });
  });

  const errors: [string, string, string][] = [
    [
      'not JSON',
      'hello world',
      "at line 1, column 1: expected a GeoJSON FeatureCollection object ('{') but found 'h'; the file is not JSON or not a GeoJSON object",
    ],
    [
      'an array',
      '[1, 2]',
      "at line 1, column 1: expected a GeoJSON FeatureCollection object ('{') but found '['; the file is not JSON or not a GeoJSON object",
    ],
    [
      'empty',
      '',
      'at line 1, column 1: the file ends before any JSON value (the file is empty) (truncated?)',
    ],
    [
      'no features',
      '{"type": "FeatureCollection"}',
      "at line 1, column 1: no 'features' array: expected a GeoJSON FeatureCollection",
    ],
    [
      'truncated feature',
      '{"features": [\n{"type": "Feature"},\n{"type": "Fea',
      'at line 3, column 14: the file ends in the middle of feature 1 (truncated?)',
    ],
    [
      'a number as feature',
      '{"features": [\n  {"a": 1},\n  42\n]}',
      "at line 3, column 3: feature 1: expected a Feature object ('{') but found '4'",
    ],
    [
      'a missing comma',
      '{"features": [{"a": 1} {"b": 2}]}',
      "at line 1, column 24: expected ',' or ']' after feature 0 but found '{'",
    ],
    [
      'junk after the end',
      '{"features": []} x',
      "at line 1, column 18: unexpected 'x' after the end of the GeoJSON object",
    ],
    [
      'a bad member value',
      '{"type": FeatureCollection, "features": []}',
      'at line 1, column 10: the value of "type" is not valid JSON (',
    ],
  ];
  for (const [what, text, message] of errors) {
    it(`fails clearly on ${what}`, async () => {
      const uri = file(`${what.replace(/\W+/g, '-')}.geojson`, text);
      await assert.rejects(
        readFeatureCollection(disk, uri, { onFeature: () => undefined }),
        (error: Error) => {
          assert.equal(error.name, 'LabelError');
          assert.ok(
            error.message.startsWith(`${uri}: not a valid GeoJSON FeatureCollection ${message}`),
            `message: ${error.message}`,
          );
          return true;
        },
      );
    });
  }

  it('names the feature whose text is not JSON', () => {
    assert.throws(
      () => parseFeature({ index: 3, offset: 120, bytes: Buffer.from('{"a": tru}') }, 'x.geojson'),
      {
        name: 'LabelError',
        message: /^x\.geojson: feature 3 \(byte 120\) is not valid JSON: /,
      },
    );
  });
});
