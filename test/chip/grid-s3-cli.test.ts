// `chip grid` reading a COG from S3 (s3rver) by ranges, and the command line's checks.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chipGrid, type GridIndex } from '../../lib/chip/grid.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

const data = resolve(import.meta.dirname, '../../../shared/data/cog');

describe('chip grid on S3 and the CLI', () => {
  let dir: string;
  let server: S3rverHandle;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chip-grid-s3-'));
    server = await startS3rver();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('chips an s3:// COG into an s3:// prefix with the same result as locally', async () => {
    const s3 = createStorage({ s3: server.clientConfig, cacheDir: join(dir, 'cache') });
    const bucket = await server.createBucket();
    const uri = `s3://${bucket}/scenes/cog_nodata.tif`;
    await s3.writeAtomic(uri, await readFile(join(data, 'cog_nodata.tif')));
    const remote = await chipGrid(s3, {
      image: uri,
      out: `s3://${bucket}/chips`,
      grid: 'webmercator',
      level: 7,
    });
    const local = await chipGrid(createStorage(), {
      image: join(data, 'cog_nodata.tif'),
      out: join(dir, 'local'),
      grid: 'webmercator',
      level: 7,
    });
    assert.deepEqual(remote.counts, local.counts);
    const index = JSON.parse(
      (await s3.read(`s3://${bucket}/chips/nodata-index.json`)).toString(),
    ) as GridIndex;
    const written = index.chips.filter((c) => c.written);
    assert.equal(written.length, local.written);
    const a = await s3.read(`s3://${bucket}/chips/${written[0]!.chip}`);
    const b = await readFile(join(dir, 'local', written[0]!.chip));
    assert.ok(a.equals(b));
  });

  it('rejects bad options with exit code 2 and names them', async () => {
    const image = join(data, 'cog.tif');
    const cases: [string[], RegExp][] = [
      [['--level', '25'], /--level: expected an integer in \[1, 24\] but got '25'/],
      [['--level', '0'], /--level: expected an integer in \[1, 24\] but got '0'/],
      [['--level', '9', '--grid', 'utm'], /argument 'utm' is invalid/],
      [['--level', '9', '--tile-size', '300'], /--tile-size: expected 256 or 512 but got '300'/],
      [['--level', '9', '--keep-values'], /--keep-values needs --format tif/],
    ];
    for (const [extra, message] of cases) {
      const args = ['chip', 'grid', '--image', image, '--grid', 'ard', '--out', join(dir, 'bad'), ...extra];
      const r = await geobatch(args);
      // our checks exit 2; commander's own choice check exits 1
      assert.equal(r.code, extra.includes('utm') ? 1 : 2, `${extra.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  it('runs from the command line with --json', async () => {
    const out = join(dir, 'cli');
    const r = await geobatch([
      'chip',
      'grid',
      '--image',
      join(data, 'cog_nodata.tif'),
      '--grid',
      'ard',
      '--level',
      '8',
      '--out',
      out,
      '--format',
      'jpeg',
      '--no-skip-empty',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { cells: number; written: number; tileSize: number };
    assert.equal(result.tileSize, 512);
    assert.equal(result.written, result.cells);
    const index = JSON.parse(await readFile(join(out, 'nodata-index.json'), 'utf8')) as GridIndex;
    assert.equal(index.nodata, 0);
    assert.ok(index.chips.every((c) => c.written && /^Z21-[0-3]{8}_cognodata\.jpg$/.test(c.chip)));
  });
});
