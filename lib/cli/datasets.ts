import { Command } from 'commander';
import { interruptible, ReportedFailure } from './errors.js';
import { integerOption } from './options.js';
import { cliStorage } from './storage.js';
import { RegistryError } from '../datasets/errors.js';
import type { Registry } from '../datasets/registry.js';

const REGISTRY_HELP =
  'the dataset registry (local path, s3:// URI or http(s) URL); default: $GEOBATCH_DATASETS, else ./datasets.yaml';

async function openRegistry(registry: string | undefined): Promise<Registry> {
  const { locateRegistry, readRegistry } = await import('../datasets/registry.js');
  return readRegistry(cliStorage(), locateRegistry(registry));
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** One line of `datasets list` (files, bytes and problems with --check-files). */
interface ListRow {
  readonly tag: string;
  readonly description: string;
  readonly gsd: number;
  readonly licence: string;
  readonly files?: number;
  readonly bytes?: number;
  readonly problems?: readonly string[];
}

interface ListOptions {
  registry?: string;
  checkFiles: boolean;
  json: boolean;
}

const listCommand = new Command('list')
  .summary('list the datasets of the registry')
  .description(
    [
      'List the datasets of the registry: tag, ground sampling distance, licence and',
      'description. With --check-files, every file each dataset lists is looked up',
      '(globs and prefixes expanded, each file stat-ed: local, s3:// or https://) and',
      'compared with the size the registry records; the command fails when a file is',
      'missing or has another size.',
    ].join('\n'),
  )
  .option('--registry <file>', REGISTRY_HELP)
  .option('--check-files', 'check that every listed file exists, with its recorded size', false)
  .option('--json', 'print JSON instead of text', false)
  .action(async (opts: ListOptions) => {
    const registry = await openRegistry(opts.registry);
    const { checkFiles, resolveDataset } = await import('../datasets/files.js');
    const rows: ListRow[] = [];
    let problems = 0;
    for (const [index, dataset] of registry.datasets.entries()) {
      const row: ListRow = {
        tag: dataset.tag,
        description: dataset.description,
        gsd: dataset.gsd,
        licence: dataset.licence,
      };
      if (!opts.checkFiles) {
        rows.push(row);
        continue;
      }
      let resolved;
      try {
        resolved = await resolveDataset(cliStorage(), registry, index);
      } catch (error) {
        // a list that matches nothing is this dataset's problem: report it and check the others
        if (!(error instanceof RegistryError)) throw error;
        problems += 1;
        rows.push({ ...row, files: 0, bytes: 0, problems: [error.message] });
        continue;
      }
      const checks = await checkFiles(cliStorage(), resolved.files);
      const bad = checks.filter((check) => check.status !== 'ok');
      problems += bad.length;
      rows.push({
        ...row,
        files: checks.length,
        bytes: checks.reduce((sum, check) => sum + (check.size ?? 0), 0),
        problems: bad.map((check) =>
          check.status === 'missing'
            ? `${check.file.uri}: missing`
            : `${check.file.uri}: ${check.size} bytes, the registry records ${check.file.size}`,
        ),
      });
    }
    if (opts.json) {
      process.stdout.write(JSON.stringify({ registry: registry.uri, datasets: rows }) + '\n');
    } else {
      const width = Math.max(3, ...rows.map((row) => row.tag.length));
      for (const row of rows) {
        const found = row.problems?.length ? `, ${row.problems.length} problems` : ', all present';
        const files =
          row.files === undefined ? '' : `  ${row.files} files, ${megabytes(row.bytes ?? 0)}${found}`;
        process.stdout.write(
          `${row.tag.padEnd(width)}  ${row.gsd} m  ${row.licence}  ${row.description}${files}\n`,
        );
        for (const problem of row.problems ?? []) process.stdout.write(`  ${problem}\n`);
      }
    }
    if (problems > 0)
      throw new ReportedFailure(
        `${problems} problem${problems === 1 ? '' : 's'}: files missing, of the wrong size, or lists that match nothing`,
      );
  });

interface ShowOptions {
  registry?: string;
  json: boolean;
}

const showCommand = new Command('show')
  .summary('show one dataset and its files')
  .description('Show one dataset of the registry: its fields, and every file its lists resolve to.')
  .argument('<tag>', 'the dataset tag')
  .option('--registry <file>', REGISTRY_HELP)
  .option('--json', 'print JSON instead of text', false)
  .action(async (tag: string, opts: ShowOptions) => {
    const registry = await openRegistry(opts.registry);
    const { findDataset } = await import('../datasets/registry.js');
    const { resolveDataset } = await import('../datasets/files.js');
    const { index } = findDataset(registry, tag);
    const { dataset, files } = await resolveDataset(cliStorage(), registry, index);
    if (opts.json) {
      const { files: _facts, ...fields } = dataset;
      void _facts;
      process.stdout.write(JSON.stringify({ registry: registry.uri, ...fields, files }) + '\n');
      return;
    }
    const lines = [
      `${dataset.tag}: ${dataset.description}`,
      `  ground sampling distance: ${dataset.gsd} m`,
      `  licence: ${dataset.licence}`,
      `  source: ${dataset.source.join(', ')}`,
      `  files (${files.length}):`,
      ...files.map(
        (file) =>
          `    ${file.kind.padEnd(6)} ${file.uri}${file.size === undefined ? '' : `  ${file.size} bytes`}${file.sha256 === undefined ? '' : `  sha256 ${file.sha256}`}`,
      ),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  });

interface DownloadOptions {
  registry?: string;
  out: string;
  concurrency: number;
  json: boolean;
}

const downloadCommand = new Command('download')
  .summary('download a dataset into a directory')
  .description(
    [
      'Download every file of a dataset to <out>/<images|labels|masks>/<file name>,',
      '--concurrency files at a time. Resumable: a file already there is skipped when',
      'its sha256 (when the registry records one) or else its size matches. Each file',
      'is written under a temporary name and renamed when whole; a recorded sha256 or',
      'size is verified on the way, and a mismatch leaves nothing under the final name.',
      'A failed file does not stop the others: the summary names it and the exit code is 1.',
      '',
      'Example:',
      '  geobatch datasets download spacenet-sample --out data/',
    ].join('\n'),
  )
  .argument('<tag>', 'the dataset tag')
  .requiredOption('--out <dir>', 'where to put the files (local directory or s3:// prefix)')
  .option('--registry <file>', REGISTRY_HELP)
  .option('--concurrency <n>', 'files fetched at once', integerOption('--concurrency', 1, 64), 4)
  .option('--json', 'print a JSON summary instead of text', false)
  .action(async (tag: string, opts: DownloadOptions) => {
    const registry = await openRegistry(opts.registry);
    const { findDataset } = await import('../datasets/registry.js');
    const { downloadDataset, resolveDataset } = await import('../datasets/files.js');
    const { index } = findDataset(registry, tag);
    const resolved = await resolveDataset(cliStorage(), registry, index);
    const tty = !opts.json && process.stderr.isTTY === true;
    let done = 0;
    let total = 0;
    let bytes = 0;
    const summary = await interruptible(
      'download stopped; whole files are kept, run it again to fetch the rest',
      (signal) =>
        downloadDataset(cliStorage(), resolved, opts.out, {
          concurrency: opts.concurrency,
          signal,
          onEvent: (event) => {
            if (event.type === 'planned') total = event.files;
            else if (event.type === 'bytes') bytes += event.bytes;
            else {
              done += 1;
              if (event.action === 'failed') {
                process.stderr.write(`${tty ? '\r\x1b[K' : ''}failed: ${event.error ?? event.from}\n`);
              }
            }
            if (tty)
              process.stderr.write(`\r\x1b[Kdownload ${tag}: ${done}/${total} files, ${megabytes(bytes)}`);
          },
        }),
    );
    if (tty) process.stderr.write('\r\x1b[K');
    if (opts.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
    } else {
      process.stdout.write(
        `download ${summary.tag}: ${summary.files} files (${summary.fetched} fetched, ${summary.skipped} already there${summary.failed ? `, ${summary.failed} failed` : ''}), ${megabytes(summary.bytes)} in ${summary.seconds.toFixed(1)} s -> ${summary.out}\n`,
      );
    }
    if (summary.failed > 0) {
      throw new ReportedFailure(
        `${summary.failed} file${summary.failed === 1 ? '' : 's'} failed:\n${summary.failures.join('\n')}`,
      );
    }
  });

/** `geobatch datasets ...` */
export const datasetsCommand = new Command('datasets')
  .summary('datasets by name: list, show and download what a registry names')
  .description(
    [
      'Datasets by name, from a registry file (datasets.yaml: local, s3:// or',
      'https://), found by --registry, else $GEOBATCH_DATASETS, else',
      './datasets.yaml. A pipeline input set can name one too:',
      '  inputs: { scenes: { dataset: spacenet-sample, files: images } }',
    ].join('\n'),
  )
  .addCommand(listCommand.exitOverride())
  .addCommand(showCommand.exitOverride())
  .addCommand(downloadCommand.exitOverride());
