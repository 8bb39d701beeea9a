/**
 * `chip nodata-index <dir>`: the no-data class and valid fraction of every chip under a folder or
 * prefix, written to `<dir>/nodata-index.json` (chips sorted by name; written atomically).
 */
import sharp from 'sharp';
import { RasterError } from '../raster/errors.js';
import { IMAGE_EXTENSIONS } from '../raster/image-size.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, compareUtf8, joinUri, normalizeUri } from '../storage/uri.js';
import { countValidPixels, nodataClass, type NodataClass } from './nodata.js';

export interface NodataIndexEntry {
  /** Path relative to the indexed folder. */
  readonly chip: string;
  readonly class: NodataClass;
  /** Valid pixels / pixels, to 1e-6. */
  readonly validFraction: number;
}

export interface NodataIndex {
  readonly nodata: number | null;
  readonly counts: Record<NodataClass, number>;
  readonly chips: readonly NodataIndexEntry[];
}

/** Classifies one decoded chip (8-bit; 16-bit chips are reduced to 8 bits by sharp first). */
export async function classifyChipFile(
  path: string,
  nodata: number | null,
): Promise<Omit<NodataIndexEntry, 'chip'>> {
  const { data, info } = await sharp(path, { limitInputPixels: false })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  const alpha = info.channels === 2 || info.channels === 4;
  const total = info.width * info.height;
  const valid = countValidPixels(data, info.channels, { alpha, nodata });
  return { class: nodataClass(valid, total), validFraction: Math.round((valid / total) * 1e6) / 1e6 };
}

/** Builds and writes `<dir>/nodata-index.json`; returns the index. */
export async function buildNodataIndex(
  storage: Storage,
  dir: string,
  options: { readonly nodata?: number | null; readonly signal?: AbortSignal } = {},
): Promise<NodataIndex> {
  const nodata = options.nodata === undefined ? 0 : options.nodata;
  if (nodata !== null && (!Number.isInteger(nodata) || nodata < 0 || nodata > 255)) {
    throw new RasterError(`Expected integer in [0, 255] for no-data value but received ${nodata}`);
  }
  const io = options.signal ? { signal: options.signal } : {};
  const root = normalizeUri(dir).replace(/\/+$/, '');
  const chips: string[] = [];
  for await (const info of storage.list(root, io)) {
    const lower = info.uri.toLowerCase();
    if (IMAGE_EXTENSIONS.some((e) => lower.endsWith(e)) && !basenameUri(info.uri).startsWith('.'))
      chips.push(info.uri);
  }
  if (chips.length === 0) {
    throw new RasterError(`${dir}: no chips found (expected ${IMAGE_EXTENSIONS.join(', ')} files under it)`);
  }
  chips.sort(compareUtf8);
  const entries: NodataIndexEntry[] = [];
  const counts: Record<NodataClass, number> = { 'all data': 0, 'partial data': 0, 'no data': 0 };
  for (const uri of chips) {
    options.signal?.throwIfAborted();
    let classified: Omit<NodataIndexEntry, 'chip'>;
    try {
      classified = await classifyChipFile(await storage.localPath(uri, io), nodata);
    } catch (error) {
      throw new RasterError(`${uri}: cannot read the chip: ${(error as Error).message}`);
    }
    counts[classified.class]++;
    entries.push({ chip: uri.slice(root.length + 1), ...classified });
  }
  const index: NodataIndex = { nodata, counts, chips: entries };
  await storage.writeAtomic(joinUri(root, 'nodata-index.json'), JSON.stringify(index, null, 1) + '\n', {
    contentType: 'application/json',
    ...io,
  });
  return index;
}
