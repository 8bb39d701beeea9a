/**
 * Quadkeys shared by the web-mercator and Maxar ARD grids: one digit per level, most significant
 * first, digit = bit(x) + 2 * bit(y) with y counted downwards. Pure, no I/O.
 */
import { GridError } from './grid-error.js';

/** Levels a grid cell may have: 0 (the whole grid, quadkey "") to 30. */
export const MAX_LEVEL = 30;

/** Throws unless `level` is an integer in [min, max]. */
export function checkLevel(level: number, min = 0, max = MAX_LEVEL): void {
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new GridError(`Expected integer in [${min}, ${max}] for level but received ${level}`);
  }
}

/** The quadkey of cell (x, y) at `level`. */
export function quadkey(x: number, y: number, level: number): string {
  checkLevel(level);
  const size = 2 ** level;
  if (!Number.isInteger(x) || !Number.isInteger(y) || x < 0 || y < 0 || x >= size || y >= size) {
    throw new GridError(`Expected cell x, y in [0, ${size - 1}] at level ${level} but received (${x}, ${y})`);
  }
  let key = '';
  for (let z = level; z > 0; z--) {
    const bit = 2 ** (z - 1);
    key += String((Math.floor(x / bit) % 2) + 2 * (Math.floor(y / bit) % 2));
  }
  return key;
}

/** The cell (x, y, level) of a quadkey. */
export function parseQuadkey(key: string): { x: number; y: number; level: number } {
  if (!/^[0-3]*$/.test(key) || key.length > MAX_LEVEL) {
    throw new GridError(
      `Expected a quadkey of at most ${MAX_LEVEL} digits 0-3 but received ${JSON.stringify(key)}`,
    );
  }
  let x = 0;
  let y = 0;
  for (const ch of key) {
    const d = Number(ch);
    x = x * 2 + (d % 2);
    y = y * 2 + (d >= 2 ? 1 : 0);
  }
  return { x, y, level: key.length };
}
