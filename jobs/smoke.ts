import { setTimeout as sleep } from 'node:timers/promises';
import type { JobParams } from './catalog.js';
import type { JobModule } from './types.js';

/** Proves the plumbing of a runner: waits `sleepMs` per item and fails on purpose for `failItems`. */
export const smokeJob: JobModule<JobParams<'smoke'>> = {
  async run(params, ctx) {
    let done = 0;
    for (const item of ctx.items) {
      if (params.sleepMs > 0) await sleep(params.sleepMs, undefined, { signal: ctx.signal });
      if (params.failItems.includes(item.id)) {
        throw new Error(`smoke: item '${item.id}' is listed in params.failItems, failing on purpose`);
      }
      if (params.crashItems.includes(item.id)) {
        ctx.log.error(`smoke: item '${item.id}' is listed in params.crashItems, killing this process`);
        process.kill(process.pid, 'SIGKILL');
      }
      ctx.progress(++done, ctx.items.length);
    }
    return { summary: { items: ctx.items.length } };
  },
};
