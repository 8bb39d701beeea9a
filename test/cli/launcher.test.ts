/**
 * The committed `geobatch` launcher package.json's "bin" points to (issue 13 item 18): it runs the
 * build when present, says how to build when not, and keeps `npx geobatch` working whatever the
 * order of the first `npx geobatch` and `npm run build`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const repo = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
  name: string;
  type: string;
  version: string;
  bin: Record<string, string>;
};
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A project with package.json's bin entry copied, and no dist/. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'geobatch-launcher-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(repo, pkg.bin.geobatch!), join(dir, pkg.bin.geobatch!));
  // no dependencies, so that npx has nothing to fetch
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: pkg.name,
      version: pkg.version,
      type: pkg.type,
      bin: { geobatch: pkg.bin.geobatch },
    }),
  );
  return dir;
}

/** dist/bin/geobatch.js standing in for the build: prints its arguments, exits with code 7. */
function build(
  dir: string,
  body = "console.log('built', JSON.stringify(process.argv.slice(2))); process.exitCode = 7;",
) {
  mkdirSync(join(dir, 'dist', 'bin'), { recursive: true });
  writeFileSync(join(dir, 'dist', 'bin', 'geobatch.js'), body);
}

describe('bin/geobatch.mjs', () => {
  it('package.json points "geobatch" at the committed launcher, not at dist/', () => {
    assert.equal(pkg.bin.geobatch, 'bin/geobatch.mjs');
  });

  it('without dist/: one line saying how to build, exit code 1', () => {
    const dir = project();
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'geobatch.mjs'), '--version'], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `geobatch: ${join(dir, 'dist', 'bin', 'geobatch.js')} is not built yet; run 'npm run build' (or 'bash scripts/setup.sh') in ${dir}, then run geobatch again\n`,
    );
  });

  it('with dist/: runs it in-process with the arguments, and its exit code comes back', () => {
    const dir = project();
    build(dir);
    const r = spawnSync(process.execPath, [join(dir, 'bin', 'geobatch.mjs'), 'status', 'x y'], {
      encoding: 'utf8',
    });
    assert.equal(r.stdout, 'built ["status","x y"]\n');
    assert.equal(r.status, 7);
  });

  it("with dist/: a signal reaches the build's own handler (no child process in between)", async () => {
    const dir = project();
    build(
      dir,
      "process.on('SIGINT', () => { console.log('interrupted', process.pid); process.exit(130); }); console.log('ready'); setInterval(() => {}, 1000);",
    );
    const child = spawn(process.execPath, [join(dir, 'bin', 'geobatch.mjs')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const code = await new Promise<number | null>((done) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out === 'ready\n') child.kill('SIGINT');
      });
      child.on('close', done);
    });
    assert.equal(out, `ready\ninterrupted ${child.pid}\n`);
    assert.equal(code, 130);
  });

  it('npx geobatch run once before the build works after the build', () => {
    const dir = project();
    const env = {
      ...process.env,
      npm_config_cache: join(dir, '.npm'),
      npm_config_offline: 'true',
      npm_config_update_notifier: 'false',
    };
    const npx = (args: string[]) => spawnSync('npx', args, { cwd: dir, env, encoding: 'utf8' });
    const before = npx(['geobatch', '--version']);
    assert.equal(before.status, 1, before.stderr);
    assert.match(before.stderr, /is not built yet; run 'npm run build'/);
    build(dir, "console.log('0.1.0-test');");
    const afterBuild = npx(['geobatch', '--version']);
    assert.equal(afterBuild.stderr, '');
    assert.equal(afterBuild.stdout, '0.1.0-test\n');
    assert.equal(afterBuild.status, 0);
  });
});
