// chip slice on several threads and in parts: worker threads write byte-identical chips and the
// same annotations as one thread (JPEG source through sharp, uint16 COG with a percentile stretch
// computed once); failures and aborts in a worker surface as the same errors and leave no chip
// half written; parts of a scene, concatenated, are the whole run (ids included); JPEG chips from
// libjpeg-turbo views equal those from packed copies.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { encodeJpeg, jpegEncoder, packPixels } from '../../lib/chip/jpeg.js';
import { partFileName, sliceImages, type SliceImagesOptions } from '../../lib/chip/slice-images.js';
import { defaultSliceWorkers, splitBands } from '../../lib/chip/slice-workers.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { createStorage, portableStorageOptions } from '../../lib/storage/index.js';
import { countingStorage } from '../helpers/counting-storage.js';
import { geobatch } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

const SHARED = resolve(import.meta.dirname, '../../../shared/data');
// 2048 x 1365 RGB JPEG, 7 boxes (SAHI's test data)
const TERRAIN = join(SHARED, 'coco/terrain1.jpg');
const TERRAIN_COCO = join(SHARED, 'coco/terrain1_coco.json');
// 2658 x 2667, 1 band uint16, PixelIsPoint, tiled 256
const COG = join(SHARED, 'cog/cog.tif');

interface Coco {
  images: { id: number; file_name: string }[];
  annotations: { id: number; image_id: number }[];
  categories: unknown[];
}

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const names = (await readdir(join(dir, 'images'))).sort();
  return new Map(
    await Promise.all(names.map(async (n) => [n, await readFile(join(dir, 'images', n))] as const)),
  );
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

describe('chip slice on worker threads', () => {
  let dir: string;
  const storage = createStorage();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-parallel-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [name, options] of [
    ['a JPEG with COCO labels (sharp spans)', { images: TERRAIN, coco: TERRAIN_COCO, size: 100 }],
    ['a uint16 COG with a percentile stretch (blocks, statistics once)', { images: COG, size: 128 }],
  ] as const) {
    it(`gives the files and annotations of one thread for ${name}`, async () => {
      const one = join(dir, `one-${name.length}`);
      const three = join(dir, `three-${name.length}`);
      const progress: number[] = [];
      const a = await sliceImages(storage, { ...options, out: one, workers: 1 });
      const b = await sliceImages(storage, {
        ...options,
        out: three,
        workers: 3,
        onProgress: (done, total) => progress.push(done, total),
      });
      assert.ok(a.chips >= 256, `enough chips (${a.chips}) to use workers`);
      assert.deepEqual(b, { ...a, annotationsUri: b.annotationsUri, threads: 3 });
      assert.equal(a.threads, 1);
      const [fa, fb] = [await filesOf(one), await filesOf(three)];
      assert.equal(fb.size, a.chips);
      assert.deepEqual([...fb.keys()], [...fa.keys()]);
      for (const [n, bytes] of fa) assert.ok(bytes.equals(fb.get(n)!), `${n} differs`);
      assert.equal(
        readFileSync(join(three, 'annotations.json'), 'utf8'),
        readFileSync(join(one, 'annotations.json'), 'utf8'),
      );
      // progress from every worker adds up to the chips, never beyond
      assert.equal(progress[progress.length - 2], a.chips);
      assert.ok(progress.every((v, i) => i % 2 === 1 || v <= a.chips));
    });
  }

  it('stops every worker at the first failure, names the file and writes no annotations', async () => {
    // a 2,048 px tiled 8-bit scene (nodata 0, so read block by block) whose last blocks are cut off
    const path = join(dir, 'cut-short.tif');
    const size = 2048;
    const pixels = new Uint8Array(size * size * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24 || 1;
    await writeGeoTiff(path, pixels, {
      width: size,
      height: size,
      bands: 3,
      dtype: 'uint8',
      tileSize: 256,
      nodata: 0,
      geotransform: [500000, 1, 0, 4000000, 0, -1],
      epsg: 32633,
    });
    const whole = await readFile(path);
    await writeFile(path, whole.subarray(0, Math.floor(whole.length * 0.7)));
    const out = join(dir, 'cut-short-out');
    await assert.rejects(sliceImages(storage, { images: path, out, size: 100, overlap: 0, workers: 2 }), {
      name: 'RasterError',
      message: new RegExp(`^${path}: `),
    });
    await assert.rejects(readFile(join(out, 'annotations.json')), { code: 'ENOENT' });
    const left = await readdir(join(out, 'images')).catch(() => []);
    assert.deepEqual(
      left.filter((n) => n.startsWith('.')),
      [],
      'no temporary chip files left behind',
    );
  });

  it('an abort stops the workers, rejects with AbortError and leaves no half-written chip', async () => {
    const controller = new AbortController();
    const out = join(dir, 'aborted');
    await assert.rejects(
      sliceImages(storage, {
        images: COG,
        out,
        size: 64,
        workers: 2,
        signal: controller.signal,
        onProgress: (done) => {
          if (done > 40) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    await assert.rejects(readFile(join(out, 'annotations.json')), { code: 'ENOENT' });
    const left = await readdir(join(out, 'images'));
    assert.ok(left.length > 0 && left.length < 1000, `some chips were written (${left.length})`);
    assert.deepEqual(
      left.filter((n) => n.startsWith('.')),
      [],
    );
  });

  it('uses workers only with a storage it can rebuild in a thread', () => {
    const options = portableStorageOptions(createStorage({ cacheDir: '/tmp/x' }));
    assert.equal(options?.cacheDir, '/tmp/x');
    assert.equal(typeof options?.cwd, 'string');
    assert.deepEqual(
      portableStorageOptions(createStorage({ s3: { endpoint: 'http://127.0.0.1:1', region: 'x' } }))?.s3,
      { endpoint: 'http://127.0.0.1:1', region: 'x' },
    );
    assert.equal(portableStorageOptions(createStorage({ s3: new S3Client({ region: 'x' }) })), undefined);
    assert.equal(
      portableStorageOptions(
        createStorage({
          s3: { region: 'x', credentials: async () => ({ accessKeyId: 'a', secretAccessKey: 'b' }) },
        }),
      ),
      undefined,
    );
    assert.equal(portableStorageOptions(countingStorage(createStorage()).storage), undefined);
  });

  it('uses half the cores by default, at most 4', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 8, 64].map((cores) => defaultSliceWorkers(cores)),
      [1, 1, 1, 2, 4, 4],
    );
  });

  it('splits bands into contiguous runs of about equal chips', () => {
    const band = (top: number, chips: number) => ({
      top,
      bottom: top + 10,
      chips: Array.from({ length: chips }, (_, i) => ({
        window: [i, top, i + 1, top + 10] as const,
        fileName: `${top}-${i}`,
      })),
    });
    const bands = [band(0, 5), band(10, 5), band(20, 5), band(30, 5), band(40, 1)];
    const runs = splitBands(bands, 2);
    assert.deepEqual(
      runs.map((r) => r.map((b) => b.top)),
      [
        [0, 10],
        [20, 30, 40],
      ],
    );
    assert.deepEqual(splitBands(bands, 10).length, 5, 'never an empty run');
    assert.deepEqual(splitBands(bands, 1), [bands]);
  });
});

describe('chip slice on worker threads, S3 to S3', () => {
  let server: S3rverHandle;
  let dir: string;
  before(async () => {
    server = await startS3rver();
    dir = await mkdtemp(join(tmpdir(), 'chip-parallel-s3-'));
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('workers read the COG by ranges and upload the chips a local run writes', async () => {
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 'cache') });
    const bucket = await server.createBucket();
    await s3.writeAtomic(`s3://${bucket}/scenes/cog.tif`, readFileSync(COG));
    const local = join(dir, 'local');
    const a = await sliceImages(createStorage(), { images: COG, out: local, size: 128, workers: 1 });
    const b = await sliceImages(s3, {
      images: `s3://${bucket}/scenes/cog.tif`,
      out: `s3://${bucket}/chips`,
      size: 128,
      workers: 2,
    });
    assert.equal(b.chips, a.chips);
    assert.equal(b.threads, 2);
    const files = await filesOf(local);
    const keys: string[] = [];
    for await (const o of s3.list(`s3://${bucket}/chips/images/`)) keys.push(o.uri);
    assert.equal(keys.length, a.chips);
    for (const name of [...files.keys()].filter((_, i) => i % 37 === 0)) {
      assert.ok((await s3.read(`s3://${bucket}/chips/images/${name}`)).equals(files.get(name)!), name);
    }
    // the cache holds no copy of the scene: it was read by ranges
    const cached = await readdir(join(dir, 'cache'), { recursive: true }).catch(() => []);
    assert.deepEqual(
      cached.filter((n) => String(n).endsWith('.tif')),
      [],
    );
  });
});

describe('chip slice in parts', () => {
  let dir: string;
  const storage = createStorage();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-parts-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const options: Omit<SliceImagesOptions, 'out'> = { images: TERRAIN, coco: TERRAIN_COCO, size: 256 };

  it('parts concatenated are the whole run: chips, images, annotations and their ids', async () => {
    const whole = join(dir, 'whole');
    await sliceImages(storage, { ...options, out: whole });
    const parts = join(dir, 'parts');
    const count = 3;
    const results = [];
    for (let index = 0; index < count; index++) {
      results.push(await sliceImages(storage, { ...options, out: parts, part: { index, count } }));
    }
    assert.deepEqual(
      results.map((r) => r.annotationsUri),
      [1, 2, 3].map((k) => join(parts, `annotations.part-${k}-of-3.json`)),
    );
    assert.ok(results.every((r) => r.chips > 0));
    // 7 rows of windows split 2, 2, 3, contiguous
    assert.deepEqual(
      results.map((r) => r.rows?.windows),
      [2, 2, 3],
    );
    assert.ok(results[0]!.rows!.bottom > results[1]!.rows!.top && results[0]!.rows!.top === 0);
    await assert.rejects(readFile(join(parts, 'annotations.json')), { code: 'ENOENT' });
    const expected = readJson<Coco>(join(whole, 'annotations.json'));
    const pieces = results.map((r) => readJson<Coco>(r.annotationsUri));
    assert.deepEqual(
      pieces.flatMap((p) => p.images),
      expected.images,
    );
    assert.deepEqual(
      pieces.flatMap((p) => p.annotations),
      expected.annotations,
    );
    assert.ok(expected.annotations.length > 0);
    for (const p of pieces) assert.deepEqual(p.categories, expected.categories);
    const [a, b] = [await filesOf(whole), await filesOf(parts)];
    assert.deepEqual([...b.keys()], [...a.keys()]);
    for (const [n, bytes] of a) assert.ok(bytes.equals(b.get(n)!), `${n} differs`);
  });

  it('a part with no rows of windows writes empty part files', async () => {
    const out = join(dir, 'many');
    // 1365 px high at 256 px and overlap 0.2: 7 rows of windows, so the first of 10 parts has none
    const r = await sliceImages(storage, { ...options, out, part: { index: 0, count: 10 } });
    assert.equal(r.chips, 0);
    assert.equal(r.rows, null);
    assert.equal(r.annotationsUri, join(out, partFileName('annotations', { index: 0, count: 10 })));
    const coco = readJson<Coco>(r.annotationsUri);
    assert.deepEqual([coco.images, coco.annotations], [[], []]);
  });

  it('the CLI takes --part k/n and --workers, and refuses bad values', async () => {
    const out = join(dir, 'cli');
    const r = await geobatch([
      'chip',
      'slice',
      '--images',
      TERRAIN,
      '--out',
      out,
      '--part',
      '2/2',
      '--workers',
      '1',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).annotationsUri, join(out, 'annotations.part-2-of-2.json'));
    for (const bad of ['0/2', '3/2', '2', 'a/b']) {
      const e = await geobatch(['chip', 'slice', '--images', TERRAIN, '--out', out, '--part', bad]);
      assert.equal(e.code, 2);
      assert.match(e.stderr, new RegExp(`--part: expected k/n with 1 <= k <= n .* but got '${bad}'`));
    }
    const w = await geobatch(['chip', 'slice', '--images', TERRAIN, '--out', out, '--workers', '0']);
    assert.equal(w.code, 2);
    assert.match(w.stderr, /--workers/);
  });
});

describe('JPEG chips', () => {
  const width = 300;
  const height = 200;
  const stride = 1000;
  const source = Buffer.alloc(stride * (height + 50) * 3);
  for (let i = 0; i < source.length; i++)
    source[i] = ((i % 3) * 80 + ((i / 3) % stride) / 4 + i / (stride * 3)) & 255;
  const view = { data: source.subarray((10 * stride + 123) * 3), width, height, channels: 3, stride };

  it('encodes a strided view exactly as its packed copy, and close to the pixels', async () => {
    assert.equal(jpegEncoder(3), 'libjpeg-turbo');
    const packed = packPixels(view);
    assert.equal(packed.length, width * height * 3);
    const a = await encodeJpeg(view, 90);
    const b = await encodeJpeg({ ...view, data: packed, stride: width }, 90);
    assert.ok(a.equals(b));
    const decoded = await sharp(a).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([decoded.info.width, decoded.info.height, decoded.info.channels], [width, height, 3]);
    let error = 0;
    for (let i = 0; i < packed.length; i++) error += Math.abs(decoded.data[i]! - packed[i]!);
    assert.ok(error / packed.length < 3, `mean absolute error ${error / packed.length}`);
  });

  it('encodes a view whose last row ends the buffer (packed first) and grey chips', async () => {
    const tail = { ...view, data: source.subarray(source.length - ((height - 1) * stride + width) * 3) };
    const jpeg = await encodeJpeg(tail, 80);
    assert.deepEqual((await sharp(jpeg).metadata()).width, width);
    const grey = Buffer.alloc(64 * 64, 77);
    const g = await sharp(
      await encodeJpeg({ data: grey, width: 64, height: 64, channels: 1, stride: 64 }, 90),
    ).metadata();
    assert.deepEqual([g.channels, g.space], [1, 'b-w']);
  });

  it('RGBA chips go through sharp and lose their alpha', async () => {
    assert.equal(jpegEncoder(4), 'sharp');
    const rgba = Buffer.alloc(32 * 32 * 4, 200);
    const meta = await sharp(
      await encodeJpeg({ data: rgba, width: 32, height: 32, channels: 4, stride: 32 }, 90),
    ).metadata();
    assert.deepEqual([meta.format, meta.channels], ['jpeg', 3]);
  });
});
