import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catalog } from '../../jobs/catalog.js';
import {
  compilePipeline,
  defaultItemsPerTask,
  itemTask,
  parsePipeline,
  PipelineError,
  taskItems,
  type JobGraph,
  type PipelineSpec,
} from '../../lib/pipeline/index.js';
import type { Item } from '../../lib/pipeline/types.js';
import { HEAD, items, QUICKSTART, yaml, compileText, stageOf } from './fixtures.js';

const FILE = 'quickstart.yaml';

function compile(text: string, resolved: number | Record<string, Item[]> = 3): JobGraph {
  return compileText(FILE, text, resolved);
}

function compileError(text: string, resolved: number | Record<string, Item[]> = 3): string {
  try {
    compile(text, resolved);
  } catch (error) {
    if (error instanceof PipelineError) return error.message;
    throw error;
  }
  assert.fail('expected a PipelineError');
}

describe('defaultItemsPerTask', () => {
  const cases: [number, number][] = [
    [0, 1],
    [1, 1],
    [10_000, 1],
    [10_001, 2],
    [20_000, 2],
    [20_001, 3],
    [25_000, 3],
    [1_000_000, 100],
  ];
  for (const [n, k] of cases)
    it(`${n} items -> ${k} per task`, () => assert.equal(defaultItemsPerTask(n), k));
});

describe('compilePipeline', () => {
  it('compiles the quickstart: one task per scene, then a fan-in', () => {
    const graph = compile(QUICKSTART, 3);
    assert.equal(graph.pipeline, 'quickstart');
    assert.deepEqual(graph.items, { scenes: items(3) });
    assert.deepEqual(graph.stages, [
      {
        name: 'inspect',
        job: 'inspect',
        params: { sampleStep: 4 },
        itemsFrom: 'scenes',
        itemCount: 3,
        itemsPerTask: 1,
        tasksPerItem: 1,
        taskCount: 3,
        dependsOn: [],
        queue: 'cpu',
        resources: { vcpus: 1, memoryMiB: 2048, gpus: 0, timeoutSeconds: 1800 },
      },
      {
        name: 'catalog',
        job: 'catalog',
        params: {},
        itemCount: 0,
        itemsPerTask: 1,
        tasksPerItem: 1,
        taskCount: 1,
        dependsOn: [{ stage: 'inspect', type: 'FAN_IN' }],
        queue: 'cpu',
        resources: { vcpus: 1, memoryMiB: 2048, gpus: 0, timeoutSeconds: 1800 },
      },
    ]);
  });

  it('groups 25,000 items 3 per task into 8,334 tasks', () => {
    const graph = compile(yaml(...HEAD, '  inspect: { job: inspect, foreach: scenes }'), 25_000);
    const stage = stageOf(graph, 'inspect');
    assert.equal(stage.itemCount, 25_000);
    assert.equal(stage.itemsPerTask, 3);
    assert.equal(stage.taskCount, 8_334);
    assert.deepEqual(taskItems(stage, graph, 0), items(3));
    assert.deepEqual(
      taskItems(stage, graph, 8_333).map((i) => i.id),
      ['scene24999'],
    );
    assert.equal(itemTask(stage, 0), 0);
    assert.equal(itemTask(stage, 5), 1);
    assert.equal(itemTask(stage, 24_999), 8_333);
  });

  it('keeps exactly 10,000 items one per task', () => {
    const stage = stageOf(compile(yaml(...HEAD, '  s: { job: smoke, foreach: scenes }'), 10_000), 's');
    assert.deepEqual([stage.itemsPerTask, stage.taskCount], [1, 10_000]);
  });

  it('uses an explicit itemsPerTask', () => {
    const graph = compile(yaml(...HEAD, '  s: { job: smoke, foreach: scenes, itemsPerTask: 4 }'), 10);
    const stage = stageOf(graph, 's');
    assert.deepEqual([stage.itemsPerTask, stage.taskCount], [4, 3]);
    assert.deepEqual(
      [0, 1, 2].map((i) => taskItems(stage, graph, i).length),
      [4, 4, 2],
    );
  });

  it('makes an N_TO_N chain inherit the items and grouping of the stage it runs after', () => {
    const graph = compile(
      yaml(
        ...HEAD,
        '  c: { job: smoke, foreach: b }',
        '  b: { job: inspect, foreach: a, itemsPerTask: 3 }',
        '  a: { job: smoke, foreach: scenes }',
      ),
      25_000,
    );
    assert.deepEqual(
      graph.stages.map((s) => [s.name, s.itemsFrom, s.itemCount, s.itemsPerTask, s.taskCount, s.dependsOn]),
      [
        ['a', 'scenes', 25_000, 3, 8_334, []],
        ['b', 'scenes', 25_000, 3, 8_334, [{ stage: 'a', type: 'N_TO_N' }]],
        ['c', 'scenes', 25_000, 3, 8_334, [{ stage: 'b', type: 'N_TO_N' }]],
      ],
    );
  });

  it('puts foreach first in dependsOn, then needs as FAN_IN in their order', () => {
    const graph = compile(
      yaml(
        ...HEAD,
        '  a: { job: smoke, foreach: scenes }',
        '  x: { job: catalog }',
        '  y: { job: catalog }',
        '  b: { job: smoke, foreach: a, needs: [y, x] }',
      ),
    );
    assert.deepEqual(stageOf(graph, 'b').dependsOn, [
      { stage: 'a', type: 'N_TO_N' },
      { stage: 'y', type: 'FAN_IN' },
      { stage: 'x', type: 'FAN_IN' },
    ]);
  });

  it('orders stages so each comes after what it waits for, ties by file order', () => {
    const graph = compile(
      yaml(
        ...HEAD,
        '  report: { job: catalog, needs: [train] }',
        '  train: { job: catalog, needs: [prep] }',
        '  prep: { job: smoke, foreach: scenes }',
        '  extra: { job: smoke, foreach: scenes }',
        '  check: { job: smoke, foreach: prep }',
      ),
    );
    assert.deepEqual(
      graph.stages.map((s) => s.name),
      ['prep', 'train', 'report', 'extra', 'check'],
    );
  });

  it('is deterministic', () => {
    assert.deepEqual(compile(QUICKSTART, 5), compile(QUICKSTART, 5));
  });

  it('merges resource overrides over the catalog entry and chooses the queue by gpus', () => {
    const graph = compile(
      yaml(
        ...HEAD,
        '  plain: { job: inspect, foreach: scenes }',
        '  bigger: { job: inspect, foreach: scenes, resources: { vcpus: 4, sharedMemoryMiB: 1024 } }',
        '  gpu: { job: inspect, foreach: scenes, retries: 3, resources: { gpus: 1, memoryMiB: 16384, timeoutSeconds: 60 } }',
        '  cpu: { job: inspect, foreach: scenes, resources: { gpus: 0 } }',
      ),
    );
    const base = catalog.inspect;
    assert.deepEqual(stageOf(graph, 'plain').resources, {
      vcpus: base.vcpus,
      memoryMiB: base.memoryMiB,
      gpus: 0,
      timeoutSeconds: base.timeoutSeconds,
    });
    assert.deepEqual(stageOf(graph, 'bigger').resources, {
      vcpus: 4,
      memoryMiB: base.memoryMiB,
      gpus: 0,
      timeoutSeconds: base.timeoutSeconds,
      sharedMemoryMiB: 1024,
    });
    const gpu = stageOf(graph, 'gpu');
    assert.deepEqual(gpu.resources, { vcpus: base.vcpus, memoryMiB: 16384, gpus: 1, timeoutSeconds: 60 });
    assert.equal(gpu.queue, 'gpu');
    assert.equal(gpu.attempts, 3);
    assert.equal(stageOf(graph, 'cpu').queue, 'cpu');
    assert.equal(stageOf(graph, 'plain').attempts, undefined);
  });

  it('keeps only the declared input sets, in the order given', () => {
    const scenes = [...items(3)].reverse();
    const graph = compile(QUICKSTART, { scenes, other: items(2, 'x') });
    assert.deepEqual(graph.items, { scenes });
  });
});

describe('compilePipeline: invalid graphs fail with every issue, at its path and line', () => {
  const cases: [string, string, number | Record<string, Item[]>, string][] = [
    [
      'an input set with no items',
      yaml(
        'version: 1',
        'name: a',
        'inputs:',
        '  scenes: [data/*.tif, more/*.tif]',
        '  other: x.tif',
        'stages:',
        '  s: { job: smoke, foreach: scenes }',
      ),
      { scenes: [], other: items(1) },
      `${FILE}: inputs.scenes: expected at least one file but nothing matches data/*.tif, more/*.tif (line 4)`,
    ],
    [
      'two items with the same id',
      QUICKSTART,
      { scenes: [...items(2), { id: 'scene00001', uri: '/other/scene00001.tif' }] },
      `${FILE}: inputs.scenes: 2 items share the id 'scene00001' (/data/scene1.tif, /other/scene00001.tif); outputs are named by item id, so ids must be unique (line 4)`,
    ],
    [
      'an input set the caller did not resolve',
      QUICKSTART,
      {},
      `${FILE}: inputs.scenes: no items were resolved for this input set (a bug in the caller: list every input set) (line 4)`,
    ],
    [
      'an explicit itemsPerTask that needs more than 10,000 tasks',
      yaml(...HEAD, '  s:', '    job: smoke', '    foreach: scenes', '    itemsPerTask: 2'),
      25_000,
      `${FILE}: stages.s.itemsPerTask: expected at least 3 for 25,000 items (an AWS Batch array holds at most 10,000 tasks) but got 2 (line 9)`,
    ],
    [
      'an N_TO_N stage whose itemsPerTask differs from the automatic one it runs after',
      yaml(
        ...HEAD,
        '  a: { job: smoke, foreach: scenes }',
        '  b:',
        '    job: smoke',
        '    foreach: a',
        '    itemsPerTask: 1',
      ),
      25_000,
      `${FILE}: stages.b.itemsPerTask: expected 3, the itemsPerTask of stage 'a' (this stage runs task for task after it), but got 1 (line 10)`,
    ],
  ];
  for (const [name, text, resolved, message] of cases) {
    it(name, () => assert.equal(compileError(text, resolved), message));
  }

  it('re-checks a spec built in code, naming paths without a file', () => {
    const { spec } = parsePipeline(QUICKSTART, FILE);
    const broken: PipelineSpec = {
      ...spec,
      stages: {
        ...spec.stages,
        inspect: { ...spec.stages.inspect!, needs: ['catalog'] },
        catalog: { ...spec.stages.catalog!, resources: { vcpus: 1000 } },
      },
    };
    assert.throws(() => compilePipeline(broken, { scenes: items(1) }), {
      name: 'PipelineError',
      message: [
        'stages.catalog.resources.vcpus: expected a number in [0.25, 256] but got 1000',
        'stages.inspect.needs[0]: stages wait for each other in a cycle: inspect -> catalog -> inspect (each waits for the next)',
      ].join('\n'),
    });
  });
});

describe('taskItems and itemTask', () => {
  const graph = compile(QUICKSTART, 3);
  const inspect = stageOf(graph, 'inspect');
  const single = stageOf(graph, 'catalog');

  it('gives one item per task by default, none to a single-task stage', () => {
    assert.deepEqual(
      [0, 1, 2].map((i) => taskItems(inspect, graph, i)),
      [[items(3)[0]], [items(3)[1]], [items(3)[2]]],
    );
    assert.deepEqual(taskItems(single, graph, 0), []);
  });

  it('refuses indexes out of range', () => {
    assert.throws(() => taskItems(inspect, graph, 3), {
      name: 'RangeError',
      message: "stage 'inspect': task index 3 is out of range: expected an integer in [0, 2]",
    });
    assert.throws(
      () => taskItems(single, graph, 1),
      /task index 1 is out of range: expected an integer in \[0, 0\]/,
    );
    assert.throws(() => taskItems(inspect, graph, 0.5), RangeError);
    assert.throws(() => itemTask(inspect, -1), /item index -1 is out of range/);
    assert.throws(() => itemTask(single, 0), /item index 0 is out of range: there are none/);
  });
});
