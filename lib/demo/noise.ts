/**
 * Deterministic randomness for the demo scene: a seeded PRNG for decisions made in order,
 * and position hashes for values evaluated per pixel (so a pixel's value does not depend on
 * the order in which rows are rendered). Pure, no I/O.
 */

/** mulberry32: a small, fast seeded PRNG; returns numbers in [0, 1). */
export function createRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit hash of three integers (murmur3's finaliser over a mix of them). */
export function hash3(x: number, y: number, seed: number): number {
  let h = Math.imul(x | 0, 0x27d4eb2d) ^ Math.imul(y | 0, 0x165667b1) ^ Math.imul(seed | 0, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** {@link hash3} scaled to [0, 1). */
export function unitHash(x: number, y: number, seed: number): number {
  return hash3(x, y, seed) / 4294967296;
}
