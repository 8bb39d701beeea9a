import { Command, Option } from 'commander';
import { exportCommand, importCommand } from './dataset-exchange.js';
import { UsageError } from './errors.js';
import { cliStorage } from './storage.js';

function numberArg(flag: string, check: (n: number) => boolean, expected: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || !check(n)) {
      throw new UsageError(`${flag}: expected ${expected} but got '${value}'`);
    }
    return n;
  };
}

/** `geobatch dataset build` */
const buildCommand = new Command('build')
  .summary('merge per-scene chip folders into a train/val(/test) dataset with labels, stats and pictures')
  .description(
    [
      'Merge the COCO annotations of per-scene chip folders (<scene>/annotations.json',
      'and <scene>/images/, as `chip slice` and the chip job write them) into one',
      'dataset in --out:',
      '  train.json, val.json (test.json with --test > 0)  COCO, ids renumbered 1..n,',
      '      categories unified by name (ids 1..K), each image with its scene;',
      '  labels.csv    multi-hot: file_name,split,<one 0/1 column per class>;',
      '  labels.jsonl  sparse: {"file_name","split","labels":[class names]} per chip;',
      '  stats.json, class-distribution.png, cooccurrence.png, contact-sheet.png;',
      '  dataset.json  the manifest, written last.',
      'The split is by scene, never by chip: scenes are shuffled with --seed and',
      'val gets round(n x --val) of them (at least one when there are 2 or more),',
      'test round(n x --test). One scene: it is all train and val is empty (warned).',
      'Chips are referenced where they are: file_name is relative to the folder',
      'holding the scene folders (imagesRoot in dataset.json), unless --copy-images.',
      'Each argument is a scene folder or a folder of scene folders (local or s3://).',
    ].join('\n'),
  )
  .argument('<folders...>', 'chip folders, or folders / s3:// prefixes of them')
  .requiredOption('--out <dir>', 'dataset folder (local or s3://)')
  .option(
    '--val <fraction>',
    'share of scenes in val, in (0, 1)',
    numberArg('--val', (n) => n > 0 && n < 1, 'a fraction in (0, 1)'),
    0.2,
  )
  .option(
    '--test <fraction>',
    'share of scenes in test, in [0, 1)',
    numberArg('--test', (n) => n >= 0 && n < 1, 'a fraction in [0, 1)'),
    0,
  )
  .option(
    '--seed <n>',
    'seed of the scene shuffle',
    numberArg(
      '--seed',
      (n) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff,
      'an integer in [0, 4294967295]',
    ),
    0,
  )
  .option(
    '--contact-sheet <n>',
    'chips on the contact sheet (0: none)',
    numberArg(
      '--contact-sheet',
      (n) => Number.isInteger(n) && n >= 0 && n <= 1000,
      'an integer in [0, 1000]',
    ),
    24,
  )
  .option('--copy-images', 'copy the chips into <out>/images/<scene>/ for a self-contained dataset', false)
  .addOption(
    new Option('--categories <which>', 'keep the categories with annotations, or all the shards list')
      .choices(['used', 'all'])
      .default('used'),
  )
  .option('--json', 'print the manifest as JSON', false)
  .action(
    async (
      folders: string[],
      opts: {
        out: string;
        val: number;
        test: number;
        seed: number;
        contactSheet: number;
        copyImages: boolean;
        categories: 'used' | 'all';
        json: boolean;
      },
    ) => {
      if (opts.val + opts.test >= 1) {
        throw new UsageError(
          `--val + --test: expected a sum below 1 (some scenes must stay in train) but got ${opts.val} + ${opts.test}`,
        );
      }
      const { buildDataset } = await import('../dataset/build.js');
      const started = performance.now();
      const tty = !opts.json && process.stderr.isTTY;
      const result = await buildDataset(cliStorage(), {
        inputs: folders,
        out: opts.out,
        val: opts.val,
        test: opts.test,
        seed: opts.seed,
        contactSheet: opts.contactSheet,
        copyImages: opts.copyImages,
        categories: opts.categories,
        optionNames: { val: '--val', test: '--test', seed: '--seed', contactSheet: '--contact-sheet' },
        ...(tty
          ? {
              onProgress: (phase: string, done: number, total: number) =>
                process.stderr.write(`\r\x1b[K${phase} ${done}${total ? `/${total}` : ''}`),
            }
          : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      const seconds = (performance.now() - started) / 1000;
      const m = result.manifest;
      for (const w of m.warnings) process.stderr.write(`warning: ${w}\n`);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ manifest: result.manifestUri, ...m, seconds }) + '\n');
        return;
      }
      const lines = Object.entries(m.counts).map(
        ([split, c]) =>
          `  ${split.padEnd(5)} ${c.scenes} scene(s), ${c.images} chips, ${c.annotations} annotations`,
      );
      process.stdout.write(
        `dataset build: ${m.categories.length} categories in ${seconds.toFixed(1)} s\n${lines.join('\n')}\n` +
          `  images root ${m.imagesRoot}\n  wrote ${result.manifestUri}\n`,
      );
    },
  );

/** `geobatch dataset ...` */
export const datasetCommand = new Command('dataset')
  .summary('assemble training datasets from chips; export them to YOLO, import YOLO and CVAT labels')
  .addCommand(buildCommand.exitOverride())
  .addCommand(exportCommand.exitOverride())
  .addCommand(importCommand.exitOverride());
