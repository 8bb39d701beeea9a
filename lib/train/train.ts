/**
 * One training run, end to end: dataset made local, trainer config written, latest checkpoint
 * restored, trainer launched (its events turned into progress and logs, each checkpoint uploaded
 * as it appears), then the ONNX export verified, the model bundle (bundle.json: what predict needs,
 * lib/train/bundle.ts) written, curves.png and MODEL_CARD.md drawn and every artifact uploaded to
 * `<out>/` (the model card last: its presence means the run is complete).
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUNDLE_FILE, type ModelBundle } from '../predict/bundle.js';
import type { Storage } from '../storage/types.js';
import { joinUri, normalizeUri } from '../storage/uri.js';
import { buildBundle, type ProvenanceOptions } from './bundle.js';
import { restoreCheckpoint, uploadCheckpoint } from './checkpoints.js';
import { PRIMARY_METRIC, trainerConfig, type TrainerConfig, type TrainOptions } from './config.js';
import { renderCurves, type CurvePoint } from './curves.js';
import { prepareDataset, type PreparedDataset } from './dataset.js';
import { TrainError } from './errors.js';
import type { DoneEvent, StartEvent, TrainerEvent } from './events.js';
import { modelCard, type MetricsFile } from './model-card.js';
import { assertOnnxMatches, verifyOnnx, type OnnxCheckResult } from './onnx.js';
import { findPython, type PythonEnv } from './python.js';
import { launchTrainer, trainFailure } from './process.js';

export interface TrainLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export type TrainProgress =
  | { readonly phase: 'sync'; readonly done: number; readonly total: number }
  | {
      readonly phase: 'train';
      readonly done: number;
      readonly total: number;
      readonly epoch: number;
      readonly epochs: number;
      readonly loss: number | null;
      readonly imagesPerSecond: number;
    };

export interface RunTrainingOptions extends TrainOptions {
  /** Dataset folder or URI (dataset.json, or train.json + val.json + images/). */
  readonly dataset: string;
  /** Output folder or URI: artifacts, checkpoints/. */
  readonly out: string;
  /** A local scratch folder for the trainer's files (checkpoints, outputs, config). */
  readonly workDir: string;
  /** Dataset cache. @default GEOBATCH_CACHE_DIR, else ~/.cache/geobatch */
  readonly cacheDir?: string;
  readonly signal?: AbortSignal;
  readonly env?: NodeJS.ProcessEnv;
  /** A Python found beforehand. @default {@link findPython} */
  readonly python?: PythonEnv;
  /** SIGTERM -> SIGKILL grace on cancellation. @default 30 s */
  readonly graceMs?: number;
  readonly log: TrainLogger;
  readonly onProgress?: (progress: TrainProgress) => void;
  /** A trainer stderr line (or non-event stdout line). @default log.info */
  readonly onTrainerLog?: (line: string) => void;
  /** Every trainer event, as it arrives. */
  readonly onEvent?: (event: TrainerEvent) => void;
  /**
   * How the dataset's chips were made, recorded in bundle.json.
   * @default windows of the input size with overlap 0.2, chips taken as 8-bit RGB
   */
  readonly provenance?: ProvenanceOptions;
  /** Validation images the detection score threshold is chosen on, at most. @default 200 */
  readonly maxThresholdImages?: number;
}

export interface TrainResult {
  readonly out: string;
  readonly task: TrainerConfig['task'];
  readonly model: string;
  readonly epochs: number;
  readonly resumedFrom: number | null;
  readonly bestEpoch: number | null;
  /** Final validation metrics. */
  readonly metrics: Record<string, unknown>;
  readonly onnx?: OnnxCheckResult;
  /** bundle.json as written (with model.onnx only). */
  readonly bundle?: ModelBundle;
  /** Artifact name -> URI. */
  readonly artifacts: Record<string, string>;
  readonly seconds: number;
  /** Mean training throughput over the epochs of this run. */
  readonly imagesPerSecond: number | null;
  readonly dataset: {
    readonly uri: string;
    readonly classes: number;
    readonly trainImages: number;
    readonly valImages: number;
    readonly downloaded: number;
  };
  readonly device: string;
  readonly worldSize: number;
  readonly weights: string;
}

async function upload(storage: Storage, path: string, uri: string, signal?: AbortSignal): Promise<void> {
  await storage.writeAtomic(uri, createReadStream(path), { signal });
}

/** Runs a training (see the module comment). */
export async function runTraining(storage: Storage, options: RunTrainingOptions): Promise<TrainResult> {
  const started = performance.now();
  const { log, signal } = options;
  const out = normalizeUri(options.out);
  const python = options.python ?? (await findPython({ env: options.env }));
  log.info(
    `python ${python.python}: Python ${python.env.python}, torch ${python.env.torch}, ${python.env.cuda ? `${python.env.gpus} GPU(s)` : 'CPU only'}`,
  );
  const dataset = await prepareDataset(storage, options.dataset, {
    cacheDir: options.cacheDir,
    signal,
    onProgress: (done, total) => options.onProgress?.({ phase: 'sync', done, total }),
  });
  log.info(
    `dataset ${dataset.uri}: ${dataset.splits.train.images} train / ${dataset.splits.val.images} val images, ${dataset.classes.length} classes` +
      (dataset.sync.downloaded
        ? `, ${dataset.sync.downloaded} image(s) downloaded (${dataset.sync.bytes} bytes)`
        : ''),
  );
  const checkpointDir = join(options.workDir, 'checkpoints');
  const outputDir = join(options.workDir, 'output');
  await mkdir(checkpointDir, { recursive: true });
  await mkdir(outputDir, { recursive: true });
  let config: TrainerConfig;
  try {
    config = trainerConfig(options, dataset, { checkpointDir, outputDir });
  } catch (error) {
    throw new TrainError('config', (error as Error).message);
  }
  const configPath = join(options.workDir, 'config.json');
  await writeFile(configPath, JSON.stringify(config, null, 2) + '\n');

  const remoteCheckpoints = joinUri(out, 'checkpoints');
  const restored = await restoreCheckpoint(storage, remoteCheckpoints, checkpointDir, signal);
  if (restored !== undefined)
    log.info(`resuming from ${joinUri(remoteCheckpoints, `epoch-${String(restored).padStart(4, '0')}.pt`)}`);

  const processes = python.env.gpus > 1 && config.device !== 'cpu' ? python.env.gpus : 1;
  let start: StartEvent | undefined;
  let done: DoneEvent | undefined;
  const stepLoss: CurvePoint[] = [];
  let uploads: Promise<unknown> = Promise.resolve();
  let uploadError: unknown;
  const onEvent = (event: TrainerEvent) => {
    options.onEvent?.(event);
    switch (event.event) {
      case 'start':
        start = event;
        log.info(
          `trainer started: ${event.task} ${event.model} on ${event.device} x${event.worldSize}, ${event.epochs} epochs of ${event.stepsPerEpoch} steps, ${event.trainImages} train / ${event.valImages} val images, weights ${event.weights}` +
            (event.resumedFrom !== null ? `, resumed after epoch ${event.resumedFrom}` : ''),
        );
        break;
      case 'step': {
        const steps = event.steps || start?.stepsPerEpoch || 1;
        if (event.loss !== null) stepLoss.push({ x: event.epoch - 1 + event.step / steps, y: event.loss });
        options.onProgress?.({
          phase: 'train',
          done: (event.epoch - 1) * steps + event.step,
          total: config.epochs * steps,
          epoch: event.epoch,
          epochs: config.epochs,
          loss: event.loss,
          imagesPerSecond: event.imagesPerSecond,
        });
        break;
      }
      case 'epoch': {
        const metric = event.metrics[PRIMARY_METRIC[config.task]];
        log.info(
          `epoch ${event.epoch}/${config.epochs}: loss ${event.trainLoss?.toFixed(4) ?? '–'}, ${PRIMARY_METRIC[config.task]} ${typeof metric === 'number' ? metric.toFixed(4) : '–'}, ${event.imagesPerSecond.toFixed(1)} images/s, ${event.seconds.toFixed(1)} s`,
        );
        break;
      }
      case 'checkpoint':
        uploads = uploads.then(async () => {
          if (uploadError) return;
          try {
            const uri = await uploadCheckpoint(storage, event.path, remoteCheckpoints, signal);
            log.info(`checkpoint of epoch ${event.epoch} -> ${uri}`);
          } catch (error) {
            uploadError = error;
          }
        });
        break;
      case 'warning':
        log.warn(`trainer: ${event.message}`);
        break;
      case 'error':
        log.error(`trainer ${event.kind} error: ${event.message}`);
        break;
      case 'done':
        done = event;
        break;
      default:
        break;
    }
  };
  const result = await launchTrainer({
    python: python.python,
    trainerDir: python.trainerDir,
    configPath,
    processes,
    env: options.env,
    signal,
    graceMs: options.graceMs,
    onEvent,
    onLog: options.onTrainerLog ?? ((line) => log.info(line)),
  });
  await uploads;
  const failure = trainFailure(result, signal?.aborted === true);
  if (failure) throw failure;
  if (uploadError) throw uploadError;
  if (!done) {
    throw new TrainError(
      'runtime',
      `trainer exited 0 without finishing (no 'done' event); last stderr lines:\n  ${result.stderrTail.slice(-8).join('\n  ')}`,
    );
  }

  // artifacts: verify the export, complete metrics.json, draw the curves, write the card
  const metricsPath = join(outputDir, 'metrics.json');
  const metrics = JSON.parse(await readFile(metricsPath, 'utf8')) as MetricsFile;
  const files = await readdir(outputDir);
  let onnx: OnnxCheckResult | undefined;
  if (files.includes('model.onnx')) {
    onnx = await verifyOnnx(outputDir);
    log.info(
      `ONNX check: ${onnx.ok ? 'ok' : 'MISMATCH'} (${onnx.outputs.map((o) => `${o.name} max |diff| ${o.maxAbsDiff.toExponential(2)}`).join(', ')})`,
    );
    assertOnnxMatches(onnx, `${joinUri(out, 'model.onnx')} (not uploaded)`);
  }
  const completed: MetricsFile = { ...metrics, ...(onnx ? { onnxCheck: onnx } : {}) };
  await writeFile(metricsPath, JSON.stringify(completed, null, 2) + '\n');
  let bundle: ModelBundle | undefined;
  if (onnx) {
    bundle = await buildBundle({
      config,
      dataset,
      metrics: completed,
      outputDir,
      ...(options.provenance ? { provenance: options.provenance } : {}),
      ...(options.maxThresholdImages !== undefined ? { maxThresholdImages: options.maxThresholdImages } : {}),
      ...(signal ? { signal } : {}),
    });
    await writeFile(join(outputDir, BUNDLE_FILE), JSON.stringify(bundle, null, 2) + '\n');
    log.info(
      `model bundle: input ${bundle.input.size} px, batch ${bundle.input.batch ?? 'dynamic'}, windows ${bundle.windows.size} px overlap ${bundle.windows.overlap}, conversion: ${bundle.conversion.description}; score threshold ${bundle.scoreThreshold ?? 'none'} (${bundle.thresholdFrom})`,
    );
  }
  const primary = PRIMARY_METRIC[config.task];
  const curves = await renderCurves({
    title: `${config.task} · ${config.model}`,
    epochs: config.epochs,
    stepLoss,
    epochLoss: metrics.epochs.flatMap((e) => (e.trainLoss === null ? [] : [{ x: e.epoch, y: e.trainLoss }])),
    metric: metrics.epochs.flatMap((e) => {
      const v = e.metrics[primary];
      return typeof v === 'number' ? [{ x: e.epoch, y: v }] : [];
    }),
    metricName: primary,
  });
  await writeFile(join(outputDir, 'curves.png'), curves);
  await writeFile(
    join(outputDir, 'MODEL_CARD.md'),
    modelCard({
      config,
      dataset,
      metrics: completed,
      onnx,
      ...(bundle ? { bundle } : {}),
      env: python.env,
      out,
      smoke: options.smoke === true,
    }),
  );
  const names = (await readdir(outputDir))
    .filter((f) => /^(model\.pt|model\.onnx|metrics\.json|curves\.png|onnx-check[^/]*\.(json|bin))$/.test(f))
    .sort();
  const artifacts: Record<string, string> = {};
  // bundle.json after model.onnx (it names it), the model card last (the run is complete)
  const ordered = [...names, ...(bundle ? [BUNDLE_FILE] : []), 'MODEL_CARD.md'];
  for (const name of ordered) {
    const uri = joinUri(out, name);
    await upload(storage, join(outputDir, name), uri, signal);
    artifacts[name] = uri;
  }
  artifacts['checkpoints'] = remoteCheckpoints;
  log.info(`artifacts -> ${out}`);
  const rates = metrics.epochs.map((e) => e.imagesPerSecond).filter((v) => Number.isFinite(v));
  return {
    out,
    task: config.task,
    model: config.model,
    epochs: config.epochs,
    resumedFrom: start?.resumedFrom ?? null,
    bestEpoch: done.bestEpoch,
    metrics: done.metrics,
    ...(onnx ? { onnx } : {}),
    ...(bundle ? { bundle } : {}),
    artifacts,
    seconds: (performance.now() - started) / 1000,
    imagesPerSecond: rates.length ? rates.reduce((a, b) => a + b, 0) / rates.length : null,
    dataset: summary(dataset),
    device: start?.device ?? 'unknown',
    worldSize: start?.worldSize ?? processes,
    weights: start?.weights ?? config.weights,
  };
}

function summary(d: PreparedDataset): TrainResult['dataset'] {
  return {
    uri: d.uri,
    classes: d.classes.length,
    trainImages: d.splits.train.images,
    valImages: d.splits.val.images,
    downloaded: d.sync.downloaded,
  };
}
