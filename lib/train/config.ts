/** The trainer's config.json (the contract in jobs/train), built from the harness's options. */
import type { TrainTask } from './events.js';
import type { PreparedDataset, TrainClass } from './dataset.js';

export const TASKS: readonly TrainTask[] = ['detection', 'segmentation', 'classification'];

/** Models the trainer knows, per task; the first is the default. */
export const MODELS: Readonly<Record<TrainTask, readonly string[]>> = {
  detection: [
    'fasterrcnn_resnet50_fpn',
    'fasterrcnn_mobilenet_v3_large_fpn',
    'fasterrcnn_mobilenet_v3_large_320_fpn',
  ],
  segmentation: ['deeplabv3_resnet50', 'fcn_resnet50', 'unet'],
  classification: ['resnet50', 'resnet18'],
};

/** The CPU-sized model of each task, used in smoke mode. */
export const SMOKE_MODELS: Readonly<Record<TrainTask, string>> = {
  detection: 'fasterrcnn_mobilenet_v3_large_320_fpn',
  segmentation: 'unet',
  classification: 'resnet18',
};

/** Main metric per task: the curve's right axis and the summary's headline. */
export const PRIMARY_METRIC: Readonly<Record<TrainTask, string>> = {
  detection: 'mAP50',
  segmentation: 'mIoU',
  classification: 'f1Samples',
};

/** What a user (CLI or pipeline stage) chooses. Unset fields take the trainer's defaults. */
export interface TrainOptions {
  readonly task: TrainTask;
  readonly model?: string;
  readonly weights?: 'default' | 'none';
  readonly allowScratch?: boolean;
  readonly epochs?: number;
  readonly batchSize?: number;
  readonly lr?: number;
  readonly optimizer?: 'sgd' | 'adamw';
  readonly imageSize?: number;
  readonly workers?: number;
  readonly seed?: number;
  /** 2 epochs, batches of 2, 4 steps per epoch, the CPU-sized model, no pretrained weights needed. */
  readonly smoke?: boolean;
  /** @default 'auto' */
  readonly device?: 'auto' | 'cpu' | 'cuda';
  /** Trainer threads per process. @default the trainer's (cores / processes) */
  readonly threads?: number;
}

export interface TrainerConfig {
  readonly version: 1;
  readonly task: TrainTask;
  readonly model: string;
  readonly weights: 'default' | 'none';
  readonly allowScratch: boolean;
  readonly data: PreparedDataset['data'];
  readonly classes: readonly TrainClass[];
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: number | null;
  readonly optimizer: 'sgd' | 'adamw';
  readonly momentum: number;
  readonly weightDecay: number;
  readonly imageSize: number | null;
  readonly workers: number;
  readonly seed: number;
  readonly device: 'auto' | 'cpu' | 'cuda';
  readonly amp: boolean;
  readonly channelsLast: boolean;
  readonly maxStepsPerEpoch: number | null;
  readonly threads: number | null;
  readonly checkpointDir: string;
  readonly outputDir: string;
}

/** The config for one run; smoke mode overrides epochs, batch size, steps and (unless given) the model. */
export function trainerConfig(
  options: TrainOptions,
  dataset: Pick<PreparedDataset, 'data' | 'classes'>,
  dirs: { readonly checkpointDir: string; readonly outputDir: string },
): TrainerConfig {
  const smoke = options.smoke === true;
  const model = options.model ?? (smoke ? SMOKE_MODELS[options.task] : MODELS[options.task][0]!);
  if (!MODELS[options.task].includes(model)) {
    throw new Error(
      `model: '${model}' is not a ${options.task} model (valid: ${MODELS[options.task].join(', ')})`,
    );
  }
  return {
    version: 1,
    task: options.task,
    model,
    weights: options.weights ?? 'default',
    allowScratch: options.allowScratch ?? false,
    data: dataset.data,
    classes: dataset.classes,
    epochs: smoke ? 2 : (options.epochs ?? 10),
    batchSize: smoke ? Math.min(options.batchSize ?? 2, 2) : (options.batchSize ?? 4),
    lr: options.lr ?? null,
    optimizer: options.optimizer ?? 'sgd',
    momentum: 0.9,
    weightDecay: 0.0001,
    imageSize: options.imageSize ?? (smoke ? smokeImageSize(options.task) : null),
    workers: options.workers ?? (smoke ? 0 : 2),
    seed: options.seed ?? 0,
    device: options.device ?? 'auto',
    amp: true,
    channelsLast: true,
    maxStepsPerEpoch: smoke ? 4 : null,
    threads: options.threads ?? null,
    checkpointDir: dirs.checkpointDir,
    outputDir: dirs.outputDir,
  };
}

function smokeImageSize(task: TrainTask): number {
  return task === 'detection' ? 320 : 128;
}
