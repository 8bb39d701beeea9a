/** Option parsers several commands share. */
import { UsageError } from './errors.js';

/** Commander collector for repeatable options (`--tag a=b --tag c=d`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses a task index option: an integer >= 0. */
export function parseTaskIndex(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--index: expected a task index >= 0 but got '${value}'`);
  return n;
}

/** Parses `--interval <seconds>`: a number of seconds in [1, 3600]. */
export function parseInterval(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 1 || n > 3600) {
    throw new UsageError(`--interval: expected seconds in [1, 3600] but got '${value}'`);
  }
  return n;
}

/**
 * Commander parser for a number option in [min, max] (an integer when `integer`), throwing a
 * UsageError that names the flag, the range and the bad value.
 */
export function numberOption(
  flag: string,
  min: number,
  max: number,
  integer = false,
): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (
      value.trim() === '' ||
      !Number.isFinite(n) ||
      n < min ||
      n > max ||
      (integer && !Number.isInteger(n))
    ) {
      throw new UsageError(
        `${flag}: expected ${integer ? 'an integer' : 'a number'} in [${min}, ${max}] but got '${value}'`,
      );
    }
    return n;
  };
}

/** `numberOption(flag, min, max, true)`. */
export function integerOption(flag: string, min: number, max: number): (value: string) => number {
  return numberOption(flag, min, max, true);
}

/** `--overlap`: a window overlap ratio in [0, 1). */
export function overlapOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) {
    throw new UsageError(`--overlap: expected a number in [0, 1) but got '${value}'`);
  }
  return n;
}

/** `--part k/n` (1-based on the command line) as a 0-based part of a split item. */
export function partOption(value: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(value);
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!(k >= 1 && n >= 1 && k <= n && n <= 10_000)) {
    throw new UsageError(`--part: expected k/n with 1 <= k <= n <= 10000 (e.g. 2/4) but got '${value}'`);
  }
  return { index: k - 1, count: n };
}
