import { convertToRgb, formatExtension } from '../lib/raster/rgb.js';
import type { Stretch } from '../lib/raster/stretch.js';
import { joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import type { JobModule } from './types.js';

/** The stretch the parameters ask for (undefined: the default for the input's type). */
export function stretchFromParams(params: JobParams<'rgb'>): Stretch | undefined {
  const kind = params.stretch ?? (params.range ? 'range' : undefined);
  if (kind === undefined) return undefined;
  if (kind === 'range') {
    if (!params.range)
      throw new Error(`params.stretch 'range' needs params.range: [min, max] (or six numbers for R, G, B)`);
    const ranges: [number, number][] = [];
    for (let i = 0; i < params.range.length; i += 2) ranges.push([params.range[i]!, params.range[i + 1]!]);
    return { kind, ranges };
  }
  if (params.range) throw new Error(`params.range applies to stretch 'range', not '${kind}'`);
  if (kind === 'percentile') {
    const [low, high] = params.percentiles;
    return { kind, low, high };
  }
  return { kind };
}

/** Per item: the item's raster as 8-bit RGB, `<stage>/<item>.tif` (or .png / .jpg). */
export const rgbJob: JobModule<JobParams<'rgb'>> = {
  async run(params, ctx) {
    const stretch = stretchFromParams(params);
    const outputs: string[] = [];
    const summaries: Record<string, unknown>[] = [];
    let done = 0;
    for (const item of ctx.items) {
      const output = joinUri(ctx.run.stageUri(ctx.stage), `${item.id}${formatExtension(params.format)}`);
      const bands = params.bands
        ? params.bands.length === 1
          ? [params.bands[0]!, params.bands[0]!, params.bands[0]!]
          : params.bands
        : undefined;
      const result = await convertToRgb(ctx.storage, item.uri, output, {
        ...(bands ? { bands } : {}),
        ...(stretch ? { stretch } : {}),
        ...(params.srcNodata !== undefined
          ? { srcNodata: params.srcNodata === 'none' ? null : params.srcNodata }
          : {}),
        ...(params.alpha !== undefined ? { alpha: params.alpha } : {}),
        format: params.format,
        quality: params.quality,
        ...(params.cog ? { cog: true } : {}),
        signal: ctx.signal,
        tmpDir: ctx.tmpDir,
      });
      outputs.push(output, ...result.sidecars);
      for (const w of result.warnings) ctx.log.warn(w);
      ctx.log.info(
        `${item.id}: ${result.width}x${result.height} ${result.inputType} bands ${result.bands.join(',')} ${result.stretch} ranges ${JSON.stringify(result.ranges)} -> ${output}`,
      );
      summaries.push({
        item: item.id,
        bands: result.bands,
        stretch: result.stretch,
        ranges: result.ranges,
        sampledFrom: result.sampledFrom,
      });
      ctx.progress(++done, ctx.items.length);
    }
    return { outputs, summary: { images: summaries } };
  },
};
