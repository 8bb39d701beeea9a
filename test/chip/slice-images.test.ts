import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { sliceImages } from '../../lib/chip/slice-images.js';
import { createStorage } from '../../lib/storage/index.js';

// terrain1.jpg (2048 x 1365 RGB JPEG) and its COCO file (7 boxes) from SAHI's test data.
const DATA = '../shared/data/coco';
const TERRAIN = `${DATA}/terrain1.jpg`;
const TERRAIN_COCO = `${DATA}/terrain1_coco.json`;

interface OutCoco {
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: { id: number; image_id: number; bbox: number[]; area: number; iscrowd: number }[];
  categories: unknown[];
}

describe('sliceImages on terrain1.jpg', () => {
  let dir: string;
  const storage = createStorage();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-slice-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the 54 SAHI slices and a COCO file whose chips hold the source pixels', async () => {
    const out = join(dir, 'png');
    const result = await sliceImages(storage, { images: DATA, coco: TERRAIN_COCO, out, format: 'png' });
    assert.equal(result.images, 1);
    assert.equal(result.chips, 54);
    const files = (await readdir(join(out, 'images'))).sort();
    assert.equal(files.length, 54);
    assert.ok(files.includes('terrain1_1748_1065_2048_1365.png'));
    const coco = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8')) as OutCoco;
    assert.equal(coco.images.length, 54);
    assert.deepEqual(
      coco.images.map((i) => i.id),
      Array.from({ length: 54 }, (_, i) => i + 1),
    );
    assert.equal(coco.annotations.length, result.annotations);
    assert.deepEqual(
      coco.annotations.map((a) => a.id),
      Array.from({ length: coco.annotations.length }, (_, i) => i + 1),
    );
    const source = JSON.parse(await readFile(TERRAIN_COCO, 'utf8')) as OutCoco;
    assert.deepEqual(coco.categories, source.categories);
    // PNG is lossless: the edge-shifted chip equals the same window of the decoded JPEG
    const chip = await sharp(join(out, 'images', 'terrain1_1748_1065_2048_1365.png'))
      .raw()
      .toBuffer();
    const expected = await sharp(TERRAIN)
      .extract({ left: 1748, top: 1065, width: 300, height: 300 })
      .raw()
      .toBuffer();
    assert.ok(chip.equals(expected));
  });

  it('JPEG chips are 300 x 300 and two runs give identical bytes', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    const options = { images: TERRAIN, coco: TERRAIN_COCO, ignoreNegatives: true, quality: 90 } as const;
    const ra = await sliceImages(storage, { ...options, out: a });
    await sliceImages(storage, { ...options, out: b });
    const files = (await readdir(join(a, 'images'))).sort();
    assert.equal(files.length, ra.chips);
    assert.ok(ra.chips > 0 && ra.chips < 54);
    for (const f of files) {
      const meta = await sharp(join(a, 'images', f)).metadata();
      assert.equal(meta.format, 'jpeg');
      assert.equal(meta.width, 300);
      assert.ok((await readFile(join(a, 'images', f))).equals(await readFile(join(b, 'images', f))));
    }
    assert.equal(
      await readFile(join(a, 'annotations.json'), 'utf8'),
      await readFile(join(b, 'annotations.json'), 'utf8'),
    );
  });

  it('rejects a COCO file that names a missing image, and writes nothing', async () => {
    const coco = join(dir, 'missing.json');
    await writeFile(
      coco,
      JSON.stringify({ images: [{ id: 1, file_name: 'nope.jpg' }], annotations: [], categories: [] }),
    );
    const out = join(dir, 'missing-out');
    await assert.rejects(sliceImages(storage, { images: DATA, coco, out }), {
      name: 'LabelError',
      message: /missing.json: images\[0\].file_name "nope.jpg" is not under --images/,
    });
    await assert.rejects(readdir(out), { code: 'ENOENT' });
  });

  it('counts zero-area and RLE annotations instead of failing', async () => {
    const coco = join(dir, 'dirty.json');
    await writeFile(
      coco,
      JSON.stringify({
        images: [{ id: 1, file_name: 'terrain1.jpg' }],
        annotations: [
          { id: 1, image_id: 1, category_id: 1, bbox: [10, 10, 0, 20] },
          {
            id: 2,
            image_id: 1,
            category_id: 1,
            bbox: [10, 10, 20, 20],
            segmentation: { counts: 'x', size: [1, 1] },
          },
          { id: 3, image_id: 1, category_id: 1, bbox: [10, 10, 20, 20] },
        ],
        categories: [{ id: 1, name: 'thing' }],
      }),
    );
    const r = await sliceImages(storage, {
      images: DATA,
      coco,
      out: join(dir, 'dirty'),
      ignoreNegatives: true,
    });
    assert.equal(r.zeroArea, 1);
    assert.equal(r.rle, 1);
    assert.equal(r.chips, 1);
    assert.equal(r.annotations, 1);
  });

  const invalid: [string, Record<string, unknown>, RegExp][] = [
    ['overlap 1', { overlap: 1 }, /overlap ratio but received 1/],
    ['size 0', { size: 0 }, /slice size but received 0/],
    ['quality 0', { quality: 0 }, /JPEG quality but received 0/],
  ];
  for (const [name, bad, message] of invalid) {
    it(`rejects ${name}`, async () => {
      await assert.rejects(sliceImages(storage, { images: TERRAIN, out: join(dir, 'bad'), ...bad }), {
        message,
      });
    });
  }
});

// cog_rgb.tif: 383 x 232 8-bit RGB COG in EPSG:26913 (UTM 13N, NAD83); gdalinfo gives origin
// (519467.495727581495885, 4311669.765735351480544) and pixel size (0.149815529419532, -0.149997895864513)
const COG_RGB = '../shared/data/cog/cog_rgb.tif';

describe('sliceImages on a georeferenced GeoTIFF', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-geo-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives each chip its geotransform and CRS, and writes CRS84 footprints to chips.geojson', async () => {
    const out = join(dir, 'geo');
    const r = await sliceImages(createStorage(), {
      images: COG_RGB,
      out,
      size: 128,
      overlap: 0.2,
      format: 'png',
    });
    assert.equal(r.chips, 12);
    const coco = JSON.parse(await readFile(join(out, 'annotations.json'), 'utf8')) as {
      images: { file_name: string; geotransform: number[]; crs: string }[];
    };
    const second = coco.images[1]!;
    assert.equal(second.file_name, 'cog_rgb_103_0_231_128.png');
    assert.equal(second.crs, 'EPSG:26913');
    const [x, rx, , y, , ry] = second.geotransform;
    assert.ok(Math.abs(x! - (519467.495727581495885 + 103 * 0.149815529419532)) < 1e-6);
    assert.ok(Math.abs(y! - 4311669.765735351480544) < 1e-6);
    assert.ok(Math.abs(rx! - 0.149815529419532) < 1e-12 && Math.abs(ry! + 0.149997895864513) < 1e-12);
    const index = JSON.parse(await readFile(join(out, 'chips.geojson'), 'utf8')) as {
      features: {
        properties: { chip: string; window: number[]; source: string };
        geometry: { coordinates: number[][][] };
      }[];
    };
    assert.equal(index.features.length, 12);
    const f = index.features[1]!;
    assert.deepEqual(f.properties.window, [103, 0, 231, 128]);
    assert.ok(f.properties.source.endsWith('cog_rgb.tif'));
    // Colorado (UTM 13N): about 104.775 W, 38.954 N; a 128 px chip is about 19 m, 0.0002 degrees wide
    const [lon, lat] = f.geometry.coordinates[0]![0]!;
    assert.ok(Math.abs(lon! + 104.775) < 0.01 && Math.abs(lat! - 38.954) < 0.01);
    const lons = f.geometry.coordinates[0]!.map((p) => p[0]!);
    assert.ok(Math.max(...lons) - Math.min(...lons) < 0.0003);
  });

  it('writes no chips.geojson for images without georeferencing', async () => {
    const out = join(dir, 'plain');
    await sliceImages(createStorage(), { images: TERRAIN, out, size: 1024 });
    await assert.rejects(readFile(join(out, 'chips.geojson')), { code: 'ENOENT' });
  });
});
