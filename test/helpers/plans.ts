/** Builds small run plans by hand for runner tests (no pipeline file, no input listing). */
import type { GraphStage, Item, JobGraph, StageDependency } from '../../lib/pipeline/types.js';
import { planVersion } from '../../lib/runners/records.js';
import type { RunPlan } from '../../lib/runners/records.js';

export function items(n: number, prefix = 'scene'): Item[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${String(i).padStart(4, '0')}`,
    uri: `/data/${prefix}${i}.tif`,
  }));
}

export function stage(
  name: string,
  options: {
    job?: string;
    params?: Record<string, unknown>;
    itemsFrom?: string;
    count?: number;
    perTask?: number;
    /** Tasks per item (a split stage; perTask is then 1). */
    parts?: number;
    dependsOn?: StageDependency[];
    vcpus?: number;
  },
): GraphStage {
  const count = options.count ?? 0;
  const perTask = options.perTask ?? 1;
  const parts = options.parts ?? 1;
  return {
    name,
    job: options.job ?? 'smoke',
    params: options.params ?? {},
    ...(options.itemsFrom ? { itemsFrom: options.itemsFrom } : {}),
    itemCount: count,
    itemsPerTask: perTask,
    tasksPerItem: parts,
    taskCount: options.itemsFrom ? (parts > 1 ? count * parts : Math.ceil(count / perTask)) : 1,
    dependsOn: options.dependsOn ?? [],
    queue: 'cpu',
    resources: { vcpus: options.vcpus ?? 1, memoryMiB: 512, gpus: 0, timeoutSeconds: 600 },
  };
}

export function plan(runUri: string, stages: GraphStage[], inputItems: Record<string, Item[]>): RunPlan {
  const graph: JobGraph = { pipeline: 'test', stages, items: inputItems };
  return {
    version: planVersion,
    runId: 'test-run',
    runUri,
    createdAt: new Date().toISOString(),
    pipeline: { name: 'test', file: '/dev/null', fingerprint: 'x', spec: {} },
    graph,
  };
}
