import { parseCrsOption, rasterizeMask } from '../lib/labels/geo-labels.js';
import { joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import { inlineCategories } from './labels.js';
import { itemGeorefUri, labelsFileFor } from './stage-inputs.js';
import type { JobModule } from './types.js';

/** Per item: map polygons (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) rasterised into a uint8 mask aligned with the item's image, `<stage>/<item>.tif`. */
export const maskJob: JobModule<JobParams<'mask'>> = {
  async run(params, ctx) {
    const categories = inlineCategories(ctx.stage, params.categories);
    if (categories && params.burnField === undefined) {
      throw new Error(
        `stages.${ctx.stage}.params.categories maps burnField values: set params.burnField too`,
      );
    }
    const crs = params.crs === undefined ? undefined : parseCrsOption(params.crs);
    const outputs: string[] = [];
    const counts: Record<string, unknown>[] = [];
    let done = 0;
    for (const item of ctx.items) {
      const labels = labelsFileFor(ctx, params.labels, item);
      const image = itemGeorefUri(ctx, item, params.image);
      const out = joinUri(ctx.run.stageUri(ctx.stage), `${item.id}.tif`);
      const result = await rasterizeMask(ctx.storage, labels, image, out, {
        ...(params.burnField !== undefined ? { burnField: params.burnField } : {}),
        ...(categories ? { categories } : {}),
        allTouched: params.allTouched,
        ...(crs ? { crs } : {}),
        ...(params.layer !== undefined ? { layer: params.layer } : {}),
        signal: ctx.signal,
        tmpDir: ctx.tmpDir,
      });
      outputs.push(out);
      for (const w of result.warnings) ctx.log.warn(w);
      ctx.log.info(`${item.id}: ${JSON.stringify(result.counts)} values ${JSON.stringify(result.values)}`);
      counts.push({ item: item.id, ...result.counts, values: result.values });
      ctx.progress(++done, ctx.items.length);
    }
    return { outputs, summary: { images: counts } };
  },
};
