import { isAbsolute } from 'node:path';
import { evaluate } from '../lib/eval/eval.js';
import { parseCrsOption } from '../lib/labels/geo-labels.js';
import { isS3Uri } from '../lib/storage/uri.js';
import type { EvalJobParams } from './eval-params.js';
import type { JobContext, JobModule } from './types.js';

/**
 * What a parameter names: a stage of this run (its output folder; the stage must finish first),
 * an input set (its files), or an absolute path / s3:// URI.
 */
function resolveSource(ctx: JobContext, value: string, param: string): string | string[] {
  const where = `stages.${ctx.stage}.params.${param}`;
  const graph = ctx.run.graph;
  if (graph.stages.some((s) => s.name === value)) {
    const self = graph.stages.find((s) => s.name === ctx.stage);
    if (!self?.dependsOn.some((d) => d.stage === value)) {
      throw new Error(
        `${where}: the eval job reads stage '${value}' when it has finished; list it under needs (needs: [${value}])`,
      );
    }
    return ctx.run.stageUri(value);
  }
  const items = graph.items[value];
  if (items) return items.map((i) => i.uri);
  if (isS3Uri(value) || isAbsolute(value)) return value;
  const stages = graph.stages.map((s) => s.name).join(', ');
  const sets = Object.keys(graph.items).join(', ') || 'none';
  throw new Error(
    `${where}: '${value}' is no stage (${stages}) or input set (${sets}) of this pipeline, nor an absolute path or s3:// URI`,
  );
}

/**
 * Fan-in: the predictions of a stage (or files) scored against truth, written under
 * `<run>/<stage>/`: eval.json (last), errors.geojson, pr-curves.png or confusion.png, eval.md.
 */
export const evalJob: JobModule<EvalJobParams> = {
  async run(params, ctx) {
    const predictions = resolveSource(ctx, params.predictions, 'predictions');
    const truth = resolveSource(ctx, params.truth, 'truth');
    const images = params.images === undefined ? undefined : resolveSource(ctx, params.images, 'images');
    const truthCrs = params.truthCrs === undefined ? undefined : parseCrsOption(params.truthCrs);
    const report = await evaluate(ctx.storage, {
      predictions,
      truth,
      out: ctx.run.stageUri(ctx.stage),
      classField: params.classField,
      ...(truthCrs ? { truthCrs } : {}),
      ...(params.truthLayer !== undefined ? { truthLayer: params.truthLayer } : {}),
      ...(images !== undefined ? { images } : {}),
      ...(params.maxDets !== undefined ? { maxDets: params.maxDets } : {}),
      scenes: params.scenes,
      signal: ctx.signal,
      onProgress: (done, total) => ctx.progress(done, total),
    });
    const s = report.scenes;
    if (s.predictionsWithoutTruth.length) {
      ctx.log.warn(`predictions without truth (not scored): ${s.predictionsWithoutTruth.join(', ')}`);
    }
    if (s.truthNotPredicted.length) {
      ctx.log.info(`truth of scenes not predicted (not scored): ${s.truthNotPredicted.join(', ')}`);
    }
    if (s.truthWithoutPredictions.length) {
      ctx.log.warn(
        `truth without predictions (all false negatives): ${s.truthWithoutPredictions.join(', ')}`,
      );
    }
    const o = report.overall;
    const headline = o.detection
      ? { f1: o.detection.f1, ap50: o.detection.ap50, ap: o.detection.ap }
      : { meanIou: o.segmentation?.meanIou ?? null };
    ctx.log.info(
      `${report.task}: ${s.evaluated.length} scene(s): ${JSON.stringify(headline)}, SpaceNet F1 ${o.spacenet?.f1 ?? '-'} -> ${report.outputs.report}`,
    );
    return {
      outputs: Object.values(report.outputs),
      summary: {
        task: report.task,
        scenes: s.evaluated.length,
        ...headline,
        spacenetF1: o.spacenet?.f1 ?? null,
      },
    };
  },
};
