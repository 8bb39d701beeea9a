import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { DownloadCache } from '../../lib/storage/cache.js';
import { StorageError } from '../../lib/storage/errors.js';
import { expandInputs, globToRegExp, type InputItem } from '../../lib/storage/inputs.js';
import { LocalStorage } from '../../lib/storage/local.js';
import { S3Storage } from '../../lib/storage/s3.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

/** `[id, uri relative to root]` pairs, for short assertions. */
function short(items: readonly InputItem[], root: string): Array<[string, string]> {
  return items.map((item) => [item.id, item.uri.slice(root.length)]);
}

async function rejectsWith(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof StorageError, String(error));
    assert.equal(error.code, 'NotFound');
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

describe('expandInputs: local', () => {
  let root: string;
  const storage = new LocalStorage();
  const files = [
    'data/a.tif',
    'data/b.TIF',
    'data/notes.txt',
    'data/.hidden.tif',
    'data/._a.tif',
    'data/.cache/x.tif',
    'data/sub/a.tif',
    'data/sub/c.tif',
    'other/a.tif',
    'other/my scene (1).tif',
    'other/a-2.jpg',
    'cases/A.tif',
    'cases/a.tif',
  ];
  before(async () => {
    root = `${await mkdtemp(join(tmpdir(), 'geobatch-inputs-'))}/`;
    for (const file of files) {
      await mkdir(dirname(join(root, file)), { recursive: true });
      await writeFile(join(root, file), file);
    }
    await mkdir(join(root, 'empty'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('takes a directory recursively, by extension (any case), skipping hidden and ._ files', async () => {
    const items = await expandInputs(['data'], storage, { baseDir: root });
    assert.deepEqual(short(items, root), [
      ['a', 'data/a.tif'],
      ['b', 'data/b.TIF'],
      ['a-2', 'data/sub/a.tif'],
      ['c', 'data/sub/c.tif'],
    ]);
  });

  it('takes a glob relative to the base directory', async () => {
    assert.deepEqual(short(await expandInputs(['data/*.tif'], storage, { baseDir: root }), root), [
      ['a', 'data/a.tif'],
    ]);
    assert.deepEqual(short(await expandInputs(['data/**/*.tif'], storage, { baseDir: root }), root), [
      ['a', 'data/a.tif'],
      ['a-2', 'data/sub/a.tif'],
      ['c', 'data/sub/c.tif'],
    ]);
    assert.deepEqual(short(await expandInputs(['*/{a,c}.tif'], storage, { baseDir: root }), root), [
      ['a', 'cases/a.tif'],
      ['a-2', 'data/a.tif'],
      ['a-3', 'other/a.tif'],
    ]);
  });

  it('takes a named file as it is, whatever its extension', async () => {
    assert.deepEqual(short(await expandInputs(['data/notes.txt'], storage, { baseDir: root }), root), [
      ['notes', 'data/notes.txt'],
    ]);
  });

  it('resolves absolute paths and file:// URIs without the base directory', async () => {
    const items = await expandInputs(
      [join(root, 'data/a.tif'), pathToFileURL(join(root, 'other/a.tif')).href],
      storage,
      {
        baseDir: '/nonexistent',
      },
    );
    assert.deepEqual(short(items, root), [
      ['a', 'data/a.tif'],
      ['a-2', 'other/a.tif'],
    ]);
  });

  it('sorts and de-duplicates across patterns', async () => {
    const items = await expandInputs(['other/a.tif', 'data/*.tif', 'data/a.tif'], storage, { baseDir: root });
    assert.deepEqual(short(items, root), [
      ['a', 'data/a.tif'],
      ['a-2', 'other/a.tif'],
    ]);
  });

  it('makes ids unique without taking a stem another file has, case-insensitively', async () => {
    const items = await expandInputs(['other', 'cases'], storage, { baseDir: root });
    assert.deepEqual(short(items, root), [
      ['A', 'cases/A.tif'],
      ['a-3', 'cases/a.tif'],
      ['a-2', 'other/a-2.jpg'],
      ['a-4', 'other/a.tif'],
      ['my_scene__1_', 'other/my scene (1).tif'],
    ]);
    for (const { id } of items) assert.match(id, /^[A-Za-z0-9._-]+$/);
  });

  it('takes the extensions it is given', async () => {
    assert.deepEqual(
      short(await expandInputs(['data/'], storage, { baseDir: root, extensions: ['.TXT'] }), root),
      [['notes', 'data/notes.txt']],
    );
  });

  it('a pattern that matches nothing names the label, index and pattern', async () => {
    const options = { baseDir: root, label: 'pipeline.yaml: inputs.scenes' };
    await rejectsWith(
      expandInputs(['data/a.tif', 'data/*.png'], storage, options),
      `pipeline.yaml: inputs.scenes[1]: 'data/*.png' matched no files (searched ${root}data/*.png)`,
    );
    await rejectsWith(
      expandInputs(['missing.tif'], storage, options),
      `pipeline.yaml: inputs.scenes[0]: 'missing.tif' matched no files (${root}missing.tif does not exist)`,
    );
    await rejectsWith(
      expandInputs(['empty'], storage, options),
      `pipeline.yaml: inputs.scenes[0]: 'empty' matched no files (no .tif/.tiff/.jp2/.png/.jpg/.jpeg/.vrt files under ${root}empty/)`,
    );
    await rejectsWith(
      expandInputs(['nothere/*.tif'], storage, { baseDir: root }),
      /^inputs\[0\]: 'nothere\/\*\.tif' matched no files/,
    );
  });

  it('an invalid pattern names the label and index too', async () => {
    await assert.rejects(
      expandInputs(['gs://bucket/x.tif'], storage, { label: 'inputs.scenes' }),
      /^StorageError: inputs\.scenes\[0\]: gs:\/\/bucket\/x\.tif: unsupported scheme 'gs'/,
    );
  });
});

describe('expandInputs: S3', () => {
  let server: S3rverHandle;
  let storage: S3Storage;
  let cacheDir: string;
  let bucket: string;
  let root: string;
  before(async () => {
    server = await startS3rver();
    cacheDir = await mkdtemp(join(tmpdir(), 'geobatch-inputs-cache-'));
    storage = new S3Storage(new S3Client(server.clientConfig), {
      listPageSize: 2,
      cache: new DownloadCache(cacheDir),
    });
    bucket = await server.createBucket();
    root = `s3://${bucket}/`;
    for (const key of [
      'scenes/a.tif',
      'scenes/b.tif',
      'scenes/sub/c.tif',
      'scenes/meta.json',
      'scenes/._a.tif',
      'scenes/.hidden/d.tif',
      'scenes2/e.tif',
      'other/a.tif',
    ]) {
      await storage.writeAtomic(root + key, key);
    }
  });
  after(async () => {
    storage.client.destroy();
    await server.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  const cases: ReadonlyArray<readonly [string, readonly string[], Array<[string, string]>]> = [
    [
      'a prefix (recursive, by extension, hidden skipped)',
      ['scenes/'],
      [
        ['a', 'scenes/a.tif'],
        ['b', 'scenes/b.tif'],
        ['c', 'scenes/sub/c.tif'],
      ],
    ],
    [
      'a prefix without its trailing slash (a directory, not scenes2/)',
      ['scenes'],
      [
        ['a', 'scenes/a.tif'],
        ['b', 'scenes/b.tif'],
        ['c', 'scenes/sub/c.tif'],
      ],
    ],
    [
      'a glob in one level',
      ['scenes/*.tif'],
      [
        ['a', 'scenes/a.tif'],
        ['b', 'scenes/b.tif'],
      ],
    ],
    [
      'a recursive glob',
      ['scenes/**/*.tif'],
      [
        ['a', 'scenes/a.tif'],
        ['b', 'scenes/b.tif'],
        ['c', 'scenes/sub/c.tif'],
      ],
    ],
    [
      'alternatives',
      ['scenes/{a,b}.tif'],
      [
        ['a', 'scenes/a.tif'],
        ['b', 'scenes/b.tif'],
      ],
    ],
    [
      'a wildcard mid-name',
      ['sc*/?.tif'],
      [
        ['a', 'scenes/a.tif'],
        ['b', 'scenes/b.tif'],
        ['e', 'scenes2/e.tif'],
      ],
    ],
    ['one object, whatever its extension', ['scenes/meta.json'], [['meta', 'scenes/meta.json']]],
    [
      'colliding stems',
      ['other/a.tif', 'scenes/*.tif'],
      [
        ['a', 'other/a.tif'],
        ['a-2', 'scenes/a.tif'],
        ['b', 'scenes/b.tif'],
      ],
    ],
  ];
  for (const [label, patterns, expected] of cases) {
    it(`expands ${label}`, async () => {
      const absolute = await expandInputs(
        patterns.map((p) => root + p),
        storage,
      );
      assert.deepEqual(short(absolute, root), expected);
    });
  }

  it('resolves relative patterns against an s3:// base directory', async () => {
    const items = await expandInputs(['../scenes/*.tif'], storage, { baseDir: `${root}pipelines/` });
    assert.deepEqual(short(items, root), [
      ['a', 'scenes/a.tif'],
      ['b', 'scenes/b.tif'],
    ]);
  });

  it('a pattern that matches nothing names it', async () => {
    await rejectsWith(
      expandInputs([`${root}scenes/*.png`], storage, { label: 'inputs.scenes' }),
      `inputs.scenes[0]: '${root}scenes/*.png' matched no files (listed ${root}scenes/* and matched ${root}scenes/*.png)`,
    );
    await rejectsWith(
      expandInputs([`${root}nothing/`], storage, { label: 'inputs.scenes' }),
      /^inputs\.scenes\[0\]: 's3:\/\/[^']+\/nothing\/' matched no files \(no \.tif\/.* objects under s3:\/\/.*\/nothing\/\)$/,
    );
  });
});

describe('globToRegExp', () => {
  const cases: ReadonlyArray<readonly [string, readonly string[], readonly string[]]> = [
    ['a/*.tif', ['a/x.tif', 'a/.tif'], ['a/b/x.tif', 'a/x.tiff', 'b/x.tif']],
    ['a/**/*.tif', ['a/x.tif', 'a/b/x.tif', 'a/b/c/x.tif'], ['b/x.tif', 'a/x.png']],
    ['a/**', ['a/x', 'a/b/c'], ['b/x']],
    ['img?.tif', ['img1.tif', 'imgA.tif'], ['img10.tif', 'img/.tif']],
    ['img[0-2].tif', ['img0.tif', 'img2.tif'], ['img3.tif']],
    ['img[!0-2].tif', ['img3.tif'], ['img1.tif', 'img/.tif']],
    ['{a,b/c}.tif', ['a.tif', 'b/c.tif'], ['c.tif']],
    ['x{1,{2,3}}', ['x1', 'x2', 'x3'], ['x4']],
    ['a.b+(c)$^|', ['a.b+(c)$^|'], ['aXb+(c)$^|']],
    ['\\*.tif', ['*.tif'], ['x.tif']],
    ['unclosed[.tif', ['unclosed[.tif'], []],
    ['unclosed{.tif', ['unclosed{.tif'], []],
  ];
  for (const [glob, matches, misses] of cases) {
    it(glob, () => {
      const pattern = globToRegExp(glob);
      for (const key of matches) assert.ok(pattern.test(key), `${glob} should match ${key}`);
      for (const key of misses) assert.ok(!pattern.test(key), `${glob} should not match ${key}`);
    });
  }
});
