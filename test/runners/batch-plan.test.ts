/** The pure parts of the Batch runner: names, tags, task lists, what a resume submits. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchError } from '../../lib/runners/batch-errors.js';
import {
  batchJobName,
  conventionalTarget,
  describeSubmission,
  jobTags,
  maxJobTags,
  parseTagOptions,
  planSubmission,
  resumeTasks,
  targetFromDescriptor,
} from '../../lib/runners/batch-plan.js';
import { formatTaskRanges, isAllTasks, parseTaskRanges } from '../../lib/runners/task-indexes.js';
import { graphStage, mixedGraph, runId, s3Items, testDescriptor } from './batch-fixtures.js';

const validName = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

describe('job names', () => {
  const cases: [string, string, string, number, string][] = [
    ['xview', 'chip', runId, 0, `xview-chip-${runId}`],
    ['xview', 'chip', runId, 2, `xview-chip-${runId}-r2`],
    ['my.pipe', 'st age', 'r/1', 0, 'my-pipe-st-age-r-1'],
    ['-lead', 'x', 'id', 0, 'lead-x-id'],
  ];
  for (const [pipeline, stage, id, n, expected] of cases) {
    test(`${pipeline} ${stage} ${id} ${n} -> ${expected}`, () => {
      assert.equal(batchJobName(pipeline, stage, id, n), expected);
    });
  }
  test('long names are cut to 128 characters, keeping the run id and resume number', () => {
    const name = batchJobName('p'.repeat(100), 's'.repeat(100), runId, 12);
    assert.equal(name.length, 128);
    assert.ok(name.endsWith(`-${runId}-r12`));
    assert.match(name, validName);
  });
});

describe('tags', () => {
  test('--tag key=value pairs are cost tags; reserved and malformed keys are refused', () => {
    assert.deepEqual(parseTagOptions(['team=mapping', 'cost-center=42', 'note=']), {
      team: 'mapping',
      'cost-center': '42',
      note: '',
    });
    for (const bad of ['novalue', 'aws:x=1', 'geobatch:run=x', '=v', 'k=' + 'v'.repeat(257), 'bad*key=1']) {
      assert.throws(() => parseTagOptions([bad]), BatchError, bad);
    }
  });

  test(`at most ${maxJobTags} tags per job leave room for the job definitions' cost tags under Batch's 50`, () => {
    const extra = Object.fromEntries(Array.from({ length: maxJobTags - 3 }, (_, i) => [`t${i}`, 'v']));
    assert.equal(Object.keys(jobTags({ runId, pipeline: 'p', stage: 's' }, extra)).length, maxJobTags);
    assert.throws(
      () => jobTags({ runId, pipeline: 'p', stage: 's' }, { ...extra, one: 'more' }),
      /11 tags on each job \(3 geobatch:\* tags \+ 8 --tag\) but at most 10 fit/,
    );
  });
});

describe('task index ranges', () => {
  const cases: [number[], string][] = [
    [[0], '0'],
    [[0, 1, 2], '0-2'],
    [[0, 1, 2, 5, 7, 8], '0-2,5,7-8'],
    [[3, 9999], '3,9999'],
  ];
  for (const [list, text] of cases) {
    test(`${JSON.stringify(list)} <-> ${text}`, () => {
      assert.equal(formatTaskRanges(list), text);
      assert.deepEqual(parseTaskRanges(text), list);
    });
  }
  test('malformed or unordered lists are refused', () => {
    for (const bad of ['', '1,1', '3-1', '2,1', 'a', '1-', '-1'])
      assert.throws(() => parseTaskRanges(bad), /--indexes/, bad);
  });
  test('all tasks', () => {
    assert.ok(isAllTasks([0, 1, 2], 3));
    assert.ok(!isAllTasks([0, 1], 3));
    assert.ok(!isAllTasks([1, 2, 3], 3));
  });
});

describe('what a resume submits', () => {
  const graph = mixedGraph(6);
  const done = (entries: Record<string, number[]>) =>
    new Map(Object.entries(entries).map(([k, v]) => [k, new Set(v)]));

  test('N_TO_N-joined stages get the union of their unfinished tasks; later stages all of theirs', () => {
    const tasks = resumeTasks(graph, done({ chip: [0, 1, 2, 3], shards: [0, 1, 4] }));
    assert.deepEqual(Object.fromEntries(tasks), {
      chip: [2, 3, 4, 5],
      shards: [2, 3, 4, 5],
      merge: [0],
      train: [0],
    });
  });

  test('complete stages are left out', () => {
    const tasks = resumeTasks(
      graph,
      done({ chip: [0, 1, 2, 3, 4, 5], shards: [0, 1, 2, 3, 4, 5], merge: [0] }),
    );
    assert.deepEqual(Object.fromEntries(tasks), { train: [0] });
    assert.equal(
      resumeTasks(
        graph,
        done({ chip: [0, 1, 2, 3, 4, 5], shards: [0, 1, 2, 3, 4, 5], merge: [0], train: [0] }),
      ).size,
      0,
    );
  });

  test('a stage that only fans in from a resubmitted one keeps its own tasks', () => {
    const g = {
      pipeline: 'p',
      items: { a: s3Items(4) },
      stages: [
        graphStage('first', { job: 'chip', itemsFrom: 'a', taskCount: 4 }),
        graphStage('other', {
          job: 'chip',
          itemsFrom: 'a',
          taskCount: 4,
          dependsOn: [{ stage: 'first', type: 'FAN_IN' }],
        }),
      ],
    };
    assert.deepEqual(Object.fromEntries(resumeTasks(g, done({ first: [0, 1, 2], other: [0] }))), {
      first: [3],
      other: [1, 2, 3],
    });
  });
});

describe('planning errors', () => {
  const target = targetFromDescriptor(testDescriptor());
  const run = (graph: ReturnType<typeof mixedGraph>) => ({ runId, runUri: 's3://bucket/r', graph });

  test('fractional vCPUs cannot run on EC2 compute environments', () => {
    const graph = mixedGraph(2);
    const stages = graph.stages.map((s) =>
      s.name === 'merge' ? { ...s, resources: { ...s.resources, vcpus: 0.5 } } : s,
    );
    assert.throws(
      () => planSubmission({ run: run({ ...graph, stages }), target }),
      /stage 'merge': resources.vcpus = 0.5 cannot run on AWS Batch's EC2 compute environments, which take whole vCPUs/,
    );
  });

  test('a stage asking for GPUs from a CPU job is refused', () => {
    const graph = mixedGraph(2);
    const stages = graph.stages.map((s) =>
      s.name === 'merge' ? { ...s, queue: 'gpu' as const, resources: { ...s.resources, gpus: 1 } } : s,
    );
    assert.throws(
      () => planSubmission({ run: run({ ...graph, stages }), target }),
      /stage 'merge' needs the gpu queue \(resources.gpus = 1\) but job 'merge' runs on the cpu queue/,
    );
  });
});

test('the offline plan names every call, with placeholders for job ids', () => {
  const target = conventionalTarget('dev', {
    chip: { queue: 'cpu' },
    smoke: { queue: 'cpu' },
    merge: { queue: 'cpu' },
    train: { queue: 'gpu' },
  });
  const planned = planSubmission({
    run: { runId, runUri: 's3://bucket/runs/xview/r', graph: mixedGraph(3) },
    target,
  });
  const text = describeSubmission(planned, target);
  assert.match(text, /^1\. SubmitJob chip$/m);
  assert.match(text, /^ {5}jobQueue {7}geobatch-dev-gpu$/m);
  assert.match(text, /^ {5}jobDefinition {2}geobatch-dev-train \(the revision deployed in 'dev'\)$/m);
  assert.match(text, /^ {5}array {10}3 children$/m);
  assert.match(text, /^ {5}dependsOn {6}chip \(N_TO_N: child i after child i\)$/m);
  assert.match(text, /^ {5}dependsOn {6}shards \(whole job\)$/m);
  assert.match(text, /^ {5}retryStrategy {2}5 attempts \(spot reclaims retried, other failures exit\)$/m);
  assert.match(text, /^ {5}resources {6}VCPU=8 MEMORY=30000 GPU=1, timeout 14400 s$/m);
});

describe('a stage split into several tasks per item', () => {
  // chips: 2 images x 3 parts, running over `first` but waiting for all of it
  const graph = {
    pipeline: 'xview',
    items: { images: s3Items(2) },
    stages: [
      graphStage('first', { job: 'smoke', itemsFrom: 'images', taskCount: 2 }),
      graphStage('chips', {
        job: 'chip',
        itemsFrom: 'images',
        itemCount: 2,
        tasksPerItem: 3,
        taskCount: 6,
        dependsOn: [{ stage: 'first', type: 'FAN_IN', split: true }],
      }),
    ],
  };
  const target = conventionalTarget('dev', { smoke: { queue: 'cpu' }, chip: { queue: 'cpu' } });

  test('is an array of items x parts with a plain dependency, and the offline plan says why', () => {
    const planned = planSubmission({ run: { runId, runUri: 's3://bucket/runs/xview/r', graph }, target });
    const chips = planned.jobs[1]!;
    assert.deepEqual(chips.request.arrayProperties, { size: 6 });
    assert.deepEqual(chips.dependsOn, [{ stage: 'first', split: true }]);
    assert.deepEqual(chips.tasks, [0, 1, 2, 3, 4, 5]);
    const text = describeSubmission(planned, target);
    assert.match(
      text,
      /^ {5}dependsOn {6}first \(whole job, not N_TO_N: this stage splits each item into tasks \(tasksPerItem\), so its children do not pair with first's\)$/m,
    );
    assert.match(text, /^ {5}array {10}6 children$/m);
  });

  test('a resume resubmits the unfinished parts only, not joined to the stage it runs over', () => {
    const done = new Map([
      ['first', new Set([1])],
      ['chips', new Set([0, 1, 2, 4])],
    ]);
    // first's unfinished task 0 is not unioned into chips (no N_TO_N), nor the other way round
    assert.deepEqual(Object.fromEntries(resumeTasks(graph, done)), { first: [0], chips: [3, 5] });
  });
});
