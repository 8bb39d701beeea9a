/** `geobatch cp` and `geobatch sync`: files between local paths and S3, in every direction. */
import { Command } from 'commander';
import type { Storage } from '../storage/types.js';
import type { TransferEvent, TransferOptions, TransferSummary } from '../storage/sync.js';
import { UsageError, interruptible } from './errors.js';
import { collect, integerOption } from './options.js';
import { cliStorage } from './storage.js';

const MiB = 1024 * 1024;

interface TransferCliOptions {
  recursive?: boolean;
  concurrency: number;
  dryRun: boolean;
  include?: string[];
  exclude?: string[];
  delete?: boolean;
  sizeOnly?: boolean;
  partSize?: number;
  json: boolean;
}

const SEMANTICS = [
  'Sources and destinations: local paths, file:// or s3://bucket/prefix, any',
  'direction (local to S3, S3 to local, S3 to S3, local to local). Every file is',
  'written whole or not at all (a temporary name and a rename locally, a',
  'completed upload on S3; files above --part-size go up in parts), so an',
  'interrupted run leaves no partial file and a rerun finishes the job. A missing',
  'source, a missing bucket or a permission failure stops the run with one line;',
  'files copied until then are complete.',
  '',
  'Filters (paths relative to the source root): with --include, only matching',
  'files are taken; --exclude leaves matching files out (and sync --delete never',
  "deletes them). A pattern without '/' also matches the file name in any",
  "directory: '*.tif' takes a/b/c.tif. Globs: '*' and '?' within a path segment,",
  "'**' across segments, [abc], {a,b}.",
].join('\n');

const COMPARE = [
  'Unchanged files (skipped): same size and same content as far as S3 ETags tell,',
  'without downloading: S3 to S3, the same ETag (or a destination geobatch copied',
  "from an object with the source's ETag); local and S3, the local file's MD5, or",
  'for a multipart ETag (<md5>-<parts>) its multipart ETag for a part size that',
  'fits (--part-size, the common 5/8/16/64/100 MiB ... and the size split',
  'evenly); local to local, the same MD5. Local files are read to hash them; S3',
  'is listed, not downloaded. An ETag that is not an MD5 (SSE-KMS, SSE-C objects)',
  'or an unknown part size makes the file copy again, which is never wrong.',
  '--size-only compares sizes alone (reads nothing). Modification times are not',
  'used: an S3 time is the upload time.',
].join('\n');

function transferCommand(name: 'cp' | 'sync'): Command {
  const sync = name === 'sync';
  const command = new Command(name)
    .argument('<source>', 'local path, file:// or s3:// URI')
    .argument('<destination>', 'local path, file:// or s3:// URI');
  if (sync) {
    command
      .summary('copy a directory tree or prefix, only what is missing or changed (local <-> S3)')
      .description(
        [
          'Make <destination> hold every file under <source>: copies the files missing',
          'at the destination or different from the source, skips the rest; with',
          '--delete, also removes destination files the source does not have. Run it',
          'again after an interruption to go on.',
          '',
          SEMANTICS,
          '',
          COMPARE,
        ].join('\n'),
      )
      .option('--delete', 'remove destination files under the root that the source does not have', false)
      .option('--size-only', 'take files of the same size as unchanged (reads nothing)', false);
  } else {
    command
      .summary('copy a file, or with --recursive a directory tree or prefix (local <-> S3)')
      .description(
        [
          'Copy one file to <destination> (a directory, a path ending in / or a bucket',
          'gets the source file name), or with --recursive every file under <source> to',
          'the same relative path under <destination>, like `aws s3 cp --recursive`.',
          'Every selected file is copied, changed or not: `geobatch sync` copies only',
          'what changed.',
          '',
          SEMANTICS,
        ].join('\n'),
      )
      .option('-r, --recursive', 'copy every file under the source directory or prefix', false);
  }
  return command
    .option(
      '--concurrency <n>',
      'files transferred at once (each big upload also sends up to 4 parts at once)',
      integerOption('--concurrency', 1, 256),
      8,
    )
    .option('--include <glob>', 'take only files matching the glob (repeatable)', collect)
    .option('--exclude <glob>', 'leave out files matching the glob (repeatable)', collect)
    .option('--dry-run', 'print what would be copied and deleted, change nothing', false)
    .option(
      '--part-size <MiB>',
      'multipart upload part size for S3 destinations, in MiB (files larger go up in parts)',
      integerOption('--part-size', 8, 5120),
    )
    .option('--json', 'print a JSON summary (and, with --dry-run, the planned actions)', false)
    .action(async (source: string, destination: string, opts: TransferCliOptions) => {
      await runTransfer(name, source, destination, opts);
    });
}

async function runTransfer(
  name: 'cp' | 'sync',
  source: string,
  destination: string,
  opts: TransferCliOptions,
): Promise<void> {
  const [{ transfer }, { createStorage }] = await Promise.all([
    import('../storage/sync.js'),
    import('../storage/index.js'),
  ]);
  for (const [flag, globs] of [
    ['--include', opts.include],
    ['--exclude', opts.exclude],
  ] as const) {
    if (globs?.some((glob) => glob.trim() === '')) {
      throw new UsageError(`${flag}: expected a glob such as '*.tif' but got ''`);
    }
  }
  const storage: Storage =
    opts.partSize === undefined
      ? cliStorage()
      : createStorage({
          s3Options: { partSize: opts.partSize * MiB, multipartThreshold: opts.partSize * MiB },
        });
  const progress = progressLine(name, opts.json || !process.stderr.isTTY);
  const planned: { action: string; from?: string; to: string; size: number }[] = [];
  let copiedSoFar = 0;
  const onEvent = (event: TransferEvent): void => {
    progress.onEvent(event);
    if (event.type !== 'file') return;
    if (event.action === 'copy') copiedSoFar += 1;
    if (opts.dryRun && event.action !== 'skip') {
      if (opts.json) {
        const { action, from, to, size } = event;
        planned.push(from === undefined ? { action, to, size } : { action, from, to, size });
      } else
        process.stdout.write(
          event.action === 'copy'
            ? `(dry run) copy ${event.from ?? ''} -> ${event.to}\n`
            : `(dry run) delete ${event.to}\n`,
        );
    }
  };
  const options: TransferOptions = {
    mode: name === 'sync' ? 'sync' : 'copy',
    recursive: opts.recursive === true,
    concurrency: opts.concurrency,
    dryRun: opts.dryRun,
    include: opts.include ?? [],
    exclude: opts.exclude ?? [],
    delete: opts.delete === true,
    compare: opts.sizeOnly === true ? 'size' : 'content',
    partSize: (opts.partSize ?? 8) * MiB,
    onEvent,
  };
  const resume =
    name === 'sync'
      ? 'run the same command to go on'
      : 'run it again, or use geobatch sync to copy only the rest';
  let summary: TransferSummary;
  try {
    summary = await interruptible(`${name} interrupted; the files copied are whole: ${resume}`, (signal) =>
      transfer(storage, source, destination, { ...options, signal }),
    );
  } catch (error) {
    progress.close();
    if (copiedSoFar > 0 && !opts.dryRun && !opts.json) {
      process.stderr.write(`geobatch: ${copiedSoFar} file(s) were copied whole before this stopped\n`);
    }
    throw error;
  }
  progress.close();
  if (opts.json) {
    process.stdout.write(JSON.stringify(opts.dryRun ? { ...summary, planned } : summary) + '\n');
    return;
  }
  process.stdout.write(`${summaryLine(name, summary)}\n`);
}

/** `sync: 200 files: 150 copied, 50 skipped, 0 deleted; 1.20 GB in 12.3 s (97.6 MB/s)` */
export function summaryLine(name: string, s: TransferSummary): string {
  const what = `${s.copied} ${s.dryRun ? 'to copy' : 'copied'}, ${s.skipped} skipped, ${s.deleted} ${s.dryRun ? 'to delete' : 'deleted'}`;
  const rate = s.dryRun ? '' : ` (${s.megabytesPerSecond.toFixed(1)} MB/s)`;
  return `${name}${s.dryRun ? ' (dry run)' : ''}: ${s.files} file(s): ${what}; ${formatBytes(s.bytes)} in ${s.seconds.toFixed(1)} s${rate}`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

/** One line on stderr redrawn at most 10 times a second (terminal only), in the style of run's bars. */
function progressLine(name: string, quiet: boolean): { onEvent(event: TransferEvent): void; close(): void } {
  if (quiet) return { onEvent: () => undefined, close: () => undefined };
  const started = Date.now();
  let files = 0;
  let totalFiles = 0;
  let bytes = 0;
  let copiedBytes = 0;
  let totalBytes = 0;
  let skipped = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = (): void => {
    const fraction =
      totalBytes > 0 ? Math.min(1, bytes / totalBytes) : totalFiles > 0 ? files / totalFiles : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? copiedBytes / 1e6 / seconds : 0;
    const parts = [`${files}/${totalFiles} files`, `${formatBytes(bytes)}/${formatBytes(totalBytes)}`];
    if (skipped) parts.push(`${skipped} unchanged`);
    parts.push(`${rate.toFixed(1)} MB/s`);
    process.stderr.write(
      `\r\x1b[2K${name} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${parts.join(' · ')}`,
    );
  };
  return {
    onEvent(event) {
      if (event.type === 'planned') {
        totalFiles = event.files;
        totalBytes = event.bytes;
        timer = setInterval(draw, 100);
        timer.unref();
      } else if (event.type === 'bytes') {
        bytes += event.bytes;
        copiedBytes += event.bytes;
      } else if (event.action !== 'delete') {
        files += 1;
        if (event.action === 'skip') {
          skipped += 1;
          bytes += event.size;
        }
      }
    },
    close() {
      if (timer === undefined) return;
      clearInterval(timer);
      timer = undefined;
      process.stderr.write('\r\x1b[2K');
    },
  };
}

/** `geobatch cp` */
export const cpCommand = transferCommand('cp');
/** `geobatch sync` */
export const syncCommand = transferCommand('sync');
