import { basename } from 'node:path';
import { utmToLonLat, utmZoneFromEpsg } from '../lib/geo/utm.js';
import type { RasterInfo } from '../lib/raster/info.js';
import { Jp2Raster } from '../lib/raster/jp2-reader.js';
import { openRaster, TiffRaster } from '../lib/raster/reader.js';
import { sampleBandStats, sampleRasterStats } from '../lib/raster/sample-stats.js';
import { joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import type { JobModule } from './types.js';

/** A raster's footprint as a CRS84 ring (corners), when its CRS is one this build can convert. */
export function footprintLonLat(info: RasterInfo): [number, number][] | undefined {
  if (!info.geo || info.geo.epsg === null) return undefined;
  const gt = info.geo.geotransform;
  const corners: [number, number][] = [
    [0, 0],
    [info.width, 0],
    [info.width, info.height],
    [0, info.height],
    [0, 0],
  ];
  const world = corners.map(
    ([c, r]) => [gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5]] as [number, number],
  );
  const epsg = info.geo.epsg;
  if (epsg === 4326) return world;
  const zone = utmZoneFromEpsg(epsg);
  if (!zone) return undefined;
  return world.map(([x, y]) => utmToLonLat(x, y, zone));
}

/** Per item: the raster's header facts, sampled band statistics and CRS84 footprint, as `<stage>/<item>.json`. */
export const inspectJob: JobModule<JobParams<'inspect'>> = {
  async run(params, ctx) {
    const outputs: string[] = [];
    let done = 0;
    for (const item of ctx.items) {
      const raster = await openRaster(ctx.storage, item.uri, { signal: ctx.signal });
      try {
        const info = raster.info;
        const sampling = { step: params.sampleStep, nodata: info.nodata, signal: ctx.signal };
        // TIFFs through geotiff.js as before (YCbCr read as RGB); JPEG 2000 by its tiles and levels
        const { stats, sampledFrom } =
          raster instanceof TiffRaster
            ? await sampleBandStats(raster.tiff, sampling)
            : await sampleRasterStats(raster, sampling);
        const footprint = footprintLonLat(info);
        const record = {
          item: item.id,
          uri: item.uri,
          file: basename(item.uri),
          ...info,
          footprint: footprint ? { type: 'Polygon', coordinates: [footprint] } : null,
          bandStats: stats,
          sampledFrom,
          bytesRead:
            raster instanceof TiffRaster
              ? raster.source.stats.bytes
              : raster instanceof Jp2Raster
                ? raster.bytesRead
                : null,
        };
        const out = joinUri(ctx.run.stageUri(ctx.stage), `${item.id}.json`);
        await ctx.storage.writeAtomic(out, JSON.stringify(record, null, 2) + '\n', {
          contentType: 'application/json',
          signal: ctx.signal,
        });
        outputs.push(out);
        ctx.log.info(
          `${item.id}: ${info.width}x${info.height}x${info.bands} ${info.dtype}, EPSG:${info.geo?.epsg ?? 'none'}, ${sampledFrom}`,
        );
      } finally {
        await raster.close();
      }
      ctx.progress(++done, ctx.items.length);
    }
    return { outputs };
  },
};
