/**
 * scripts/prune-runtime.mjs, which the images run after `npm prune --omit=dev`, on a hard-linked
 * copy of the installed native packages: it deletes exactly the non-linux-x64 binaries, and
 * onnxruntime-node, sharp and jpeg-turbo still load from what remains.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const installed = realpathSync(join(root, 'node_modules'));
const script = join(root, 'scripts/prune-runtime.mjs');

/** The packages `names` need, from their dependencies and installed optional dependencies. */
function closure(names: string[]): string[] {
  const seen = new Set<string>();
  const queue = [...names];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (seen.has(name) || !existsSync(join(installed, name, 'package.json'))) continue;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(join(installed, name, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    queue.push(...Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }));
  }
  return [...seen];
}

/** Copies a tree as hard links: cheap, and deleting in the copy leaves the original alone. */
function linkTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.isDirectory()) linkTree(join(from, entry.name), join(to, entry.name));
    else if (entry.isFile()) linkSync(join(from, entry.name), join(to, entry.name));
  }
}

function files(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(dir, join(prefix, e.name)) : [join(prefix, e.name)],
  );
}

const foreign = [
  /^onnxruntime-node\/bin\/napi-v\d+\/(?!linux\/x64\/)/,
  /^@julusian\/jpeg-turbo\/prebuilds\/(?!jpeg-turbo-linux-x64\/)/,
];

describe('scripts/prune-runtime.mjs', () => {
  let scratch: string;
  let modules: string;
  let before_: string[];
  let output: string;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'geobatch-prune-'));
    modules = join(scratch, 'node_modules');
    for (const name of closure(['onnxruntime-node', 'sharp', '@julusian/jpeg-turbo'])) {
      linkTree(join(installed, name), join(modules, name));
    }
    before_ = files(modules).sort();
    output = execFileSync(process.execPath, [script, modules], { encoding: 'utf8' });
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('deletes exactly the binaries of other platforms and architectures', () => {
    const gone = before_.filter((f) => foreign.some((r) => r.test(f)));
    assert.ok(gone.some((f) => f.includes('/darwin/')) && gone.some((f) => f.includes('/win32/')));
    assert.ok(
      gone.some((f) => f.includes('/linux/arm64/')) && gone.some((f) => f.includes('linux-x64-musl')),
    );
    assert.deepEqual(
      files(modules).sort(),
      before_.filter((f) => !gone.includes(f)),
    );
    assert.ok(files(modules).some((f) => /onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/.*\.node$/.test(f)));
    assert.match(output, /removed onnxruntime-node\/bin\/napi-v\d+\/win32\n/);
    assert.match(output, /prune-runtime: freed \d+ MB/);
  });

  it('leaves onnxruntime-node, sharp and jpeg-turbo loading and running', () => {
    const check = join(scratch, 'check.mjs');
    writeFileSync(
      check,
      [
        "import { createRequire } from 'node:module';",
        "const ort = await import('onnxruntime-node');",
        // the native session parses (and refuses) the bytes: the binding is loaded and runs
        "const refused = await ort.InferenceSession.create(new Uint8Array([1, 2, 3])).then(() => 'accepted', (e) => String(e.message));",
        "const sharp = (await import('sharp')).default;",
        "const png = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#336699' } }).png().toBuffer();",
        "const turbo = createRequire(import.meta.url)('@julusian/jpeg-turbo');",
        'const jpeg = await turbo.compress(Buffer.alloc(8 * 8 * 3, 128), { format: turbo.FORMAT_RGB, subsampling: turbo.SAMP_420, width: 8, height: 8, stride: 8, quality: 90 });',
        'console.log(JSON.stringify({ refused, png: png.subarray(1, 4).toString(), jpeg: jpeg[0] === 0xff && jpeg[1] === 0xd8 }));',
      ].join('\n'),
    );
    const out = JSON.parse(execFileSync(process.execPath, [check], { cwd: scratch, encoding: 'utf8' })) as {
      refused: string;
      png: string;
      jpeg: boolean;
    };
    assert.notEqual(out.refused, 'accepted');
    assert.match(out.refused, /protobuf|parse|model/i);
    assert.equal(out.png, 'PNG');
    assert.equal(out.jpeg, true);
  });

  it('refuses a directory that is not there', () => {
    assert.throws(
      () => execFileSync(process.execPath, [script, join(scratch, 'missing')], { stdio: 'pipe' }),
      (error: { status: number; stderr: Buffer }) =>
        error.status === 1 && /missing is not a node_modules directory/.test(error.stderr.toString()),
    );
  });
});
