import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { catalog, jobNames, type CatalogEntry } from '../../jobs/catalog.js';
import { pipelineJsonSchema, type JsonSchema } from '../../lib/pipeline/index.js';
import { HEAD, QUICKSTART, yaml } from './fixtures.js';

const schema = pipelineJsonSchema();
// Strict: unknown keywords, ignored defaults and loose types are errors, not silence. Except
// strictRequired, an Ajv opinion: `then: { required: ['foreach'] }` is valid JSON Schema.
const validate = new Ajv2020({ strict: true, strictRequired: false, allErrors: true }).compile(schema);

function object(value: unknown, where: string): JsonSchema {
  assert.ok(
    typeof value === 'object' && value !== null && !Array.isArray(value),
    `${where} is not an object`,
  );
  return value as JsonSchema;
}

const stage = object(
  object(object(schema.properties, 'properties').stages, 'stages').additionalProperties,
  'stage',
);

describe('pipelineJsonSchema: shape', () => {
  it('is draft 2020-12 and describes the file', () => {
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.deepEqual(Object.keys(object(schema.properties, 'properties')), [
      'version',
      'name',
      'description',
      'output',
      'inputs',
      'stages',
    ]);
    assert.deepEqual(schema.required, ['version', 'name', 'stages']);
    assert.equal(schema.additionalProperties, false);
  });

  it('lists every catalog job in the job enum', () => {
    assert.deepEqual(object(object(stage.properties, 'stage properties').job, 'job').enum, jobNames);
  });

  it("has each job's params, and its foreach rule, under if job == X", () => {
    const branches = stage.allOf as JsonSchema[];
    assert.equal(branches.length, jobNames.length);
    for (const [i, name] of jobNames.entries()) {
      const branch = branches[i]!;
      assert.deepEqual(branch.if, { properties: { job: { const: name } }, required: ['job'] });
      const then = object(branch.then, `then of ${name}`);
      const params = object(object(then.properties, 'then properties').params, `params of ${name}`);
      const entry = (catalog as Record<string, CatalogEntry>)[name]!;
      assert.deepEqual(
        Object.keys(object(params.properties, 'params properties')),
        Object.keys(entry.params.shape),
      );
      assert.equal(params.additionalProperties, false);
      if (entry.granularity === 'item') assert.deepEqual(then.required, ['foreach']);
      else assert.equal(object(then.properties, 'then properties').foreach, false);
    }
  });

  it('documents every field of the file', () => {
    const missing: string[] = [];
    const walk = (node: JsonSchema, path: string): void => {
      const properties = node.properties;
      if (typeof properties !== 'object' || properties === null) return;
      for (const [key, child] of Object.entries(properties)) {
        const sub = object(child, `${path}.${key}`);
        if (typeof sub.description !== 'string' || sub.description === '') missing.push(`${path}.${key}`);
        walk(sub, `${path}.${key}`);
        if (typeof sub.additionalProperties === 'object')
          walk(object(sub.additionalProperties, key), `${path}.${key}.*`);
      }
    };
    walk(schema, '');
    assert.deepEqual(missing, []);
  });
});

describe('pipelineJsonSchema: accepts valid files', () => {
  const cases: [string, string][] = [
    ['the quickstart', QUICKSTART],
    ['a whole-stage job alone', yaml('version: 1', 'name: a', 'stages:', '  gather: { job: catalog }')],
    [
      'every optional field',
      yaml(
        'version: 1',
        'name: full',
        'description: all of it',
        'output: s3://bucket-1/runs',
        'inputs:',
        '  scenes: s3://bucket-1/scenes/',
        '  more: [a/*.tif, b.tif]',
        'stages:',
        '  a:',
        '    job: smoke',
        '    foreach: scenes',
        '    itemsPerTask: 2',
        '    retries: 10',
        '    params: { sleepMs: 1, failItems: [x] }',
        '    resources: { vcpus: 0.25, memoryMiB: 128, gpus: 8, timeoutSeconds: 60, sharedMemoryMiB: 1 }',
        '  b: { job: catalog, needs: [a], params: {} }',
      ),
    ],
  ];
  for (const [name, text] of cases) {
    it(name, () => {
      const ok = validate(parse(text));
      assert.ok(ok, JSON.stringify(validate.errors, null, 1));
    });
  }
});

describe('pipelineJsonSchema: rejects invalid files', () => {
  const cases: [string, string, string][] = [
    [
      'an unknown top-level key',
      yaml('version: 1', 'name: a', 'stage: {}', 'stages: { s: { job: catalog } }'),
      '',
    ],
    ['a wrong version', yaml('version: 2', 'name: a', 'stages: { s: { job: catalog } }'), '/version'],
    ['a bad name', yaml('version: 1', 'name: A', 'stages: { s: { job: catalog } }'), '/name'],
    ['no stages', yaml('version: 1', 'name: a', 'stages: {}'), '/stages'],
    ['a bad stage name', yaml('version: 1', 'name: a', 'stages: { Bad: { job: catalog } }'), '/stages'],
    ['an unknown job', yaml(...HEAD, '  s: { job: nope, foreach: scenes }'), '/stages/s/job'],
    ['an unknown stage key', yaml(...HEAD, '  s: { job: smoke, foreach: scenes, retry: 2 }'), '/stages/s'],
    [
      'a param out of range',
      yaml(...HEAD, '  s: { job: inspect, foreach: scenes, params: { sampleStep: 0 } }'),
      '/stages/s/params/sampleStep',
    ],
    [
      "another job's param",
      yaml(...HEAD, '  s: { job: inspect, foreach: scenes, params: { sleepMs: 1 } }'),
      '/stages/s/params',
    ],
    ['a per-item job without foreach', yaml(...HEAD, '  s: { job: inspect }'), '/stages/s'],
    [
      'a whole-stage job with foreach',
      yaml(...HEAD, '  s: { job: catalog, foreach: scenes }'),
      '/stages/s/foreach',
    ],
    [
      'resources out of range',
      yaml(...HEAD, '  s: { job: smoke, foreach: scenes, resources: { gpus: 9 } }'),
      '/stages/s/resources/gpus',
    ],
    [
      'retries out of range',
      yaml(...HEAD, '  s: { job: smoke, foreach: scenes, retries: 0 }'),
      '/stages/s/retries',
    ],
    [
      'an empty input list',
      yaml('version: 1', 'name: a', 'inputs: { s: [] }', 'stages: { x: { job: catalog } }'),
      '/inputs/s',
    ],
  ];
  for (const [name, text, where] of cases) {
    it(name, () => {
      assert.equal(validate(parse(text)), false);
      const paths = (validate.errors ?? []).map((e) => e.instancePath);
      assert.ok(paths.includes(where), `no error at '${where}' among ${JSON.stringify(paths)}`);
    });
  }
});
