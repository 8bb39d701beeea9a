import { buildDataset } from '../lib/dataset/build.js';
import { joinUri } from '../lib/storage/uri.js';
import type { MergeJobParams } from './merge-params.js';
import { checkStageParam } from './stage-inputs.js';
import type { JobModule } from './types.js';

/**
 * Fan-in: the chip folders of the `chips` stage (one per item, i.e. per scene) merged into one
 * dataset under `<run>/<stage>/`: train.json, val.json (test.json), labels, stats, pictures and
 * dataset.json last (lib/dataset/build.ts).
 */
export const mergeJob: JobModule<MergeJobParams> = {
  async run(params, ctx) {
    const where = `stages.${ctx.stage}.params`;
    const stages = ctx.run.graph.stages;
    checkStageParam(ctx, params.chips, 'chips');
    const chips = stages.find((s) => s.name === params.chips)!;
    const self = stages.find((s) => s.name === ctx.stage);
    if (!self?.dependsOn.some((d) => d.stage === chips.name)) {
      throw new Error(
        `stages.${ctx.stage}: the merge job reads stage '${chips.name}' when it has finished; list it under needs (needs: [${chips.name}])`,
      );
    }
    const chipRoot = ctx.run.stageUri(chips.name);
    const items = chips.itemsFrom === undefined ? undefined : ctx.run.graph.items[chips.itemsFrom];
    // a per-item chip stage writes <stage>/<item>/; a single-task one is searched for scene folders
    const inputs = items ? items.map((item) => joinUri(chipRoot, item.id)) : [chipRoot];
    const out = ctx.run.stageUri(ctx.stage);
    const result = await buildDataset(ctx.storage, {
      inputs,
      out,
      val: params.valFraction,
      test: params.testFraction,
      seed: params.seed,
      contactSheet: params.contactSheet,
      copyImages: params.copyImages,
      categories: params.categories,
      optionNames: {
        val: `${where}.valFraction`,
        test: `${where}.testFraction`,
        seed: `${where}.seed`,
        contactSheet: `${where}.contactSheet`,
      },
      signal: ctx.signal,
      onProgress: (phase, done, total) => {
        if (phase === 'read') ctx.progress(done, total);
      },
    });
    const m = result.manifest;
    for (const w of m.warnings) ctx.log.warn(w);
    const counts = Object.entries(m.counts)
      .map(([split, c]) => `${split} ${c.scenes} scene(s) / ${c.images} chips / ${c.annotations} annotations`)
      .join(', ');
    ctx.log.info(`dataset: ${m.categories.length} categories; ${counts} -> ${result.manifestUri}`);
    return {
      outputs: result.outputs,
      summary: {
        manifest: result.manifestUri,
        categories: m.categories.length,
        counts: m.counts,
        warnings: m.warnings.length,
      },
    };
  },
};
