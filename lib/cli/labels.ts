import { Command } from 'commander';
import { UsageError } from './errors.js';
import { cliStorage } from './storage.js';
// types only: the labels code itself is imported when a command runs
import type { CategoryMap } from '../labels/categories.js';

/** Reads --category-map / --class-names (at most one) into a category map. */
async function loadCategories(opts: {
  categoryMap?: string;
  classNames?: string;
}): Promise<CategoryMap | undefined> {
  if (opts.categoryMap !== undefined && opts.classNames !== undefined) {
    throw new UsageError('--category-map and --class-names both define the categories: give one of them');
  }
  const { parseCategoryMap, parseClassNames } = await import('../labels/categories.js');
  const storage = cliStorage();
  if (opts.categoryMap !== undefined) {
    return parseCategoryMap((await storage.read(opts.categoryMap)).toString('utf8'), opts.categoryMap);
  }
  if (opts.classNames !== undefined) {
    return parseClassNames((await storage.read(opts.classNames)).toString('utf8'), opts.classNames);
  }
  return undefined;
}

const CATEGORY_HELP = [
  '--category-map: a JSON object from source values to categories: a name,',
  '{"id": n, "name": "..."}, an id, or null to exclude a value on purpose, e.g.',
  '  {"17": "vehicle", "18": "vehicle", "73": {"id": 5, "name": "building"}, "75": null}',
  "--class-names: one class per line, 'value:name' (xView's",
  "xview_class_labels.txt) or 'name'; ids 1..n in file order.",
  'Values no category covers are counted and reported, never silently dropped.',
].join('\n');

const xviewCommand = new Command('xview')
  .summary('xView GeoJSON (pixel boxes) to one COCO shard per image, clipped and counted')
  .description(
    [
      'Convert xView labels (GeoJSON with pixel boxes in bounds_imcoords, type_id,',
      'image_id) to COCO: one shard <image>.json per image found under --images',
      '(images without labels get empty shards), boxes clipped to their image.',
      'Features are streamed, so the ~300 MB training file needs little memory.',
      'Zero-area boxes, boxes outside their image, unmapped type ids and features',
      'of missing images are dropped and counted, on the terminal and in',
      'summary.json. Default categories: the 60 xView classes, ids 1..60.',
      '',
      CATEGORY_HELP,
    ].join('\n'),
  )
  .argument('<geojson>', 'xView GeoJSON (local path or s3:// URI), e.g. xView_train.geojson')
  .requiredOption(
    '--images <dir>',
    'folder or s3:// prefix with the images (.tif, .png, .jpg), searched recursively',
  )
  .requiredOption('--out <dir>', 'folder or s3:// prefix for the COCO shards and summary.json')
  .option(
    '--category-map <json>',
    'JSON file mapping type_id values to categories (default: the xView preset)',
  )
  .option('--class-names <file>', "text file of 'type_id:name' lines (default: the xView preset)")
  .option('--json', 'print the summary as JSON', false)
  .action(
    async (
      geojson: string,
      opts: { images: string; out: string; categoryMap?: string; classNames?: string; json: boolean },
    ) => {
      const started = performance.now();
      const storage = cliStorage();
      const categories =
        (await loadCategories(opts)) ?? (await import('../labels/categories.js')).xviewCategories();
      const { listImages } = await import('../labels/images.js');
      const { convertXview } = await import('../labels/xview.js');
      const { writeShards } = await import('../labels/coco.js');
      const { xviewSummaryJson, xviewSummaryText } = await import('../labels/summary.js');
      const { joinUri } = await import('../storage/uri.js');
      const images = await listImages(storage, opts.images);
      const tty = !opts.json && process.stderr.isTTY === true;
      const conversion = await convertXview(storage, geojson, images, categories, {
        ...(tty
          ? {
              onProgress: (f: number) =>
                process.stderr.write(`\rlabels xview: ${f.toLocaleString('en-US')} features `),
            }
          : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      await writeShards(
        storage,
        conversion.shards.map((s) => ({ uri: joinUri(opts.out, `${s.image.id}.json`), dataset: s.dataset })),
      );
      const seconds = (performance.now() - started) / 1000;
      const summary = xviewSummaryJson(conversion, { imagesLocation: opts.images, seconds });
      // the summary is written last: its presence says every shard is complete
      await storage.writeAtomic(joinUri(opts.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
      process.stdout.write(
        opts.json ? JSON.stringify(summary) + '\n' : xviewSummaryText(conversion, opts.out, seconds),
      );
    },
  );

const FORMATS_HELP = [
  'Formats, by the file name: GeoJSON (anything else); Shapefile .shp with its',
  '.dbf, .prj (its CRS; --crs when missing) and .cpg beside it, or all in a',
  '.zip; GeoPackage .gpkg (--layer TABLE, needed when it has several); and',
  "FlatGeobuf .fgb. Their CRS is the file's (the .prj WKT, gpkg_spatial_ref_sys,",
  'the FlatGeobuf header); in these, features without geometry are skipped and counted.',
].join('\n');

const geojsonCommand = new Command('geojson')
  .summary('Map polygons in any CRS (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) to COCO on one image')
  .description(
    [
      'Convert map polygons (or boxes) in any CRS to COCO annotations on one',
      "image: reprojected to the image's CRS (proj4 with built-in EPSG",
      'definitions, no network) and placed through its geotransform. Polygon',
      'segmentations, bboxes and areas in pixels; a multipolygon is one annotation',
      'with several polygons; features are clipped to the image, those outside it',
      "are dropped and counted. The labels' CRS: --crs, else the file's (GeoJSON:",
      "its legacy 'crs' member, else CRS84 as RFC 7946 says). Categories: --category NAME for all,",
      'or --category-field NAME (its distinct values, ids in sorted order, unless',
      "mapped); default: one category 'object'.",
      '',
      CATEGORY_HELP,
      '',
      FORMATS_HELP,
    ].join('\n'),
  )
  .argument('<labels>', 'labels file: .geojson/.json, .shp, .zip, .gpkg or .fgb (local path or s3:// URI)')
  .requiredOption('--image <tif>', 'the georeferenced GeoTIFF the labels belong to')
  .requiredOption('--out <coco.json>', 'COCO JSON to write')
  .option('--category-field <name>', 'feature property whose value is the category')
  .option('--category <name>', 'one category for every feature')
  .option('--category-map <json>', 'JSON file mapping --category-field values to categories')
  .option('--class-names <file>', "text file of 'value:name' lines for --category-field values")
  .option('--crs <crs>', "CRS of the labels' coordinates, e.g. EPSG:32633 (overrides the file's)")
  .option('--layer <name>', 'GeoPackage table or shapefile in a .zip (default: the only one)')
  .option('--json', 'print the summary as JSON', false)
  .action(
    async (
      geojson: string,
      opts: {
        image: string;
        out: string;
        layer?: string;
        categoryField?: string;
        category?: string;
        categoryMap?: string;
        classNames?: string;
        crs?: string;
        json: boolean;
      },
    ) => {
      const started = performance.now();
      if (opts.category !== undefined && opts.categoryField !== undefined) {
        throw new UsageError('--category and --category-field both choose the category: give one of them');
      }
      const { geojsonToCoco, parseCrsOption } = await import('../labels/geo-labels.js');
      const { cocoText } = await import('../labels/coco.js');
      const { geoLabelsSummaryText } = await import('../labels/summary.js');
      const crs = opts.crs === undefined ? undefined : parseCrsOption(opts.crs);
      const categories = await loadCategories(opts);
      const storage = cliStorage();
      const { dataset, result } = await geojsonToCoco(storage, geojson, opts.image, {
        ...(opts.categoryField !== undefined ? { categoryField: opts.categoryField } : {}),
        ...(opts.category !== undefined ? { category: opts.category } : {}),
        ...(categories ? { categories } : {}),
        ...(crs ? { crs } : {}),
        ...(opts.layer !== undefined ? { layer: opts.layer } : {}),
      });
      await storage.writeAtomic(opts.out, cocoText(dataset), { contentType: 'application/json' });
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(
        opts.json
          ? JSON.stringify({ ...result, output: opts.out, seconds }) + '\n'
          : geoLabelsSummaryText(result, opts.out, seconds),
      );
    },
  );

const maskCommand = new Command('mask')
  .summary('Map polygons (GeoJSON, Shapefile, GeoPackage, FlatGeobuf) to a uint8 mask aligned with an image')
  .description(
    [
      'Rasterise map polygons into a single-band uint8 GeoTIFF aligned pixel',
      'for pixel with the image (same size, CRS and geotransform). A pixel is',
      'burned when its centre is inside a polygon (as gdal_rasterize), or with',
      '--all-touched when the polygon touches it; holes stay holes; later',
      'features are burned over earlier ones. Values: --burn-field (integers',
      '0..255, or mapped to category ids by --category-map / --class-names),',
      'else 255. Streams by bands of rows: masks of any size fit in little memory.',
      '',
      FORMATS_HELP,
    ].join('\n'),
  )
  .argument('<labels>', 'labels file: .geojson/.json, .shp, .zip, .gpkg or .fgb (local path or s3:// URI)')
  .requiredOption('--image <tif>', 'the georeferenced GeoTIFF the mask must align with')
  .requiredOption('--out <mask.tif>', 'mask GeoTIFF to write')
  .option('--burn-field <name>', 'feature property whose value is burned (default: 255 for every polygon)')
  .option('--category-map <json>', 'JSON file mapping --burn-field values to category ids (burned)')
  .option(
    '--class-names <file>',
    "text file of 'value:name' lines: --burn-field values burn their line number",
  )
  .option('--all-touched', 'burn every pixel a polygon touches', false)
  .option('--crs <crs>', "CRS of the labels' coordinates, e.g. EPSG:32633 (overrides the file's)")
  .option('--layer <name>', 'GeoPackage table or shapefile in a .zip (default: the only one)')
  .option('--json', 'print the summary as JSON', false)
  .action(
    async (
      geojson: string,
      opts: {
        image: string;
        out: string;
        layer?: string;
        burnField?: string;
        categoryMap?: string;
        classNames?: string;
        allTouched: boolean;
        crs?: string;
        json: boolean;
      },
    ) => {
      const started = performance.now();
      const { rasterizeMask, parseCrsOption } = await import('../labels/geo-labels.js');
      const { maskSummaryText } = await import('../labels/summary.js');
      const crs = opts.crs === undefined ? undefined : parseCrsOption(opts.crs);
      const categories = await loadCategories(opts);
      if (categories && opts.burnField === undefined) {
        throw new UsageError('--category-map / --class-names map --burn-field values: give --burn-field too');
      }
      const result = await rasterizeMask(cliStorage(), geojson, opts.image, opts.out, {
        ...(opts.burnField !== undefined ? { burnField: opts.burnField } : {}),
        ...(categories ? { categories } : {}),
        allTouched: opts.allTouched,
        ...(crs ? { crs } : {}),
        ...(opts.layer !== undefined ? { layer: opts.layer } : {}),
      });
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(
        opts.json ? JSON.stringify({ ...result, seconds }) + '\n' : maskSummaryText(result, seconds),
      );
    },
  );

const osmCommand = new Command('osm')
  .summary(
    'OpenStreetMap (.osm.pbf, .osm, Overpass JSON) to per-scene GeoJSON labels and per-chip multi-labels',
  )
  .description(
    [
      'Keep the OSM elements that match tag filters, mapped to classes: closed ways',
      'and multipolygon relations (rings joined from their member ways, outer and',
      'inner) become polygons, nodes points, open ways lines when the class keeps',
      'them. An element takes the first class it matches. Writes per scene under',
      '--images <scene>.geojson (CRS84; properties class, osm_type, osm_id, tags: the',
      'matched tags) clipped to its footprint, else features.geojson; with --chips,',
      'labels.csv (chip, one 0/1 column per class) and labels.jsonl ({"chip","labels"})',
      'by spatial join with chips.geojson; summary.json last.',
      '',
      'Filters: key, key=*, key=v1|v2, key!=v1|v2, joined by &. A classes file',
      '(YAML/JSON) maps class names to an expression, a list, or {match, lines}:',
      '  building: building=*',
      '  road: { match: highway=residential|primary, lines: true }',
      "Inline: --class building:building=* --class 'road+lines:highway=residential|primary'",
      '',
      'Input: .osm.pbf (streamed, three passes; node coordinates kept only for the',
      'ways that matched), .osm XML, or a saved Overpass answer .json (out geom; or',
      'out body; >; out skel qt;).',
      '',
      'Or ask an Overpass API (off by default): --overpass-query FILE (Overpass QL',
      'with [out:json]) instead of <input>; one request at a time, a geobatch',
      'User-Agent, 429/5xx retried as Retry-After asks, answers cached by query',
      'hash under --overpass-cache (default <out>/overpass-cache).',
    ].join('\n'),
  )
  .argument('[input]', 'OSM extract .osm.pbf, OSM XML .osm, or Overpass JSON answer .json (local or s3://)')
  .requiredOption('--out <dir>', 'folder or s3:// prefix for the GeoJSON, labels.csv/jsonl and summary.json')
  .option('--classes <file>', 'YAML/JSON file mapping class names to tag filters')
  .option(
    '--class <name:expr>',
    'inline class, repeatable: NAME:EXPRESSION, NAME+lines:EXPRESSION keeps open ways',
    (v: string, prev: string[]) => [...prev, v],
    [] as string[],
  )
  .option(
    '--images <dir|glob>',
    "scene GeoTIFFs: a folder or s3:// prefix (recursive), a glob ('scenes/*.tif') or one file: one GeoJSON per scene, clipped",
  )
  .option(
    '--chips <dir>',
    'chip folder with chips.geojson (as chip slice writes): per-chip labels.csv and labels.jsonl',
  )
  .option('--overpass-query <file>', 'Overpass QL file to ask instead of reading <input>')
  .option(
    '--overpass-url <url>',
    'Overpass API interpreter endpoint',
    'https://overpass-api.de/api/interpreter',
  )
  .option('--overpass-cache <dir>', 'where Overpass answers are cached (default: <out>/overpass-cache)')
  .option('--json', 'print the summary as JSON', false)
  .action(
    async (
      inputArg: string | undefined,
      opts: {
        out: string;
        classes?: string;
        class: string[];
        images?: string;
        chips?: string;
        overpassQuery?: string;
        overpassUrl: string;
        overpassCache?: string;
        json: boolean;
      },
    ) => {
      const started = performance.now();
      if ((opts.classes === undefined) === (opts.class.length === 0)) {
        throw new UsageError(
          'give the classes either as --classes <file> or as --class NAME:EXPRESSION options (one of the two)',
        );
      }
      const { parseClassesFile, parseInlineClasses } = await import('../labels/osm-filters.js');
      const { openOsmSource } = await import('../labels/osm-elements.js');
      const { osmLabels, osmSummaryText } = await import('../labels/osm.js');
      const storage = cliStorage();
      const classes =
        opts.classes !== undefined
          ? parseClassesFile((await storage.read(opts.classes)).toString('utf8'), opts.classes)
          : parseInlineClasses(opts.class);
      let scenes: string[] | undefined;
      if (opts.images !== undefined) {
        const { expandInputs } = await import('../storage/inputs.js');
        const items = await expandInputs([opts.images], storage, {
          extensions: ['tif', 'tiff'],
          label: '--images',
        });
        scenes = items.map((i) => i.uri);
      }
      if ((inputArg === undefined) === (opts.overpassQuery === undefined)) {
        throw new UsageError(
          'give the OSM data either as <input> or as --overpass-query <file> (one of the two)',
        );
      }
      let input = inputArg ?? '';
      if (opts.overpassQuery !== undefined) {
        const { fetchOverpass } = await import('../labels/osm-overpass.js');
        const { joinUri } = await import('../storage/uri.js');
        const query = (await storage.read(opts.overpassQuery)).toString('utf8');
        input = await fetchOverpass(storage, query, {
          url: opts.overpassUrl,
          cache: opts.overpassCache ?? joinUri(opts.out, 'overpass-cache'),
          onRetry: (r) =>
            process.stderr.write(
              `labels osm: ${r.reason} from ${r.url}; retry ${r.attempt} in ${(r.delayMs / 1000).toFixed(1)} s\n`,
            ),
        });
      }
      const source = await openOsmSource(storage, input);
      const result = await osmLabels(storage, source, {
        classes,
        out: opts.out,
        ...(scenes ? { scenes } : {}),
        ...(opts.chips !== undefined ? { chips: opts.chips } : {}),
      });
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(
        opts.json ? JSON.stringify({ ...result, seconds }) + '\n' : osmSummaryText(result, seconds),
      );
    },
  );

/** `geobatch labels xview|geojson|mask|osm` */
export const labelsCommand = new Command('labels')
  .description(
    'Turn labels into training data: xView GeoJSON or map polygons to COCO, polygons to masks, OpenStreetMap to labels.',
  )
  .addCommand(xviewCommand.exitOverride())
  .addCommand(geojsonCommand.exitOverride())
  .addCommand(maskCommand.exitOverride())
  .addCommand(osmCommand.exitOverride());
