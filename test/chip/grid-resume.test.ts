// chip grid resumes: a run interrupted part-way keeps the cells it had finished (their chips not
// written again, their pixels not read again), does the rest, and ends with exactly the outputs of
// an uninterrupted run — chips, nodata-index.json, chips.geojson and annotations.json.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chipGrid, GRID_PROGRESS_FILE, type ChipGridOptions } from '../../lib/chip/grid.js';
import { createStorage } from '../../lib/storage/index.js';

const IMAGE = resolve(import.meta.dirname, '../../../shared/data/cog/cog_nodata.tif');
const storage = createStorage();

/** Every file under `dir` by its relative path, the progress file aside. */
async function outputs(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === GRID_PROGRESS_FILE) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(dir, path), await readFile(path));
  }
  return new Map([...files].sort(([a], [b]) => a.localeCompare(b)));
}

async function identity(path: string): Promise<string> {
  const s = await stat(path);
  return `${s.ino}:${s.mtimeMs}`;
}

describe('chip grid resumes an interrupted run', () => {
  let dir: string;
  let coco: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'grid-resume-'));
    coco = join(dir, 'scene.json');
    await writeFile(
      coco,
      JSON.stringify({
        images: [{ id: 1, file_name: 'cog_nodata.tif', width: 2658, height: 2667 }],
        annotations: [
          { id: 1, image_id: 1, category_id: 1, bbox: [1200, 1200, 300, 200] },
          { id: 2, image_id: 1, category_id: 1, bbox: [400, 1800, 900, 150] },
        ],
        categories: [{ id: 1, name: 'field' }],
      }),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the finished cells and ends with the outputs of an uninterrupted run', async () => {
    const base = { image: IMAGE, grid: 'webmercator', level: 9, coco } satisfies Partial<ChipGridOptions>;
    const whole = join(dir, 'whole');
    const full = await chipGrid(storage, { ...base, out: whole });
    assert.ok(full.cells > 40 && full.counts['no data'] > 0, JSON.stringify(full.counts));
    assert.equal(full.resumed, 0);

    const out = join(dir, 'resumed');
    const controller = new AbortController();
    await assert.rejects(
      chipGrid(storage, {
        ...base,
        out,
        signal: controller.signal,
        onProgress: (done, total) => {
          if (done >= Math.floor(total / 2)) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    await assert.rejects(stat(join(out, 'nodata-index.json')), { code: 'ENOENT' });
    const progress = JSON.parse(readFileSync(join(out, GRID_PROGRESS_FILE), 'utf8')) as {
      sections: Record<string, { source: string; done: Record<string, number> }>;
    };
    const [section] = Object.values(progress.sections);
    assert.equal(section!.source, IMAGE);
    const finished = Object.keys(section!.done);
    assert.ok(finished.length > 0 && finished.length < full.cells, `${finished.length} cells finished`);
    const kept = new Map<string, string>();
    for (const chip of finished) {
      const path = join(out, chip);
      if (await stat(path).catch(() => undefined)) kept.set(chip, await identity(path));
    }
    assert.ok(kept.size > 0, 'some finished cells have chips');

    const again = await chipGrid(storage, { ...base, out });
    assert.deepEqual(again, {
      ...full,
      indexUri: again.indexUri,
      footprintsUri: again.footprintsUri,
      annotationsUri: again.annotationsUri,
      resumed: finished.length,
    });
    for (const [chip, id] of kept) assert.equal(await identity(join(out, chip)), id, `${chip} written again`);
    const [a, b] = [await outputs(out), await outputs(whole)];
    assert.deepEqual([...a.keys()], [...b.keys()]);
    for (const [name, bytes] of b) assert.ok(bytes.equals(a.get(name)!), `${name} differs`);
    await assert.rejects(stat(join(out, GRID_PROGRESS_FILE)), { code: 'ENOENT' }, 'removed when complete');
  });

  it('cuts a finished cell again when its chip is gone or the options changed', async () => {
    const out = join(dir, 'changes');
    const base = { image: IMAGE, grid: 'webmercator', level: 8, out } satisfies ChipGridOptions;
    const controller = new AbortController();
    await assert.rejects(
      chipGrid(storage, {
        ...base,
        signal: controller.signal,
        onProgress: (done, total) => {
          if (done >= total - 2) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    const progress = JSON.parse(readFileSync(join(out, GRID_PROGRESS_FILE), 'utf8')) as {
      sections: Record<string, { done: Record<string, number> }>;
    };
    const done = Object.keys(Object.values(progress.sections)[0]!.done);
    const withChips: string[] = [];
    for (const chip of done) if (await stat(join(out, chip)).catch(() => undefined)) withChips.push(chip);
    await unlink(join(out, withChips[0]!));
    const again = await chipGrid(storage, { ...base });
    assert.equal(again.resumed, done.length - 1);
    assert.ok(await stat(join(out, withChips[0]!)), 'the missing chip is written again');

    // bilinear resampling changes the pixels: what an interrupted nearest run finished is not kept
    await rm(out, { recursive: true });
    const stop = new AbortController();
    await assert.rejects(
      chipGrid(storage, {
        ...base,
        signal: stop.signal,
        onProgress: (n, total) => {
          if (n >= total / 2) stop.abort();
        },
      }),
      { name: 'AbortError' },
    );
    const other = await chipGrid(storage, { ...base, resampling: 'bilinear' });
    assert.equal(other.resumed, 0);
    assert.equal((await chipGrid(storage, { ...base, resampling: 'bilinear' })).alreadyDone, true);
  });
});
