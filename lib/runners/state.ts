/** What a run's markers and failure records say about its tasks (shared by runners and status). */
import { StorageError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import { parseTaskRecordUri, runLayout } from './layout.js';
import type { RunPlan, TaskFailure, TaskMarker } from './records.js';

export interface TaskStates {
  /** Stage -> indexes of tasks with a completion marker. */
  readonly done: Map<string, Set<number>>;
  /** Stage -> indexes of tasks with a failure record (and no marker). */
  readonly failed: Map<string, Set<number>>;
}

async function collect(storage: Storage, prefix: string): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>();
  for await (const info of storage.list(prefix)) {
    const parsed = parseTaskRecordUri(info.uri);
    if (!parsed) continue;
    let set = out.get(parsed.stage);
    if (!set) out.set(parsed.stage, (set = new Set()));
    set.add(parsed.index);
  }
  return out;
}

/** Stage -> indexes of tasks with a completion marker (one listing, whatever the number of tasks). */
export function readDoneTasks(storage: Storage, plan: RunPlan): Promise<Map<string, Set<number>>> {
  return collect(storage, runLayout(plan.runUri).markersPrefix());
}

/** Lists the run's markers and failure records (two listings, whatever the number of tasks). */
export async function readTaskStates(storage: Storage, plan: RunPlan): Promise<TaskStates> {
  const layout = runLayout(plan.runUri);
  const [done, failed] = await Promise.all([
    collect(storage, layout.markersPrefix()),
    collect(storage, layout.failuresPrefix()),
  ]);
  for (const [stage, set] of failed) {
    const ok = done.get(stage);
    if (ok) for (const i of ok) set.delete(i);
  }
  return { done, failed };
}

/** The completion marker of one task, or undefined when it has none. */
export async function readTaskMarker(
  storage: Storage,
  plan: RunPlan,
  stage: string,
  index: number,
): Promise<TaskMarker | undefined> {
  const uri = runLayout(plan.runUri).marker(stage, index);
  try {
    return JSON.parse((await storage.read(uri)).toString('utf8')) as TaskMarker;
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') return undefined;
    throw error;
  }
}

/** Reads the markers of one stage (for durations). */
export async function readMarkers(storage: Storage, plan: RunPlan, stage: string): Promise<TaskMarker[]> {
  const layout = runLayout(plan.runUri);
  const out: TaskMarker[] = [];
  for await (const info of storage.list(layout.markersPrefix(stage))) {
    if (!info.uri.endsWith('.json')) continue;
    out.push(JSON.parse((await storage.read(info.uri)).toString('utf8')) as TaskMarker);
  }
  return out;
}

/** Reads the failure records of a run, optionally of one stage. */
export async function readFailures(storage: Storage, plan: RunPlan, stage?: string): Promise<TaskFailure[]> {
  const layout = runLayout(plan.runUri);
  const out: TaskFailure[] = [];
  for await (const info of storage.list(layout.failuresPrefix(stage))) {
    if (!info.uri.endsWith('.json')) continue;
    out.push(JSON.parse((await storage.read(info.uri)).toString('utf8')) as TaskFailure);
  }
  return out;
}
