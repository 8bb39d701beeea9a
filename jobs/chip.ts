import { readCoco, sliceSources, type SliceSource } from '../lib/chip/slice-images.js';
import { basenameUri, joinUri } from '../lib/storage/uri.js';
import type { ChipJobParams } from './chip-params.js';
import { checkImageStage, itemImageUri } from './stage-inputs.js';
import type { JobModule } from './types.js';

/**
 * Per item: the item's image (or the `image` stage's output for it) sliced with its COCO shard
 * (the `coco` stage's `<item>.json`), into `<stage>/<item>/images/*`, `annotations.json` and,
 * for georeferenced images, `chips.geojson`.
 */
export const chipJob: JobModule<ChipJobParams> = {
  async run(params, ctx) {
    if (params.coco !== undefined && !ctx.run.graph.stages.some((s) => s.name === params.coco)) {
      const names = ctx.run.graph.stages.map((g) => g.name).join(', ');
      throw new Error(
        `stages.${ctx.stage}.params.coco: expected a stage of this pipeline (${names}) but got '${params.coco}'`,
      );
    }
    if (params.image !== undefined) checkImageStage(ctx, params.image, 'image');
    const outputs: string[] = [];
    const summaries: Record<string, unknown>[] = [];
    let done = 0;
    for (const item of ctx.items) {
      const uri = itemImageUri(ctx, item, params.image);
      const out = joinUri(ctx.run.stageUri(ctx.stage), item.id);
      let source: SliceSource = { uri, name: basenameUri(uri), annotations: [] };
      let categories: readonly unknown[] = [];
      if (params.coco !== undefined) {
        const shard = joinUri(ctx.run.stageUri(params.coco), `${item.id}.json`);
        const coco = await readCoco(ctx.storage, shard, ctx.signal);
        source = { ...source, annotations: coco.annotations, labelsUri: shard };
        categories = coco.categories;
      }
      const result = await sliceSources(ctx.storage, [source], categories, {
        out,
        size: params.size,
        overlap: params.overlap,
        minAreaRatio: params.minAreaRatio,
        ignoreNegatives: params.ignoreNegatives,
        format: params.format,
        quality: params.quality,
        signal: ctx.signal,
      });
      outputs.push(result.annotationsUri, ...(result.footprints ? [joinUri(out, 'chips.geojson')] : []));
      ctx.log.info(
        `${item.id}: ${result.chips} chips, ${result.annotations} annotations${result.zeroArea ? `, ${result.zeroArea} zero-area skipped` : ''}${result.rle ? `, ${result.rle} RLE skipped` : ''} -> ${out}`,
      );
      summaries.push({
        item: item.id,
        chips: result.chips,
        annotations: result.annotations,
        zeroArea: result.zeroArea,
        rle: result.rle,
      });
      ctx.progress(++done, ctx.items.length);
    }
    return { outputs, summary: { images: summaries } };
  },
};
