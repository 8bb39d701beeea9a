import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { geobatch } from '../helpers/cli.js';

// terrain1.jpg and its COCO file from SAHI's test data (see test/chip/slice-images.test.ts)
const DATA = resolve('../shared/data/coco');

describe('geobatch chip slice', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('slices terrain1.jpg with its COCO file and reports the counts', async () => {
    const out = join(dir, 'out');
    const r = await geobatch([
      'chip',
      'slice',
      '--images',
      DATA,
      '--coco',
      join(DATA, 'terrain1_coco.json'),
      '--out',
      out,
      '--ignore-negatives',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { chips: number; annotations: number };
    assert.equal((await readdir(join(out, 'images'))).length, result.chips);
    assert.ok(result.annotations >= result.chips);
  });

  const bad: [string, string[], RegExp, number?][] = [
    ['overlap 1', ['--overlap', '1'], /--overlap: expected a number in \[0, 1\) but got '1'/],
    ['overlap -0.2', ['--overlap', '-0.2'], /--overlap: expected a number in \[0, 1\)/],
    ['size 0', ['--size', '0'], /--size: expected an integer in \[1, 1000000\] but got '0'/],
    ['format gif', ['--format', 'gif'], /Allowed choices are jpeg, png, tif/, 1],
    ['--ignore-negatives without --coco', ['--ignore-negatives'], /--ignore-negatives needs --coco/],
  ];
  for (const [name, args, message, code = 2] of bad) {
    it(`refuses ${name} with exit code ${code}`, async () => {
      const r = await geobatch(['chip', 'slice', '--images', DATA, '--out', join(dir, 'bad'), ...args]);
      assert.equal(r.code, code);
      assert.match(r.stderr, message);
    });
  }

  it('a COCO file naming a missing image fails with one line and exit code 1', async () => {
    const r = await geobatch([
      'chip',
      'slice',
      '--images',
      join(DATA, 'terrain2.png'),
      '--coco',
      join(DATA, 'terrain1_coco.json'),
      '--out',
      join(dir, 'missing'),
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /^geobatch: .*terrain1_coco.json: images\[0\].file_name "terrain1.jpg" is not under --images/,
    );
  });
});
