import { partFileName, readCoco, sliceSources, type SliceSource } from '../lib/chip/slice-images.js';
import { basenameUri, joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import type { ChipJobParams } from './chip-params.js';
import { stretchFromParams } from './rgb.js';
import { checkImageStage, checkStageParam, itemImageUri } from './stage-inputs.js';
import type { JobModule } from './types.js';

/**
 * Per item: the item's image (or the `image` stage's output for it) sliced with its COCO shard
 * (the `coco` stage's `<item>.json`), into `<stage>/<item>/images/*`, `annotations.json` and,
 * for georeferenced images, `chips.geojson`. GeoTIFFs of any bands and type are converted to
 * 8-bit RGB on the fly with the rgb job's `bands` / `stretch` / `percentiles` / `range`.
 * With `gsd`, the scene is first resampled to that many metres per pixel (lib/chip/slice-resample.ts).
 * In a split stage (`tasksPerItem`), a task cuts only its part of the rows of windows
 * (`ctx.part`) and writes `annotations.part-<k>-of-<n>.json` (and `chips.part-<k>-of-<n>.geojson`)
 * instead; the dataset reader joins complete sets of parts.
 */
export const chipJob: JobModule<ChipJobParams> = {
  async run(params, ctx) {
    if (params.coco !== undefined) checkStageParam(ctx, params.coco, 'coco');
    if (params.image !== undefined) checkImageStage(ctx, params.image, 'image');
    // the rgb job's parameters and their meaning: one band is grey (R, G and B)
    const stretch = stretchFromParams(
      params as Pick<JobParams<'rgb'>, 'stretch' | 'range' | 'percentiles'> as JobParams<'rgb'>,
    );
    const bands =
      params.bands?.length === 1 ? [params.bands[0]!, params.bands[0]!, params.bands[0]!] : params.bands;
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
      const part = ctx.part;
      const result = await sliceSources(ctx.storage, [source], categories, {
        out,
        size: params.size,
        overlap: params.overlap,
        minAreaRatio: params.minAreaRatio,
        ignoreNegatives: params.ignoreNegatives,
        format: params.format,
        quality: params.quality,
        ...(params.gsd !== undefined ? { gsd: params.gsd } : {}),
        ...(params.resampling ? { resampling: params.resampling } : {}),
        ...(bands ? { bands } : {}),
        ...(stretch ? { stretch } : {}),
        ...(part ? { part } : {}),
        signal: ctx.signal,
      });
      for (const s of result.sources) {
        ctx.log.info(`${item.id}: ${s.conversion}`);
        for (const w of s.warnings) ctx.log.warn(`${item.id}: ${w}`);
      }
      const footprints = part ? partFileName('chips', part) : 'chips.geojson';
      outputs.push(result.annotationsUri, ...(result.footprints ? [joinUri(out, footprints)] : []));
      const what = part ? `${item.id} part ${part.index + 1}/${part.count}` : item.id;
      if (part) {
        const rows = result.rows;
        ctx.log.info(
          rows
            ? `${what}: cut ${rows.windows} row(s) of windows, pixel rows ${rows.top}..${rows.bottom} of the image`
            : result.resumed > 0
              ? `${what}: every row of windows was finished by an earlier attempt`
              : `${what}: no rows of windows fall in this part (it writes an empty part file)`,
        );
      }
      if (result.resumed > 0) {
        ctx.log.info(`${what}: kept ${result.resumed} chips an earlier attempt had written`);
      }
      ctx.log.info(
        `${what}: ${result.chips} chips, ${result.annotations} annotations${result.zeroArea ? `, ${result.zeroArea} zero-area skipped` : ''}${result.rle ? `, ${result.rle} RLE skipped` : ''} -> ${part ? result.annotationsUri : out}`,
      );
      summaries.push({
        item: item.id,
        ...(part ? { part: part.index + 1, parts: part.count } : {}),
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
