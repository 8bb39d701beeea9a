/**
 * Resuming chip runs (`chip slice`, `chip grid`): a small progress file in the output records the
 * units of work whose outputs are all written (rows of windows, grid cells), under a key that
 * digests everything that decides those outputs: the source file's identity (URI, size,
 * modification time or ETag) and the run's options. A rerun with the same key skips the recorded
 * units whose files are still there; a changed key forgets them.
 *
 * The file is rewritten (atomically, and not cancelled by the run's signal) at most every
 * {@link SAVE_INTERVAL_MS} while work is done and on {@link RunProgress.flush}, which the runs call
 * when they stop for any reason, so an interruption loses at most a few seconds of work.
 */
import { createHash } from 'node:crypto';
import type { IoOptions, Storage } from '../storage/types.js';
import { normalizeUri } from '../storage/uri.js';

/** At most one write of a progress file per this many milliseconds while working. */
export const SAVE_INTERVAL_MS = 2000;

/** A progress file: per key, the source it is about (for people reading it) and its finished units. */
interface ProgressFile {
  readonly version: 1;
  readonly sections: Record<string, { readonly source: string; readonly done: Record<string, number> }>;
}

/**
 * The key of a source's work: a digest of its identity as storage reports it and of `params`
 * (JSON-serialisable; everything besides the file that decides the outputs).
 */
export async function progressKey(
  storage: Storage,
  uri: string,
  params: unknown,
  io: IoOptions = {},
): Promise<string> {
  const info = await storage.stat(uri, io);
  const identity = {
    uri,
    size: info?.size ?? null,
    version: info?.etag ?? info?.lastModified?.getTime() ?? null,
    params,
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 32);
}

/** The SHA-256 of a value's JSON, for params that include large inputs (annotations). */
export function digestOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

export class RunProgress {
  private readonly sections = new Map<string, { source: string; done: Map<string, number> }>();
  private saving: Promise<void> = Promise.resolve();
  private lastSave = 0;
  private dirty = false;

  private constructor(
    private readonly storage: Storage,
    private readonly uri: string,
    private readonly previous: ProgressFile | undefined,
  ) {}

  /** Reads the progress file at `uri`, if any; one that cannot be parsed is ignored (all work redone). */
  static async open(storage: Storage, uri: string, io: IoOptions = {}): Promise<RunProgress> {
    let previous: ProgressFile | undefined;
    if (await storage.exists(uri, io)) {
      try {
        const parsed = JSON.parse((await storage.read(uri, io)).toString('utf8')) as Partial<ProgressFile>;
        if (parsed.version === 1 && parsed.sections && typeof parsed.sections === 'object') {
          previous = parsed as ProgressFile;
        }
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
      }
    }
    return new RunProgress(storage, uri, previous);
  }

  /**
   * Starts (or continues) the section `key` and returns the units an earlier run finished under
   * it, with their values. Sections not started in this run are dropped at the next save.
   */
  section(key: string, source: string): ReadonlyMap<string, number> {
    const earlier = new Map(Object.entries(this.previous?.sections[key]?.done ?? {}));
    if (!this.sections.has(key)) this.sections.set(key, { source, done: new Map() });
    return earlier;
  }

  /** Records finished units found still valid (kept in the file without a new write). */
  keep(key: string, units: Iterable<[string, number]>): void {
    const done = this.sections.get(key)!.done;
    for (const [unit, value] of units) done.set(unit, value);
  }

  /** Records that every output of `unit` is written; saves now and then. */
  markDone(key: string, unit: string, value = 1): void {
    this.sections.get(key)!.done.set(unit, value);
    this.dirty = true;
    if (Date.now() - this.lastSave >= SAVE_INTERVAL_MS) void this.save().catch(() => undefined);
  }

  /** Writes the progress file if anything was recorded since the last write; waits for it. */
  flush(): Promise<void> {
    return this.save();
  }

  private save(): Promise<void> {
    this.saving = this.saving
      .catch(() => undefined)
      .then(async () => {
        if (!this.dirty) return;
        this.dirty = false;
        this.lastSave = Date.now();
        const sections: Record<string, { source: string; done: Record<string, number> }> = {};
        for (const [key, s] of this.sections)
          sections[key] = { source: s.source, done: Object.fromEntries(s.done) };
        const file: ProgressFile = { version: 1, sections };
        // not cancelled by the run's signal: what finished before an interruption must be kept
        await this.storage.writeAtomic(this.uri, JSON.stringify(file) + '\n', {
          contentType: 'application/json',
        });
      });
    return this.saving;
  }
}

/**
 * The paths of the files under the folder or prefix `dir`, relative to it (`a.png`, `12/654/1583.png`),
 * listed once to check that recorded outputs are still there.
 */
export async function filesUnder(storage: Storage, dir: string, io: IoOptions = {}): Promise<Set<string>> {
  const base = normalizeUri(dir).replace(/\/*$/, '/');
  const names = new Set<string>();
  for await (const info of storage.list(base, io)) {
    const uri = normalizeUri(info.uri);
    if (uri.startsWith(base)) names.add(uri.slice(base.length));
  }
  return names;
}
