/**
 * The files of a registered dataset: resolving its lists (globs, prefixes, URLs) against the
 * registry's location, checking that each exists with its recorded size, and downloading them
 * into a directory, resumably and verified.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve as resolvePath } from 'node:path';
import { formatPath, type YamlPath } from '../pipeline/errors.js';
import { StorageError } from '../storage/errors.js';
import { DEFAULT_INPUT_EXTENSIONS, assignIds, expandInputs, type InputItem } from '../storage/inputs.js';
import type { ObjectInfo, Storage } from '../storage/types.js';
import { basenameUri, compareUtf8, dirnameUri, isHttpUri, isS3Uri, joinUri } from '../storage/uri.js';
import { RegistryError } from './errors.js';
import { FILE_KINDS, type DatasetEntry, type FileKind, type Registry } from './registry.js';

/** Extensions taken from a directory or prefix, per kind (a glob or a named file is taken as it is). */
const KIND_EXTENSIONS: Readonly<Record<FileKind, readonly string[]>> = {
  images: DEFAULT_INPUT_EXTENSIONS,
  masks: DEFAULT_INPUT_EXTENSIONS,
  labels: ['geojson', 'json', 'shp', 'dbf', 'shx', 'prj', 'cpg', 'gpkg', 'fgb'],
};

/** One file of a dataset, with what the registry records about it. */
export interface DatasetFile {
  readonly kind: FileKind;
  /** Absolute local path, s3:// URI or http(s) URL. */
  readonly uri: string;
  readonly sha256?: string;
  readonly size?: number;
}

/** A dataset with its lists resolved to files. */
export interface ResolvedDataset {
  readonly dataset: DatasetEntry;
  readonly files: readonly DatasetFile[];
}

/** What a relative name in the registry resolves against: the registry's own folder or prefix. */
function registryBase(registryUri: string): string {
  return isS3Uri(registryUri) || isHttpUri(registryUri) ? dirnameUri(registryUri) : dirname(registryUri);
}

/** Where a name written in the registry points: absolute names as they are, relative ones beside the registry. */
export function resolveRegistryName(name: string, registryUri: string): string {
  if (isS3Uri(name) || isHttpUri(name)) return name;
  if (isHttpUri(registryUri)) return new URL(name, registryUri).href;
  if (isS3Uri(registryUri)) return name.startsWith('/') ? name : joinUri(registryBase(registryUri), name);
  return resolvePath(registryBase(registryUri), name.replace(/^file:\/\//, ''));
}

/** A RegistryError for `path` in the registry, at its line: `<file>: <path>: <message> (line n)`. */
export function registryIssue(registry: Registry, path: YamlPath, message: string): RegistryError {
  const position = registry.source.locate(path, 'value');
  return new RegistryError(
    `${registry.uri}: ${formatPath(path)}: ${message}${position ? ` (line ${position.line})` : ''}`,
  );
}

/**
 * The files of one kind of dataset `index`, sorted by URI, de-duplicated. Local and S3 names are
 * expanded (a directory or prefix recursively, by extension; a glob as written); an http(s) URL is
 * one file. A name that matches nothing is a RegistryError at its YAML path.
 */
export async function resolveKind(
  storage: Storage,
  registry: Registry,
  index: number,
  kind: FileKind,
  signal?: AbortSignal,
): Promise<string[]> {
  const dataset = registry.datasets[index]!;
  const names = dataset[kind] ?? [];
  const found = new Set<string>();
  for (const [at, name] of names.entries()) {
    const uri = resolveRegistryName(name, registry.uri);
    if (isHttpUri(uri)) {
      found.add(uri);
      continue;
    }
    try {
      const items = await expandInputs([uri], storage, {
        extensions: KIND_EXTENSIONS[kind],
        ...(signal ? { signal } : {}),
      });
      for (const item of items) found.add(item.uri);
    } catch (error) {
      if (!(error instanceof StorageError) || error.code !== 'NotFound') throw error;
      // as written in the registry, then what it resolved to
      const detail = error.message.replace(/^[^:]+\[\d+\]: /, '').replace(`'${uri}'`, `'${name}'`);
      throw registryIssue(registry, ['datasets', index, kind, at], detail);
    }
  }
  return [...found].sort(compareUtf8);
}

/** Every file of dataset `index` (images, then labels, then masks), with its recorded checksum and size. */
export async function resolveDataset(
  storage: Storage,
  registry: Registry,
  index: number,
  signal?: AbortSignal,
): Promise<ResolvedDataset> {
  const dataset = registry.datasets[index]!;
  const facts = new Map<string, { key: string; sha256?: string; size?: number }>();
  for (const [key, value] of Object.entries(dataset.files ?? {})) {
    facts.set(resolveRegistryName(key, registry.uri), { key, ...value });
  }
  const files: DatasetFile[] = [];
  const listed = new Set<string>();
  for (const kind of FILE_KINDS) {
    for (const uri of await resolveKind(storage, registry, index, kind, signal)) {
      if (listed.has(uri)) continue;
      listed.add(uri);
      const known = facts.get(uri);
      files.push({
        kind,
        uri,
        ...(known?.sha256 === undefined ? {} : { sha256: known.sha256 }),
        ...(known?.size === undefined ? {} : { size: known.size }),
      });
    }
  }
  for (const [uri, { key }] of facts) {
    if (!listed.has(uri)) {
      throw registryIssue(
        registry,
        ['datasets', index, 'files', key],
        `'${key}' (${uri}) is not one of the dataset's files; expected a file its images, labels or masks list`,
      );
    }
  }
  return { dataset, files };
}

/** Input items of one kind of a dataset, for a pipeline input set: ids from the file stems. */
export async function datasetInputItems(
  storage: Storage,
  registry: Registry,
  index: number,
  kind: FileKind,
  signal?: AbortSignal,
): Promise<InputItem[]> {
  const uris = await resolveKind(storage, registry, index, kind, signal);
  if (uris.length === 0) {
    throw registryIssue(
      registry,
      ['datasets', index],
      `dataset '${registry.datasets[index]!.tag}' lists no ${kind}; expected one of: ${FILE_KINDS.filter((k) => (registry.datasets[index]![k] ?? []).length > 0).join(', ')}`,
    );
  }
  return assignIds(uris);
}

/** What checking one file found. */
export interface FileCheck {
  readonly file: DatasetFile;
  /** 'ok', 'missing', or 'size' when it exists with another size than the registry records. */
  readonly status: 'ok' | 'missing' | 'size';
  /** Its size as stat found it. */
  readonly size?: number;
}

/** Stats every file (`concurrency` at a time): exists, and has the recorded size when one is recorded. */
export async function checkFiles(
  storage: Storage,
  files: readonly DatasetFile[],
  options: { readonly concurrency?: number; readonly signal?: AbortSignal } = {},
): Promise<FileCheck[]> {
  const results: FileCheck[] = new Array<FileCheck>(files.length);
  await runPool(files.length, options.concurrency ?? 8, async (i) => {
    const file = files[i]!;
    const info = await storage.stat(file.uri, options.signal ? { signal: options.signal } : {});
    results[i] =
      info === undefined
        ? { file, status: 'missing' }
        : {
            file,
            status: file.size !== undefined && file.size !== info.size ? 'size' : 'ok',
            size: info.size,
          };
  });
  return results;
}

export interface DownloadOptions {
  /**
   * Files fetched at once.
   * @default 4
   */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: DownloadEvent) => void;
}

export type DownloadEvent =
  | { readonly type: 'planned'; readonly files: number }
  | {
      readonly type: 'file';
      /** fetched; skipped (already there, same sha256 or size); failed. */
      readonly action: 'fetched' | 'skipped' | 'failed';
      readonly from: string;
      readonly to: string;
      readonly bytes: number;
      readonly error?: string;
    }
  | { readonly type: 'bytes'; readonly bytes: number };

export interface DownloadSummary {
  readonly tag: string;
  readonly out: string;
  readonly files: number;
  readonly fetched: number;
  readonly skipped: number;
  readonly failed: number;
  /** Bytes fetched. */
  readonly bytes: number;
  readonly seconds: number;
  /** One line per failed file: `<destination>: <why>`. */
  readonly failures: readonly string[];
}

/** Where a file of a dataset goes: `<out>/<kind>/<file name>`. */
export function destinationOf(out: string, file: DatasetFile): string {
  return joinUri(out, file.kind, basenameUri(file.uri));
}

/**
 * Copies every file of `resolved` to `<out>/<kind>/<name>`, `concurrency` at a time. A file already
 * there is skipped when its sha256 (when recorded) or else its size matches the source's. Each file
 * is written under a temporary name and renamed (storage.writeAtomic), its sha256 and size checked
 * on the way: a mismatch leaves nothing under the final name. A failed file does not stop the
 * others; the summary lists it. An abort stops everything, leaving only whole files.
 */
export async function downloadDataset(
  storage: Storage,
  resolved: ResolvedDataset,
  out: string,
  options: DownloadOptions = {},
): Promise<DownloadSummary> {
  const started = performance.now();
  const { signal, onEvent } = options;
  const io = signal ? { signal } : {};
  const targets = resolved.files.map((file) => ({ file, to: destinationOf(out, file) }));
  const byTarget = new Map<string, string>();
  for (const { file, to } of targets) {
    const other = byTarget.get(to);
    if (other !== undefined) {
      throw new RegistryError(
        `${resolved.dataset.tag}: ${other} and ${file.uri} would both be downloaded to ${to}; give the files distinct names`,
      );
    }
    byTarget.set(to, file.uri);
  }
  onEvent?.({ type: 'planned', files: targets.length });
  let fetched = 0;
  let skipped = 0;
  let bytes = 0;
  const failures: string[] = [];
  await runPool(targets.length, options.concurrency ?? 4, async (i) => {
    const { file, to } = targets[i]!;
    if (signal?.aborted) return;
    try {
      const existing = await storage.stat(to, io);
      if (existing !== undefined && (await isFinished(storage, file, existing, signal))) {
        skipped += 1;
        onEvent?.({ type: 'file', action: 'skipped', from: file.uri, to, bytes: existing.size });
        return;
      }
      const written = await fetchVerified(storage, file, to, signal, onEvent);
      fetched += 1;
      bytes += written;
      onEvent?.({ type: 'file', action: 'fetched', from: file.uri, to, bytes: written });
    } catch (error) {
      if (signal?.aborted) return;
      const message = error instanceof Error ? error.message : String(error);
      failures.push(message);
      onEvent?.({ type: 'file', action: 'failed', from: file.uri, to, bytes: 0, error: message });
    }
  });
  if (signal?.aborted) throw new StorageError('Aborted', out, 'download aborted', { cause: signal.reason });
  return {
    tag: resolved.dataset.tag,
    out,
    files: targets.length,
    fetched,
    skipped,
    failed: failures.length,
    bytes,
    seconds: (performance.now() - started) / 1000,
    failures,
  };
}

/** Whether the file at the destination is already the dataset's: same sha256 when recorded, else same size. */
async function isFinished(
  storage: Storage,
  file: DatasetFile,
  existing: ObjectInfo,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  if (file.size !== undefined && existing.size !== file.size) return false;
  if (file.sha256 !== undefined) {
    const stream = await storage.createReadStream(existing.uri, signal ? { signal } : {});
    const hash = createHash('sha256');
    try {
      for await (const chunk of stream as AsyncIterable<Uint8Array>) hash.update(chunk);
    } finally {
      stream.destroy();
    }
    return hash.digest('hex') === file.sha256;
  }
  if (file.size !== undefined) return true;
  const source = await storage.stat(file.uri, signal ? { signal } : {});
  return source !== undefined && source.size === existing.size;
}

/** Streams `file` to `to` through writeAtomic, hashing on the way; a checksum or size mismatch writes nothing. */
async function fetchVerified(
  storage: Storage,
  file: DatasetFile,
  to: string,
  signal: AbortSignal | undefined,
  onEvent: DownloadOptions['onEvent'],
): Promise<number> {
  const stream = await storage.createReadStream(file.uri, signal ? { signal } : {});
  const hash = createHash('sha256');
  let size = 0;
  let refused: RegistryError | undefined;
  async function* verified(): AsyncGenerator<Uint8Array> {
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      size += chunk.length;
      onEvent?.({ type: 'bytes', bytes: chunk.length });
      yield chunk;
    }
    // thrown before the last write completes, so writeAtomic removes its temporary file
    if (file.size !== undefined && size !== file.size) {
      refused = new RegistryError(
        `${file.uri}: ${size} bytes but the registry records ${file.size}; not written to ${to}`,
      );
      throw refused;
    }
    const sha256 = hash.digest('hex');
    if (file.sha256 !== undefined && sha256 !== file.sha256) {
      refused = new RegistryError(
        `${file.uri}: sha256 ${sha256} does not match the registry's ${file.sha256}; not written to ${to}`,
      );
      throw refused;
    }
  }
  try {
    await storage.writeAtomic(to, verified(), signal ? { signal } : {});
  } catch (error) {
    throw refused ?? error;
  } finally {
    stream.destroy();
  }
  return size;
}

/** Runs `work(0..count-1)`, `limit` at a time; failures are the work's own business. */
async function runPool(count: number, limit: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next;
      next += 1;
      await work(index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(limit, count)) }, worker));
}
