/**
 * The run layout: where everything of one run lives under its URI. A contract shared by the
 * runners, the job entry point and `geobatch status`; documented in README.md ("Run layout").
 *
 * <run>/plan.json                       immutable: resolved pipeline, items, job graph
 * <run>/run.json                        summary, rewritten by the runner as the run progresses
 * <run>/<stage>/...                     the stage's outputs
 * <run>/markers/<stage>/<index>.json    completion marker of task <index>, written last
 * <run>/failures/<stage>/<index>.json   the last failure of a task (removed when it succeeds)
 * <run>/logs/<stage>/<index>.log        the log of the task's last attempt
 * <run>/batch.json                      the AWS Batch jobs the run was submitted as (batch runner)
 * <run>/report/index.html               the run report (`lib/report`), written when a local run ends
 */
import { joinUri } from '../storage/uri.js';

export interface RunLayout {
  readonly root: string;
  readonly plan: string;
  readonly summary: string;
  /** The AWS Batch jobs of the run (`batch-record.ts`). */
  readonly batch: string;
  stage(stage: string): string;
  marker(stage: string, index: number): string;
  markersPrefix(stage?: string): string;
  failure(stage: string, index: number): string;
  failuresPrefix(stage?: string): string;
  log(stage: string, index: number): string;
}

/** Paths of a run rooted at `root` (a local path or s3:// URI). */
export function runLayout(root: string): RunLayout {
  return {
    root,
    plan: joinUri(root, 'plan.json'),
    summary: joinUri(root, 'run.json'),
    batch: joinUri(root, 'batch.json'),
    stage: (stage) => joinUri(root, stage),
    marker: (stage, index) => joinUri(root, 'markers', stage, `${index}.json`),
    markersPrefix: (stage) =>
      stage ? joinUri(root, 'markers', stage) + '/' : joinUri(root, 'markers') + '/',
    failure: (stage, index) => joinUri(root, 'failures', stage, `${index}.json`),
    failuresPrefix: (stage) =>
      stage ? joinUri(root, 'failures', stage) + '/' : joinUri(root, 'failures') + '/',
    log: (stage, index) => joinUri(root, 'logs', stage, `${index}.log`),
  };
}

/** Parses `<...>/markers/<stage>/<index>.json` (or failures) back into its stage and index. */
export function parseTaskRecordUri(uri: string): { stage: string; index: number } | undefined {
  const m = /\/(?:markers|failures)\/([^/]+)\/(\d+)\.json$/.exec(uri);
  if (!m) return undefined;
  return { stage: m[1]!, index: Number(m[2]) };
}

/** A new run id: UTC time to the second plus 4 random hex digits, sortable by creation time. */
export function newRunId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const rand = Math.floor(Math.random() * 0x10000)
    .toString(16)
    .padStart(4, '0');
  return `${t}-${rand}`;
}
