import { Command } from 'commander';
import { interruptible, UsageError } from './errors.js';
import { renderStageLine } from './progress.js';
import { cliStorage } from './storage.js';
// types only: the raster code itself is imported when the command runs
import type { RetileCompression, RetileResult } from '../chip/retile.js';

function integerOption(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min) {
      throw new UsageError(`${flag}: expected an integer >= ${min} but got '${value}'`);
    }
    return n;
  };
}

function compressOption(value: string): RetileCompression {
  if (value !== 'deflate' && value !== 'none') {
    throw new UsageError(`--compress: expected one of deflate, none but got '${value}'`);
  }
  return value;
}

/** The lines `geobatch chip retile` prints for a finished run. */
export function retileSummary(r: RetileResult, seconds: number): string {
  const lines = [
    `chip retile: ${r.input} (${r.width} x ${r.height}, ${r.bands} band(s) ${r.dtype}) -> ${r.tiles} tiles (${r.rows} rows x ${r.cols} columns) in ${seconds.toFixed(1)} s`,
    `  wrote ${r.written} tile(s)${r.skipped ? `, ${r.skipped} already complete` : ''}; ${r.epsg !== null ? `EPSG:${r.epsg}` : 'no CRS'}, no-data ${r.nodata ?? 'none'}`,
    `  index ${r.indexUri}`,
  ];
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** A one-line tile progress bar on stderr (a terminal only), drawn with the run bars' renderer. */
function tileBar(): { update(done: number, total: number): void; close(): void } {
  const started = Date.now();
  let last = 0;
  return {
    update(done, total) {
      const now = Date.now();
      if (done < total && now - last < 100) return;
      last = now;
      const line = renderStageLine(
        {
          name: 'retile',
          tasks: total,
          done,
          skipped: 0,
          failed: 0,
          blocked: 0,
          running: 0,
          firstStart: started,
        },
        6,
        30,
        now,
      );
      process.stderr.write(`\r\x1b[2K${line}`);
    },
    close() {
      process.stderr.write('\r\x1b[2K');
    },
  };
}

/** `geobatch chip retile <image> --out <dir>` */
export const retileCommand = new Command('retile')
  .summary('cut a large GeoTIFF into georeferenced GeoTIFF tiles, as gdal_retile.py does')
  .description(
    [
      'Cut one GeoTIFF (any bands, data type and layout, striped, tiled or COG; a local',
      'file or s3://, read by byte ranges) into --size x --size GeoTIFF tiles named',
      '<stem>_<row>_<col>.tif: rows and columns count from 1 and are zero-padded to the',
      'same width, as gdal_retile.py names them. Tile origins step by size - overlap;',
      'the last row and column are truncated at the image edge (smaller tiles).',
      'Tiles keep the bands, data type, no-data, CRS (EPSG) and georeferencing of their',
      'window (a PixelIsPoint source gives GDAL placement, written as PixelIsArea) and',
      'are tiled 512 x 512 inside. A source without georeferencing is retiled too; its',
      'tiles have none. The source is streamed one row of tiles at a time.',
      'Each tile appears whole or not at all, and <out>/tiles.json (name, row, col,',
      'window, geotransform per tile) is written last. Running again skips the tiles',
      'already complete.',
    ].join('\n'),
  )
  .argument('<image>', 'GeoTIFF or JPEG 2000 (.jp2) file or s3:// URI')
  .requiredOption('--out <dir>', 'output directory or s3:// prefix')
  .option('--size <px>', 'tile width and height in pixels', integerOption('--size', 1), 5120)
  .option(
    '--overlap <px>',
    'pixels shared by neighbouring tiles (less than --size)',
    integerOption('--overlap', 0),
    0,
  )
  .option('--compress <codec>', 'tile compression: deflate or none', compressOption, 'deflate')
  .option('--json', 'print the result as JSON', false)
  .action(
    async (
      image: string,
      opts: { out: string; size: number; overlap: number; compress: RetileCompression; json: boolean },
    ) => {
      if (opts.overlap >= opts.size) {
        throw new UsageError(
          `--overlap: expected an integer in [0, ${opts.size - 1}] (less than --size ${opts.size}) but got '${opts.overlap}'`,
        );
      }
      const { retileImage } = await import('../chip/retile.js');
      const bar = !opts.json && process.stderr.isTTY === true ? tileBar() : undefined;
      const started = performance.now();
      let result: RetileResult;
      try {
        result = await interruptible(
          'interrupted; the finished tiles are kept: run the same command to resume',
          (signal) =>
            retileImage(cliStorage(), image, {
              out: opts.out,
              size: opts.size,
              overlap: opts.overlap,
              compress: opts.compress,
              ...(bar ? { onProgress: (done: number, total: number) => bar.update(done, total) } : {}),
              signal,
            }),
        );
      } finally {
        bar?.close();
      }
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(
        opts.json ? JSON.stringify({ ...result, seconds }) + '\n' : retileSummary(result, seconds),
      );
    },
  );
