/**
 * How the training chips' pixels were made, for the model bundle's `conversion`: the bands and
 * stretch chosen (or left to the defaults of `geobatch rgb`) and what the source scenes were made
 * of, read from one scene's header (cheap: the TIFF header only). Used by the train job, which
 * finds the choice in the run's graph, and by `geobatch train`, which takes it as options.
 */
import { isTiffName } from '../chip/slice-readers.js';
import type { ModelBundle } from '../predict/bundle.js';
import { openRaster } from '../raster/reader.js';
import { DEFAULT_PERCENTILES, defaultBands, type Stretch } from '../raster/stretch.js';
import type { Storage } from '../storage/types.js';

export type BundleConversion = ModelBundle['conversion'];

/** A conversion as the rgb and chip jobs take it: unset fields are the defaults. */
export interface ConversionChoice {
  /** 1-based bands for R, G, B (one band: grey, repeated). */
  readonly bands?: readonly number[];
  readonly stretch?: Stretch;
}

/** What a source scene is made of. */
export interface SourceHeader {
  readonly uri: string;
  readonly bands: number;
  readonly dtype: NonNullable<BundleConversion['sourceType']>;
  readonly photometricRgb: boolean;
}

/** The header of a scene the chips were cut from; undefined for a JPEG/PNG (cut as it is). */
export async function readSourceHeader(
  storage: Storage,
  uri: string,
  options: { readonly signal?: AbortSignal } = {},
): Promise<SourceHeader | undefined> {
  if (!isTiffName(uri)) return undefined;
  const raster = await openRaster(storage, uri, options);
  try {
    const { bands, dtype, photometric } = raster.info;
    return { uri, bands, dtype, photometricRgb: photometric === 'rgb' };
  } finally {
    await raster.close();
  }
}

export function describeStretch(stretch: Stretch): string {
  switch (stretch.kind) {
    case 'percentile':
      return `percentile ${stretch.low}-${stretch.high}`;
    case 'range':
      return `range ${stretch.ranges.map(([lo, hi]) => `${lo}..${hi}`).join(', ')}`;
    default:
      return stretch.kind;
  }
}

function bundleStretch(stretch: Stretch | undefined): BundleConversion['stretch'] {
  if (!stretch) return null;
  return stretch.kind === 'range'
    ? { kind: 'range', ranges: stretch.ranges.map(([lo, hi]) => [lo, hi] as [number, number]) }
    : { ...stretch };
}

function threeBands(bands: readonly number[] | undefined): number[] | null {
  if (!bands) return null;
  return bands.length === 1 ? [bands[0]!, bands[0]!, bands[0]!] : [...bands];
}

/**
 * The bundle's conversion: the choice as given (null = the default of the band count / sample
 * type, which predict applies to a scene of the same kind), the source's band count and type, and
 * a description naming `where` it was found and what the defaults resolve to for that source.
 */
export function bundleConversion(
  where: string,
  choice: ConversionChoice,
  source: SourceHeader | undefined,
): BundleConversion {
  const bands = threeBands(choice.bands);
  const parts: string[] = [];
  if (bands) parts.push(`bands ${bands.join(',')}`);
  else if (source) {
    let resolved: string;
    try {
      resolved = defaultBands(source.bands, source.photometricRgb, source.uri).join(',');
    } catch {
      resolved = 'none';
    }
    parts.push(`bands ${resolved} (the default for ${source.bands} band(s))`);
  } else parts.push('default bands');
  if (choice.stretch) parts.push(describeStretch(choice.stretch));
  else if (source) {
    const s: Stretch =
      source.dtype === 'uint8' ? { kind: 'none' } : { kind: 'percentile', ...DEFAULT_PERCENTILES };
    parts.push(`${describeStretch(s)} (the default for ${source.dtype})`);
  } else parts.push('default stretch');
  const of = source ? `, from ${source.bands}-band ${source.dtype} scenes` : '';
  if (!source && !bands && !choice.stretch) {
    return {
      sourceBands: null,
      sourceType: null,
      bands: null,
      stretch: null,
      description: `${where}: 8-bit images taken as they were`,
    };
  }
  return {
    sourceBands: source?.bands ?? null,
    sourceType: source?.dtype ?? null,
    bands,
    stretch: bundleStretch(choice.stretch),
    description: `${where}: ${parts.join(', ')}${of}`,
  };
}
