import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { LocalStorage, isTempName } from '../../lib/storage/local.js';
import { all, assertStorageError, stallingBody, storageContract } from './contract.js';

storageContract('LocalStorage', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'geobatch-local-'));
  return {
    storage: new LocalStorage(),
    root: `${dir}/`,
    listPageSize: 1,
    teardown: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('LocalStorage', () => {
  let dir: string;
  const storage = new LocalStorage();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-local-only-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('cannot write under a regular file: NotWritable naming the path', async () => {
    // Tests run as root, so a chmod-ed directory would still be writable; a file as parent is not
    // (like /etc/hostname/x/y, but present on every machine).
    await writeFile(join(dir, 'plain-file'), 'x');
    const target = join(dir, 'plain-file', 'x', 'y');
    const error = await assertStorageError(storage.writeAtomic(target, 'x'), 'NotWritable', target);
    assert.equal(error.message, `${target}: not writable (ENOTDIR: a parent is a file, not a directory)`);
  });

  it('cannot write over a directory: NotWritable, and no temporary file stays', async () => {
    await mkdir(join(dir, 'taken', 'sub'), { recursive: true });
    await assertStorageError(storage.writeAtomic(join(dir, 'taken'), 'x'), 'NotWritable', join(dir, 'taken'));
    assert.deepEqual((await readdir(dir)).filter(isTempName), []);
  });

  it('reading a directory is an Io error, not NotFound', async () => {
    await mkdir(join(dir, 'adir'), { recursive: true });
    await assertStorageError(storage.read(join(dir, 'adir')), 'Io', join(dir, 'adir'));
    await assertStorageError(storage.readRange(join(dir, 'adir'), 0, 1), 'Io', join(dir, 'adir'));
  });

  it('an aborted write removes its temporary file', async () => {
    const target = join(dir, 'aborted', 'object.bin');
    const controller = new AbortController();
    const seen: string[][] = [];
    const body = stallingBody(3, () => {
      void readdir(join(dir, 'aborted')).then((names) => {
        seen.push(names);
        controller.abort();
      });
    });
    await assertStorageError(
      storage.writeAtomic(target, body, { signal: controller.signal }),
      'Aborted',
      target,
    );
    // While in flight, the data sat under a temporary name next to the target...
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.length, 1);
    assert.ok(isTempName(seen[0]?.[0] ?? ''), String(seen[0]));
    assert.match(seen[0]?.[0] ?? '', /^\.object\.bin\.tmp-[0-9a-f]{12}$/);
    // ...and it is gone afterwards.
    assert.deepEqual(await readdir(join(dir, 'aborted')), []);
  });

  it('list skips temporary files of atomic writes in flight, but not other hidden files', async () => {
    const sub = join(dir, 'listing');
    await mkdir(sub, { recursive: true });
    await writeFile(join(sub, 'img.tif'), 'a');
    await writeFile(join(sub, '.img.tif.tmp-0123456789ab'), 'partial');
    await writeFile(join(sub, '.hidden'), 'h');
    assert.deepEqual(
      (await all(storage.list(`${sub}/`))).map((o) => o.uri),
      [join(sub, '.hidden'), join(sub, 'img.tif')],
    );
  });

  it('list follows symbolic links to directories without looping', async () => {
    const sub = join(dir, 'links');
    await mkdir(join(sub, 'real'), { recursive: true });
    await writeFile(join(sub, 'real', 'f.tif'), 'f');
    await symlink(join(sub, 'real'), join(sub, 'alias'));
    await symlink(sub, join(sub, 'real', 'loop'));
    const uris = (await all(storage.list(`${sub}/`))).map((o) => o.uri.slice(sub.length + 1));
    // Each directory is entered once per path: `loop` leads back to directories already being listed.
    assert.deepEqual(uris, ['alias/f.tif', 'real/f.tif']);
  });

  it('resolves relative paths against cwd, and file:// URIs', async () => {
    const relative = new LocalStorage({ cwd: dir });
    await relative.writeAtomic('rel/a.txt', 'relative');
    assert.equal((await storage.read(join(dir, 'rel', 'a.txt'))).toString(), 'relative');
    assert.equal((await storage.read(pathToFileURL(join(dir, 'rel', 'a.txt')).href)).toString(), 'relative');
    assert.equal(await relative.localPath('rel/a.txt'), join(dir, 'rel', 'a.txt'));
    const [info] = await all(relative.list('rel/'));
    assert.equal(info?.uri, join(dir, 'rel', 'a.txt'));
  });

  it('errors name the absolute path of a relative URI', async () => {
    const relative = new LocalStorage({ cwd: dir });
    await assertStorageError(relative.read('nope/x.tif'), 'NotFound', join(dir, 'nope', 'x.tif'));
  });
});
