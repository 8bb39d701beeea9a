import { chipGrid } from '../lib/chip/grid.js';
import { joinUri } from '../lib/storage/uri.js';
import type { ChipGridJobParams } from './chip-grid-params.js';
import { checkImageStage, checkStageParam, itemImageUri } from './stage-inputs.js';
import type { JobModule } from './types.js';

/**
 * Per item: the item's image (or the `image` stage's output for it) cut into grid chips, with its
 * COCO shard (the `coco` stage's `<item>.json`) when given, into `<stage>/<item>/`: the chips,
 * `nodata-index.json`, `chips.geojson` and `annotations.json`.
 */
export const chipGridJob: JobModule<ChipGridJobParams> = {
  async run(params, ctx) {
    if (params.coco !== undefined) checkStageParam(ctx, params.coco, 'coco');
    if (params.image !== undefined) checkImageStage(ctx, params.image, 'image');
    const outputs: string[] = [];
    const summaries: Record<string, unknown>[] = [];
    let done = 0;
    for (const item of ctx.items) {
      const image = itemImageUri(ctx, item, params.image);
      const out = joinUri(ctx.run.stageUri(ctx.stage), item.id);
      const result = await chipGrid(ctx.storage, {
        image,
        out,
        grid: params.grid,
        level: params.level,
        ...(params.tileSize !== undefined ? { tileSize: params.tileSize } : {}),
        format: params.format,
        resampling: params.resampling,
        overviews: params.overviews,
        skipEmpty: params.skipEmpty,
        ...(params.catalogId !== undefined ? { catalogId: params.catalogId } : {}),
        ...(params.coco !== undefined
          ? { coco: joinUri(ctx.run.stageUri(params.coco), `${item.id}.json`) }
          : {}),
        signal: ctx.signal,
      });
      outputs.push(
        result.indexUri,
        ...(result.footprintsUri ? [result.footprintsUri] : []),
        ...(result.annotationsUri ? [result.annotationsUri] : []),
      );
      const c = result.counts;
      if (result.overview) {
        const o = result.overview;
        ctx.log.info(
          `${item.id}: sampled overview ${o.index} (${o.width} x ${o.height}, 1/${o.factor[0].toFixed(2)} of full resolution)`,
        );
      }
      if (result.resumed > 0)
        ctx.log.info(`${item.id}: kept ${result.resumed} cells an earlier attempt finished`);
      ctx.log.info(
        `${item.id}: ${result.cells} cells, ${result.written} chips (${c['all data']} all data, ${c['partial data']} partial, ${c['no data']} no data)${result.annotationsUri ? `, ${result.annotations} annotations` : ''} -> ${out}`,
      );
      summaries.push({
        item: item.id,
        cells: result.cells,
        chips: result.written,
        counts: c,
        annotations: result.annotations,
      });
      ctx.progress(++done, ctx.items.length);
    }
    return { outputs, summary: { images: summaries } };
  },
};
