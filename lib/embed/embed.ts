/**
 * `geobatch embed`: one vector per chip from a trained model's `embedding` output (a classifier's
 * L2-normalised pooled backbone features, lib/train/bundle.ts), written as a folder that
 * `geobatch similar` searches:
 *
 * - `vectors.f32`: count x dim little-endian float32, row i = chip i, unit length;
 * - `chips.jsonl`: row i = `{ id: i, name, image, source, window, footprint, split, labels }`;
 * - `embed.json` (last): what was embedded with what (version, model, modelSha256, output, dim,
 *   count, dtype, normalized, metric, vectors, chips, createdAt).
 *
 * Each chip is read as the trainer and predict read images (RGB, Pillow's bilinear resize to the
 * input size, [0, 1] planes: lib/predict/input.ts) and run in batches through the bundle's ONNX
 * file (lib/predict/session.ts). The vectors are normalised again in float32 so that every row has
 * unit length whatever the runtime's rounding. Vectors stream to a temporary file, so memory does
 * not grow with the number of chips. A rerun whose embed.json names the same model (and its
 * SHA-256) and whose chips.jsonl is the one it would write does nothing.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { readBundle, type LoadedBundle } from '../predict/bundle.js';
import { windowInput } from '../predict/input.js';
import { openSession, type Device } from '../predict/session.js';
import type { Storage } from '../storage/types.js';
import { dirnameUri, joinUri, normalizeUri } from '../storage/uri.js';
import { listChips, type ChipEntry } from './chips.js';
import { CHIPS_FILE, EMBED_FILE, VECTORS_FILE } from './embeddings.js';
import type { EmbedManifest } from './embeddings.js';
import { EmbedError } from './errors.js';

export interface EmbedOptions {
  /** A train output folder, its bundle.json or its model.onnx. */
  readonly model: string;
  /** A dataset folder (or its dataset.json), a chip folder or a folder of chip folders. */
  readonly chips: string;
  /** The output folder. */
  readonly out: string;
  /** Chips per model run. @default 16 */
  readonly batch?: number;
  /** Embed only the first n chips. */
  readonly limit?: number;
  /** @default GEOBATCH_DEVICE, else cpu */
  readonly device?: Device;
  /** Where the vectors are gathered before they are written. @default the OS temporary folder */
  readonly tmpDir?: string;
  readonly log?: (line: string) => void;
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

export interface EmbedResult {
  readonly out: string;
  readonly manifest: EmbedManifest;
  /** Whether an earlier run had done it (nothing computed). */
  readonly skipped: boolean;
  /** 'dataset' or 'chips' (chip folders). */
  readonly input: 'dataset' | 'chips';
  readonly device: Device | null;
  readonly seconds: number;
  readonly chipsPerSecond: number;
  readonly outputs: readonly string[];
}

/** Chips per model run when none is asked for. */
export const DEFAULT_EMBED_BATCH = 16;

/** The bundle's embedding, or an error saying which models have one. */
export function embeddingOutput(loaded: LoadedBundle): { output: string; dim: number } {
  const e = loaded.bundle.embedding;
  if (e) return e;
  const b = loaded.bundle;
  throw new EmbedError(
    b.task === 'classification'
      ? `${loaded.uri}: no 'embedding' in the model bundle: the ${b.model} classifier was trained before geobatch exported embeddings; train it again (geobatch train, or the train stage) to get model.onnx with its 'embedding' output`
      : `${loaded.uri}: a ${b.task} model (${b.model}) has no 'embedding' output: geobatch embed needs a classification model (resnet18 or resnet50, task: classification), whose export adds its pooled features as 'embedding'`,
  );
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** chips.jsonl for `chips`. */
export function chipsJsonl(chips: readonly ChipEntry[]): string {
  return chips
    .map((c, id) =>
      JSON.stringify({
        id,
        name: c.name,
        image: c.image,
        source: c.source,
        window: c.window,
        footprint: c.footprint,
        split: c.split,
        labels: c.labels,
      }),
    )
    .map((line) => `${line}\n`)
    .join('');
}

async function readJsonIfExists(storage: Storage, uri: string, signal?: AbortSignal): Promise<unknown> {
  const io = signal ? { signal } : {};
  if (!(await storage.exists(uri, io))) return undefined;
  try {
    return JSON.parse((await storage.read(uri, io)).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Whether `out` already holds these vectors: embed.json of the same model and chips.jsonl unchanged. */
async function finished(
  storage: Storage,
  out: string,
  want: Omit<EmbedManifest, 'createdAt'>,
  jsonl: string,
  signal?: AbortSignal,
): Promise<EmbedManifest | undefined> {
  const found = (await readJsonIfExists(storage, joinUri(out, EMBED_FILE), signal)) as
    EmbedManifest | undefined;
  if (!found) return undefined;
  for (const [k, v] of Object.entries(want))
    if ((found as unknown as Record<string, unknown>)[k] !== v) return undefined;
  const io = signal ? { signal } : {};
  const chipsUri = joinUri(out, CHIPS_FILE);
  const vectorsUri = joinUri(out, VECTORS_FILE);
  if (!(await storage.exists(chipsUri, io))) return undefined;
  if ((await storage.read(chipsUri, io)).toString('utf8') !== jsonl) return undefined;
  const vectors = await storage.stat(vectorsUri, io);
  return vectors?.size === want.count * want.dim * 4 ? found : undefined;
}

/** Decodes a chip as the network's input at `out[offset..]` (see the module comment). */
async function readChip(
  storage: Storage,
  chip: ChipEntry,
  size: number,
  out: Float32Array,
  offset: number,
  signal?: AbortSignal,
): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await storage.read(chip.image, signal ? { signal } : {});
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new EmbedError(`${chip.image}: cannot read the chip (${(error as Error).message})`);
  }
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(bytes)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new EmbedError(`${chip.image}: not a readable image (${(error as Error).message})`);
  }
  const { width, height, channels } = decoded.info;
  windowInput({ data: decoded.data, width, height, channels, stride: width }, size, out, offset);
}

/** Writes the embeddings of the chips of `options.chips` under `options.out` (see the module comment). */
export async function embedChips(storage: Storage, options: EmbedOptions): Promise<EmbedResult> {
  const started = performance.now();
  const { signal } = options;
  const io = signal ? { signal } : {};
  const out = normalizeUri(options.out).replace(/\/+$/, '');
  const loaded = await readBundle(storage, options.model, io);
  const embedding = embeddingOutput(loaded);
  const list = await listChips(storage, options.chips, signal);
  let chips = list.chips;
  if (chips.length === 0) {
    throw new EmbedError(
      `--chips ${options.chips}: no chips found (its COCO files list no images); expected a dataset or chip folders with chips in them`,
    );
  }
  if (options.limit !== undefined) chips = chips.slice(0, options.limit);
  const onnxPath = await storage.localPath(loaded.onnxUri, io);
  const identity = {
    version: 1 as const,
    model: dirnameUri(loaded.uri),
    modelSha256: await sha256Of(onnxPath),
    output: embedding.output,
    dim: embedding.dim,
    count: chips.length,
    dtype: 'float32' as const,
    normalized: true as const,
    metric: 'cosine' as const,
    vectors: VECTORS_FILE,
    chips: CHIPS_FILE,
  };
  const jsonl = chipsJsonl(chips);
  const outputs = [VECTORS_FILE, CHIPS_FILE, EMBED_FILE].map((f) => joinUri(out, f));
  const done = await finished(storage, out, identity, jsonl, signal);
  if (done) {
    options.onProgress?.(chips.length, chips.length);
    const seconds = (performance.now() - started) / 1000;
    return {
      out,
      manifest: done,
      skipped: true,
      input: list.kind,
      device: null,
      seconds,
      chipsPerSecond: 0,
      outputs,
    };
  }

  const session = await openSession(storage, loaded, {
    batch: options.batch ?? DEFAULT_EMBED_BATCH,
    ...(options.device ? { device: options.device } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(signal ? { signal } : {}),
  });
  const size = loaded.bundle.input.size;
  const plane = 3 * size * size;
  const { dim, output } = embedding;
  const work = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'geobatch-embed-'));
  const vectorsPath = join(work, VECTORS_FILE);
  const file = await open(vectorsPath, 'w');
  try {
    type Batch = { input: Float32Array; count: number };
    const fill = async (start: number): Promise<Batch> => {
      const count = Math.min(session.batch, chips.length - start);
      const input = new Float32Array(session.batch * plane);
      await Promise.all(
        chips
          .slice(start, start + count)
          .map((chip, k) => readChip(storage, chip, size, input, k * plane, signal)),
      );
      return { input, count };
    };
    options.onProgress?.(0, chips.length);
    // the next batch is read and decoded while the model runs on this one
    let next: Promise<Batch> | undefined = fill(0);
    for (let start = 0; next;) {
      signal?.throwIfAborted();
      const batch: Batch = await next;
      const { input, count } = batch;
      const after: number = start + count;
      next = after < chips.length ? fill(after) : undefined;
      // a rejected read-ahead is reported when it is awaited, not as an unhandled rejection
      next?.catch(() => undefined);
      const result = await session.run(input, count);
      const got = result[output];
      if (!got) {
        throw new EmbedError(
          `${loaded.onnxUri}: no output '${output}' (bundle.json names it; the model has ${Object.keys(result).join(', ')})`,
        );
      }
      if (got.dims.length !== 2 || got.dims[1] !== dim || got.data.length < count * dim) {
        throw new EmbedError(
          `${loaded.onnxUri}: output '${output}' has shape [${got.dims.join(', ')}], but bundle.json says [batch, ${dim}]`,
        );
      }
      const rows = new Float32Array(count * dim);
      for (let r = 0; r < count; r++) {
        let sum = 0;
        for (let j = 0; j < dim; j++) sum += got.data[r * dim + j]! ** 2;
        const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
        for (let j = 0; j < dim; j++) rows[r * dim + j] = got.data[r * dim + j]! * scale;
      }
      const bytes = Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength);
      if (!new Uint8Array(new Uint16Array([1]).buffer)[0]) bytes.swap32();
      await file.write(bytes);
      start = after;
      options.onProgress?.(start, chips.length);
    }
    await file.close();
    await storage.writeAtomic(outputs[0]!, createReadStream(vectorsPath), {
      contentType: 'application/octet-stream',
      ...io,
    });
    await storage.writeAtomic(outputs[1]!, jsonl, { contentType: 'application/x-ndjson', ...io });
    const manifest: EmbedManifest = { ...identity, createdAt: new Date().toISOString() };
    await storage.writeAtomic(outputs[2]!, JSON.stringify(manifest, null, 2) + '\n', {
      contentType: 'application/json',
      ...io,
    });
    const seconds = (performance.now() - started) / 1000;
    return {
      out,
      manifest,
      skipped: false,
      input: list.kind,
      device: session.device,
      seconds,
      chipsPerSecond: chips.length / seconds,
      outputs,
    };
  } finally {
    await file.close().catch(() => undefined);
    await session.close();
    await rm(work, { recursive: true, force: true });
  }
}
