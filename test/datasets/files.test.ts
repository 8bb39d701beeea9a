import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkFiles, downloadDataset, resolveDataset, type DownloadEvent } from '../../lib/datasets/files.js';
import { findDataset, readRegistry } from '../../lib/datasets/registry.js';
import { createStorage, type Storage } from '../../lib/storage/index.js';
import { geobatch, isolatedEnv } from '../helpers/cli.js';
import { startHttpFiles, type HttpFilesHandle } from '../helpers/http-files.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

// real rasters and labels from ../shared/data (see its PROVENANCE.md)
const shared = resolve(import.meta.dirname, '../../../shared/data');

const sha256Of = async (path: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

/** Every file name under `dir`, relative, sorted (temporary names included). */
async function tree(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe('datasets: files on disk, on S3 and over http', () => {
  let s3: S3rverHandle;
  let http: HttpFilesHandle;
  let storage: Storage;
  let dir: string;
  let bucket: string;
  let registryFile: string;

  before(async () => {
    s3 = await startS3rver();
    http = await startHttpFiles(join(shared, 'cog'));
    storage = createStorage({ s3: s3.clientConfig });
    bucket = await s3.createBucket();
    await storage.writeAtomic(
      `s3://${bucket}/scenes/ms1.tif`,
      await readFile(join(shared, 'spacenet/ms1.tif')),
    );
    dir = await mkdtemp(join(tmpdir(), 'geobatch-datasets-'));
    const pan = join(shared, 'spacenet/pan1.tif');
    registryFile = join(dir, 'datasets.yaml');
    await writeFile(
      registryFile,
      `version: 1
datasets:
  - tag: spacenet-sample
    description: SpaceNet sample scenes, footprints and a mask
    images:
      - ${relative(dir, join(shared, 'spacenet'))}/{pan1,rgb_unmasked}.tif
      - s3://${bucket}/scenes/
      - ${http.url}/cog_rgb.tif
    labels: ${join(shared, 'spacenet/geotiff_labels.geojson')}
    masks: ${join(shared, 'spacenet/sample_fp_mask.tif')}
    gsd: 0.3
    licence: CC-BY-SA-4.0
    source: [https://spacenet.ai/datasets/]
    files:
      ${relative(dir, pan)}: { sha256: ${await sha256Of(pan)}, size: ${(await stat(pan)).size} }
  - tag: corrupt
    description: one file whose recorded checksum is wrong
    images: [${join(shared, 'cog/cog.tif')}, ${join(shared, 'spacenet/pan1.tif')}]
    gsd: 10
    licence: CC0-1.0
    source: https://example.org/
    files:
      ${join(shared, 'cog/cog.tif')}: { sha256: '${'0'.repeat(64)}' }
  - tag: gone
    description: a file the web server does not have
    images: [${http.url}/missing.tif, ${join(shared, 'cog/cog.tif')}]
    gsd: 10
    licence: CC0-1.0
    source: https://example.org/
    files:
      ${join(shared, 'cog/cog.tif')}: { size: 1 }
`,
    );
  });
  after(async () => {
    await http.close();
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const expectedFiles = (): string[] => [
    join(shared, 'spacenet/pan1.tif'),
    join(shared, 'spacenet/rgb_unmasked.tif'),
    `${http.url}/cog_rgb.tif`,
    `s3://${bucket}/scenes/ms1.tif`,
    join(shared, 'spacenet/geotiff_labels.geojson'),
    join(shared, 'spacenet/sample_fp_mask.tif'),
  ];

  it('resolves globs, prefixes and URLs against the registry, with recorded checksums', async () => {
    const registry = await readRegistry(storage, registryFile);
    const { files } = await resolveDataset(storage, registry, findDataset(registry, 'spacenet-sample').index);
    assert.deepEqual(
      files.map((file) => file.uri),
      expectedFiles(),
    );
    assert.deepEqual(
      files.map((file) => file.kind),
      ['images', 'images', 'images', 'images', 'labels', 'masks'],
    );
    assert.equal(files[0]!.sha256, await sha256Of(join(shared, 'spacenet/pan1.tif')));
    assert.equal(files[1]!.sha256, undefined);
  });

  it('checks files: every one found with its size; a missing one and a wrong size are told apart', async () => {
    const registry = await readRegistry(storage, registryFile);
    const good = await resolveDataset(storage, registry, 0);
    const checks = await checkFiles(storage, good.files);
    assert.deepEqual(
      checks.map((check) => check.status),
      ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
    );
    assert.equal(checks[3]!.size, (await stat(join(shared, 'spacenet/ms1.tif'))).size);
    assert.equal(checks[2]!.size, (await stat(join(shared, 'cog/cog_rgb.tif'))).size);
    const gone = await checkFiles(storage, (await resolveDataset(storage, registry, 2)).files);
    assert.deepEqual(
      gone.map((check) => [check.file.uri, check.status]),
      [
        [join(shared, 'cog/cog.tif'), 'size'],
        [`${http.url}/missing.tif`, 'missing'],
      ],
    );
  });

  it('downloads resumably: after an abort mid-way only the missing files are fetched', async () => {
    const registry = await readRegistry(storage, registryFile);
    const resolved = await resolveDataset(storage, registry, 0);
    const out = join(dir, 'out');
    const controller = new AbortController();
    const first: DownloadEvent[] = [];
    await assert.rejects(
      downloadDataset(storage, resolved, out, {
        concurrency: 1,
        signal: controller.signal,
        onEvent: (event) => {
          first.push(event);
          if (
            event.type === 'file' &&
            event.action === 'fetched' &&
            first.filter((e) => e.type === 'file').length === 2
          )
            controller.abort();
        },
      }),
      { name: 'StorageError', code: 'Aborted' },
    );
    // only whole files: the two fetched ones, no temporary name left behind
    assert.deepEqual(await tree(out), ['images/pan1.tif', 'images/rgb_unmasked.tif']);

    const second = await downloadDataset(storage, resolved, out, { concurrency: 3 });
    assert.deepEqual([second.files, second.fetched, second.skipped, second.failed], [6, 4, 2, 0]);
    assert.deepEqual(await tree(out), [
      'images/cog_rgb.tif',
      'images/ms1.tif',
      'images/pan1.tif',
      'images/rgb_unmasked.tif',
      'labels/geotiff_labels.geojson',
      'masks/sample_fp_mask.tif',
    ]);
    // the copies are the sources, byte for byte
    assert.equal(
      await sha256Of(join(out, 'images/ms1.tif')),
      await sha256Of(join(shared, 'spacenet/ms1.tif')),
    );
    assert.equal(
      await sha256Of(join(out, 'images/cog_rgb.tif')),
      await sha256Of(join(shared, 'cog/cog_rgb.tif')),
    );
    const third = await downloadDataset(storage, resolved, out);
    assert.deepEqual([third.fetched, third.skipped, third.bytes], [0, 6, 0]);
  });

  it('refuses a file whose sha256 does not match, leaving nothing under its name; the others are kept', async () => {
    const registry = await readRegistry(storage, registryFile);
    const out = join(dir, 'corrupt');
    const summary = await downloadDataset(storage, await resolveDataset(storage, registry, 1), out);
    assert.deepEqual([summary.fetched, summary.failed], [1, 1]);
    assert.match(
      summary.failures[0]!,
      new RegExp(
        `^${join(shared, 'cog/cog.tif')}: sha256 [0-9a-f]{64} does not match the registry's 0{64}; not written to ${out}/images/cog\\.tif$`,
      ),
    );
    assert.deepEqual(await tree(out), ['images/pan1.tif']);
  });

  it('downloads to an S3 prefix too, and skips the finished objects on a rerun', async () => {
    const registry = await readRegistry(storage, registryFile);
    const resolved = await resolveDataset(storage, registry, 0);
    const out = `s3://${bucket}/copy`;
    const first = await downloadDataset(storage, resolved, out);
    assert.deepEqual([first.fetched, first.failed], [6, 0]);
    const listed = [];
    for await (const info of storage.list(`${out}/`))
      listed.push([info.uri.slice(out.length + 1), info.size]);
    assert.deepEqual(
      listed,
      await Promise.all(
        [
          'images/cog_rgb.tif',
          'images/ms1.tif',
          'images/pan1.tif',
          'images/rgb_unmasked.tif',
          'labels/geotiff_labels.geojson',
          'masks/sample_fp_mask.tif',
        ].map(async (name) => [name, (await storage.stat(join(dir, 'out', name)))?.size]),
      ),
    );
    const again = await downloadDataset(storage, resolved, out);
    assert.deepEqual([again.fetched, again.skipped], [0, 6]);
  });

  it('reads a registry served over http, relative names resolving against its URL', async () => {
    const site = join(dir, 'site');
    await storage.writeAtomic(
      join(site, 'scenes/pan1.tif'),
      await readFile(join(shared, 'spacenet/pan1.tif')),
    );
    await storage.writeAtomic(
      join(site, 'datasets.yaml'),
      'version: 1\ndatasets:\n  - { tag: web, description: served, images: [scenes/pan1.tif], gsd: 0.5, licence: MIT, source: https://example.org/ }\n',
    );
    const server = await startHttpFiles(site);
    try {
      const registry = await readRegistry(storage, `${server.url}/datasets.yaml`);
      const resolved = await resolveDataset(storage, registry, 0);
      assert.deepEqual(
        resolved.files.map((file) => file.uri),
        [`${server.url}/scenes/pan1.tif`],
      );
      const summary = await downloadDataset(storage, resolved, join(dir, 'web'));
      assert.equal(summary.fetched, 1);
      assert.equal(
        await sha256Of(join(dir, 'web/images/pan1.tif')),
        await sha256Of(join(shared, 'spacenet/pan1.tif')),
      );
    } finally {
      await server.close();
    }
  });

  it('geobatch datasets list --check-files, show and download from the command line', async () => {
    const env = isolatedEnv({
      GEOBATCH_DATASETS: registryFile,
      GEOBATCH_S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    });
    const list = await geobatch(['datasets', 'list', '--check-files', '--json'], { env, cwd: dir });
    assert.equal(list.code, 1, list.stderr);
    const listed = JSON.parse(list.stdout) as {
      datasets: { tag: string; files: number; problems: string[] }[];
    };
    assert.deepEqual(
      listed.datasets.map((d) => [d.tag, d.files, d.problems.length]),
      [
        ['spacenet-sample', 6, 0],
        ['corrupt', 2, 0],
        ['gone', 2, 2],
      ],
    );
    assert.match(list.stderr, /2 problems: files missing, of the wrong size, or lists that match nothing/);

    const text = await geobatch(['datasets', 'list'], { env, cwd: dir });
    assert.equal(text.code, 0, text.stderr);
    assert.deepEqual(
      text.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/).slice(0, 4)),
      [
        ['spacenet-sample', '0.3', 'm', 'CC-BY-SA-4.0'],
        ['corrupt', '10', 'm', 'CC0-1.0'],
        ['gone', '10', 'm', 'CC0-1.0'],
      ],
    );
    await writeFile(join(dir, 'bad.yaml'), 'version: 1\ndatasets:\n  - tag: x\n    gsd: fine\n');
    const bad = await geobatch(['datasets', 'list', '--registry', join(dir, 'bad.yaml')], { env });
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /bad\.yaml: datasets\[0\]\.gsd: expected a number > 0 but got 'fine' \(line 4\)/,
    );

    const entry = (tag: string, images: string): string =>
      `  - { tag: ${tag}, description: d, images: '${images}', gsd: 1, licence: MIT, source: https://example.org/ }\n`;
    await writeFile(
      join(dir, 'partly.yaml'),
      `version: 1\ndatasets:\n${entry('here', join(shared, 'cog/*.tif'))}${entry('empty', 'nothing/*.tif')}`,
    );
    const partly = await geobatch(
      ['datasets', 'list', '--check-files', '--json', '--registry', join(dir, 'partly.yaml')],
      {
        env,
      },
    );
    assert.equal(partly.code, 1);
    const rows = (JSON.parse(partly.stdout) as typeof listed).datasets;
    assert.deepEqual(
      rows.map((row) => [row.tag, row.files, row.problems.length]),
      [
        ['here', 3, 0],
        ['empty', 0, 1],
      ],
    );
    assert.match(
      rows[1]!.problems[0]!,
      /partly\.yaml: datasets\[1\]\.images\[0\]: 'nothing\/\*\.tif' matched no files .*\(line 4\)$/,
    );

    const show = await geobatch(['datasets', 'show', 'spacenet-sample', '--json'], { env });
    assert.equal(show.code, 0, show.stderr);
    const shown = JSON.parse(show.stdout) as { gsd: number; licence: string; files: { uri: string }[] };
    assert.deepEqual([shown.gsd, shown.licence], [0.3, 'CC-BY-SA-4.0']);
    assert.deepEqual(
      shown.files.map((file) => file.uri),
      expectedFiles(),
    );
    const unknown = await geobatch(['datasets', 'show', 'spacenet'], { env });
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /no dataset tagged 'spacenet' \(known tags: spacenet-sample, corrupt, gone\)/,
    );

    const out = join(dir, 'cli-out');
    const download = await geobatch(['datasets', 'download', 'spacenet-sample', '--out', out], { env });
    assert.equal(download.code, 0, download.stderr);
    assert.match(
      download.stdout,
      /^download spacenet-sample: 6 files \(6 fetched, 0 already there\), \d+\.\d MB in \d+\.\d s -> /,
    );
    const again = await geobatch(['datasets', 'download', 'spacenet-sample', '--out', out], { env });
    assert.match(again.stdout, /6 files \(0 fetched, 6 already there\), 0\.0 MB/);
  });
});
