/** What `geobatch plan` shows of a job graph: an aligned table, or the same facts as plain JSON. */
import type { DependencyType, JobGraph, Queue } from './types.js';

export interface StageSummary {
  readonly stage: string;
  readonly job: string;
  readonly tasks: number;
  /** Input set the stage runs over; absent for a single-task stage. */
  readonly itemsFrom?: string;
  readonly items: number;
  readonly itemsPerTask: number;
  /** Tasks each item is split into (1: not split). */
  readonly tasksPerItem: number;
  /** `split`: a split stage waits for the whole stage it runs over (FAN_IN, not N_TO_N). */
  readonly dependsOn: readonly {
    readonly stage: string;
    readonly type: DependencyType;
    readonly split?: true;
  }[];
  readonly queue: Queue;
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly gpus: number;
  readonly timeoutSeconds: number;
  readonly sharedMemoryMiB?: number;
  readonly attempts?: number;
}

export interface GraphSummary {
  readonly pipeline: string;
  /** Items per input set. */
  readonly items: Readonly<Record<string, number>>;
  /** Tasks of all stages together. */
  readonly tasks: number;
  readonly stages: readonly StageSummary[];
}

/** The facts of a graph as plain JSON (no items listed, only counted). */
export function summarizeGraph(graph: JobGraph): GraphSummary {
  const stages = graph.stages.map((s): StageSummary => ({
    stage: s.name,
    job: s.job,
    tasks: s.taskCount,
    ...(s.itemsFrom === undefined ? {} : { itemsFrom: s.itemsFrom }),
    items: s.itemCount,
    itemsPerTask: s.itemsPerTask,
    tasksPerItem: s.tasksPerItem,
    dependsOn: s.dependsOn.map((d) => ({
      stage: d.stage,
      type: d.type,
      ...(d.split ? { split: true } : {}),
    })),
    queue: s.queue,
    vcpus: s.resources.vcpus,
    memoryMiB: s.resources.memoryMiB,
    gpus: s.resources.gpus,
    timeoutSeconds: s.resources.timeoutSeconds,
    ...(s.resources.sharedMemoryMiB === undefined ? {} : { sharedMemoryMiB: s.resources.sharedMemoryMiB }),
    ...(s.attempts === undefined ? {} : { attempts: s.attempts }),
  }));
  return {
    pipeline: graph.pipeline,
    items: Object.fromEntries(Object.entries(graph.items).map(([name, items]) => [name, items.length])),
    tasks: stages.reduce((sum, s) => sum + s.tasks, 0),
    stages,
  };
}

const count = (n: number): string => n.toLocaleString('en-US');

/** `512 MiB`, `2 GiB`, `1.5 GiB`. */
export function formatMemory(mib: number): string {
  return mib >= 1024 && mib % 512 === 0 ? `${mib / 1024} GiB` : `${mib} MiB`;
}

/** `45s`, `10m`, `1h`, `1h30m`, `2h0m5s` -> `2h5s`. */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  const parts = [h ? `${h}h` : '', m ? `${m}m` : '', s ? `${s}s` : ''].join('');
  return parts || '0s';
}

function tasksText(s: StageSummary): string {
  if (s.itemsFrom === undefined) return count(s.tasks);
  const per =
    s.tasksPerItem > 1
      ? `, ${count(s.tasksPerItem)} tasks per item`
      : s.itemsPerTask === 1
        ? ''
        : `, ${count(s.itemsPerTask)} per task`;
  return `${count(s.tasks)} (${count(s.items)} ${s.itemsFrom}${per})`;
}

/** Columns padded to a common width, two spaces apart, without trailing spaces. */
function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * The graph as an aligned table, one line per stage in run order under a header, then a note for
 * each split stage that waits for all of the stage it runs over (lines joined by '\n').
 */
export function describeGraph(graph: JobGraph): string {
  const header = [
    'STAGE',
    'JOB',
    'TASKS',
    'DEPENDS ON',
    'QUEUE',
    'VCPUS',
    'MEMORY',
    'GPUS',
    'TIMEOUT',
    'ATTEMPTS',
  ];
  const stages = summarizeGraph(graph).stages;
  const rows = stages.map((s) => [
    s.stage,
    s.job,
    tasksText(s),
    s.dependsOn.length === 0
      ? '-'
      : s.dependsOn.map((d) => `${d.stage} (${d.type}${d.split ? ', split' : ''})`).join(', '),
    s.queue,
    String(s.vcpus),
    formatMemory(s.memoryMiB) +
      (s.sharedMemoryMiB === undefined ? '' : ` (shm ${formatMemory(s.sharedMemoryMiB)})`),
    String(s.gpus),
    formatDuration(s.timeoutSeconds),
    s.attempts === undefined ? '-' : String(s.attempts),
  ]);
  const notes = stages.flatMap((s) =>
    s.dependsOn
      .filter((d) => d.split)
      .map(
        (d) =>
          `${s.stage} runs over ${d.stage} but waits for all of it (FAN_IN, not N_TO_N): it splits each item into ${count(s.tasksPerItem)} tasks, so its tasks do not pair one to one with ${d.stage}'s.`,
      ),
  );
  return [...alignColumns([header, ...rows]), ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}
