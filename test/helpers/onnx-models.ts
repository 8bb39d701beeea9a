/**
 * Untrained (seeded random-init) models exported to ONNX by the project's own trainer code
 * (geobatch_trainer.models + export), with a model bundle, for tests and benchmarks of predict,
 * eval and embed. A random-init Faster R-CNN scores every proposal about 1 / (classes + 1), so it
 * yields many boxes: enough to exercise merging and outputs. Cached per configuration under the
 * OS temp folder (an export takes seconds), written to a temporary folder and renamed.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BUNDLE_FILE, BUNDLE_FORMAT, type BundleTask, type ModelBundle } from '../../lib/predict/bundle.js';
import { findPython, pythonPath } from '../../lib/train/python.js';

const run = promisify(execFile);

export const SMOKE_MODEL: Readonly<Record<BundleTask, string>> = {
  detection: 'fasterrcnn_mobilenet_v3_large_320_fpn',
  segmentation: 'unet',
  classification: 'resnet18',
};

export interface UntrainedModelOptions {
  readonly task: BundleTask;
  /** @default the task's CPU-sized model */
  readonly model?: string;
  /** @default building, vehicle, storage_tank with ids 1, 2, 3 */
  readonly classes?: readonly { readonly id: number; readonly name: string }[];
  /** Network input size. @default 320 detection, 128 else */
  readonly size?: number;
  readonly seed?: number;
  /** Bundle fields to override (windows, conversion, scoreThreshold...). */
  readonly bundle?: Partial<ModelBundle>;
  /**
   * Also write `model.pt`, the state_dict of the exported network, so that a benchmark can run
   * the very same weights in PyTorch. @default false
   */
  readonly stateDict?: boolean;
}

export const DEFAULT_CLASSES = [
  { id: 1, name: 'building' },
  { id: 2, name: 'vehicle' },
  { id: 3, name: 'storage_tank' },
] as const;

const EXPORT = `
import json, sys, torch
from geobatch_trainer.models import build_model
from geobatch_trainer.export import export_onnx
cfg = json.loads(sys.argv[1])
torch.manual_seed(cfg["seed"])
model, _ = build_model(cfg["task"], cfg["model"], cfg["classes"], "none", False, cfg["size"], lambda m: None)
model.eval()
export_onnx(model, cfg["task"], cfg["size"], cfg["out"])
if cfg.get("state"):
    torch.save(model.state_dict(), cfg["out"] + "/model.pt")
`;

/** The folder of an untrained model: model.onnx, onnx-check*, bundle.json (and model.pt when asked). */
export async function untrainedModel(options: UntrainedModelOptions): Promise<string> {
  const task = options.task;
  const model = options.model ?? SMOKE_MODEL[task];
  const classes = options.classes ?? DEFAULT_CLASSES;
  const size = options.size ?? (task === 'detection' ? 320 : 128);
  const seed = options.seed ?? 0;
  const state = options.stateDict === true;
  // models without model.pt keep the key (and the cache folder) they had before the option
  const exportKey = JSON.stringify({
    task,
    model,
    classes: classes.length,
    size,
    seed,
    // 3: classifiers export their embedding
    v: 3,
    ...(state ? { state } : {}),
  });
  const hash = createHash('sha256')
    .update(exportKey + JSON.stringify(classes) + JSON.stringify(options.bundle ?? {}))
    .digest('hex')
    .slice(0, 16);
  const dir = join(tmpdir(), 'geobatch-test-models', `${task}-${hash}`);
  if (existsSync(join(dir, BUNDLE_FILE))) return dir;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    const python = await findPython();
    const trainer = python.trainerDir;
    await run(
      python.python,
      ['-c', EXPORT, JSON.stringify({ task, model, classes: classes.length, size, seed, out: tmp, state })],
      { env: { ...process.env, PYTHONPATH: pythonPath(trainer) }, maxBuffer: 1 << 24 },
    );
    // the classifier's embedding: its length is the check output's (as lib/train/bundle.ts reads it)
    const check = JSON.parse(await readFile(join(tmp, 'onnx-check.json'), 'utf8')) as {
      outputs: { name: string; shape: number[] }[];
    };
    const embedding = check.outputs.find((o) => o.name === 'embedding');
    const bundle: ModelBundle = {
      format: BUNDLE_FORMAT,
      version: 1,
      task,
      model,
      onnx: 'model.onnx',
      classes: classes.map((c) => ({ id: c.id, name: c.name })),
      input: {
        name: 'image',
        size,
        // the export's batch axis: dynamic except for detection (jobs/train/PROTOCOL.md)
        batch: task === 'detection' ? 1 : null,
        range: [0, 1],
        layout: 'NCHW',
        resize: 'bilinear',
        normalization: 'inside the model (ImageNet mean and std)',
      },
      outputs:
        task === 'detection'
          ? ['boxes', 'labels', 'scores']
          : task === 'segmentation'
            ? ['logits']
            : ['scores', 'embedding'],
      ...(embedding ? { embedding: { output: 'embedding', dim: embedding.shape[1]! } } : {}),
      windows: { size, overlap: 0.2 },
      conversion: {
        sourceBands: null,
        sourceType: null,
        bands: null,
        stretch: null,
        description: '8-bit RGB chips taken as they were',
      },
      scoreThreshold: task === 'segmentation' ? null : 0.3,
      thresholdFrom: 'fixed for tests',
      metrics: {},
      createdAt: '2026-01-01T00:00:00.000Z',
      ...options.bundle,
    };
    await writeFile(join(tmp, BUNDLE_FILE), JSON.stringify(bundle, null, 2) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    throw error;
  }
  return dir;
}
