import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { formatIssue, placeIssues, type PipelineSource } from '../../lib/pipeline/errors.js';
import { didYouMean, expectedOf, formatValue, zodIssuesToDrafts } from '../../lib/pipeline/issues.js';
import { inputJsonSchema } from '../../lib/pipeline/json-schema.js';

describe('the message format', () => {
  it('reads like the issue asked: a chip params.overlap of 1.5', () => {
    // A params schema shaped like the chip job's, which the catalog does not have yet.
    const chipParams = z
      .object({ size: z.number().int().min(32).default(300), overlap: z.number().min(0).lt(1) })
      .strict();
    const input = { size: 512, overlap: 1.5 };
    const result = chipParams.safeParse(input);
    assert.equal(result.success, false);
    const drafts = zodIssuesToDrafts(result.error!.issues, {
      schema: inputJsonSchema(chipParams),
      input,
      prefix: ['stages', 'chip', 'params'],
    });
    const source: PipelineSource = { fileName: 'quickstart.yaml', locate: () => ({ line: 14, column: 16 }) };
    const [issue] = placeIssues(drafts, source);
    assert.equal(
      formatIssue(issue!, 'quickstart.yaml'),
      'quickstart.yaml: stages.chip.params.overlap: expected a number in [0, 1) but got 1.5 (line 14)',
    );
  });
});

describe('expectedOf: what a schema accepts, in words', () => {
  const cases: [string, z.ZodType, string][] = [
    ['a half-open range', z.number().min(0).lt(1), 'a number in [0, 1)'],
    ['an open range', z.number().gt(0).lt(1), 'a number in (0, 1)'],
    ['an integer range', z.number().int().min(1).max(10), 'an integer in [1, 10]'],
    ['a lower bound', z.number().int().min(128), 'an integer >= 128'],
    ['an exclusive lower bound', z.number().positive(), 'a number > 0'],
    ['an upper bound', z.number().max(5), 'a number <= 5'],
    ['any integer', z.number().int(), 'an integer'],
    ['a string', z.string(), 'a string'],
    ['a non-empty string', z.string().min(1), 'a non-empty string'],
    ['a bounded string', z.string().min(2).max(4), 'a string of 2 to 4 characters'],
    ['a pattern', z.string().regex(/^[a-z]+$/), 'a string matching ^[a-z]+$'],
    ['an enum', z.enum(['nearest', 'bilinear']), 'one of nearest, bilinear'],
    ['a literal string', z.literal('x'), "'x'"],
    ['a literal number', z.literal(1), '1'],
    ['a boolean', z.boolean(), 'true or false'],
    ['a list of strings', z.array(z.string()), 'a list of strings'],
    [
      'a non-empty list of ranges',
      z.array(z.number().int().min(1).max(3)).min(1),
      'a non-empty list of integers in [1, 3]',
    ],
    ['a pair', z.array(z.number()).length(2), 'a list of exactly 2 numbers'],
    ['a few', z.array(z.string()).min(2).max(5), 'a list of 2 to 5 strings'],
    ['a list of anything', z.array(z.unknown()), 'a list'],
    ['a list of enums', z.array(z.enum(['a', 'b'])).min(3), 'a list of at least 3 items, each one of a, b'],
    ['a union', z.union([z.string(), z.array(z.string())]), 'a string or a list of strings'],
    ['a mapping', z.object({ a: z.string() }), 'a mapping'],
  ];
  for (const [name, schema, text] of cases) {
    it(name, () => assert.equal(expectedOf(inputJsonSchema(schema)), text));
  }
});

describe('formatValue', () => {
  const cases: [unknown, string][] = [
    [1.5, '1.5'],
    ['abc', "'abc'"],
    ['x'.repeat(70), `'${'x'.repeat(57)}...'`],
    [true, 'true'],
    [null, 'an empty value'],
    [undefined, 'nothing'],
    [[], 'an empty list'],
    [[1], 'a list of 1 item'],
    [[1, 2], 'a list of 2 items'],
    [{}, 'an empty mapping'],
    [{ a: 1 }, 'a mapping'],
  ];
  for (const [value, text] of cases)
    it(`${JSON.stringify(value) ?? 'undefined'} -> ${text}`, () => assert.equal(formatValue(value), text));
});

describe('didYouMean', () => {
  const keys = ['job', 'foreach', 'needs', 'params', 'resources', 'itemsPerTask', 'retries'];
  const cases: [string, readonly string[], string | undefined][] = [
    ['for_each', keys, 'foreach'],
    ['need', keys, 'needs'],
    ['retry', keys, 'retries'],
    ['param', keys, 'params'],
    ['itemspertask', keys, 'itemsPerTask'],
    ['Job', keys, 'job'],
    ['inpsect', ['smoke', 'inspect', 'catalog'], 'inspect'],
    ['timeout', ['vcpus', 'memoryMiB', 'gpus', 'timeoutSeconds'], 'timeoutSeconds'],
    ['memory', ['vcpus', 'memoryMiB', 'gpus', 'timeoutSeconds'], 'memoryMiB'],
    ['zzz', keys, undefined],
    ['x', ['y'], undefined],
    ['colour', keys, undefined],
  ];
  for (const [word, candidates, expected] of cases) {
    it(`${word} -> ${expected ?? 'nothing'}`, () => assert.equal(didYouMean(word, candidates), expected));
  }
});
