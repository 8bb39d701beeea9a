// chip slice resumes: a run interrupted part-way (an abort, as a spot reclaim or Ctrl-C gives) and
// run again keeps the chips of the rows of windows it had finished — the same files, not written
// again — cuts the rest, and ends with exactly the outputs of an uninterrupted run. Anything that
// changes a chip (quality, the source file) or a missing chip makes its rows be cut again.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { progressFileName, sliceImages, type SliceImagesOptions } from '../../lib/chip/slice-images.js';
import { createStorage } from '../../lib/storage/index.js';
import { isolatedEnv, tsxLoader } from '../helpers/cli.js';

const SHARED = resolve(import.meta.dirname, '../../../shared/data');
// 2048 x 1365 RGB JPEG, 7 boxes (SAHI's test data)
const TERRAIN = join(SHARED, 'coco/terrain1.jpg');
const TERRAIN_COCO = join(SHARED, 'coco/terrain1_coco.json');
// 2658 x 2667, 1 band uint16, PixelIsPoint, tiled 256
const COG = join(SHARED, 'cog/cog.tif');

interface Progress {
  version: number;
  sections: Record<string, { source: string; done: Record<string, number> }>;
}

/** Every output file of a slice run (chips, annotations, footprints) by name; not the progress file. */
async function outputs(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const n of (await readdir(join(dir, 'images'))).sort()) {
    files.set(`images/${n}`, await readFile(join(dir, 'images', n)));
  }
  for (const n of (await readdir(dir)).sort()) {
    if (n.endsWith('.json') || n.endsWith('.geojson')) {
      if (!n.startsWith('.chip-slice-progress')) files.set(n, await readFile(join(dir, n)));
    }
  }
  return files;
}

/** Inode and modification time of every chip: a chip written again (atomically) gets a new inode. */
async function identities(dir: string): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const n of await readdir(join(dir, 'images'))) {
    const s = await stat(join(dir, 'images', n));
    ids.set(n, `${s.ino}:${s.mtimeMs}`);
  }
  return ids;
}

/** The top row of a chip from its name `<stem>_<x0>_<y0>_<x1>_<y1>.<ext>`. */
function topOf(name: string): number {
  return Number(name.split('_').at(-3));
}

/** Runs `options` and aborts it once `after` chips are queued; returns the error it threw. */
async function interrupted(options: SliceImagesOptions, after: number): Promise<unknown> {
  const controller = new AbortController();
  return sliceImages(createStorage(), {
    ...options,
    signal: controller.signal,
    onProgress: (done) => {
      if (done >= after) controller.abort();
    },
  }).then(
    () => assert.fail('the interrupted run finished'),
    (error: unknown) => error,
  );
}

function assertSameOutputs(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [n, bytes] of expected) assert.ok(bytes.equals(actual.get(n)!), `${n} differs`);
}

describe('chip slice resumes an interrupted run', () => {
  let dir: string;
  const storage = createStorage();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-resume-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [name, options] of [
    ['a JPEG with COCO labels on one thread', { images: TERRAIN, coco: TERRAIN_COCO, size: 100, workers: 1 }],
    ['a uint16 COG on two worker threads', { images: COG, size: 128, workers: 2, format: 'png' as const }],
  ] as const) {
    it(`keeps the finished rows and ends with an uninterrupted run's outputs: ${name}`, async () => {
      const whole = join(dir, `whole-${name.length}`);
      const resumedDir = join(dir, `resumed-${name.length}`);
      const full = await sliceImages(storage, { ...options, out: whole });
      assert.ok(full.chips > 300, `${full.chips} chips`);
      assert.equal(full.resumed, 0);

      const error = await interrupted({ ...options, out: resumedDir }, Math.floor(full.chips / 2));
      assert.equal((error as Error).name, 'AbortError');
      assert.equal(
        await stat(join(resumedDir, 'annotations.json')).then(
          () => true,
          () => false,
        ),
        false,
        'an interrupted run writes no annotations.json',
      );
      const progress = JSON.parse(readFileSync(join(resumedDir, progressFileName()), 'utf8')) as Progress;
      const [entry] = Object.values(progress.sections);
      assert.equal(entry!.source, options.images);
      const done = new Set(Object.keys(entry!.done).map(Number));
      assert.ok(done.size > 0, 'some rows were recorded as finished');
      const before = await identities(resumedDir);
      const inDoneRows = [...before.keys()].filter((n) => done.has(topOf(n)));
      assert.ok(inDoneRows.length < full.chips, 'the interruption left rows to cut');

      const again = await sliceImages(storage, { ...options, out: resumedDir });
      assert.deepEqual(again, {
        ...full,
        annotationsUri: again.annotationsUri,
        resumed: inDoneRows.length,
        rows: again.rows,
      });
      assert.equal(again.rows!.windows, full.rows!.windows - done.size, 'only the unfinished rows are cut');
      const afterIds = await identities(resumedDir);
      for (const n of inDoneRows) assert.equal(afterIds.get(n), before.get(n), `${n} was written again`);
      assertSameOutputs(await outputs(resumedDir), await outputs(whole));

      // a third run has nothing left to cut and writes no chip
      const third = await sliceImages(storage, { ...options, out: resumedDir });
      assert.equal(third.resumed, full.chips);
      assert.equal(third.rows, null);
      assert.deepEqual(await identities(resumedDir), afterIds);
      assertSameOutputs(await outputs(resumedDir), await outputs(whole));
    });
  }

  it('cuts again the rows whose chips changed options, source or went missing', async () => {
    const out = join(dir, 'changes');
    const image = join(dir, 'terrain.jpg');
    await copyFile(TERRAIN, image);
    const options = { images: image, size: 200, workers: 1, out };
    const first = await sliceImages(storage, options);
    assert.equal((await sliceImages(storage, options)).resumed, first.chips);

    // another JPEG quality gives other bytes: nothing is kept
    const q80 = await sliceImages(storage, { ...options, quality: 80 });
    assert.equal(q80.resumed, 0);
    const q80Bytes = await outputs(out);
    assert.equal((await sliceImages(storage, { ...options, quality: 80 })).resumed, first.chips);

    // a missing chip: its row is cut again, the others kept
    const names = (await readdir(join(out, 'images'))).sort();
    const victim = names[Math.floor(names.length / 2)]!;
    await unlink(join(out, 'images', victim));
    const rowChips = names.filter((n) => topOf(n) === topOf(victim)).length;
    const refilled = await sliceImages(storage, { ...options, quality: 80 });
    assert.equal(refilled.resumed, first.chips - rowChips);
    assert.equal(refilled.rows?.windows, 1);
    assertSameOutputs(await outputs(out), q80Bytes);

    // the source replaced by another file (a different modification time): everything is cut again
    await writeFile(image, await readFile(TERRAIN));
    const later = new Date(Date.now() + 60_000);
    await utimes(image, later, later);
    assert.equal((await sliceImages(storage, { ...options, quality: 80 })).resumed, 0);
  });

  it('stops cleanly on Ctrl-C from the command line and resumes when run again', async () => {
    const out = join(dir, 'cli');
    const args = ['chip', 'slice', '--images', COG, '--out', out, '--size', '48', '--format', 'png'];
    const bin = resolve(import.meta.dirname, '../../bin/geobatch.ts');
    const child = spawn(process.execPath, ['--import', tsxLoader, bin, ...args], {
      env: isolatedEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((done) => child.on('close', done));
    // interrupt once a few hundred of its 4,692 chips are written
    for (let i = 0; i < 600; i++) {
      const n = await readdir(join(out, 'images')).then(
        (names) => names.length,
        () => 0,
      );
      if (n >= 300) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(
      stderr,
      /interrupted; the finished rows of windows are recorded in .*run the same command to resume/,
    );
    const names = await readdir(join(out, 'images'));
    assert.ok(names.length < 4692, `${names.length} chips written before the interruption`);
    for (const n of names) assert.match(n, /^cog_\d+_\d+_\d+_\d+\.png$/, 'no temporary file is left');
    await assert.rejects(stat(join(out, 'annotations.json')), { code: 'ENOENT' });

    const again = await sliceImages(storage, { images: COG, out, size: 48, format: 'png' });
    assert.equal(again.chips, 4692);
    assert.ok(again.resumed > 0 && again.resumed <= names.length, `kept ${again.resumed}`);
    assert.equal((await readdir(join(out, 'images'))).length, 4692);
  });

  it('ignores a progress file it cannot read, and keeps one per part', async () => {
    const out = join(dir, 'garbage');
    const options = { images: TERRAIN, size: 200, workers: 1, out };
    const first = await sliceImages(storage, options);
    await writeFile(join(out, progressFileName()), '{"version": 1, "sections": ');
    assert.equal((await sliceImages(storage, options)).resumed, 0);
    assert.equal((await sliceImages(storage, options)).resumed, first.chips);

    const part = { index: 1, count: 3 };
    const p = await sliceImages(storage, { ...options, part });
    assert.equal(p.resumed, 0, 'a part does not trust the whole run\u2019s progress');
    assert.equal(progressFileName(part), '.chip-slice-progress.part-2-of-3.json');
    const recorded = JSON.parse(readFileSync(join(out, progressFileName(part)), 'utf8')) as Progress;
    assert.equal(Object.keys(Object.values(recorded.sections)[0]!.done).length, p.rows!.windows);
    assert.equal((await sliceImages(storage, { ...options, part })).resumed, p.chips);
  });
});
