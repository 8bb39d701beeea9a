import { Command, Option } from 'commander';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainTask } from '../train/events.js';
import type { TrainProgress, TrainResult } from '../train/train.js';
import { InterruptedError, UsageError } from './errors.js';
import { renderStageLine } from './progress.js';
import { cliStorage } from './storage.js';
import { numberOption } from './options.js';

interface TrainCliOptions {
  dataset: string;
  out: string;
  task: TrainTask;
  model?: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  optimizer: 'sgd' | 'adamw';
  imageSize?: number;
  workers?: number;
  seed: number;
  weights: 'default' | 'none';
  allowScratch: boolean;
  smoke: boolean;
  device: 'auto' | 'cpu' | 'cuda';
  json: boolean;
  verbose: boolean;
}

/** One progress line (redrawn in place on a terminal): phase, bar, steps, elapsed, estimate, loss. */
function progressLine(p: TrainProgress, started: number, columns: number): string {
  const name = p.phase === 'sync' ? 'sync images' : `epoch ${p.epoch}/${p.epochs}`;
  const width = Math.max(10, Math.min(30, columns - 70));
  const line = renderStageLine(
    {
      name,
      tasks: p.total,
      done: p.done,
      skipped: 0,
      failed: 0,
      blocked: 0,
      running: 0,
      firstStart: started,
    },
    14,
    width,
    Date.now(),
  );
  if (p.phase === 'sync') return line;
  return `${line} · loss ${p.loss?.toFixed(4) ?? '–'} · ${p.imagesPerSecond.toFixed(1)} img/s`;
}

function summaryText(r: TrainResult): string {
  const fmt = (v: unknown) => (typeof v === 'number' ? v.toFixed(4) : String(v));
  const metrics = Object.entries(r.metrics)
    .filter(([k, v]) => k !== 'perClass' && typeof v === 'number')
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ');
  const perClass = Object.entries(
    (r.metrics['perClass'] ?? {}) as Record<string, Record<string, unknown>>,
  ).map(
    ([name, m]) =>
      `    ${name}: ${Object.entries(m)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ')}`,
  );
  return [
    `train: ${r.task} ${r.model}, ${r.epochs} epochs on ${r.device}${r.worldSize > 1 ? ` x${r.worldSize}` : ''} (weights ${r.weights})${r.resumedFrom !== null ? `, resumed after epoch ${r.resumedFrom}` : ''} in ${r.seconds.toFixed(1)} s` +
      (r.imagesPerSecond !== null ? `, ${r.imagesPerSecond.toFixed(1)} images/s` : ''),
    `  data: ${r.dataset.trainImages} train / ${r.dataset.valImages} val images, ${r.dataset.classes} classes (${r.dataset.uri})`,
    `  validation: ${metrics || 'no metrics'} (best epoch ${r.bestEpoch ?? '–'})`,
    ...perClass,
    `  ONNX check: ${r.onnx ? (r.onnx.ok ? `ok, max |diff| ${Math.max(...r.onnx.outputs.map((o) => o.maxAbsDiff)).toExponential(2)}` : 'MISMATCH') : 'not run'}`,
    '  artifacts:',
    ...Object.entries(r.artifacts).map(([name, uri]) => `    ${name.padEnd(22)} ${uri}`),
  ].join('\n');
}

/** `geobatch train` */
export const trainCommand = new Command('train')
  .summary('train a detection, segmentation or multi-label classification model on a dataset')
  .description(
    [
      'Train a PyTorch model on a dataset: the output of `geobatch dataset build`, or a',
      'folder with train.json, val.json and images/ (local or s3://, images synced to a',
      'local cache). Writes to --out: model.pt, model.onnx (checked with onnxruntime),',
      'metrics.json, curves.png, MODEL_CARD.md and checkpoints/epoch-NNNN.pt. Rerun',
      'with the same --out to resume from the last checkpoint there.',
      '',
      'Python: GEOBATCH_PYTHON, else the first of python3, python, /usr/bin/python3',
      'that imports torch and the trainer (GEOBATCH_TRAINER_DIR, default',
      '<repo>/jobs/train). Several GPUs: one process each (torch.distributed.run).',
      '',
      '--smoke checks a setup in minutes on a CPU: 2 epochs of 4 steps, batches of 2,',
      "the task's small model (fasterrcnn_mobilenet_v3_large_320_fpn, unet, resnet18).",
    ].join('\n'),
  )
  .requiredOption('--dataset <dir|uri>', 'dataset folder or s3:// prefix')
  .requiredOption('--out <dir|uri>', 'output folder or s3:// prefix')
  .addOption(
    new Option('--task <task>', 'what to learn')
      .choices(['detection', 'segmentation', 'classification'])
      .makeOptionMandatory(),
  )
  .option(
    '--model <name>',
    'detection: fasterrcnn_resnet50_fpn (default), fasterrcnn_mobilenet_v3_large_fpn, fasterrcnn_mobilenet_v3_large_320_fpn; segmentation: deeplabv3_resnet50 (default), fcn_resnet50, unet; classification: resnet50 (default), resnet18',
  )
  .option('--epochs <n>', 'epochs (default 10)', numberOption('--epochs', 1, 10_000, true))
  .option(
    '--batch-size <n>',
    'images per batch and per GPU (default 4)',
    numberOption('--batch-size', 1, 4096, true),
  )
  .option('--lr <x>', 'learning rate (default 0.01 sgd, 0.001 adamw)', numberOption('--lr', 1e-12, 10, false))
  .addOption(new Option('--optimizer <name>', 'optimizer').choices(['sgd', 'adamw']).default('sgd'))
  .option(
    '--image-size <px>',
    "chips are resized to this (default: the model's)",
    numberOption('--image-size', 32, 4096, true),
  )
  .option(
    '--workers <n>',
    'data loader processes (default 2, 0 with --smoke)',
    numberOption('--workers', 0, 64, true),
  )
  .option('--seed <n>', 'random seed', numberOption('--seed', 0, 2 ** 31 - 1, true), 0)
  .addOption(
    new Option('--weights <w>', "start from torchvision's pretrained weights or from scratch")
      .choices(['default', 'none'])
      .default('default'),
  )
  .option('--allow-scratch', 'train from scratch when the pretrained weights cannot be loaded', false)
  .option('--smoke', 'a tiny run to check the setup (see above)', false)
  .addOption(new Option('--device <d>', 'where to train').choices(['auto', 'cpu', 'cuda']).default('auto'))
  .option('--json', 'print the result as JSON (no progress bar)', false)
  .option('--verbose', "show the trainer's log lines", false)
  .action(async (opts: TrainCliOptions) => {
    const { runTraining } = await import('../train/train.js');
    const { MODELS } = await import('../train/config.js');
    if (opts.model !== undefined && !MODELS[opts.task].includes(opts.model)) {
      throw new UsageError(
        `--model: expected a ${opts.task} model (${MODELS[opts.task].join(', ')}) but got '${opts.model}'`,
      );
    }
    const err = process.stderr;
    const tty = err.isTTY === true && !opts.json;
    let barShown = false;
    let lastPlain = '';
    const started = Date.now();
    let phaseStart = started;
    let phase = '';
    const clearBar = () => {
      if (barShown) err.write('\r\x1b[2K');
      barShown = false;
    };
    const say = (line: string) => {
      clearBar();
      err.write(line + '\n');
    };
    const log = {
      info: (m: string) => say(m),
      warn: (m: string) => say(`warning: ${m}`),
      error: (m: string) => say(`error: ${m}`),
    };
    const controller = new AbortController();
    const onSigint = () => controller.abort(new InterruptedError('interrupted'));
    process.once('SIGINT', onSigint);
    process.once('SIGTERM', onSigint);
    const workDir = await mkdtemp(join(tmpdir(), 'geobatch-train-'));
    try {
      const result = await runTraining(cliStorage(), {
        task: opts.task,
        ...(opts.model !== undefined ? { model: opts.model } : {}),
        ...(opts.epochs !== undefined ? { epochs: opts.epochs } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
        ...(opts.lr !== undefined ? { lr: opts.lr } : {}),
        ...(opts.imageSize !== undefined ? { imageSize: opts.imageSize } : {}),
        ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
        optimizer: opts.optimizer,
        seed: opts.seed,
        weights: opts.weights,
        allowScratch: opts.allowScratch,
        smoke: opts.smoke,
        device: opts.device,
        dataset: opts.dataset,
        out: opts.out,
        workDir,
        signal: controller.signal,
        graceMs: 10_000,
        log: opts.json ? { info: () => undefined, warn: log.warn, error: log.error } : log,
        onTrainerLog: (line) => {
          if (opts.verbose) say(`  | ${line}`);
        },
        onProgress: (p) => {
          if (opts.json) return;
          const key = p.phase === 'sync' ? 'sync' : `epoch ${p.epoch}`;
          if (key !== phase) {
            phase = key;
            phaseStart = Date.now();
          }
          const line = progressLine(p, p.phase === 'sync' ? phaseStart : started, err.columns ?? 100);
          if (tty) {
            err.write(`\r\x1b[2K${line}`);
            barShown = true;
          } else if (p.done === p.total && line !== lastPlain) {
            // pipes and logs: one line per finished phase instead of redraws
            lastPlain = line;
            err.write(line + '\n');
          }
        },
      });
      clearBar();
      if (opts.json) process.stdout.write(JSON.stringify(result) + '\n');
      else process.stdout.write(summaryText(result) + '\n');
    } catch (error) {
      clearBar();
      if (controller.signal.aborted)
        throw new InterruptedError(
          'training interrupted; rerun with the same --out to resume from the last checkpoint',
        );
      throw error;
    } finally {
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigint);
      await rm(workDir, { recursive: true, force: true });
    }
  });
