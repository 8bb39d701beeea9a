import { join } from 'node:path';
import type { TrainJobParams } from './params.js';
import { checkStageParam } from '../stage-inputs.js';
import type { JobModule } from '../types.js';

/**
 * The whole stage at once: the `dataset` stage's output trained on, everything written to
 * `<run>/<stage>/` (model.pt, model.onnx, bundle.json, metrics.json, curves.png, MODEL_CARD.md,
 * checkpoints/). bundle.json records how the chips were made, traced through the run's graph
 * (./provenance.ts).
 * A retried attempt resumes from the last checkpoint there.
 */
export const trainJob: JobModule<TrainJobParams> = {
  async run(params, ctx) {
    checkStageParam(ctx, params.dataset, 'dataset');
    const { runTraining } = await import('../../lib/train/train.js');
    const { chipProvenance } = await import('./provenance.js');
    // how the chips were made, for bundle.json: from the plan and one scene header, before training
    const { provenance, notes } = await chipProvenance(ctx.storage, ctx.run.graph, params.dataset, {
      signal: ctx.signal,
    });
    for (const note of notes) ctx.log.info(`model bundle: ${note}`);
    const result = await runTraining(ctx.storage, {
      task: params.task,
      ...(params.model !== undefined ? { model: params.model } : {}),
      weights: params.weights,
      allowScratch: params.allowScratch,
      epochs: params.epochs,
      batchSize: params.batchSize,
      ...(params.lr !== undefined ? { lr: params.lr } : {}),
      optimizer: params.optimizer,
      ...(params.imageSize !== undefined ? { imageSize: params.imageSize } : {}),
      ...(params.workers !== undefined ? { workers: params.workers } : {}),
      seed: params.seed,
      smoke: params.smoke,
      ...(provenance ? { provenance } : {}),
      dataset: ctx.run.stageUri(params.dataset),
      out: ctx.run.stageUri(ctx.stage),
      workDir: join(ctx.tmpDir, 'train'),
      signal: ctx.signal,
      log: ctx.log,
      onProgress: (p) => {
        if (p.phase === 'train') ctx.progress(p.done, p.total);
      },
    });
    return {
      outputs: Object.entries(result.artifacts)
        .filter(([name]) => name !== 'checkpoints')
        .map(([, uri]) => uri),
      summary: {
        task: result.task,
        model: result.model,
        epochs: result.epochs,
        resumedFrom: result.resumedFrom,
        bestEpoch: result.bestEpoch,
        metrics: result.metrics,
        onnxCheck: result.onnx?.ok ?? null,
        scoreThreshold: result.bundle?.scoreThreshold ?? null,
        imagesPerSecond: result.imagesPerSecond,
        device: result.device,
        worldSize: result.worldSize,
        seconds: Math.round(result.seconds),
      },
    };
  },
};
