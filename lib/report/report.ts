/** Writes `<run>/report/index.html`: gathers the facts, embeds the pictures, renders, writes atomically. */
import { dirname, relative } from 'node:path';
import type { BatchRunStatus } from '../runners/batch-status.js';
import type { RunPlan } from '../runners/records.js';
import type { Storage } from '../storage/types.js';
import { isS3Uri, joinUri, normalizeUri } from '../storage/uri.js';
import { gatherReportFacts } from './facts.js';
import type { ReportFacts } from './facts.js';
import { renderReportHtml } from './html.js';

/** Pictures up to this size are embedded as data: URIs; larger ones are linked. */
export const embedLimit = 3 * 1024 * 1024;
/** Embedded bytes per report at most; pictures past it are linked. */
export const embedTotalLimit = 24 * 1024 * 1024;

/** Where a run's report goes by default. */
export function defaultReportUri(runUri: string): string {
  return joinUri(runUri, 'report', 'index.html');
}

/** How links from a page at `out` reach the run's files: `../` from `<run>/report/`, else a path or the run URI. */
export function linkBaseFor(runUri: string, out: string): string {
  const run = normalizeUri(runUri);
  const target = normalizeUri(out);
  if (target === defaultReportUri(run)) return '../';
  if (!isS3Uri(run) && !isS3Uri(target)) {
    const rel = relative(dirname(target), run);
    return rel === '' ? '' : `${rel}/`;
  }
  return `${run.replace(/\/+$/, '')}/`;
}

export interface WriteReportOptions {
  /** @default `<run>/report/index.html` */
  readonly out?: string;
  readonly now?: Date;
  /** The run's state as AWS Batch tells it (a Batch run): stage states, failures with exit codes. */
  readonly batch?: BatchRunStatus;
}

export interface WrittenReport {
  readonly uri: string;
  readonly facts: ReportFacts;
  /** Run-relative paths of the pictures embedded in the page (the others are linked). */
  readonly embedded: readonly string[];
}

/** Gathers a run's facts and writes its HTML report; returns where and what. */
export async function writeRunReport(
  storage: Storage,
  plan: RunPlan,
  options: WriteReportOptions = {},
): Promise<WrittenReport> {
  const uri = options.out ?? defaultReportUri(plan.runUri);
  const facts = await gatherReportFacts(storage, plan, options.now, options.batch);
  const linkBase = linkBaseFor(plan.runUri, uri);
  const images = new Map<string, string>();
  const embedded: string[] = [];
  let total = 0;
  for (const f of facts.stages.flatMap((s) => s.files)) {
    if (!f.path.endsWith('.png')) continue;
    if (f.size <= embedLimit && total + f.size <= embedTotalLimit) {
      const body = await storage.read(f.uri);
      total += body.length;
      images.set(f.path, `data:image/png;base64,${body.toString('base64')}`);
      embedded.push(f.path);
    } else {
      images.set(f.path, linkBase + f.path.split('/').map(encodeURIComponent).join('/'));
    }
  }
  const html = renderReportHtml(facts, { linkBase, images });
  await storage.writeAtomic(uri, html, { contentType: 'text/html; charset=utf-8' });
  return { uri, facts, embedded };
}

/** `<run>/report/report.json`: which Batch state the report at `<run>/report/index.html` shows. */
export function reportRecordUri(runUri: string): string {
  return joinUri(runUri, 'report', 'report.json');
}

/**
 * What a finished Batch run's report depends on: the run's state, its submissions and, per stage,
 * the tasks done and failed. A report written for the same key is up to date.
 */
export function batchReportKey(status: BatchRunStatus): string {
  return JSON.stringify([
    status.state,
    status.submissions,
    status.stages.map((s) => [s.name, s.done, s.counts.failed, s.counts.blocked]),
  ]);
}

/**
 * Writes the report of a finished AWS Batch run unless the one there already shows this state
 * (`force` writes it anyway); records what it showed in `<run>/report/report.json`, after the page.
 */
export async function writeBatchRunReport(
  storage: Storage,
  plan: RunPlan,
  status: BatchRunStatus,
  options: { readonly force?: boolean; readonly now?: Date } = {},
): Promise<{ readonly uri: string; readonly written: boolean; readonly report?: WrittenReport }> {
  const uri = defaultReportUri(plan.runUri);
  const recordUri = reportRecordUri(plan.runUri);
  const key = batchReportKey(status);
  if (!options.force && (await storage.exists(uri)) && (await storage.exists(recordUri))) {
    try {
      const record = JSON.parse((await storage.read(recordUri)).toString('utf8')) as { key?: unknown };
      if (record.key === key) return { uri, written: false };
    } catch {
      // an unreadable record: write the report again
    }
  }
  const written = await writeRunReport(storage, plan, {
    batch: status,
    ...(options.now ? { now: options.now } : {}),
  });
  await storage.writeAtomic(
    recordUri,
    JSON.stringify(
      { key, state: status.state, checkedAt: status.checkedAt, generatedAt: written.facts.generatedAt },
      null,
      2,
    ) + '\n',
    { contentType: 'application/json' },
  );
  return { uri, written: true, report: written };
}
