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
