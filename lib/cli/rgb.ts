import { Command, Option } from 'commander';
import { UsageError } from './errors.js';
import { cliStorage } from './storage.js';
// types only: the raster code itself is imported when the command runs
import type { RgbResult } from '../raster/rgb.js';
import type { Stretch } from '../raster/stretch.js';
import { numberOption } from './options.js';

/** Runs an option parser, turning its error into a usage error (exit code 2). */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, '');
}

/** The lines `geobatch rgb` prints for a finished conversion. */
export function rgbSummary(r: RgbResult, seconds: number): string {
  const format = r.cog
    ? 'Cloud Optimized GeoTIFF'
    : r.format === 'gtiff'
      ? 'GeoTIFF'
      : r.format.toUpperCase();
  const mask = r.alpha
    ? 'alpha band for no-data'
    : r.outputNodata !== null
      ? `no-data ${r.outputNodata}`
      : 'no no-data';
  const ranges = ['R', 'G', 'B']
    .map((c, i) => `${c} ${fmt(r.ranges[i]![0])}..${fmt(r.ranges[i]![1])}`)
    .join(', ');
  const lines = [
    `rgb: ${r.input} (${r.width} x ${r.height}, ${r.inputType}) -> ${r.output} (${format}, 8-bit RGB${r.alpha ? 'A' : ''}, ${mask}) in ${seconds.toFixed(1)} s`,
    `  bands ${r.bands.join(',')}; stretch ${r.stretch}${r.sampledFrom ? ` (statistics from ${r.sampledFrom})` : ''}: ${ranges}`,
    `  ${r.epsg !== null ? `EPSG:${r.epsg}` : 'no CRS'}, ${r.geotransform ? `geotransform [${r.geotransform.join(', ')}]` : 'no geotransform'}`,
  ];
  for (const s of r.sidecars) lines.push(`  wrote ${s}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** `geobatch rgb <input> <output>` */
export const rgbCommand = new Command('rgb')
  .summary('any GeoTIFF or JPEG 2000 to georeferenced 8-bit RGB (GeoTIFF, PNG or JPEG)')
  .description(
    [
      'Convert any GeoTIFF or JPEG 2000 file (.jp2, GeoJP2 or GMLJP2; any layout;',
      'uint8 to float64; 1 to N bands; local or',
      's3://) to an analysis-ready 8-bit RGB image: three bands chosen, stretched',
      'per band, no-data kept, georeferencing kept. GeoTIFF output streams in',
      'bounded memory; PNG and JPEG output get a world file and a .aux.xml CRS.',
      '',
      'Default bands by band count: 1 band: grey (used for R, G and B); 3 bands',
      'or an RGB file: 1,2,3; 4 bands (blue, green, red, NIR): 3,2,1; 8 bands',
      '(WorldView-2/3): 5,3,2; any other count: give --bands.',
      'Default stretch: per band, percentiles 2 to 98 of a sample of valid',
      'pixels; none (values kept) for 8-bit input.',
      "No-data (the file's, or --src-nodata) is written as 0 and valid pixels",
      'use 1..255; with --alpha, an alpha band marks it instead. Rotated',
      'geotransforms are refused; PixelIsPoint files are placed as GDAL does.',
      '',
      '--cog writes a Cloud Optimized GeoTIFF (as gdal_translate -of COG): overviews',
      'halving until one tile, averaged as GDAL does with no-data left out, all',
      'IFDs first; still bounded memory, with scratch files next to the output.',
    ].join('\n'),
  )
  .argument('<input>', 'GeoTIFF to convert (local path or s3:// URI)')
  .argument('<output>', 'output image (.tif, .png or .jpg; local path or s3:// URI)')
  .option('--bands <list>', 'source bands for R,G,B, counted from 1 (e.g. 5,3,2), or one band for grey')
  .addOption(
    new Option(
      '--stretch <kind>',
      'how values become 0..255 (default: percentile, or none for 8-bit input)',
    ).choices(['percentile', 'minmax', 'range', 'none']),
  )
  .option('--percentiles <low,high>', 'percentiles of the percentile stretch', '2,98')
  .option(
    '--range <min,max>',
    'fixed range for every band, or min,max,min,max,min,max for R,G,B (implies --stretch range)',
  )
  .option('--src-nodata <value>', "input no-data value, or 'none' to ignore the file's (default: the file's)")
  .option('--alpha', 'mark no-data with an alpha band instead of 0 (default for PNG when there is no-data)')
  .addOption(
    new Option('--format <format>', 'output format (default: from the extension)').choices([
      'gtiff',
      'png',
      'jpeg',
    ]),
  )
  .option('--quality <q>', 'JPEG quality', numberOption('--quality', 1, 100, true), 90)
  .option(
    '--cog',
    'write a Cloud Optimized GeoTIFF: internal overviews (average) and every IFD before the tiles, for viewers and byte-range readers',
    false,
  )
  .option('--json', 'print the result as JSON', false)
  .action(
    async (
      input: string,
      output: string,
      opts: {
        bands?: string;
        stretch?: string;
        percentiles: string;
        range?: string;
        srcNodata?: string;
        alpha?: boolean;
        format?: 'gtiff' | 'png' | 'jpeg';
        quality: number;
        cog: boolean;
        json: boolean;
      },
    ) => {
      const { parseBands, parsePercentiles, parseRanges } = await import('../raster/stretch.js');
      const { convertToRgb } = await import('../raster/rgb.js');
      const bands = opts.bands === undefined ? undefined : usage(() => parseBands(opts.bands!));
      const kind = opts.stretch ?? (opts.range !== undefined ? 'range' : undefined);
      let stretch: Stretch | undefined;
      if (kind === 'percentile') stretch = { kind, ...usage(() => parsePercentiles(opts.percentiles)) };
      else if (kind === 'minmax' || kind === 'none') stretch = { kind };
      else if (kind === 'range') {
        if (opts.range === undefined)
          throw new UsageError('--stretch range: expected --range MIN,MAX as well');
        stretch = { kind, ranges: usage(() => parseRanges(opts.range!)) };
      }
      if (opts.range !== undefined && kind !== 'range') {
        throw new UsageError(`--range applies to --stretch range, not --stretch ${kind}`);
      }
      let srcNodata: number | null | undefined;
      if (opts.srcNodata !== undefined) {
        const text = opts.srcNodata.trim().toLowerCase();
        srcNodata = text === 'none' ? null : text === 'nan' ? NaN : Number(opts.srcNodata);
        if (srcNodata !== null && !Number.isFinite(srcNodata) && !Number.isNaN(srcNodata)) {
          throw new UsageError(
            `--src-nodata: expected a number, 'nan' or 'none' but got '${opts.srcNodata}'`,
          );
        }
        if (typeof srcNodata === 'number' && Number.isNaN(srcNodata) && text !== 'nan') {
          throw new UsageError(
            `--src-nodata: expected a number, 'nan' or 'none' but got '${opts.srcNodata}'`,
          );
        }
      }
      const tty = !opts.json && process.stderr.isTTY === true;
      const started = performance.now();
      const result = await convertToRgb(cliStorage(), input, output, {
        ...(bands ? { bands } : {}),
        ...(stretch ? { stretch } : {}),
        ...(srcNodata !== undefined ? { srcNodata } : {}),
        ...(opts.alpha ? { alpha: true } : {}),
        ...(opts.format ? { format: opts.format } : {}),
        quality: opts.quality,
        ...(opts.cog ? { cog: true } : {}),
        ...(tty
          ? {
              onProgress: (rows: number, height: number) =>
                process.stderr.write(`\rrgb: ${Math.floor((100 * rows) / height)}% `),
            }
          : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(
        opts.json ? JSON.stringify({ ...result, seconds }) + '\n' : rgbSummary(result, seconds),
      );
    },
  );
