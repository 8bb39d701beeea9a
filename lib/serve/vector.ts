/**
 * GeoJSON streamed feature by feature: the features of one or more FeatureCollection files
 * (local or s3://) are cut out of the byte stream by bracket depth, so a 100 MB file is never
 * held whole; each feature is parsed only when it has to be changed (chip footprints get their
 * no-data class and window size).
 */
import type { Readable } from 'node:stream';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import type { VectorLayerInfo } from './layers.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = [0x7b, 0x5b]; // { [
const CLOSE = [0x7d, 0x5d]; // } ]

/**
 * Yields the text of every element of the top-level `"features"` array of a GeoJSON stream.
 * Anything before the array and after it is skipped; a file without one yields nothing.
 */
export async function* geojsonFeatures(stream: Readable | AsyncIterable<Buffer>): AsyncGenerator<string> {
  // state across chunks: depth of brackets, inside a string, after a backslash
  let depth = 0;
  let inString = false;
  let escaped = false;
  let inFeatures = false;
  let key = ''; // the last string seen at depth 1 (the top-level key)
  let keyStart = -1;
  let pending: Buffer[] = [];
  let featureStart = -1;
  let keyParts: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    featureStart = pending.length > 0 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === BACKSLASH) escaped = true;
        else if (b === QUOTE) {
          inString = false;
          if (depth === 1 && keyStart >= 0) {
            keyParts.push(chunk.subarray(keyStart, i));
            key = Buffer.concat(keyParts).toString('utf8');
            keyParts = [];
            keyStart = -1;
          }
        }
        continue;
      }
      if (b === QUOTE) {
        inString = true;
        if (depth === 1) keyStart = i + 1;
        continue;
      }
      if (OPEN.includes(b)) {
        depth++;
        if (inFeatures && depth === 3 && featureStart < 0) {
          featureStart = i;
          pending = [];
        }
        if (depth === 2 && b === 0x5b && key === 'features') inFeatures = true;
      } else if (CLOSE.includes(b)) {
        if (inFeatures && depth === 3) {
          pending.push(chunk.subarray(featureStart, i + 1));
          yield Buffer.concat(pending).toString('utf8');
          pending = [];
          featureStart = -1;
        }
        if (depth === 2 && inFeatures) inFeatures = false;
        depth--;
      }
    }
    if (inString && depth === 1 && keyStart >= 0) {
      keyParts.push(chunk.subarray(keyStart));
      keyStart = 0;
    }
    if (featureStart >= 0) pending.push(Buffer.from(chunk.subarray(featureStart)));
  }
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
  const w = p['window'];
  if (kind === 'slice' && Array.isArray(w) && w.length === 4 && w.every((v) => typeof v === 'number')) {
    const [x0, y0, x1, y1] = w as number[];
    p['window'] = [x0, y0, x1! - x0!, y1! - y0!];
  }
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
    for await (const text of geojsonFeatures(stream)) {
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
