/**
 * What a run report shows, gathered from the run's records and its stages' outputs: the same
 * facts for the HTML page and for `geobatch report --json`.
 */
import type { DependencyType } from '../pipeline/types.js';
import type { Storage } from '../storage/types.js';
import { StorageError } from '../storage/errors.js';
import { joinUri } from '../storage/uri.js';
import { runLayout } from '../runners/layout.js';
import type { RunPlan, RunSummary } from '../runners/records.js';
import { readMarkers } from '../runners/state.js';
import type { BatchRunStatus, BatchStageStatus } from '../runners/batch-status.js';
import { durationStats, readRunStatus } from '../runners/status.js';
import type { StageStatus } from '../runners/status.js';

/** A stage's state as the report colours it. */
export type ReportStageState = 'done' | 'failed' | 'running' | 'blocked' | 'pending';

/** One output file of a stage the report knows how to show. */
export interface ReportFile {
  /** Path relative to the run folder (`<stage>/<name>`). */
  readonly path: string;
  readonly uri: string;
  readonly size: number;
}

/**
 * A failed task. `log` is a run-relative log file (local runs) or, with `logCommand`, the
 * `geobatch logs` command that fetches it (AWS Batch runs, whose logs are in CloudWatch Logs).
 */
export type ReportFailure = StageStatus['failures'][number] & { readonly logCommand?: boolean };

export interface ReportStage {
  readonly name: string;
  readonly job: string;
  /** Column of the stage in the drawn graph: 0 for a stage that waits for none, else 1 + its deps' deepest. */
  readonly level: number;
  readonly state: ReportStageState;
  readonly tasks: number;
  readonly done: number;
  readonly failed: number;
  readonly pending: number;
  readonly dependsOn: readonly { readonly stage: string; readonly type: DependencyType }[];
  /** Durations of finished tasks, ms. */
  readonly durationMs?: NonNullable<StageStatus['durationMs']>;
  /** Counts of finished tasks' durations in equal bins from min to max (for the bar chart). */
  readonly histogram?: readonly number[];
  /** First task start to last task finish of the finished tasks (ISO times) and the span, ms. */
  readonly wall?: { readonly startedAt: string; readonly finishedAt: string; readonly ms: number };
  readonly failures: readonly ReportFailure[];
  /** Known outputs found under `<run>/<stage>/` (dataset, training and evaluation files). */
  readonly files: readonly ReportFile[];
  /** Parsed JSON outputs by file name (stats.json, dataset.json, metrics.json, eval.json). */
  readonly json: Readonly<Record<string, unknown>>;
  /** Text outputs by file name (MODEL_CARD.md, eval.md), cut at {@link textLimit} characters. */
  readonly text: Readonly<Record<string, string>>;
}

export interface ReportFacts {
  readonly runId: string;
  readonly runUri: string;
  readonly pipeline: string;
  readonly state: RunSummary['state'] | BatchRunStatus['state'] | 'unknown';
  readonly runner?: RunSummary['runner'];
  /** For a run on AWS Batch: its environment and region, and when Batch was asked. */
  readonly batch?: { readonly env: string; readonly region: string; readonly checkedAt: string };
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly createdAt: string;
  readonly complete: boolean;
  readonly generatedAt: string;
  readonly stages: readonly ReportStage[];
}

/** Output files the report shows when a stage has them (merge, train and eval stages write them). */
export const knownFiles = [
  'dataset.json',
  'stats.json',
  'contact-sheet.png',
  'class-distribution.png',
  'cooccurrence.png',
  'metrics.json',
  'curves.png',
  'MODEL_CARD.md',
  'model.onnx',
  'eval.json',
  'eval.md',
  'pr-curves.png',
  'confusion.png',
] as const;

const jsonFiles = new Set(['dataset.json', 'stats.json', 'metrics.json', 'eval.json']);
const textFiles = new Set(['MODEL_CARD.md', 'eval.md']);
/** JSON outputs larger than this are linked, not read. */
const jsonLimit = 4 * 1024 * 1024;
/** Characters of a text output shown. */
export const textLimit = 8000;
const bins = 12;

function histogram(values: readonly number[], min: number, max: number): number[] {
  const out = new Array<number>(bins).fill(0);
  const span = max - min;
  for (const v of values) {
    const b = span > 0 ? Math.min(bins - 1, Math.floor(((v - min) / span) * bins)) : 0;
    out[b]!++;
  }
  return out;
}

async function readIfSmall(storage: Storage, uri: string, size: number): Promise<Buffer | undefined> {
  if (size > jsonLimit) return undefined;
  try {
    return await storage.read(uri);
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') return undefined;
    throw error;
  }
}

async function stageOutputs(
  storage: Storage,
  plan: RunPlan,
  stage: string,
): Promise<Pick<ReportStage, 'files' | 'json' | 'text'>> {
  const root = runLayout(plan.runUri).stage(stage);
  const found = await Promise.all(
    knownFiles.map(async (name) => {
      const uri = joinUri(root, name);
      const info = await storage.stat(uri);
      return info ? { name, uri, size: info.size } : undefined;
    }),
  );
  const files: ReportFile[] = [];
  const json: Record<string, unknown> = {};
  const text: Record<string, string> = {};
  for (const f of found) {
    if (!f) continue;
    files.push({ path: `${stage}/${f.name}`, uri: f.uri, size: f.size });
    if (jsonFiles.has(f.name)) {
      const body = await readIfSmall(storage, f.uri, f.size);
      if (body) {
        try {
          json[f.name] = JSON.parse(body.toString('utf8')) as unknown;
        } catch {
          // a half-understood output is still linked; the page says it could not be read
          json[f.name] = { unreadable: `${f.uri}: not JSON` };
        }
      }
    } else if (textFiles.has(f.name)) {
      const body = await readIfSmall(storage, f.uri, f.size);
      if (body) text[f.name] = body.toString('utf8').slice(0, textLimit);
    }
  }
  return { files, json, text };
}

function stageState(
  s: StageStatus,
  deps: readonly ReportStageState[],
  runState: ReportFacts['state'],
  active = false,
): ReportStageState {
  if (s.failed > 0) return 'failed';
  if (s.done === s.tasks) return 'done';
  if (active) return 'running';
  if (deps.some((d) => d === 'failed' || d === 'blocked') && runState !== 'running') return 'blocked';
  if (runState === 'running' && (s.done > 0 || deps.every((d) => d === 'done'))) return 'running';
  return 'pending';
}

/** What `geobatch logs` is told to fetch a Batch task's log. */
function batchLogCommand(runUri: string, stage: string, index: number): string {
  return `geobatch logs ${runUri} ${stage} --index ${index}`;
}

/**
 * A stage's counts and failures as AWS Batch tells them: failed = tasks Batch failed (not those
 * only blocked by a failed dependency), each with its exit code, status reason and container
 * reason as the error line.
 */
function batchStage(s: StageStatus, b: BatchStageStatus, runUri: string): StageStatus & { active: boolean } {
  const failures = b.failures.map((f) => {
    const why = [f.statusReason, f.reason].filter(Boolean).join('; ') || 'no reason given';
    return {
      index: f.index,
      items: f.items,
      ...(f.part ? { part: f.part } : {}),
      error: `${f.exitCode !== undefined ? `exit ${f.exitCode}: ` : ''}${why}`,
      log: batchLogCommand(runUri, s.name, f.index),
      logCommand: true,
    };
  });
  const failed = Math.max(b.counts.failed, failures.length);
  const active = b.counts.runnable + b.counts.starting + b.counts.running + b.counts.pending > 0;
  return { ...s, failed, pending: Math.max(0, s.tasks - s.done - failed), failures, active };
}

/** Reads everything the report shows: task states and durations per stage, failures, known outputs. */
export async function gatherReportFacts(
  storage: Storage,
  plan: RunPlan,
  now: Date = new Date(),
  batch?: BatchRunStatus,
): Promise<ReportFacts> {
  const layout = runLayout(plan.runUri);
  const [status, summaryText] = await Promise.all([
    readRunStatus(storage, plan, { durations: false }),
    storage.exists(layout.summary).then((e) => (e ? storage.read(layout.summary) : undefined)),
  ]);
  const summary = summaryText ? (JSON.parse(summaryText.toString('utf8')) as RunSummary) : undefined;
  const levels = new Map<string, number>();
  const states = new Map<string, ReportStageState>();
  const stages: ReportStage[] = [];
  const runState: ReportFacts['state'] = batch?.state ?? status.state;
  for (const [i, graphStage] of plan.graph.stages.entries()) {
    const fromRecords = status.stages[i]!;
    const fromBatch = batch?.stages.find((b) => b.name === fromRecords.name);
    const s = fromBatch ? batchStage(fromRecords, fromBatch, plan.runUri) : { ...fromRecords, active: false };
    const level = Math.max(-1, ...graphStage.dependsOn.map((d) => levels.get(d.stage) ?? 0)) + 1;
    levels.set(s.name, level);
    const state = stageState(
      s,
      graphStage.dependsOn.map((d) => states.get(d.stage) ?? 'pending'),
      runState,
      s.active,
    );
    states.set(s.name, state);
    const markers = s.done > 0 ? await readMarkers(storage, plan, s.name) : [];
    const durations = markers.map((m) => m.durationMs);
    const durationMs = durationStats(durations);
    let wall: ReportStage['wall'];
    if (markers.length) {
      const start = markers.reduce((a, m) => (m.startedAt < a ? m.startedAt : a), markers[0]!.startedAt);
      const end = markers.reduce((a, m) => (m.finishedAt > a ? m.finishedAt : a), markers[0]!.finishedAt);
      wall = { startedAt: start, finishedAt: end, ms: Math.max(0, Date.parse(end) - Date.parse(start)) };
    }
    stages.push({
      name: s.name,
      job: s.job,
      level,
      state,
      tasks: s.tasks,
      done: s.done,
      failed: s.failed,
      pending: s.pending,
      dependsOn: graphStage.dependsOn.map((d) => ({ stage: d.stage, type: d.type })),
      ...(durationMs ? { durationMs, histogram: histogram(durations, durationMs.min, durationMs.max) } : {}),
      ...(wall ? { wall } : {}),
      failures: s.failures,
      ...(await stageOutputs(storage, plan, s.name)),
    });
  }
  return {
    runId: plan.runId,
    runUri: plan.runUri,
    pipeline: plan.pipeline.name,
    state: runState,
    ...(summary ? { runner: summary.runner, startedAt: summary.startedAt } : {}),
    ...(batch
      ? {
          runner: 'batch' as const,
          batch: { env: batch.env, region: batch.region, checkedAt: batch.checkedAt },
        }
      : {}),
    ...(summary?.finishedAt ? { finishedAt: summary.finishedAt } : {}),
    createdAt: plan.createdAt,
    complete: status.complete,
    generatedAt: now.toISOString(),
    stages,
  };
}
