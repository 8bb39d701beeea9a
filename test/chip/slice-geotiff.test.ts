// chip slice on GeoTIFFs of any band count and sample type: the 8-bit conversion is `geobatch
// rgb`'s (checked pixel for pixel against convertToRgb), GeoTIFF chips are georeferenced (checked
// with gdalinfo), bad bands and corrupt files are named, and an s3:// COG window is read by ranges.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { sliceImages } from '../../lib/chip/slice-images.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { convertToRgb } from '../../lib/raster/rgb.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { gdalinfo, gdalSkip } from '../raster/gdal-tools.js';
import { countingStorage } from '../helpers/counting-storage.js';

const SHARED = resolve(import.meta.dirname, '../../../shared/data');
// 2658 x 2667, 1 band uint16, EPSG:32621, AREA_OR_POINT=Point, tiled 256
const COG = join(SHARED, 'cog/cog.tif');
// 900 x 900 uint16, EPSG:32616, no-data 0, striped
const SPACENET = join(SHARED, 'spacenet/sample_geotiff.tif');
// 383 x 232 8-bit RGB COG, EPSG:26913
const COG_RGB = join(SHARED, 'cog/cog_rgb.tif');

interface OutCoco {
  images: { file_name: string; width: number; height: number; geotransform?: number[]; crs?: string }[];
}

/** The RGB pixels of a window of an image (whole-image PNG made by convertToRgb). */
async function windowOf(png: string, x0: number, y0: number, x1: number, y1: number): Promise<Buffer> {
  return sharp(png)
    .extract({ left: x0, top: y0, width: x1 - x0, height: y1 - y0 })
    .removeAlpha()
    .raw()
    .toBuffer();
}

describe('chip slice on GeoTIFFs', () => {
  let dir: string;
  const storage = createStorage();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-geotiff-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [name, input, bands] of [
    ['1-band uint16 PixelIsPoint COG (grey, percentile 2-98)', COG, undefined],
    ['uint16 striped scene with no-data', SPACENET, undefined],
    ['8-bit RGB COG (not stretched)', COG_RGB, undefined],
    ['1-band COG with --bands 1 and a fixed range', COG, [1, 1, 1]],
  ] as const) {
    it(`converts a ${name} exactly as geobatch rgb does`, async () => {
      const out = join(dir, `rgb-${name.replace(/\W+/g, '-')}`);
      const stretch = bands ? ({ kind: 'range', ranges: [[100, 3000]] } as const) : undefined;
      const r = await sliceImages(storage, {
        images: input,
        out,
        size: 256,
        overlap: 0.25,
        format: 'png',
        ...(bands ? { bands } : {}),
        ...(stretch ? { stretch } : {}),
      });
      const reference = join(dir, `ref-${name.replace(/\W+/g, '-')}.png`);
      const ref = await convertToRgb(storage, input, reference, {
        alpha: false,
        ...(bands ? { bands } : {}),
        ...(stretch ? { stretch } : {}),
      });
      assert.equal(r.sources.length, 1);
      assert.match(r.sources[0]!.conversion, new RegExp(`stretch ${ref.stretch}`));
      const coco = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8')) as OutCoco;
      assert.equal(coco.images.length, r.chips);
      assert.ok(r.chips > 1);
      // the first chip, the last (edge-shifted) one and one in the middle
      for (const image of [coco.images[0]!, coco.images[r.chips - 1]!, coco.images[r.chips >> 1]!]) {
        const [x0, y0, x1, y1] = /_(\d+)_(\d+)_(\d+)_(\d+)\.png$/.exec(image.file_name)!.slice(1).map(Number);
        const chip = await sharp(join(out, 'images', image.file_name))
          .raw()
          .toBuffer();
        assert.ok(
          chip.equals(await windowOf(reference, x0!, y0!, x1!, y1!)),
          `${image.file_name} differs from the same window of geobatch rgb's output`,
        );
      }
    });
  }

  for (const [name, input] of [
    ['cog.tif (PixelIsPoint)', COG],
    ['sample_geotiff.tif', SPACENET],
  ] as const) {
    it(
      `writes GeoTIFF chips of ${name} whose CRS and geotransform gdalinfo reads exactly`,
      { skip: gdalSkip },
      async () => {
        const out = join(dir, `tif-${name.replace(/\W+/g, '-')}`);
        const r = await sliceImages(storage, { images: input, out, size: 300, format: 'tif' });
        const source = gdalinfo(input);
        const [ox, px, , oy, , py] = source.geoTransform!;
        const coco = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8')) as OutCoco;
        assert.equal(coco.images.length, r.chips);
        const files = (await readdir(join(out, 'images'))).filter((f) => f.endsWith('.tif'));
        assert.equal(files.length, r.chips);
        for (const image of [coco.images[1]!, coco.images[r.chips - 1]!]) {
          const [x0, y0] = /_(\d+)_(\d+)_\d+_\d+\.tif$/.exec(image.file_name)!.slice(1).map(Number);
          const info = gdalinfo(join(out, 'images', image.file_name));
          assert.deepEqual(info.size, [300, 300]);
          assert.equal(info.bands.length, 3);
          assert.equal(info.bands[0]!.type, 'Byte');
          // 0 marks no-data in the chips when the source has no-data (sample_geotiff.tif), as in geobatch rgb
          assert.equal(info.bands[0]!.noDataValue, input === SPACENET ? 0 : undefined);
          assert.deepEqual(info.geoTransform, [ox! + x0! * px!, px, 0, oy! + y0! * py!, 0, py]);
          assert.deepEqual(image.geotransform, info.geoTransform);
          // the same CRS as the source, by GDAL's own reading of both
          assert.equal(info.coordinateSystem!.wkt, source.coordinateSystem!.wkt);
          assert.equal(image.crs, `EPSG:${/ID\["EPSG",(\d+)\]\]$/.exec(source.coordinateSystem!.wkt)![1]}`);
        }
      },
    );
  }

  it('two runs give identical GeoTIFF chips', async () => {
    const a = join(dir, 'det-a');
    const b = join(dir, 'det-b');
    await sliceImages(storage, { images: SPACENET, out: a, size: 400, format: 'tif' });
    await sliceImages(storage, { images: SPACENET, out: b, size: 400, format: 'tif' });
    const files = (await readdir(join(a, 'images'))).sort();
    assert.equal(files.length, 9);
    for (const f of files) {
      assert.ok((await readFile(join(a, 'images', f))).equals(await readFile(join(b, 'images', f))), f);
    }
  });

  it('rejects bands out of range, naming the file and the valid range, and writes nothing', async () => {
    const out = join(dir, 'bad-bands');
    await assert.rejects(sliceImages(storage, { images: COG, out, bands: [1, 2, 3] }), {
      name: 'RasterError',
      message: `--bands: band 2 is out of range: ${COG} has 1 band (valid: 1..1)`,
    });
    await assert.rejects(readdir(out), { code: 'ENOENT' });
  });

  it('rejects --bands for JPEG images', async () => {
    await assert.rejects(
      sliceImages(storage, {
        images: join(SHARED, 'coco/terrain1.jpg'),
        out: join(dir, 'x'),
        bands: [1, 1, 1],
      }),
      { name: 'RasterError', message: /terrain1\.jpg: --bands and --stretch apply to GeoTIFF images/ },
    );
  });

  it('names a corrupt TIFF, a truncated TIFF and a corrupt JPEG', async () => {
    const bad = join(dir, 'bad');
    await rm(bad, { recursive: true, force: true });
    await writeFile(join(dir, 'garbage.tif'), 'this is not a tiff at all');
    await assert.rejects(sliceImages(storage, { images: join(dir, 'garbage.tif'), out: bad }), {
      name: 'RasterError',
      message: new RegExp(`^${join(dir, 'garbage.tif')}: not a TIFF file`),
    });
    const whole = readFileSync(SPACENET);
    await writeFile(join(dir, 'truncated.tif'), whole.subarray(0, whole.length >> 1));
    await assert.rejects(sliceImages(storage, { images: join(dir, 'truncated.tif'), out: bad }), {
      name: 'RasterError',
      message: new RegExp(`^${join(dir, 'truncated.tif')}: `),
    });
    await writeFile(
      join(dir, 'broken.jpg'),
      readFileSync(join(SHARED, 'coco/terrain1.jpg')).subarray(0, 600),
    );
    await assert.rejects(sliceImages(storage, { images: join(dir, 'broken.jpg'), out: bad }), {
      name: 'RasterError',
      message: new RegExp(`${join(dir, 'broken.jpg')}: cannot (read|decode)`),
    });
    await assert.rejects(readFile(join(bad, 'annotations.json')), { code: 'ENOENT' });
  });

  it('the CLI takes --bands, --stretch and --format tif, and refuses bad values', async () => {
    const out = join(dir, 'cli');
    const ok = await geobatch([
      'chip',
      'slice',
      '--images',
      COG,
      '--out',
      out,
      '--size',
      '1024',
      '--format',
      'tif',
      '--bands',
      '1',
      '--stretch',
      'minmax',
      '--json',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const result = JSON.parse(ok.stdout) as { chips: number; sources: { conversion: string }[] };
    // 2658 x 2667 at step 820: 3 columns (the last shifted to 1634) and 4 rows (the last to 1643)
    assert.equal(result.chips, 12);
    assert.match(result.sources[0]!.conversion, /^bands 1,1,1, uint16, stretch min-max \(statistics from/);
    const outOfRange = await geobatch(['chip', 'slice', '--images', COG, '--out', out, '--bands', '4,3,2']);
    assert.equal(outOfRange.code, 1);
    assert.match(
      outOfRange.stderr,
      /--bands: band 4 is out of range: .*cog\.tif has 1 band \(valid: 1\.\.1\)/,
    );
    const noRange = await geobatch(['chip', 'slice', '--images', COG, '--out', out, '--stretch', 'range']);
    assert.equal(noRange.code, 2);
    assert.match(noRange.stderr, /--stretch range: expected --range MIN,MAX as well/);
    const badBands = await geobatch(['chip', 'slice', '--images', COG, '--out', out, '--bands', '0,1']);
    assert.equal(badBands.code, 2);
    assert.match(badBands.stderr, /--bands: expected one band or three/);
  });
});

describe('chip slice on an s3:// COG', () => {
  let server: S3rverHandle;
  let dir: string;
  before(async () => {
    server = await startS3rver();
    dir = await mkdtemp(join(tmpdir(), 'chip-s3-'));
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads only the blocks of the selected window, by byte ranges', async () => {
    // 4096 x 4096 8-bit RGB, tiled 512, with noise so that tiles do not compress to nothing
    const size = 4096;
    const pixels = new Uint8Array(size * size * 3);
    let h = 12345;
    for (let i = 0; i < pixels.length; i++) {
      h = (Math.imul(h, 1103515245) + 12345) >>> 0;
      pixels[i] = (((i / 3) % size) >> 3) + (h >>> 27);
    }
    const local = join(dir, 'big.tif');
    await writeGeoTiff(local, pixels, {
      width: size,
      height: size,
      bands: 3,
      tileSize: 512,
      geotransform: [500000, 0.3, 0, 4000000, 0, -0.3],
      epsg: 32633,
    });
    const fileSize = readFileSync(local).length;
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 'cache') });
    const bucket = await server.createBucket();
    await s3.writeAtomic(`s3://${bucket}/scenes/big.tif`, readFileSync(local));
    const counted = countingStorage(s3);
    const out = `s3://${bucket}/chips`;
    const r = await sliceImages(counted.storage, {
      images: `s3://${bucket}/scenes/big.tif`,
      out,
      size: 512,
      overlap: 0,
      format: 'png',
      windowGrid: { rows: [3, 4], cols: [5, 6] },
    });
    assert.equal(r.chips, 1);
    const read = counted.bytes();
    assert.ok(read < fileSize / 20, `read ${read} bytes of a ${fileSize}-byte COG`);
    assert.ok(read > (fileSize / 64) * 0.9, `read ${read} bytes: at least the window's tile`);
    // the chip holds the window's pixels
    const chip = await sharp(await s3.read(`${out}/images/big_2560_1536_3072_2048.png`))
      .raw()
      .toBuffer();
    const expected = Buffer.alloc(512 * 512 * 3);
    for (let y = 0; y < 512; y++) {
      const start = ((1536 + y) * size + 2560) * 3;
      expected.set(pixels.subarray(start, start + 512 * 3), y * 512 * 3);
    }
    assert.ok(chip.equals(expected));
    const coco = JSON.parse((await s3.read(`${out}/annotations.json`)).toString()) as OutCoco;
    assert.deepEqual(coco.images[0]!.geotransform, [
      500000 + 2560 * 0.3,
      0.3,
      0,
      4000000 - 1536 * 0.3,
      0,
      -0.3,
    ]);
  });
});
