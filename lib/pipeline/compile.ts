/**
 * Spec + resolved items -> JobGraph: each stage an array of tasks over items, in an order where
 * every stage comes after the stages it waits for.
 */
import type { IssueDraft, PipelineSource, YamlPath } from './errors.js';
import { PipelineError, placeIssues } from './errors.js';
import { formatValue } from './issues.js';
import { BATCH_LIMITS, describeInputSet, type PipelineSpec, type StageSpec } from './spec.js';
import type { GraphStage, Item, ItemPart, JobGraph, Resources, StageDependency } from './types.js';
import { catalogEntry, validatePipeline } from './validate.js';

const count = (n: number): string => n.toLocaleString('en-US');

/** Items per task when the stage does not say: 1, or as few as keep the array within Batch's 10,000 children. */
export function defaultItemsPerTask(itemCount: number): number {
  return itemCount > BATCH_LIMITS.maxArraySize ? Math.ceil(itemCount / BATCH_LIMITS.maxArraySize) : 1;
}

/** Why items x parts do not fit in one Batch array, and what would. */
function splitLimitMessage(itemCount: number, tasksPerItem: number): string {
  const limit = BATCH_LIMITS.maxArraySize;
  const tasks = `${count(itemCount)} items x ${count(tasksPerItem)} parts = ${count(itemCount * tasksPerItem)} tasks, and an AWS Batch array holds at most ${count(limit)}`;
  const most = Math.floor(limit / itemCount);
  return most >= 2
    ? `expected at most ${count(most)} for ${count(itemCount)} items but got ${count(tasksPerItem)} (${tasks})`
    : `expected 1 for ${count(itemCount)} items but got ${count(tasksPerItem)} (${tasks}; items can be split only when there are at most ${count(limit / 2)})`;
}

/** Stage names in a dependency order; among stages free to go, the one first in the file goes first. */
function runOrder(spec: PipelineSpec): string[] {
  const names = Object.keys(spec.stages);
  const waitsFor = new Map(
    names.map((name) => {
      const stage = spec.stages[name]!;
      return [
        name,
        new Set([
          ...(stage.foreach !== undefined && Object.hasOwn(spec.stages, stage.foreach)
            ? [stage.foreach]
            : []),
          ...stage.needs,
        ]),
      ];
    }),
  );
  const done = new Set<string>();
  const order: string[] = [];
  while (order.length < names.length) {
    const next = names.find(
      (name) => !done.has(name) && [...waitsFor.get(name)!].every((dep) => done.has(dep)),
    );
    // validatePipeline has rejected cycles already
    if (next === undefined) throw new Error('pipeline stages form a cycle');
    done.add(next);
    order.push(next);
  }
  return order;
}

function resourcesOf(stage: StageSpec, job: string): Resources {
  const entry = catalogEntry(job)!;
  const sharedMemoryMiB = stage.resources?.sharedMemoryMiB ?? entry.sharedMemoryMiB;
  return {
    vcpus: stage.resources?.vcpus ?? entry.vcpus,
    memoryMiB: stage.resources?.memoryMiB ?? entry.memoryMiB,
    gpus: stage.resources?.gpus ?? entry.gpus,
    timeoutSeconds: stage.resources?.timeoutSeconds ?? entry.timeoutSeconds,
    ...(sharedMemoryMiB === undefined ? {} : { sharedMemoryMiB }),
  };
}

function inputIssues(
  spec: PipelineSpec,
  resolvedItems: Readonly<Record<string, readonly Item[]>>,
): IssueDraft[] {
  const issues: IssueDraft[] = [];
  for (const [name, patterns] of Object.entries(spec.inputs)) {
    const path: YamlPath = ['inputs', name];
    const items = Object.hasOwn(resolvedItems, name) ? resolvedItems[name] : undefined;
    if (items === undefined) {
      issues.push({
        path,
        message: 'no items were resolved for this input set (a bug in the caller: list every input set)',
      });
    } else if (items.length === 0) {
      issues.push({
        path,
        value: patterns,
        message: `expected at least one file but nothing matches ${describeInputSet(patterns)}`,
      });
    } else {
      const uris = new Map<string, string[]>();
      for (const item of items) {
        const same = uris.get(item.id);
        if (same) same.push(item.uri);
        else uris.set(item.id, [item.uri]);
      }
      for (const [id, where] of uris) {
        if (where.length > 1) {
          issues.push({
            path,
            value: id,
            message: `${where.length} items share the id '${id}' (${where.join(', ')}); outputs are named by item id, so ids must be unique`,
          });
        }
      }
    }
  }
  return issues;
}

/**
 * Compiles a validated spec and the items of its input sets (listed by the caller) into a JobGraph.
 * Throws a PipelineError with every issue; pass the parse result's `source` to get line numbers.
 */
export function compilePipeline(
  spec: PipelineSpec,
  resolvedItems: Readonly<Record<string, readonly Item[]>>,
  source?: PipelineSource,
): JobGraph {
  const fail = (issues: IssueDraft[]): never => {
    throw new PipelineError(placeIssues(issues, source), source?.fileName);
  };
  // Params were validated (and possibly transformed) by parsePipeline; everything else is re-checked here.
  const checked = validatePipeline(spec, { params: false });
  if (!checked.ok) fail(checked.issues);
  const inputProblems = inputIssues(spec, resolvedItems);
  if (inputProblems.length > 0) fail(inputProblems);

  const issues: IssueDraft[] = [];
  const built = new Map<string, GraphStage>();
  for (const name of runOrder(spec)) {
    const stage = spec.stages[name]!;
    const at: YamlPath = ['stages', name];
    const dependsOn: StageDependency[] = [];
    let itemsFrom: string | undefined;
    let itemCount = 0;
    let itemsPerTask = 1;
    let taskCount = 1;
    const tasksPerItem = stage.tasksPerItem ?? 1;

    const over = stage.foreach === undefined ? undefined : built.get(stage.foreach);
    if (tasksPerItem > 1 && stage.foreach !== undefined) {
      // one task per part of an item: task i does part i % tasksPerItem of item floor(i / tasksPerItem)
      if (over) {
        // Batch pairs children (N_TO_N) only between arrays of one size: wait for the whole stage
        dependsOn.push({ stage: over.name, type: 'FAN_IN', split: true });
        ({ itemsFrom, itemCount } = over);
      } else {
        itemsFrom = stage.foreach;
        itemCount = resolvedItems[stage.foreach]!.length;
      }
      taskCount = itemCount * tasksPerItem;
      if (taskCount > BATCH_LIMITS.maxArraySize) {
        issues.push({
          path: [...at, 'tasksPerItem'],
          value: tasksPerItem,
          message: splitLimitMessage(itemCount, tasksPerItem),
        });
      }
    } else if (over) {
      dependsOn.push({ stage: over.name, type: 'N_TO_N' });
      ({ itemsFrom, itemCount, itemsPerTask, taskCount } = over);
      if (stage.itemsPerTask !== undefined && stage.itemsPerTask !== itemsPerTask) {
        issues.push({
          path: [...at, 'itemsPerTask'],
          value: stage.itemsPerTask,
          message: `expected ${itemsPerTask}, the itemsPerTask of stage '${over.name}' (this stage runs task for task after it), but got ${stage.itemsPerTask}`,
        });
      }
    } else if (stage.foreach !== undefined) {
      itemsFrom = stage.foreach;
      itemCount = resolvedItems[stage.foreach]!.length;
      itemsPerTask = stage.itemsPerTask ?? defaultItemsPerTask(itemCount);
      taskCount = Math.ceil(itemCount / itemsPerTask);
      if (taskCount > BATCH_LIMITS.maxArraySize) {
        issues.push({
          path: [...at, 'itemsPerTask'],
          value: itemsPerTask,
          message: `expected at least ${defaultItemsPerTask(itemCount)} for ${count(itemCount)} items (an AWS Batch array holds at most ${count(BATCH_LIMITS.maxArraySize)} tasks) but got ${formatValue(itemsPerTask)}`,
        });
      }
    }
    for (const need of stage.needs) dependsOn.push({ stage: need, type: 'FAN_IN' });

    const resources = resourcesOf(stage, stage.job);
    built.set(name, {
      name,
      job: stage.job,
      params: stage.params,
      ...(itemsFrom === undefined ? {} : { itemsFrom }),
      itemCount,
      itemsPerTask,
      tasksPerItem,
      taskCount,
      dependsOn,
      queue: resources.gpus > 0 ? 'gpu' : 'cpu',
      resources,
      ...(stage.retries === undefined ? {} : { attempts: stage.retries }),
    });
  }
  if (issues.length > 0) fail(issues);

  const items = Object.fromEntries(Object.keys(spec.inputs).map((name) => [name, [...resolvedItems[name]!]]));
  return { pipeline: spec.name, stages: [...built.values()], items };
}

function checkIndex(what: string, index: number, count: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= count) {
    const valid = count === 0 ? 'there are none' : `expected an integer in [0, ${count - 1}]`;
    throw new RangeError(`${what} ${index} is out of range: ${valid}`);
  }
}

/** The items task `index` of `stage` handles (none for a single-task stage; one for a split stage). */
export function taskItems(stage: GraphStage, graph: JobGraph, index: number): readonly Item[] {
  checkIndex(`stage '${stage.name}': task index`, index, stage.taskCount);
  if (stage.itemsFrom === undefined) return [];
  const items = graph.items[stage.itemsFrom];
  if (!items) throw new Error(`stage '${stage.name}': the graph has no input set '${stage.itemsFrom}'`);
  const { first, end } = taskItemRange(stage, index);
  return items.slice(first, end);
}

/**
 * Items [first, end) of its input set that task `index` of `stage` handles, without checks: a
 * split stage's task handles one item, any other `itemsPerTask` consecutive ones.
 */
export function taskItemRange(stage: GraphStage, index: number): { first: number; end: number } {
  const tasksPerItem = stage.tasksPerItem;
  if (tasksPerItem > 1) {
    const item = Math.floor(index / tasksPerItem);
    return { first: item, end: Math.min(item + 1, stage.itemCount) };
  }
  return {
    first: index * stage.itemsPerTask,
    end: Math.min((index + 1) * stage.itemsPerTask, stage.itemCount),
  };
}

/** The part of its item that task `index` of a split stage handles; undefined when the stage is not split. */
export function taskPart(stage: GraphStage, index: number): ItemPart | undefined {
  const count = stage.tasksPerItem;
  return count > 1 ? { index: index % count, count } : undefined;
}

/** The index of the task of `stage` that handles item `itemIndex` of its input set (of a split stage: its first part). */
export function itemTask(stage: GraphStage, itemIndex: number): number {
  checkIndex(`stage '${stage.name}': item index`, itemIndex, stage.itemCount);
  const tasksPerItem = stage.tasksPerItem;
  return tasksPerItem > 1 ? itemIndex * tasksPerItem : Math.floor(itemIndex / stage.itemsPerTask);
}
