import { Command, Option } from 'commander';
import { interruptible, UsageError } from './errors.js';
import { cliStorage } from './storage.js';

type GridName = 'ard' | 'webmercator';
type Format = 'png' | 'jpeg' | 'tif';

function levelOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1 || n > 24) {
    throw new UsageError(`--level: expected an integer in [1, 24] but got '${value}'`);
  }
  return n;
}

function tileSizeOption(value: string): number {
  if (value !== '256' && value !== '512') {
    throw new UsageError(`--tile-size: expected 256 or 512 but got '${value}'`);
  }
  return Number(value);
}

function ratioOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    throw new UsageError(`--min-area-ratio: expected a number in [0, 1] but got '${value}'`);
  }
  return n;
}

function qualityOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1 || n > 100) {
    throw new UsageError(`--quality: expected an integer in [1, 100] but got '${value}'`);
  }
  return n;
}

/** `geobatch chip grid` */
export const gridCommand = new Command('grid')
  .summary('cut a georeferenced scene into Maxar ARD or web-mercator tile-grid chips')
  .description(
    [
      'Cut a GeoTIFF (local or s3://, read by byte ranges) into one chip per cell of a',
      'tile grid that the scene overlaps:',
      "  ard          Maxar ARD cells of the scene's UTM zone at --level (cell side",
      '               20,480,000 m / 2^level),',
      '               <out>/Z<zone>-<quadkey>_<catalogid>.<ext>',
      '  webmercator  XYZ tiles at zoom --level (EPSG:3857), <out>/<z>/<x>/<y>.<ext>',
      'Chips are --tile-size px square: 512 for ARD, 256 (the XYZ convention) for web',
      'mercator by default. A scene already on the grid (same CRS and pixel lattice) is',
      'cut into pure pixel windows; anything else is warped by inverse mapping (max',
      'error 0.125 px) with --resampling; chips coarser than the source sample its',
      'overview closest to their resolution, never coarser (as gdalwarp -ovr AUTO).',
      'Bands become 8-bit RGB as `geobatch rgb` makes them (2-98 percentile stretch',
      'for >8-bit data) unless --keep-values.',
      'No-data is alpha 0 (PNG, GeoTIFF) or 0 (JPEG). Writes <out>/nodata-index.json',
      '(class and valid fraction of every cell, `written: false` for empty cells not',
      'written), <out>/chips.geojson and, with --coco, <out>/annotations.json.',
      'A rerun with the same options over a finished output does nothing; after an',
      'interruption it keeps the cells finished (<out>/.chip-grid-progress.json) and',
      'does the rest.',
    ].join('\n'),
  )
  .requiredOption('--image <tif>', 'georeferenced GeoTIFF or JPEG 2000 (.jp2), local path or s3:// URI')
  .addOption(new Option('--grid <grid>', 'tile grid').choices(['ard', 'webmercator']).makeOptionMandatory())
  .requiredOption('--level <n>', 'ARD level or web-mercator zoom, 1..24', levelOption)
  .requiredOption('--out <dir>', 'output directory or s3:// prefix')
  .option('--tile-size <px>', 'chip size, 256 or 512 (default: 512 ard, 256 webmercator)', tileSizeOption)
  .addOption(new Option('--format <format>', 'chip format').choices(['png', 'jpeg', 'tif']).default('png'))
  .addOption(
    new Option('--resampling <method>', 'resampling of warped chips')
      .choices(['nearest', 'bilinear'])
      .default('nearest'),
  )
  .option('--catalog-id <id>', "ARD chips' catalog id (default: the image's file stem, letters and digits)")
  .option('--no-skip-empty', 'also write chips without valid pixels')
  .option(
    '--no-overviews',
    "always sample full resolution (default: chips coarser than the source sample the source's overview closest to their resolution, never coarser, as gdalwarp does)",
  )
  .option('--keep-values', 'GeoTIFF chips with every band and the source values (needs --format tif)', false)
  .option(
    '--coco <file>',
    "COCO annotations in the scene's pixels (image matched by file name, or the only one)",
  )
  .option(
    '--min-area-ratio <ratio>',
    'keep clipped annotations with at least this area ratio',
    ratioOption,
    0.1,
  )
  .option('--quality <q>', 'JPEG quality', qualityOption, 90)
  .option('--json', 'print the result as JSON', false)
  .action(
    async (opts: {
      image: string;
      grid: GridName;
      level: number;
      out: string;
      tileSize?: number;
      format: Format;
      resampling: 'nearest' | 'bilinear';
      catalogId?: string;
      skipEmpty: boolean;
      overviews: boolean;
      keepValues: boolean;
      coco?: string;
      minAreaRatio: number;
      quality: number;
      json: boolean;
    }) => {
      if (opts.keepValues && opts.format !== 'tif') {
        throw new UsageError(
          `--keep-values needs --format tif (PNG and JPEG chips are 8-bit RGB) but got --format ${opts.format}`,
        );
      }
      if (opts.catalogId !== undefined && !/^[A-Za-z0-9]+$/.test(opts.catalogId)) {
        throw new UsageError(`--catalog-id: expected letters and digits only but got '${opts.catalogId}'`);
      }
      if (opts.catalogId !== undefined && opts.grid !== 'ard') {
        throw new UsageError('--catalog-id applies to --grid ard only (web-mercator chips are named z/x/y)');
      }
      const { chipGrid } = await import('../chip/grid.js');
      const started = performance.now();
      const showProgress = !opts.json && process.stderr.isTTY;
      let lastDraw = 0;
      const interrupted = `interrupted; the finished cells are recorded in ${opts.out}/.chip-grid-progress.json: run the same command to resume`;
      const result = await interruptible(interrupted, (signal) =>
        chipGrid(cliStorage(), {
          signal,
          image: opts.image,
          out: opts.out,
          grid: opts.grid,
          level: opts.level,
          ...(opts.tileSize !== undefined ? { tileSize: opts.tileSize } : {}),
          format: opts.format,
          resampling: opts.resampling,
          skipEmpty: opts.skipEmpty,
          overviews: opts.overviews,
          keepValues: opts.keepValues,
          ...(opts.catalogId !== undefined ? { catalogId: opts.catalogId } : {}),
          ...(opts.coco !== undefined ? { coco: opts.coco } : {}),
          minAreaRatio: opts.minAreaRatio,
          quality: opts.quality,
          onProgress: (done, total) => {
            if (!showProgress) return;
            const now = Date.now();
            if (done < total && now - lastDraw < 100) return;
            lastDraw = now;
            const width = 30;
            const filled = Math.round((done / total) * width);
            process.stderr.write(
              `\r\x1b[2Kchip grid ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${done}/${total} cells${done === total ? '\n' : ''}`,
            );
          },
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      if (opts.json) {
        process.stdout.write(JSON.stringify({ ...result, seconds }) + '\n');
        return;
      }
      if (result.alreadyDone) {
        process.stdout.write(`chip grid: ${result.indexUri} is complete for these options; nothing to do\n`);
        return;
      }
      const c = result.counts;
      process.stdout.write(
        `chip grid: ${result.cells} ${result.grid} cells at level ${result.level} -> ${result.written} chips of ${result.tileSize} px in ${seconds.toFixed(1)} s (${(result.cells / Math.max(seconds, 1e-9)).toFixed(1)} cells/s)\n` +
          `  ${c['all data']} all data, ${c['partial data']} partial data, ${c['no data']} no data; ${result.windows} pure windows, ${result.warped} warped (max transform error ${result.maxTransformError.toExponential(2)} px)\n` +
          (result.overview
            ? `  sampled overview ${result.overview.index} (${result.overview.width} x ${result.overview.height}, 1/${result.overview.factor[0].toFixed(2)} of full resolution)\n`
            : '') +
          (result.resumed
            ? `  kept ${result.resumed} cells an interrupted run had finished (their pixels not read again)\n`
            : '') +
          (result.annotationsUri ? `  ${result.annotations} annotations -> ${result.annotationsUri}\n` : '') +
          `  wrote ${result.indexUri}\n`,
      );
    },
  );

/** `geobatch chip locate <chip>` */
export const locateCommand = new Command('locate')
  .summary('map a grid chip name back to its cell bounds and source scene')
  .description(
    [
      'Parse an ARD chip name (Z<zone>-<quadkey>_<catalogid>[.ext]) or a web-mercator',
      'tile path (<z>/<x>/<y>[.ext]) and print the cell: its bounds in the grid CRS',
      '(UTM for ARD, EPSG:3857 for tiles) and in lon/lat, its level and cell size.',
      'With --sources, also list the GeoTIFFs under that folder or s3:// prefix that',
      'hold the cell (ARD: those whose file stem, letters and digits only, is the',
      'catalog id) and the pixel window the cell covers in each.',
    ].join('\n'),
  )
  .argument('<chip>', 'chip name or path')
  .option('--sources <dir>', 'folder or s3:// prefix of source scenes')
  .option('--json', 'print the result as JSON', false)
  .action(async (chip: string, opts: { sources?: string; json: boolean }) => {
    const { locateChip } = await import('../chip/locate.js');
    const loc = await locateChip(
      cliStorage(),
      chip,
      opts.sources !== undefined ? { sources: opts.sources } : {},
    );
    if (opts.json) {
      process.stdout.write(JSON.stringify(loc) + '\n');
      return;
    }
    const b = loc.bounds;
    const ll = loc.lonLat;
    const lines = [
      `${loc.chip}: ${loc.grid} cell ${loc.cell} (quadkey ${loc.quadkey}), level ${loc.level}, cell size ${loc.cellSize} m`,
      `  EPSG:${loc.epsg}: x ${b.xmin} .. ${b.xmax}, y ${b.ymin} .. ${b.ymax}`,
      `  lon ${ll.west} .. ${ll.east}, lat ${ll.south} .. ${ll.north}`,
    ];
    if (loc.catalogId) lines.push(`  catalog id ${loc.catalogId}`);
    if (loc.sources) {
      if (loc.sources.length === 0) lines.push(`  no source under ${opts.sources} holds this cell`);
      for (const s of loc.sources) {
        const w = s.window;
        lines.push(
          `  source ${s.uri}: pixels col ${w.col}..${w.col + w.width}, row ${w.row}..${w.row + w.height}${s.whole ? '' : ' (part of the cell)'}`,
        );
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  });
