// geobatch embed: chips of a dataset and of chip folders (from a pipeline over demo scenes) through
// a classifier's embedding output, checked against PyTorch; the embed stage, S3, reruns, bad input.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { catalog } from '../../jobs/catalog.js';
import { embedChips } from '../../lib/embed/embed.js';
import type { EmbedManifest } from '../../lib/embed/embeddings.js';
import { EmbedError } from '../../lib/embed/errors.js';
import { compilePipeline, parsePipeline } from '../../lib/pipeline/index.js';
import { planSubmission, targetFromDescriptor } from '../../lib/runners/batch-plan.js';
import { createStorage } from '../../lib/storage/index.js';
import { findPython, pythonPath } from '../../lib/train/python.js';
import { chipPipeline } from '../helpers/chip-pipeline.js';
import { geobatch } from '../helpers/cli.js';
import { untrainedModel } from '../helpers/onnx-models.js';
import { startS3rver } from '../helpers/s3rver.js';
import { runId, testDescriptor } from '../runners/batch-fixtures.js';

const run = promisify(execFile);

let skip: string | false = false;
try {
  await findPython();
} catch (error) {
  skip = `no Python with torch to export the model: ${(error as Error).message}`;
}

interface ChipRow {
  id: number;
  name: string;
  image: string;
  source: string | null;
  window: [number, number, number, number] | null;
  footprint: { type: 'Polygon'; coordinates: number[][][] } | null;
  split: string | null;
  labels: string[];
}

/** The classifier's embedding computed by PyTorch from model.pt, each image read by Pillow as the trainer does. */
const TORCH_EMBED = `
import json, sys
import numpy as np, torch
import torch.nn.functional as F
from PIL import Image
from geobatch_trainer.models import build_model
cfg = json.loads(sys.argv[1])
model, _ = build_model("classification", "resnet18", cfg["classes"], "none", False, cfg["size"], lambda m: None)
model.load_state_dict(torch.load(cfg["state"], map_location="cpu"))
model.eval()
rows = []
with torch.no_grad():
    for path in cfg["images"]:
        im = Image.open(path).convert("RGB").resize((cfg["size"], cfg["size"]), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        features = model.backbone(model.norm(x))[0].numpy().astype(np.float64)
        rows.append(features / np.linalg.norm(features))
np.asarray(rows, dtype="<f4").tofile(cfg["out"])
`;

async function torchEmbeddings(model: string, images: readonly string[], size: number, out: string) {
  const python = await findPython();
  await run(
    python.python,
    ['-c', TORCH_EMBED, JSON.stringify({ classes: 3, size, state: join(model, 'model.pt'), images, out })],
    { env: { ...process.env, PYTHONPATH: pythonPath(python.trainerDir) }, maxBuffer: 1 << 24 },
  );
  return readVectors(await readFile(out));
}

function readVectors(bytes: Buffer): Float32Array {
  const copy = new Uint8Array(bytes);
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

const readRows = async (path: string): Promise<ChipRow[]> =>
  (await readFile(path, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as ChipRow);

function row(v: Float32Array, i: number, dim: number): Float32Array {
  return v.subarray(i * dim, (i + 1) * dim);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

async function runDir(root: string, name: string): Promise<string> {
  const runs = join(root, 'runs', name);
  return join(
    runs,
    (await readdir(runs)).find((n) => n !== 'latest.json')!,
  );
}

// the network input differs from the 128 px chips, so that the resize is exercised
const SIZE = 96;

describe('geobatch embed', { skip }, () => {
  let dir: string;
  let model: string;
  let runPath: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-embed-'));
    model = await untrainedModel({ task: 'classification', size: SIZE, stateDict: true, seed: 5 });
    const made = await geobatch(['demo-data', join(dir, 'data'), '--size', '320', '--scenes', '3']);
    assert.equal(made.code, 0, made.stderr);
    const pipeline = chipPipeline(
      'emb',
      `  merge:
    job: merge
    needs: [chips]
    params: { chips: chips, valFraction: 0.34, seed: 2, contactSheet: 0 }
  embed:
    job: embed
    needs: [merge]
    params: { model: ${model}, chips: merge, batchSize: 5 }
`,
    );
    await writeFile(join(dir, 'emb.yaml'), pipeline);
    const r = await geobatch(['run', join(dir, 'emb.yaml'), '--json'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    runPath = await runDir(dir, 'emb');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('the embed stage writes unit vectors of every dataset chip that equal PyTorch on model.pt', async () => {
    const out = join(runPath, 'embed');
    const manifest = JSON.parse(await readFile(join(out, 'embed.json'), 'utf8')) as EmbedManifest;
    const dataset = JSON.parse(await readFile(join(runPath, 'merge', 'dataset.json'), 'utf8')) as {
      counts: Record<string, { images: number }>;
    };
    const count = dataset.counts['train']!.images + dataset.counts['val']!.images;
    assert.ok(count >= 6, `${count} chips`);
    assert.deepEqual(
      { ...manifest, createdAt: 'x', modelSha256: manifest.modelSha256.length },
      {
        version: 1,
        model,
        modelSha256: 64,
        output: 'embedding',
        dim: 512,
        count,
        dtype: 'float32',
        normalized: true,
        metric: 'cosine',
        vectors: 'vectors.f32',
        chips: 'chips.jsonl',
        createdAt: 'x',
      },
    );
    const vectors = readVectors(await readFile(join(out, 'vectors.f32')));
    assert.equal(vectors.length, count * 512);
    const rows = await readRows(join(out, 'chips.jsonl'));
    assert.deepEqual(
      rows.map((r) => r.id),
      rows.map((_, i) => i),
    );
    // the dataset's images, train then val, in file order, with their scene, split and labels
    const expected: Omit<ChipRow, 'id' | 'window' | 'footprint'>[] = [];
    for (const split of ['train', 'val']) {
      const coco = JSON.parse(await readFile(join(runPath, 'merge', `${split}.json`), 'utf8')) as {
        images: { id: number; file_name: string; scene: string }[];
        annotations: { image_id: number; category_id: number }[];
        categories: { id: number; name: string }[];
      };
      for (const image of coco.images) {
        const ids = new Set(
          coco.annotations.filter((a) => a.image_id === image.id).map((a) => a.category_id),
        );
        expected.push({
          name: image.file_name
            .split('/')
            .pop()!
            .replace(/\.jpg$/, ''),
          image: join(runPath, 'chips', image.file_name),
          source: image.scene,
          split,
          labels: coco.categories.filter((c) => ids.has(c.id)).map((c) => c.name),
        });
      }
    }
    assert.deepEqual(
      rows.map(({ name, image, source, split, labels }) => ({ name, image, source, split, labels })),
      expected,
    );
    assert.ok(rows.some((r) => r.labels.length > 0));
    // windows and footprints: the scene's chips.geojson
    const first = rows[0]!;
    const footprints = JSON.parse(
      await readFile(join(runPath, 'chips', first.source!, 'chips.geojson'), 'utf8'),
    ) as { features: { properties: { chip: string; window: number[] }; geometry: unknown }[] };
    const feature = footprints.features.find((f) => f.properties.chip === `${first.name}.jpg`)!;
    const [x0, y0, x1, y1] = feature.properties.window as [number, number, number, number];
    assert.deepEqual(first.window, [x0, y0, x1 - x0, y1 - y0]);
    assert.deepEqual(first.footprint, feature.geometry);
    assert.ok(rows.every((r) => r.footprint?.type === 'Polygon' && r.window?.[2] === 128));

    const torch = await torchEmbeddings(
      model,
      rows.map((r) => r.image),
      SIZE,
      join(dir, 'torch.f32'),
    );
    let worstCos = 1;
    let worstDiff = 0;
    for (let i = 0; i < count; i++) {
      const a = row(vectors, i, 512);
      assert.ok(Math.abs(Math.sqrt(dot(a, a)) - 1) < 1e-5, `row ${i} has norm ${Math.sqrt(dot(a, a))}`);
      const b = row(torch, i, 512);
      worstCos = Math.min(worstCos, dot(a, b));
      for (let j = 0; j < 512; j++) worstDiff = Math.max(worstDiff, Math.abs(a[j]! - b[j]!));
    }
    assert.ok(worstCos > 0.9999, `lowest cosine with PyTorch ${worstCos}`);
    assert.ok(worstDiff < 1e-3, `max |onnx - torch| ${worstDiff}`);
    // and the chips differ from one another (not one vector for all)
    assert.ok(dot(row(vectors, 0, 512), row(vectors, count - 1, 512)) < 0.9999);

    // what embed wrote is what similar reads: the nearest chip by its own brute force
    const similar = await geobatch(['similar', out, '--chip', first.name, '--k', '3', '--json']);
    assert.equal(similar.code, 0, similar.stderr);
    const found = JSON.parse(similar.stdout) as {
      neighbours: { id: number; score: number; footprint: unknown }[];
    };
    const q = row(vectors, 0, 512);
    const byScore = Array.from({ length: count - 1 }, (_, i) => i + 1)
      .map((i) => ({ i, s: dot(q, row(vectors, i, 512)) }))
      .sort((a, b) => b.s - a.s || a.i - b.i);
    assert.deepEqual(
      found.neighbours.map((n) => n.id),
      byScore.slice(0, 3).map((b) => b.i),
    );
    assert.ok(found.neighbours.every((n) => n.footprint !== null));
  });

  it('embeds chip folders from the CLI, --json; a rerun skips; another --limit recomputes', async () => {
    const out = join(dir, 'cli-out');
    const args = ['embed', '--model', model, '--chips', join(runPath, 'chips'), '--out', out];
    const r = await geobatch([...args, '--json', '--batch-size', '3']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { skipped: boolean; count: number; dim: number; input: string };
    assert.equal(summary.skipped, false);
    assert.equal(summary.input, 'chips');
    const rows = await readRows(join(out, 'chips.jsonl'));
    assert.equal(rows.length, summary.count);
    assert.ok(rows.every((r) => r.split === null && r.footprint !== null));
    // scenes in name order, chips in the order of their annotations.json
    const scenes = rows.map((r) => r.source!);
    assert.deepEqual(scenes, [...scenes].sort());
    const coco = JSON.parse(
      await readFile(join(runPath, 'chips', 'demo-001', 'annotations.json'), 'utf8'),
    ) as {
      images: { file_name: string }[];
    };
    assert.deepEqual(
      rows.filter((r) => r.source === 'demo-001').map((r) => `${r.name}.jpg`),
      coco.images.map((i) => i.file_name),
    );
    assert.equal(rows[0]!.image, join(runPath, 'chips', rows[0]!.source!, 'images', `${rows[0]!.name}.jpg`));
    // the same chip gives the same vector from the dataset (another batch size)
    const mine = readVectors(await readFile(join(out, 'vectors.f32')));
    const stage = readVectors(await readFile(join(runPath, 'embed', 'vectors.f32')));
    const stageRows = await readRows(join(runPath, 'embed', 'chips.jsonl'));
    const k = stageRows.findIndex((s) => s.image === rows[0]!.image);
    assert.ok(k >= 0);
    assert.ok(dot(row(mine, 0, 512), row(stage, k, 512)) > 0.99999);

    const manifest = await readFile(join(out, 'embed.json'), 'utf8');
    const again = await geobatch([...args, '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { skipped: boolean }).skipped, true);
    assert.equal(await readFile(join(out, 'embed.json'), 'utf8'), manifest);
    const text = await geobatch(args);
    assert.match(text.stdout, /already embedded with this model/);

    const limited = await geobatch([...args, '--limit', '2', '--json']);
    assert.equal(limited.code, 0, limited.stderr);
    assert.deepEqual(
      [
        (JSON.parse(limited.stdout) as { skipped: boolean }).skipped,
        (JSON.parse(limited.stdout) as { count: number }).count,
      ],
      [false, 2],
    );
    assert.deepEqual(readVectors(await readFile(join(out, 'vectors.f32'))), mine.subarray(0, 1024));
  });

  it('reads a model and chips on S3 and writes there', async () => {
    const server = await startS3rver();
    try {
      const bucket = await server.createBucket();
      const client = new S3Client(server.clientConfig);
      const scene = join(runPath, 'chips', 'demo-002');
      const files: [string, string][] = [
        ['train/model.onnx', join(model, 'model.onnx')],
        ['train/bundle.json', join(model, 'bundle.json')],
        ['chips/demo-002/annotations.json', join(scene, 'annotations.json')],
        ['chips/demo-002/chips.geojson', join(scene, 'chips.geojson')],
      ];
      for (const name of await readdir(join(scene, 'images')))
        files.push([`chips/demo-002/images/${name}`, join(scene, 'images', name)]);
      for (const [key, path] of files)
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(path) }));
      client.destroy();
      const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 's3-cache') });
      const result = await embedChips(s3, {
        model: `s3://${bucket}/train`,
        chips: `s3://${bucket}/chips`,
        out: `s3://${bucket}/emb`,
      });
      assert.equal(result.skipped, false);
      const keys: string[] = [];
      for await (const info of s3.list(`s3://${bucket}/emb/`)) keys.push(info.uri.split('/emb/')[1]!);
      assert.deepEqual(keys.sort(), ['chips.jsonl', 'embed.json', 'vectors.f32']);
      const rows = (await s3.read(`s3://${bucket}/emb/chips.jsonl`)).toString().trimEnd().split('\n');
      assert.equal(rows.length, result.manifest.count);
      assert.equal(
        (JSON.parse(rows[0]!) as ChipRow).image.startsWith(`s3://${bucket}/chips/demo-002/images/`),
        true,
      );
      // the same vectors as the local chips
      const local = await embedChips(createStorage(), { model, chips: scene, out: join(dir, 'local-002') });
      const a = readVectors(await s3.read(`s3://${bucket}/emb/vectors.f32`));
      const b = readVectors(await readFile(join(local.out, 'vectors.f32')));
      assert.equal(a.length, b.length);
      for (let i = 0; i < result.manifest.count; i++)
        assert.ok(dot(row(a, i, 512), row(b, i, 512)) > 0.99999);
      const again = await embedChips(s3, {
        model: `s3://${bucket}/train`,
        chips: `s3://${bucket}/chips`,
        out: `s3://${bucket}/emb`,
      });
      assert.equal(again.skipped, true);
    } finally {
      await server.stop();
    }
  });

  it('refuses models without an embedding, missing bundles, empty inputs and unreadable chips', async () => {
    const storage = createStorage();
    const chips = join(runPath, 'chips', 'demo-001');
    const expectError = async (options: { model: string; chips: string }, pattern: RegExp) => {
      const out = join(dir, `bad-${Math.random().toString(36).slice(2)}`);
      await assert.rejects(embedChips(storage, { ...options, out }), (error: unknown) => {
        assert.match((error as Error).message, pattern);
        return true;
      });
      await assert.rejects(readdir(out), /ENOENT/, 'nothing written');
    };
    const segmentation = await untrainedModel({ task: 'segmentation' });
    await expectError(
      { model: segmentation, chips },
      /bundle\.json: a segmentation model \(unet\) has no 'embedding' output: geobatch embed needs a classification model/,
    );
    const old = join(dir, 'old-model');
    await cp(model, old, { recursive: true });
    const bundle = JSON.parse(await readFile(join(old, 'bundle.json'), 'utf8')) as Record<string, unknown>;
    delete bundle['embedding'];
    bundle['outputs'] = ['scores'];
    await writeFile(join(old, 'bundle.json'), JSON.stringify(bundle));
    await expectError(
      { model: old, chips },
      /old-model\/bundle\.json: no 'embedding' in the model bundle: .*train it again/,
    );
    await expectError({ model: join(dir, 'data'), chips }, /not a trained model/);
    const empty = join(dir, 'empty');
    await mkdir(empty, { recursive: true });
    await expectError(
      { model, chips: empty },
      /--chips .*empty: .*no annotations\.json in it or in its direct subfolders/,
    );
    const broken = join(dir, 'broken', 'demo-001');
    await cp(chips, broken, { recursive: true });
    const victim = (await readdir(join(broken, 'images'))).sort()[1]!;
    await writeFile(join(broken, 'images', victim), 'not a jpeg');
    await expectError({ model, chips: broken }, new RegExp(`images/${victim}: not a readable image`));
    await rm(join(broken, 'images', victim));
    await expectError({ model, chips: broken }, new RegExp(`images/${victim}: cannot read the chip`));
    assert.ok(new EmbedError('x') instanceof Error);

    const cli = await geobatch([
      'embed',
      '--model',
      segmentation,
      '--chips',
      chips,
      '--out',
      join(dir, 'cli-bad'),
    ]);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /^geobatch: .*no 'embedding' output/m);
    assert.equal(cli.stderr.trim().split('\n').length, 1, cli.stderr);
  });

  it('refuses a stage reference that writes no model or chips, or is not listed under needs', async () => {
    const stage = (name: string, params: string, needs: string) =>
      `  ${name}:\n    job: embed\n    needs: [${needs}]\n    params: { ${params} }\n`;
    const text = chipPipeline(
      'bad',
      stage('nomodel', 'model: chips, chips: chips', 'chips') +
        stage('nochips', `model: ${model}, chips: rgb`, 'labels') +
        stage('unlisted', `model: ${model}, chips: chips`, 'labels'),
    );
    await writeFile(join(dir, 'bad.yaml'), text);
    const r = await geobatch(['run', join(dir, 'bad.yaml')], { cwd: dir });
    assert.notEqual(r.code, 0);
    const output = r.stdout + r.stderr;
    assert.match(
      output,
      /stages\.nomodel\.params\.model: stage 'chips' runs job 'chip'; expected a stage of job train/,
    );
    assert.match(
      output,
      /stages\.nochips\.params\.chips: stage 'rgb' runs job 'rgb'; expected a stage of job merge or chip or chip-grid/,
    );
    assert.match(
      output,
      /stages\.unlisted\.params\.chips: the embed job reads stage 'chips' when it has finished; list it under needs/,
    );
  });
});

describe('embed in the Batch plan', () => {
  it('runs on the CPU queue, and as embed-gpu on the GPU queue with resources.gpus: 1', () => {
    const text = [
      'version: 1',
      'name: emb',
      'inputs:',
      '  scenes: [data/*.tif]',
      'stages:',
      '  cpu:',
      '    job: embed',
      '    params: { model: s3://models/train, chips: s3://data/dataset }',
      '  gpu:',
      '    job: embed',
      '    resources: { gpus: 1 }',
      '    params: { model: s3://models/train, chips: s3://data/dataset }',
      '',
    ].join('\n');
    const parsed = parsePipeline(text, 'emb.yaml');
    const graph = compilePipeline(
      parsed.spec,
      { scenes: [{ id: 's1', uri: 's3://raw/s1.tif' }] },
      parsed.source,
    );
    const descriptor = testDescriptor();
    const arn = (job: string) => `arn:aws:batch:us-east-1:123456789012:job-definition/geobatch-test-${job}:1`;
    const target = targetFromDescriptor({
      ...descriptor,
      jobDefinitions: {
        ...descriptor.jobDefinitions,
        embed: { name: 'geobatch-test-embed', arn: arn('embed'), queue: 'cpu' as const },
        'embed-gpu': { name: 'geobatch-test-embed-gpu', arn: arn('embed-gpu'), queue: 'gpu' as const },
      },
    });
    const plan = planSubmission({ run: { runId, runUri: 's3://runs/r', graph }, target });
    const byStage = Object.fromEntries(plan.jobs.map((j) => [j.stage, j]));
    assert.match(String(byStage.cpu!.request.jobQueue), /geobatch-test-cpu$/);
    assert.match(String(byStage.cpu!.request.jobDefinition), /geobatch-test-embed:1$/);
    assert.match(String(byStage.gpu!.request.jobQueue), /geobatch-test-gpu$/);
    assert.equal(byStage.gpu!.job, 'embed-gpu');
    assert.equal(catalog.embed.granularity, 'stage');
    assert.deepEqual(catalog.embed.params.parse({ model: 'train', chips: 'merge' }), {
      model: 'train',
      chips: 'merge',
      batchSize: 16,
    });
  });
});
