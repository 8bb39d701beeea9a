import { isAbsolute } from 'node:path';
import { embedChips } from '../lib/embed/embed.js';
import { isS3Uri } from '../lib/storage/uri.js';
import type { EmbedJobParams } from './embed-params.js';
import type { JobContext } from './types.js';
import type { JobModule } from './types.js';

/**
 * The folder a parameter names: a stage of this run running one of `jobs` (its output folder; it
 * must be listed under needs, so that it has finished), or an absolute path / s3:// URI.
 */
function resolveStage(ctx: JobContext, value: string, param: string, jobs: readonly string[]): string {
  const where = `stages.${ctx.stage}.params.${param}`;
  const stage = ctx.run.graph.stages.find((s) => s.name === value);
  if (stage) {
    if (!jobs.includes(stage.job)) {
      throw new Error(
        `${where}: stage '${value}' runs job '${stage.job}'; expected a stage of job ${jobs.join(' or ')}, or a URI`,
      );
    }
    const self = ctx.run.graph.stages.find((s) => s.name === ctx.stage);
    if (!self?.dependsOn.some((d) => d.stage === value)) {
      throw new Error(
        `${where}: the embed job reads stage '${value}' when it has finished; list it under needs (needs: [${value}])`,
      );
    }
    return ctx.run.stageUri(value);
  }
  if (isS3Uri(value) || isAbsolute(value)) return value;
  const names = ctx.run.graph.stages.filter((s) => jobs.includes(s.job)).map((s) => s.name);
  throw new Error(
    `${where}: expected a ${jobs.join(' or ')} stage of this pipeline (${names.join(', ') || 'none'}) or an absolute or s3:// URI but got '${value}'`,
  );
}

/**
 * Fan-in: every chip of a dataset (merge stage) or chip stage through the embedding of a train
 * stage's classifier, into `<stage>/vectors.f32`, `chips.jsonl` and, last, `embed.json`
 * (lib/embed/embed.ts).
 */
export const embedJob: JobModule<EmbedJobParams> = {
  async run(params, ctx) {
    const model = resolveStage(ctx, params.model, 'model', ['train']);
    const chips = resolveStage(ctx, params.chips, 'chips', ['merge', 'chip', 'chip-grid']);
    const r = await embedChips(ctx.storage, {
      model,
      chips,
      out: ctx.run.stageUri(ctx.stage),
      batch: params.batchSize,
      ...(params.limit !== undefined ? { limit: params.limit } : {}),
      ...(params.device ? { device: params.device } : {}),
      tmpDir: ctx.tmpDir,
      log: (line) => ctx.log.info(line),
      onProgress: (done, total) => ctx.progress(done, total),
      signal: ctx.signal,
    });
    const m = r.manifest;
    ctx.log.info(
      r.skipped
        ? `${m.count} chips already embedded with this model; nothing to do`
        : `${m.count} chips -> ${m.dim}-dim vectors in ${r.seconds.toFixed(1)} s (${r.chipsPerSecond.toFixed(1)} chips/s on ${r.device})`,
    );
    return {
      outputs: [...r.outputs],
      summary: { count: m.count, dim: m.dim, input: r.input, skipped: r.skipped, seconds: r.seconds },
    };
  },
};
