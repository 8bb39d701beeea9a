// `geobatch dataset build` as a user runs it: local folders, S3 (s3rver) in and out, bad input.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { DatasetManifest } from '../../lib/dataset/build.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch, isolatedEnv } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { simpleScenes, writeScenes } from './fixtures.js';

describe('geobatch dataset build', () => {
  let dir: string;
  let chips: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-dataset-cli-'));
    chips = join(dir, 'chips');
    await writeScenes(chips, simpleScenes(5));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('builds a dataset from a folder of scene folders and prints the manifest with --json', async () => {
    const out = join(dir, 'ds');
    const r = await geobatch([
      'dataset',
      'build',
      chips,
      '--out',
      out,
      '--val',
      '0.4',
      '--seed',
      '3',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as DatasetManifest & { manifest: string };
    assert.equal(printed.manifest, join(out, 'dataset.json'));
    assert.deepEqual(printed.counts, {
      train: { scenes: 3, images: 6, annotations: 3 },
      val: { scenes: 2, images: 4, annotations: 2 },
    });
    assert.deepEqual(printed.fractions, { val: 0.4, test: 0 });
    assert.equal(printed.seed, 3);
    assert.ok((await readdir(out)).includes('contact-sheet.png'));
  });

  it('prints a summary without --json', async () => {
    const r = await geobatch([
      'dataset',
      'build',
      join(chips, 'scene-01'),
      join(chips, 'scene-02'),
      '--out',
      join(dir, 'two'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /dataset build: 1 categories/);
    assert.match(r.stdout, /train 1 scene\(s\), 2 chips, 1 annotations/);
    assert.match(r.stdout, /val {3}1 scene\(s\), 2 chips, 1 annotations/);
  });

  it('warns when there is one scene', async () => {
    const r = await geobatch(['dataset', 'build', join(chips, 'scene-01'), '--out', join(dir, 'one')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: only one scene \(scene-01\): it is all train and val is empty/);
  });

  for (const [name, args, code, message] of [
    ['a fraction out of range', ['--val', '1.5'], 2, /--val: expected a fraction in \(0, 1\) but got '1.5'/],
    [
      'fractions summing to 1',
      ['--val', '0.5', '--test', '0.5'],
      2,
      /--val \+ --test: expected a sum below 1/,
    ],
    ['a bad seed', ['--seed', '-1'], 2, /--seed: expected an integer in \[0, 4294967295\] but got '-1'/],
    [
      'a folder without annotations.json',
      ['--val', '0.2', join('/nonexistent', 'x')],
      1,
      /\/nonexistent\/x: no annotations.json/,
    ],
  ] as const) {
    it(`fails on ${name}`, async () => {
      const r = await geobatch(['dataset', 'build', chips, ...args, '--out', join(dir, 'bad')]);
      assert.equal(r.code, code, r.stderr);
      assert.match(r.stderr, message);
      await assert.rejects(readdir(join(dir, 'bad')));
    });
  }

  describe('on S3 (s3rver)', () => {
    let s3: S3rverHandle;
    let bucket: string;
    let env: NodeJS.ProcessEnv;
    before(async () => {
      s3 = await startS3rver();
      bucket = await s3.createBucket();
      env = isolatedEnv({
        GEOBATCH_S3_ENDPOINT: s3.endpoint,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        GEOBATCH_CACHE_DIR: join(dir, 'cache'),
      });
      const storage = createStorage({ s3: s3.clientConfig, cacheDir: join(dir, 'cache') });
      const files: string[] = [];
      const walk = async (d: string): Promise<void> => {
        for (const e of await readdir(d, { withFileTypes: true })) {
          if (e.isDirectory()) await walk(join(d, e.name));
          else files.push(join(d, e.name));
        }
      };
      await walk(chips);
      for (const f of files) {
        await storage.writeAtomic(`s3://${bucket}/run/chips/${relative(chips, f)}`, await readFile(f));
      }
    });
    after(async () => {
      await s3?.stop();
    });

    it('reads chips from S3 and writes the dataset to S3, manifest last, images referenced in place', async () => {
      const r = await geobatch(
        ['dataset', 'build', `s3://${bucket}/run/chips`, '--out', `s3://${bucket}/run/dataset`, '--json'],
        { env },
      );
      assert.equal(r.code, 0, r.stderr);
      const storage = createStorage({ s3: s3.clientConfig, cacheDir: join(dir, 'cache') });
      const manifest = JSON.parse(
        (await storage.read(`s3://${bucket}/run/dataset/dataset.json`)).toString(),
      ) as DatasetManifest;
      assert.equal(manifest.imagesRoot, `s3://${bucket}/run/chips`);
      assert.equal(manifest.scenes.train.length + manifest.scenes.val.length, 5);
      const val = JSON.parse((await storage.read(`s3://${bucket}/run/dataset/val.json`)).toString()) as {
        images: { file_name: string }[];
      };
      const chip = await storage.read(`${manifest.imagesRoot}/${val.images[0]!.file_name}`);
      assert.equal((await sharp(chip).metadata()).width, 64);
      const sheet = await storage.read(`s3://${bucket}/run/dataset/contact-sheet.png`);
      assert.equal((await sharp(sheet).metadata()).format, 'png');
      // the same dataset built locally is byte-identical apart from where the images are
      const local = await geobatch(['dataset', 'build', chips, '--out', join(dir, 'local'), '--json']);
      assert.equal(local.code, 0, local.stderr);
      assert.equal(
        (await storage.read(`s3://${bucket}/run/dataset/labels.csv`)).toString(),
        await readFile(join(dir, 'local', 'labels.csv'), 'utf8'),
      );
    });

    it('copies S3 chips into a self-contained local dataset', async () => {
      const out = join(dir, 'from-s3');
      const r = await geobatch(
        ['dataset', 'build', `s3://${bucket}/run/chips`, '--out', out, '--copy-images', '--json'],
        {
          env,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      const manifest = JSON.parse(await readFile(join(out, 'dataset.json'), 'utf8')) as DatasetManifest;
      assert.equal(manifest.imagesRoot, join(out, 'images'));
      assert.deepEqual((await readdir(join(out, 'images'))).sort(), [
        'scene-01',
        'scene-02',
        'scene-03',
        'scene-04',
        'scene-05',
      ]);
    });

    it('names a missing S3 prefix', async () => {
      const r = await geobatch(['dataset', 'build', `s3://${bucket}/nothing`, '--out', join(dir, 'none')], {
        env,
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`s3://${bucket}/nothing: no annotations.json`));
    });
  });
});
