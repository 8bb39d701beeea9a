// evaluate(): predictions against COCO, geo-label and mask truth on a small georeferenced scene,
// with the outputs read back (eval.json, errors.geojson, the picture, eval.md).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { evaluate } from '../../lib/eval/eval.js';
import type { EvalReport } from '../../lib/eval/eval.js';
import { confusionOf, rasterRows } from '../../lib/eval/segmentation.js';
import { cocoText } from '../../lib/labels/coco.js';
import { geojsonToCoco, rasterizeMask } from '../../lib/labels/geo-labels.js';
import { writeGeoTiff } from '../../lib/raster/geotiff-writer.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';
import {
  EPSG,
  FEATURES,
  GT,
  HEIGHT,
  WIDTH,
  geoLabelsText,
  writePredictFolder,
  writeScene,
} from './fixtures.js';

const storage = createStorage();

function assertPerfect(report: EvalReport): void {
  const d = report.overall.detection;
  if (d) {
    assert.equal(d.fp, 0);
    assert.equal(d.fn, 0);
    assert.ok(d.tp > 0);
    for (const v of [d.precision, d.recall, d.f1, d.ap50, d.ap]) assert.equal(v, 1, JSON.stringify(d));
    for (const [name, c] of Object.entries(d.perClass)) {
      for (const v of [c.precision, c.recall, c.f1, c.ap50, c.ap])
        assert.equal(v, 1, `${name}: ${JSON.stringify(c)}`);
    }
    for (const [id, s] of Object.entries(report.perScene)) {
      for (const v of [s.detection!.f1, s.detection!.ap50, s.detection!.ap]) assert.equal(v, 1, id);
    }
  }
  const g = report.overall.segmentation;
  if (g) {
    assert.equal(g.meanIou, 1);
    assert.equal(g.pixelAccuracy, 1);
    for (const [name, c] of Object.entries(g.perClass)) {
      assert.equal(c.iou, 1, name);
      assert.equal(c.f1, 1, name);
    }
  }
  const sn = report.overall.spacenet;
  if (sn) {
    assert.equal(sn.f1, 1, JSON.stringify(sn));
    assert.equal(sn.fp + sn.fn, 0);
  }
}

describe('eval', () => {
  let dir: string;
  let scene: string;
  const labels = () => join(dir, 'labels');
  const coco = () => join(dir, 'coco');
  const masks = () => join(dir, 'masks');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-eval-'));
    scene = await writeScene(join(dir, 'scenes'), 's1');
    await mkdir(labels(), { recursive: true });
    await writeFile(join(labels(), 's1.geojson'), geoLabelsText(FEATURES));
    // COCO shard and mask made by the labels and mask code from the same geo-labels
    const { dataset } = await geojsonToCoco(storage, join(labels(), 's1.geojson'), scene, {
      categoryField: 'class',
    });
    await mkdir(coco(), { recursive: true });
    await writeFile(join(coco(), 's1.json'), cocoText(dataset));
    await rasterizeMask(storage, join(labels(), 's1.geojson'), scene, join(masks(), 's1.tif'), {
      burnField: 'class_id',
    });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('COCO truth fed in as predictions scores 1.0 everywhere', async () => {
    const out = join(dir, 'out-coco');
    const report = await evaluate(storage, { predictions: coco(), truth: coco(), out });
    assert.equal(report.task, 'detection');
    assert.equal(report.scored, false);
    assert.deepEqual(
      report.classes.map((c) => c.name),
      ['building', 'car'],
    );
    // 4 buildings on the scene (one clipped by the right edge), 2 cars; the one off the scene dropped
    assert.equal(report.overall.detection!.perClass.building!.truth, 4);
    assert.equal(report.overall.detection!.perClass.car!.truth, 2);
    assertPerfect(report);
    const errors = JSON.parse(await readFile(join(out, 'errors.geojson'), 'utf8')) as { features: unknown[] };
    assert.deepEqual(errors.features, []);
    // a COCO shard has no georeferencing: errors.geojson cannot place this scene
    assert.deepEqual(report.errors.scenesWithoutGeoreference, ['s1']);
    assert.equal((await sharp(join(out, 'pr-curves.png')).metadata()).format, 'png');
    assert.match(
      await readFile(join(out, 'eval.md'), 'utf8'),
      /\| \*\*all\*\* \| 6 \| 6 \| 6 \| 0 \| 0 \| 1\.000 \| 1\.000 \| 1\.000 \| 1\.000 \| 1\.000 \|/,
    );
    const written = JSON.parse(await readFile(join(out, 'eval.json'), 'utf8')) as EvalReport;
    assert.deepEqual(written.overall, report.overall);
  });

  it('geo-label truth fed in as predictions scores 1.0 everywhere (grid from --images)', async () => {
    const out = join(dir, 'out-geo');
    const report = await evaluate(storage, {
      predictions: labels(),
      truth: labels(),
      out,
      images: join(dir, 'scenes'),
    });
    assertPerfect(report);
    assert.equal(report.perScene.s1!.truthOutside, 1);
    assert.equal(report.overall.spacenet!.tp, 6);
    assert.deepEqual(report.errors.scenesWithoutGeoreference, []);
  });

  it('mask truth (and geo-label truth) fed in as a segmentation prediction scores 1.0 everywhere', async () => {
    const preds = join(dir, 'pred-seg');
    await writePredictFolder(preds, 's1', {
      task: 'segmentation',
      classesTif: join(masks(), 's1.tif'),
      geojson: geoLabelsText(FEATURES),
    });
    const onMask = await evaluate(storage, {
      predictions: preds,
      truth: masks(),
      out: join(dir, 'out-mask'),
    });
    assert.equal(onMask.task, 'segmentation');
    assertPerfect(onMask);
    // mask truth has no polygons: no SpaceNet F1
    assert.equal(onMask.overall.spacenet, null);
    // building pixels: 40*30 + (40*20 + 20*30) + (60*70 - 20*20) + 10*20 (clipped) = 6600
    assert.equal(onMask.overall.segmentation!.perClass.building!.tp, 6600);
    assert.equal(onMask.overall.segmentation!.perClass.car!.tp, 10 * 6 + 8 * 6);
    assert.equal((await sharp(join(dir, 'out-mask', 'confusion.png')).metadata()).format, 'png');
    // a second truth scene without predictions: all of its class pixels are false negatives
    const two = join(dir, 'masks-two');
    await mkdir(two, { recursive: true });
    await copyFile(join(masks(), 's1.tif'), join(two, 's1.tif'));
    await copyFile(join(masks(), 's1.tif'), join(two, 's2.tif'));
    const missed = await evaluate(storage, {
      predictions: preds,
      truth: two,
      out: join(dir, 'out-mask-two'),
    });
    assert.deepEqual(missed.scenes.truthWithoutPredictions, ['s2']);
    const b = missed.overall.segmentation!.perClass.building!;
    assert.deepEqual([b.tp, b.fp, b.fn, b.iou], [6600, 0, 6600, 0.5]);
    assert.equal(missed.perScene.s2!.segmentation!.perClass.building!.recall, 0);
    // scenes: 'predicted' (predict ran on a split) leaves s2 out instead, and says so
    const onlyPredicted = await evaluate(storage, {
      predictions: preds,
      truth: two,
      out: join(dir, 'out-mask-predicted'),
      scenes: 'predicted',
    });
    assert.deepEqual(onlyPredicted.scenes.truthNotPredicted, ['s2']);
    assert.deepEqual(onlyPredicted.scenes.truthWithoutPredictions, []);
    assert.deepEqual(onlyPredicted.scenes.evaluated, ['s1']);
    assertPerfect(onlyPredicted);
    const onGeo = await evaluate(storage, {
      predictions: preds,
      truth: labels(),
      out: join(dir, 'out-seg-geo'),
    });
    assertPerfect(onGeo);
    assert.equal(onGeo.overall.spacenet!.tp, 6);
  });

  it('segmentation IoU and F1 of a hand-changed class raster', async () => {
    // the mask with 5 more columns of car right of car D (x 30..35, y 100..106): 30 px of
    // background predicted as car. car: TP 108, FP 30, FN 0 -> IoU 108/138, F1 216/246;
    // background: FN 30 -> IoU = bg / (bg + 30); building unchanged.
    const px = new Uint8Array(WIDTH * HEIGHT);
    const source = await rasterRows(storage, join(masks(), 's1.tif'));
    await source.readRows(0, HEIGHT, px);
    await source.close();
    assert.equal(px.filter((v) => v === 2).length, 108);
    for (let y = 100; y < 106; y++) for (let x = 30; x < 35; x++) px[y * WIDTH + x] = 2;
    const tif = join(dir, 'changed.tif');
    await writeGeoTiff(tif, px, { width: WIDTH, height: HEIGHT, geotransform: GT, epsg: EPSG, tileSize: 64 });
    const preds = join(dir, 'pred-seg-changed');
    await writePredictFolder(preds, 's1', { task: 'segmentation', classesTif: tif });
    const report = await evaluate(storage, {
      predictions: preds,
      truth: masks(),
      out: join(dir, 'out-changed'),
    });
    const car = report.overall.segmentation!.perClass.car!;
    assert.deepEqual([car.tp, car.fp, car.fn], [108, 30, 0]);
    assert.ok(Math.abs(car.iou! - 108 / 138) < 1e-6);
    assert.ok(Math.abs(car.f1! - 216 / 246) < 1e-6);
    assert.equal(report.overall.segmentation!.perClass.building!.iou, 1);
    const m = report.confusion!;
    assert.equal(m.counts[0]![2], 30); // truth background, predicted car
    // streamed in bands of 7 rows (across the 64 px tiles): the same counts as in one band
    const pr = await rasterRows(storage, tif);
    const tr = await rasterRows(storage, join(masks(), 's1.tif'));
    const banded = await confusionOf(
      pr,
      tr,
      { width: WIDTH, height: HEIGHT },
      report.classes,
      {
        predicted: tif,
        truth: 'mask',
      },
      { bandRows: 7 },
    );
    await pr.close();
    await tr.close();
    assert.deepEqual(banded.counts, m.counts);
    const total = m.counts.flat().reduce((a, b) => a + b, 0);
    assert.equal(total, WIDTH * HEIGHT);
  });

  it('the hand-computed detection case through a predict folder; errors.geojson in CRS84', async () => {
    // truth G1..G3 and detections D1..D5 of test/eval/matching.test.ts, shifted by (20, 20)
    const shift = (b: number[]) => b.map((v) => v + 20) as unknown as [number, number, number, number];
    const truthDir = join(dir, 'truth-hand');
    await mkdir(truthDir, { recursive: true });
    const gts = [
      [0, 0, 10, 10],
      [20, 0, 30, 10],
      [40, 0, 50, 10],
    ].map(shift);
    await writeFile(
      join(truthDir, 's1.json'),
      JSON.stringify({
        images: [{ id: 1, file_name: 's1.tif', width: WIDTH, height: HEIGHT }],
        categories: [{ id: 7, name: 'car' }],
        annotations: gts.map(([x0, y0, x1, y1], i) => ({
          id: i + 1,
          image_id: 1,
          category_id: 7,
          bbox: [x0, y0, x1 - x0, y1 - y0],
          area: (x1 - x0) * (y1 - y0),
          iscrowd: 0,
        })),
      }),
    );
    const preds = join(dir, 'pred-hand');
    await writePredictFolder(
      preds,
      's1',
      {
        task: 'detection',
        detections: [
          { box: shift([100, 100, 110, 110]), score: 0.5, label: 0 },
          { box: shift([0, 0, 10, 10]), score: 0.7, label: 0 },
          { box: shift([20, 0, 30, 8.2]), score: 0.8, label: 0 },
          { box: shift([40, 0, 50, 5]), score: 0.6, label: 0 },
          { box: shift([0, 0, 10, 10]), score: 0.9, label: 0 },
        ],
      },
      // the model calls the class by the same name with another id: matched by name
      [{ id: 1, name: 'car' }],
    );
    const out = join(dir, 'out-hand');
    const report = await evaluate(storage, { predictions: preds, truth: truthDir, out });
    const d = report.overall.detection!;
    assert.deepEqual([d.tp, d.fp, d.fn], [3, 2, 0]);
    assert.equal(d.precision, 0.6);
    assert.equal(d.recall, 1);
    assert.equal(d.f1, 0.75);
    assert.ok(Math.abs(d.ap50! - 92.5 / 101) < 1e-6, String(d.ap50));
    assert.ok(Math.abs(d.ap! - 596.5 / 1010) < 1e-6, String(d.ap));
    assert.equal(report.prCurves!.car!.precision.length, 101);
    const errors = JSON.parse(await readFile(join(out, 'errors.geojson'), 'utf8')) as {
      features: { properties: Record<string, unknown>; geometry: { coordinates: number[][][] } }[];
    };
    assert.deepEqual(
      errors.features.map((f) => [
        f.properties.kind,
        f.properties.score,
        f.properties.iou,
        f.properties.class,
      ]),
      [
        ['fp', 0.7, 1, 'car'],
        ['fp', 0.5, 0, 'car'],
      ],
    );
    // the corner (120, 120) px of the far FP, transformed by GDAL from the scene's CRS
    const [wx, wy] = [GT[0] + 120 * GT[1], GT[3] + 120 * GT[5]];
    const gdal = execFileSync('gdaltransform', ['-s_srs', `EPSG:${EPSG}`, '-t_srs', 'OGC:CRS84'], {
      input: `${wx} ${wy}\n`,
    })
      .toString()
      .trim()
      .split(/\s+/)
      .map(Number);
    const [lon, lat] = errors.features[1]!.geometry.coordinates[0]![0]!;
    assert.ok(
      Math.abs(lon! - gdal[0]!) < 1e-7 && Math.abs(lat! - gdal[1]!) < 1e-7,
      `${lon},${lat} vs ${gdal.join(',')}`,
    );
  });

  it('scenes are matched by id: predictions without truth are listed, truth without predictions is all FN', async () => {
    const preds = join(dir, 'pred-scenes');
    await mkdir(preds, { recursive: true });
    const shard = await readFile(join(coco(), 's1.json'), 'utf8');
    await writeFile(join(preds, 's1.json'), shard);
    await writeFile(join(preds, 'only-pred.json'), shard);
    const truthDir = join(dir, 'truth-scenes');
    await mkdir(truthDir, { recursive: true });
    await writeFile(join(truthDir, 's1.json'), shard);
    await writeFile(join(truthDir, 'only-truth.json'), shard);
    const report = await evaluate(storage, {
      predictions: preds,
      truth: truthDir,
      out: join(dir, 'out-scenes'),
    });
    assert.deepEqual(report.scenes.evaluated, ['only-truth', 's1']);
    assert.deepEqual(report.scenes.predictionsWithoutTruth, ['only-pred']);
    assert.deepEqual(report.scenes.truthWithoutPredictions, ['only-truth']);
    const d = report.overall.detection!;
    assert.deepEqual([d.tp, d.fp, d.fn], [6, 0, 6]);
    assert.equal(d.recall, 0.5);
    assert.equal(report.perScene['only-truth']!.detection!.recall, 0);
    assert.equal(report.perScene.s1!.detection!.f1, 1);
  });

  describe('bad input: one clear line, nothing written', () => {
    const cases: [string, () => Promise<Parameters<typeof evaluate>[1]>, RegExp][] = [
      [
        'truth in another CRS than it says (outside the footprint)',
        async () => {
          const t = join(dir, 'bad-crs');
          await mkdir(t, { recursive: true });
          // UTM 33N coordinates labelled as UTM 34N: 6 degrees east, off the scene
          await writeFile(join(t, 's1.geojson'), geoLabelsText(FEATURES, { crsName: 'EPSG:32634' }));
          return { predictions: coco(), truth: t, out: join(dir, 'never-1'), images: join(dir, 'scenes') };
        },
        /truth .*s1\.geojson: none of its 7 polygons lies on the scene\(s\) 's1' \[500000, 4499920, 500100, 4500000\] in EPSG:32633: read as EPSG:32634, they are outside the footprint/,
      ],
      [
        'an unknown CRS',
        async () => {
          const t = join(dir, 'bad-crs-2');
          await mkdir(t, { recursive: true });
          await writeFile(join(t, 's1.geojson'), geoLabelsText(FEATURES, { crsName: 'EPSG:999999' }));
          return { predictions: coco(), truth: t, out: join(dir, 'never-2') };
        },
        /truth: .*s1\.geojson: .*999999/,
      ],
      [
        'segmentation predictions against box truth',
        async () => {
          const t = join(dir, 'boxes');
          await mkdir(t, { recursive: true });
          const shard = JSON.parse(await readFile(join(coco(), 's1.json'), 'utf8')) as {
            annotations: Record<string, unknown>[];
          };
          for (const a of shard.annotations) delete a.segmentation;
          await writeFile(join(t, 's1.json'), JSON.stringify(shard));
          return { predictions: join(dir, 'pred-seg'), truth: t, out: join(dir, 'never-3') };
        },
        /box truth \(annotations without segmentation polygons\) cannot score segmentation predictions/,
      ],
      [
        'detection predictions against mask truth',
        async () => ({ predictions: coco(), truth: masks(), out: join(dir, 'never-4') }),
        /class masks score segmentation, but the predictions .* are detections/,
      ],
      [
        'a predict.json naming a missing file',
        async () => {
          const p = join(dir, 'pred-missing');
          await writePredictFolder(p, 's1', { task: 'detection', detections: [] });
          await rm(join(p, 's1.coco.json'));
          return { predictions: p, truth: coco(), out: join(dir, 'never-5') };
        },
        /s1\.predict\.json: names s1\.coco\.json under 'outputs', which does not exist/,
      ],
      [
        'a truth class the model does not have',
        async () => {
          const t = join(dir, 'trees');
          await mkdir(t, { recursive: true });
          await writeFile(
            join(t, 's1.geojson'),
            geoLabelsText([
              ...FEATURES,
              {
                rings: [
                  [
                    [1, 1],
                    [5, 1],
                    [5, 5],
                  ],
                ],
                cls: 'tree',
              },
            ]),
          );
          return { predictions: join(dir, 'pred-hand'), truth: t, out: join(dir, 'never-6') };
        },
        /unknown classes 'building' \(4 in .*\), 'tree' \(1 in .*\); the predictions' classes are 1 'car'/,
      ],
      [
        'scene ids that match nothing',
        async () => {
          const p = join(dir, 'pred-other-name');
          await mkdir(p, { recursive: true });
          await writeFile(join(p, 'S1-final.json'), await readFile(join(coco(), 's1.json')));
          return { predictions: p, truth: coco(), out: join(dir, 'never-9') };
        },
        /no scene has both predictions and truth: predictions S1-final; truth s1 \(scenes are matched by file stem/,
      ],
      [
        'a predict folder holding only parts of a split scene',
        async () => {
          const p = join(dir, 'pred-parts');
          await mkdir(p, { recursive: true });
          await writeFile(
            join(p, 's1.part-1-of-2.json'),
            JSON.stringify({ format: 'geobatch-predictions-part' }),
          );
          return { predictions: p, truth: coco(), out: join(dir, 'never-10') };
        },
        /only parts of split scenes .* predict has not finished joining them/,
      ],
      [
        'no such predictions folder',
        async () => ({ predictions: join(dir, 'nope'), truth: coco(), out: join(dir, 'never-7') }),
        /predictions .*nope: no such file or folder/,
      ],
      [
        'predictions and truth of different sizes',
        async () => {
          const t = join(dir, 'other-size');
          await mkdir(t, { recursive: true });
          const shard = JSON.parse(await readFile(join(coco(), 's1.json'), 'utf8')) as {
            images: { width: number }[];
          };
          shard.images[0]!.width = 300;
          await writeFile(join(t, 's1.json'), JSON.stringify(shard));
          return { predictions: join(dir, 'pred-hand'), truth: t, out: join(dir, 'never-8') };
        },
        /scene 's1': the predictions .* and the truth .* are on different grids \(200 x 160 px vs 300 x 160 px\)/,
      ],
    ];
    for (const [name, make, message] of cases) {
      it(name, async () => {
        const options = await make();
        await assert.rejects(evaluate(storage, options), (error: Error) => {
          assert.equal(error.name, 'EvalError', error.stack);
          assert.match(error.message, message);
          assert.ok(!error.message.includes('\n'), error.message);
          return true;
        });
        await assert.rejects(readdir(options.out), /ENOENT/);
      });
    }
  });

  it('geobatch eval prints the scores and writes eval.json; bad input exits 1 with one line', async () => {
    const out = join(dir, 'out-cli');
    const ok = await geobatch([
      'eval',
      '--predictions',
      join(dir, 'pred-hand'),
      '--truth',
      join(dir, 'truth-hand'),
      '--out',
      out,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /TP 3, FP 2, FN 0: precision 0\.600, recall 1\.000, F1 0\.750 at IoU 0\.5/);
    assert.match(ok.stdout, /AP@0\.5 0\.916, AP@\[\.5:\.95\] 0\.591/);
    const json = JSON.parse(await readFile(join(out, 'eval.json'), 'utf8')) as EvalReport;
    assert.equal(json.overall.detection!.f1, 0.75);
    const bad = await geobatch([
      'eval',
      '--predictions',
      join(dir, 'nope'),
      '--truth',
      coco(),
      '--out',
      join(dir, 'never-cli'),
    ]);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    assert.match(bad.stderr, /^geobatch: predictions .*nope: no such file or folder/);
  });
});
