import { joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import type { JobModule } from './types.js';

interface InspectRecord {
  readonly item: string;
  readonly uri: string;
  readonly width: number;
  readonly height: number;
  readonly bands: number;
  readonly dtype: string;
  readonly nodata: number | null;
  readonly geo?: { readonly epsg: number | null; readonly geotransform: readonly number[] };
  readonly footprint: { type: 'Polygon'; coordinates: number[][][] } | null;
}

/** Fan-in: gathers the per-item records of the `inspect` stages it needs into catalog.json and footprints.geojson. */
export const sceneCatalogJob: JobModule<JobParams<'catalog'>> = {
  async run(_params, ctx) {
    const self = ctx.run.graph.stages.find((s) => s.name === ctx.stage);
    const sources = (self?.dependsOn ?? [])
      .filter((d) => d.type === 'FAN_IN')
      .map((d) => ctx.run.graph.stages.find((s) => s.name === d.stage))
      .filter((s) => s?.job === 'inspect');
    if (sources.length === 0) {
      throw new Error(
        `stages.${ctx.stage}: the catalog job gathers 'inspect' stages; list one under needs (e.g. needs: [inspect])`,
      );
    }
    const records: InspectRecord[] = [];
    for (const source of sources) {
      const prefix = ctx.run.stageUri(source!.name) + '/';
      for await (const info of ctx.storage.list(prefix, { signal: ctx.signal })) {
        if (!info.uri.endsWith('.json')) continue;
        records.push(
          JSON.parse(
            (await ctx.storage.read(info.uri, { signal: ctx.signal })).toString('utf8'),
          ) as InspectRecord,
        );
      }
    }
    records.sort((a, b) => a.item.localeCompare(b.item));
    if (records.length === 0)
      throw new Error(`no records to gather from stage(s) ${sources.map((s) => s!.name).join(', ')}`);
    const out = ctx.run.stageUri(ctx.stage);
    const pixels = records.reduce((n, r) => n + r.width * r.height, 0);
    const catalogJson = {
      run: ctx.run.id,
      scenes: records.length,
      pixels,
      crs: [...new Set(records.map((r) => (r.geo?.epsg ? `EPSG:${r.geo.epsg}` : 'none')))],
      records,
    };
    const geojson = {
      type: 'FeatureCollection',
      features: records
        .filter((r) => r.footprint)
        .map((r) => ({
          type: 'Feature',
          geometry: r.footprint,
          properties: {
            item: r.item,
            uri: r.uri,
            width: r.width,
            height: r.height,
            bands: r.bands,
            dtype: r.dtype,
            epsg: r.geo?.epsg ?? null,
          },
        })),
    };
    const catalogUri = joinUri(out, 'catalog.json');
    const footprintsUri = joinUri(out, 'footprints.geojson');
    await ctx.storage.writeAtomic(catalogUri, JSON.stringify(catalogJson, null, 2) + '\n', {
      signal: ctx.signal,
    });
    await ctx.storage.writeAtomic(footprintsUri, JSON.stringify(geojson) + '\n', { signal: ctx.signal });
    ctx.log.info(`gathered ${records.length} scene(s), ${geojson.features.length} footprint(s)`);
    return { outputs: [catalogUri, footprintsUri], summary: { scenes: records.length, pixels } };
  },
};
