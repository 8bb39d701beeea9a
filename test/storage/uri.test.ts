import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageError } from '../../lib/storage/errors.js';
import {
  basenameUri,
  compareUtf8,
  dirnameUri,
  formatS3Uri,
  isS3Uri,
  joinUri,
  normalizeUri,
  parseS3Uri,
  parseUri,
  toLocalPath,
  type Location,
} from '../../lib/storage/uri.js';

const CWD = '/work/project';

describe('isS3Uri', () => {
  const cases: ReadonlyArray<readonly [string, boolean]> = [
    ['s3://bucket/key', true],
    ['s3://bucket', true],
    ['S3://bucket/key', true],
    ['s3:/bucket/key', false],
    ['s3bucket/key', false],
    ['/s3://bucket', false],
    ['file:///s3://x', false],
    ['gs://bucket/key', false],
    ['', false],
  ];
  for (const [value, expected] of cases) {
    it(`${JSON.stringify(value)} -> ${expected}`, () => assert.equal(isS3Uri(value), expected));
  }
});

describe('parseUri: valid values', () => {
  const cases: ReadonlyArray<readonly [string, Location]> = [
    ['s3://bucket/key.tif', { kind: 's3', bucket: 'bucket', key: 'key.tif' }],
    ['s3://my.bucket-1/a/b/c.tif', { kind: 's3', bucket: 'my.bucket-1', key: 'a/b/c.tif' }],
    ['S3://bucket/Key', { kind: 's3', bucket: 'bucket', key: 'Key' }],
    ['s3://bucket', { kind: 's3', bucket: 'bucket', key: '' }],
    ['s3://bucket/', { kind: 's3', bucket: 'bucket', key: '' }],
    ['s3://bucket/dir/', { kind: 's3', bucket: 'bucket', key: 'dir/' }],
    // Keys are opaque to S3: nothing in them is normalised.
    ['s3://bucket/a//b/../c', { kind: 's3', bucket: 'bucket', key: 'a//b/../c' }],
    ['s3://bucket/a b/ü.tif', { kind: 's3', bucket: 'bucket', key: 'a b/ü.tif' }],
    ['/abs/path.tif', { kind: 'local', path: '/abs/path.tif' }],
    ['/abs/../other/./x', { kind: 'local', path: '/other/x' }],
    ['/abs/dir/', { kind: 'local', path: '/abs/dir/' }],
    ['/', { kind: 'local', path: '/' }],
    ['relative/x.tif', { kind: 'local', path: '/work/project/relative/x.tif' }],
    ['./x.tif', { kind: 'local', path: '/work/project/x.tif' }],
    ['../x.tif', { kind: 'local', path: '/work/x.tif' }],
    ['data/', { kind: 'local', path: '/work/project/data/' }],
    ['.', { kind: 'local', path: '/work/project' }],
    ['file:///abs/path.tif', { kind: 'local', path: '/abs/path.tif' }],
    ['file:///abs/dir/', { kind: 'local', path: '/abs/dir/' }],
    ['file:///with%20space/%C3%BC.tif', { kind: 'local', path: '/with space/ü.tif' }],
    ['file://localhost/abs/x', { kind: 'local', path: '/abs/x' }],
    ['FILE:///abs/x', { kind: 'local', path: '/abs/x' }],
    // A colon without '//' is an ordinary file name character.
    ['data:2020.tif', { kind: 'local', path: '/work/project/data:2020.tif' }],
    ['C:/x', { kind: 'local', path: '/work/project/C:/x' }],
  ];
  for (const [uri, expected] of cases) {
    it(`${uri}`, () => assert.deepEqual(parseUri(uri, CWD), expected));
  }
});

describe('parseUri: invalid values', () => {
  const cases: ReadonlyArray<readonly [string, RegExp]> = [
    ['', /^: empty URI: expected a path, file:\/\/ or s3:\/\/ URI$/],
    ['s3://', /^s3:\/\/: missing bucket name/],
    ['s3:///key', /^s3:\/\/\/key: missing bucket name/],
    ['s3:/bucket/key', /^s3:\/bucket\/key: malformed S3 URI: expected 's3:\/\/bucket\/key'$/],
    ['s3:bucket', /malformed S3 URI/],
    ['s3://Bucket/key', /^s3:\/\/Bucket\/key: invalid bucket name 'Bucket': expected 3-63 lowercase/],
    ['s3://ab/key', /invalid bucket name 'ab'/],
    ['s3://under_score/key', /invalid bucket name 'under_score'/],
    ['s3://-dash/key', /invalid bucket name '-dash'/],
    [`s3://${'a'.repeat(64)}/key`, /invalid bucket name/],
    [
      'gs://bucket/key',
      /^gs:\/\/bucket\/key: unsupported scheme 'gs': use a local path, a file:\/\/ URI or an s3:\/\/bucket\/key URI$/,
    ],
    [
      'https://example.com/x.tif',
      /https URLs can be read \(as STAC assets or single files\), not listed or written/,
    ],
    ['file://server/share/x', /malformed file URI: expected 'file:\/\/\/absolute\/path'/],
    ['file:///a/%2F/b', /malformed file URI/],
    ['/a/\0b', /NUL character/],
  ];
  for (const [uri, message] of cases) {
    it(`${JSON.stringify(uri)} is InvalidUri`, () => {
      assert.throws(
        () => parseUri(uri, CWD),
        (error: unknown) =>
          error instanceof StorageError &&
          error.code === 'InvalidUri' &&
          error.uri === uri &&
          message.test(error.message),
      );
    });
  }
});

describe('parseS3Uri and toLocalPath', () => {
  it('parseS3Uri refuses local paths', () => {
    assert.deepEqual(parseS3Uri('s3://bucket/k'), { kind: 's3', bucket: 'bucket', key: 'k' });
    assert.throws(() => parseS3Uri('/local/x'), /^StorageError: \/local\/x: expected an S3 URI/);
  });
  it('toLocalPath refuses s3 URIs', () => {
    assert.equal(toLocalPath('file:///a/b', CWD), '/a/b');
    assert.equal(toLocalPath('b', CWD), '/work/project/b');
    assert.throws(() => toLocalPath('s3://bucket/k', CWD), /expected a local path or file:\/\/ URI/);
  });
});

describe('normalizeUri', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['S3://bucket/key', 's3://bucket/key'],
    ['s3://bucket/', 's3://bucket'],
    ['s3://bucket/dir/', 's3://bucket/dir/'],
    ['file:///a/b/../c', '/a/c'],
    ['x/y/', '/work/project/x/y/'],
    ['/a//b', '/a/b'],
  ];
  for (const [uri, expected] of cases) {
    it(`${uri} -> ${expected}`, () => assert.equal(normalizeUri(uri, CWD), expected));
  }
});

describe('joinUri', () => {
  const cases: ReadonlyArray<readonly [string, readonly string[], string]> = [
    ['s3://bucket/runs', ['r1', 'plan.json'], 's3://bucket/runs/r1/plan.json'],
    ['s3://bucket/runs/', ['plan.json'], 's3://bucket/runs/plan.json'],
    ['s3://bucket', ['a.tif'], 's3://bucket/a.tif'],
    ['s3://bucket/', ['a', 'b/'], 's3://bucket/a/b/'],
    ['s3://bucket/a/b', ['../c'], 's3://bucket/a/c'],
    ['s3://bucket/a', ['./b', '', 'c'], 's3://bucket/a/b/c'],
    ['s3://bucket/a', ['/b'], 's3://bucket/a/b'],
    ['s3://bucket/a', ['..'], 's3://bucket'],
    ['s3://bucket/data', ['*.tif'], 's3://bucket/data/*.tif'],
    ['s3://bucket/a', [], 's3://bucket/a'],
    ['/runs', ['r1', 'plan.json'], '/runs/r1/plan.json'],
    ['/runs/', ['x/'], '/runs/x/'],
    ['/a/b', ['../c'], '/a/c'],
    ['file:///a', ['b'], '/a/b'],
  ];
  for (const [base, parts, expected] of cases) {
    it(`${base} + ${JSON.stringify(parts)} -> ${expected}`, () =>
      assert.equal(joinUri(base, ...parts), expected));
  }

  it('refuses to climb above the bucket', () => {
    assert.throws(
      () => joinUri('s3://bucket/a', '../../x'),
      /^StorageError: s3:\/\/bucket\/a: joining '..\/..\/x' climbs above the bucket$/,
    );
    assert.throws(() => joinUri('s3://bucket', '..'), /climbs above the bucket/);
  });
});

describe('dirnameUri and basenameUri', () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['s3://bucket/a/b/c.tif', 's3://bucket/a/b', 'c.tif'],
    ['s3://bucket/c.tif', 's3://bucket', 'c.tif'],
    ['s3://bucket/a/', 's3://bucket', 'a'],
    ['s3://bucket', 's3://bucket', ''],
    ['/a/b/c.tif', '/a/b', 'c.tif'],
    ['/a/b/', '/a', 'b'],
    ['/', '/', ''],
    ['file:///a/b.tif', '/a', 'b.tif'],
  ];
  for (const [uri, dirname, basename] of cases) {
    it(`${uri} -> ${dirname} + ${JSON.stringify(basename)}`, () => {
      assert.equal(dirnameUri(uri), dirname);
      assert.equal(basenameUri(uri), basename);
    });
  }
});

describe('formatS3Uri and compareUtf8', () => {
  it('formats bucket and key', () => {
    assert.equal(formatS3Uri('b1b', ''), 's3://b1b');
    assert.equal(formatS3Uri('b1b', 'k/x'), 's3://b1b/k/x');
  });
  it('orders like S3 (UTF-8 bytes), not like UTF-16 code units', () => {
    // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
    const keys = ['a/\u{1F600}', 'a/\uFF5E', 'a/b.tif', 'a/b/c', 'a/B'];
    assert.deepEqual([...keys].sort(compareUtf8), ['a/B', 'a/b.tif', 'a/b/c', 'a/\uFF5E', 'a/\u{1F600}']);
  });
});
