import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { openPredictor, predictScene, type Predictor } from '../../lib/predict/predict.js';
import { windowInput } from '../../lib/predict/input.js';
import { openChipRows } from '../../lib/chip/slice-readers.js';
import { createStorage } from '../../lib/storage/index.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { filesUnder, gdalBytes, gdalinfo, gdalLonLat, writeScene } from './helpers.js';

const storage = createStorage();
let dir: string;
let detection: Predictor;
let segmentation: Predictor;
let classification: Predictor;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'geobatch-predict-'));
  detection = await openPredictor(storage, await untrainedModel({ task: 'detection' }));
  segmentation = await openPredictor(storage, await untrainedModel({ task: 'segmentation' }));
  classification = await openPredictor(storage, await untrainedModel({ task: 'classification' }));
});

after(async () => {
  await Promise.all([detection.close(), segmentation.close(), classification.close()]);
  await rm(dir, { recursive: true, force: true });
});

interface GeoJson {
  features: { geometry: { coordinates: number[][][] }; properties: Record<string, unknown> }[];
}

async function json<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

describe('detection', () => {
  test('boxes are placed on the scene where each window saw them, in pixels and in CRS84 (checked with GDAL)', async () => {
    // two windows of 320 px side by side that see the same pixels: the second's boxes are the first's + 320
    const scene = await writeScene(join(dir, 'twin.tif'), 640, 320, { tile: 320 });
    const out = join(dir, 'twin-out');
    const result = await predictScene(storage, scene, {
      model: detection,
      out,
      overlap: 0,
      scoreThreshold: 0.05,
      merge: { method: 'none' },
      keepRaw: true,
    });
    assert.equal(result.windows, 2);
    assert.equal(result.runs, 2);
    // the model's own boxes on the first window (its input built as predict builds it)
    const rows = await openChipRows(storage, scene);
    rows.plan([{ top: 0, bottom: 320 }], [0, 640]);
    await rows.load({ top: 0, bottom: 320 });
    const input = new Float32Array(3 * 320 * 320);
    windowInput(rows.view([0, 0, 320, 320]), 320, input, 0);
    await rows.close();
    const session = await ort.InferenceSession.create(
      join(await untrainedModel({ task: 'detection' }), 'model.onnx'),
    );
    const direct = await session.run({ image: new ort.Tensor('float32', input, [1, 3, 320, 320]) });
    await session.release();
    const boxes = direct.boxes!.data as Float32Array;
    const scores = direct.scores!.data as Float32Array;
    const expected = [...scores].flatMap((s, i) =>
      s >= 0.05 ? [[...boxes.subarray(i * 4, i * 4 + 4)]] : [],
    );
    assert.ok(expected.length > 10, `the untrained model gives boxes (${expected.length})`);

    const raw = await json<GeoJson>(join(out, 'twin.raw.geojson'));
    const byWindow = (x0: number) =>
      raw.features
        .filter((f) => (f.properties.window as number[])[0] === x0)
        .map((f) => (f.properties.bbox as number[]).map((v) => Math.round(v)))
        .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]! || a[3]! - b[3]!);
    const first = byWindow(0);
    const second = byWindow(320);
    assert.equal(first.length, expected.length);
    assert.deepEqual(
      second,
      first.map(([x, y, w, h]) => [x! + 320, y, w, h]),
    );
    const want = expected
      .map(([x0, y0, x1, y1]) => [x0!, y0!, x1! - x0!, y1! - y0!].map((v) => Math.round(v)))
      .sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]! || a[3]! - b[3]!);
    assert.deepEqual(first, want);

    // GeoJSON corners against GDAL's transformation of the same pixel corners
    const merged = await json<GeoJson>(join(out, 'twin.geojson'));
    assert.equal(merged.features.length, raw.features.length);
    for (const f of merged.features.slice(0, 20)) {
      const [x, y, w, h] = f.properties.bbox as number[];
      const ring = f.geometry.coordinates[0]!;
      assert.equal(ring.length, 5);
      assert.deepEqual(ring[0], ring[4]);
      const gdal = gdalLonLat(scene, [
        [x!, y!],
        [x!, y! + h!],
        [x! + w!, y! + h!],
        [x! + w!, y!],
      ]);
      gdal.forEach(([lon, lat], i) => {
        assert.ok(Math.abs(ring[i]![0]! - lon) < 1e-8 && Math.abs(ring[i]![1]! - lat) < 1e-8, `corner ${i}`);
      });
    }
    // COCO results: one image, the classes, the same boxes
    const coco = await json<{
      images: { width: number; height: number; file_name: string }[];
      categories: { id: number; name: string }[];
      annotations: { bbox: number[]; category_id: number; score: number; image_id: number; area: number }[];
    }>(join(out, 'twin.coco.json'));
    assert.deepEqual(coco.images, [{ id: 1, file_name: 'twin.tif', width: 640, height: 320 }]);
    assert.deepEqual(
      coco.categories.map((c) => c.id),
      [1, 2, 3],
    );
    assert.equal(coco.annotations.length, merged.features.length);
    for (const a of coco.annotations) {
      assert.equal(a.image_id, 1);
      assert.ok(a.score >= 0.05);
      assert.ok(Math.abs(a.area - a.bbox[2]! * a.bbox[3]!) < 0.01);
    }
    const done = await json<Record<string, unknown>>(join(out, 'twin.predict.json'));
    assert.equal(done.format, 'geobatch-predictions');
    assert.equal(done.epsg, 32631);
    assert.deepEqual(done.outputs, {
      coco: 'twin.coco.json',
      geojson: 'twin.geojson',
      raw: 'twin.raw.geojson',
    });
    assert.deepEqual(await filesUnder(out), [
      'twin.coco.json',
      'twin.geojson',
      'twin.predict.json',
      'twin.raw.geojson',
    ]);
  });

  test('merging across windows keeps fewer boxes than the raw ones; a rerun skips the finished scene', async () => {
    const scene = await writeScene(join(dir, 'merge.tif'), 500, 320);
    const out = join(dir, 'merge-out');
    const first = await predictScene(storage, scene, { model: detection, out, scoreThreshold: 0.05 });
    const counts = first.counts as { raw: number; detections: number };
    assert.ok(counts.detections > 0 && counts.detections < counts.raw, JSON.stringify(counts));
    const again = await predictScene(storage, scene, { model: detection, out, scoreThreshold: 0.05 });
    assert.equal(again.skipped, true);
    assert.equal(again.runs, 0);
    assert.deepEqual(again.counts, first.counts);
  });

  test('3 parts joined give the files of one pass', async () => {
    const scene = await writeScene(join(dir, 'parts.tif'), 400, 700, { seed: 3 });
    const one = join(dir, 'parts-one');
    const split = join(dir, 'parts-split');
    const options = { model: detection, scoreThreshold: 0.05, windowSize: 256, overlap: 0.1 } as const;
    const whole = await predictScene(storage, scene, { ...options, out: one });
    assert.equal(whole.rows, 3);
    const statuses: string[] = [];
    let windows = 0;
    for (const index of [2, 0, 1]) {
      const r = await predictScene(storage, scene, { ...options, out: split, part: { index, count: 3 } });
      statuses.push(r.status);
      windows += r.computed;
    }
    assert.deepEqual(statuses, ['part', 'part', 'done']);
    assert.equal(windows, whole.windows);
    for (const name of ['parts.coco.json', 'parts.geojson']) {
      assert.equal(await readFile(join(split, name), 'utf8'), await readFile(join(one, name), 'utf8'), name);
    }
    assert.deepEqual(await filesUnder(split), await filesUnder(one));
  });

  test('an interrupted run keeps its finished rows of windows; the rerun computes only the others', async () => {
    const scene = await writeScene(join(dir, 'resume.tif'), 300, 700, { seed: 5 });
    const options = { model: detection, scoreThreshold: 0.05, windowSize: 256, overlap: 0.1 } as const;
    const reference = await predictScene(storage, scene, { ...options, out: join(dir, 'resume-ref') });
    assert.equal(reference.rows, 3);
    const out = join(dir, 'resume-out');
    const stop = new AbortController();
    await assert.rejects(
      predictScene(storage, scene, {
        ...options,
        out,
        signal: stop.signal,
        onProgress: (done) => {
          if (done >= 2) stop.abort(new Error('stopped by the test'));
        },
      }),
      /stopped by the test/,
    );
    assert.ok(!(await filesUnder(out)).includes('resume.predict.json'));
    const resumed = await predictScene(storage, scene, { ...options, out });
    assert.equal(resumed.resumedRows, 1);
    assert.equal(resumed.runs, reference.windows - 2);
    assert.equal(
      await readFile(join(out, 'resume.coco.json'), 'utf8'),
      await readFile(join(dir, 'resume-ref', 'resume.coco.json'), 'utf8'),
    );
    assert.deepEqual(await filesUnder(out), await filesUnder(join(dir, 'resume-ref')));
  });
});

describe('segmentation', () => {
  test("the class GeoTIFF has the scene's size, geotransform, CRS and corners (GDAL), no-data kept, polygons in CRS84", async () => {
    const scene = await writeScene(join(dir, 'seg.tif'), 300, 260, { nodata: [0, 0, 60, 50] });
    const out = join(dir, 'seg-out');
    const result = await predictScene(storage, scene, { model: segmentation, out });
    const tif = join(out, 'seg.classes.tif');
    const got = gdalinfo(tif);
    const want = gdalinfo(scene);
    assert.deepEqual(got.size, [300, 260]);
    assert.deepEqual(got.geoTransform, want.geoTransform);
    assert.equal(got.coordinateSystem.wkt, want.coordinateSystem.wkt);
    assert.deepEqual(got.cornerCoordinates, want.cornerCoordinates);
    assert.equal(got.bands.length, 1);
    assert.equal(got.bands[0]!.type, 'Byte');
    assert.equal(got.bands[0]!.noDataValue, 255);
    assert.deepEqual(got.bands[0]!.block, [512, 512]);
    assert.equal(got.metadata.IMAGE_STRUCTURE?.COMPRESSION, 'DEFLATE');
    const values = gdalBytes(tif, dir);
    assert.equal(values.length, 300 * 260);
    const histogram = new Map<number, number>();
    for (const v of values) histogram.set(v, (histogram.get(v) ?? 0) + 1);
    for (const v of histogram.keys()) assert.ok([0, 1, 2, 3, 255].includes(v), `value ${v}`);
    assert.ok(histogram.size >= 3, `several classes: ${[...histogram.keys()].join(',')}`);
    for (let y = 0; y < 260; y++) {
      for (let x = 0; x < 300; x++) {
        const nodata = x < 60 && y < 50;
        assert.equal(values[y * 300 + x] === 255, nodata, `pixel ${x},${y}`);
      }
    }
    const counts = result.counts as { pixels: Record<string, number>; nodata: number; polygons: number };
    assert.equal(counts.nodata, 60 * 50);
    // polygons: per class, the pixel areas add up to the raster's pixels of that class
    const geojson = await json<GeoJson>(join(out, 'seg.geojson'));
    assert.equal(geojson.features.length, counts.polygons);
    const area = new Map<number, number>();
    for (const f of geojson.features) {
      const id = f.properties.category_id as number;
      area.set(id, (area.get(id) ?? 0) + (f.properties.area_px as number));
      const ring = f.geometry.coordinates[0]!;
      assert.deepEqual(ring[0], ring[ring.length - 1]);
    }
    for (const id of [1, 2, 3]) assert.equal(area.get(id) ?? 0, histogram.get(id) ?? 0, `class ${id}`);
    // a polygon vertex is a pixel corner: GDAL puts it at the same lon/lat
    const sample = geojson.features[0]!.geometry.coordinates[0]![0]!;
    const corners = gdalLonLat(scene, [
      [0, 0],
      [300, 260],
    ]);
    assert.ok(sample[0]! >= corners[0]![0] - 1e-9 && sample[0]! <= corners[1]![0] + 1e-9);
    assert.ok(sample[1]! <= corners[0]![1] + 1e-9 && sample[1]! >= corners[1]![1] - 1e-9);
  });

  test('3 parts joined give the class raster of one pass (each part blends the windows overlapping its rows), with or without the memory arena', async () => {
    const scene = await writeScene(join(dir, 'segparts.tif'), 200, 420, { seed: 9 });
    const one = join(dir, 'segparts-one');
    const split = join(dir, 'segparts-split');
    const options = { model: segmentation, blend: 'edge' } as const;
    const whole = await predictScene(storage, scene, { ...options, out: one });
    assert.ok(whole.rows >= 4, `${whole.rows} rows`);
    // the parts also run without ORT's memory arena (lowMemory): the outputs must not change
    for (const index of [1, 2, 0]) {
      await predictScene(storage, scene, {
        ...options,
        out: split,
        part: { index, count: 3 },
        lowMemory: true,
      });
    }
    assert.deepEqual(
      await readFile(join(split, 'segparts.classes.tif')),
      await readFile(join(one, 'segparts.classes.tif')),
    );
    assert.equal(
      await readFile(join(split, 'segparts.geojson'), 'utf8'),
      await readFile(join(one, 'segparts.geojson'), 'utf8'),
    );
    assert.deepEqual(await filesUnder(split), await filesUnder(one));
  });

  test('a resumed run recomputes only the row of windows that overlaps the first unfinished one', async () => {
    const scene = await writeScene(join(dir, 'segresume.tif'), 200, 420, { seed: 11 });
    const ref = join(dir, 'segresume-ref');
    const reference = await predictScene(storage, scene, { model: segmentation, out: ref });
    const perRow = reference.windows / reference.rows;
    const out = join(dir, 'segresume-out');
    const stop = new AbortController();
    await assert.rejects(
      predictScene(storage, scene, {
        model: segmentation,
        out,
        signal: stop.signal,
        onProgress: (done) => {
          if (done >= 2 * perRow) stop.abort(new Error('stopped'));
        },
      }),
      /stopped/,
    );
    const resumed = await predictScene(storage, scene, { model: segmentation, out });
    assert.equal(resumed.resumedRows, 2);
    // the rows left, plus the last finished row, whose windows reach into the first row left
    assert.equal(resumed.computed, reference.windows - 2 * perRow + perRow);
    assert.deepEqual(
      await readFile(join(out, 'segresume.classes.tif')),
      await readFile(join(ref, 'segresume.classes.tif')),
    );
  });
});

describe('classification', () => {
  test('scores per window in CSV and GeoJSON footprints', async () => {
    const scene = await writeScene(join(dir, 'cls.tif'), 250, 200);
    const out = join(dir, 'cls-out');
    const result = await predictScene(storage, scene, { model: classification, out, scoreThreshold: 0.5 });
    const csv = (await readFile(join(out, 'cls.scores.csv'), 'utf8')).trim().split('\n');
    assert.equal(csv[0], 'window,x0,y0,x1,y1,building,vehicle,storage_tank');
    assert.equal(csv.length - 1, result.windows);
    const geojson = await json<GeoJson>(join(out, 'cls.geojson'));
    assert.equal(geojson.features.length, result.windows);
    for (const [i, f] of geojson.features.entries()) {
      const scores = f.properties.scores as Record<string, number>;
      const cells = csv[i + 1]!.split(',').map(Number);
      assert.deepEqual(f.properties.window, cells.slice(1, 5));
      assert.deepEqual(Object.values(scores), cells.slice(5));
      for (const s of Object.values(scores)) assert.ok(s > 0 && s < 1);
      assert.deepEqual(
        f.properties.labels,
        Object.entries(scores)
          .filter(([, s]) => s >= 0.5)
          .map(([n]) => n),
      );
    }
  });
});
