import { openPredictor, predictScene, type PredictSceneResult } from '../lib/predict/predict.js';
import type { DatasetManifest } from '../lib/dataset/build.js';
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

/** The scenes of `split` in the dataset a stage or URI names (its dataset.json). */
async function splitScenes(
  ctx: JobContext,
  dataset: string,
  split: 'train' | 'val' | 'test',
): Promise<Set<string>> {
  const where = `stages.${ctx.stage}.params.dataset`;
  const stage = ctx.run.graph.stages.find((s) => s.name === dataset);
  let uri: string;
  if (stage) {
    if (stage.job !== 'merge') {
      throw new Error(
        `${where}: stage '${dataset}' runs job '${stage.job}', which writes no dataset (expected a merge stage or a dataset URI)`,
      );
    }
    uri = joinUri(ctx.run.stageUri(dataset), 'dataset.json');
  } else if (isS3Uri(dataset) || dataset.startsWith('/')) {
    uri = dataset.endsWith('.json') ? dataset : joinUri(dataset, 'dataset.json');
  } else {
    const names = ctx.run.graph.stages.filter((s) => s.job === 'merge').map((s) => s.name);
    throw new Error(
      `${where}: expected a merge stage of this pipeline (${names.join(', ') || 'none'}) or an absolute or s3:// dataset URI but got '${dataset}'`,
    );
  }
  if (!(await ctx.storage.exists(uri, { signal: ctx.signal }))) {
    throw new Error(
      `${where}: ${uri} does not exist (a dataset is complete when its dataset.json is written)`,
    );
  }
  let manifest: Partial<DatasetManifest>;
  try {
    manifest = JSON.parse(
      (await ctx.storage.read(uri, { signal: ctx.signal })).toString('utf8'),
    ) as Partial<DatasetManifest>;
  } catch (error) {
    throw new Error(`${where}: ${uri} is not JSON: ${(error as Error).message}`);
  }
  const scenes = manifest.scenes?.[split];
  if (!Array.isArray(scenes)) {
    throw new Error(
      `${where}: ${uri} has no scenes.${split} list (its splits: ${Object.keys(manifest.scenes ?? {}).join(', ') || 'none'})`,
    );
  }
  return new Set(scenes);
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
    const only = params.split ? await splitScenes(ctx, params.dataset!, params.split) : undefined;
    const outputs: string[] = [];
    const summaries: Record<string, unknown>[] = [];
    if (only && !ctx.items.some((item) => only.has(item.id))) {
      // no session to open when every item of the task is skipped
      for (const item of ctx.items) {
        ctx.log.info(`${item.id}: not a ${params.split} scene of the dataset; not predicted`);
        summaries.push({ item: item.id, status: `not in ${params.split}` });
      }
      ctx.progress(ctx.items.length, ctx.items.length);
      return { outputs, summary: { scenes: summaries } };
    }
    const predictor = await openPredictor(ctx.storage, model, {
      ...(params.task ? { task: params.task } : {}),
      batch: params.batch,
      ...(params.device ? { device: params.device } : {}),
      lowMemory: params.lowMemory,
      log: (line) => ctx.log.info(line),
      signal: ctx.signal,
    });
    try {
      let done = 0;
      for (const item of ctx.items) {
        if (only && !only.has(item.id)) {
          ctx.log.info(`${item.id}: not a ${params.split} scene of the dataset; not predicted`);
          summaries.push({ item: item.id, status: `not in ${params.split}` });
          ctx.progress(++done, ctx.items.length);
          continue;
        }
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
          ...(params.cog ? { cog: true } : {}),
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
