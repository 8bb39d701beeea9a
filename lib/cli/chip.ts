import { Command, Option } from 'commander';
import { interruptible, UsageError } from './errors.js';
import { gridCommand, locateCommand } from './chip-grid.js';
import { retileCommand } from './chip-retile.js';
import { cliStorage } from './storage.js';
import { numberOption, overlapOption, partOption } from './options.js';

/** `geobatch chip slice` */
const sliceCommand = new Command('slice')
  .summary('cut images and their COCO labels into overlapping slices, as `sahi coco slice` does')
  .description(
    [
      'Cut images (GeoTIFF or JPEG 2000 of any band count and sample type, JPEG or PNG; a file,',
      'a directory or an s3:// prefix) into size x size slices with the windows',
      'and annotation rules of SAHI 0.11: step = size - floor(overlap * size),',
      'edge windows shifted back inside the image, annotations clipped to each',
      'window and kept when their clipped area is at least --min-area-ratio of',
      'their area.',
      'Writes <out>/images/<stem>_<x0>_<y0>_<x1>_<y1>.<ext> and <out>/annotations.json',
      '(file_name relative to <out>/images). Unlike SAHI, zero-area and RLE',
      'annotations are skipped and counted, and with --ignore-negatives the',
      'slices without annotations are not written at all.',
      '',
      'GeoTIFFs are read block by block (by byte ranges on s3://, never whole) and',
      'converted to 8-bit RGB on the fly as `geobatch rgb` does: default bands by',
      'band count (1: grey; 3 or RGB: 1,2,3; 4: 3,2,1; 8: 5,3,2), stretch none for',
      '8-bit data, else percentiles 2-98 of a sample of valid pixels, computed once',
      'per scene; no-data becomes 0. --format tif writes GeoTIFF chips with the',
      "window's geotransform and the scene's CRS. Georeferenced scenes also get",
      '<out>/chips.geojson (chip footprints in CRS84).',
      '',
      'A large image is cut by several worker threads at once (--workers, default',
      'half the cores, at most 4: each keeps about two cores busy), each decoding',
      'its own rows; JPEG chips are encoded with libjpeg-turbo. --part k/n cuts',
      'only the k-th of n runs of rows of windows (e.g. one of n Batch tasks over',
      'a huge scene) and writes annotations.part-k-of-n.json and',
      'chips.part-k-of-n.geojson, with the ids the whole run would give;',
      '`geobatch dataset build` reads complete sets.',
      '',
      '--gsd <m> first resamples each scene (projected CRS in metres; not geographic)',
      'to that many metres per pixel, on the same origin and size as',
      '`gdalwarp -tr <m> <m>` gives, streaming its rows; --size and the windows are then',
      'in output pixels, and annotations, GeoTIFF chips and chips.geojson follow the',
      'new grid. --resampling: average (area-weighted, the default when coarser),',
      'bilinear (the default when finer; widened when coarser, as gdalwarp does) or',
      'nearest.',
      '',
      'Run again after an interruption, it keeps the rows of windows whose chips were',
      'all written (<out>/.chip-slice-progress.json) and cuts the rest; the outputs',
      'are those of an uninterrupted run.',
    ].join('\n'),
  )
  .requiredOption('--images <path>', 'image file, directory or s3:// prefix')
  .option('--coco <file>', 'COCO file of the images (looked up by file name under --images)')
  .requiredOption('--out <dir>', 'output directory or s3:// prefix')
  .option('--size <px>', 'slice width and height', numberOption('--size', 1, 1_000_000, true), 300)
  .option('--overlap <ratio>', 'overlap ratio in [0, 1)', overlapOption, 0.2)
  .option(
    '--min-area-ratio <ratio>',
    'keep clipped annotations with at least this area ratio',
    numberOption('--min-area-ratio', 0, 1),
    0.1,
  )
  .option('--ignore-negatives', 'leave out slices without annotations', false)
  .addOption(
    new Option('--format <format>', 'chip format (tif: georeferenced GeoTIFF)')
      .choices(['jpeg', 'png', 'tif'])
      .default('jpeg'),
  )
  .option('--quality <q>', 'JPEG quality', numberOption('--quality', 1, 100, true), 90)
  .option('--bands <list>', 'GeoTIFF bands for R,G,B, counted from 1 (e.g. 5,3,2), or one band for grey')
  .addOption(
    new Option(
      '--stretch <kind>',
      'how GeoTIFF values become 0..255 (default: percentile, or none for 8-bit input)',
    ).choices(['percentile', 'minmax', 'range', 'none']),
  )
  .option('--percentiles <low,high>', 'percentiles of the percentile stretch', '2,98')
  .option(
    '--range <min,max>',
    'fixed range for every band, or min,max,min,max,min,max for R,G,B (implies --stretch range)',
  )
  .option(
    '--gsd <metres>',
    'resample each scene to this many metres per pixel before slicing (projected CRS)',
    (value: string): number => {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
        throw new UsageError(`--gsd: expected metres per pixel > 0 but got '${value}'`);
      }
      return n;
    },
  )
  .addOption(
    new Option(
      '--resampling <method>',
      'with --gsd (default: average when coarser on both axes, else bilinear)',
    ).choices(['average', 'bilinear', 'nearest']),
  )
  .option(
    '--workers <n>',
    'worker threads for a large image (1: this thread only; default: half the cores, at most 4)',
    numberOption('--workers', 1, 64, true),
  )
  .option('--part <k/n>', 'cut only the k-th of n runs of rows of windows (1 <= k <= n)', partOption)
  .option('--json', 'print the result as JSON', false)
  .action(
    async (opts: {
      images: string;
      workers?: number;
      gsd?: number;
      resampling?: 'average' | 'bilinear' | 'nearest';
      part?: { index: number; count: number };
      coco?: string;
      out: string;
      size: number;
      overlap: number;
      minAreaRatio: number;
      ignoreNegatives: boolean;
      format: 'jpeg' | 'png' | 'tif';
      quality: number;
      bands?: string;
      stretch?: string;
      percentiles: string;
      range?: string;
      json: boolean;
    }) => {
      if (opts.resampling && opts.gsd === undefined) {
        throw new UsageError('--resampling needs --gsd (the target metres per pixel)');
      }
      if (opts.ignoreNegatives && !opts.coco) {
        throw new UsageError('--ignore-negatives needs --coco (without labels every slice is negative)');
      }
      const { parseBands, parseStretch } = await import('../raster/stretch.js');
      let bands: number[] | undefined;
      let stretch: ReturnType<typeof parseStretch>;
      try {
        bands = opts.bands === undefined ? undefined : parseBands(opts.bands);
        stretch = parseStretch(opts);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const { sliceImages } = await import('../chip/slice-images.js');
      const started = performance.now();
      // one progress line on stderr, on a terminal only, drawn with the run bars' renderer
      const { renderStageLine } = await import('./progress.js');
      let drawn = 0;
      const progress = process.stderr.isTTY
        ? {
            update: (done: number, total: number): void => {
              const now = Date.now();
              if (done < total && now - drawn < 100) return;
              drawn = now;
              const bar = {
                name: 'slice',
                tasks: total,
                done,
                skipped: 0,
                failed: 0,
                blocked: 0,
                running: 0,
              };
              const line = renderStageLine(
                { ...bar, firstStart: started + performance.timeOrigin },
                5,
                30,
                now,
              );
              process.stderr.write(`\r\x1b[2K${line}`);
            },
            done: (): void => void (drawn && process.stderr.write('\r\x1b[2K')),
          }
        : undefined;
      const interrupted = `interrupted; the finished rows of windows are recorded in ${opts.out}/.chip-slice-progress.json: run the same command to resume`;
      const result = await interruptible(interrupted, (signal) =>
        sliceImages(cliStorage(), {
          images: opts.images,
          ...(opts.coco ? { coco: opts.coco } : {}),
          out: opts.out,
          size: opts.size,
          overlap: opts.overlap,
          minAreaRatio: opts.minAreaRatio,
          ignoreNegatives: opts.ignoreNegatives,
          format: opts.format,
          quality: opts.quality,
          ...(opts.workers ? { workers: opts.workers } : {}),
          ...(opts.gsd !== undefined ? { gsd: opts.gsd } : {}),
          ...(opts.resampling ? { resampling: opts.resampling } : {}),
          ...(opts.part ? { part: opts.part } : {}),
          ...(bands ? { bands } : {}),
          ...(stretch ? { stretch } : {}),
          ...(progress ? { onProgress: progress.update } : {}),
          signal,
        }),
      ).finally(() => progress?.done());
      const seconds = (performance.now() - started) / 1000;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ...result, seconds }) + '\n');
        return;
      }
      const skipped = [
        result.zeroArea ? `${result.zeroArea} zero-area` : '',
        result.rle ? `${result.rle} RLE` : '',
      ].filter(Boolean);
      process.stdout.write(
        `chip slice: ${result.images} image(s) -> ${result.chips} chips, ${result.annotations} annotations in ${seconds.toFixed(1)} s (${(result.chips / Math.max(seconds, 1e-9)).toFixed(0)} chips/s)\n` +
          (result.resumed
            ? `  kept ${result.resumed} chips an interrupted run had written (rows of windows already finished)\n`
            : '') +
          (skipped.length ? `  skipped ${skipped.join(' and ')} annotation(s)\n` : '') +
          `  wrote ${result.annotationsUri}\n`,
      );
    },
  );

/** `geobatch chip nodata-index <dir>` */
const nodataIndexCommand = new Command('nodata-index')
  .summary('classify existing chips as all data, partial data or no data')
  .description(
    [
      'Decode every chip (PNG, JPEG, TIFF) under a folder or s3:// prefix and write',
      '<dir>/nodata-index.json: per chip its class (all data, partial data, no data)',
      'and valid fraction, plus counts. A pixel is valid when its alpha is above 0',
      '(chips with alpha), else when any band differs from --nodata.',
    ].join('\n'),
  )
  .argument('<dir>', 'folder or s3:// prefix of chips')
  .option('--nodata <value>', "no-data value of the chips' bands (0..255), or 'none'", '0')
  .option('--json', 'print the counts as JSON', false)
  .action(async (dir: string, opts: { nodata: string; json: boolean }) => {
    const text = opts.nodata.trim().toLowerCase();
    const nodata = text === 'none' ? null : Number(text);
    if (nodata !== null && (text === '' || !Number.isInteger(nodata) || nodata < 0 || nodata > 255)) {
      throw new UsageError(`--nodata: expected an integer in [0, 255] or 'none' but got '${opts.nodata}'`);
    }
    const { buildNodataIndex } = await import('../chip/nodata-index.js');
    const index = await buildNodataIndex(cliStorage(), dir, { nodata });
    if (opts.json) {
      process.stdout.write(JSON.stringify({ nodata: index.nodata, counts: index.counts }) + '\n');
      return;
    }
    const c = index.counts;
    process.stdout.write(
      `chip nodata-index: ${index.chips.length} chips: ${c['all data']} all data, ${c['partial data']} partial data, ${c['no data']} no data\n`,
    );
  });

/** `geobatch chip ...` */
export const chipCommand = new Command('chip')
  .summary('cut scenes into chips for training and inference')
  .addCommand(sliceCommand.exitOverride())
  .addCommand(nodataIndexCommand.exitOverride())
  .addCommand(gridCommand.exitOverride())
  .addCommand(locateCommand.exitOverride())
  .addCommand(retileCommand.exitOverride());
