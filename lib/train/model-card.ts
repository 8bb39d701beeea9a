/** MODEL_CARD.md: what was trained, on what, how well, and how to load it. */
import type { TrainerConfig } from './config.js';
import { PRIMARY_METRIC } from './config.js';
import type { PreparedDataset } from './dataset.js';
import type { ModelBundle } from '../predict/bundle.js';
import type { EnvEvent } from './events.js';
import type { OnnxCheckResult } from './onnx.js';

export interface MetricsFile {
  readonly task: string;
  readonly model: string;
  readonly weightsUsed?: string;
  readonly worldSize?: number;
  readonly epochs: readonly {
    epoch: number;
    trainLoss: number | null;
    seconds: number;
    imagesPerSecond: number;
    metrics: Record<string, unknown>;
  }[];
  readonly final: Record<string, unknown>;
  readonly bestEpoch: number | null;
  readonly threshold?: number | null;
  readonly onnxCheck?: OnnxCheckResult;
}

export interface ModelCardInput {
  readonly config: TrainerConfig;
  readonly dataset: PreparedDataset;
  readonly metrics: MetricsFile;
  readonly onnx?: OnnxCheckResult;
  /** bundle.json, when one was written (with model.onnx). */
  readonly bundle?: ModelBundle;
  readonly env: EnvEvent;
  /** Where the run's artifacts are (URI of the output folder). */
  readonly out: string;
  readonly smoke: boolean;
}

const num = (v: unknown, digits = 4) =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';

const MODEL_TEXT: Record<string, string> = {
  fasterrcnn_resnet50_fpn: 'Faster R-CNN, ResNet-50-FPN backbone (torchvision)',
  fasterrcnn_mobilenet_v3_large_fpn: 'Faster R-CNN, MobileNetV3-Large-FPN backbone (torchvision)',
  fasterrcnn_mobilenet_v3_large_320_fpn: 'Faster R-CNN, MobileNetV3-Large-FPN backbone, 320 px (torchvision)',
  deeplabv3_resnet50: 'DeepLabV3, ResNet-50 backbone (torchvision)',
  fcn_resnet50: 'FCN, ResNet-50 backbone (torchvision)',
  unet: 'U-Net-style encoder-decoder',
  resnet50: 'ResNet-50 backbone with an MLP head, multi-label (sigmoid, BCE-with-logits)',
  resnet18: 'ResNet-18 backbone with an MLP head, multi-label (sigmoid, BCE-with-logits)',
};

function scenesLine(meta: Record<string, unknown> | undefined): string[] {
  const scenes = meta?.['scenes'];
  if (!scenes || typeof scenes !== 'object')
    return ['- Scenes per split: not recorded (plain folder dataset)'];
  if (Array.isArray(scenes)) return [`- Scenes: ${scenes.length}`];
  return Object.entries(scenes as Record<string, unknown>).map(([split, list]) =>
    Array.isArray(list)
      ? `- Scenes in ${split}: ${list.length} (${list
          .slice(0, 10)
          .map((s) => (typeof s === 'string' ? s : JSON.stringify(s)))
          .join(', ')}${list.length > 10 ? ', ...' : ''})`
      : `- Scenes in ${split}: ${JSON.stringify(list)}`,
  );
}

function metricColumns(task: string): string[] {
  if (task === 'detection') return ['mAP50', 'mAP'];
  if (task === 'segmentation') return ['mIoU', 'meanF1'];
  return ['f1Samples', 'f1Macro', 'threshold'];
}

function bundleSection(b: ModelBundle | undefined): string[] {
  if (!b) return ['## Model bundle', '', 'Not written (no ONNX export).', ''];
  const c = b.conversion;
  return [
    '## Model bundle',
    '',
    '`bundle.json` tells `geobatch predict` how to apply the model as it was trained:',
    '',
    '| field | value |',
    '| :-- | :-- |',
    `| input | \`${b.input.name}\` ${b.input.size} x ${b.input.size} px, batch ${b.input.batch ?? 'dynamic'}, RGB in [0, 1], windows resized ${b.input.resize}; normalisation ${b.input.normalization} |`,
    `| outputs | ${b.outputs.join(', ')} |`,
    `| windows | ${b.windows.size} px, overlap ${b.windows.overlap} (as the training chips were cut) |`,
    `| band conversion | ${c.description} |`,
    `| score threshold | ${b.scoreThreshold ?? 'none'} (${b.thresholdFrom}) |`,
    '',
  ];
}

function loadingSection(c: TrainerConfig, bundle: ModelBundle | undefined): string[] {
  const size = bundle?.input.size ?? c.imageSize ?? 512;
  const batch = bundle ? bundle.input.batch : 1;
  const n = batch === null ? 'N' : String(batch);
  const py = [
    '```python',
    'import sys, torch',
    "sys.path.insert(0, 'jobs/train')  # the geobatch repository's trainer package",
    'from geobatch_trainer.models import build_model  # the constructor the trainer used',
    "ckpt = torch.load('model.pt', map_location='cpu')",
    "model, _ = build_model(ckpt['task'], ckpt['model'], len(ckpt['classes']), 'none', False, ckpt['imageSize'], print)",
    "model.load_state_dict(ckpt['state_dict'])",
    'model.eval()',
    "# ckpt['classes'], ckpt['imageSize'] and (classification) ckpt['threshold'] describe the outputs",
    '```',
  ];
  const outputs =
    c.task === 'detection'
      ? 'boxes [N,4] (x1,y1,x2,y2 pixels of the input), labels [N] (index into the classes, 1-based), scores [N]'
      : c.task === 'segmentation'
        ? `logits [${n}, classes + 1, S, S] (argmax: 0 = background, k = k-th class)`
        : `scores [${n}, classes] (sigmoid; a class is present when its score >= the threshold)`;
  return [
    '## How to load',
    '',
    'PyTorch (model.pt holds the state_dict and task, model, classes, imageSize, threshold):',
    '',
    ...py,
    '',
    `onnxruntime-node (model.onnx, opset 11; input \`image\` float32 [${n}, 3, ${size}, ${size}], RGB scaled to 0..1${batch === null ? ', N images per run' : ''}):`,
    '',
    '```js',
    "import * as ort from 'onnxruntime-node';",
    "const session = await ort.InferenceSession.create('model.onnx');",
    `const image = new ort.Tensor('float32', pixels /* Float32Array, CHW */, [1, 3, ${size}, ${size}]);`,
    'const outputs = await session.run({ image });',
    '```',
    '',
    `Outputs: ${outputs}.`,
    '',
  ];
}

/** The model card's Markdown. */
export function modelCard(input: ModelCardInput): string {
  const { config: c, dataset: d, metrics: m, onnx } = input;
  const primary = PRIMARY_METRIC[c.task];
  const cols = metricColumns(c.task);
  const weights =
    m.weightsUsed === 'scratch'
      ? 'random initialisation (pretrained weights were requested but could not be loaded; allowScratch was set)'
      : m.weightsUsed === 'none' || c.weights === 'none'
        ? 'random initialisation (weights: none)'
        : "torchvision's default pretrained weights (ImageNet / COCO)";
  const lines = [
    `# Model card: ${c.task}, ${c.model}`,
    '',
    input.smoke
      ? '> **Smoke run**: 2 epochs of a few steps on a CPU-sized model; the numbers below only show that the setup works.\n'
      : '',
    '## Summary',
    '',
    `- Task: ${c.task}${c.task === 'classification' ? ' (multi-label: the categories present in a chip)' : ''}`,
    `- Model: ${MODEL_TEXT[c.model] ?? c.model} (\`${c.model}\`)`,
    `- Weights: ${weights}`,
    `- Final ${primary}: ${num(m.final[primary])} (best epoch: ${m.bestEpoch ?? '–'})`,
    `- Artifacts: \`${input.out}\` (model.pt, model.onnx, bundle.json, metrics.json, curves.png, checkpoints/)`,
    `- Trained with: Python ${input.env.python}, torch ${input.env.torch}, torchvision ${input.env.torchvision}, ${m.worldSize ?? 1} process(es), ${input.env.cuda ? `${input.env.gpus} GPU(s)` : 'CPU'}`,
    '',
    '## Data',
    '',
    `- Dataset: \`${d.uri}\``,
    `- Images: \`${d.imagesRoot}\``,
    ...scenesLine(d.meta),
    `- Train: ${d.splits.train.images} images, ${d.splits.train.annotations} annotations`,
    `- Validation: ${d.splits.val.images} images, ${d.splits.val.annotations} annotations`,
    '',
    '| id | class | train annotations | val annotations |',
    '| --: | :-- | --: | --: |',
    ...d.classes.map(
      (k) =>
        `| ${k.id} | ${k.name} | ${d.splits.train.perClass[k.name] ?? 0} | ${d.splits.val.perClass[k.name] ?? 0} |`,
    ),
    '',
    '## Training parameters',
    '',
    '| parameter | value |',
    '| :-- | :-- |',
    ...(
      [
        ['epochs', c.epochs],
        ['batch size (per process)', c.batchSize],
        ['learning rate', c.lr ?? "trainer's default"],
        ['optimizer', `${c.optimizer} (momentum ${c.momentum}, weight decay ${c.weightDecay})`],
        ['image size', c.imageSize ?? "trainer's default"],
        ['max steps per epoch', c.maxStepsPerEpoch ?? 'all'],
        ['seed', c.seed],
        ['data loader workers', c.workers],
      ] as const
    ).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '## Metrics per epoch (validation)',
    '',
    `| epoch | train loss | ${cols.join(' | ')} | images/s | seconds |`,
    `| --: | --: | ${cols.map(() => '--:').join(' | ')} | --: | --: |`,
    ...m.epochs.map(
      (e) =>
        `| ${e.epoch} | ${num(e.trainLoss)} | ${cols.map((k) => num(e.metrics[k])).join(' | ')} | ${num(e.imagesPerSecond, 1)} | ${num(e.seconds, 1)} |`,
    ),
    '',
    '![loss and metric curves](curves.png)',
    '',
    '### Final, per class',
    '',
    ...perClassTable(m.final),
    '',
    '## ONNX check',
    '',
    ...(onnx
      ? [
          `${onnx.ok ? 'Passed' : '**Failed**'}: model.onnx loaded with ${onnx.runtime} and run on the check input [${onnx.inputShape.join(', ')}]; outputs compared with PyTorch's (tolerance ${onnx.rtol} relative + ${onnx.atol} absolute).`,
          '',
          '| output | shape | max abs difference | ok |',
          '| :-- | :-- | --: | :-- |',
          ...onnx.outputs.map(
            (o) =>
              `| ${o.name} | [${o.shape.join(', ')}] | ${Number.isFinite(o.maxAbsDiff) ? o.maxAbsDiff.toExponential(2) : '–'} | ${o.ok ? (o.note ? `yes; ${o.note}` : 'yes') : `no: ${o.problem}`} |`,
          ),
        ]
      : ['Not checked (no ONNX export).']),
    '',
    ...bundleSection(input.bundle),
    ...loadingSection(c, input.bundle),
    '## Limitations',
    '',
    d.meta
      ? '- Evaluated on the validation split only, which was split by scene: the metrics say how the model does on other scenes of the same imagery, not on other sensors, seasons or regions.'
      : '- Evaluated on the validation split only; this dataset records no scenes, so chips of one scene may be on both sides of the split and the metrics may be optimistic.',
    `- Inputs must look like the training chips: 8-bit RGB made from the scenes as the model bundle's band conversion says, resized to ${input.bundle?.input.size ?? c.imageSize ?? 'the trained size'} px; other band orders, bit depths or ground sample distances are out of distribution.`,
    ...(c.task === 'detection'
      ? [
          "- The ONNX export has a fixed input size and returns at most the detector's post-NMS boxes; small objects below a few pixels at that size are not found.",
        ]
      : []),
    ...(c.task === 'classification'
      ? [
          `- The decision threshold (${num(m.threshold ?? m.final['threshold'], 3)}) was chosen on the validation split, so its F1 there is optimistic.`,
        ]
      : []),
    ...(d.splits.val.images < 50
      ? [`- The validation split is small (${d.splits.val.images} images): the metrics are noisy.`]
      : []),
    '',
  ];
  return lines.filter((l, i) => !(l === '' && lines[i - 1] === '')).join('\n');
}

function perClassTable(final: Record<string, unknown>): string[] {
  const per = final['perClass'];
  if (!per || typeof per !== 'object') return ['No per-class metrics.'];
  const entries = Object.entries(per as Record<string, Record<string, unknown>>);
  const keys = [...new Set(entries.flatMap(([, v]) => Object.keys(v ?? {})))];
  return [
    `| class | ${keys.join(' | ')} |`,
    `| :-- | ${keys.map(() => '--:').join(' | ')} |`,
    ...entries.map(([name, v]) => `| ${name} | ${keys.map((k) => num(v?.[k])).join(' | ')} |`),
  ];
}
