import { retileImage } from '../lib/chip/retile.js';
import { joinUri } from '../lib/storage/uri.js';
import type { RetileJobParams } from './retile-params.js';
import { checkImageStage, itemImageUri } from './stage-inputs.js';
import type { JobModule } from './types.js';

/**
 * Per item: the item's image (or the `image` stage's output for it) cut into GeoTIFF tiles on
 * the gdal_retile grid, `<stage>/<item>/<stem>_<row>_<col>.tif`, with `tiles.json` written last.
 */
export const retileJob: JobModule<RetileJobParams> = {
  async run(params, ctx) {
    if (params.image !== undefined) checkImageStage(ctx, params.image, 'image');
    const outputs: string[] = [];
    const summaries: Record<string, unknown>[] = [];
    for (const [i, item] of ctx.items.entries()) {
      const uri = itemImageUri(ctx, item, params.image);
      const out = joinUri(ctx.run.stageUri(ctx.stage), item.id);
      const result = await retileImage(ctx.storage, uri, {
        out,
        size: params.size,
        overlap: params.overlap,
        compress: params.compress,
        tmpDir: ctx.tmpDir,
        signal: ctx.signal,
        // progress in tiles across the task's items
        onProgress: (done, total) => ctx.progress(i * total + done, ctx.items.length * total),
      });
      for (const w of result.warnings) ctx.log.warn(w);
      ctx.log.info(
        `${item.id}: ${result.tiles} tiles (${result.rows} x ${result.cols}), ${result.written} written, ${result.skipped} already complete -> ${out}`,
      );
      outputs.push(result.indexUri);
      summaries.push({
        item: item.id,
        tiles: result.tiles,
        written: result.written,
        skipped: result.skipped,
      });
    }
    return { outputs, summary: { images: summaries } };
  },
};
