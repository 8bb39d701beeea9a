import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { glob } from 'tinyglobby';
import { StorageError, throwIfAborted } from './errors.js';
import type { Storage } from './types.js';
import {
  basenameUri,
  compareUtf8,
  formatS3Uri,
  isS3Uri,
  joinUri,
  parseUri,
  toLocalPath,
  type Location,
} from './uri.js';

/** Raster formats taken from a directory or S3 prefix when no `extensions` are given. */
export const DEFAULT_INPUT_EXTENSIONS: readonly string[] = [
  'tif',
  'tiff',
  'jp2',
  'png',
  'jpg',
  'jpeg',
  'vrt',
];

/** One input file: `id` is unique in its set, stable, and safe in file names ([A-Za-z0-9._-]). */
export interface InputItem {
  readonly id: string;
  /** Absolute local path or `s3://` URI (or an `http(s)://` URL, from a STAC input set). */
  readonly uri: string;
}

export interface ExpandInputsOptions {
  /**
   * What relative patterns resolve against (the pipeline file's directory): a local directory or an
   * `s3://bucket/prefix/`.
   * @default process.cwd()
   */
  readonly baseDir?: string;
  /**
   * Extensions (case-insensitive, without the dot) of the files taken from a directory or an S3
   * prefix; a glob or a named file is taken as it is.
   * @default DEFAULT_INPUT_EXTENSIONS
   */
  readonly extensions?: readonly string[];
  /**
   * Names the input set in errors: `<label>[<index>]: '<pattern>' matched no files`.
   * @default 'inputs'
   */
  readonly label?: string;
  readonly signal?: AbortSignal;
}

const GLOB_CHARS = /[*?[{]/;

/**
 * The files named by `patterns`, sorted by URI and de-duplicated, each with a unique id (the file
 * stem; `-2`, `-3`... in URI order when stems collide, case-insensitively). A pattern is a file, a
 * directory or `s3://bucket/prefix/` (recursive, filtered by extension), or a glob (local, or
 * `s3://bucket/prefix/*.tif`). Hidden files (`.*`, macOS `._*`) are skipped. A pattern that matches
 * nothing throws a 'NotFound' StorageError naming it.
 */
export async function expandInputs(
  patterns: readonly string[],
  storage: Storage,
  options: ExpandInputsOptions = {},
): Promise<InputItem[]> {
  const extensions = new Set((options.extensions ?? DEFAULT_INPUT_EXTENSIONS).map(normalizeExtension));
  const label = options.label ?? 'inputs';
  const found = new Set<string>();
  for (const [index, pattern] of patterns.entries()) {
    const subject = `${label}[${index}]`;
    const location = resolvePattern(pattern, options.baseDir, subject);
    throwIfAborted(formatLocation(location), options.signal);
    const matched = await expandOne(location, storage, extensions, options.signal);
    if (matched.uris.length === 0) {
      throw new StorageError(
        'NotFound',
        formatLocation(location),
        `'${pattern}' matched no files (${matched.why})`,
        {
          subject,
        },
      );
    }
    for (const uri of matched.uris) found.add(uri);
  }
  return assignIds([...found].sort(compareUtf8));
}

interface Expansion {
  readonly uris: readonly string[];
  /** What was looked for, for the error when nothing matched. */
  readonly why: string;
}

async function expandOne(
  location: Location,
  storage: Storage,
  extensions: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<Expansion> {
  return location.kind === 's3'
    ? expandS3(location.bucket, location.key, storage, extensions, signal)
    : expandLocal(location.path, storage, extensions, signal);
}

async function expandLocal(
  path: string,
  storage: Storage,
  extensions: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<Expansion> {
  const kind = await localKind(path);
  if (kind === 'file') return { uris: [path], why: '' };
  if (kind === 'directory') {
    const dir = path.endsWith('/') ? path : `${path}/`;
    return {
      uris: await listFiles(storage, dir, extensions, signal),
      why: `no ${describeExtensions(extensions)} files under ${dir}`,
    };
  }
  if (!GLOB_CHARS.test(path)) return { uris: [], why: `${path} does not exist` };
  const segments = path.split('/');
  const firstGlob = segments.findIndex((segment) => GLOB_CHARS.test(segment));
  const cwd = segments.slice(0, firstGlob).join('/') || '/';
  const relative = segments.slice(firstGlob).join('/');
  const matches = await glob(relative, {
    cwd,
    absolute: true,
    onlyFiles: true,
    dot: false,
    expandDirectories: false,
    followSymbolicLinks: true,
    signal,
  });
  return {
    uris: matches.filter((match) => !hasHiddenSegment(match.slice(cwd.length))),
    why: `searched ${path}`,
  };
}

async function expandS3(
  bucket: string,
  key: string,
  storage: Storage,
  extensions: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<Expansion> {
  const uri = formatS3Uri(bucket, key);
  const wildcard = key.search(GLOB_CHARS);
  if (wildcard !== -1) {
    const literal = key.slice(0, wildcard);
    const below = literal.lastIndexOf('/') + 1;
    const matcher = globToRegExp(key);
    const uris: string[] = [];
    for await (const object of storage.list(formatS3Uri(bucket, literal), { signal })) {
      const objectKey = object.uri.slice(`s3://${bucket}/`.length);
      if (matcher.test(objectKey) && !hasHiddenSegment(objectKey.slice(below))) uris.push(object.uri);
    }
    return { uris, why: `listed s3://${bucket}/${literal}* and matched ${uri}` };
  }
  if (key !== '' && !key.endsWith('/') && (await storage.exists(uri, { signal })))
    return { uris: [uri], why: '' };
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  return {
    uris: await listFiles(
      storage,
      formatS3Uri(bucket, prefix) + (prefix === '' ? '/' : ''),
      extensions,
      signal,
    ),
    why: `no ${describeExtensions(extensions)} objects under ${formatS3Uri(bucket, prefix)}`,
  };
}

/** Files under the directory-like `prefix` (ending in '/') with one of `extensions`, hidden ones skipped. */
async function listFiles(
  storage: Storage,
  prefix: string,
  extensions: ReadonlySet<string>,
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const uris: string[] = [];
  for await (const object of storage.list(prefix, { signal })) {
    const relative = object.uri.slice(prefix.length);
    if (hasHiddenSegment(relative)) continue;
    if (extensions.has(normalizeExtension(posix.extname(relative)))) uris.push(object.uri);
  }
  return uris;
}

function resolvePattern(pattern: string, baseDir: string | undefined, subject: string): Location {
  try {
    const hasScheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(pattern);
    if (baseDir !== undefined && isS3Uri(baseDir) && !hasScheme && !pattern.startsWith('/')) {
      return parseUri(joinUri(baseDir, pattern));
    }
    return parseUri(pattern, baseDir === undefined ? process.cwd() : toLocalPath(baseDir));
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    throw new StorageError(error.code, error.uri, error.message, { cause: error, subject });
  }
}

async function localKind(path: string): Promise<'file' | 'directory' | undefined> {
  try {
    const stats = await stat(path);
    if (stats.isFile()) return 'file';
    if (stats.isDirectory()) return 'directory';
    return undefined;
  } catch {
    return undefined;
  }
}

/** Ids from file stems, in the order of `uris`: the first of a stem keeps it, later ones get `-2`, `-3`... */
export function assignIds(uris: readonly string[]): InputItem[] {
  const stems = uris.map((uri) => safeStem(basenameUri(uri)));
  // Case-insensitive, so that ids stay distinct as file names on macOS and Windows.
  const natural = new Set(stems.map((stem) => stem.toLowerCase()));
  const taken = new Set<string>();
  const ids = stems.map((stem) => {
    if (taken.has(stem.toLowerCase())) return undefined;
    taken.add(stem.toLowerCase());
    return stem;
  });
  return uris.map((uri, index) => {
    let id = ids[index];
    if (id === undefined) {
      const stem = stems[index] ?? 'item';
      let n = 2;
      while (natural.has(`${stem}-${n}`.toLowerCase()) || taken.has(`${stem}-${n}`.toLowerCase())) n += 1;
      id = `${stem}-${n}`;
      taken.add(id.toLowerCase());
    }
    return { id, uri };
  });
}

function safeStem(name: string): string {
  const extension = posix.extname(name);
  const stem = extension === '' ? name : name.slice(0, -extension.length);
  const safe = stem.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\./, '_');
  return safe === '' ? 'item' : safe;
}

function hasHiddenSegment(relative: string): boolean {
  return relative.split('/').some((segment) => segment.startsWith('.'));
}

function normalizeExtension(extension: string): string {
  return extension.replace(/^\./, '').toLowerCase();
}

function describeExtensions(extensions: ReadonlySet<string>): string {
  return [...extensions].map((extension) => `.${extension}`).join('/');
}

function formatLocation(location: Location): string {
  return location.kind === 's3' ? formatS3Uri(location.bucket, location.key) : location.path;
}

/**
 * A glob over S3 keys as a RegExp: `*` and `?` stay within one '/'-separated segment, `**` spans
 * segments, `[abc]`/`[!abc]` are classes, `{a,b}` alternatives, `\` escapes.
 */
export function globToRegExp(pattern: string): RegExp {
  return new RegExp(`^${globSource(pattern)}$`);
}

function globSource(pattern: string): string {
  let source = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const char = pattern.charAt(i);
    if (char === '\\' && i + 1 < pattern.length) {
      i += 1;
      source += escapeRegExp(pattern.charAt(i));
    } else if (char === '*') {
      if (pattern.charAt(i + 1) === '*') {
        i += 1;
        if (pattern.charAt(i + 1) === '/') {
          i += 1;
          source += '(?:.*/)?';
        } else {
          source += '.*';
        }
      } else {
        source += '[^/]*';
      }
    } else if (char === '?') {
      source += '[^/]';
    } else if (char === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) {
        source += '\\[';
      } else {
        let body = pattern.slice(i + 1, close);
        const negated = body.startsWith('!') || body.startsWith('^');
        if (negated) body = body.slice(1);
        source += `[${negated ? '^/' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
        i = close;
      }
    } else if (char === '{') {
      const close = matchingBrace(pattern, i);
      if (close === -1) {
        source += '\\{';
      } else {
        const alternatives = splitTopLevel(pattern.slice(i + 1, close));
        source += `(?:${alternatives.map(globSource).join('|')})`;
        i = close;
      }
    } else {
      source += escapeRegExp(char);
    }
  }
  return source;
}

function matchingBrace(pattern: string, open: number): number {
  let depth = 0;
  for (let i = open; i < pattern.length; i += 1) {
    const char = pattern.charAt(i);
    if (char === '\\') i += 1;
    else if (char === '{') depth += 1;
    else if (char === '}' && --depth === 0) return i;
  }
  return -1;
}

function splitTopLevel(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < body.length; i += 1) {
    const char = body.charAt(i);
    if (char === '\\') i += 1;
    else if (char === '{') depth += 1;
    else if (char === '}') depth -= 1;
    else if (char === ',' && depth === 0) {
      parts.push(body.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(body.slice(start));
  return parts;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
