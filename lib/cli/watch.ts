/** `geobatch status --watch`: a status read again and again until the run finishes. */
import type { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

export interface WatchOptions<S> {
  readonly read: () => Promise<S>;
  readonly format: (status: S) => string;
  /** True once the status will not change any more. */
  readonly done: (status: S) => boolean;
  readonly intervalMs: number;
  /** JSON lines even on a terminal. */
  readonly json?: boolean;
  /** @default process.stdout */
  readonly out?: Writable & { isTTY?: boolean };
  readonly signal?: AbortSignal;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Reads and shows the status every `intervalMs` until it is done: on a terminal the table is
 * redrawn in place, otherwise (or with `json`) each reading is one JSON line. Returns the last.
 */
export async function watchStatus<S>(options: WatchOptions<S>): Promise<S> {
  const out = options.out ?? process.stdout;
  const tty = !options.json && out.isTTY === true;
  const sleep =
    options.sleep ?? ((ms: number) => delay(ms, undefined, options.signal ? { signal: options.signal } : {}));
  for (;;) {
    const status = await options.read();
    const finished = options.done(status);
    if (tty) {
      // cursor home + clear screen: the table is redrawn in place
      out.write('\x1b[H\x1b[2J' + options.format(status) + '\n');
      if (!finished)
        out.write(
          `\n(refreshing every ${Math.round(options.intervalMs / 1000)} s; Ctrl-C stops watching, not the run)\n`,
        );
    } else {
      out.write(JSON.stringify({ time: new Date().toISOString(), ...(status as object) }) + '\n');
    }
    if (finished || options.signal?.aborted) return status;
    await sleep(options.intervalMs);
  }
}
