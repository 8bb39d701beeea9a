/**
 * A Storage wrapper that counts the bytes read through it, for tests and benchmarks that show a
 * reader fetches only part of an object. Whole-object reads that bypass the count (`localPath`,
 * `openRead`) throw, so a reader cannot hide a full download.
 */
import type { Storage } from '../../lib/storage/types.js';

export function countingStorage(inner: Storage): { storage: Storage; bytes: () => number } {
  let bytes = 0;
  const storage = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'readRange' || prop === 'read') {
        return async (...args: unknown[]) => {
          const data = (await (value as (...a: unknown[]) => Promise<Buffer>).apply(target, args)) as Buffer;
          bytes += data.length;
          return data;
        };
      }
      if (prop === 'localPath' || prop === 'openRead') {
        return () => {
          throw new Error(`${String(prop)} would read the whole object`);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return { storage, bytes: () => bytes };
}
