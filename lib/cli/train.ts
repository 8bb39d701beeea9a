import { Command, Option } from 'commander';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stretch } from '../raster/stretch.js';
import type { ProvenanceOptions } from '../train/bundle.js';
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
  windowSize?: number;
  windowOverlap?: number;
  scene?: string;
  bands?: string;
  stretch?: 'percentile' | 'minmax' | 'range' | 'none';
  percentiles: string;
  range?: string;
}

/** Runs an option parser, turning its error into a usage error (exit code 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** bundle.json's windows and conversion from the options (see --help); the rest are defaults. */
async function provenanceOf(opts: TrainCliOptions): Promise<ProvenanceOptions> {
  const { parseBands, parsePercentiles, parseRanges } = await import('../raster/stretch.js');
  const windows = {
    ...(opts.windowSize !== undefined ? { size: opts.windowSize } : {}),
    ...(opts.windowOverlap !== undefined ? { overlap: opts.windowOverlap } : {}),
  };
  const bands = opts.bands === undefined ? undefined : usage(() => parseBands(opts.bands!));
  const kind = opts.stretch ?? (opts.range !== undefined ? 'range' : undefined);
  if (opts.range !== undefined && kind !== 'range')
    throw new UsageError(`--range applies to --stretch range, not --stretch ${kind}`);
  let stretch: Stretch | undefined;
  if (kind === 'percentile') stretch = { kind, ...usage(() => parsePercentiles(opts.percentiles)) };
  else if (kind === 'minmax' || kind === 'none') stretch = { kind };
  else if (kind === 'range') {
    if (opts.range === undefined) throw new UsageError('--stretch range: expected --range MIN,MAX as well');
    stretch = { kind, ranges: usage(() => parseRanges(opts.range!)) };
  }
  if (opts.scene === undefined) {
    if (bands || stretch) {
      throw new UsageError(
        '--bands / --stretch / --range: expected --scene <one of the scenes the chips were cut from> as well (its header records the band count and type that predict must find in a scene to convert it this way)',
      );
    }
    return { windows };
  }
  const { readSourceHeader, bundleConversion } = await import('../train/provenance.js');
  const source = await readSourceHeader(cliStorage(), opts.scene);
  if (!source && (bands || stretch)) {
    throw new UsageError(
      `--scene ${opts.scene}: not a GeoTIFF; chips of JPEG and PNG scenes are cut as they are, so --bands and --stretch do not apply`,
    );
  }
  return {
    windows,
    conversion: bundleConversion(
      `as given to geobatch train (--scene ${opts.scene})`,
      { ...(bands ? { bands } : {}), ...(stretch ? { stretch } : {}) },
      source,
    ),
  };
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
    ...(r.bundle
      ? [
          `  bundle: score threshold ${r.bundle.scoreThreshold ?? 'none'} (${r.bundle.thresholdFrom}); windows ${r.bundle.windows.size} px, overlap ${r.bundle.windows.overlap}; ${r.bundle.conversion.description}`,
        ]
      : []),
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
      'bundle.json (what geobatch predict needs), metrics.json, curves.png,',
      'MODEL_CARD.md and checkpoints/epoch-NNNN.pt. Rerun with the same --out to',
      'resume from the last checkpoint there.',
      '',
      'bundle.json records how the chips were made, for predict to cut and convert',
      'scenes the same way: --window-size / --window-overlap (default: the input',
      'size, 0.2) and, for chips converted from multi-band or 16-bit scenes, --scene',
      'with the --bands / --stretch the chips were made with (default: 8-bit RGB',
      'chips taken as they were). A train stage of a pipeline finds all of this in',
      'the run itself.',
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
  .option(
    '--window-size <px>',
    'bundle.json: size of the windows the chips were cut with (default: the input size)',
    numberOption('--window-size', 1, 100_000, true),
  )
  .option(
    '--window-overlap <ratio>',
    'bundle.json: their overlap ratio in [0, 1) (default 0.2)',
    numberOption('--window-overlap', 0, 0.99, false),
  )
  .option(
    '--scene <file|uri>',
    'bundle.json: one of the GeoTIFF scenes the chips were cut from (its header gives the band count and type)',
  )
  .option(
    '--bands <list>',
    'bundle.json: the source bands the chips were made of, R,G,B from 1 (with --scene)',
  )
  .addOption(
    new Option(
      '--stretch <kind>',
      'bundle.json: the stretch the chips were made with (with --scene)',
    ).choices(['percentile', 'minmax', 'range', 'none']),
  )
  .option('--percentiles <low,high>', 'bundle.json: percentiles of that percentile stretch', '2,98')
  .option(
    '--range <min,max>',
    'bundle.json: the range of that range stretch (min,max or six numbers for R, G, B)',
  )
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
    const provenance = await provenanceOf(opts);
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
        provenance,
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
