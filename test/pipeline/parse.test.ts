import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jobNames } from '../../jobs/catalog.js';
import { PipelineError, parsePipeline } from '../../lib/pipeline/index.js';
import { fanIn, HEAD, QUICKSTART, yaml } from './fixtures.js';

const FILE = 'quickstart.yaml';
const JOBS = jobNames.join(', ');
const STAGE_KEYS = 'job, foreach, needs, params, resources, itemsPerTask, tasksPerItem, retries';

/** The message of the PipelineError that parsing `text` throws. */
function parseError(text: string): PipelineError {
  try {
    parsePipeline(text, FILE);
  } catch (error) {
    if (error instanceof PipelineError) return error;
    throw error;
  }
  assert.fail('expected a PipelineError');
}

describe('parsePipeline: valid files pass', () => {
  const cases: [string, string][] = [
    ['the quickstart', QUICKSTART],
    [
      'one whole-stage job, no inputs',
      yaml('version: 1', 'name: a', 'stages:', '  gather:', '    job: catalog'),
    ],
    [
      'inputs as one string, an s3 output, a description',
      yaml(
        'version: 1',
        'name: s3-run',
        'description: runs on S3',
        'output: s3://my-bucket/runs',
        'inputs:',
        '  scenes: s3://my-bucket/scenes/',
        'stages:',
        '  inspect: { job: inspect, foreach: scenes }',
      ),
    ],
    [
      'flow style throughout',
      '{version: 1, name: flow, inputs: {a: [x.tif, "s3://b-1/y/*.tif"]}, stages: {s: {job: smoke, foreach: a, params: {sleepMs: 5}}}}',
    ],
    [
      'an N_TO_N chain with the same itemsPerTask, resources and retries',
      yaml(
        ...HEAD,
        '  first:',
        '    job: smoke',
        '    foreach: scenes',
        '    itemsPerTask: 4',
        '  second:',
        '    job: inspect',
        '    foreach: first',
        '    itemsPerTask: 4',
        '    retries: 3',
        '    resources: { vcpus: 0.25, memoryMiB: 128, gpus: 8, timeoutSeconds: 60, sharedMemoryMiB: 64 }',
      ),
    ],
    [
      'params shared through a YAML anchor',
      yaml(
        ...HEAD,
        '  a:',
        '    job: inspect',
        '    foreach: scenes',
        '    params: &p { sampleStep: 2 }',
        '  b:',
        '    job: inspect',
        '    foreach: scenes',
        '    params: *p',
      ),
    ],
    [
      'stage defaults merged with <<',
      yaml(
        ...HEAD,
        '  a: &each',
        '    job: smoke',
        '    foreach: scenes',
        '    resources: { vcpus: 2 }',
        '  b:',
        '    <<: *each',
        '    job: inspect',
      ),
    ],
    ['20 dependencies', fanIn(20)],
  ];
  for (const [name, text] of cases) {
    it(name, () => {
      assert.doesNotThrow(() => parsePipeline(text, FILE));
    });
  }
});

describe('parsePipeline: what a valid file becomes', () => {
  it('fills defaults: output, needs, params from the job schema', () => {
    const { spec } = parsePipeline(
      yaml(
        'version: 1',
        'name: a',
        'inputs:',
        '  s: [x.tif]',
        'stages:',
        '  wait:',
        '    job: smoke',
        '    foreach: s',
      ),
      FILE,
    );
    assert.equal(spec.output, 'runs');
    assert.deepEqual(spec.inputs, { s: ['x.tif'] });
    assert.deepEqual(spec.stages.wait, {
      job: 'smoke',
      foreach: 's',
      needs: [],
      params: { sleepMs: 0, failItems: [], crashItems: [] },
    });
  });

  it('turns a single input pattern into a list and keeps stages in file order', () => {
    const { spec } = parsePipeline(
      yaml(
        'version: 1',
        'name: a',
        'inputs: { s: "x/*.tif" }',
        'stages:',
        '  z: { job: smoke, foreach: s }',
        '  a: { job: smoke, foreach: s }',
      ),
      FILE,
    );
    assert.deepEqual(spec.inputs, { s: ['x/*.tif'] });
    assert.deepEqual(Object.keys(spec.stages), ['z', 'a']);
  });

  it('merges << keys, keys of the mapping itself winning', () => {
    const { spec } = parsePipeline(
      yaml(
        ...HEAD,
        '  a: &each',
        '    job: smoke',
        '    foreach: scenes',
        '  b:',
        '    <<: *each',
        '    job: inspect',
      ),
      FILE,
    );
    assert.deepEqual(spec.stages.b, {
      job: 'inspect',
      foreach: 'scenes',
      needs: [],
      params: { sampleStep: 8 },
    });
  });

  it('keeps the params the job schema validated', () => {
    const { spec } = parsePipeline(QUICKSTART, FILE);
    assert.deepEqual(spec.stages.inspect?.params, { sampleStep: 4 });
  });

  it('gives a source that names the file and finds lines', () => {
    const { source } = parsePipeline(QUICKSTART, FILE);
    assert.equal(source.fileName, FILE);
    assert.deepEqual(source.locate(['stages', 'inspect', 'params', 'sampleStep'], 'value'), {
      line: 10,
      column: 19,
    });
    assert.deepEqual(source.locate(['stages', 'catalog', 'needs', 0], 'value'), { line: 13, column: 13 });
    // a block mapping is reported at its key, a missing key at its parent's key
    assert.deepEqual(source.locate(['stages', 'inspect'], 'value'), { line: 6, column: 3 });
    assert.deepEqual(source.locate(['stages', 'catalog', 'retries'], 'value'), { line: 11, column: 3 });
    assert.deepEqual(source.locate(['inputs', 'scenes'], 'key'), { line: 4, column: 3 });
  });
});

describe('parsePipeline: invalid files fail with every issue, at its path and line', () => {
  const cases: [string, string, string][] = [
    [
      'YAML syntax: an unclosed flow list',
      yaml('version: 1', 'name: a', 'inputs:', '  s: [a.tif', 'stages: {}'),
      `${FILE}: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ] (line 5, column 1)`,
    ],
    [
      'YAML syntax: a duplicate key',
      yaml('version: 1', 'name: a', 'name: b'),
      `${FILE}: YAML syntax error: Map keys must be unique (line 3, column 1)`,
    ],
    [
      'an empty file',
      '',
      `${FILE}: the file is empty; expected a mapping with version, name, inputs and stages (line 1, column 1)`,
    ],
    [
      'a list instead of a mapping',
      yaml('- a'),
      `${FILE}: expected a mapping but got a list of 1 item (line 1, column 1)`,
    ],
    [
      'a missing version, an unknown key with a suggestion',
      yaml('name: a', 'stage:', '  a:', '    job: catalog'),
      [
        `${FILE}: version: expected 1 but it is missing (line 1)`,
        `${FILE}: stages: expected a mapping but it is missing (line 1)`,
        `${FILE}: stage: unknown key 'stage', did you mean 'stages'? (valid keys: version, name, description, output, inputs, stages) (line 2)`,
      ].join('\n'),
    ],
    [
      'a wrong version, a bad pipeline name, a bad output URI',
      yaml('version: 2', 'name: Quick Start', 'output: s3://', 'stages:', '  a: { job: catalog }'),
      [
        `${FILE}: version: expected 1 but got 2 (line 1)`,
        `${FILE}: name: expected a pipeline name (1 to 40 lowercase letters, digits or -, not starting with -) but got 'Quick Start' (line 2)`,
        `${FILE}: output: expected a local path or an s3://bucket/prefix URI but got 's3://' (line 3)`,
      ].join('\n'),
    ],
    [
      'bad input sets: a number among patterns, an empty list, a bad name',
      yaml(
        'version: 1',
        'name: a',
        'inputs:',
        '  a: [x.tif, 3]',
        '  b: []',
        '  Big: x.tif',
        'stages:',
        '  s: { job: catalog }',
      ),
      [
        `${FILE}: inputs.a[1]: expected a non-empty string but got 3 (line 4)`,
        `${FILE}: inputs.b: expected a non-empty string or a non-empty list of non-empty strings or a mapping but got an empty list (line 5)`,
        `${FILE}: inputs.Big: expected an input set name (a lowercase letter, then up to 31 lowercase letters, digits, _ or -) but got 'Big' (line 6)`,
      ].join('\n'),
    ],
    [
      'bad STAC input sets: a misspelt key, no file, an empty asset',
      yaml(
        'version: 1',
        'name: a',
        'inputs:',
        '  a: { stac: items.json, assets: visual }',
        '  b: { asset: visual }',
        "  c: { stac: items.json, asset: '' }",
        'stages:',
        '  s: { job: catalog }',
      ),
      [
        `${FILE}: inputs.a.assets: unknown key 'assets', did you mean 'asset'? (valid keys: stac, asset) (line 4)`,
        `${FILE}: inputs.b.stac: expected a non-empty string but it is missing (line 5)`,
        `${FILE}: inputs.c.asset: expected a non-empty string but got '' (line 6)`,
      ].join('\n'),
    ],
    [
      'a bad stage name, no stages',
      yaml('version: 1', 'name: a', 'stages:', '  Chip: { job: catalog }'),
      `${FILE}: stages.Chip: expected a stage name (a lowercase letter, then up to 31 lowercase letters, digits, _ or -) but got 'Chip' (line 4)`,
    ],
    [
      "a stage named like one of the run's own record folders",
      yaml('version: 1', 'name: a', 'stages:', '  logs: { job: catalog }'),
      `${FILE}: stages.logs: expected a stage name other than markers, failures, logs (the run keeps its own records in those folders) but got 'logs' (line 4)`,
    ],
    [
      'no stages',
      yaml('version: 1', 'name: a', 'stages: {}'),
      `${FILE}: stages: expected at least one stage but got an empty mapping (line 3)`,
    ],
    [
      'unknown keys in a stage, in resources and in params, each with a suggestion',
      yaml(
        ...HEAD,
        '  inspect:',
        '    job: inspect',
        '    for_each: scenes',
        '    retry: 2',
        '    resources:',
        '      memory: 4096', // line 11
        '      timeout: 600',
        '    params:',
        '      sample_step: 4', // line 14
      ),
      [
        `${FILE}: stages.inspect.foreach: expected an input set or stage to run over (job 'inspect' runs once per item) but it is missing (line 6)`,
        `${FILE}: stages.inspect.for_each: unknown key 'for_each', did you mean 'foreach'? (valid keys: ${STAGE_KEYS}) (line 8)`,
        `${FILE}: stages.inspect.retry: unknown key 'retry', did you mean 'retries'? (valid keys: ${STAGE_KEYS}) (line 9)`,
        `${FILE}: stages.inspect.resources.memory: unknown key 'memory', did you mean 'memoryMiB'? (valid keys: vcpus, memoryMiB, gpus, timeoutSeconds, sharedMemoryMiB) (line 11)`,
        `${FILE}: stages.inspect.resources.timeout: unknown key 'timeout', did you mean 'timeoutSeconds'? (valid keys: vcpus, memoryMiB, gpus, timeoutSeconds, sharedMemoryMiB) (line 12)`,
        `${FILE}: stages.inspect.params.sample_step: unknown key 'sample_step', did you mean 'sampleStep'? (valid keys: sampleStep) (line 14)`,
      ].join('\n'),
    ],
    [
      'wrong types and values out of range',
      yaml(
        ...HEAD,
        '  inspect:',
        '    job: inspect',
        '    foreach: scenes',
        '    needs: inspect', // line 9
        '    itemsPerTask: two',
        '    retries: 11',
        '    params: { sampleStep: 2.5 }',
        '    resources: { vcpus: 0.1, memoryMiB: 64, gpus: 9, timeoutSeconds: 30, sharedMemoryMiB: "1g" }',
        '  gather:',
        '    job: catalog',
        '    params:', // line 16
      ),
      [
        `${FILE}: stages.inspect.needs: expected a list of non-empty strings but got 'inspect' (line 9)`,
        `${FILE}: stages.inspect.itemsPerTask: expected an integer >= 1 but got 'two' (line 10)`,
        `${FILE}: stages.inspect.retries: expected an integer in [1, 10] but got 11 (line 11)`,
        `${FILE}: stages.inspect.params.sampleStep: expected an integer in [1, 1024] but got 2.5 (line 12)`,
        `${FILE}: stages.inspect.resources.vcpus: expected a number in [0.25, 256] but got 0.1 (line 13)`,
        `${FILE}: stages.inspect.resources.memoryMiB: expected an integer >= 128 but got 64 (line 13)`,
        `${FILE}: stages.inspect.resources.gpus: expected an integer in [0, 8] but got 9 (line 13)`,
        `${FILE}: stages.inspect.resources.timeoutSeconds: expected an integer >= 60 but got 30 (line 13)`,
        `${FILE}: stages.inspect.resources.sharedMemoryMiB: expected an integer >= 1 but got '1g' (line 13)`,
        `${FILE}: stages.gather.params: expected a mapping but got an empty value (line 16)`,
      ].join('\n'),
    ],
    [
      'an unknown job names the valid ones',
      yaml(...HEAD, '  inspect:', '    job: inpsect', '    foreach: scenes'),
      `${FILE}: stages.inspect.job: expected one of ${JOBS} but got 'inpsect' (did you mean 'inspect'?) (line 7)`,
    ],
    [
      'a missing job',
      yaml(...HEAD, '  inspect:', '    foreach: scenes'),
      `${FILE}: stages.inspect.job: expected one of ${JOBS} but it is missing (line 6)`,
    ],
    [
      'foreach required by a per-item job, refused by a whole-stage job',
      yaml(
        ...HEAD,
        '  inspect:',
        '    job: inspect',
        '  gather:',
        '    job: catalog',
        '    foreach: inspect',
      ),
      [
        `${FILE}: stages.inspect.foreach: expected an input set or stage to run over (job 'inspect' runs once per item) but it is missing (line 6)`,
        `${FILE}: stages.gather.foreach: job 'catalog' runs once for the whole stage, so it takes no foreach; to wait for stage 'inspect', use needs: [inspect] (line 10)`,
      ].join('\n'),
    ],
    [
      'unknown stages and input sets in foreach and needs, with suggestions',
      yaml(
        ...HEAD,
        '  inspect:',
        '    job: inspect',
        '    foreach: scenez',
        '  gather:',
        '    job: catalog',
        '    needs: [inspekt, scenes, nothing]', // line 11
      ),
      [
        `${FILE}: stages.inspect.foreach: expected an input set (scenes) or a stage (inspect, gather) but got 'scenez' (did you mean 'scenes'?) (line 8)`,
        `${FILE}: stages.gather.needs[0]: expected a stage (inspect, gather) but got 'inspekt' (did you mean 'inspect'?) (line 11)`,
        `${FILE}: stages.gather.needs[1]: expected a stage (inspect, gather) but got 'scenes', which is an input set; use foreach to run over its items (line 11)`,
        `${FILE}: stages.gather.needs[2]: expected a stage (inspect, gather) but got 'nothing' (line 11)`,
      ].join('\n'),
    ],
    [
      'foreach over a single-task stage',
      yaml(...HEAD, '  gather:', '    job: catalog', '  each:', '    job: smoke', '    foreach: gather'),
      `${FILE}: stages.each.foreach: expected a stage that runs over items, but 'gather' runs as one task; use needs: [gather] to wait for it (line 10)`,
    ],
    [
      'the same stage in foreach and needs, and twice in needs',
      yaml(
        ...HEAD,
        '  a: { job: smoke, foreach: scenes }',
        '  c: { job: smoke, foreach: scenes }',
        '  b:',
        '    job: smoke',
        '    foreach: a',
        '    needs: [a, c, c]', // line 11
      ),
      [
        `${FILE}: stages.b.needs[0]: 'a' is already this stage's foreach, which waits for it task by task (N_TO_N); remove it from needs, or remove foreach to wait for the whole stage (line 11)`,
        `${FILE}: stages.b.needs[2]: 'c' is listed twice in needs (line 11)`,
      ].join('\n'),
    ],
    [
      'a stage named like an input set',
      yaml(...HEAD, '  scenes: { job: catalog }'),
      `${FILE}: stages.scenes: 'scenes' is also an input set; a name must be either a stage or an input set, so that foreach is unambiguous (line 6)`,
    ],
    [
      'a 2-cycle',
      yaml(
        ...HEAD,
        '  a:',
        '    job: catalog',
        '    needs: [b]',
        '  b:',
        '    job: catalog',
        '    needs: [a]',
      ),
      `${FILE}: stages.a.needs[0]: stages wait for each other in a cycle: a -> b -> a (each waits for the next) (line 8)`,
    ],
    [
      'a 3-cycle through foreach and needs, named from the stage first in the file',
      yaml(
        ...HEAD,
        '  x: { job: smoke, foreach: scenes }',
        '  a:',
        '    job: smoke',
        '    foreach: c', // line 9
        '  b:',
        '    job: smoke',
        '    foreach: a',
        '  c:',
        '    job: smoke',
        '    foreach: x',
        '    needs: [b]',
      ),
      `${FILE}: stages.a.foreach: stages wait for each other in a cycle: a -> c -> b -> a (each waits for the next) (line 9)`,
    ],
    [
      'a stage waiting for itself',
      yaml(...HEAD, '  a:', '    job: catalog', '    needs: [a]'),
      `${FILE}: stages.a.needs[0]: stages wait for each other in a cycle: a -> a (each waits for the next) (line 8)`,
    ],
    [
      '21 dependencies',
      fanIn(21),
      `${FILE}: stages.many.needs: expected at most 20 dependencies (foreach and needs together; an AWS Batch limit) but got 21 (line ${5 + 21 * 3 + 3})`,
    ],
    [
      'itemsPerTask without foreach, and different from the stage a chain runs after',
      yaml(
        ...HEAD,
        '  gather: { job: catalog, itemsPerTask: 2 }',
        '  a: { job: smoke, foreach: scenes, itemsPerTask: 3 }',
        '  b: { job: smoke, foreach: a }',
        '  c: { job: smoke, foreach: b, itemsPerTask: 5 }',
      ),
      [
        `${FILE}: stages.gather.itemsPerTask: itemsPerTask applies only to a stage with foreach; this stage runs as one task (line 6)`,
        `${FILE}: stages.c.itemsPerTask: expected 3, the itemsPerTask of stage 'a' (this stage runs task for task after it), but got 5 (line 9)`,
      ].join('\n'),
    ],
  ];

  for (const [name, text, message] of cases) {
    it(name, () => {
      assert.equal(parseError(text).message, message);
    });
  }
});

describe('PipelineError', () => {
  it('carries each issue with its path, line, column and value', () => {
    const error = parseError(
      yaml(...HEAD, '  inspect:', '    job: inspect', '    foreach: scenes', '    params: { sampleStep: 0 }'),
    );
    assert.equal(error.name, 'PipelineError');
    assert.equal(error.fileName, FILE);
    assert.deepEqual(error.issues, [
      {
        path: 'stages.inspect.params.sampleStep',
        line: 9,
        column: 27,
        message: 'expected an integer in [1, 1024] but got 0',
        value: 0,
      },
    ]);
  });

  it('is a PipelineError for yaml that expands aliases too far', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 6; i++)
      lines.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(', ')}]`,
      );
    const error = parseError(yaml(...lines));
    assert.match(error.message, /^quickstart\.yaml: YAML: .*alias/i);
  });
});
