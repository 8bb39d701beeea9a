import { openPredictor, predictScene, type PredictSceneResult } from '../lib/predict/predict.js';
import { isS3Uri, joinUri } from '../lib/storage/uri.js';
import type { PredictJobParams } from './predict-params.js';
import { checkImageStage, itemImageUri } from './stage-inputs.js';
import type { JobContext, JobModule } from './types.js';

/** The model a stage names: a train stage's folder, or a URI as it is. */
function modelUri(ctx: JobContext, model: string): string {
  const stage = ctx.run.graph.stages.find((s) => s.name === model);
  if (stage) {
    if (stage.job !== 'train') {
      throw new Error(
        `stages.${ctx.stage}.params.model: stage '${model}' runs job '${stage.job}', which writes no model (expected a train stage or a model URI)`,
      );
    }
    return ctx.run.stageUri(model);
  }
  if (isS3Uri(model) || model.startsWith('/')) return model;
  const names = ctx.run.graph.stages.filter((s) => s.job === 'train').map((s) => s.name);
  throw new Error(
    `stages.${ctx.stage}.params.model: expected a train stage of this pipeline (${names.join(', ') || 'none'}) or an absolute or s3:// model URI but got '${model}'`,
  );
}

/**
 * Per item: the item's scene (or the `images` stage's output for it) through the model of a train
 * stage, into `<stage>/<item>.predict.json` and the task's files (lib/predict/predict.ts). In a
 * split stage (`tasksPerItem`), a task computes its part of the rows of windows and writes
 * `<item>.part-<k>-of-<n>.*`; the task that finds every part done joins them.
 */
export const predictJob: JobModule<PredictJobParams> = {
  async run(params, ctx) {
    if (params.images !== undefined) checkImageStage(ctx, params.images, 'images');
    const model = modelUri(ctx, params.model);
    const out = ctx.run.stageUri(ctx.stage);
    const predictor = await openPredictor(ctx.storage, model, {
      ...(params.task ? { task: params.task } : {}),
      batch: params.batch,
      ...(params.device ? { device: params.device } : {}),
      log: (line) => ctx.log.info(line),
      signal: ctx.signal,
    });
    const outputs: string[] = [];
    const summaries: Record<string, unknown>[] = [];
    try {
      let done = 0;
      for (const item of ctx.items) {
        const scene = itemImageUri(ctx, item, params.images);
        const part = ctx.part;
        const what = part ? `${item.id} part ${part.index + 1}/${part.count}` : item.id;
        const r: PredictSceneResult = await predictScene(ctx.storage, scene, {
          model: predictor,
          out,
          id: item.id,
          ...(params.windowSize ? { windowSize: params.windowSize } : {}),
          ...(params.overlap !== undefined ? { overlap: params.overlap } : {}),
          merge: {
            method: params.merge,
            metric: params.matchMetric,
            threshold: params.matchThreshold,
            classAgnostic: params.classAgnostic,
          },
          keepRaw: params.keepRaw,
          ...(params.scoreThreshold !== undefined ? { scoreThreshold: params.scoreThreshold } : {}),
          blend: params.blend,
          ...(part ? { part } : {}),
          signal: ctx.signal,
          log: (line) => ctx.log.info(line),
        });
        ctx.log.info(`${what}: ${r.conversion}`);
        for (const w of r.warnings) ctx.log.warn(`${what}: ${w}`);
        ctx.log.info(
          r.skipped
            ? `${what}: done by an earlier attempt`
            : `${what}: ${r.computed} windows in ${r.seconds.toFixed(1)} s (${r.windowsPerSecond.toFixed(1)}/s on ${r.device})${r.resumedRows ? `, ${r.resumedRows} row(s) of windows kept from an earlier attempt` : ''}${r.status === 'part' ? '; other parts still missing' : r.joined ? '; joined every part' : ''}`,
        );
        outputs.push(...Object.values(r.outputs));
        if (r.status === 'done') outputs.push(joinUri(out, `${item.id}.predict.json`));
        summaries.push({
          item: item.id,
          ...(part ? { part: part.index + 1, parts: part.count } : {}),
          status: r.status,
          windows: r.windows,
          computed: r.computed,
          seconds: Math.round(r.seconds * 1000) / 1000,
          counts: r.counts,
        });
        ctx.progress(++done, ctx.items.length);
      }
    } finally {
      await predictor.close();
    }
    return { outputs, summary: { scenes: summaries } };
  },
};
