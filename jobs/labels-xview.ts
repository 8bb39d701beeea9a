import { xviewCategories } from '../lib/labels/categories.js';
import { writeShards } from '../lib/labels/coco.js';
import { describeImages } from '../lib/labels/images.js';
import { xviewSummaryJson } from '../lib/labels/summary.js';
import { convertXview } from '../lib/labels/xview.js';
import { basenameUri, joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import { inlineCategories } from './labels.js';
import { checkImageStage, inputSetItems, itemImageUri } from './stage-inputs.js';
import type { JobModule } from './types.js';

/**
 * One task for the whole stage: streams the xView GeoJSON once and writes a COCO shard per image
 * (`<stage>/<item>.json`, empty for images without labels) and `<stage>/summary.json`.
 */
export const labelsXviewJob: JobModule<JobParams<'labels-xview'>> = {
  async run(params, ctx) {
    const files = inputSetItems(ctx, params.labels, 'labels');
    if (files.length !== 1) {
      throw new Error(
        `stages.${ctx.stage}.params.labels: expected input set '${params.labels}' to hold one xView GeoJSON but it holds ${files.length}`,
      );
    }
    const source = files[0]!.uri;
    const graph = ctx.run.graph;
    const imageStage = graph.stages.find((s) => s.name === params.images);
    let refs: { uri: string; name: string; id: string }[];
    if (imageStage) {
      checkImageStage(ctx, params.images, 'images');
      const self = graph.stages.find((s) => s.name === ctx.stage);
      if (!self?.dependsOn.some((d) => d.stage === params.images)) {
        throw new Error(
          `stages.${ctx.stage}.params.images: stage '${params.images}' must finish first: add needs: [${params.images}] to stage '${ctx.stage}'`,
        );
      }
      const items = imageStage.itemsFrom ? (graph.items[imageStage.itemsFrom] ?? []) : [];
      // labels name the original scene (xView image_id); the shard points at the stage's image
      refs = items.map((item) => ({
        uri: itemImageUri(ctx, item, params.images),
        name: basenameUri(item.uri),
        id: item.id,
      }));
    } else {
      refs = inputSetItems(ctx, params.images, 'images').map((item) => ({
        uri: item.uri,
        name: basenameUri(item.uri),
        id: item.id,
      }));
    }
    const images = await describeImages(ctx.storage, refs, { signal: ctx.signal });
    const categories = inlineCategories(ctx.stage, params.categories) ?? xviewCategories();
    const conversion = await convertXview(ctx.storage, source, images, categories, {
      signal: ctx.signal,
      onProgress: (n) => ctx.log.info(`${n} features read`),
    });
    const dir = ctx.run.stageUri(ctx.stage);
    const shards = conversion.shards.map((s) => ({
      uri: joinUri(dir, `${s.image.id}.json`),
      dataset: s.dataset,
    }));
    await writeShards(ctx.storage, shards, { signal: ctx.signal });
    const summary = xviewSummaryJson(conversion);
    const summaryUri = joinUri(dir, 'summary.json');
    await ctx.storage.writeAtomic(summaryUri, JSON.stringify(summary, null, 2) + '\n', {
      signal: ctx.signal,
    });
    const c = conversion.counts;
    ctx.log.info(
      `${c.features} features: kept ${c.kept} (clipped ${c.clipped}), zero-area ${c.zeroArea}, outside ${c.outside}, unmapped ${c.unmappedCategory} ${JSON.stringify(conversion.unmappedTypeIds)}, missing image ${c.missingImage} ${JSON.stringify(conversion.missingImages)}`,
    );
    return {
      outputs: [...shards.map((s) => s.uri), summaryUri],
      summary: { counts: c, images: images.length },
    };
  },
};
