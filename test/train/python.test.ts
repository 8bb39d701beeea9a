import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TrainError } from '../../lib/train/errors.js';
import { findPython, trainerDir } from '../../lib/train/python.js';

describe('findPython', () => {
  let dir: string;
  // a trainer package that fails, so that the real /usr/bin/python3 (which has torch) fails too
  let pkg: string;
  const env = (extra: Record<string, string>) => ({
    PATH: dir,
    HOME: dir,
    GEOBATCH_TRAINER_DIR: pkg,
    ...extra,
  });
  /** A fake interpreter: records that it ran, then prints an env event (ok) or fails. */
  const fake = async (name: string, ok: boolean, gpus = 0) => {
    const body = ok
      ? `echo '{"event":"env","python":"3.0","torch":"fake-${name}","torchvision":"0","cuda":${gpus > 0},"gpus":${gpus}}'`
      : `echo "No module named 'torch'" >&2; exit 1`;
    await writeFile(
      join(dir, name),
      `#!/bin/sh\necho "${name} $*" >> "${dir}/calls"\n[ "$PYTHONPATH" = "${pkg}" ] || { echo "bad PYTHONPATH $PYTHONPATH" >&2; exit 9; }\n${body}\n`,
    );
    await chmod(join(dir, name), 0o755);
  };
  const calls = async () =>
    (await readFile(join(dir, 'calls'), 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-python-'));
    pkg = join(dir, 'trainer');
    await mkdir(join(pkg, 'geobatch_trainer'), { recursive: true });
    await writeFile(join(pkg, 'geobatch_trainer', '__main__.py'), 'raise SystemExit("broken trainer")\n');
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('finds the trainer package from the module location', () => {
    assert.match(trainerDir({}), /jobs\/train$/);
    assert.equal(trainerDir({ GEOBATCH_TRAINER_DIR: '/app/jobs/train' }), '/app/jobs/train');
  });

  it('tries python3, then python, then /usr/bin/python3, and takes the first that passes --check', async () => {
    await fake('python3', false);
    await fake('python', true, 2);
    const found = await findPython({ env: env({}) });
    assert.equal(found.python, 'python');
    assert.equal(found.env.torch, 'fake-python');
    assert.equal(found.env.gpus, 2);
    assert.deepEqual(await calls(), [
      'python3 -m geobatch_trainer --check',
      'python -m geobatch_trainer --check',
    ]);
    await fake('python3', true);
    assert.equal((await findPython({ env: env({}) })).python, 'python3');
  });

  it('uses GEOBATCH_PYTHON alone when set, and says clearly when it is missing', async () => {
    await fake('custom', true);
    assert.equal(
      (await findPython({ env: env({ GEOBATCH_PYTHON: join(dir, 'custom') }) })).env.torch,
      'fake-custom',
    );
    const missing = join(dir, 'no-such-python');
    await assert.rejects(findPython({ env: env({ GEOBATCH_PYTHON: missing }) }), (error: unknown) => {
      assert.ok(error instanceof TrainError);
      assert.equal(error.kind, 'python');
      assert.match(
        error.message,
        new RegExp(`GEOBATCH_PYTHON='${missing}' cannot run the trainer \\(not found\\)`),
      );
      return true;
    });
  });

  it('lists every candidate and its problem when none works', async () => {
    await fake('python3', false);
    await fake('python', false);
    await assert.rejects(findPython({ env: env({ PATH: dir }) }), (error: unknown) => {
      assert.ok(error instanceof TrainError);
      assert.match(error.message, /python3: No module named 'torch'/);
      assert.match(error.message, /python: No module named 'torch'/);
      assert.match(error.message, /\/usr\/bin\/python3: broken trainer/);
      return true;
    });
  });

  it('names a missing trainer package', async () => {
    await assert.rejects(
      findPython({ env: env({ GEOBATCH_TRAINER_DIR: join(dir, 'nothing') }) }),
      /trainer package not found: .*geobatch_trainer does not exist/,
    );
  });
});
