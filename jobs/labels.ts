import { parseCategoryMap } from '../lib/labels/categories.js';
import type { CategoryMap } from '../lib/labels/categories.js';
import { cocoText } from '../lib/labels/coco.js';
import { geojsonToCoco, parseCrsOption } from '../lib/labels/geo-labels.js';
import { joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import { itemGeorefUri, itemImageUri, labelsFileFor } from './stage-inputs.js';
import type { JobModule } from './types.js';

/** A category map given inline in a stage's params. */
export function inlineCategories(
  stage: string,
  categories: Record<string, unknown> | undefined,
): CategoryMap | undefined {
  return categories
    ? parseCategoryMap(JSON.stringify(categories), `stages.${stage}.params.categories`)
    : undefined;
}

/** Per item: map polygons (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) placed on the item's image as a COCO shard, `<stage>/<item>.json`. */
export const labelsJob: JobModule<JobParams<'labels'>> = {
  async run(params, ctx) {
    if (params.category !== undefined && params.categoryField !== undefined) {
      throw new Error(`stages.${ctx.stage}.params: give category or categoryField, not both`);
    }
    const categories = inlineCategories(ctx.stage, params.categories);
    const crs = params.crs === undefined ? undefined : parseCrsOption(params.crs);
    const outputs: string[] = [];
    const counts: Record<string, unknown>[] = [];
    let done = 0;
    for (const item of ctx.items) {
      const labels = labelsFileFor(ctx, params.labels, item);
      const image = itemImageUri(ctx, item, params.image);
      const { dataset, result } = await geojsonToCoco(
        ctx.storage,
        labels,
        itemGeorefUri(ctx, item, params.image),
        {
          imageUri: image,
          ...(params.categoryField !== undefined ? { categoryField: params.categoryField } : {}),
          ...(params.category !== undefined ? { category: params.category } : {}),
          ...(categories ? { categories } : {}),
          ...(crs ? { crs } : {}),
          ...(params.layer !== undefined ? { layer: params.layer } : {}),
          signal: ctx.signal,
        },
      );
      const out = joinUri(ctx.run.stageUri(ctx.stage), `${item.id}.json`);
      await ctx.storage.writeAtomic(out, cocoText(dataset), {
        contentType: 'application/json',
        signal: ctx.signal,
      });
      outputs.push(out);
      for (const w of result.warnings) ctx.log.warn(w);
      ctx.log.info(
        `${item.id}: ${JSON.stringify(result.counts)} unmapped ${JSON.stringify(result.unmappedValues)}`,
      );
      counts.push({ item: item.id, ...result.counts, unmappedValues: result.unmappedValues });
      ctx.progress(++done, ctx.items.length);
    }
    return { outputs, summary: { images: counts } };
  },
};
