/**
 * The one job entry point. Every runner ends here: the local runner's workers call
 * {@link executeTask} directly, Batch containers through `geobatch-job <plan-uri> <stage>`.
 * A task skips itself when its completion marker exists, writes its log and, last, its marker.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalog, isJobName, type CatalogEntry } from '../../jobs/catalog.js';
import { loadJob } from '../../jobs/registry.js';
import type { JobContext, JobLogger, RunRef } from '../../jobs/types.js';
import { taskItemRange, taskPart } from '../pipeline/compile.js';
import type { GraphStage, Item, ItemPart, JobGraph } from '../pipeline/types.js';
import type { Storage } from '../storage/types.js';
import { runLayout } from './layout.js';
import { firstLine, parseRunPlan } from './records.js';
import type { BatchTaskIdentity, RunPlan, TaskFailure, TaskMarker } from './records.js';

/** A task failed: the job threw, or the task could not start. Carries the task's identity. */
export class TaskError extends Error {
  constructor(
    message: string,
    readonly stage: string,
    readonly index: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TaskError';
  }
}

export interface ExecuteTaskOptions {
  readonly storage: Storage;
  readonly planUri: string;
  readonly stage: string;
  readonly index: number;
  readonly signal?: AbortSignal;
  /** Batch attempt number (from AWS_BATCH_JOB_ATTEMPT), 1 locally. */
  readonly attempt?: number;
  /** On Batch: the job and log stream of this attempt, recorded in the marker (asked for once the job is done). */
  readonly batchIdentity?: () => Promise<BatchTaskIdentity | undefined>;
  /** Receives each log line as it is written (Batch: stdout, so CloudWatch has it). */
  readonly onLog?: (line: string) => void;
  readonly onProgress?: (done: number, total: number) => void;
  /** Parent of the task's scratch folder. @default os.tmpdir() */
  readonly tmpRoot?: string;
}

export type TaskOutcome =
  | { readonly status: 'done'; readonly marker: TaskMarker }
  | { readonly status: 'skipped'; readonly marker: TaskMarker };

const planCache = new Map<string, Promise<RunPlan>>();

/** Reads and checks `<run>/plan.json`, once per process and URI. */
export function readPlan(storage: Storage, planUri: string): Promise<RunPlan> {
  let cached = planCache.get(planUri);
  if (!cached) {
    cached = storage.read(planUri).then((bytes) => {
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString('utf8'));
      } catch (error) {
        throw new Error(`${planUri}: not valid JSON (${(error as Error).message})`);
      }
      return parseRunPlan(json, planUri);
    });
    cached.catch(() => planCache.delete(planUri));
    planCache.set(planUri, cached);
  }
  return cached;
}

/** The stage of a plan by name, or an error listing the stages there are. */
export function findStage(graph: JobGraph, name: string): GraphStage {
  const stage = graph.stages.find((s) => s.name === name);
  if (!stage) {
    const names = graph.stages.map((s) => s.name).join(', ');
    throw new Error(`stage '${name}' is not in this plan (stages: ${names})`);
  }
  return stage;
}

function checkTaskIndex(stage: GraphStage, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= stage.taskCount) {
    throw new Error(
      `stage '${stage.name}' has ${stage.taskCount} task(s): index must be an integer in [0, ${stage.taskCount - 1}] but got ${index}`,
    );
  }
}

/** The items task `index` of a stage handles (of a split stage: the one item it does a part of). */
export function itemsOfTask(graph: JobGraph, stage: GraphStage, index: number): readonly Item[] {
  checkTaskIndex(stage, index);
  if (!stage.itemsFrom) return [];
  const all = graph.items[stage.itemsFrom] ?? [];
  const { first, end } = taskItemRange(stage, index);
  return all.slice(first, end);
}

/** The part of its item task `index` does, for a stage that splits items (`tasksPerItem` > 1). */
export function partOfTask(stage: GraphStage, index: number): ItemPart | undefined {
  checkTaskIndex(stage, index);
  return taskPart(stage, index);
}

/** `scene1` or, for a part, `scene1 part 2/3` (1-based, as people count). */
export function describeTaskItems(items: readonly string[], part: ItemPart | undefined): string {
  const ids = items.join(',') || '-';
  return part ? `${ids} part ${part.index + 1}/${part.count}` : ids;
}

function makeLogger(lines: string[], onLog?: (line: string) => void): JobLogger {
  const write = (level: string, message: string, fields?: Record<string, unknown>) => {
    const extra = fields && Object.keys(fields).length ? ' ' + JSON.stringify(fields) : '';
    const line = `${new Date().toISOString()} ${level} ${message}${extra}`;
    lines.push(line);
    onLog?.(line);
  };
  return {
    info: (m, f) => write('INFO', m, f),
    warn: (m, f) => write('WARN', m, f),
    error: (m, f) => write('ERROR', m, f),
  };
}

/** Runs task `index` of `stage` of the plan at `planUri`, unless its marker says it is done. */
export async function executeTask(options: ExecuteTaskOptions): Promise<TaskOutcome> {
  const { storage, planUri, index } = options;
  const plan = await readPlan(storage, planUri);
  const stage = findStage(plan.graph, options.stage);
  const layout = runLayout(plan.runUri);
  const markerUri = layout.marker(stage.name, index);
  const items = itemsOfTask(plan.graph, stage, index);
  const part = partOfTask(stage, index);

  const existing = await storage.stat(markerUri);
  if (existing) {
    const marker = JSON.parse((await storage.read(markerUri)).toString('utf8')) as TaskMarker;
    return { status: 'skipped', marker };
  }

  if (!isJobName(stage.job)) {
    throw new TaskError(`unknown job '${stage.job}' in plan`, stage.name, index);
  }
  const entry: CatalogEntry = catalog[stage.job];
  const lines: string[] = [];
  const log = makeLogger(lines, options.onLog);
  const startedAt = new Date();
  const attempt = options.attempt ?? 1;
  const tmpDir = await mkdtemp(join(options.tmpRoot ?? tmpdir(), `geobatch-${stage.name}-${index}-`));
  const signal = options.signal ?? new AbortController().signal;
  const run: RunRef = {
    uri: plan.runUri,
    id: plan.runId,
    graph: plan.graph,
    stageUri: (name) => layout.stage(name),
  };
  const what = describeTaskItems(
    items.map((i) => i.id),
    part,
  );
  log.info(`task ${stage.name}[${index}] job=${stage.job} items=${what}`, { run: plan.runId, attempt });

  try {
    if (part && entry.parts !== true) {
      // a job that ignores ctx.part would do its whole item in each of the item's tasks
      throw new Error(
        `stage '${stage.name}' splits each item into ${part.count} tasks (tasksPerItem) but job '${stage.job}' cannot do a part of an item`,
      );
    }
    const params = entry.params.parse(stage.params) as Record<string, unknown>;
    const job = await loadJob(stage.job);
    const ctx: JobContext = {
      storage,
      run,
      stage: stage.name,
      index,
      items,
      ...(part ? { part } : {}),
      tmpDir,
      log,
      progress: (done, total) => options.onProgress?.(done, total),
      signal,
    };
    signal.throwIfAborted();
    const result = await (job.run as (p: Record<string, unknown>, c: JobContext) => Promise<unknown>)(
      params,
      ctx,
    );
    signal.throwIfAborted();
    const finishedAt = new Date();
    const outcome = (result ?? {}) as { outputs?: readonly string[]; summary?: Record<string, unknown> };
    const batch = await options.batchIdentity?.();
    const marker: TaskMarker = {
      stage: stage.name,
      index,
      items: items.map((i) => i.id),
      ...(part ? { part } : {}),
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      outputs: outcome.outputs ?? [],
      ...(outcome.summary ? { summary: outcome.summary } : {}),
      host: hostname(),
      attempt,
      ...(batch ? { batch } : {}),
    };
    log.info(`done in ${marker.durationMs} ms`);
    await storage.writeAtomic(layout.log(stage.name, index), lines.join('\n') + '\n');
    // a stale failure record would make status report a failure that a retry fixed
    await storage.delete(layout.failure(stage.name, index));
    // the marker is written last: its presence means every output above is complete
    await storage.writeAtomic(markerUri, JSON.stringify(marker, null, 2) + '\n');
    return { status: 'done', marker };
  } catch (error) {
    const err = error instanceof Error ? error : new Error(String(error));
    const aborted = signal.aborted;
    log.error(aborted ? 'interrupted' : err.message, aborted ? undefined : { stack: err.stack });
    const failure: TaskFailure = {
      stage: stage.name,
      index,
      items: items.map((i) => i.id),
      ...(part ? { part } : {}),
      startedAt: startedAt.toISOString(),
      failedAt: new Date().toISOString(),
      error: aborted ? 'interrupted' : firstLine(err.message) || err.name,
      detail: err.stack ?? err.message,
      log: layout.log(stage.name, index),
      host: hostname(),
      attempt,
    };
    // best effort: the task's own error matters more than a failure to record it
    await Promise.allSettled([
      storage.writeAtomic(layout.log(stage.name, index), lines.join('\n') + '\n'),
      aborted
        ? Promise.resolve()
        : storage.writeAtomic(layout.failure(stage.name, index), JSON.stringify(failure, null, 2) + '\n'),
    ]);
    throw new TaskError(aborted ? 'interrupted' : err.message, stage.name, index, { cause: err });
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}
