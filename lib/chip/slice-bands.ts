/**
 * Cutting and writing the chips of planned bands of windows from a {@link ChipRows} source: the
 * part of `chip slice` that costs CPU (decoding, converting, encoding), run on the calling thread
 * or in worker threads (slice-workers.ts) with the same code, so both give the same bytes.
 * Annotations and indexes are not written here: the caller derives them from the plan.
 */
import sharp from 'sharp';
import { BoundedTasks, ChipFileWriter } from './chip-files.js';
import { encodeJpeg } from './jpeg.js';
import type { ChipGeoreference, ChipRows, RowBand } from './slice-readers.js';
import { windowGeoTransform, type GeoTransform } from '../geo/affine.js';
import type { SliceWindow } from '../labels/slice.js';
import { writeGeoTiff } from '../raster/geotiff-writer.js';
import { writeThroughLocalFile } from '../raster/output.js';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';

export type ChipFormat = 'jpeg' | 'png' | 'tif';

/** One chip to write: its window of the source and its file name under `<out>/images/`. */
export interface PlannedChip {
  readonly window: SliceWindow;
  readonly fileName: string;
}

/** The windows of one row: they share rows [top, bottom). */
export interface PlannedBand extends RowBand {
  readonly chips: readonly PlannedChip[];
}

/** How chips are encoded and where they go (structured-cloneable: sent to worker threads). */
export interface ChipOutput {
  readonly out: string;
  readonly format: ChipFormat;
  /** JPEG quality 1..100. */
  readonly quality: number;
  /** Encodes and writes in flight. */
  readonly concurrency: number;
}

/** The columns the bands' windows span, [first, end). */
export function bandColumns(bands: readonly PlannedBand[]): [number, number] {
  let first = Infinity;
  let end = -Infinity;
  for (const band of bands) {
    for (const chip of band.chips) {
      first = Math.min(first, chip.window[0]);
      end = Math.max(end, chip.window[2]);
    }
  }
  return [first, end];
}

/** What {@link cutBands} reports as it goes. */
export interface CutHooks {
  /** A band's chips are all queued (for progress). */
  readonly onBand?: (chips: number) => void;
  /** Every chip of the band with this index (in `bands`) is written (for resuming). */
  readonly onWritten?: (band: number) => void;
  readonly signal?: AbortSignal;
}

/**
 * Reads `bands` from `rows` top to bottom and writes their chips, reporting through `hooks`.
 * Returns when every chip is written.
 */
export async function cutBands(
  storage: Storage,
  rows: ChipRows,
  bands: readonly PlannedBand[],
  output: ChipOutput,
  hooks: CutHooks = {},
): Promise<void> {
  const { onBand, onWritten, signal } = hooks;
  if (bands.length === 0) return;
  const { format, quality } = output;
  const chipFiles = new ChipFileWriter(storage, signal);
  const tasks = new BoundedTasks(Math.max(1, output.concurrency));
  rows.plan(bands, bandColumns(bands));
  // encodes read views of the decoded rows; a band's rows stay valid while the next band loads
  // (ChipRows.view), so the encodes of the band before the last must finish first
  let older: Promise<void>[] = [];
  let last: Promise<void>[] = [];
  // onWritten calls still to come: all are made before cutBands returns or throws
  const reported: Promise<void>[] = [];
  try {
    for (const [index, band] of bands.entries()) {
      await Promise.all(older);
      await rows.load(band);
      const current: Promise<void>[] = [];
      let failed = false;
      for (const chip of band.chips) {
        signal?.throwIfAborted();
        const uri = joinUri(output.out, 'images', chip.fileName);
        const [x0, y0, x1, y1] = chip.window;
        const width = x1 - x0;
        const height = y1 - y0;
        let encode: () => Promise<void>;
        if (format === 'jpeg') {
          const pixels = rows.view(chip.window);
          encode = async () => chipFiles.write(uri, await encodeJpeg(pixels, quality));
        } else if (format === 'png') {
          const pixels = rows.cut(chip.window);
          const raw = { width, height, channels: rows.channels as 1 | 2 | 3 | 4 };
          encode = async () => chipFiles.write(uri, await sharp(pixels, { raw }).png().toBuffer());
        } else {
          const pixels = rows.cut(chip.window);
          const gt = rows.geo ? windowGeoTransform(rows.geo.gt, x0, y0) : undefined;
          encode = () => writeTifChip(storage, uri, pixels, { width, height }, rows, gt, signal);
        }
        let settle!: () => void;
        current.push(new Promise<void>((resolve) => (settle = resolve)));
        await tasks.run(() =>
          encode()
            .catch((error: unknown) => {
              failed = true;
              throw error;
            })
            .finally(settle),
        );
      }
      if (onWritten) {
        reported.push(
          Promise.all(current).then(() => {
            if (!failed) onWritten(index);
          }),
        );
      }
      older = last;
      last = current;
      onBand?.(band.chips.length);
    }
  } catch (error) {
    // never throw while an encode still reads the rows or writes a chip
    await tasks.drain().catch(() => undefined);
    await Promise.all(reported);
    throw error;
  }
  await tasks.drain();
  await Promise.all(reported);
}

/** Writes one GeoTIFF chip (DEFLATE, one tile), with the window's geotransform and the scene's CRS. */
async function writeTifChip(
  storage: Storage,
  uri: string,
  pixels: Buffer,
  size: { width: number; height: number },
  rows: Pick<ChipRows, 'channels' | 'alpha' | 'nodata'> & { readonly geo: ChipGeoreference | undefined },
  gt: GeoTransform | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const data = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  const geo = rows.geo;
  await writeThroughLocalFile(
    storage,
    uri,
    (path) =>
      writeGeoTiff(path, data, {
        width: size.width,
        height: size.height,
        bands: rows.channels,
        dtype: 'uint8',
        tileSize: Math.min(512, Math.ceil(Math.max(size.width, size.height) / 16) * 16),
        alpha: rows.alpha,
        ...(gt ? { geotransform: gt } : {}),
        ...(geo?.epsg != null ? { epsg: geo.epsg, crsKind: geo.crsKind } : {}),
        ...(rows.nodata !== undefined ? { nodata: rows.nodata } : {}),
        ...(signal ? { signal } : {}),
      }),
    signal ? { signal } : {},
  );
}
