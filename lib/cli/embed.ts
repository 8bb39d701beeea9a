import { Command, Option } from 'commander';
import { interruptible } from './errors.js';
import { numberOption } from './options.js';
import { renderStageLine } from './progress.js';
import { cliStorage } from './storage.js';

interface EmbedCliOptions {
  model: string;
  chips: string;
  out: string;
  batchSize?: number;
  limit?: number;
  device?: 'cpu' | 'cuda';
  json: boolean;
}

/** `geobatch embed` */
export const embedCommand = new Command('embed')
  .summary("one L2-normalised vector per chip from a trained model's embedding, for similarity search")
  .description(
    [
      'Run every chip of a dataset (a dataset build / merge folder: train, val and test',
      'splits) or of chip folders (chip slice output: <scene>/images/ + annotations.json,',
      "or a folder of them) through a trained classifier's 'embedding' output: its",
      'pooled backbone features (512 values for resnet18, 2048 for resnet50),',
      'L2-normalised. Chips are read as the trainer read them (RGB, resized to the',
      'network input with Pillow-exact bilinear) and run in batches with ONNX Runtime.',
      '',
      'Writes <out>/vectors.f32 (count x dim little-endian float32, row i = chip i,',
      'unit length), <out>/chips.jsonl (row i: id, name, image, source scene, window',
      '[x, y, w, h], CRS84 footprint from chips.geojson, split, labels) and, last,',
      '<out>/embed.json (model, its SHA-256, dim, count, metric cosine). A rerun with',
      'the same model and chips does nothing. geobatch similar searches the folder.',
      '',
      'Detection and segmentation models have no embedding output: train a',
      'classification model (--task classification) on the same dataset to embed.',
    ].join('\n'),
  )
  .requiredOption('--model <path>', 'train output folder, bundle.json or model.onnx (local or s3://)')
  .requiredOption('--chips <path>', 'dataset folder (or dataset.json), chip folder or folder of chip folders')
  .requiredOption('--out <dir>', 'output folder or s3:// prefix')
  .option('--batch-size <n>', 'chips per model run (default 16)', numberOption('--batch-size', 1, 1024, true))
  .option(
    '--limit <n>',
    'embed only the first n chips',
    numberOption('--limit', 1, Number.MAX_SAFE_INTEGER, true),
  )
  .addOption(
    new Option('--device <device>', 'execution provider (default: GEOBATCH_DEVICE, else cpu)').choices([
      'cpu',
      'cuda',
    ]),
  )
  .option('--json', 'print a JSON summary', false)
  .action(async (opts: EmbedCliOptions) => {
    const { embedChips } = await import('../embed/embed.js');
    const storage = cliStorage();
    const started = performance.now();
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    let drawn = 0;
    const draw = (done: number, total: number): void => {
      if (!process.stderr.isTTY) return;
      const now = Date.now();
      if (done < total && now - drawn < 100) return;
      drawn = now;
      const bar = { name: 'embed', tasks: total, done, skipped: 0, failed: 0, blocked: 0, running: 0 };
      process.stderr.write(
        `\r\x1b[2K${renderStageLine({ ...bar, firstStart: started + performance.timeOrigin }, 6, 30, now)}`,
      );
    };
    const result = await interruptible(
      'interrupted; nothing was written: run the same command again',
      (signal) =>
        embedChips(storage, {
          model: opts.model,
          chips: opts.chips,
          out: opts.out,
          ...(opts.batchSize ? { batch: opts.batchSize } : {}),
          ...(opts.limit ? { limit: opts.limit } : {}),
          ...(opts.device ? { device: opts.device } : {}),
          log,
          signal,
          onProgress: draw,
        }).finally(() => void (drawn && process.stderr.isTTY && process.stderr.write('\r\x1b[2K'))),
    );
    const m = result.manifest;
    if (opts.json) {
      process.stdout.write(
        JSON.stringify({
          out: result.out,
          skipped: result.skipped,
          input: result.input,
          count: m.count,
          dim: m.dim,
          model: m.model,
          modelSha256: m.modelSha256,
          device: result.device,
          seconds: result.seconds,
          chipsPerSecond: result.chipsPerSecond,
          outputs: result.outputs,
        }) + '\n',
      );
      return;
    }
    process.stdout.write(
      result.skipped
        ? `embed: ${m.count} chips already embedded with this model in ${result.out}; nothing to do\n`
        : `embed: ${m.count} chips -> ${m.dim}-dim unit vectors in ${result.seconds.toFixed(1)} s (${result.chipsPerSecond.toFixed(1)} chips/s on ${result.device}) -> ${result.out}\n`,
    );
  });
