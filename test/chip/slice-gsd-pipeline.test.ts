// A pipeline chip stage with `gsd:` through `geobatch run` (local runner): demo scenes (0.5 m)
// -> rgb -> xView COCO shards -> chips at 1 m, whole and split into parts (tasksPerItem); the
// parts join into the whole stage's annotations and chips, which are on the 1 m grid.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chipPipeline } from '../helpers/chip-pipeline.js';
import { geobatch } from '../helpers/cli.js';

const SCENE = 'demo-001';
const PARTS = 2;

interface Coco {
  images: { id: number; file_name: string; width: number; height: number; geotransform?: number[] }[];
  annotations: { id: number; image_id: number; bbox: number[] }[];
}

function pipeline(name: string, parts?: number): string {
  const text = chipPipeline(name);
  const params = '    params: { image: rgb, coco: labels, size: 128, overlap: 0.2, ignoreNegatives: true }\n';
  assert.ok(text.includes(params), 'the chip stage of chipPipeline changed: update this test');
  const resampled = text.replace(
    params,
    `${parts ? `    tasksPerItem: ${parts}\n` : ''}    params: { image: rgb, coco: labels, size: 48, overlap: 0.2, gsd: 1, format: tif }\n`,
  );
  return resampled;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function runDir(root: string, name: string): Promise<string> {
  const runs = join(root, 'runs', name);
  return join(
    runs,
    (await readdir(runs)).find((n) => n !== 'latest.json')!,
  );
}

describe('a chip stage with gsd in a pipeline', () => {
  let dir: string;
  let whole: string;
  let split: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-gsd-'));
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '320', '--scenes', '1']);
    assert.equal(made.code, 0, made.stderr);
    await writeFile(join(dir, 'whole.yaml'), pipeline('whole'));
    await writeFile(join(dir, 'split.yaml'), pipeline('split', PARTS));
    const a = await geobatch(['run', join(dir, 'whole.yaml'), '--json']);
    assert.equal(a.code, 0, a.stderr + a.stdout);
    const b = await geobatch(['run', join(dir, 'split.yaml'), '--json']);
    assert.equal(b.code, 0, b.stderr + b.stdout);
    whole = await runDir(dir, 'whole');
    split = await runDir(dir, 'split');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('cuts chips of the scene resampled from 0.5 m to 1 m, annotations scaled with it', async () => {
    const coco = await readJson<Coco>(join(whole, 'chips', SCENE, 'annotations.json'));
    // 320 px at 0.5 m is 160 px at 1 m: windows of 48 px, step 39, the last shifted back to 160
    const windows = coco.images.map((i) =>
      i.file_name
        .replace(/\.tif$/, '')
        .split('_')
        .slice(-4)
        .map(Number),
    );
    assert.deepEqual([...new Set(windows.map((w) => w[0]))], [0, 39, 78, 112]);
    assert.equal(Math.max(...windows.map((w) => w[2]!)), 160);
    assert.equal(Math.max(...windows.map((w) => w[3]!)), 160);
    for (const image of coco.images) {
      assert.deepEqual([image.width, image.height], [48, 48]);
      assert.deepEqual([image.geotransform![1], image.geotransform![5]], [1, -1]);
    }
    assert.ok(coco.annotations.length > 0, 'the demo labels reach the chips');
    for (const a of coco.annotations) {
      assert.ok(a.bbox[0]! >= 0 && a.bbox[0]! + a.bbox[2]! <= 48 + 1e-9, JSON.stringify(a.bbox));
    }
    const log = await readFile(join(whole, 'logs', 'chips', '0.log'), 'utf8');
    assert.match(log, /resampled to 1 m per pixel \(average, 320 x 320 -> 160 x 160 px\)/);
  });

  it('splits into parts that join into the whole stage (tasksPerItem)', async () => {
    const reference = await readJson<Coco>(join(whole, 'chips', SCENE, 'annotations.json'));
    const parts: Coco[] = [];
    for (let k = 1; k <= PARTS; k++) {
      parts.push(await readJson<Coco>(join(split, 'chips', SCENE, `annotations.part-${k}-of-${PARTS}.json`)));
    }
    assert.ok(parts.every((p) => p.images.length > 0));
    assert.deepEqual(
      parts.flatMap((p) => p.images),
      reference.images,
    );
    assert.deepEqual(
      parts.flatMap((p) => p.annotations),
      reference.annotations,
    );
    for (const image of reference.images) {
      const [a, b] = await Promise.all([
        readFile(join(whole, 'chips', SCENE, 'images', image.file_name)),
        readFile(join(split, 'chips', SCENE, 'images', image.file_name)),
      ]);
      assert.ok(a.equals(b), image.file_name);
    }
  });
});
