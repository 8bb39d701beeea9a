import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compilePipeline,
  describeGraph,
  formatDuration,
  formatMemory,
  parsePipeline,
  summarizeGraph,
} from '../../lib/pipeline/index.js';
import { HEAD, items, yaml } from './fixtures.js';

const TEXT = yaml(
  ...HEAD,
  '  inspect: { job: inspect, foreach: scenes }',
  '  smoke: { job: smoke, foreach: inspect, retries: 3, resources: { gpus: 1, sharedMemoryMiB: 512, timeoutSeconds: 5400 } }',
  '  catalog: { job: catalog, needs: [inspect, smoke], resources: { vcpus: 0.5, memoryMiB: 1536 } }',
);

describe('describeGraph', () => {
  it('shows an aligned table in run order', () => {
    const { spec } = parsePipeline(TEXT, 'q.yaml');
    const graph = compilePipeline(spec, { scenes: items(25_000) });
    assert.equal(
      describeGraph(graph),
      [
        'STAGE    JOB      TASKS                              DEPENDS ON                        QUEUE  VCPUS  MEMORY                 GPUS  TIMEOUT  ATTEMPTS',
        'inspect  inspect  8,334 (25,000 scenes, 3 per task)  -                                 cpu    1      2 GiB                  0     30m      -',
        'smoke    smoke    8,334 (25,000 scenes, 3 per task)  inspect (N_TO_N)                  gpu    1      512 MiB (shm 512 MiB)  1     1h30m    3',
        'catalog  catalog  1                                  inspect (FAN_IN), smoke (FAN_IN)  cpu    0.5    1.5 GiB                0     30m      -',
      ].join('\n'),
    );
  });

  it('gives the same facts as plain JSON', () => {
    const { spec } = parsePipeline(TEXT, 'q.yaml');
    const summary = summarizeGraph(compilePipeline(spec, { scenes: items(2) }));
    assert.deepEqual(JSON.parse(JSON.stringify(summary)), summary);
    assert.deepEqual(summary, {
      pipeline: 'quickstart',
      items: { scenes: 2 },
      tasks: 5,
      stages: [
        {
          stage: 'inspect',
          job: 'inspect',
          tasks: 2,
          itemsFrom: 'scenes',
          items: 2,
          itemsPerTask: 1,
          tasksPerItem: 1,
          dependsOn: [],
          queue: 'cpu',
          vcpus: 1,
          memoryMiB: 2048,
          gpus: 0,
          timeoutSeconds: 1800,
        },
        {
          stage: 'smoke',
          job: 'smoke',
          tasks: 2,
          itemsFrom: 'scenes',
          items: 2,
          itemsPerTask: 1,
          tasksPerItem: 1,
          dependsOn: [{ stage: 'inspect', type: 'N_TO_N' }],
          queue: 'gpu',
          vcpus: 1,
          memoryMiB: 512,
          gpus: 1,
          timeoutSeconds: 5400,
          sharedMemoryMiB: 512,
          attempts: 3,
        },
        {
          stage: 'catalog',
          job: 'catalog',
          tasks: 1,
          items: 0,
          itemsPerTask: 1,
          tasksPerItem: 1,
          dependsOn: [
            { stage: 'inspect', type: 'FAN_IN' },
            { stage: 'smoke', type: 'FAN_IN' },
          ],
          queue: 'cpu',
          vcpus: 0.5,
          memoryMiB: 1536,
          gpus: 0,
          timeoutSeconds: 1800,
        },
      ],
    });
  });
});

describe('formatMemory and formatDuration', () => {
  const memory: [number, string][] = [
    [128, '128 MiB'],
    [1000, '1000 MiB'],
    [1024, '1 GiB'],
    [1536, '1.5 GiB'],
    [1600, '1600 MiB'],
    [65536, '64 GiB'],
  ];
  for (const [mib, text] of memory) it(`${mib} MiB -> ${text}`, () => assert.equal(formatMemory(mib), text));
  const durations: [number, string][] = [
    [0, '0s'],
    [45, '45s'],
    [60, '1m'],
    [600, '10m'],
    [3600, '1h'],
    [5400, '1h30m'],
    [7205, '2h5s'],
  ];
  for (const [s, text] of durations) it(`${s} s -> ${text}`, () => assert.equal(formatDuration(s), text));
});
