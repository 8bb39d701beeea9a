// chip slice with a target ground sampling distance: the resampled pixels are gdalwarp's
// (`-tr gsd gsd -r near|bilinear|average`, same grid) chip by chip, the grid is gdalwarp's own
// default for -tr, chips' geotransforms and footprints follow the new resolution, COCO boxes,
// polygons and areas scale with the image, and bad gsd values and geographic scenes are refused.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { chipParams } from '../../jobs/chip-params.js';
import { sliceImages, sliceSources } from '../../lib/chip/slice-images.js';
import { RasterError } from '../../lib/raster/errors.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';
import { gdalinfo, gdalRawPixels, gdalSkip } from '../raster/gdal-tools.js';

const SHARED = resolve(import.meta.dirname, '../../../shared/data');
// 200 x 200 8-bit RGB, uncompressed, no overviews, EPSG:32631, 4.499968 m pixels
const RGB = join(SHARED, 'spacenet/rgb_unmasked.tif');

interface OutCoco {
  images: { id: number; file_name: string; width: number; height: number; geotransform?: number[] }[];
  annotations: { image_id: number; bbox: number[]; segmentation: number[][]; area: number }[];
}

function gdal(tool: string, args: string[]): void {
  execFileSync(tool, ['-q', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

describe('chip slice --gsd', { skip: gdalSkip }, () => {
  let dir: string;
  const storage = createStorage();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-gsd-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const pixel = gdalinfo(RGB).geoTransform!;
  // [gsd, what]: 9 m is 2x coarser than the source's 4.499968 m, 3 m 1.5x finer. Round figures,
  // as users give them: on exact ratios (2 * 4.499968) many samples are exact halves (the mean
  // of 2 x 2 pixels), which gdalwarp and we round either way from floating-point noise (measured:
  // max 1, mean up to 0.21); here ties are rare and a difference above 1 means a misplaced sample.
  const cases = [
    [9, '2x coarser'],
    [3, '1.5x finer'],
  ] as const;
  for (const [gsd, what] of cases) {
    for (const [method, gdalMethod, tolerance] of [
      ['nearest', 'near', 0],
      ['bilinear', 'bilinear', 1],
      ['average', 'average', 1],
    ] as const) {
      it(`${what} (${gsd.toFixed(3)} m), ${method}: every chip is the window of gdalwarp's output`, async (t) => {
        const out = join(dir, `${method}-${gsd}`);
        const result = await sliceImages(storage, {
          images: RGB,
          out,
          size: 64,
          overlap: 0.25,
          format: 'tif',
          gsd,
          resampling: method,
          workers: 1,
        });
        const coco = await readJson<OutCoco>(join(out, 'annotations.json'));
        const width = Math.max(...coco.images.map((i) => Number(i.file_name.split('_').at(-2))));
        const height = Math.max(...coco.images.map((i) => parseInt(i.file_name.split('_').at(-1)!, 10)));
        // gdalwarp on the same grid, pinned with -te (origin and size ours)
        const ref = join(dir, `ref-${method}-${gsd}.tif`);
        const [x0, , , y0] = pixel;
        const te = [x0!, y0! - height * gsd, x0! + width * gsd, y0!].map(String);
        gdal('gdalwarp', ['-r', gdalMethod, '-tr', String(gsd), String(gsd), '-te', ...te, RGB, ref]);
        const info = gdalinfo(ref);
        assert.deepEqual(info.size, [width, height]);
        const refPixels = gdalRawPixels(ref, join(dir, `ref-${method}-${gsd}.raw`));
        let max = 0;
        let sum = 0;
        let n = 0;
        for (const image of coco.images) {
          const [cx0, cy0, cx1, cy1] = image.file_name
            .replace(/\.tif$/, '')
            .split('_')
            .slice(-4)
            .map(Number);
          // the chip's geotransform: the reference's, moved to the window
          const gt = info.geoTransform!;
          assert.deepEqual(image.geotransform, [gt[0]! + cx0! * gsd, gsd, 0, gt[3]! - cy0! * gsd, 0, -gsd]);
          const chip = await sharp(join(out, 'images', image.file_name))
            .raw()
            .toBuffer();
          const w = cx1! - cx0!;
          for (let y = cy0!; y < cy1!; y++) {
            for (let x = cx0!; x < cx1!; x++) {
              for (let b = 0; b < 3; b++) {
                const d = Math.abs(
                  chip[((y - cy0!) * w + (x - cx0!)) * 3 + b]! - refPixels[(y * width + x) * 3 + b]!,
                );
                max = Math.max(max, d);
                sum += d;
                n++;
              }
            }
          }
        }
        t.diagnostic(
          `${result.chips} chips, ${width} x ${height} px; |ours - gdalwarp| max ${max}, mean ${(sum / n).toExponential(2)}`,
        );
        assert.ok(max <= tolerance, `max difference ${max} > ${tolerance}`);
        // rounding at exact halves is the only difference: almost every sample is equal
        assert.ok(sum / n < 1e-3, `mean difference ${sum / n}`);
        // one chip's GeoTIFF georeferencing as GDAL reads it
        const first = gdalinfo(join(out, 'images', coco.images[0]!.file_name));
        assert.deepEqual(first.geoTransform, coco.images[0]!.geotransform);
      });
    }
  }

  it("uses gdalwarp's own grid for -tr (same origin, size rounded as gdalwarp rounds it)", async () => {
    for (const gsd of [9, 3, 13.7]) {
      const ref = join(dir, `grid-${gsd}.tif`);
      gdal('gdalwarp', ['-overwrite', '-tr', String(gsd), String(gsd), '-r', 'near', RGB, ref]);
      const info = gdalinfo(ref);
      const out = join(dir, `grid-${gsd}`);
      await sliceImages(storage, { images: RGB, out, size: 1000, format: 'tif', gsd, workers: 1 });
      const coco = await readJson<OutCoco>(join(out, 'annotations.json'));
      assert.equal(coco.images.length, 1);
      assert.deepEqual([coco.images[0]!.width, coco.images[0]!.height], info.size, `gsd ${gsd}`);
      assert.deepEqual(coco.images[0]!.geotransform, info.geoTransform, `gsd ${gsd}`);
    }
  });

  it('scales COCO boxes, polygons and areas with the image, and footprints keep their place', async () => {
    // a 1 m scene (200 x 200 px, EPSG:32633): gsd 2 halves every coordinate
    const scene = join(dir, 'one-metre.tif');
    gdal('gdal_translate', [
      '-a_srs',
      'EPSG:32633',
      '-a_ullr',
      '500000',
      '4000200',
      '500200',
      '4000000',
      RGB,
      scene,
    ]);
    const annotations = [
      { id: 1, image_id: 1, category_id: 1, bbox: [10, 20, 40, 30] },
      {
        id: 2,
        image_id: 1,
        category_id: 2,
        bbox: [100, 100, 60, 40],
        segmentation: [[100, 100, 160, 100, 160, 140, 100, 140]],
      },
    ];
    const run = async (gsd: number | undefined, out: string): Promise<OutCoco> => {
      await sliceSources(
        storage,
        [{ uri: scene, name: 'one-metre.tif', annotations }],
        [{ id: 1 }, { id: 2 }],
        {
          out,
          size: 1000,
          overlap: 0,
          minAreaRatio: 0,
          ...(gsd ? { gsd } : {}),
          workers: 1,
        },
      );
      return readJson<OutCoco>(join(out, 'annotations.json'));
    };
    const coarse = await run(2, join(dir, 'coco-2m'));
    assert.deepEqual(
      coarse.images.map((i) => [i.file_name, i.width, i.height, i.geotransform]),
      [['one-metre_0_0_100_100.jpg', 100, 100, [500000, 2, 0, 4000200, 0, -2]]],
    );
    assert.deepEqual(
      coarse.annotations.map((a) => [a.bbox, a.segmentation, a.area]),
      [
        [[5, 10, 20, 15], [[5, 10, 25, 10, 25, 25, 5, 25]], 300],
        [[50, 50, 30, 20], [[50, 50, 80, 50, 80, 70, 50, 70]], 600],
      ],
    );
    // footprints: same ground corners as at full resolution
    const full = join(dir, 'coco-1m');
    await run(undefined, full);
    const ring = async (out: string): Promise<number[][]> =>
      (
        await readJson<{ features: { geometry: { coordinates: number[][][] } }[] }>(
          join(out, 'chips.geojson'),
        )
      ).features[0]!.geometry.coordinates[0]!;
    assert.deepEqual(await ring(join(dir, 'coco-2m')), await ring(full));
  });

  it('resumes a run with the same gsd, not one with another, and cuts on worker threads alike', async () => {
    const out = join(dir, 'resume');
    const options = { images: RGB, out, size: 16, overlap: 0, format: 'png' as const, gsd: 3, workers: 1 };
    const first = await sliceImages(storage, options);
    assert.equal(first.chips, 19 * 19);
    const again = await sliceImages(storage, options);
    assert.equal(again.resumed, first.chips);
    // two threads, each reopening and resampling the scene, give the same files
    const threaded = join(dir, 'threads');
    const result = await sliceImages(storage, { ...options, out: threaded, workers: 2 });
    assert.equal(result.threads, 2);
    const names = (await readdir(join(out, 'images'))).sort();
    assert.deepEqual((await readdir(join(threaded, 'images'))).sort(), names);
    for (const name of names) {
      const [a, b] = await Promise.all([
        readFile(join(out, 'images', name)),
        readFile(join(threaded, 'images', name)),
      ]);
      assert.ok(a.equals(b), name);
    }
    const other = await sliceImages(storage, { ...options, gsd: 3.5 });
    assert.equal(other.resumed, 0);
  });

  it('keeps no-data out of the average of a stretched uint16 scene (0 only where all of it is no-data)', async () => {
    // 900 x 900 uint16 at 0.5 m, no-data 0: at 1 m each output pixel is exactly 2 x 2 source pixels;
    // shifted by an odd number of pixels, so that a border of 2 x 2 blocks is part no-data
    const scene = join(dir, 'nodata.tif');
    gdal('gdal_translate', [
      '-srcwin',
      '-101',
      '-51',
      '900',
      '900',
      join(SHARED, 'spacenet/sample_geotiff.tif'),
      scene,
    ]);
    const slice = async (out: string, gsd?: number, resampling?: 'average' | 'nearest'): Promise<Buffer> => {
      const r = await sliceImages(storage, {
        images: scene,
        out,
        size: 1000,
        format: 'png',
        ...(gsd ? { gsd } : {}),
        ...(resampling ? { resampling } : {}),
        workers: 1,
      });
      assert.equal(r.chips, 1);
      const [name] = await readdir(join(out, 'images'));
      return sharp(join(out, 'images', name!))
        .removeAlpha()
        .raw()
        .toBuffer();
    };
    const full = await slice(join(dir, 'nd-full'));
    const average = await slice(join(dir, 'nd-average'), 1, 'average');
    const nearest = await slice(join(dir, 'nd-nearest'), 1, 'nearest');
    assert.equal(average.length, 450 * 450 * 3);
    let empty = 0;
    let mixed = 0;
    for (let r = 0; r < 450; r++) {
      for (let c = 0; c < 450; c++) {
        const at = (x: number, y: number): number => (y * 900 + x) * 3;
        const four = [at(2 * c, 2 * r), at(2 * c + 1, 2 * r), at(2 * c, 2 * r + 1), at(2 * c + 1, 2 * r + 1)];
        const valid = four.filter((p) => full[p] !== 0 || full[p + 1] !== 0 || full[p + 2] !== 0);
        if (valid.length === 0) empty++;
        else if (valid.length < 4) mixed++;
        for (let b = 0; b < 3; b++) {
          const sum = valid.reduce((s, p) => s + full[p + b]!, 0);
          const expected = valid.length === 0 ? 0 : Math.floor(sum / valid.length + 0.5);
          assert.equal(average[(r * 450 + c) * 3 + b], expected, `average at ${c},${r}`);
          assert.equal(
            nearest[(r * 450 + c) * 3 + b],
            full[at(2 * c + 1, 2 * r + 1) + b],
            `nearest at ${c},${r}`,
          );
        }
      }
    }
    assert.ok(empty > 0 && mixed > 0, `no-data covers ${empty} output pixels and part of ${mixed}`);
  });

  it('refuses a gsd <= 0 (schema, library and CLI) and resampling without gsd', async () => {
    for (const gsd of [0, -1]) {
      const parsed = chipParams.safeParse({ gsd });
      assert.equal(parsed.success, false);
      assert.match(JSON.stringify(parsed.error!.issues), /gsd/);
      await assert.rejects(
        sliceImages(storage, { images: RGB, out: join(dir, 'bad'), gsd }),
        (e: Error) =>
          e instanceof RasterError && /gsd: expected metres per pixel > 0 but got -?\d/.test(e.message),
      );
    }
    assert.equal(chipParams.safeParse({ gsd: 0.3, resampling: 'cubic' }).success, false);
    await assert.rejects(
      sliceImages(storage, { images: RGB, out: join(dir, 'bad'), resampling: 'nearest' }),
      /resampling nearest needs gsd/,
    );
    const cli = await geobatch(['chip', 'slice', '--images', RGB, '--out', join(dir, 'bad'), '--gsd', '0']);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /--gsd: expected metres per pixel > 0 but got '0'/);
    assert.deepEqual(await readdir(dir).then((names) => names.includes('bad')), false);
  });

  it('refuses a scene in a geographic CRS, naming it and its CRS, and writes nothing', async () => {
    const scene = join(dir, 'lonlat.tif');
    gdal('gdal_translate', ['-a_srs', 'EPSG:4326', '-a_ullr', '10', '50', '10.2', '49.8', RGB, scene]);
    const out = join(dir, 'lonlat-out');
    await assert.rejects(
      sliceImages(storage, { images: scene, out, gsd: 1 }),
      (e: Error) =>
        e instanceof RasterError &&
        e.message.startsWith(`${scene}: gsd 1 is in metres but the scene's CRS (EPSG:4326) is geographic`),
    );
    await assert.rejects(readFile(join(out, 'annotations.json')));
  });
});
