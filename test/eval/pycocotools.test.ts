// COCO AP@0.5 and AP@[.5:.95] of evaluate() against pycocotools' COCOeval on random scenes
// (several images and classes, duplicates, near misses, tied scores), maxDets set high on both
// sides. Needs a Python with pycocotools: GEOBATCH_PYCOCOTOOLS_PYTHON, else python3 or
// /usr/bin/python3 if one of them imports it; skipped (saying so) when none does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { evaluate } from '../../lib/eval/eval.js';
import { createStorage } from '../../lib/storage/index.js';

function pythonWithPycocotools(): string | undefined {
  const candidates = [process.env.GEOBATCH_PYCOCOTOOLS_PYTHON, 'python3', '/usr/bin/python3'];
  for (const python of candidates) {
    if (!python) continue;
    const r = spawnSync(python, ['-c', 'import pycocotools.cocoeval'], { stdio: 'ignore' });
    if (r.status === 0) return python;
  }
  return undefined;
}

const SCRIPT = `
import json, sys, io, contextlib
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt_path, dt_path = sys.argv[1], sys.argv[2]
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_path)
    dt = gt.loadRes(dt_path)
    e = COCOeval(gt, dt, 'bbox')
    e.params.maxDets = [1, 10, 1000000]
    e.evaluate(); e.accumulate()
# precision[iou, recall, class, area range 'all', the last maxDets]; -1 where a class has no truth
p = e.eval['precision'][:, :, :, 0, -1]
p50 = p[0]
print(json.dumps({'ap': float(p[p > -1].mean()), 'ap50': float(p50[p50 > -1].mean())}))
`;

const python = pythonWithPycocotools();
const storage = createStorage();

describe('COCO AP against pycocotools', { skip: python ? false : 'no Python with pycocotools found' }, () => {
  let dir: string | undefined;
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('matches COCOeval on 12 random cases (to the 6 decimals of eval.json)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-pycoco-'));
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const categories = [
      { id: 3, name: 'a' },
      { id: 5, name: 'b' },
      { id: 9, name: 'c' },
    ];
    for (let round = 0; round < 12; round++) {
      const caseDir = join(dir, `case-${round}`);
      const truthDir = join(caseDir, 'truth');
      const predDir = join(caseDir, 'pred');
      await mkdir(truthDir, { recursive: true });
      await mkdir(predDir, { recursive: true });
      const all = { images: [] as unknown[], annotations: [] as unknown[], categories };
      const results: unknown[] = [];
      const images = 2 + Math.floor(rand() * 3);
      for (let img = 1; img <= images; img++) {
        const id = `s${String(img).padStart(2, '0')}`;
        const W = 400;
        const gts: { bbox: number[]; category_id: number }[] = [];
        const n = Math.floor(rand() * 30);
        for (let k = 0; k < n; k++) {
          const w = 4 + rand() * 40;
          const h = 4 + rand() * 40;
          gts.push({
            bbox: [rand() * (W - w), rand() * (W - h), w, h].map((v) => Math.round(v * 100) / 100),
            category_id: categories[Math.floor(rand() * 3)]!.id,
          });
        }
        const dts: { bbox: number[]; category_id: number; score: number }[] = [];
        for (const g of gts) {
          const copies = rand() < 0.15 ? 0 : rand() < 0.2 ? 2 : 1;
          for (let c = 0; c < copies; c++) {
            const j = () => (rand() - 0.5) * g.bbox[2]! * 0.5;
            dts.push({
              bbox: [
                g.bbox[0]! + j(),
                g.bbox[1]! + j(),
                g.bbox[2]! * (0.7 + rand() * 0.6),
                g.bbox[3]! * (0.7 + rand() * 0.6),
              ].map((v) => Math.round(v * 100) / 100),
              // mostly the right class, sometimes another
              category_id: rand() < 0.9 ? g.category_id : categories[Math.floor(rand() * 3)]!.id,
              // one decimal: many tied scores, within and across images
              score: Math.round(rand() * 10) / 10,
            });
          }
        }
        for (let k = Math.floor(rand() * 8); k > 0; k--) {
          dts.push({
            bbox: [rand() * 350, rand() * 350, 5 + rand() * 40, 5 + rand() * 40].map(
              (v) => Math.round(v * 100) / 100,
            ),
            category_id: categories[Math.floor(rand() * 3)]!.id,
            score: Math.round(rand() * 10) / 10,
          });
        }
        const image = { id: img, file_name: `${id}.tif`, width: W, height: W };
        const annotations = gts.map((g, k) => ({
          id: k + 1,
          image_id: 1,
          ...g,
          area: g.bbox[2]! * g.bbox[3]!,
          iscrowd: 0,
        }));
        await writeFile(
          join(truthDir, `${id}.json`),
          JSON.stringify({ images: [{ ...image, id: 1 }], categories, annotations }),
        );
        const preds = dts.map((d, k) => ({
          id: k + 1,
          image_id: 1,
          ...d,
          area: d.bbox[2]! * d.bbox[3]!,
          iscrowd: 0,
        }));
        await writeFile(
          join(predDir, `${id}.json`),
          JSON.stringify({ images: [{ ...image, id: 1 }], categories, annotations: preds }),
        );
        all.images.push(image);
        const base = all.annotations.length;
        all.annotations.push(...annotations.map((a, k) => ({ ...a, id: base + k + 1, image_id: img })));
        results.push(...dts.map((d) => ({ ...d, image_id: img })));
      }
      if (results.length === 0) continue;
      await writeFile(join(caseDir, 'gt.json'), JSON.stringify(all));
      await writeFile(join(caseDir, 'dt.json'), JSON.stringify(results));
      const py = spawnSync(python!, ['-c', SCRIPT, join(caseDir, 'gt.json'), join(caseDir, 'dt.json')], {
        encoding: 'utf8',
      });
      assert.equal(py.status, 0, py.stderr);
      const expected = JSON.parse(py.stdout.trim().split('\n').pop()!) as { ap: number; ap50: number };
      const report = await evaluate(storage, {
        predictions: predDir,
        truth: truthDir,
        out: join(caseDir, 'out'),
      });
      const d = report.overall.detection!;
      // eval.json rounds to 6 decimals
      assert.ok(
        Math.abs(d.ap50! - expected.ap50) < 1e-6,
        `case ${round}: AP@0.5 ${d.ap50} vs pycocotools ${expected.ap50}`,
      );
      assert.ok(
        Math.abs(d.ap! - expected.ap) < 1e-6,
        `case ${round}: AP ${d.ap} vs pycocotools ${expected.ap}`,
      );
    }
  });
});
