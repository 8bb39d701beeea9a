import { Command, Option } from 'commander';
import type { CrsRef } from '../geo/crs.js';
import { UsageError, interruptible } from './errors.js';
import { integerOption } from './options.js';
import { cliStorage } from './storage.js';

interface EvalCliOptions {
  predictions: string;
  truth: string;
  out: string;
  classField: string;
  truthCrs?: string;
  truthLayer?: string;
  images?: string;
  maxDets?: number;
  scenes: 'all' | 'predicted';
  json: boolean;
}

const f3 = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(3));

/** `geobatch eval` */
export const evalCommand = new Command('eval')
  .summary('score predictions against truth: precision, recall, F1, COCO AP, IoU, SpaceNet F1')
  .description(
    [
      'Score predictions (a `geobatch predict` output folder; or plain COCO files or GeoJSON,',
      'every score 1) against truth: COCO shards <scene>.json (the labels stages), geo-labels',
      '(GeoJSON, Shapefile .shp/.zip, GeoPackage .gpkg, FlatGeobuf .fgb) in any CRS (one per',
      'scene, or one file for all), or class masks <scene>.tif',
      '(the mask stage) for segmentation. Scenes are matched by id (file stem), classes by name.',
      'Detection: TP/FP/FN, precision, recall and F1 at IoU 0.5 (the predictions as given), COCO',
      'AP@0.5 and AP@[.5:.95] over all scores (101-point interpolation; no cap on detections per',
      'scene unless --max-dets). Segmentation: pixel IoU and F1 per class. Both: the SpaceNet F1',
      '(polygon IoU >= 0.5, one to one). Writes to --out: eval.json (last), errors.geojson (each',
      'FP and FN in CRS84), pr-curves.png or confusion.png, eval.md.',
    ].join('\n'),
  )
  .requiredOption('--predictions <dir>', 'predict output folder, or COCO / GeoJSON file or folder')
  .requiredOption(
    '--truth <dir|file>',
    'COCO shards, geo-labels (GeoJSON, .shp, .zip, .gpkg, .fgb) or masks (folder or file)',
  )
  .requiredOption('--out <dir>', 'folder for eval.json, errors.geojson, the picture and eval.md')
  .option('--class-field <name>', 'property of geo-label features naming the class', 'class')
  .option('--truth-crs <crs>', "CRS of geo-label coordinates, e.g. EPSG:32633 (overrides the file's)")
  .option('--truth-layer <name>', 'GeoPackage table (or shapefile in a .zip) of geo-label truth')
  .option('--images <dir>', 'scene rasters <scene>.tif giving the pixel grid when both sides are GeoJSON')
  .option(
    '--max-dets <n>',
    'cap detections per scene and class for AP, as COCO maxDets (default: none)',
    integerOption('--max-dets', 1, 1e9),
  )
  .addOption(
    new Option(
      '--scenes <which>',
      'all: a truth scene without predictions counts every object missed; predicted: score only predicted scenes (predict ran on a split)',
    )
      .choices(['all', 'predicted'])
      .default('all'),
  )
  .option('--json', 'print eval.json to stdout', false)
  .action(async (opts: EvalCliOptions) => {
    const [{ evaluate }, { parseCrs, CrsError }] = await Promise.all([
      import('../eval/eval.js'),
      import('../geo/crs.js'),
    ]);
    let truthCrs: CrsRef | undefined;
    if (opts.truthCrs !== undefined) {
      try {
        truthCrs = parseCrs(opts.truthCrs);
      } catch (error) {
        if (error instanceof CrsError) throw new UsageError(`--truth-crs: ${error.message}`);
        throw error;
      }
    }
    const report = await interruptible('eval interrupted; nothing written', (signal) =>
      evaluate(cliStorage(), {
        predictions: opts.predictions,
        truth: opts.truth,
        out: opts.out,
        classField: opts.classField,
        ...(truthCrs ? { truthCrs } : {}),
        ...(opts.truthLayer !== undefined ? { truthLayer: opts.truthLayer } : {}),
        ...(opts.images !== undefined ? { images: opts.images } : {}),
        ...(opts.maxDets !== undefined ? { maxDets: opts.maxDets } : {}),
        scenes: opts.scenes,
        signal,
      }),
    );
    if (opts.json) {
      process.stdout.write(JSON.stringify(report) + '\n');
      return;
    }
    const s = report.scenes;
    const lines = [`eval: ${report.task}, ${s.evaluated.length} scene(s) in ${report.seconds.toFixed(1)} s`];
    if (s.predictionsWithoutTruth.length)
      lines.push(`  predictions without truth (not scored): ${s.predictionsWithoutTruth.join(', ')}`);
    if (s.truthNotPredicted.length)
      lines.push(`  truth of scenes not predicted (not scored): ${s.truthNotPredicted.join(', ')}`);
    if (s.truthWithoutPredictions.length)
      lines.push(
        `  truth without predictions (all false negatives): ${s.truthWithoutPredictions.join(', ')}`,
      );
    const d = report.overall.detection;
    if (d) {
      lines.push(
        `  TP ${d.tp}, FP ${d.fp}, FN ${d.fn}: precision ${f3(d.precision)}, recall ${f3(d.recall)}, F1 ${f3(d.f1)} at IoU 0.5`,
        `  AP@0.5 ${f3(d.ap50)}, AP@[.5:.95] ${f3(d.ap)}`,
      );
    }
    const g = report.overall.segmentation;
    if (g) lines.push(`  mean IoU ${f3(g.meanIou)}, pixel accuracy ${f3(g.pixelAccuracy)}`);
    const sn = report.overall.spacenet;
    if (sn) lines.push(`  SpaceNet F1 ${f3(sn.f1)} (TP ${sn.tp}, FP ${sn.fp}, FN ${sn.fn})`);
    lines.push(`  wrote ${report.outputs.report} (and ${Object.values(report.outputs).length - 1} more)`);
    process.stdout.write(lines.join('\n') + '\n');
  });
