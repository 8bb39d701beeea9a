/**
 * Sliced inference over a scene of any size: the scene is read one row of windows at a time
 * through the chip readers (lib/chip/slice-readers.ts: block by block, local or S3 byte ranges,
 * converted to 8-bit RGB exactly as the training chips were), each window resized to the
 * network's input as the trainer resized its chips, run through the bundle's ONNX in batches,
 * and the results put back on the scene: detections merged across windows, segmentation logits
 * blended and argmaxed into a class GeoTIFF aligned with the scene, classification scores per
 * window. Outputs and their formats: /work/wt/PREDICT.md ("Prediction outputs").
 *
 * Resumable: each finished row of windows is written under `<out>/.partial/<scene>/` (with a key
 * file that digests the scene's identity and every option that decides the rows), and a rerun
 * keeps those rows. Splittable: part k of n computes its share of the rows of windows (divided as
 * `chip slice` divides them) and writes `<scene>.part-<k>-of-<n>.*`; the part that finds every
 * part present joins them into the final files. For segmentation a part owns a range of pixel
 * rows and also computes the windows of the rows before it that overlap them (as a resumed run
 * does), so that its pixels are blended from exactly the windows a one-pass run blends.
 */
import { mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { LogitBlender, resizeLogits, type BlendMode } from './blend.js';
import { readBundle, expectTask, sceneConversion, type BundleTask, type LoadedBundle } from './bundle.js';
import { PredictError } from './errors.js';
import { windowInput } from './input.js';
import { DEFAULT_MERGE, mergeDetections, type Detection, type MergeOptions } from './merge.js';
import { polygonizeClasses } from './polygonize.js';
import { openSession, type Device, type ModelSession } from './session.js';
import { progressKey } from '../chip/progress.js';
import { isTiffName, openChipRows, type ChipGeoreference, type ChipRows } from '../chip/slice-readers.js';
import { pixelToWorld } from '../geo/affine.js';
import { CRS84, crsTransform } from '../geo/crs.js';
import { sliceWindows, type SliceWindow } from '../labels/slice.js';
import { CogWriter } from '../raster/cog-writer.js';
import { GeoTiffWriter } from '../raster/geotiff-writer.js';
import type { GeoTiffWriterOptions } from '../raster/geotiff-writer.js';
import { writeThroughLocalFile } from '../raster/output.js';
import { openRaster } from '../raster/reader.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, joinUri, parseUri } from '../storage/uri.js';

/** Most bytes of decoded scene rows in one span of the reader (JPEG, PNG, local 8-bit RGB TIFFs). */
const SPAN_BYTES = 16 * 2 ** 20;

/** One of `count` tasks a scene's rows of windows are split into, 0-based. */
export interface PredictPart {
  readonly index: number;
  readonly count: number;
}

export interface PredictOptions {
  /** Output folder (local or s3://). Omitted: a temporary folder, removed before returning (benchmarks). */
  readonly out?: string;
  /** The scene's name in output files. @default the scene file's stem */
  readonly id?: string;
  /** Refuse a model of another task. */
  readonly task?: BundleTask;
  /** @default the bundle's windows.size */
  readonly windowSize?: number;
  /** @default the bundle's windows.overlap */
  readonly overlap?: number;
  /** Images per run when the model's batch is dynamic. @default 8 */
  readonly batch?: number;
  /** Detection merging. @default DEFAULT_MERGE */
  readonly merge?: Partial<MergeOptions>;
  /** Detection: also write every per-window detection (`<scene>.raw.geojson`). @default false */
  readonly keepRaw?: boolean;
  /** Detection and classification. @default the bundle's scoreThreshold */
  readonly scoreThreshold?: number;
  /** Segmentation. @default 'average' */
  readonly blend?: BlendMode;
  /**
   * Segmentation: write the class raster as a Cloud Optimized GeoTIFF (nearest overviews, so
   * every overview pixel is a class id of the scene). @default false
   */
  readonly cog?: boolean;
  /** @default GEOBATCH_DEVICE, else 'cpu' */
  readonly device?: Device;
  /** ONNX Runtime without its CPU memory arena: less memory, slower runs (see SessionOptions). @default false */
  readonly lowMemory?: boolean;
  /** Only this part of the rows of windows (a task of a split item). */
  readonly part?: PredictPart;
  readonly signal?: AbortSignal;
  /** After each row of windows: windows done (including resumed ones) and the windows to do. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Lines worth telling (the execution provider, the conversion, warnings). */
  readonly log?: (line: string) => void;
}

/** A bundle with its open session, shared by the scenes of one run. */
export interface Predictor {
  readonly loaded: LoadedBundle;
  readonly session: ModelSession;
  close(): Promise<void>;
}

export interface PredictSceneResult {
  readonly scene: string;
  readonly id: string;
  readonly task: BundleTask;
  /**
   * 'done': the final outputs are written (now, or by an earlier run: see `skipped`); 'part': this
   * part's files are written and other parts are still missing.
   */
  readonly status: 'done' | 'part';
  /** The final outputs were there already: nothing was computed. */
  readonly skipped: boolean;
  /** This part's outputs joined every part's into the final files. */
  readonly joined: boolean;
  readonly width: number;
  readonly height: number;
  /** Windows of the scene (all parts). */
  readonly windows: number;
  /** Rows of windows of the scene. */
  readonly rows: number;
  /** Windows run through the model now (resumed rows not counted; overlap rows of a segmentation part counted). */
  readonly computed: number;
  /** Windows skipped because they hold no valid pixel. */
  readonly empty: number;
  /** Rows of windows an earlier, interrupted run had finished, kept. */
  readonly resumedRows: number;
  /** Model runs made now. */
  readonly runs: number;
  readonly seconds: number;
  /** Windows computed per second of this call. */
  readonly windowsPerSecond: number;
  readonly counts: Readonly<Record<string, unknown>>;
  /** Output files by role (empty without `out`). */
  readonly outputs: Readonly<Record<string, string>>;
  readonly conversion: string;
  readonly device: Device;
  readonly warnings: readonly string[];
}

/** Opens a model once for many scenes. */
export async function openPredictor(
  storage: Storage,
  model: string,
  options: Pick<PredictOptions, 'task' | 'batch' | 'device' | 'lowMemory' | 'signal' | 'log'> = {},
): Promise<Predictor> {
  const loaded = await readBundle(storage, model, options.signal ? { signal: options.signal } : {});
  if (options.task) expectTask(loaded, options.task, `predict --task ${options.task}`);
  const session = await openSession(storage, loaded, {
    // the detection export takes one image per run; the others batch when the axis is dynamic
    batch: loaded.bundle.task === 'detection' ? 1 : (options.batch ?? 8),
    ...(options.device ? { device: options.device } : {}),
    ...(options.lowMemory ? { memoryArena: false } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return { loaded, session, close: () => session.close() };
}

/** The stem of a file name: `a/b/scene.tif` -> `scene`. */
export function sceneId(uri: string): string {
  const base = basenameUri(uri);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** `<scene>.predict.json`: its presence means the scene is done. */
export function predictFileName(id: string): string {
  return `${id}.predict.json`;
}

function partTag(part: PredictPart): string {
  return `part-${part.index + 1}-of-${part.count}`;
}

/** A row of windows: the windows sharing [top, bottom). */
interface WindowRow {
  readonly index: number;
  readonly top: number;
  readonly bottom: number;
  readonly windows: readonly SliceWindow[];
  /** Pixel rows [top, final) no later row's windows touch (segmentation writes them after this row). */
  readonly final: number;
}

function windowRows(windows: readonly SliceWindow[], height: number): WindowRow[] {
  const rows: { index: number; top: number; bottom: number; windows: SliceWindow[]; final: number }[] = [];
  for (const w of windows) {
    const last = rows[rows.length - 1];
    if (last && last.top === w[1]) last.windows.push(w);
    else rows.push({ index: rows.length, top: w[1], bottom: w[3], windows: [w], final: height });
  }
  for (let i = 0; i + 1 < rows.length; i++) rows[i]!.final = rows[i + 1]!.top;
  return rows;
}

/** The rows of windows [from, to) of part `part`: contiguous runs as even as possible, as `chip slice` splits. */
function partRows(rows: number, part: PredictPart | undefined): [number, number] {
  if (!part) return [0, rows];
  return [Math.floor((part.index * rows) / part.count), Math.floor(((part.index + 1) * rows) / part.count)];
}

/** A raw detection as row files store it: box, score, label, window. */
type RawDetection = [number, number, number, number, number, number, number, number, number, number];

interface ClassifiedWindow {
  readonly window: SliceWindow;
  readonly scores: readonly number[];
}

/** A gzip member of class rows [top, bottom) at `offset` (length `length`) of `uri`. */
interface ClassChunk {
  readonly uri: string;
  readonly top: number;
  readonly bottom: number;
  readonly offset: number;
  readonly length: number;
}

/** What a part writes last: `<scene>.part-<k>-of-<n>.json`. */
interface PartRecord {
  readonly format: 'geobatch-predictions-part';
  readonly part: number;
  readonly parts: number;
  readonly rows: readonly [number, number];
  readonly computed: number;
  readonly empty: number;
  readonly data: string;
  readonly chunks?: readonly Omit<ClassChunk, 'uri'>[];
}

interface SceneHeader {
  readonly bands: number;
  readonly dtype: 'uint8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64' | 'int8';
}

async function readHeader(storage: Storage, uri: string, signal?: AbortSignal): Promise<SceneHeader> {
  if (isTiffName(uri)) {
    const raster = await openRaster(storage, uri, signal ? { signal } : {});
    try {
      return { bands: raster.info.bands, dtype: raster.info.dtype };
    } finally {
      await raster.close();
    }
  }
  const path = await storage.localPath(uri, signal ? { signal } : {});
  const meta = await sharp(path, { limitInputPixels: false }).metadata();
  return { bands: meta.channels ?? 0, dtype: meta.depth === 'uchar' ? 'uint8' : 'uint16' };
}

/** Opens the scene as the chips were read; every failure is one PredictError line naming the scene. */
async function openScene(
  storage: Storage,
  loaded: LoadedBundle,
  uri: string,
  signal?: AbortSignal,
): Promise<{ rows: ChipRows; conversion: string }> {
  let header: SceneHeader;
  try {
    if (!(await storage.exists(uri, signal ? { signal } : {}))) {
      throw new PredictError(`${uri}: the scene does not exist`);
    }
    header = await readHeader(storage, uri, signal);
  } catch (error) {
    if (error instanceof PredictError || signal?.aborted) throw error;
    throw new PredictError(`${uri}: cannot read the scene: ${(error as Error).message}`);
  }
  const conversion = sceneConversion(loaded, { uri, bands: header.bands, dtype: header.dtype });
  try {
    const tiff = isTiffName(uri);
    const rows = await openChipRows(storage, uri, {
      // spans of one row of windows at 40,000 px: the span being cut and the next one decoding
      // are held at once (chip slice's 64 MiB spans are for its encoding workers)
      bandBytes: SPAN_BYTES,
      ...(tiff && conversion.bands ? { bands: conversion.bands } : {}),
      ...(tiff && conversion.stretch ? { stretch: conversion.stretch } : {}),
      ...(signal ? { signal } : {}),
    });
    return { rows, conversion: `${conversion.description} (${rows.conversion})` };
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new PredictError(`${uri}: cannot read the scene: ${(error as Error).message}`);
  }
}

/**
 * Whether pixel `i` of `data` (pixel-interleaved, `channels` samples) is no-data: every sample 0
 * where the reader marks no-data with 0 (valid pixels are 1..255 there), alpha 0 with an alpha channel.
 */
function nodataTest(rows: ChipRows): ((data: Uint8Array, at: number) => boolean) | undefined {
  const c = rows.channels;
  if (rows.alpha) return (data, at) => data[at + c - 1] === 0;
  if (rows.nodata === 0) {
    return c >= 3
      ? (data, at) => data[at] === 0 && data[at + 1] === 0 && data[at + 2] === 0
      : (data, at) => data[at] === 0;
  }
  return undefined;
}

function hasValidPixel(
  rows: ChipRows,
  isNodata: (data: Uint8Array, at: number) => boolean,
  window: SliceWindow,
): boolean {
  const px = rows.view(window);
  for (let y = 0; y < px.height; y++) {
    let at = y * px.stride * px.channels;
    for (let x = 0; x < px.width; x++, at += px.channels) if (!isNodata(px.data, at)) return true;
  }
  return false;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Scene pixel (x, y) -> CRS84 lon/lat, or undefined when the scene has no EPSG CRS. */
function lonLatOf(
  geo: ChipGeoreference | undefined,
): ((x: number, y: number) => [number, number]) | undefined {
  if (!geo || geo.epsg === null) return undefined;
  const t = crsTransform({ epsg: geo.epsg, text: `EPSG:${geo.epsg}` }, CRS84);
  return (x, y) => {
    const [wx, wy] = pixelToWorld(geo.gt, x, y);
    const [lon, lat] = t.forward(wx, wy);
    return [round(lon, 9), round(lat, 9)];
  };
}

/** The box's corners as a closed ring, counter-clockwise on the map (north-up scenes). */
function boxRing(
  toLonLat: (x: number, y: number) => [number, number],
  b: readonly [number, number, number, number],
): [number, number][] {
  const [x0, y0, x1, y1] = b;
  return [toLonLat(x0, y0), toLonLat(x0, y1), toLonLat(x1, y1), toLonLat(x1, y0), toLonLat(x0, y0)];
}

function featureCollection(features: readonly string[]): string {
  return `{"type":"FeatureCollection","features":[${features.length ? '\n' : ''}${features.join(',\n')}\n]}\n`;
}

/** Everything one scene's computation and outputs share. */
interface SceneRun {
  readonly storage: Storage;
  readonly predictor: Predictor;
  readonly scene: string;
  readonly id: string;
  readonly out: string;
  readonly rows: ChipRows;
  readonly windowRows: readonly WindowRow[];
  readonly windows: number;
  readonly size: number;
  readonly overlap: number;
  readonly threshold: number | null;
  readonly merge: MergeOptions | null;
  readonly blend: BlendMode | null;
  readonly keepRaw: boolean;
  readonly cog: boolean;
  readonly conversion: string;
  readonly warnings: string[];
  readonly signal: AbortSignal | undefined;
}

/** Applies a bundle's model to one scene; see the module comment. */
export async function predictScene(
  storage: Storage,
  sceneUri: string,
  options: PredictOptions & { readonly model: string | Predictor },
): Promise<PredictSceneResult> {
  const started = performance.now();
  const signal = options.signal;
  const io = signal ? { signal } : {};
  const own = typeof options.model === 'string';
  const predictor =
    typeof options.model === 'string' ? await openPredictor(storage, options.model, options) : options.model;
  let tempOut: string | undefined;
  let rows: ChipRows | undefined;
  try {
    const { loaded, session } = predictor;
    const bundle = loaded.bundle;
    if (options.task) expectTask(loaded, options.task, `predict --task ${options.task}`);
    const id = options.id ?? sceneId(sceneUri);
    if (!/^[A-Za-z0-9._-]+$/.test(id)) {
      throw new PredictError(
        `${sceneUri}: scene id '${id}' is not safe in file names; expected [A-Za-z0-9._-]`,
      );
    }
    if (options.out === undefined) tempOut = await mkdtemp(join(tmpdir(), 'geobatch-predict-'));
    const out = options.out ?? tempOut!;
    const part = options.part?.count === 1 ? undefined : options.part;
    if (part && !(Number.isInteger(part.index) && part.index >= 0 && part.index < part.count)) {
      throw new PredictError(`part: index ${part.index} of ${part.count}: expected 0 <= index < count`);
    }
    const doneUri = joinUri(out, predictFileName(id));
    if (await storage.exists(doneUri, io)) {
      const done = JSON.parse((await storage.read(doneUri, io)).toString('utf8')) as Record<string, unknown>;
      return skippedResult(done, sceneUri, id, out, session.device, started);
    }
    const task = bundle.task;
    const badId = bundle.classes.find((c) => !(Number.isInteger(c.id) && c.id >= 1 && c.id <= 254));
    if (task === 'segmentation' && badId) {
      throw new PredictError(
        `${loaded.uri}: 'classes' has id ${badId.id} (${badId.name}); a class raster holds ids 1..254 (0 is background, 255 no-data)`,
      );
    }
    const opened = await openScene(storage, loaded, sceneUri, signal);
    rows = opened.rows;
    if (rows.width < 1 || rows.height < 1) {
      throw new PredictError(`${sceneUri}: the scene is empty (${rows.width} x ${rows.height} pixels)`);
    }
    const size = options.windowSize ?? bundle.windows.size;
    const overlap = options.overlap ?? bundle.windows.overlap;
    if (!Number.isInteger(size) || size < 1) {
      throw new PredictError(`--window-size ${size}: expected a positive integer (pixels)`);
    }
    if (!(overlap >= 0 && overlap < 1))
      throw new PredictError(`--overlap ${overlap}: expected a number in [0, 1)`);
    const threshold = task === 'segmentation' ? null : (options.scoreThreshold ?? bundle.scoreThreshold ?? 0);
    if (threshold !== null && !(threshold >= 0 && threshold <= 1)) {
      throw new PredictError(`--score-threshold ${threshold}: expected a number in [0, 1]`);
    }
    if (options.cog && task !== 'segmentation') {
      throw new PredictError(
        `--cog: the model ${predictor.loaded.uri} is a ${task} model; only segmentation writes a raster (<scene>.classes.tif) to make Cloud Optimized`,
      );
    }
    const windows = sliceWindows(rows.width, rows.height, size, overlap);
    const run: SceneRun = {
      storage,
      predictor,
      scene: sceneUri,
      id,
      out,
      rows,
      windowRows: windowRows(windows, rows.height),
      windows: windows.length,
      size,
      overlap,
      threshold,
      merge: task === 'detection' ? { ...DEFAULT_MERGE, ...options.merge } : null,
      blend: task === 'segmentation' ? (options.blend ?? 'average') : null,
      keepRaw: options.keepRaw ?? false,
      cog: task === 'segmentation' && options.cog === true,
      conversion: opened.conversion,
      warnings: [...rows.warnings],
      signal,
    };
    for (const w of rows.warnings) options.log?.(`${id}: ${w}`);
    const computed = await computeRows(run, part, options);
    if (computed.empty === run.windows && !part) {
      run.warnings.push(`${sceneUri}: no valid pixels (the scene is all no-data): the predictions are empty`);
    }
    let status: 'done' | 'part' = 'done';
    let joined = false;
    let counts: Record<string, unknown> = {};
    let outputs: Record<string, string> = {};
    const seconds = (performance.now() - started) / 1000;
    if (!part) {
      ({ counts, outputs } = await writeFinal(run, computed.sources, seconds, computed.computed));
    } else {
      const record = await writePart(run, part, computed);
      const all = await completeParts(run, part.count, record);
      if (all) {
        try {
          ({ counts, outputs } = await writeFinal(run, all, seconds, computed.computed));
          joined = true;
          await removeParts(run, part.count, all);
        } catch (error) {
          // another part may have joined (and removed the part files) meanwhile
          if (!(await storage.exists(doneUri, io))) throw error;
        }
      } else {
        status = 'part';
      }
    }
    const total = (performance.now() - started) / 1000;
    return {
      scene: sceneUri,
      id,
      task,
      status,
      skipped: false,
      joined,
      width: rows.width,
      height: rows.height,
      windows: run.windows,
      rows: run.windowRows.length,
      computed: computed.computed,
      empty: computed.empty,
      resumedRows: computed.resumedRows,
      runs: computed.runs,
      seconds: total,
      windowsPerSecond: computed.computed / Math.max(total, 1e-9),
      counts,
      outputs: tempOut ? {} : outputs,
      conversion: run.conversion,
      device: session.device,
      warnings: run.warnings,
    };
  } finally {
    await rows?.close();
    if (own) await predictor.close();
    if (tempOut) await rm(tempOut, { recursive: true, force: true });
  }
}

function skippedResult(
  done: Record<string, unknown>,
  scene: string,
  id: string,
  out: string,
  device: Device,
  started: number,
): PredictSceneResult {
  const windows = (done.windows ?? {}) as { count?: number; rows?: number };
  const outputs = Object.fromEntries(
    Object.entries((done.outputs ?? {}) as Record<string, string>).map(([k, v]) => [k, joinUri(out, v)]),
  );
  return {
    scene,
    id,
    task: done.task as BundleTask,
    status: 'done',
    skipped: true,
    joined: false,
    width: Number(done.width),
    height: Number(done.height),
    windows: windows.count ?? 0,
    rows: windows.rows ?? 0,
    computed: 0,
    empty: 0,
    resumedRows: 0,
    runs: 0,
    seconds: (performance.now() - started) / 1000,
    windowsPerSecond: 0,
    counts: (done.counts ?? {}) as Record<string, unknown>,
    outputs,
    conversion: String(done.conversion ?? ''),
    device,
    warnings: [],
  };
}

/** Where a run's finished rows go: `<out>/.partial/<scene>[.part-k-of-n]/`. */
function partialDir(run: SceneRun, part: PredictPart | undefined): string {
  return joinUri(run.out, '.partial', part ? `${run.id}.${partTag(part)}` : run.id);
}

function rowFileName(task: BundleTask, row: number): string {
  return `row-${String(row).padStart(6, '0')}.${task === 'segmentation' ? 'u8.gz' : 'json'}`;
}

/** The data the final outputs are made of, in row order. */
type Sources =
  | { readonly kind: 'detection'; readonly uris: readonly string[] }
  | { readonly kind: 'classification'; readonly uris: readonly string[] }
  | { readonly kind: 'segmentation'; readonly chunks: readonly ClassChunk[] };

interface Computed {
  readonly sources: Sources;
  readonly rows: readonly [number, number];
  readonly computed: number;
  readonly empty: number;
  readonly resumedRows: number;
  readonly runs: number;
  readonly partial: string;
}

/** Computes the rows of windows of `part` (all without one) that an earlier run did not finish. */
async function computeRows(
  run: SceneRun,
  part: PredictPart | undefined,
  options: PredictOptions,
): Promise<Computed> {
  const { storage, rows, predictor, signal } = run;
  const io = signal ? { signal } : {};
  const { loaded, session } = predictor;
  const task = loaded.bundle.task;
  const all = run.windowRows;
  const [from, to] = partRows(all.length, part);
  const partial = partialDir(run, part);
  const keyUri = joinUri(partial, 'key.json');
  const key = await progressKey(storage, run.scene, {
    model: loaded.uri,
    onnx: (await storage.stat(loaded.onnxUri, io))?.size ?? null,
    size: run.size,
    overlap: run.overlap,
    threshold: run.threshold,
    blend: run.blend,
    part: part ?? null,
    v: 1,
  });
  let earlier: Set<string> = new Set();
  if (await storage.exists(keyUri, io)) {
    const previous = JSON.parse((await storage.read(keyUri, io)).toString('utf8')) as { key?: string };
    if (previous.key === key) {
      for await (const info of storage.list(partial, io)) earlier.add(basenameUri(info.uri));
    } else {
      await removeUnder(storage, partial, signal);
      earlier = new Set();
    }
  }
  if (!earlier.has('key.json')) {
    await storage.writeAtomic(keyUri, JSON.stringify({ key, scene: run.scene }) + '\n', io);
  }
  const mine = all.slice(from, to);
  // segmentation rows are blended in order, so only a finished prefix is kept
  let finished: Set<number>;
  if (task === 'segmentation') {
    let k = 0;
    while (k < mine.length && earlier.has(rowFileName(task, mine[k]!.index))) k++;
    finished = new Set(mine.slice(0, k).map((r) => r.index));
  } else {
    finished = new Set(mine.filter((r) => earlier.has(rowFileName(task, r.index))).map((r) => r.index));
  }
  const todo = mine.filter((r) => !finished.has(r.index));
  // segmentation: the rows before the first to do whose windows reach into its pixel rows
  const seeds =
    task === 'segmentation' && todo.length > 0
      ? all.slice(0, todo[0]!.index).filter((r) => r.bottom > todo[0]!.top)
      : [];
  const work = [...seeds, ...todo];
  const totalWindows = mine.reduce((n, r) => n + r.windows.length, 0);
  let done = mine.filter((r) => finished.has(r.index)).reduce((n, r) => n + r.windows.length, 0);
  options.onProgress?.(done, totalWindows);
  const runsBefore = session.runs;
  let computed = 0;
  let empty = 0;

  if (work.length > 0) {
    rows.plan(work, [0, rows.width]);
    const isNodata = nodataTest(rows);
    const S = loaded.bundle.input.size;
    const plane = 3 * S * S;
    const batch = session.batch;
    const inFlight = session.concurrency;
    const images = Array.from({ length: inFlight }, () => new Float32Array(batch * plane));
    const classes = loaded.bundle.classes.length;
    const blender =
      task === 'segmentation'
        ? new LogitBlender({
            width: rows.width,
            height: rows.height,
            channels: classes + 1,
            mode: run.blend ?? 'average',
          })
        : undefined;
    let taken = 0;
    const takeTo = (bottom: number): { top: number; bottom: number; classes: Uint8Array } | undefined => {
      // rows above the first window computed: released in bands, never held whole
      let last: { top: number; bottom: number; classes: Uint8Array } | undefined;
      while (taken < bottom) {
        const next = Math.min(bottom, taken + 256);
        last = blender!.take(next);
        taken = last.bottom;
      }
      return last;
    };
    if (blender && work[0]!.top > 0) takeTo(work[0]!.top);
    const threshold = run.threshold ?? 0;
    for (const row of work) {
      signal?.throwIfAborted();
      const seed = !todo.includes(row);
      await rows.load(row);
      const valid = row.windows.filter((w) => !isNodata || hasValidPixel(rows, isNodata, w));
      if (!seed) empty += row.windows.length - valid.length;
      const raw: RawDetection[] = [];
      const scored: ClassifiedWindow[] = [];
      const groups: SliceWindow[][] = [];
      for (let b = 0; b < valid.length; b += batch) groups.push(valid.slice(b, b + batch));
      // segmentation: the row's finished pixel rows [top, final), argmaxed from the left as the
      // windows go right, so that only where the next row of windows overlaps is held full width
      const finished = blender ? new Uint8Array((row.final - row.top) * rows.width) : undefined;
      const takeLeft = (right: number): void => {
        const got = blender!.takeLeft(row.final, right);
        const n = right - got.left;
        if (n === 0) return;
        for (let y = 0; y < got.bottom - got.top; y++) {
          finished!.set(got.classes.subarray(y * n, (y + 1) * n), y * rows.width + got.left);
        }
      };
      for (let g = 0; g < groups.length; g += inFlight) {
        const wave = groups.slice(g, g + inFlight);
        // runs in flight at once; results are taken in window order (blending sums in one order)
        const results = await Promise.all(
          wave.map((group, k) => {
            group.forEach((w, i) => windowInput(rows.view(w), S, images[k]!, i * plane));
            return session.run(images[k]!, group.length);
          }),
        );
        for (const [k, group] of wave.entries()) {
          const result = results[k]!;
          computed += group.length;
          if (task === 'detection') {
            const [w] = group as [SliceWindow];
            const boxes = result[loaded.bundle.outputs[0] ?? 'boxes']!.data;
            const labels = result[loaded.bundle.outputs[1] ?? 'labels']!.data;
            const scores = result[loaded.bundle.outputs[2] ?? 'scores']!.data;
            const sx = (w[2] - w[0]) / S;
            const sy = (w[3] - w[1]) / S;
            for (let i = 0; i < scores.length; i++) {
              const score = scores[i]!;
              const label = labels[i]! - 1;
              if (score < threshold || label < 0 || label >= classes) continue;
              const x0 = Math.min(w[2], Math.max(w[0], w[0] + boxes[i * 4]! * sx));
              const y0 = Math.min(w[3], Math.max(w[1], w[1] + boxes[i * 4 + 1]! * sy));
              const x1 = Math.min(w[2], Math.max(w[0], w[0] + boxes[i * 4 + 2]! * sx));
              const y1 = Math.min(w[3], Math.max(w[1], w[1] + boxes[i * 4 + 3]! * sy));
              if (!(x1 > x0 && y1 > y0)) continue;
              raw.push([
                round(x0, 3),
                round(y0, 3),
                round(x1, 3),
                round(y1, 3),
                round(score, 6),
                label,
                w[0],
                w[1],
                w[2],
                w[3],
              ]);
            }
          } else if (task === 'classification') {
            const scores = result[loaded.bundle.outputs[0] ?? 'scores']!.data;
            group.forEach((w, i) => {
              scored.push({
                window: w,
                scores: Array.from(scores.subarray(i * classes, (i + 1) * classes), (s) => round(s, 6)),
              });
            });
          } else {
            const logits = result[loaded.bundle.outputs[0] ?? 'logits']!.data;
            const k = classes + 1;
            group.forEach((w, i) => {
              const own = logits.subarray(i * k * S * S, (i + 1) * k * S * S);
              const ww = w[2] - w[0];
              const wh = w[3] - w[1];
              blender!.add(w, ww === S && wh === S ? own : resizeLogits(own, k, S, S, ww, wh));
            });
          }
        }
        if (blender) {
          const next = (g + wave.length) * batch;
          takeLeft(next < valid.length ? valid[next]![0] : rows.width);
        }
      }
      let body: Buffer | string;
      if (task === 'segmentation') {
        if (valid.length === 0) takeLeft(rows.width);
        if (seed) continue;
        const out = classRows(
          rows,
          isNodata,
          row,
          { top: row.top, bottom: row.final, classes: finished! },
          loaded,
        );
        body = gzipSync(out);
      } else if (task === 'detection') {
        body = JSON.stringify(raw);
      } else {
        body = JSON.stringify(scored);
      }
      await storage.writeAtomic(joinUri(partial, rowFileName(task, row.index)), body, io);
      done += row.windows.length;
      options.onProgress?.(done, totalWindows);
    }
  }
  const uris = mine.map((r) => joinUri(partial, rowFileName(task, r.index)));
  let sources: Sources;
  if (task === 'segmentation') {
    const chunks: ClassChunk[] = [];
    for (const r of mine) {
      const uri = joinUri(partial, rowFileName(task, r.index));
      const length = (await storage.stat(uri, io))?.size ?? 0;
      chunks.push({ uri, top: r.top, bottom: r.final, offset: 0, length });
    }
    sources = { kind: 'segmentation', chunks };
  } else {
    sources = { kind: task, uris };
  }
  return {
    sources,
    rows: [from, to],
    computed,
    empty,
    resumedRows: finished.size,
    runs: session.runs - runsBefore,
    partial,
  };
}

/**
 * The class values (category ids; 255 where the scene is no-data) of the pixel rows a row of
 * windows finishes, [row.top, row.final), from the blender's argmax of channel indices.
 */
function classRows(
  rows: ChipRows,
  isNodata: ((data: Uint8Array, at: number) => boolean) | undefined,
  row: WindowRow,
  got: { top: number; bottom: number; classes: Uint8Array } | undefined,
  loaded: LoadedBundle,
): Uint8Array {
  const width = rows.width;
  const height = row.final - row.top;
  const out = new Uint8Array(width * height);
  const ids = [0, ...loaded.bundle.classes.map((c) => c.id)];
  if (got) {
    if (got.top > row.top || got.bottom < row.final) {
      throw new Error(`blender gave rows ${got.top}..${got.bottom}, expected ${row.top}..${row.final}`);
    }
    const skip = (row.top - got.top) * width;
    for (let i = 0; i < out.length; i++) out[i] = ids[got.classes[skip + i]!] ?? 0;
  }
  if (isNodata && height > 0) {
    const px = rows.view([0, row.top, width, row.final]);
    for (let y = 0; y < height; y++) {
      let at = y * px.stride * px.channels;
      for (let x = 0; x < width; x++, at += px.channels) if (isNodata(px.data, at)) out[y * width + x] = 255;
    }
  }
  return out;
}

async function removeUnder(storage: Storage, prefix: string, signal?: AbortSignal): Promise<void> {
  const io = signal ? { signal } : {};
  const uris: string[] = [];
  for await (const info of storage.list(prefix, io)) uris.push(info.uri);
  // the key last: a half-removed folder has no key, so it is never taken for a valid one
  uris.sort((a, b) => Number(basenameUri(a) === 'key.json') - Number(basenameUri(b) === 'key.json'));
  for (const uri of uris) await storage.delete(uri, io);
  const location = parseUri(prefix);
  if (location.kind === 'local') {
    // local folders do not vanish with their files as S3 prefixes do
    await rm(location.path, { recursive: true, force: true });
    await rmdir(dirname(location.path)).catch(() => undefined);
  }
}

function partRecordUri(run: SceneRun, part: PredictPart): string {
  return joinUri(run.out, `${run.id}.${partTag(part)}.json`);
}

/** Writes a part's data file and its record (last), then removes its partial rows. */
async function writePart(run: SceneRun, part: PredictPart, computed: Computed): Promise<PartRecord> {
  const { storage, signal } = run;
  const io = signal ? { signal } : {};
  const task = run.predictor.loaded.bundle.task;
  const tag = partTag(part);
  const sources = computed.sources;
  let data: string;
  let chunks: Omit<ClassChunk, 'uri'>[] | undefined;
  if (sources.kind === 'segmentation') {
    data = `${run.id}.${tag}.classes.gz`;
    const written: Omit<ClassChunk, 'uri'>[] = [];
    const rowFiles = sources.chunks;
    let offset = 0;
    // gzip members one after another, streamed (a part of many rows holds many); the record
    // says where each starts
    async function* members(): AsyncGenerator<Uint8Array> {
      for (const c of rowFiles) {
        const body = await storage.read(c.uri, io);
        written.push({ top: c.top, bottom: c.bottom, offset, length: body.length });
        offset += body.length;
        yield body;
      }
    }
    await storage.writeAtomic(joinUri(run.out, data), members(), io);
    chunks = written;
  } else {
    data = `${run.id}.${tag}.${task === 'detection' ? 'raw' : 'scores'}.json`;
    const items: unknown[] = [];
    for (const uri of sources.uris) {
      for (const item of JSON.parse((await storage.read(uri, io)).toString('utf8')) as unknown[]) {
        items.push(item);
      }
    }
    await storage.writeAtomic(joinUri(run.out, data), JSON.stringify(items), io);
  }
  const record: PartRecord = {
    format: 'geobatch-predictions-part',
    part: part.index + 1,
    parts: part.count,
    rows: computed.rows,
    computed: computed.computed,
    empty: computed.empty,
    data,
    ...(chunks ? { chunks } : {}),
  };
  await storage.writeAtomic(partRecordUri(run, part), JSON.stringify(record) + '\n', io);
  await removeUnder(storage, computed.partial, signal);
  return record;
}

/** Every part's sources when all `count` records are there, else undefined. */
async function completeParts(run: SceneRun, count: number, _mine: PartRecord): Promise<Sources | undefined> {
  const { storage, signal } = run;
  const io = signal ? { signal } : {};
  const records: PartRecord[] = [];
  for (let index = 0; index < count; index++) {
    const uri = partRecordUri(run, { index, count });
    if (!(await storage.exists(uri, io))) return undefined;
    records.push(JSON.parse((await storage.read(uri, io)).toString('utf8')) as PartRecord);
  }
  const task = run.predictor.loaded.bundle.task;
  if (task === 'segmentation') {
    return {
      kind: 'segmentation',
      chunks: records.flatMap((r) => (r.chunks ?? []).map((c) => ({ ...c, uri: joinUri(run.out, r.data) }))),
    };
  }
  return { kind: task, uris: records.map((r) => joinUri(run.out, r.data)) };
}

async function removeParts(run: SceneRun, count: number, sources: Sources): Promise<void> {
  const { storage } = run;
  const data =
    sources.kind === 'segmentation' ? [...new Set(sources.chunks.map((c) => c.uri))] : [...sources.uris];
  for (const uri of data) await storage.delete(uri);
  for (let index = 0; index < count; index++) await storage.delete(partRecordUri(run, { index, count }));
}

async function readJsonItems<T>(
  storage: Storage,
  uris: readonly string[],
  signal?: AbortSignal,
): Promise<T[]> {
  const items: T[] = [];
  for (const uri of uris) {
    for (const item of JSON.parse(
      (await storage.read(uri, signal ? { signal } : {})).toString('utf8'),
    ) as T[]) {
      items.push(item);
    }
  }
  return items;
}

/** Writes the final outputs of the scene from its sources, `<scene>.predict.json` last, and removes the partial rows. */
async function writeFinal(
  run: SceneRun,
  sources: Sources,
  seconds: number,
  computed: number,
): Promise<{ counts: Record<string, unknown>; outputs: Record<string, string> }> {
  const { storage, rows, signal, id, out } = run;
  const io = signal ? { signal } : {};
  const bundle = run.predictor.loaded.bundle;
  const classes = bundle.classes;
  const toLonLat = lonLatOf(rows.geo);
  const files: Record<string, string> = {};
  let counts: Record<string, unknown> = {};
  const write = async (role: string, name: string, body: string): Promise<void> => {
    await storage.writeAtomic(joinUri(out, name), body, io);
    files[role] = name;
  };

  if (sources.kind === 'detection') {
    const raw = await readJsonItems<RawDetection>(storage, sources.uris, signal);
    const detections: Detection[] = raw.map((r) => ({
      box: [r[0], r[1], r[2], r[3]],
      score: r[4],
      label: r[5],
    }));
    const merged = mergeDetections(detections, run.merge ?? DEFAULT_MERGE);
    const perClass: Record<string, number> = Object.fromEntries(classes.map((c) => [c.name, 0]));
    for (const d of merged) perClass[classes[d.label]!.name]!++;
    counts = { raw: raw.length, detections: merged.length, perClass };
    const annotations = merged.map((d, i) => {
      const [x0, y0, x1, y1] = d.box;
      const w = round(x1 - x0, 3);
      const h = round(y1 - y0, 3);
      return {
        id: i + 1,
        image_id: 1,
        category_id: classes[d.label]!.id,
        bbox: [round(x0, 3), round(y0, 3), w, h],
        area: round(w * h, 3),
        score: round(d.score, 6),
        iscrowd: 0,
      };
    });
    const coco = {
      images: [{ id: 1, file_name: basenameUri(run.scene), width: rows.width, height: rows.height }],
      categories: classes.map((c) => ({ id: c.id, name: c.name })),
      annotations,
    };
    await write('coco', `${id}.coco.json`, JSON.stringify(coco) + '\n');
    if (toLonLat) {
      const feature = (d: Detection, extra: Record<string, unknown> = {}): string => {
        const [x0, y0, x1, y1] = d.box;
        return JSON.stringify({
          type: 'Feature',
          geometry: { type: 'Polygon', coordinates: [boxRing(toLonLat, d.box)] },
          properties: {
            class: classes[d.label]!.name,
            category_id: classes[d.label]!.id,
            score: round(d.score, 6),
            bbox: [round(x0, 3), round(y0, 3), round(x1 - x0, 3), round(y1 - y0, 3)],
            ...extra,
          },
        });
      };
      await write('geojson', `${id}.geojson`, featureCollection(merged.map((d) => feature(d))));
      if (run.keepRaw) {
        await write(
          'raw',
          `${id}.raw.geojson`,
          featureCollection(
            raw.map((r) =>
              feature(
                { box: [r[0], r[1], r[2], r[3]], score: r[4], label: r[5] },
                { window: r.slice(6, 10) },
              ),
            ),
          ),
        );
      }
    } else if (run.keepRaw) {
      run.warnings.push(`${run.scene}: not georeferenced: no raw.geojson (the raw detections need a map)`);
    }
  } else if (sources.kind === 'classification') {
    const scored = await readJsonItems<ClassifiedWindow>(storage, sources.uris, signal);
    const threshold = run.threshold ?? 0;
    const perClass: Record<string, number> = Object.fromEntries(classes.map((c) => [c.name, 0]));
    const lines = [['window', 'x0', 'y0', 'x1', 'y1', ...classes.map((c) => csvField(c.name))].join(',')];
    const features: string[] = [];
    scored.forEach((s, i) => {
      const labels = classes.filter((_, k) => s.scores[k]! >= threshold).map((c) => c.name);
      for (const l of labels) perClass[l]!++;
      lines.push([i + 1, ...s.window, ...s.scores].join(','));
      if (toLonLat) {
        features.push(
          JSON.stringify({
            type: 'Feature',
            geometry: { type: 'Polygon', coordinates: [boxRing(toLonLat, s.window)] },
            properties: {
              window: s.window,
              scores: Object.fromEntries(classes.map((c, k) => [c.name, s.scores[k]])),
              labels,
            },
          }),
        );
      }
    });
    counts = { windows: scored.length, perClass };
    await write('scores', `${id}.scores.csv`, lines.join('\n') + '\n');
    if (toLonLat) await write('geojson', `${id}.geojson`, featureCollection(features));
  } else {
    const tif = joinUri(out, `${id}.classes.tif`);
    counts = await writeClassRaster(run, sources.chunks, tif);
    files.classes = `${id}.classes.tif`;
    if (toLonLat) {
      const byId = new Map(classes.map((c) => [c.id, c.name]));
      let polygons = 0;
      // streamed feature by feature: a 40,000 px class raster can give millions of vertices
      async function* collection(): AsyncGenerator<Uint8Array> {
        yield Buffer.from('{"type":"FeatureCollection","features":[');
        for await (const p of polygonizeClasses(storage, tif, { background: 0, nodata: 255, ...io })) {
          const rings = p.polygon.map((r) => {
            const ring = r.map(([x, y]) => toLonLat!(x, y));
            ring.push(ring[0]!);
            return ring;
          });
          const feature = JSON.stringify({
            type: 'Feature',
            geometry: { type: 'Polygon', coordinates: rings },
            properties: {
              class: byId.get(p.value) ?? String(p.value),
              category_id: p.value,
              area_px: p.areaPx,
            },
          });
          yield Buffer.from(`${polygons++ === 0 ? '\n' : ',\n'}${feature}`);
        }
        yield Buffer.from('\n]}\n');
      }
      await storage.writeAtomic(joinUri(out, `${id}.geojson`), collection(), io);
      files.geojson = `${id}.geojson`;
      counts = { ...counts, polygons };
    }
  }

  const geo = rows.geo;
  const record = {
    format: 'geobatch-predictions',
    version: 1,
    scene: run.scene,
    id,
    model: run.predictor.loaded.uri,
    task: bundle.task,
    width: rows.width,
    height: rows.height,
    epsg: geo?.epsg ?? null,
    geotransform: geo ? [...geo.gt] : null,
    windows: { size: run.size, overlap: run.overlap, count: run.windows, rows: run.windowRows.length },
    conversion: run.conversion,
    merge: run.merge,
    blend: run.blend,
    scoreThreshold: run.threshold,
    classes,
    counts,
    outputs: files,
    seconds: round(seconds, 3),
    windowsPerSecond: round(computed / Math.max(seconds, 1e-9), 3),
    ...(run.warnings.length ? { warnings: run.warnings } : {}),
  };
  await storage.writeAtomic(joinUri(out, predictFileName(id)), JSON.stringify(record, null, 2) + '\n', io);
  await removeUnder(storage, partialDir(run, undefined), signal);
  return { counts, outputs: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, joinUri(out, v)])) };
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Streams the class rows (gzip chunks in row order) into the class GeoTIFF; counts pixels per value. */
async function writeClassRaster(
  run: SceneRun,
  chunks: readonly ClassChunk[],
  uri: string,
): Promise<Record<string, unknown>> {
  const { storage, rows, signal } = run;
  const io = signal ? { signal } : {};
  const geo = rows.geo;
  const histogram = new Float64Array(256);
  await writeThroughLocalFile(
    storage,
    uri,
    async (path) => {
      const open = run.cog
        ? (p: string, o: GeoTiffWriterOptions & { dtype: 'uint8' }) =>
            CogWriter.open(p, { ...o, resampling: 'nearest' })
        : (p: string, o: GeoTiffWriterOptions & { dtype: 'uint8' }) => GeoTiffWriter.open(p, o);
      const writer = await open(path, {
        width: rows.width,
        height: rows.height,
        bands: 1,
        dtype: 'uint8',
        tileSize: 512,
        compression: 'deflate',
        nodata: 255,
        ...(geo ? { geotransform: geo.gt } : {}),
        ...(geo?.epsg != null ? { epsg: geo.epsg, crsKind: geo.crsKind } : {}),
        ...(signal ? { signal } : {}),
      });
      try {
        let next = 0;
        for (const c of chunks) {
          if (c.top !== next) throw new Error(`class rows ${c.top}..${c.bottom} follow row ${next}`);
          const body =
            c.offset === 0 && c.length === 0
              ? Buffer.alloc(0)
              : await storage.readRange(c.uri, c.offset, c.length, io);
          const data = new Uint8Array(gunzipSync(body));
          for (let i = 0; i < data.length; i++) histogram[data[i]!]!++;
          await writer.writeRows(data);
          next = c.bottom;
        }
        if (next !== rows.height) throw new Error(`class rows end at ${next}, expected ${rows.height}`);
        await writer.close();
      } catch (error) {
        await writer.abort();
        throw error;
      }
    },
    signal ? { signal } : {},
  );
  const classes = run.predictor.loaded.bundle.classes;
  const pixels: Record<string, number> = { background: histogram[0]! };
  for (const c of classes) pixels[c.name] = histogram[c.id]!;
  return { pixels, nodata: histogram[255]! };
}
