import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../raster/fixtures.js';

let tmp: { dir: string; cleanup: () => void };
before(() => (tmp = tempDir('demo-cli')));
after(() => tmp.cleanup());

// The command runs in a child process: the test runner itself talks to its parent over stdout.
const SCRIPT = `
import { demoDataCommand } from './lib/cli/demo-data.ts';
try {
  await demoDataCommand.parseAsync(process.argv.slice(1), { from: 'user' });
} catch (error) {
  process.stderr.write(error.name + ': ' + error.message);
  process.exitCode = 1;
}
`;

/** Runs the command with `args`; returns its stdout, or rejects with what it printed on stderr. */
async function run(args: string[]): Promise<string> {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', SCRIPT, ...args],
    {
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    },
  );
  if (result.status !== 0) throw new Error(result.stderr);
  return result.stdout;
}

describe('geobatch demo-data', () => {
  it('--json prints what was written', async () => {
    const dir = join(tmp.dir, 'json');
    const out = JSON.parse(await run([dir, '--size', '128', '--scenes', '2', '--seed', '5', '--json'])) as {
      dir: string;
      scenes: { image: string; width: number; counts: Record<string, number> }[];
      xviewLabels: string;
      manifest: string;
      seconds: number;
    };
    assert.equal(out.dir, dir);
    assert.deepEqual(
      out.scenes.map((s) => [s.image, s.width]),
      [
        [join(dir, 'demo-001.tif'), 128],
        [join(dir, 'demo-002.tif'), 128],
      ],
    );
    assert.deepEqual(Object.keys(out.scenes[0]?.counts ?? {}), ['building', 'vehicle', 'storage_tank']);
    assert.ok(existsSync(out.xviewLabels) && existsSync(out.manifest));
    assert.ok(out.seconds > 0);
  });

  it('prints paths, sizes and object counts', async () => {
    const dir = join(tmp.dir, 'text');
    const out = await run([dir, '--size', '96', '--scenes', '1', '--seed', '42']);
    assert.match(out, /^wrote demo data to .* in \d+\.\d s\n/);
    assert.match(out, /demo-001\.tif {2}96 x 96 px, 4 x uint16, EPSG:32633, [\d.]+ MB \(near .+\)\n/);
    assert.match(out, /\d+ buildings, \d+ vehicles, \d+ storage tanks -> .*labels\/demo-001\.geojson/);
    assert.match(out, /xview_demo\.geojson/);
  });

  const invalid: [string[], RegExp][] = [
    [['--size', '10'], /--size: expected an integer in \[64, 20000\] but got '10'/],
    [['--size', 'big'], /--size: expected an integer in \[64, 20000\] but got 'big'/],
    [['--scenes', '0'], /--scenes: expected an integer in \[1, 100\] but got '0'/],
    [['--seed', '1.5'], /--seed: expected an integer in \[0, 2147483647\] but got '1.5'/],
  ];
  for (const [flags, message] of invalid) {
    it(`rejects ${flags.join(' ')} with a usage error`, async () => {
      const dir = join(tmp.dir, 'invalid');
      await assert.rejects(run([dir, ...flags]), (error: Error) => {
        assert.match(error.message, /^UsageError: /);
        assert.match(error.message, message);
        return true;
      });
      assert.ok(!existsSync(dir));
    });
  }
});
