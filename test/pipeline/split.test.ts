// Stages that split each item over several tasks (`tasksPerItem`): what the file may say, what
// the graph becomes (task counts, item and part of each task, dependencies), what plan shows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import {
  describeGraph,
  itemTask,
  parsePipeline,
  pipelineJsonSchema,
  PipelineError,
  summarizeGraph,
  taskItems,
  taskPart,
  type JobGraph,
} from '../../lib/pipeline/index.js';
import type { Item } from '../../lib/pipeline/types.js';
import { parseRunPlan } from '../../lib/runners/records.js';
import { HEAD, items, yaml, compileText, stageOf } from './fixtures.js';

const FILE = 'split.yaml';

function compile(text: string, resolved: number | Record<string, Item[]> = 2): JobGraph {
  return compileText(FILE, text, resolved);
}

/** The message of the PipelineError that parsing (and, with `resolved`, compiling) `text` throws. */
function errorOf(text: string, resolved?: number): string {
  try {
    if (resolved === undefined) parsePipeline(text, FILE);
    else compile(text, resolved);
  } catch (error) {
    if (error instanceof PipelineError) return error.message;
    throw error;
  }
  assert.fail('expected a PipelineError');
}

/** rgb over the scenes, chips split in 3 over rgb's items, a merge that needs the chips. */
const SPLIT = yaml(
  ...HEAD,
  '  rgb: { job: rgb, foreach: scenes }',
  '  chips:',
  '    job: chip',
  '    foreach: rgb',
  '    tasksPerItem: 3',
  '    params: { image: rgb }',
  '  merge: { job: merge, needs: [chips], params: { chips: chips } }',
);

describe('tasksPerItem: the graph', () => {
  it('gives a split stage items x parts tasks and makes it wait for all of its foreach stage', () => {
    const graph = compile(SPLIT, 2);
    const rgb = stageOf(graph, 'rgb');
    const chips = stageOf(graph, 'chips');
    const merge = stageOf(graph, 'merge');
    assert.deepEqual([rgb.tasksPerItem, rgb.taskCount, merge.tasksPerItem, merge.taskCount], [1, 2, 1, 1]);
    assert.deepEqual(
      {
        itemsFrom: chips.itemsFrom,
        itemCount: chips.itemCount,
        itemsPerTask: chips.itemsPerTask,
        tasksPerItem: chips.tasksPerItem,
        taskCount: chips.taskCount,
        dependsOn: chips.dependsOn,
      },
      {
        itemsFrom: 'scenes',
        itemCount: 2,
        itemsPerTask: 1,
        tasksPerItem: 3,
        taskCount: 6,
        dependsOn: [{ stage: 'rgb', type: 'FAN_IN', split: true }],
      },
    );
    assert.deepEqual(merge.dependsOn, [{ stage: 'chips', type: 'FAN_IN' }]);
  });

  it('maps task i to item floor(i / tasksPerItem), part i % tasksPerItem', () => {
    const graph = compile(SPLIT, 2);
    const chips = stageOf(graph, 'chips');
    const scenes = items(2);
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((i) => [taskItems(chips, graph, i).map((item) => item.id), taskPart(chips, i)]),
      [
        [[scenes[0]!.id], { index: 0, count: 3 }],
        [[scenes[0]!.id], { index: 1, count: 3 }],
        [[scenes[0]!.id], { index: 2, count: 3 }],
        [[scenes[1]!.id], { index: 0, count: 3 }],
        [[scenes[1]!.id], { index: 1, count: 3 }],
        [[scenes[1]!.id], { index: 2, count: 3 }],
      ],
    );
    assert.deepEqual([itemTask(chips, 0), itemTask(chips, 1)], [0, 3]);
    assert.throws(
      () => taskItems(chips, graph, 6),
      /task index 6 is out of range: expected an integer in \[0, 5\]/,
    );
    // not split: no part
    assert.equal(taskPart(stageOf(graph, 'rgb'), 1), undefined);
  });

  it('splits a stage that runs over an input set directly', () => {
    const graph = compile(yaml(...HEAD, '  chips: { job: chip, foreach: scenes, tasksPerItem: 4 }'), 3);
    const chips = stageOf(graph, 'chips');
    assert.deepEqual(
      [
        chips.itemsFrom,
        chips.itemCount,
        chips.itemsPerTask,
        chips.tasksPerItem,
        chips.taskCount,
        chips.dependsOn,
      ],
      ['scenes', 3, 1, 4, 12, []],
    );
  });

  it('does not inherit the grouping of the stage it runs over', () => {
    const graph = compile(
      yaml(
        ...HEAD,
        '  rgb: { job: rgb, foreach: scenes, itemsPerTask: 4 }',
        '  chips: { job: chip, foreach: rgb, tasksPerItem: 2, itemsPerTask: 1 }',
      ),
      10,
    );
    assert.deepEqual(
      [
        stageOf(graph, 'rgb').taskCount,
        stageOf(graph, 'chips').itemsPerTask,
        stageOf(graph, 'chips').taskCount,
      ],
      [3, 1, 20],
    );
  });

  it('compiles tasksPerItem: 1 to the same graph as no tasksPerItem', () => {
    const plain = yaml(
      ...HEAD,
      '  rgb: { job: rgb, foreach: scenes }',
      '  chips: { job: chip, foreach: rgb }',
    );
    const one = yaml(
      ...HEAD,
      '  rgb: { job: rgb, foreach: scenes }',
      '  chips: { job: chip, foreach: rgb, tasksPerItem: 1 }',
    );
    assert.deepEqual(compile(one, 3), compile(plain, 3));
    assert.deepEqual(stageOf(compile(plain, 3), 'chips').dependsOn, [{ stage: 'rgb', type: 'N_TO_N' }]);
  });

  it('allows exactly 10,000 tasks', () => {
    const graph = compile(yaml(...HEAD, '  chips: { job: chip, foreach: scenes, tasksPerItem: 4 }'), 2_500);
    assert.equal(stageOf(graph, 'chips').taskCount, 10_000);
  });
});

describe('tasksPerItem: what plan shows', () => {
  it('counts parts in the table and says why the dependency is FAN_IN', () => {
    assert.equal(
      describeGraph(compile(SPLIT, 2)),
      [
        'STAGE  JOB    TASKS                           DEPENDS ON           QUEUE  VCPUS  MEMORY  GPUS  TIMEOUT  ATTEMPTS',
        'rgb    rgb    2 (2 scenes)                    -                    cpu    2      2 GiB   0     1h       -',
        'chips  chip   6 (2 scenes, 3 tasks per item)  rgb (FAN_IN, split)  cpu    2      4 GiB   0     1h       -',
        'merge  merge  1                               chips (FAN_IN)       cpu    1      4 GiB   0     1h       -',
        '',
        "chips runs over rgb but waits for all of it (FAN_IN, not N_TO_N): it splits each item into 3 tasks, so its tasks do not pair one to one with rgb's.",
      ].join('\n'),
    );
  });

  it('gives tasksPerItem and the split dependency in the JSON summary', () => {
    const chips = summarizeGraph(compile(SPLIT, 2)).stages.find((s) => s.stage === 'chips')!;
    assert.equal(chips.tasks, 6);
    assert.equal(chips.tasksPerItem, 3);
    assert.deepEqual(chips.dependsOn, [{ stage: 'rgb', type: 'FAN_IN', split: true }]);
  });

  it('adds no note to a graph without split stages', () => {
    const text = describeGraph(compile(yaml(...HEAD, '  a: { job: smoke, foreach: scenes }'), 2));
    assert.equal(text.split('\n').length, 2);
  });
});

describe('tasksPerItem: invalid files fail with the path, the value and what is valid', () => {
  const cases: [string, string, string][] = [
    [
      'a job that cannot do parts',
      yaml(...HEAD, '  s:', '    job: smoke', '    foreach: scenes', '    tasksPerItem: 3'),
      `${FILE}: stages.s.tasksPerItem: expected 1 but got 3: job 'smoke' cannot split an item into parts (only chip, predict, predict-gpu can) (line 9)`,
    ],
    [
      'not an integer >= 1',
      yaml(...HEAD, '  s:', '    job: chip', '    foreach: scenes', '    tasksPerItem: 0'),
      `${FILE}: stages.s.tasksPerItem: expected an integer in [1, 10000] but got 0 (line 9)`,
    ],
    [
      'more than an array holds on its own',
      yaml(...HEAD, '  s:', '    job: chip', '    foreach: scenes', '    tasksPerItem: 10001'),
      `${FILE}: stages.s.tasksPerItem: expected an integer in [1, 10000] but got 10001 (line 9)`,
    ],
    [
      'a fraction',
      yaml(...HEAD, '  s:', '    job: chip', '    foreach: scenes', '    tasksPerItem: 1.5'),
      `${FILE}: stages.s.tasksPerItem: expected an integer in [1, 10000] but got 1.5 (line 9)`,
    ],
    [
      'a whole-stage job',
      yaml(...HEAD, '  gather:', '    job: catalog', '    tasksPerItem: 2'),
      [
        `${FILE}: stages.gather.tasksPerItem: expected 1 but got 2: job 'catalog' cannot split an item into parts (only chip, predict, predict-gpu can) (line 8)`,
        `${FILE}: stages.gather.tasksPerItem: tasksPerItem applies only to a stage with foreach; this stage runs as one task (line 8)`,
      ].join('\n'),
    ],
    [
      'no foreach',
      yaml(...HEAD, '  s:', '    job: chip', '    tasksPerItem: 2'),
      [
        `${FILE}: stages.s.foreach: expected an input set or stage to run over (job 'chip' runs once per item) but it is missing (line 6)`,
        `${FILE}: stages.s.tasksPerItem: tasksPerItem applies only to a stage with foreach; this stage runs as one task (line 8)`,
      ].join('\n'),
    ],
    [
      'several items per task',
      yaml(
        ...HEAD,
        '  s:',
        '    job: chip',
        '    foreach: scenes',
        '    tasksPerItem: 2',
        '    itemsPerTask: 4',
      ),
      `${FILE}: stages.s.itemsPerTask: expected 1 (or no itemsPerTask) because tasksPerItem is 2: a task of a split stage handles one part of one item, but got 4 (line 10)`,
    ],
    [
      'a stage running over a split stage',
      yaml(
        ...HEAD,
        '  chips: { job: chip, foreach: scenes, tasksPerItem: 3 }',
        '  after:',
        '    job: smoke',
        '    foreach: chips',
      ),
      `${FILE}: stages.after.foreach: expected a stage with one task per item, but 'chips' splits each item into 3 tasks (tasksPerItem: 3), so no stage can run task for task after it; use needs: [chips] to wait for the whole stage (line 9)`,
    ],
    [
      'a split stage running over a split stage',
      yaml(
        ...HEAD,
        '  chips: { job: chip, foreach: scenes, tasksPerItem: 3 }',
        '  again:',
        '    job: chip',
        '    foreach: chips',
        '    tasksPerItem: 2',
      ),
      `${FILE}: stages.again.foreach: expected a stage with one task per item, but 'chips' splits each item into 3 tasks (tasksPerItem: 3), so no stage can run task for task after it; use needs: [chips] to wait for the whole stage (line 9)`,
    ],
  ];
  for (const [name, text, message] of cases) it(name, () => assert.equal(errorOf(text), message));

  it('an unsplit stage with an explicit itemsPerTask may follow the stage a split one runs over', () => {
    assert.doesNotThrow(() =>
      parsePipeline(
        yaml(
          ...HEAD,
          '  rgb: { job: rgb, foreach: scenes, itemsPerTask: 2 }',
          '  chips: { job: chip, foreach: rgb, tasksPerItem: 2, itemsPerTask: 1 }',
          '  check: { job: smoke, foreach: rgb, itemsPerTask: 2, needs: [chips] }',
        ),
        FILE,
      ),
    );
  });
});

describe('tasksPerItem: the AWS Batch array limit, items x parts', () => {
  const text = yaml(...HEAD, '  s:', '    job: chip', '    foreach: scenes', '    tasksPerItem: 3');
  it('names the items, the parts and the most parts that fit', () => {
    assert.equal(
      errorOf(text, 4_000),
      `${FILE}: stages.s.tasksPerItem: expected at most 2 for 4,000 items but got 3 (4,000 items x 3 parts = 12,000 tasks, and an AWS Batch array holds at most 10,000) (line 9)`,
    );
  });
  it('says when there are too many items to split at all', () => {
    assert.equal(
      errorOf(text, 6_000),
      `${FILE}: stages.s.tasksPerItem: expected 1 for 6,000 items but got 3 (6,000 items x 3 parts = 18,000 tasks, and an AWS Batch array holds at most 10,000; items can be split only when there are at most 5,000) (line 9)`,
    );
  });
  it('checks a split stage that runs over another stage too', () => {
    const message = errorOf(SPLIT.replace('tasksPerItem: 3', 'tasksPerItem: 5'), 2_001);
    assert.match(
      message,
      /^split\.yaml: stages\.chips\.tasksPerItem: expected at most 4 for 2,001 items but got 5 \(2,001 items x 5 parts = 10,005 tasks/,
    );
  });
});

describe('tasksPerItem: the JSON Schema', () => {
  const validate = new Ajv2020({ strict: true, strictRequired: false, allErrors: true }).compile(
    pipelineJsonSchema(),
  );
  it('accepts a split chip stage', () => {
    assert.ok(validate(parse(SPLIT)), JSON.stringify(validate.errors));
  });
  const bad: [string, string, string][] = [
    [
      'a job without parts',
      yaml(...HEAD, '  s: { job: smoke, foreach: scenes, tasksPerItem: 2 }'),
      '/stages/s/tasksPerItem',
    ],
    ['a whole-stage job', yaml(...HEAD, '  s: { job: catalog, tasksPerItem: 1 }'), '/stages/s/tasksPerItem'],
    ['zero', yaml(...HEAD, '  s: { job: chip, foreach: scenes, tasksPerItem: 0 }'), '/stages/s/tasksPerItem'],
  ];
  for (const [name, text, where] of bad) {
    it(`rejects ${name}`, () => {
      assert.equal(validate(parse(text)), false);
      const paths = (validate.errors ?? []).map((e) => e.instancePath);
      assert.ok(paths.includes(where), `no error at '${where}' among ${JSON.stringify(paths)}`);
    });
  }
  it('accepts tasksPerItem: 1 on any per-item job', () => {
    assert.ok(validate(parse(yaml(...HEAD, '  s: { job: smoke, foreach: scenes, tasksPerItem: 1 }'))));
  });
});

describe('tasksPerItem: plans', () => {
  const plan = (graph: JobGraph): unknown => ({
    version: 1,
    runId: 'r',
    runUri: '/runs/r',
    createdAt: '2025-01-01T00:00:00.000Z',
    pipeline: { name: 'split', file: '/dev/null', fingerprint: 'f', spec: {} },
    graph,
  });

  it('reads a plan written before tasksPerItem existed as 1 per item', () => {
    const graph = compile(yaml(...HEAD, '  a: { job: smoke, foreach: scenes }'), 2);
    const old = JSON.parse(JSON.stringify(plan(graph)).replaceAll('"tasksPerItem":1,', '')) as {
      graph: { stages: object[] };
    };
    assert.ok(old.graph.stages.every((s) => !('tasksPerItem' in s)));
    assert.deepEqual(parseRunPlan(old, '/runs/r/plan.json').graph, graph);
  });

  it('keeps the tasksPerItem of a split stage and refuses a bad one', () => {
    const graph = compile(SPLIT, 2);
    assert.deepEqual(parseRunPlan(JSON.parse(JSON.stringify(plan(graph))), 'p').graph, graph);
    const bad = JSON.parse(
      JSON.stringify(plan(graph)).replace('"tasksPerItem":3', '"tasksPerItem":0'),
    ) as unknown;
    assert.throws(
      () => parseRunPlan(bad, '/runs/r/plan.json'),
      /^Error: \/runs\/r\/plan\.json: not a geobatch plan \(version 1\): graph\.stages\.1\.tasksPerItem: /,
    );
  });
});
