/**
 * From sample values to 8-bit: which bands make R, G and B by default, how a stretch is named,
 * band histograms and their percentiles, and the per-band mapping (a lookup table for 8- and
 * 16-bit integers, arithmetic otherwise) that GDAL's `-scale` would apply. Pure, no I/O.
 */
import { RasterError } from './errors.js';
import type { SampleType } from './info.js';

/** How sample values become 0..255. */
export type Stretch =
  /** Per band, from the `low`-th to the `high`-th percentile of a sample of valid pixels. */
  | { readonly kind: 'percentile'; readonly low: number; readonly high: number }
  /** Per band, from the sample's minimum to its maximum. */
  | { readonly kind: 'minmax' }
  /** Fixed ranges: one for every band, or one per output band. */
  | { readonly kind: 'range'; readonly ranges: readonly (readonly [number, number])[] }
  /** Values kept (clamped to 0..255): for data that is already 8-bit. */
  | { readonly kind: 'none' };

/** The default percentile stretch. */
export const DEFAULT_PERCENTILES = { low: 2, high: 98 } as const;

/**
 * The default R, G, B bands (1-based) for a band count: 1 band is grey (used three times);
 * photometric RGB files and 3 bands as they are; 4 bands are taken as blue, green, red, NIR
 * (WorldView/Planet/SpaceNet order) -> 3,2,1; 8 bands as WorldView-2/3 -> red 5, green 3, blue 2.
 */
export function defaultBands(count: number, photometricRgb: boolean, uri: string): number[] {
  if (count === 1) return [1, 1, 1];
  if (photometricRgb && count >= 3) return [1, 2, 3];
  if (count === 3) return [1, 2, 3];
  if (count === 4) return [3, 2, 1];
  if (count === 8) return [5, 3, 2];
  throw new RasterError(
    `${uri}: has ${count} bands and no default band choice for that count (defaults exist for 1, 3, 4 and 8 bands); choose with --bands R,G,B, e.g. --bands 3,2,1`,
  );
}

/** Parses `--bands`: one band (grey) or three (R,G,B), 1-based. */
export function parseBands(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  const bands = parts.map(Number);
  if (
    (bands.length !== 1 && bands.length !== 3) ||
    parts.some((p) => p === '') ||
    bands.some((b) => !Number.isInteger(b) || b < 1)
  ) {
    throw new RasterError(
      `--bands: expected one band or three comma-separated band numbers counted from 1 (e.g. 5,3,2) but got '${text}'`,
    );
  }
  return bands.length === 1 ? [bands[0]!, bands[0]!, bands[0]!] : bands;
}

/** Checks 1-based bands against a raster's band count. */
export function checkBands(bands: readonly number[], count: number, uri: string): void {
  for (const b of bands) {
    if (b > count) {
      throw new RasterError(
        `--bands: band ${b} is out of range: ${uri} has ${count} band${count === 1 ? '' : 's'} (valid: 1..${count})`,
      );
    }
  }
}

function numbers(text: string, option: string, expected: string): number[] {
  const values = text.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
  if (values.some((v) => !Number.isFinite(v))) {
    throw new RasterError(`${option}: expected ${expected} but got '${text}'`);
  }
  return values;
}

/** Parses `--percentiles LOW,HIGH` (0 <= LOW < HIGH <= 100). */
export function parsePercentiles(text: string): { low: number; high: number } {
  const v = numbers(text, '--percentiles', 'two numbers LOW,HIGH with 0 <= LOW < HIGH <= 100 (e.g. 2,98)');
  if (v.length !== 2 || v[0]! < 0 || v[1]! > 100 || v[0]! >= v[1]!) {
    throw new RasterError(
      `--percentiles: expected two numbers LOW,HIGH with 0 <= LOW < HIGH <= 100 (e.g. 2,98) but got '${text}'`,
    );
  }
  return { low: v[0]!, high: v[1]! };
}

/** Parses `--range MIN,MAX` (every band) or `MIN,MAX,MIN,MAX,MIN,MAX` (R, G, B). */
export function parseRanges(text: string): [number, number][] {
  const expected = 'MIN,MAX for every band or MIN,MAX,MIN,MAX,MIN,MAX for R, G, B, each MIN < MAX';
  const v = numbers(text, '--range', expected);
  if (v.length !== 2 && v.length !== 6)
    throw new RasterError(`--range: expected ${expected} but got '${text}'`);
  const ranges: [number, number][] = [];
  for (let i = 0; i < v.length; i += 2) {
    if (!(v[i]! < v[i + 1]!)) throw new RasterError(`--range: expected ${expected} but got '${text}'`);
    ranges.push([v[i]!, v[i + 1]!]);
  }
  return ranges;
}

/**
 * Values of one band seen in a sample: a counting histogram for 8- and 16-bit integers
 * (exact percentiles at any sample size), the values themselves otherwise.
 */
export class BandHistogram {
  /** Counts of value `i - offset` (integer types of 16 bits or fewer). */
  readonly counts: Uint32Array | undefined;
  readonly offset: number;
  private values: Float64Array;
  private length = 0;
  private sorted = false;
  count = 0;
  min = Infinity;
  max = -Infinity;
  private sum = 0;

  constructor(readonly dtype: SampleType) {
    const size = lutSize(dtype);
    this.counts = size ? new Uint32Array(size) : undefined;
    this.offset = dtype === 'int16' ? 32768 : dtype === 'int8' ? 128 : 0;
    this.values = new Float64Array(this.counts ? 0 : 1024);
  }

  add(v: number): void {
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    if (this.counts) {
      this.counts[v + this.offset]!++;
      return;
    }
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = v;
    this.sorted = false;
  }

  get mean(): number | null {
    return this.count ? this.sum / this.count : null;
  }

  /** The value at rank p/100 * (count - 1), interpolated between neighbours (numpy's default); null when empty. */
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const rank = (p / 100) * (this.count - 1);
    const lo = Math.floor(rank);
    const hi = Math.ceil(rank);
    const a = this.valueAtRank(lo);
    const b = hi === lo ? a : this.valueAtRank(hi);
    return a + (b - a) * (rank - lo);
  }

  private valueAtRank(rank: number): number {
    if (this.counts) {
      let seen = 0;
      for (let i = 0; i < this.counts.length; i++) {
        seen += this.counts[i]!;
        if (seen > rank) return i - this.offset;
      }
      return this.max;
    }
    if (!this.sorted) {
      this.values = this.values.subarray(0, this.length).sort();
      this.sorted = true;
    }
    return this.values[rank]!;
  }
}

/** Lookup table entries for a sample type, or 0 when values are mapped arithmetically. */
export function lutSize(dtype: SampleType): number {
  if (dtype === 'uint8' || dtype === 'int8') return 256;
  if (dtype === 'uint16' || dtype === 'int16') return 65536;
  return 0;
}

/**
 * The linear map of [lo, hi] onto [dstMin, dstMax] that GDAL's `-scale lo hi dstMin dstMax -ot Byte`
 * applies (v * scale + offset, rounded half up), clamped to [dstMin, dstMax].
 */
export interface LinearMap {
  readonly lo: number;
  readonly hi: number;
  readonly dstMin: number;
  readonly dstMax: number;
  /** Outputs below this become this (1 keeps 0 free for no-data). @default dstMin */
  readonly floor?: number;
}

/** Applies a {@link LinearMap} to one value. */
export function mapValue(m: LinearMap, v: number): number {
  const floor = Math.max(m.floor ?? m.dstMin, m.dstMin);
  if (!(m.hi > m.lo)) return v <= m.lo ? floor : m.dstMax;
  const scale = (m.dstMax - m.dstMin) / (m.hi - m.lo);
  const out = Math.floor(v * scale + (m.dstMin - m.lo * scale) + 0.5);
  return out < floor ? floor : out > m.dstMax ? m.dstMax : out;
}

/** The lookup table of a {@link LinearMap} for an integer type: entry `v + offset` is the output of `v`. */
export function buildLut(m: LinearMap, dtype: SampleType): { lut: Uint8Array; offset: number } {
  const size = lutSize(dtype);
  const offset = dtype === 'int16' ? 32768 : dtype === 'int8' ? 128 : 0;
  const lut = new Uint8Array(size);
  for (let i = 0; i < size; i++) lut[i] = mapValue(m, i - offset);
  return { lut, offset };
}

/**
 * The [lo, hi] range of each output band for a stretch, from the sample histograms (null
 * histograms are allowed for `range` and `none`). A band without valid samples gets [0, 1].
 */
export function stretchRanges(
  stretch: Stretch,
  histograms: readonly (BandHistogram | undefined)[],
  outputBands: number,
): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < outputBands; i++) {
    const h = histograms[i];
    if (stretch.kind === 'none') out.push([0, 255]);
    else if (stretch.kind === 'range') {
      const r = stretch.ranges.length === 1 ? stretch.ranges[0]! : stretch.ranges[i]!;
      out.push([r[0], r[1]]);
    } else if (!h || h.count === 0) out.push([0, 1]);
    else if (stretch.kind === 'minmax') out.push([h.min, h.max]);
    else out.push([h.percentile(stretch.low)!, h.percentile(stretch.high)!]);
  }
  return out;
}

/** A short description of a stretch, for logs and summaries. */
export function describeStretch(stretch: Stretch): string {
  switch (stretch.kind) {
    case 'percentile':
      return `percentile ${stretch.low}-${stretch.high}`;
    case 'minmax':
      return 'min-max';
    case 'range':
      return `range ${stretch.ranges.map((r) => r.join('..')).join(', ')}`;
    case 'none':
      return 'none';
  }
}

/** The text of the stretch options `geobatch rgb` takes (`--stretch`, `--percentiles`, `--range`). */
export interface StretchOptionsText {
  readonly stretch?: string | undefined;
  /** @default '2,98' */
  readonly percentiles?: string | undefined;
  readonly range?: string | undefined;
}

/**
 * Parses `--stretch KIND [--percentiles LOW,HIGH] [--range MIN,MAX...]` as `geobatch rgb` does:
 * `--range` alone implies `--stretch range`; undefined when neither is given (the default
 * stretch then depends on the data).
 */
export function parseStretch(options: StretchOptionsText): Stretch | undefined {
  const kind = options.stretch ?? (options.range !== undefined ? 'range' : undefined);
  if (options.range !== undefined && kind !== 'range') {
    throw new RasterError(`--range applies to --stretch range, not --stretch ${kind}`);
  }
  switch (kind) {
    case undefined:
      return undefined;
    case 'percentile':
      return { kind, ...parsePercentiles(options.percentiles ?? '2,98') };
    case 'minmax':
    case 'none':
      return { kind };
    case 'range':
      if (options.range === undefined)
        throw new RasterError('--stretch range: expected --range MIN,MAX as well');
      return { kind, ranges: parseRanges(options.range) };
    default:
      throw new RasterError(
        `--stretch: expected percentile, minmax, range or none but got '${String(kind)}'`,
      );
  }
}
