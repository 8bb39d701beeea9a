// `chip retile` on real files: tile names and sizes, pixels against the source window (both read
// with geotiff.js), georeferencing against gdalinfo and gdal_retile.py, no-data and data types,
// rasters without georeferencing, reruns, S3 in and out (s3rver), and bad input.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromFile } from 'geotiff';
import { retileImage, type RetileIndex } from '../../lib/chip/retile.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { tempDir } from '../raster/fixtures.js';
import { epsgOfWkt, gdalinfo, gdalSkip } from '../raster/gdal-tools.js';
import { gdal, writeScene } from '../raster/scene-fixtures.js';

const storage = createStorage();
const data = resolve(import.meta.dirname, '../../../shared/data');
const COG = join(data, 'cog/cog.tif'); // PixelIsPoint, uint16, 512 px tiles
const COG_NODATA = join(data, 'cog/cog_nodata.tif'); // PixelIsPoint, nodata 1
const SPACENET = join(data, 'spacenet/sample_geotiff.tif'); // 900 x 900 uint16 strips, nodata 0
const MS1 = join(data, 'spacenet/ms1.tif'); // 300 x 300 float64, 1-row strips
const COG_RGB = join(data, 'cog/cog_rgb.tif'); // 383 x 232, YCbCr JPEG, 128 px tiles

const retileSkip: false | string = /^GDAL /.test(
  spawnSync('gdal_retile.py', ['--version'], { encoding: 'utf8' }).stdout ?? '',
)
  ? false
  : 'gdal_retile.py not found: apt-get install python3-gdal to compare with it';

type Samples = ArrayLike<number>;

async function pixels(path: string, window?: [number, number, number, number]): Promise<Samples> {
  const tiff = await fromFile(path);
  try {
    const image = await tiff.getImage();
    return (await image.readRasters({
      interleave: true,
      ...(window ? { window } : {}),
    })) as unknown as Samples;
  } finally {
    await tiff.close();
  }
}

function assertSameSamples(actual: Samples, expected: Samples, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: sample count`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(a === e || (Number.isNaN(a) && Number.isNaN(e))))
      assert.fail(`${what}: sample ${i} is ${a}, expected ${e}`);
  }
}

function assertGeoTransform(
  actual: readonly number[] | undefined,
  expected: readonly number[],
  what: string,
): void {
  assert.ok(actual, `${what}: has a geotransform`);
  actual.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]!) < 1e-6, `${what}: geotransform[${i}] ${v} vs ${expected[i]}`),
  );
}

function readIndex(out: string): RetileIndex {
  return JSON.parse(readFileSync(join(out, 'tiles.json'), 'utf8')) as RetileIndex;
}

/** Every tile's pixels equal the source's window. */
async function assertTilesMatchSource(source: string, out: string): Promise<void> {
  for (const t of readIndex(out).tiles) {
    const { col, row, width, height } = t.window;
    assertSameSamples(
      await pixels(join(out, t.name)),
      await pixels(source, [col, row, col + width, row + height]),
      t.name,
    );
  }
}

describe('chip retile', () => {
  const tmp = tempDir('retile');
  after(() => tmp.cleanup());

  it('names tiles <stem>_<row>_<col>.tif from 1, truncates edges, overlaps, and copies pixels exactly', async () => {
    const out = join(tmp.dir, 'cog');
    const r = await retileImage(storage, COG, { out, size: 1000, overlap: 100 });
    assert.deepEqual([r.rows, r.cols, r.tiles, r.written, r.skipped], [3, 3, 9, 9, 0]);
    const index = readIndex(out);
    assert.deepEqual(
      index.tiles.map((t) => [t.name, t.window.col, t.window.row, t.window.width, t.window.height]),
      [
        ['cog_1_1.tif', 0, 0, 1000, 1000],
        ['cog_1_2.tif', 900, 0, 1000, 1000],
        ['cog_1_3.tif', 1800, 0, 858, 1000],
        ['cog_2_1.tif', 0, 900, 1000, 1000],
        ['cog_2_2.tif', 900, 900, 1000, 1000],
        ['cog_2_3.tif', 1800, 900, 858, 1000],
        ['cog_3_1.tif', 0, 1800, 1000, 867],
        ['cog_3_2.tif', 900, 1800, 1000, 867],
        ['cog_3_3.tif', 1800, 1800, 858, 867],
      ],
    );
    assert.deepEqual(readdirSync(out).sort(), [...index.tiles.map((t) => t.name), 'tiles.json'].sort());
    await assertTilesMatchSource(COG, out);
  });

  it(
    'georeferences PixelIsPoint tiles with GDAL placement, as gdal_retile.py does',
    { skip: gdalSkip || retileSkip },
    async () => {
      const ours = join(tmp.dir, 'cog'); // from the test above
      const theirs = join(tmp.dir, 'cog-gdal');
      mkdirSync(theirs, { recursive: true });
      const r = spawnSync(
        'gdal_retile.py',
        ['-q', '-ps', '1000', '1000', '-overlap', '100', '-targetDir', theirs, COG],
        {
          encoding: 'utf8',
        },
      );
      assert.equal(r.status, 0, r.stderr);
      const names = readdirSync(theirs)
        .filter((n) => n.endsWith('.tif'))
        .sort();
      assert.deepEqual(
        names,
        readIndex(ours)
          .tiles.map((t) => t.name)
          .sort(),
      );
      const source = gdalinfo(COG);
      for (const name of names) {
        const a = gdalinfo(join(ours, name));
        const b = gdalinfo(join(theirs, name));
        assert.deepEqual(a.size, b.size, `${name}: size`);
        assertGeoTransform(a.geoTransform, b.geoTransform!, name);
        assert.equal(epsgOfWkt(a.coordinateSystem!.wkt), 32621);
        assert.equal(epsgOfWkt(b.coordinateSystem!.wkt), 32621);
        assert.deepEqual(
          a.bands.map((x) => [x.type, x.block]),
          [['UInt16', [512, 512]]],
        );
      }
      // GDAL's origin of the PixelIsPoint source is half a pixel up-left of the tie point; the tiles start there
      const first = gdalinfo(join(ours, 'cog_1_1.tif'));
      assertGeoTransform(first.geoTransform, source.geoTransform!, 'cog_1_1');
      assert.equal(first.metadata?.['']?.AREA_OR_POINT, 'Area');
      const index = readIndex(ours);
      const t = index.tiles.find((x) => x.name === 'cog_2_3.tif')!;
      assertGeoTransform(gdalinfo(join(ours, t.name)).geoTransform, t.geotransform!, 'index geotransform');
    },
  );

  it(
    'keeps no-data, data type and georeferencing of a striped uint16 scene',
    { skip: gdalSkip },
    async () => {
      const out = join(tmp.dir, 'spacenet');
      const r = await retileImage(storage, SPACENET, { out, size: 256 });
      assert.deepEqual([r.rows, r.cols, r.nodata, r.dtype, r.epsg], [4, 4, 0, 'uint16', 32616]);
      const source = gdalinfo(SPACENET);
      const sgt = source.geoTransform!;
      for (const t of readIndex(out).tiles) {
        const info = gdalinfo(join(out, t.name));
        assert.deepEqual(info.size, [t.window.width, t.window.height]);
        assert.deepEqual(info.size, [t.col === 4 ? 900 - 768 : 256, t.row === 4 ? 900 - 768 : 256]);
        assert.equal(info.bands[0]!.type, 'UInt16');
        assert.equal(info.bands[0]!.noDataValue, 0);
        assert.equal(epsgOfWkt(info.coordinateSystem!.wkt), 32616);
        const expected = [
          sgt[0]! + t.window.col * sgt[1]!,
          sgt[1]!,
          0,
          sgt[3]! + t.window.row * sgt[5]!,
          0,
          sgt[5]!,
        ];
        assertGeoTransform(info.geoTransform, expected, t.name);
      }
      await assertTilesMatchSource(SPACENET, out);
    },
  );

  it('keeps no-data of a PixelIsPoint COG with no-data', { skip: gdalSkip }, async () => {
    const out = join(tmp.dir, 'cog-nodata');
    await retileImage(storage, COG_NODATA, { out, size: 2000, compress: 'none' });
    const info = gdalinfo(join(out, 'cog_nodata_2_2.tif'));
    assert.equal(info.bands[0]!.noDataValue, 1);
    assert.deepEqual(info.size, [658, 667]);
    await assertTilesMatchSource(COG_NODATA, out);
  });

  it('retiles float64 1-row strips and multiband int16 tiles with overlap', { skip: gdalSkip }, async () => {
    const floats = join(tmp.dir, 'ms1');
    await retileImage(storage, MS1, { out: floats, size: 128, overlap: 32 });
    assert.equal(readIndex(floats).dtype, 'float64');
    assert.equal(gdalinfo(join(floats, 'ms1_3_3.tif')).bands[0]!.type, 'Float64');
    await assertTilesMatchSource(MS1, floats);

    const src = join(tmp.dir, 'in/four.tif');
    await writeScene(src, {
      width: 203,
      height: 150,
      bands: 4,
      dtype: 'int16',
      nodata: -9999,
      nodataCorner: 40,
      tileSize: 32,
    });
    // the same scene re-encoded as pixel-interleaved LZW strips and band-separate (planar) tiles
    const strips = join(tmp.dir, 'in/four-strips.tif');
    gdal('gdal_translate', ['-q', '-co', 'COMPRESS=LZW', '-co', 'BLOCKYSIZE=7', src, strips]);
    const planar = join(tmp.dir, 'in/four-planar.tif');
    gdal('gdal_translate', [
      '-q',
      '-co',
      'TILED=YES',
      '-co',
      'BLOCKXSIZE=16',
      '-co',
      'BLOCKYSIZE=16',
      '-co',
      'INTERLEAVE=BAND',
      src,
      planar,
    ]);
    for (const input of [src, strips, planar]) {
      const out = join(tmp.dir, `out-${input.split('/').at(-1)}`);
      const r = await retileImage(storage, input, { out, size: 64, overlap: 10 });
      assert.deepEqual([r.bands, r.dtype, r.nodata, r.rows, r.cols], [4, 'int16', -9999, 3, 4]);
      const info = gdalinfo(join(out, readIndex(out).tiles[0]!.name));
      assert.deepEqual(
        info.bands.map((b) => [b.type, b.noDataValue]),
        Array(4).fill(['Int16', -9999]),
      );
      await assertTilesMatchSource(input, out);
    }
  });

  it('keeps a NaN no-data of float32 tiles and skips them on a rerun', { skip: gdalSkip }, async () => {
    const src = join(tmp.dir, 'in/nan.tif');
    await writeScene(src, {
      width: 70,
      height: 60,
      bands: 2,
      dtype: 'float32',
      nodata: NaN,
      nodataCorner: 30,
    });
    const out = join(tmp.dir, 'nan');
    await retileImage(storage, src, { out, size: 32, overlap: 4 });
    assert.equal(readIndex(out).nodata, 'nan');
    const info = gdalinfo(join(out, 'nan_1_1.tif'));
    assert.deepEqual(
      info.bands.map((b) => [b.type, b.noDataValue]),
      [
        ['Float32', 'NaN'],
        ['Float32', 'NaN'],
      ],
    );
    await assertTilesMatchSource(src, out);
    const again = await retileImage(storage, src, { out, size: 32, overlap: 4 });
    assert.deepEqual([again.written, again.skipped], [0, 6]);
  });

  it('writes a YCbCr JPEG source as 8-bit RGB tiles', async () => {
    const out = join(tmp.dir, 'ycbcr');
    const r = await retileImage(storage, COG_RGB, { out, size: 200, overlap: 20 });
    assert.deepEqual([r.bands, r.dtype, r.rows, r.cols], [3, 'uint8', 2, 3]);
    assert.match(r.warnings.join('\n'), /ycbcr pixels are written as 8-bit RGB tiles/);
    const tiff = await fromFile(COG_RGB);
    const image = await tiff.getImage();
    for (const t of readIndex(out).tiles) {
      const { col, row, width, height } = t.window;
      const rgb = (await image.readRGB({
        window: [col, row, col + width, row + height],
        interleave: true,
      })) as unknown as Samples;
      assertSameSamples(await pixels(join(out, t.name)), rgb, t.name);
    }
    await tiff.close();
  });

  it(
    'retiles a TIFF without georeferencing into tiles without georeferencing',
    { skip: gdalSkip },
    async () => {
      const src = join(tmp.dir, 'in/plain.tif');
      await writeScene(src, { width: 90, height: 70, bands: 1, dtype: 'uint8', geotransform: null });
      const out = join(tmp.dir, 'plain');
      const r = await retileImage(storage, src, { out, size: 50 });
      assert.equal(r.epsg, null);
      assert.match(r.warnings.join('\n'), /has no georeferencing: the tiles have none either/);
      const index = readIndex(out);
      assert.ok(index.tiles.every((t) => t.geotransform === null));
      const info = gdalinfo(join(out, 'plain_2_2.tif'));
      assert.equal(info.geoTransform, undefined);
      assert.equal(info.coordinateSystem, undefined);
      assert.deepEqual(info.size, [40, 20]);
      await assertTilesMatchSource(src, out);
    },
  );

  it('skips complete tiles on a rerun and writes only what is missing', async () => {
    const out = join(tmp.dir, 'rerun');
    await retileImage(storage, SPACENET, { out, size: 300 });
    const mtimes = () => new Map(readdirSync(out).map((n) => [n, statSync(join(out, n)).mtimeMs]));
    const first = mtimes();
    const again = await retileImage(storage, SPACENET, { out, size: 300 });
    assert.deepEqual([again.written, again.skipped], [0, 9]);
    assert.deepEqual(mtimes(), first);

    // a tile removed from a complete output: only that tile is written again
    await rm(join(out, 'sample_geotiff_2_3.tif'));
    const resumed = await retileImage(storage, SPACENET, { out, size: 300 });
    assert.deepEqual([resumed.written, resumed.skipped], [1, 8]);
    const now = mtimes();
    for (const [name, t] of first)
      if (name !== 'sample_geotiff_2_3.tif' && name !== 'tiles.json') assert.equal(now.get(name), t, name);
    await assertTilesMatchSource(SPACENET, out);

    // other settings: the old index is not trusted and tiles of another size are rewritten
    const other = await retileImage(storage, SPACENET, { out, size: 300, overlap: 30 });
    assert.deepEqual([other.written, other.skipped], [16, 0]);
    assert.equal(readIndex(out).overlap, 30);
    await assertTilesMatchSource(SPACENET, out);
  });

  it('resumes an interrupted run: no index until the end, finished rows kept', async () => {
    const out = join(tmp.dir, 'interrupted');
    const stop = new AbortController();
    await assert.rejects(
      retileImage(storage, SPACENET, {
        out,
        size: 300,
        signal: stop.signal,
        onProgress: (done) => {
          if (done >= 3) stop.abort(new Error('stopped by the test'));
        },
      }),
    );
    assert.ok(!existsSync(join(out, 'tiles.json')), 'no index after an interrupted run');
    // no temporary files: only the finished row and the run file
    assert.deepEqual(readdirSync(out).sort(), [
      '.retile-run.json',
      'sample_geotiff_1_1.tif',
      'sample_geotiff_1_2.tif',
      'sample_geotiff_1_3.tif',
    ]);
    const resumed = await retileImage(storage, SPACENET, { out, size: 300 });
    assert.deepEqual([resumed.written, resumed.skipped], [6, 3]);
    assert.deepEqual(
      readdirSync(out).sort(),
      [...readIndex(out).tiles.map((t) => t.name), 'tiles.json'].sort(),
    );
    await assertTilesMatchSource(SPACENET, out);
    // tiles of unknown origin (no index, no run file) are not trusted
    await rm(join(out, 'tiles.json'));
    const unknown = await retileImage(storage, SPACENET, { out, size: 300 });
    assert.deepEqual([unknown.written, unknown.skipped], [9, 0]);
  });

  it('writes identical tiles on every run', async () => {
    const a = join(tmp.dir, 'det-a');
    const b = join(tmp.dir, 'det-b');
    await retileImage(storage, COG, { out: a, size: 700, overlap: 50 });
    await retileImage(storage, COG, { out: b, size: 700, overlap: 50 });
    for (const name of readdirSync(a)) {
      const same =
        name === 'tiles.json'
          ? readFileSync(join(a, name), 'utf8').replaceAll('det-a', 'det-b')
          : readFileSync(join(a, name));
      assert.deepEqual(
        name === 'tiles.json' ? readFileSync(join(b, name), 'utf8') : readFileSync(join(b, name)),
        same,
        name,
      );
    }
  });

  describe('on S3 (s3rver)', () => {
    let server: S3rverHandle;
    before(async () => {
      server = await startS3rver();
    });
    after(async () => {
      await server?.stop();
    });

    it('reads the source by byte ranges from s3:// and uploads tiles and the index to s3://', async () => {
      const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(tmp.dir, 'cache') });
      const bucket = await server.createBucket();
      await s3.writeAtomic(`s3://${bucket}/scenes/cog.tif`, readFileSync(COG));
      const r = await retileImage(s3, `s3://${bucket}/scenes/cog.tif`, {
        out: `s3://${bucket}/tiles`,
        size: 1000,
        overlap: 100,
        tmpDir: tmp.dir,
      });
      assert.equal(r.written, 9);
      const keys: string[] = [];
      for await (const o of s3.list(`s3://${bucket}/tiles/`)) keys.push(o.uri);
      assert.equal(keys.length, 10);
      assert.ok(keys.includes(`s3://${bucket}/tiles/tiles.json`));
      // the same bytes as the local run of the first test
      for (const name of ['cog_1_1.tif', 'cog_3_3.tif', 'cog_2_3.tif']) {
        assert.deepEqual(
          await s3.read(`s3://${bucket}/tiles/${name}`),
          readFileSync(join(tmp.dir, 'cog', name)),
          name,
        );
      }
      assert.ok(!existsSync(join(tmp.dir, 'cache')), 'the source was never downloaded whole');
      assert.deepEqual(
        readdirSync(tmp.dir).filter((n) => n.startsWith('geobatch-retile-')),
        [],
        'scratch files removed',
      );
      const again = await retileImage(s3, `s3://${bucket}/scenes/cog.tif`, {
        out: `s3://${bucket}/tiles`,
        size: 1000,
        overlap: 100,
      });
      assert.deepEqual([again.written, again.skipped], [0, 9]);
    });
  });

  describe('command line', () => {
    it('retiles with --json and prints the counts', async () => {
      const out = join(tmp.dir, 'cli');
      const r = await geobatch([
        'chip',
        'retile',
        SPACENET,
        '--out',
        out,
        '--size',
        '500',
        '--overlap',
        '50',
        '--json',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const result = JSON.parse(r.stdout) as { tiles: number; written: number; rows: number; cols: number };
      assert.deepEqual([result.rows, result.cols, result.tiles, result.written], [2, 2, 4, 4]);
      assert.deepEqual(readdirSync(out).sort(), [
        'sample_geotiff_1_1.tif',
        'sample_geotiff_1_2.tif',
        'sample_geotiff_2_1.tif',
        'sample_geotiff_2_2.tif',
        'tiles.json',
      ]);
      const text = await geobatch([
        'chip',
        'retile',
        SPACENET,
        '--out',
        out,
        '--size',
        '500',
        '--overlap',
        '50',
      ]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /wrote 0 tile\(s\), 4 already complete/);
    });

    it('refuses bad sizes and overlaps with exit code 2 and writes nothing', async () => {
      const cases: [args: string[], message: RegExp][] = [
        [['--size', '0'], /--size: expected an integer >= 1 but got '0'/],
        [['--size', '-3'], /--size: expected an integer >= 1 but got '-3'/],
        [['--size', 'big'], /--size: expected an integer >= 1 but got 'big'/],
        [
          ['--size', '100', '--overlap', '100'],
          /--overlap: expected an integer in \[0, 99\] \(less than --size 100\) but got '100'/,
        ],
        [['--overlap', '-1'], /--overlap: expected an integer >= 0 but got '-1'/],
        [['--compress', 'lzw'], /--compress: expected one of deflate, none but got 'lzw'/],
      ];
      for (const [args, message] of cases) {
        const out = join(tmp.dir, 'bad-cli');
        const r = await geobatch(['chip', 'retile', SPACENET, '--out', out, ...args]);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.ok(!existsSync(out), `${args.join(' ')}: nothing written`);
      }
    });

    it('names a file that is not a TIFF and leaves no index', async () => {
      const notTiff = join(tmp.dir, 'in/labels.tif');
      mkdirSync(join(tmp.dir, 'in'), { recursive: true });
      writeFileSync(notTiff, '{"type": "FeatureCollection"}');
      const out = join(tmp.dir, 'bad-input');
      const r = await geobatch(['chip', 'retile', notTiff, '--out', out]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /labels\.tif: not a TIFF file .*JSON text/);
      assert.ok(!existsSync(join(out, 'tiles.json')));
      const missing = await geobatch(['chip', 'retile', join(tmp.dir, 'nope.tif'), '--out', out]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /nope\.tif: no such file/);
    });
  });
});
