// Runs the Python trainer's unittest suite (jobs/train/tests) with Debian's /usr/bin/python3, which has
// torch (the python3 first on PATH may not), so that `npm test` covers the trainer too.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';

const repo = resolve(import.meta.dirname, '../..');
const python = process.env.GEOBATCH_TEST_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
const skip =
  probe.status === 0 ? false : `${python} cannot import torch/torchvision: ${probe.stderr ?? probe.error}`;

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(python, args, {
      cwd: repo,
      env: { ...process.env, PYTHONPATH: resolve(repo, 'jobs/train') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

describe('python trainer (jobs/train/geobatch_trainer)', { skip }, () => {
  it('passes its unittest suite', { timeout: 600_000 }, async () => {
    const r = await run(['-m', 'unittest', 'discover', '-s', 'jobs/train/tests', '-v']);
    const ran = /^Ran (\d+) tests? in/m.exec(r.output);
    assert.ok(ran, `no unittest summary in the output:\n${r.output.slice(-4000)}`);
    assert.equal(r.code, 0, r.output.slice(-8000));
    assert.ok(Number(ran[1]) >= 20, `expected at least 20 tests, ran ${ran[1]}`);
    assert.match(r.output, /^OK/m);
  });
});
