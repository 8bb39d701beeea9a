import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createStorage } from '../../lib/storage/index.js';
import type { Storage } from '../../lib/storage/types.js';
import { latestCheckpoint, restoreCheckpoint, uploadCheckpoint } from '../../lib/train/checkpoints.js';
import { prepareDataset } from '../../lib/train/dataset.js';
import { TrainError } from '../../lib/train/errors.js';
import { runTraining } from '../../lib/train/train.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { writeFakeTrainer } from './fake-trainer.js';
import { tinyDataset, writeTinyDataset } from './tiny-dataset.js';

/** The storage, counting the objects it streams (downloads). */
function counting(storage: Storage): { storage: Storage; downloads: string[] } {
  const downloads: string[] = [];
  const wrapped: Storage = Object.create(storage) as Storage;
  wrapped.createReadStream = (uri, options) => {
    downloads.push(uri);
    return storage.createReadStream(uri, options);
  };
  return { storage: wrapped, downloads };
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('training data and checkpoints on S3', () => {
  let s3: S3rverHandle;
  let dir: string;
  let storage: Storage;
  let bucket: string;
  before(async () => {
    s3 = await startS3rver();
    dir = await mkdtemp(join(tmpdir(), 'geobatch-trainstore-'));
    bucket = await s3.createBucket();
    storage = createStorage({ s3: s3.clientConfig, cacheDir: join(dir, 'unused-cache') });
  });
  after(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('syncs a dataset.json dataset once, then skips what is already there', async () => {
    // merge layout: split files in the dataset folder, chips under the chip stage (imagesRoot)
    const data = await tinyDataset({ nTrain: 3, nVal: 2, prefix: 'scene-a/images/' });
    const ds = `s3://${bucket}/run/merge`;
    const imagesRoot = `s3://${bucket}/run/chip`;
    for (const image of data.images)
      await storage.writeAtomic(`${imagesRoot}/${image.fileName}`, image.bytes);
    await storage.writeAtomic(`${imagesRoot}/scene-b/images/unused.png`, 'not part of the dataset');
    await storage.writeAtomic(`${ds}/train.json`, JSON.stringify(data.train));
    await storage.writeAtomic(`${ds}/val.json`, JSON.stringify(data.val));
    await storage.writeAtomic(
      `${ds}/dataset.json`,
      JSON.stringify({
        version: 1,
        imagesRoot,
        splits: { train: 'train.json', val: 'val.json' },
        scenes: { train: ['scene-a'], val: ['scene-a'] },
        categories: [
          { id: 1, name: 'building' },
          { id: 7, name: 'vehicle' },
        ],
      }),
    );
    const cacheDir = join(dir, 'cache');
    const first = counting(storage);
    const progress: [number, number][] = [];
    const prepared = await prepareDataset(first.storage, ds, {
      cacheDir,
      concurrency: 2,
      onProgress: (d, t) => progress.push([d, t]),
    });
    assert.equal(first.downloads.length, 5);
    assert.deepEqual(prepared.sync, {
      files: 5,
      downloaded: 5,
      bytes: data.images.reduce((a, i) => a + i.bytes.length, 0),
    });
    assert.deepEqual(progress.at(-1), [5, 5]);
    assert.deepEqual(prepared.classes, [
      { id: 1, name: 'building' },
      { id: 7, name: 'vehicle' },
    ]);
    assert.equal(prepared.splits.train.images, 3);
    assert.equal(prepared.splits.val.images, 2);
    assert.match(prepared.data.root, new RegExp(`^${cacheDir}/datasets/[0-9a-f]{16}$`));
    assert.equal(prepared.data.imagesDir, 'images');
    const local = join(prepared.data.root, 'images', data.images[0]!.fileName);
    assert.deepEqual(await readFile(local), data.images[0]!.bytes);
    const train = JSON.parse(await readFile(join(prepared.data.root, prepared.data.train), 'utf8'));
    assert.deepEqual(train, data.train);
    const before = (await stat(local)).mtimeMs;

    const second = counting(storage);
    const again = await prepareDataset(second.storage, ds, { cacheDir });
    assert.deepEqual(second.downloads, []);
    assert.equal(again.sync.downloaded, 0);
    assert.equal((await stat(local)).mtimeMs, before);

    // an image changed on S3 (same size, new ETag) is fetched again, and only that one
    const changed = Buffer.from(data.images[0]!.bytes);
    changed[changed.length - 1] = changed[changed.length - 1]! ^ 0xff;
    await storage.writeAtomic(`${imagesRoot}/${data.images[0]!.fileName}`, changed);
    const third = counting(storage);
    await prepareDataset(third.storage, ds, { cacheDir });
    assert.deepEqual(third.downloads, [`${imagesRoot}/${data.images[0]!.fileName}`]);
    assert.deepEqual(await readFile(local), changed);
  });

  it('names the images missing on S3', async () => {
    const data = await tinyDataset({ nTrain: 2, nVal: 1 });
    const ds = `s3://${bucket}/plain`;
    await storage.writeAtomic(`${ds}/train.json`, JSON.stringify(data.train));
    await storage.writeAtomic(`${ds}/val.json`, JSON.stringify(data.val));
    await storage.writeAtomic(`${ds}/images/${data.images[0]!.fileName}`, data.images[0]!.bytes);
    await assert.rejects(prepareDataset(storage, ds, { cacheDir: join(dir, 'cache') }), (error: unknown) => {
      assert.ok(error instanceof TrainError);
      assert.equal(error.kind, 'data');
      assert.match(
        error.message,
        new RegExp(
          `2 image\\(s\\) of the dataset are missing under s3://${bucket}/plain/images/: train-1.png, val-0.png`,
        ),
      );
      return true;
    });
  });

  it('uses a local plain folder in place and rejects one that is not a dataset', async () => {
    const ds = join(dir, 'local-ds');
    await writeTinyDataset(ds);
    const prepared = await prepareDataset(storage, ds, { cacheDir: join(dir, 'cache') });
    assert.deepEqual(prepared.data, { root: ds, train: 'train.json', val: 'val.json', imagesDir: 'images' });
    assert.equal(prepared.sync.downloaded, 0);
    await assert.rejects(
      prepareDataset(storage, join(dir, 'nothing'), { cacheDir: join(dir, 'cache') }),
      /neither dataset.json nor .*train.json exists/,
    );
  });

  it('uploads checkpoints and restores the latest one', async () => {
    const remote = `s3://${bucket}/ck/checkpoints`;
    assert.equal(await latestCheckpoint(storage, remote), undefined);
    const local = join(dir, 'ck-local');
    const { writeFile, mkdir } = await import('node:fs/promises');
    await mkdir(local, { recursive: true });
    for (const epoch of [1, 2, 10]) {
      const path = join(local, `epoch-${String(epoch).padStart(4, '0')}.pt`);
      await writeFile(path, `checkpoint ${epoch}`);
      assert.equal(
        await uploadCheckpoint(storage, path, remote),
        `${remote}/epoch-${String(epoch).padStart(4, '0')}.pt`,
      );
    }
    await storage.writeAtomic(`${remote}/notes.txt`, 'not a checkpoint');
    const target = join(dir, 'ck-restored');
    assert.equal(await restoreCheckpoint(storage, remote, target), 10);
    assert.equal(await readFile(join(target, 'epoch-0010.pt'), 'utf8'), 'checkpoint 10');
  });

  it('resumes a killed training from the checkpoint it uploaded (fake trainer)', async () => {
    const trainerDir = await writeFakeTrainer(join(dir, 'fake'));
    const ds = join(dir, 'resume-ds');
    await writeTinyDataset(ds);
    const out = `s3://${bucket}/resume/train`;
    const python = {
      python: 'python3',
      trainerDir,
      env: { event: 'env' as const, python: '3', torch: 'fake', torchvision: 'fake', cuda: false, gpus: 0 },
    };
    // the config has no 'killAfterEpoch': the first attempt is killed through a wrapper env var instead
    const first = join(dir, 'work-1');
    const { writeFile, readFile: read } = await import('node:fs/promises');
    const main = join(trainerDir, 'geobatch_trainer', '__main__.py');
    const original = await read(main, 'utf8');
    await writeFile(
      main,
      original.replace('cfg.get("killAfterEpoch")', 'int(os.environ.get("KILL_AFTER", "0"))'),
    );
    await assert.rejects(
      runTraining(storage, {
        task: 'classification',
        epochs: 3,
        weights: 'none',
        dataset: ds,
        out,
        workDir: first,
        python,
        env: { ...process.env, KILL_AFTER: '2' },
        log: quiet,
      }),
      (error: unknown) => error instanceof TrainError && error.kind === 'memory',
    );
    assert.deepEqual((await latestCheckpoint(storage, `${out}/checkpoints`))?.epoch, 2);
    const epochs: number[] = [];
    const result = await runTraining(storage, {
      task: 'classification',
      epochs: 3,
      weights: 'none',
      dataset: ds,
      out,
      workDir: join(dir, 'work-2'),
      python,
      log: quiet,
      onEvent: (e) => {
        if (e.event === 'epoch') epochs.push(e.epoch);
      },
    });
    assert.equal(result.resumedFrom, 2);
    assert.deepEqual(epochs, [3]);
    assert.deepEqual(result.metrics, { f1Samples: 0.8 });
    assert.equal((await latestCheckpoint(storage, `${out}/checkpoints`))?.epoch, 3);
    // artifacts in the run, the model card last; curves drawn from all three epochs
    for (const name of ['model.pt', 'metrics.json', 'curves.png', 'MODEL_CARD.md']) {
      assert.ok(await storage.exists(`${out}/${name}`), name);
    }
    const metrics = JSON.parse((await storage.read(`${out}/metrics.json`)).toString());
    assert.deepEqual(
      metrics.epochs.map((e: { epoch: number }) => e.epoch),
      [1, 2, 3],
    );
    const card = (await storage.read(`${out}/MODEL_CARD.md`)).toString();
    assert.match(card, /\| 3 \| 0\.3333 \| 0\.8000 \|/);
    // the stand-in exports no ONNX: no bundle, and the card says so
    assert.equal(await storage.exists(`${out}/bundle.json`), false);
    assert.match(card, /## Model bundle\n\nNot written \(no ONNX export\)\./);
  });
});
