import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatasetError } from '../../lib/dataset/errors.js';
import { splitScenes, validateFractions } from '../../lib/dataset/split.js';

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `s${String(i).padStart(3, '0')}`);

describe('splitScenes', () => {
  it('never puts a scene on two sides and loses none (seeds x scene counts x fractions)', () => {
    for (const n of [2, 3, 4, 5, 7, 10, 33, 100]) {
      for (const [val, test] of [
        [0.2, 0],
        [0.1, 0.1],
        [0.5, 0.3],
        [0.05, 0],
      ] as const) {
        for (let seed = 0; seed < 25; seed++) {
          const split = splitScenes(names(n), { val, test }, seed);
          const all = [...split.train, ...split.val, ...split.test];
          assert.equal(new Set(all).size, all.length, `n=${n} seed=${seed}: a scene on two sides`);
          assert.deepEqual([...all].sort(), names(n));
          assert.ok(split.val.length >= 1, `n=${n}: val empty`);
          assert.ok(split.train.length >= 1, `n=${n}: train empty`);
          if (test === 0) assert.equal(split.test.length, 0);
        }
      }
    }
  });

  it('gives each split round(n * fraction) scenes when n is large enough', () => {
    const split = splitScenes(names(100), { val: 0.2, test: 0.15 }, 3);
    assert.deepEqual([split.train.length, split.val.length, split.test.length], [65, 20, 15]);
    const ten = splitScenes(names(10), { val: 0.2, test: 0 }, 0);
    assert.deepEqual([ten.train.length, ten.val.length], [8, 2]);
    // at least one in val even when round(n * val) is 0
    const few = splitScenes(names(3), { val: 0.1, test: 0 }, 0);
    assert.deepEqual([few.train.length, few.val.length], [2, 1]);
  });

  it('is a function of the names and the seed, not of their order', () => {
    const a = splitScenes(names(20), { val: 0.25, test: 0.1 }, 7);
    const b = splitScenes([...names(20)].reverse(), { val: 0.25, test: 0.1 }, 7);
    assert.deepEqual(a, b);
    const seeds = new Set(
      Array.from({ length: 10 }, (_, s) => splitScenes(names(20), { val: 0.25, test: 0 }, s).val.join()),
    );
    assert.ok(seeds.size > 5, 'different seeds should give different splits');
  });

  it('puts a single scene in train and warns', () => {
    const split = splitScenes(['only'], { val: 0.2, test: 0.1 }, 0);
    assert.deepEqual(split, {
      train: ['only'],
      val: [],
      test: [],
      warnings: [split.warnings[0]],
    });
    assert.match(split.warnings[0]!, /only one scene \(only\): it is all train and val is empty/);
  });

  it('keeps one scene in train when test and val would take them all, and warns', () => {
    const split = splitScenes(names(2), { val: 0.2, test: 0.2 }, 0);
    assert.deepEqual([split.train.length, split.val.length, split.test.length], [1, 1, 0]);
    assert.match(split.warnings.join(), /test fraction 0.2 asked for but 2 scenes leave none/);
  });

  it('rejects duplicate names', () => {
    assert.throws(() => splitScenes(['a', 'b', 'a'], { val: 0.2, test: 0 }, 0), /scene 'a' is listed twice/);
  });
});

describe('validateFractions', () => {
  it('accepts fractions in range', () => {
    for (const f of [
      { val: 0.2, test: 0 },
      { val: 0.01, test: 0.98 },
      { val: 0.5, test: 0.49 },
    ])
      assert.doesNotThrow(() => validateFractions(f));
  });
  it('rejects fractions out of range or summing to 1 or more, naming the option and the value', () => {
    const cases: [{ val: number; test: number }, RegExp][] = [
      [{ val: 0, test: 0 }, /^--val: expected a fraction in \(0, 1\) but got 0$/],
      [{ val: 1, test: 0 }, /^--val: expected a fraction in \(0, 1\) but got 1$/],
      [{ val: -0.1, test: 0 }, /^--val: .* got -0.1$/],
      [{ val: Number.NaN, test: 0 }, /^--val: .* got NaN$/],
      [{ val: 0.2, test: -0.5 }, /^--test: expected a fraction in \[0, 1\) but got -0.5$/],
      [{ val: 0.5, test: 0.5 }, /^--val \+ --test: expected a sum below 1 .* 0.5 \+ 0.5 = 1$/],
      [{ val: 0.7, test: 0.6 }, /sum below 1/],
    ];
    for (const [f, message] of cases) {
      assert.throws(
        () => validateFractions(f, { val: '--val', test: '--test' }),
        (e: unknown) => e instanceof DatasetError && message.test(e.message),
        JSON.stringify(f),
      );
    }
  });
});
