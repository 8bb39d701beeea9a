/**
 * GeoJSON streamed feature by feature: the features of one or more FeatureCollection files
 * (local or s3://) are cut out of the byte stream by the label room's scanner, so a 100 MB file is never
 * held whole; each feature is parsed only when it has to be changed (chip footprints get their
 * no-data class and window size).
 */
import type { Readable } from 'node:stream';
import { streamFeatures } from '../labels/geojson-stream.js';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import type { VectorLayerInfo } from './layers.js';

/**
 * Yields the text of every element of the top-level `"features"` array of a GeoJSON stream,
 * through the label room's FeatureCollection scanner (`name` names the file in its errors).
 */
export async function* geojsonFeatures(
  stream: Readable | AsyncIterable<Buffer>,
  name = 'GeoJSON stream',
): AsyncGenerator<string> {
  for await (const feature of streamFeatures(stream as AsyncIterable<Buffer>, name))
    yield feature.bytes.toString('utf8');
}

/** `chip slice` stores a chip's window as [x0, y0, x1, y1]; the page and the API show [x, y, w, h]. */
export function sliceWindowXywh(w: unknown): unknown {
  if (!Array.isArray(w) || w.length !== 4 || !w.every((v) => typeof v === 'number')) return w;
  const [x0, y0, x1, y1] = w as number[];
  return [x0, y0, x1! - x0!, y1! - y0!];
}

/** A chip's no-data class and valid fraction from `nodata-index.json`, by chip file name. */
type NodataByChip = Map<string, { class: string; validFraction: number }>;

async function readNodataIndex(storage: Storage, folder: string): Promise<NodataByChip | undefined> {
  const uri = joinUri(folder, 'nodata-index.json');
  if (!(await storage.exists(uri))) return undefined;
  try {
    const json = JSON.parse((await storage.read(uri)).toString('utf8')) as {
      chips?: { chip?: unknown; class?: unknown; validFraction?: unknown }[];
    };
    const map: NodataByChip = new Map();
    for (const e of json.chips ?? []) {
      if (typeof e.chip === 'string' && typeof e.class === 'string')
        map.set(e.chip, {
          class: e.class,
          validFraction: typeof e.validFraction === 'number' ? e.validFraction : NaN,
        });
    }
    return map;
  } catch {
    return undefined;
  }
}

/**
 * A chip footprint as the page wants it: `chip`, `source`, `window` as [x, y, w, h] (chips.geojson
 * of `chip slice` stores [x0, y0, x1, y1]), and `nodata` ('all data' | 'partial data' | 'no data' |
 * 'unknown') from the folder's no-data index.
 */
function chipFeature(text: string, nodata: NodataByChip | undefined, kind: 'slice' | 'grid'): string {
  const feature = JSON.parse(text) as { properties?: Record<string, unknown> | null };
  const p = { ...(feature.properties ?? {}) };
  if (kind === 'slice') p['window'] = sliceWindowXywh(p['window']);
  const entry = typeof p['chip'] === 'string' ? nodata?.get(p['chip']) : undefined;
  p['nodata'] = entry?.class ?? 'unknown';
  if (entry && Number.isFinite(entry.validFraction)) p['validFraction'] = entry.validFraction;
  return JSON.stringify({ ...feature, properties: p });
}

/** Writes one vector layer as a single FeatureCollection to `write`, file after file. */
export async function streamVectorLayer(
  storage: Storage,
  layer: VectorLayerInfo,
  write: (text: string) => Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  let count = 0;
  await write('{"type":"FeatureCollection","features":[\n');
  for (const uri of layer.uris) {
    const folder = uri.slice(0, uri.lastIndexOf('/'));
    const nodata = layer.role === 'chips' ? await readNodataIndex(storage, folder) : undefined;
    const stream = await storage.createReadStream(uri, signal ? { signal } : {});
    let kind: 'slice' | 'grid' | undefined;
    for await (const text of geojsonFeatures(stream, uri)) {
      let out = text;
      if (layer.role === 'chips') {
        // chip-grid footprints carry `cell`; their `window` is not a pixel window of the source
        kind ??= text.includes('"cell"') ? 'grid' : 'slice';
        out = chipFeature(text, nodata, kind);
      }
      await write((count > 0 ? ',\n' : '') + out);
      count++;
    }
  }
  await write('\n]}\n');
  return count;
}
