import { Command, Option } from 'commander';
import { UsageError } from './errors.js';
import { cliStorage } from './storage.js';

function progressWriter(enabled: boolean, what: string): ((done: number, total: number) => void) | undefined {
  if (!enabled) return undefined;
  return (done, total) => process.stderr.write(`\r\x1b[K${what} ${done}/${total}`);
}

function printWarnings(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
}

/** `geobatch dataset export` */
export const exportCommand = new Command('export')
  .summary('write a dataset in the YOLO layout the Ultralytics tools read')
  .description(
    [
      'Write a geobatch dataset (dataset.json and its COCO splits, as `dataset build`,',
      'the merge job and `dataset import` write it) to --out as YOLO:',
      '  data.yaml                  path, train, val (test), nc, names (index: name);',
      '  images/<split>/<name>      the images, copied or linked (--images);',
      '  labels/<split>/<stem>.txt  one line per object, empty when there is none:',
      '      detect:  class cx cy w h            (box centre and size / image size)',
      '      segment: class x1 y1 x2 y2 ...      (one polygon / image size)',
      'Class indices are 0-based in category id order. Coordinates have 6 decimals',
      '(7 for images over 5,000 px), so importing them back gives the same pixels to',
      '0.01 px. <name> is the file_name without folders called images or labels.',
      'The folder is written under a temporary name and renamed when complete;',
      'an existing non-empty --out is refused.',
    ].join('\n'),
  )
  .argument('<dataset>', 'dataset folder or its dataset.json (local or s3://)')
  .addOption(new Option('--format <format>', 'output format').choices(['yolo']).default('yolo'))
  .requiredOption('--out <dir>', 'the YOLO folder to create (local)')
  .addOption(
    new Option('--task <task>', 'boxes or polygons (default: segment when the dataset has polygons)').choices(
      ['detect', 'segment'],
    ),
  )
  .addOption(
    new Option(
      '--images <how>',
      'copy the images, hard-link them, or symlink them (links: local images only)',
    )
      .choices(['copy', 'link', 'symlink'])
      .default('copy'),
  )
  .option('--json', 'print the result as JSON', false)
  .action(
    async (
      dataset: string,
      opts: { out: string; task?: 'detect' | 'segment'; images: 'copy' | 'link' | 'symlink'; json: boolean },
    ) => {
      const { exportYolo } = await import('../dataset/yolo.js');
      const tty = !opts.json && process.stderr.isTTY;
      const onProgress = progressWriter(tty, 'images');
      const result = await exportYolo(cliStorage(), {
        dataset,
        out: opts.out,
        images: opts.images,
        ...(opts.task ? { task: opts.task } : {}),
        ...(onProgress ? { onProgress } : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      printWarnings(result.warnings);
      if (opts.json) {
        process.stdout.write(JSON.stringify(result) + '\n');
        return;
      }
      const lines = Object.entries(result.counts).map(
        ([split, c]) => `  ${split.padEnd(5)} ${c.images} images, ${c.objects} objects`,
      );
      process.stdout.write(
        `dataset export: YOLO ${result.task}, ${result.classes.length} classes, images ${result.images === 'copy' ? 'copied' : result.images === 'link' ? 'hard-linked' : 'symlinked'}\n` +
          `${lines.join('\n')}\n  wrote ${result.dataYaml}\n`,
      );
    },
  );

/** `geobatch dataset import` */
export const importCommand = new Command('import')
  .summary('make a geobatch dataset from a YOLO folder or a CVAT COCO export')
  .description(
    [
      'Read labels made elsewhere into a geobatch dataset in --out: train.json,',
      'val.json (test.json), labels.csv, labels.jsonl, stats.json, charts, and',
      'dataset.json last.',
      'Images are referenced where they are (imagesRoot in dataset.json).',
      '  --from yolo <dir|data.yaml>   data.yaml (path, train, val, test, names) with',
      '      images/ and labels/ as Ultralytics reads them; image sizes from the image',
      '      headers; an image without a label file has no objects.',
      '  --from cvat-coco <instances_*.json...> --images <dir>',
      "      CVAT's COCO 1.0 export (annotations/ and images/ unzipped):",
      '      RLE masks (crowd / brush) traced into polygons, attributes kept; the split',
      '      from the file name (instances_Train/Validation/Test), else --split.',
      'Bad label lines are refused with the file and line number. The folder is',
      'written under a temporary name and renamed when complete; an existing',
      'non-empty --out is refused.',
    ].join('\n'),
  )
  .argument('<input...>', 'YOLO folder or data.yaml; or CVAT instances_*.json files')
  .addOption(
    new Option('--from <format>', 'what the input is').choices(['yolo', 'cvat-coco']).makeOptionMandatory(),
  )
  .requiredOption('--out <dir>', 'the dataset folder to create (local)')
  .option('--images <dir>', "cvat-coco: the folder the file_names are relative to (the export's images/)")
  .addOption(
    new Option('--split <split>', 'cvat-coco: split of files whose name names no subset')
      .choices(['train', 'val', 'test'])
      .default('train'),
  )
  .option('--json', 'print the result as JSON', false)
  .action(
    async (
      inputs: string[],
      opts: {
        from: 'yolo' | 'cvat-coco';
        out: string;
        images?: string;
        split: 'train' | 'val' | 'test';
        json: boolean;
      },
    ) => {
      const tty = !opts.json && process.stderr.isTTY;
      const onProgress = progressWriter(tty, 'images');
      const common = { out: opts.out, ...(onProgress ? { onProgress } : {}) };
      let result;
      if (opts.from === 'yolo') {
        if (inputs.length !== 1)
          throw new UsageError(
            `--from yolo: expected one folder or data.yaml but got ${inputs.length} arguments`,
          );
        if (opts.images)
          throw new UsageError('--images: only for --from cvat-coco (YOLO images are found from data.yaml)');
        const { importYolo } = await import('../dataset/yolo.js');
        result = await importYolo(cliStorage(), inputs[0]!, common);
      } else {
        if (!opts.images)
          throw new UsageError("--from cvat-coco: --images <dir> is required (the export's images/ folder)");
        const { importCvatCoco } = await import('../dataset/cvat.js');
        result = await importCvatCoco(cliStorage(), inputs, {
          ...common,
          images: opts.images,
          split: opts.split,
        });
      }
      if (tty) process.stderr.write('\r\x1b[K');
      printWarnings(result.warnings);
      if (opts.json) {
        process.stdout.write(JSON.stringify(result) + '\n');
        return;
      }
      const lines = Object.entries(result.counts).map(
        ([split, c]) => `  ${split.padEnd(5)} ${c.images} images, ${c.annotations} annotations`,
      );
      process.stdout.write(
        `dataset import (${opts.from}): ${result.categories.length} categories\n${lines.join('\n')}\n  wrote ${result.manifest}\n`,
      );
    },
  );
