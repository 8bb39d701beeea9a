/**
 * The local runner (the embedded default): executes a run's job graph on this machine in
 * dependency order, with a bounded pool of worker processes. It decides *where and when*
 * tasks run; *what* they do is the job entry point's business (`task.ts`).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { availableParallelism, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { GraphStage, ItemPart } from '../pipeline/types.js';
import type { Storage } from '../storage/types.js';
import { runLayout } from './layout.js';
import type { FromWorker, ToWorker } from './local-protocol.js';
import { writeRunReport } from '../report/report.js';
import { firstLine } from './records.js';
import type { RunPlan, RunSummary, TaskFailure } from './records.js';
import { itemsOfTask, partOfTask } from './task.js';
import { readTaskStates } from './state.js';

export type TaskEventState = 'started' | 'done' | 'skipped' | 'failed' | 'interrupted' | 'blocked';

export type RunEvent =
  | {
      readonly type: 'run-started';
      readonly runId: string;
      readonly runUri: string;
      readonly stages: StageProgress[];
    }
  | {
      readonly type: 'task';
      readonly stage: string;
      readonly index: number;
      readonly state: TaskEventState;
      readonly durationMs?: number;
      readonly error?: string;
    }
  | {
      readonly type: 'run-finished';
      readonly summary: RunSummary;
      readonly failures: TaskFailureBrief[];
      /** Where the run's HTML report was written, or why it could not be (the run's outcome stands). */
      readonly report?: { readonly uri: string } | { readonly error: string };
    };

export interface StageProgress {
  readonly name: string;
  readonly tasks: number;
  /** Tasks already complete when the run started (skipped). */
  readonly alreadyDone: number;
}

export interface TaskFailureBrief {
  readonly stage: string;
  readonly index: number;
  readonly error: string;
  readonly log: string;
}

export interface LocalRunOptions {
  readonly storage: Storage;
  readonly plan: RunPlan;
  /** Tasks in flight at once (a task needing v vCPUs takes min(v, concurrency) slots). @default number of cores */
  readonly concurrency?: number;
  /** Stops the run: no new tasks; running ones are asked to stop, then killed after `graceMs`. */
  readonly signal?: AbortSignal;
  readonly graceMs?: number;
  readonly onEvent?: (event: RunEvent) => void;
  /** Write `<run>/report/index.html` when the run finishes. @default true */
  readonly report?: boolean;
}

const PENDING = 0;
const RUNNING = 1;
const DONE = 2;
const FAILED = 3;
const BLOCKED = 4;

interface StageRun {
  readonly stage: GraphStage;
  readonly state: Uint8Array;
  readonly slots: number;
  done: number;
  failed: number;
  skipped: number;
  blocked: number;
  /** Stages that depend on this one. */
  readonly dependents: { run: StageRun; type: 'N_TO_N' | 'FAN_IN' }[];
  readonly deps: { run: StageRun; type: 'N_TO_N' | 'FAN_IN' }[];
}

interface Worker {
  readonly child: ChildProcess;
  task?: { id: number; stage: StageRun; index: number; stderr: string[] };
  ready: Promise<void>;
}

/** `{ part }` of a split stage's task, for its records; nothing otherwise. */
function partRecord(stage: GraphStage, index: number): { part?: ItemPart } {
  const part = partOfTask(stage, index);
  return part ? { part } : {};
}

function workerModule(): { path: string; execArgv: string[] } {
  const url = new URL(
    import.meta.url.endsWith('.ts') ? './local-worker.ts' : './local-worker.js',
    import.meta.url,
  );
  return { path: fileURLToPath(url), execArgv: process.execArgv };
}

/** Runs every unfinished task of the plan; resolves with the run's summary when nothing more can run. */
export async function runLocal(options: LocalRunOptions): Promise<RunSummary> {
  const { storage, plan } = options;
  const layout = runLayout(plan.runUri);
  const concurrency = Math.max(1, options.concurrency ?? availableParallelism());
  const emit = options.onEvent ?? (() => undefined);
  const signal = options.signal;
  const startedAt = new Date().toISOString();

  const runs = new Map<string, StageRun>();
  for (const stage of plan.graph.stages) {
    runs.set(stage.name, {
      stage,
      state: new Uint8Array(stage.taskCount),
      slots: Math.min(concurrency, Math.max(1, Math.ceil(stage.resources.vcpus))),
      done: 0,
      failed: 0,
      skipped: 0,
      blocked: 0,
      dependents: [],
      deps: [],
    });
  }
  for (const run of runs.values()) {
    for (const dep of run.stage.dependsOn) {
      const other = runs.get(dep.stage);
      if (!other)
        throw new Error(
          `plan ${layout.plan}: stage '${run.stage.name}' depends on unknown stage '${dep.stage}'`,
        );
      run.deps.push({ run: other, type: dep.type });
      other.dependents.push({ run, type: dep.type });
    }
  }

  // what earlier attempts finished: read once, so rerunning a large run costs one listing
  const known = await readTaskStates(storage, plan);
  for (const [name, done] of known.done) {
    const run = runs.get(name);
    if (!run) continue;
    for (const index of done) {
      if (index < run.state.length && run.state[index] !== DONE) {
        run.state[index] = DONE;
        run.done++;
        run.skipped++;
      }
    }
  }
  emit({
    type: 'run-started',
    runId: plan.runId,
    runUri: plan.runUri,
    stages: [...runs.values()].map((r) => ({
      name: r.stage.name,
      tasks: r.stage.taskCount,
      alreadyDone: r.done,
    })),
  });

  const summary = (state: RunSummary['state']): RunSummary => {
    const now = new Date().toISOString();
    return {
      runId: plan.runId,
      pipeline: plan.pipeline.name,
      runner: 'local',
      state,
      startedAt,
      updatedAt: now,
      ...(state === 'running' ? {} : { finishedAt: now }),
      stages: Object.fromEntries(
        [...runs.values()].map((r) => [
          r.stage.name,
          { tasks: r.stage.taskCount, done: r.done, failed: r.failed, skipped: r.skipped },
        ]),
      ),
    };
  };
  await storage.writeAtomic(layout.summary, JSON.stringify(summary('running'), null, 2) + '\n');

  // ready queue: tasks whose dependencies are all done, in stage order then index order
  const ready: { run: StageRun; index: number }[] = [];
  const depsDone = (run: StageRun, index: number): boolean =>
    run.deps.every((d) =>
      d.type === 'FAN_IN' ? d.run.done === d.run.stage.taskCount : d.run.state[index] === DONE,
    );
  const enqueueIfReady = (run: StageRun, index: number) => {
    if (run.state[index] === PENDING && depsDone(run, index)) ready.push({ run, index });
  };
  for (const run of runs.values()) for (let i = 0; i < run.state.length; i++) enqueueIfReady(run, i);

  const block = (run: StageRun, index: number) => {
    if (run.state[index] !== PENDING) return;
    run.state[index] = BLOCKED;
    run.blocked++;
    emit({ type: 'task', stage: run.stage.name, index, state: 'blocked' });
    for (const d of run.dependents) {
      if (d.type === 'N_TO_N') block(d.run, index);
      else for (let i = 0; i < d.run.state.length; i++) block(d.run, i);
    }
  };
  const onFinished = (run: StageRun, index: number, ok: boolean) => {
    if (ok) {
      run.state[index] = DONE;
      run.done++;
      for (const d of run.dependents) {
        if (d.type === 'N_TO_N') enqueueIfReady(d.run, index);
        else if (run.done === run.stage.taskCount)
          for (let i = 0; i < d.run.state.length; i++) enqueueIfReady(d.run, i);
      }
    } else {
      run.state[index] = FAILED;
      run.failed++;
      for (const d of run.dependents) {
        if (d.type === 'N_TO_N') block(d.run, index);
        else for (let i = 0; i < d.run.state.length; i++) block(d.run, i);
      }
    }
  };

  const failures: TaskFailureBrief[] = [];
  const workers: Worker[] = [];
  let freeSlots = concurrency;
  let nextId = 1;
  let inFlight = 0;
  let interrupted = false;
  let wake: () => void = () => undefined;
  let lastSummaryWrite = Date.now();

  const spawnWorker = (): Worker => {
    const { path, execArgv } = workerModule();
    const child = fork(path, [], {
      execArgv,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    let resolveReady: () => void = () => undefined;
    const worker: Worker = { child, ready: new Promise<void>((r) => (resolveReady = r)) };
    const capture = (chunk: Buffer) => {
      const t = worker.task;
      if (t && t.stderr.length < 200) t.stderr.push(chunk.toString('utf8'));
    };
    child.stdout?.on('data', capture);
    child.stderr?.on('data', capture);
    child.on('message', (message: FromWorker) => {
      if (message.type === 'ready') resolveReady();
      else if (message.type === 'result') void finishTask(worker, message);
    });
    child.on('exit', (code, sig) => {
      const idx = workers.indexOf(worker);
      if (idx >= 0) workers.splice(idx, 1);
      resolveReady();
      const t = worker.task;
      if (t) {
        const detail = t.stderr.join('').trim();
        const reason = `worker process died (${sig ? `signal ${sig}` : `exit code ${code}`}) while running ${t.stage.stage.name}[${t.index}]`;
        void finishTask(
          worker,
          {
            type: 'result',
            id: t.id,
            status: interrupted ? 'interrupted' : 'failed',
            durationMs: 0,
            error: detail ? `${reason}: ${firstLine(detail.split('\n').slice(-1)[0] ?? detail)}` : reason,
          },
          detail,
        );
      }
    });
    workers.push(worker);
    return worker;
  };

  const finishTask = async (
    worker: Worker,
    message: Extract<FromWorker, { type: 'result' }>,
    crashDetail?: string,
  ) => {
    const t = worker.task;
    if (!t || t.id !== message.id) return;
    worker.task = undefined;
    const { stage: run, index } = t;
    if (message.status === 'done' || message.status === 'skipped') {
      onFinished(run, index, true);
      if (message.status === 'skipped') run.skipped++;
      emit({
        type: 'task',
        stage: run.stage.name,
        index,
        state: message.status,
        durationMs: message.durationMs,
      });
    } else if (message.status === 'interrupted') {
      run.state[index] = PENDING;
      emit({ type: 'task', stage: run.stage.name, index, state: 'interrupted' });
    } else {
      onFinished(run, index, false);
      const error = message.error ?? 'failed';
      failures.push({
        stage: run.stage.name,
        index,
        error: firstLine(error),
        log: layout.log(run.stage.name, index),
      });
      if (crashDetail !== undefined) {
        // the worker could not record its own failure: do it here
        const now = new Date().toISOString();
        const failure: TaskFailure = {
          stage: run.stage.name,
          index,
          items: itemsOfTask(plan.graph, run.stage, index).map((i) => i.id),
          ...partRecord(run.stage, index),
          startedAt: now,
          failedAt: now,
          error: firstLine(error),
          detail: `${error}\n${crashDetail}`,
          log: layout.log(run.stage.name, index),
          host: hostname(),
          attempt: 1,
        };
        await storage
          .writeAtomic(layout.failure(run.stage.name, index), JSON.stringify(failure, null, 2) + '\n')
          .catch(() => undefined);
      }
      emit({ type: 'task', stage: run.stage.name, index, state: 'failed', error: firstLine(error) });
    }
    inFlight--;
    freeSlots += run.slots;
    if (Date.now() - lastSummaryWrite > 5000) {
      lastSummaryWrite = Date.now();
      void storage
        .writeAtomic(layout.summary, JSON.stringify(summary('running'), null, 2) + '\n')
        .catch(() => undefined);
    }
    wake();
  };

  const onAbort = () => {
    interrupted = true;
    ready.length = 0;
    for (const w of workers)
      if (w.task && w.child.connected) w.child.send({ type: 'abort' } satisfies ToWorker);
    setTimeout(() => {
      for (const w of workers) if (w.task) w.child.kill('SIGKILL');
    }, options.graceMs ?? 10_000).unref();
    wake();
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });

  try {
    for (;;) {
      // dispatch while there is work and room
      while (!interrupted && ready.length > 0) {
        const head = ready[0]!;
        if (head.run.slots > freeSlots) break;
        ready.shift();
        if (head.run.state[head.index] !== PENDING) continue;
        let worker = workers.find((w) => !w.task);
        if (!worker) {
          if (workers.length >= concurrency) {
            ready.unshift(head);
            break;
          }
          worker = spawnWorker();
        }
        head.run.state[head.index] = RUNNING;
        freeSlots -= head.run.slots;
        inFlight++;
        const id = nextId++;
        worker.task = { id, stage: head.run, index: head.index, stderr: [] };
        emit({ type: 'task', stage: head.run.stage.name, index: head.index, state: 'started' });
        const w = worker;
        const message: ToWorker = {
          type: 'run',
          id,
          planUri: layout.plan,
          stage: head.run.stage.name,
          index: head.index,
        };
        void w.ready.then(() => {
          if (w.child.connected) w.child.send(message);
        });
      }
      if (inFlight === 0 && (interrupted || ready.length === 0)) break;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    for (const w of workers.splice(0)) {
      if (w.child.connected) w.child.disconnect();
      w.child.kill();
    }
  }

  const anyFailed = [...runs.values()].some((r) => r.failed > 0 || r.blocked > 0);
  const final = summary(interrupted ? 'interrupted' : anyFailed ? 'failed' : 'succeeded');
  await storage.writeAtomic(layout.summary, JSON.stringify(final, null, 2) + '\n');
  let report: { uri: string } | { error: string } | undefined;
  if (options.report !== false) {
    // the report is a view of the run: failing to write it never changes the run's outcome
    report = await writeRunReport(storage, plan).then(
      (r) => ({ uri: r.uri }),
      (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
    );
  }
  emit({ type: 'run-finished', summary: final, failures, ...(report ? { report } : {}) });
  return final;
}
