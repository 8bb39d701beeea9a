/**
 * Reads a GeoJSON FeatureCollection incrementally: the bytes stream through a small scanner that
 * finds each element of the top-level `features` array, and only that feature's text is parsed.
 * A 300 MB file with 600,000 features is read with one chunk and one feature in memory at a time,
 * never as one string or one object tree. Other top-level members (`type`, `crs`, `name`, ...)
 * are parsed whole and reported as they come.
 *
 * Python's json module writes NaN and Infinity, which JSON does not allow: a feature that fails
 * to parse only because of them is parsed with those tokens as the strings "NaN", "Infinity" and
 * "-Infinity", so that geometry checks can name the coordinate instead of a syntax error.
 */
import type { Readable } from 'node:stream';
import type { Storage } from '../storage/types.js';
import { LabelError } from './errors.js';

/** One feature's text as found in the file. */
export interface FeatureText {
  /** 0-based position in the `features` array. */
  readonly index: number;
  /** Byte offset of the feature's `{` in the file. */
  readonly offset: number;
  readonly bytes: Buffer;
}

export interface FeatureCollectionHandlers {
  /** A top-level member other than `features`, parsed. */
  onMember?(key: string, value: unknown): void;
  /** One element of `features`, as text (see {@link parseFeature}). */
  onFeature(feature: FeatureText): void;
}

/** An error at a byte offset; turned into a LabelError with line and column by {@link readFeatureCollection}. */
class ScanError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

function describeByte(b: number | undefined): string {
  if (b === undefined) return 'the end of the file';
  if (b >= 0x20 && b < 0x7f) return `'${String.fromCharCode(b)}'`;
  return `byte 0x${b.toString(16).padStart(2, '0')}`;
}

type State =
  | 'root'
  | 'key-or-end'
  | 'key'
  | 'colon'
  | 'value'
  | 'comma-or-end'
  | 'features-first'
  | 'features-item'
  | 'features-comma-or-end'
  | 'done';

/**
 * The scanner: fed chunks in order, calls the handlers as members and features complete.
 * Values are captured by matching brackets outside strings; their text is parsed by the caller.
 */
class FeatureCollectionScanner {
  private state: State = 'root';
  private position = 0;
  private key = '';
  private sawFeatures = false;
  private featureCount = 0;
  // the value being captured
  private capturing = false;
  private captureStart = 0;
  private parts: Buffer[] = [];
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The value being captured is a scalar (number, true, false, null), ended by a delimiter. */
  private scalar = false;
  private pendingMember: string | undefined;
  /** Where the captured value starts in the current chunk (0 for chunks after its first). */
  private captureFrom = 0;

  constructor(private readonly handlers: FeatureCollectionHandlers) {}

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    if (this.capturing) this.captureFrom = 0;
    while (i < n) {
      if (this.capturing) {
        i = this.capture(chunk, i);
        continue;
      }
      const b = chunk[i]!;
      if (isSpace(b)) {
        i++;
        continue;
      }
      const at = this.position + i;
      switch (this.state) {
        case 'root':
          // a UTF-8 byte order mark, possibly cut by chunk boundaries
          if (at < 3 && b === [0xef, 0xbb, 0xbf][at]) {
            i++;
            continue;
          }
          if (b !== OPEN_BRACE) {
            throw new ScanError(
              at,
              `expected a GeoJSON FeatureCollection object ('{') but found ${describeByte(b)}; the file is not JSON or not a GeoJSON object`,
            );
          }
          this.state = 'key-or-end';
          break;
        case 'key-or-end':
        case 'key':
          if (b === CLOSE_BRACE && this.state === 'key-or-end') {
            this.state = 'done';
            break;
          }
          if (b !== QUOTE)
            throw new ScanError(at, `expected a member name ('"') but found ${describeByte(b)}`);
          this.startCapture(i, false);
          this.pendingMember = '\0key';
          this.inString = true;
          i++;
          continue;
        case 'colon':
          if (b !== COLON)
            throw new ScanError(at, `expected ':' after "${this.key}" but found ${describeByte(b)}`);
          this.state = 'value';
          break;
        case 'value':
          if (this.key === 'features') {
            if (b !== OPEN_BRACKET) {
              throw new ScanError(
                at,
                `expected 'features' to be an array ('[') but found ${describeByte(b)}`,
              );
            }
            this.sawFeatures = true;
            this.state = 'features-first';
            break;
          }
          this.pendingMember = this.key;
          this.startCapture(i, !(b === OPEN_BRACE || b === OPEN_BRACKET || b === QUOTE));
          if (b === QUOTE) this.inString = true;
          else if (!this.scalar) this.depth = 1;
          i++;
          continue;
        case 'comma-or-end':
          if (b === COMMA) this.state = 'key';
          else if (b === CLOSE_BRACE) this.state = 'done';
          else
            throw new ScanError(
              at,
              `expected ',' or '}' after the value of "${this.key}" but found ${describeByte(b)}`,
            );
          break;
        case 'features-first':
        case 'features-item':
          if (b === CLOSE_BRACKET && this.state === 'features-first') {
            this.state = 'comma-or-end';
            break;
          }
          if (b !== OPEN_BRACE) {
            throw new ScanError(
              at,
              `feature ${this.featureCount}: expected a Feature object ('{') but found ${describeByte(b)}`,
            );
          }
          this.pendingMember = undefined;
          this.startCapture(i, false);
          this.depth = 1;
          i++;
          continue;
        case 'features-comma-or-end':
          if (b === COMMA) this.state = 'features-item';
          else if (b === CLOSE_BRACKET) this.state = 'comma-or-end';
          else {
            throw new ScanError(
              at,
              `expected ',' or ']' after feature ${this.featureCount - 1} but found ${describeByte(b)}`,
            );
          }
          break;
        case 'done':
          throw new ScanError(at, `unexpected ${describeByte(b)} after the end of the GeoJSON object`);
      }
      i++;
    }
    if (this.capturing && this.captureFrom < n) this.parts.push(chunk.subarray(this.captureFrom));
    this.position += n;
  }

  /** Checks that the file ended where a complete FeatureCollection ends. */
  end(): void {
    if (this.capturing && this.scalar) this.finishCapture(Buffer.alloc(0), 0);
    if (this.state !== 'done') {
      const what = this.capturing
        ? this.pendingMember === undefined
          ? `in the middle of feature ${this.featureCount}`
          : `in the middle of the value of "${this.pendingMember === '\0key' ? '(a member name)' : this.pendingMember}"`
        : this.state === 'root'
          ? 'before any JSON value (the file is empty)'
          : 'before the GeoJSON object was closed';
      throw new ScanError(this.position, `the file ends ${what} (truncated?)`);
    }
    if (!this.sawFeatures) {
      throw new ScanError(0, `no 'features' array: expected a GeoJSON FeatureCollection`);
    }
  }

  private startCapture(i: number, scalar: boolean): void {
    this.capturing = true;
    this.captureStart = this.position + i;
    this.captureFrom = i;
    this.parts = [];
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.scalar = scalar;
  }

  /** Advances through a captured value from `i`; returns where scanning continues. */
  private capture(chunk: Buffer, i: number): number {
    const n = chunk.length;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        const quote = chunk.indexOf(QUOTE, i);
        const slash = chunk.indexOf(BACKSLASH, i);
        if (slash !== -1 && (quote === -1 || slash < quote)) {
          this.escaped = true;
          i = slash + 1;
          continue;
        }
        if (quote === -1) return n;
        this.inString = false;
        i = quote + 1;
        if (this.depth === 0 && !this.scalar) return this.finishCapture(chunk, i);
        continue;
      }
      const b = chunk[i]!;
      if (this.scalar) {
        if (b === COMMA || b === CLOSE_BRACE || b === CLOSE_BRACKET || isSpace(b))
          return this.finishCapture(chunk, i);
        i++;
        continue;
      }
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) return this.finishCapture(chunk, i + 1);
      }
      i++;
    }
    return n;
  }

  /** The captured value ends before `end` in `chunk`: hand it over and go on scanning. */
  private finishCapture(chunk: Buffer, end: number): number {
    const tail = chunk.subarray(this.captureFrom, end);
    const bytes = this.parts.length === 0 ? tail : Buffer.concat([...this.parts, tail]);
    this.parts = [];
    this.capturing = false;
    const member = this.pendingMember;
    if (member === undefined) {
      this.handlers.onFeature({ index: this.featureCount, offset: this.captureStart, bytes });
      this.featureCount++;
      this.state = 'features-comma-or-end';
    } else if (member === '\0key') {
      this.key = JSON.parse(bytes.toString('utf8')) as string;
      this.state = 'colon';
    } else {
      let value: unknown;
      try {
        value = JSON.parse(bytes.toString('utf8'));
      } catch (error) {
        throw new ScanError(
          this.captureStart,
          `the value of "${member}" is not valid JSON (${(error as Error).message})`,
        );
      }
      this.handlers.onMember?.(member, value);
      this.state = 'comma-or-end';
    }
    return end;
  }
}

/** Line and column (1-based) of a byte offset, found by reading the file again (error paths only). */
async function lineAndColumn(
  open: () => Promise<AsyncIterable<Uint8Array>>,
  offset: number,
): Promise<{ line: number; column: number }> {
  let line = 1;
  let lineStart = 0;
  let position = 0;
  for await (const chunk of await open()) {
    const end = Math.min(chunk.length, offset - position);
    for (let i = 0; i < end; i++) {
      if (chunk[i] === 0x0a) {
        line++;
        lineStart = position + i + 1;
      }
    }
    position += chunk.length;
    if (position >= offset) break;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Streams the FeatureCollection at `uri` through the handlers. Throws a {@link LabelError}
 * naming the file, the line and column, and what was expected when the text is not a
 * GeoJSON FeatureCollection.
 */
export async function readFeatureCollection(
  storage: Storage,
  uri: string,
  handlers: FeatureCollectionHandlers,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  const open = async (): Promise<Readable> =>
    storage.createReadStream(uri, options.signal ? { signal: options.signal } : {});
  const scanner = new FeatureCollectionScanner(handlers);
  try {
    for await (const chunk of await open()) scanner.push(chunk as Buffer);
    scanner.end();
  } catch (error) {
    if (error instanceof ScanError) {
      const { line, column } = await lineAndColumn(open, error.offset);
      throw new LabelError(
        `${uri}: not a valid GeoJSON FeatureCollection at line ${line}, column ${column}: ${error.message}`,
      );
    }
    throw error;
  }
}

/**
 * The features of a FeatureCollection byte stream, yielded as each chunk completes them, for a
 * consumer that goes at its own pace (a server writing to a slow client): one chunk and its
 * features in memory at a time. Throws a {@link LabelError} naming `name` and the byte offset
 * when the text is not a GeoJSON FeatureCollection.
 */
export async function* streamFeatures(
  chunks: AsyncIterable<Buffer>,
  name: string,
): AsyncGenerator<FeatureText> {
  const ready: FeatureText[] = [];
  const scanner = new FeatureCollectionScanner({ onFeature: (f) => ready.push(f) });
  try {
    for await (const chunk of chunks) {
      scanner.push(chunk);
      yield* ready.splice(0);
    }
    scanner.end();
  } catch (error) {
    if (error instanceof ScanError) {
      throw new LabelError(
        `${name}: not a valid GeoJSON FeatureCollection at byte ${error.offset}: ${error.message}`,
      );
    }
    throw error;
  }
  yield* ready.splice(0);
}

/** Replaces the bare tokens NaN, Infinity and -Infinity outside strings by strings; undefined when there are none. */
function quoteNonFinite(text: string): string | undefined {
  let out = '';
  let last = 0;
  let found = false;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) {
      inString = true;
      continue;
    }
    for (const token of ['-Infinity', 'Infinity', 'NaN']) {
      if (text.startsWith(token, i)) {
        out += text.slice(last, i) + `"${token}"`;
        i += token.length - 1;
        last = i + 1;
        found = true;
        break;
      }
    }
  }
  return found ? out + text.slice(last) : undefined;
}

/** Parses one feature's text; a {@link LabelError} names the file and feature when it is not JSON. */
export function parseFeature(feature: FeatureText, uri: string): unknown {
  const text = feature.bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    const lenient = quoteNonFinite(text);
    if (lenient !== undefined) {
      try {
        return JSON.parse(lenient);
      } catch {
        // fall through to the original error
      }
    }
    throw new LabelError(
      `${uri}: feature ${feature.index} (byte ${feature.offset}) is not valid JSON: ${(error as Error).message}`,
    );
  }
}
