/**
 * Which scenes go to train, val and test: a seeded shuffle of the scene names (sorted first, so
 * the order they were found in does not matter), then val, test and train taken in that order.
 * Split by scene, never by chip: overlapping chips of one scene on both sides would leak. Pure.
 */
import { createRandom } from '../demo/noise.js';
import { compareUtf8 } from '../storage/uri.js';
import { DatasetError } from './errors.js';

export interface SplitFractions {
  /** Share of scenes in val, in (0, 1). */
  readonly val: number;
  /** Share of scenes in test, in [0, 1); val + test < 1. */
  readonly test: number;
}

export interface SceneSplit {
  readonly train: readonly string[];
  readonly val: readonly string[];
  readonly test: readonly string[];
  /** Where the counts differ from what the fractions ask for (one scene, too few scenes for test). */
  readonly warnings: readonly string[];
}

/** Throws a DatasetError unless 0 < val < 1, 0 <= test < 1 and val + test < 1; `names` are the option names. */
export function validateFractions(
  fractions: SplitFractions,
  names: { readonly val: string; readonly test: string } = { val: 'val', test: 'test' },
): void {
  const { val, test } = fractions;
  if (!Number.isFinite(val) || val <= 0 || val >= 1) {
    throw new DatasetError(`${names.val}: expected a fraction in (0, 1) but got ${val}`);
  }
  if (!Number.isFinite(test) || test < 0 || test >= 1) {
    throw new DatasetError(`${names.test}: expected a fraction in [0, 1) but got ${test}`);
  }
  if (val + test >= 1) {
    throw new DatasetError(
      `${names.val} + ${names.test}: expected a sum below 1 (some scenes must stay in train) but got ${val} + ${test} = ${val + test}`,
    );
  }
}

/** Fisher-Yates with mulberry32(seed): the same names and seed give the same order. */
export function seededShuffle<T>(values: readonly T[], seed: number): T[] {
  const out = [...values];
  const random = createRandom(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * Splits scene names. With one scene everything is train (and a warning says so); with two or
 * more, val gets round(n * val) scenes but at least one, test round(n * test) but at least one
 * when asked for, and train keeps at least one (test gives way first, then val).
 */
export function splitScenes(names: readonly string[], fractions: SplitFractions, seed: number): SceneSplit {
  validateFractions(fractions);
  if (!Number.isInteger(seed)) throw new DatasetError(`seed: expected an integer but got ${seed}`);
  const unique = [...new Set(names)];
  if (unique.length !== names.length) {
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    throw new DatasetError(`scene '${dup}' is listed twice: scene names must be unique`);
  }
  const n = names.length;
  const warnings: string[] = [];
  const sorted = [...names].sort(compareUtf8);
  if (n === 0) throw new DatasetError('no scenes to split');
  if (n === 1) {
    warnings.push(
      `only one scene (${sorted[0]}): it is all train and val is empty (a split by scene needs at least 2 scenes)`,
    );
    return { train: sorted, val: [], test: [], warnings };
  }
  let nVal = Math.max(1, Math.round(n * fractions.val));
  let nTest = fractions.test > 0 ? Math.max(1, Math.round(n * fractions.test)) : 0;
  while (n - nVal - nTest < 1) {
    if (nTest > 0 && nTest >= nVal) nTest--;
    else nVal--;
  }
  if (fractions.test > 0 && nTest === 0) {
    warnings.push(
      `test fraction ${fractions.test} asked for but ${n} scenes leave none for test after train and val`,
    );
  }
  const shuffled = seededShuffle(sorted, seed);
  const bySort = (list: string[]): string[] => list.sort(compareUtf8);
  return {
    val: bySort(shuffled.slice(0, nVal)),
    test: bySort(shuffled.slice(nVal, nVal + nTest)),
    train: bySort(shuffled.slice(nVal + nTest)),
    warnings,
  };
}
