import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatRunStatus } from '../../lib/cli/status.js';
import { runLayout } from '../../lib/runners/layout.js';
import { runLocal } from '../../lib/runners/local.js';
import type { RunEvent } from '../../lib/runners/local.js';
import { readRunPlan } from '../../lib/runners/prepare.js';
import type { RunPlan, TaskFailure, TaskMarker } from '../../lib/runners/records.js';
import { readRunStatus } from '../../lib/runners/status.js';
import { createStorage } from '../../lib/storage/index.js';
import { items, plan, stage } from '../helpers/plans.js';

const storage = createStorage();

async function writePlan(p: RunPlan): Promise<void> {
  await storage.writeAtomic(runLayout(p.runUri).plan, JSON.stringify(p));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('local runner', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'geobatch-local-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('runs per-item and fan-in stages in dependency order and marks every task done', async () => {
    // GIVEN a -> b (N_TO_N) and c waiting for all of b (FAN_IN)
    const runUri = join(root, 'order');
    const scenes = items(6);
    const p = plan(
      runUri,
      [
        stage('a', { itemsFrom: 'scenes', count: 6 }),
        stage('b', { itemsFrom: 'scenes', count: 6, dependsOn: [{ stage: 'a', type: 'N_TO_N' }] }),
        stage('c', { dependsOn: [{ stage: 'b', type: 'FAN_IN' }] }),
      ],
      { scenes },
    );
    await writePlan(p);
    const events: RunEvent[] = [];
    // WHEN
    const summary = await runLocal({ storage, plan: p, concurrency: 2, onEvent: (e) => events.push(e) });
    // THEN
    assert.equal(summary.state, 'succeeded');
    assert.deepEqual(summary.stages, {
      a: { tasks: 6, done: 6, failed: 0, skipped: 0 },
      b: { tasks: 6, done: 6, failed: 0, skipped: 0 },
      c: { tasks: 1, done: 1, failed: 0, skipped: 0 },
    });
    const order = events
      .filter((e) => e.type === 'task')
      .map((e) => e.type === 'task' && `${e.stage}${e.index}:${e.state}`);
    for (let i = 0; i < 6; i++) {
      assert.ok(
        order.indexOf(`a${i}:done`) < order.indexOf(`b${i}:started`),
        `b${i} started before a${i} finished`,
      );
      assert.ok(order.indexOf(`b${i}:done`) < order.indexOf('c0:started'), 'c started before all of b');
    }
    assert.deepEqual((await readdir(join(runUri, 'markers', 'b'))).sort(), [
      '0.json',
      '1.json',
      '2.json',
      '3.json',
      '4.json',
      '5.json',
    ]);
    const marker = JSON.parse(await readFile(join(runUri, 'markers', 'a', '3.json'), 'utf8'));
    assert.deepEqual(marker.items, [scenes[3]!.id]);
    assert.equal(JSON.parse(await readFile(join(runUri, 'run.json'), 'utf8')).state, 'succeeded');
    assert.match(await readFile(join(runUri, 'logs', 'c', '0.log'), 'utf8'), /task c\[0\] job=smoke/);
  });

  test('a failing task is recorded, blocks only what depends on it, and a rerun runs only unfinished tasks', async () => {
    const runUri = join(root, 'fail');
    const scenes = items(4);
    const bad = scenes[2]!.id;
    const p = plan(
      runUri,
      [
        stage('a', { itemsFrom: 'scenes', count: 4, params: { failItems: [bad] } }),
        stage('b', { itemsFrom: 'scenes', count: 4, dependsOn: [{ stage: 'a', type: 'N_TO_N' }] }),
        stage('c', { dependsOn: [{ stage: 'b', type: 'FAN_IN' }] }),
      ],
      { scenes },
    );
    await writePlan(p);
    const summary = await runLocal({ storage, plan: p, concurrency: 2 });
    assert.equal(summary.state, 'failed');
    assert.deepEqual(summary.stages.a, { tasks: 4, done: 3, failed: 1, skipped: 0 });
    assert.equal(summary.stages.b!.done, 3, 'b ran for the three good scenes');
    assert.equal(summary.stages.c!.done, 0, 'c waits for all of b');
    assert.equal(await exists(join(runUri, 'markers', 'a', '2.json')), false);
    const failure = JSON.parse(
      await readFile(join(runUri, 'failures', 'a', '2.json'), 'utf8'),
    ) as TaskFailure;
    assert.match(failure.error, new RegExp(`item '${bad}' is listed in params.failItems`));
    assert.deepEqual(failure.items, [bad]);
    assert.match(await readFile(failure.log, 'utf8'), /ERROR smoke: item/);

    const status = await readRunStatus(storage, p);
    assert.deepEqual(
      status.stages.map((s) => [s.name, s.done, s.failed, s.pending]),
      [
        ['a', 3, 1, 0],
        ['b', 3, 0, 1],
        ['c', 0, 0, 1],
      ],
    );
    assert.equal(status.stages[0]!.failures[0]!.index, 2);

    // a rerun skips the 6 finished tasks and retries the failed one (which fails again: params are part of the plan)
    const events: RunEvent[] = [];
    await runLocal({ storage, plan: p, concurrency: 2, onEvent: (e) => events.push(e) });
    const started = events
      .filter((e) => e.type === 'task' && e.state === 'started')
      .map((e) => e.type === 'task' && `${e.stage}${e.index}`);
    assert.deepEqual(started, ['a2']);
  });

  test('a task that kills its worker process fails alone; the runner and other tasks carry on', async () => {
    const runUri = join(root, 'crash');
    const scenes = items(5);
    const p = plan(
      runUri,
      [stage('a', { itemsFrom: 'scenes', count: 5, params: { crashItems: [scenes[1]!.id] } })],
      { scenes },
    );
    await writePlan(p);
    const summary = await runLocal({ storage, plan: p, concurrency: 2 });
    assert.deepEqual(summary.stages.a, { tasks: 5, done: 4, failed: 1, skipped: 0 });
    const failure = JSON.parse(
      await readFile(join(runUri, 'failures', 'a', '1.json'), 'utf8'),
    ) as TaskFailure;
    assert.match(failure.error, /worker process died \(signal SIGKILL\) while running a\[1\]/);
  });

  test('an interrupted run keeps finished tasks; continuing it runs only the rest', async () => {
    const runUri = join(root, 'interrupt');
    const scenes = items(12);
    const p = plan(runUri, [stage('a', { itemsFrom: 'scenes', count: 12, params: { sleepMs: 150 } })], {
      scenes,
    });
    await writePlan(p);
    const controller = new AbortController();
    let done = 0;
    const first = await runLocal({
      storage,
      plan: p,
      concurrency: 2,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'task' && e.state === 'done' && ++done === 4) controller.abort();
      },
    });
    assert.equal(first.state, 'interrupted');
    const markers = await readdir(join(runUri, 'markers', 'a'));
    assert.ok(markers.length >= 4 && markers.length < 12, `${markers.length} markers after interrupt`);
    assert.equal(await exists(join(runUri, 'failures')), false, 'an interruption is not a failure');
    const leftovers = (await readdir(join(runUri, 'markers', 'a'))).filter((n) => n.startsWith('.'));
    assert.deepEqual(leftovers, [], 'no temporary files left');

    const events: RunEvent[] = [];
    const second = await runLocal({ storage, plan: p, concurrency: 2, onEvent: (e) => events.push(e) });
    assert.equal(second.state, 'succeeded');
    const started = events.filter((e) => e.type === 'task' && e.state === 'started').length;
    assert.equal(started, 12 - markers.length);
    assert.equal((await readdir(join(runUri, 'markers', 'a'))).length, 12);
  });

  test('a stage needing more vCPUs than the pool runs alone', async () => {
    const runUri = join(root, 'slots');
    const scenes = items(4);
    const p = plan(
      runUri,
      [
        stage('light', { itemsFrom: 'scenes', count: 4, params: { sleepMs: 50 } }),
        stage('heavy', { itemsFrom: 'scenes', count: 4, vcpus: 8, params: { sleepMs: 50 } }),
      ],
      { scenes },
    );
    await writePlan(p);
    let running = 0;
    let heavyOverlap = false;
    const heavyRunning = new Set<number>();
    await runLocal({
      storage,
      plan: p,
      concurrency: 2,
      onEvent: (e) => {
        if (e.type !== 'task') return;
        if (e.state === 'started') {
          running++;
          if (e.stage === 'heavy') heavyRunning.add(e.index);
          if (heavyRunning.size > 0 && running > 1) heavyOverlap = true;
        } else if (e.state === 'done') {
          running--;
          if (e.stage === 'heavy') heavyRunning.delete(e.index);
        }
      },
    });
    assert.equal(heavyOverlap, false);
  });
  test('each task of a split stage does one part of one item, and its records say which', async () => {
    // GIVEN chips split in 2 over 2 scenes whose images do not exist, so every task fails
    const runUri = join(root, 'parts');
    const scenes = items(2);
    const p = plan(runUri, [stage('chips', { job: 'chip', itemsFrom: 'scenes', count: 2, parts: 2 })], {
      scenes,
    });
    await writePlan(p);
    // WHEN
    const summary = await runLocal({ storage, plan: p, concurrency: 2 });
    // THEN task i is part i % 2 of scene floor(i / 2), in its failure record, its log and status
    assert.deepEqual(summary.stages.chips, { tasks: 4, done: 0, failed: 4, skipped: 0 });
    const failures = await Promise.all(
      [0, 1, 2, 3].map(
        async (i) =>
          JSON.parse(await readFile(join(runUri, 'failures', 'chips', `${i}.json`), 'utf8')) as TaskFailure,
      ),
    );
    assert.deepEqual(
      failures.map((f) => [f.index, f.items, f.part]),
      [
        [0, [scenes[0]!.id], { index: 0, count: 2 }],
        [1, [scenes[0]!.id], { index: 1, count: 2 }],
        [2, [scenes[1]!.id], { index: 0, count: 2 }],
        [3, [scenes[1]!.id], { index: 1, count: 2 }],
      ],
    );
    assert.match(
      await readFile(join(runUri, 'logs', 'chips', '3.log'), 'utf8'),
      new RegExp(`task chips\\[3\\] job=chip items=${scenes[1]!.id} part 2/2`),
    );
    const status = await readRunStatus(storage, p);
    assert.deepEqual(
      status.stages[0]!.failures.map((f) => [f.index, f.items, f.part]),
      failures.map((f) => [f.index, f.items, f.part]),
    );
    assert.match(
      formatRunStatus(status),
      new RegExp(`^ {2}chips\\[3\\] \\(${scenes[1]!.id} part 2/2\\): `, 'm'),
    );
  });

  test('a job that cannot do parts refuses to run in a split stage', async () => {
    const runUri = join(root, 'no-parts');
    const scenes = items(1);
    const p = plan(runUri, [stage('s', { itemsFrom: 'scenes', count: 1, parts: 2 })], { scenes });
    await writePlan(p);
    const summary = await runLocal({ storage, plan: p, concurrency: 1 });
    assert.deepEqual(summary.stages.s, { tasks: 2, done: 0, failed: 2, skipped: 0 });
    const failure = JSON.parse(
      await readFile(join(runUri, 'failures', 's', '1.json'), 'utf8'),
    ) as TaskFailure;
    assert.equal(
      failure.error,
      "stage 's' splits each item into 2 tasks (tasksPerItem) but job 'smoke' cannot do a part of an item",
    );
  });
  test('a run planned before tasksPerItem existed reads as one task per item and runs', async () => {
    const runUri = join(root, 'old-plan');
    const scenes = items(3);
    const p = plan(runUri, [stage('a', { itemsFrom: 'scenes', count: 3 })], { scenes });
    // GIVEN a plan.json without tasksPerItem, as older versions wrote it
    const text = JSON.stringify(p).replaceAll('"tasksPerItem":1,', '');
    assert.ok(!text.includes('tasksPerItem'));
    await storage.writeAtomic(runLayout(runUri).plan, text);
    // WHEN it is read back to continue it
    const read = await readRunPlan(storage, runUri);
    // THEN
    assert.deepEqual(read.graph, p.graph);
    assert.equal((await runLocal({ storage, plan: read, concurrency: 2 })).state, 'succeeded');
    const marker = JSON.parse(await readFile(join(runUri, 'markers', 'a', '2.json'), 'utf8')) as TaskMarker;
    assert.deepEqual(marker.items, [scenes[2]!.id]);
    assert.equal(marker.part, undefined);
  });
});
