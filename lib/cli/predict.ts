import { Command, Option } from 'commander';
import { interruptible } from './errors.js';
import { numberOption, overlapOption, partOption } from './options.js';
import { renderStageLine } from './progress.js';
import { cliStorage } from './storage.js';

interface PredictCliOptions {
  model: string;
  images: string;
  out: string;
  task?: 'detection' | 'segmentation' | 'classification';
  windowSize?: number;
  overlap?: number;
  batch?: number;
  merge?: 'nms' | 'nmm' | 'greedy-nmm' | 'none';
  matchMetric?: 'iou' | 'ios';
  matchThreshold?: number;
  classAgnostic?: boolean;
  keepRaw: boolean;
  scoreThreshold?: number;
  blend?: 'average' | 'edge';
  cog: boolean;
  device?: 'cpu' | 'cuda';
  lowMemory: boolean;
  part?: { index: number; count: number };
  json: boolean;
}

/** `geobatch predict` */
export const predictCommand = new Command('predict')
  .summary('apply a trained model to whole scenes (sliced inference), with georeferenced results')
  .description(
    [
      'Apply a trained model (a train output folder, its bundle.json or its model.onnx)',
      'to scenes of any size: a GeoTIFF, JPEG or PNG file, a folder, a glob or an',
      's3:// prefix. Each scene is cut into the windows the training chips were cut',
      'with (bundle.json; --window-size, --overlap), read row of windows by row of',
      'windows (byte ranges on s3://, never whole) and converted to 8-bit RGB exactly',
      'as the chips were; each window is resized to the network input as the trainer',
      'resized its chips and run with ONNX Runtime (--device cuda uses the CUDA',
      'execution provider where it is installed, e.g. the GPU image).',
      '',
      'Per scene <out>/<scene>.predict.json (written last: a rerun skips the scene),',
      'and by task:',
      '  detection       <scene>.geojson (CRS84, class, score, pixel bbox) and',
      '                  <scene>.coco.json (COCO results); boxes of overlapping',
      '                  windows merged with --merge (greedy-nmm, nmm, nms or none)',
      '                  by --match-metric (ios: intersection over the smaller box,',
      '                  or iou) above --match-threshold, per class unless',
      '                  --class-agnostic; --keep-raw adds <scene>.raw.geojson.',
      '  segmentation    <scene>.classes.tif (category ids, 0 background, 255 no-data;',
      "                  the scene's size, geotransform and CRS; tiled, DEFLATE),",
      '                  logits of overlapping windows blended (--blend average or',
      "                  edge: a weight falling off towards a window's edge);",
      '                  <scene>.geojson: each class region as a polygon (CRS84).',
      '  classification  <scene>.scores.csv and <scene>.geojson (a feature per window).',
      'Ungeoreferenced scenes get no GeoJSON. Windows without a valid pixel (all',
      'no-data) are not run; an all no-data scene gives empty predictions and a warning.',
      '',
      'Interrupted, it keeps the finished rows of windows (<out>/.partial/<scene>/)',
      'and a rerun computes the rest. --part k/n computes only the k-th of n runs of',
      'rows of windows (one of n Batch tasks over a huge scene); the part that finds',
      'all n parts done joins them into the same files as a one-pass run.',
    ].join('\n'),
  )
  .requiredOption('--model <path>', 'train output folder, bundle.json or model.onnx (local or s3://)')
  .requiredOption('--images <path>', 'scene file, folder, glob or s3:// prefix')
  .requiredOption('--out <dir>', 'output folder or s3:// prefix')
  .addOption(
    new Option('--task <task>', 'refuse a model of another task').choices([
      'detection',
      'segmentation',
      'classification',
    ]),
  )
  .option(
    '--window-size <px>',
    "window size (default: the training chips')",
    numberOption('--window-size', 1, 100_000, true),
  )
  .option('--overlap <ratio>', "window overlap in [0, 1) (default: the training chips')", overlapOption)
  .option(
    '--batch <n>',
    'windows per model run when the model allows it (default 8)',
    numberOption('--batch', 1, 1024, true),
  )
  .addOption(
    new Option('--merge <method>', 'detection: merging across windows (default greedy-nmm)').choices([
      'nms',
      'nmm',
      'greedy-nmm',
      'none',
    ]),
  )
  .addOption(
    new Option('--match-metric <metric>', 'detection: overlap measure (default ios)').choices(['iou', 'ios']),
  )
  .option(
    '--match-threshold <t>',
    'detection: boxes match above this overlap (default 0.5)',
    numberOption('--match-threshold', 0, 1),
  )
  .option('--class-agnostic', 'detection: merge boxes of different classes too')
  .option('--keep-raw', 'detection: also write every per-window detection', false)
  .option(
    '--score-threshold <t>',
    "drop scores below it (default: the bundle's, chosen on validation)",
    numberOption('--score-threshold', 0, 1),
  )
  .addOption(
    new Option('--blend <mode>', 'segmentation: logit blending (default average)').choices([
      'average',
      'edge',
    ]),
  )
  .option(
    '--cog',
    'segmentation: write the class raster as a Cloud Optimized GeoTIFF (nearest overviews, class ids kept)',
    false,
  )
  .addOption(
    new Option('--device <device>', 'execution provider (default: GEOBATCH_DEVICE, else cpu)').choices([
      'cpu',
      'cuda',
    ]),
  )
  .option(
    '--low-memory',
    'ONNX Runtime without its CPU memory arena: about a third less memory, about a fifth slower',
    false,
  )
  .option('--part <k/n>', 'compute only the k-th of n runs of rows of windows of each scene', partOption)
  .option('--json', 'print a JSON summary', false)
  .action(async (opts: PredictCliOptions) => {
    const { expandInputs } = await import('../storage/inputs.js');
    const { openPredictor, predictScene } = await import('../predict/predict.js');
    const storage = cliStorage();
    const scenes = await expandInputs([opts.images], storage, {
      extensions: ['tif', 'tiff', 'jp2', 'png', 'jpg', 'jpeg'],
      label: '--images',
    });
    const started = performance.now();
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    const merge = {
      ...(opts.merge ? { method: opts.merge } : {}),
      ...(opts.matchMetric ? { metric: opts.matchMetric } : {}),
      ...(opts.matchThreshold !== undefined ? { threshold: opts.matchThreshold } : {}),
      ...(opts.classAgnostic ? { classAgnostic: true } : {}),
    };
    let drawn = 0;
    const draw = (name: string, done: number, total: number): void => {
      if (!process.stderr.isTTY) return;
      const now = Date.now();
      if (done < total && now - drawn < 100) return;
      drawn = now;
      const bar = { name, tasks: total, done, skipped: 0, failed: 0, blocked: 0, running: 0 };
      process.stderr.write(
        `\r\x1b[2K${renderStageLine({ ...bar, firstStart: started + performance.timeOrigin }, 12, 30, now)}`,
      );
    };
    const interrupted = `interrupted; the finished rows of windows are kept under ${opts.out}/.partial/: run the same command to resume`;
    const results = await interruptible(interrupted, async (signal) => {
      const predictor = await openPredictor(storage, opts.model, {
        ...(opts.task ? { task: opts.task } : {}),
        ...(opts.batch ? { batch: opts.batch } : {}),
        ...(opts.device ? { device: opts.device } : {}),
        lowMemory: opts.lowMemory,
        log,
        signal,
      });
      try {
        const out = [];
        for (const scene of scenes) {
          const name = scene.id.length > 12 ? `${scene.id.slice(0, 11)}…` : scene.id;
          const result = await predictScene(storage, scene.uri, {
            model: predictor,
            out: opts.out,
            id: scene.id,
            ...(opts.windowSize ? { windowSize: opts.windowSize } : {}),
            ...(opts.overlap !== undefined ? { overlap: opts.overlap } : {}),
            merge,
            keepRaw: opts.keepRaw,
            ...(opts.scoreThreshold !== undefined ? { scoreThreshold: opts.scoreThreshold } : {}),
            ...(opts.blend ? { blend: opts.blend } : {}),
            ...(opts.cog ? { cog: true } : {}),
            ...(opts.part ? { part: opts.part } : {}),
            signal,
            log,
            onProgress: (done, total) => draw(name, done, total),
          }).finally(() => void (drawn && process.stderr.isTTY && process.stderr.write('\r\x1b[2K')));
          for (const w of result.warnings) log(`geobatch: warning: ${w}`);
          out.push(result);
        }
        return out;
      } finally {
        await predictor.close();
      }
    });
    const seconds = (performance.now() - started) / 1000;
    if (opts.json) {
      process.stdout.write(JSON.stringify({ scenes: results, seconds }) + '\n');
      return;
    }
    const lines = results.map((r) => {
      const what =
        r.task === 'detection'
          ? `${String(r.counts.detections ?? 0)} detections (${String(r.counts.raw ?? 0)} before merging)`
          : r.task === 'classification'
            ? `${r.windows} windows scored`
            : `class raster of ${r.width} x ${r.height} px`;
      const how = r.skipped
        ? 'done by an earlier run, skipped'
        : `${r.computed} windows in ${r.seconds.toFixed(1)} s (${r.windowsPerSecond.toFixed(1)} windows/s on ${r.device})${r.resumedRows ? `, ${r.resumedRows} row(s) of windows kept from an interrupted run` : ''}`;
      return r.status === 'part'
        ? `  ${r.id}: part done (${how}); the other parts are still missing`
        : `  ${r.id}: ${what}; ${how}`;
    });
    process.stdout.write(
      `predict: ${results.length} scene(s) in ${seconds.toFixed(1)} s -> ${opts.out}\n${lines.join('\n')}\n`,
    );
  });
