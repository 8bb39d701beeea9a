/**
 * No Docker daemon here, so the images are checked by reading their Dockerfiles: pinned bases,
 * a supported Node, a non-root user, `geobatch-job` as the entry point, and every file that
 * entry point needs copied (and not excluded by .dockerignore).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly base: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined, grouped by stage. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') startLine = index + 1;
    if (line.startsWith('#')) return;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [keyword = '', ...rest] = full.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: startLine };
    if (instruction.keyword === 'FROM') {
      const [base = '', as, name] = rest;
      stages.push({ base, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else {
      const stage = stages[stages.length - 1];
      assert.ok(stage, `line ${startLine}: ${instruction.keyword} before any FROM`);
      stage.instructions.push(instruction);
    }
  });
  return stages;
}

/** `COPY [--from=x] [--chmod=y] src... dest`. */
function copies(stage: Stage): { from: string | undefined; sources: string[]; dest: string }[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] ?? '' };
    });
}

function lastOf(stage: Stage, keyword: string): string | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1)?.args;
}

/** Whether .dockerignore keeps `path` in the build context (last matching pattern wins). */
function inContext(path: string, patterns: readonly string[]): boolean {
  let included = true;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = (negate ? raw.slice(1) : raw).replace(/\/$/, '');
    const regex = new RegExp(
      `^${pattern
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(.*/)?')}(/.*)?$`,
    );
    if (regex.test(path)) included = negate;
  }
  return included;
}

const dockerignore = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

const packageJson = JSON.parse(read('package.json')) as { type: string; bin: Record<string, string> };
const buildConfig = JSON.parse(read('tsconfig.build.json')) as { include: string[] };
const wrapper = read('docker/geobatch-job');

const images = {
  cpu: parseDockerfile(read('docker/cpu.Dockerfile')),
  gpu: parseDockerfile(read('docker/gpu.Dockerfile')),
};

const pinned = /^[a-z0-9./-]+:[A-Za-z0-9._-]*\d+\.\d+[A-Za-z0-9._-]*@sha256:[0-9a-f]{64}$/;

for (const [kind, stages] of Object.entries(images)) {
  describe(`docker/${kind}.Dockerfile`, () => {
    const names = new Set<string>();
    const final = stages[stages.length - 1]!;
    const build = stages.find((s) => s.name === 'build');

    it('pins every base image by version tag and digest (or builds on an earlier stage)', () => {
      for (const stage of stages) {
        assert.ok(
          names.has(stage.base) || pinned.test(stage.base),
          `FROM ${stage.base}: pin a versioned tag and its @sha256 digest`,
        );
        if (stage.name) names.add(stage.name);
      }
    });

    it('runs a supported Node LTS (22 or 24), not Node 20', () => {
      const node = stages.find((s) => s.base.startsWith('node:'));
      assert.match(node?.base ?? '', /^node:(22|24)\.\d+\.\d+-/);
    });

    it('builds the project with npm ci and npm run build in a separate stage', () => {
      assert.ok(build, 'a stage named build');
      const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
      assert.ok(
        runs.some((r) => r.includes('npm ci')),
        'npm ci',
      );
      assert.ok(
        runs.some((r) => r.includes('npm run build')),
        'npm run build',
      );
      assert.ok(
        runs.some((r) => r.includes('npm prune --omit=dev')),
        'dev dependencies dropped',
      );
      assert.notEqual(final, build, 'the final image is not the build stage');
    });

    it('prunes the native binaries of other platforms after dropping the dev dependencies', () => {
      const copied = copies(build!).find((c) => c.sources.includes('scripts/prune-runtime.mjs'));
      assert.ok(copied, 'the build stage copies scripts/prune-runtime.mjs');
      assert.ok(inContext('scripts/prune-runtime.mjs', dockerignore), '.dockerignore keeps the script');
      const runs = build!.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
      assert.ok(
        runs.some((r) => /npm prune --omit=dev .*&& node scripts\/prune-runtime\.mjs node_modules$/.test(r)),
        'RUN ... npm prune --omit=dev ... && node scripts/prune-runtime.mjs node_modules',
      );
    });

    it('copies every source the build compiles, and the lockfile', () => {
      const copied = copies(build!).flatMap((c) => (c.from ? [] : c.sources));
      for (const needed of [
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        ...buildConfig.include,
      ]) {
        assert.ok(copied.includes(needed), `the build stage copies ${needed}`);
        assert.ok(inContext(needed, dockerignore), `.dockerignore excludes ${needed}`);
      }
    });

    it('copies what the entry point needs at run time into /app', () => {
      assert.equal(lastOf(final, 'WORKDIR'), '/app');
      const fromBuild = copies(final).filter((c) => c.from === 'build');
      const expected = [
        ['/src/package.json', './package.json'],
        ['/src/node_modules', './node_modules'],
        ['/src/dist', './dist'],
      ];
      for (const [source, dest] of expected) {
        assert.ok(
          fromBuild.some((c) => c.sources.includes(source!) && c.dest === dest),
          `COPY --from=build ${source} ${dest}`,
        );
      }
      assert.equal(packageJson.type, 'module', 'package.json makes dist/ ES modules');
    });

    it('puts geobatch-job on PATH, pointing at the bin package.json declares', () => {
      const copy = copies(final).find((c) => c.dest === '/usr/local/bin/geobatch-job');
      assert.deepEqual(copy?.sources, ['docker/geobatch-job']);
      assert.ok(inContext('docker/geobatch-job', dockerignore), '.dockerignore keeps docker/geobatch-job');
      assert.equal(packageJson.bin['geobatch-job'], 'dist/bin/job.js');
      assert.match(wrapper, /exec node \/app\/dist\/bin\/job\.js "\$@"/);
    });

    it('runs as a non-root user with geobatch-job as the entry point', () => {
      const user = lastOf(final, 'USER');
      assert.ok(user && !/^(root|0)(:|$)/.test(user), `USER ${String(user)}`);
      assert.deepEqual(JSON.parse(lastOf(final, 'ENTRYPOINT') ?? 'null'), ['geobatch-job']);
      assert.deepEqual(JSON.parse(lastOf(final, 'CMD') ?? 'null'), ['--help']);
    });

    it('keeps test files out of the build context', () => {
      assert.equal(inContext('lib/config/x.test.ts', dockerignore), false);
      assert.equal(inContext('node_modules/x', dockerignore), false);
      assert.equal(inContext('.git/config', dockerignore), false);
      assert.equal(inContext('cdk.out/manifest.json', dockerignore), false);
    });
  });
}

describe('docker/gpu.Dockerfile, beyond the CPU image', () => {
  const stages = images.gpu;
  const final = stages[stages.length - 1]!;

  it('installs onnxruntime-node with its CUDA execution provider (the CPU image skips it) and runs predict on CUDA', () => {
    const installs = (image: Stage[]) =>
      image
        .flatMap((s) => s.instructions)
        .filter((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args))
        .map((i) => i.args);
    const gpu = installs(stages);
    assert.equal(gpu.length, 1);
    assert.match(gpu[0]!, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci/);
    assert.match(
      gpu[0]!,
      /test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so/,
    );
    const cpu = installs(images.cpu);
    assert.equal(cpu.length, 1);
    assert.match(cpu[0]!, /ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci/);
    const env = final.instructions
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /GEOBATCH_DEVICE=cuda/);
    assert.ok(
      final.instructions.some((i) => i.keyword === 'RUN' && /ld\.so\.conf\.d\/.*&& ldconfig/.test(i.args)),
      'the CUDA libraries of the PyTorch wheels are registered with ldconfig',
    );
  });

  it('builds on a CUDA PyTorch runtime image', () => {
    assert.match(final.base, /^pytorch\/pytorch:\d+\.\d+\.\d+-cuda12\.\d+-cudnn\d+-runtime@sha256:/);
  });

  it('takes Node from the pinned Node image', () => {
    assert.ok(
      copies(final).some(
        (c) =>
          c.from === 'base' && c.sources.includes('/usr/local/bin/node') && c.dest === '/usr/local/bin/node',
      ),
      'COPY --from=base /usr/local/bin/node',
    );
    assert.match(stages.find((s) => s.name === 'base')?.base ?? '', /^node:/);
  });

  it('ships the trainer package of jobs/train/ and tells the harness where it is', () => {
    assert.ok(
      copies(final).some(
        (c) => c.from === 'build' && c.sources.includes('/trainer') && c.dest === './jobs/train',
      ),
      'COPY --from=build /trainer ./jobs/train',
    );
    const env = final.instructions
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /GEOBATCH_TRAINER_DIR=\/app\/jobs\/train/);
    assert.match(env, /PYTHONPATH=\/app\/jobs\/train/);
  });

  it('bakes the weights the trainer lists into TORCH_HOME at build time, naming none itself', () => {
    const env = final.instructions
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /TORCH_HOME=\/opt\/torch/);
    const weights = stages.find((s) => s.name === 'weights');
    assert.ok(weights, 'a stage named weights');
    assert.equal(weights.base, final.base, "the list comes from the runtime image's torchvision");
    assert.ok(
      copies(weights).some((c) => c.from === 'build' && c.sources.includes('/trainer')),
      'the weights stage has the trainer package',
    );
    const list = weights.instructions.find(
      (i) => i.keyword === 'RUN' && /python -m geobatch_trainer\.weights > (\S+)$/.test(i.args),
    );
    const listFile = /> (\S+)$/.exec(list?.args ?? '')?.[1];
    assert.ok(listFile, 'RUN python -m geobatch_trainer.weights > <file>');
    const copied = copies(final).find((c) => c.from === 'weights' && c.sources.includes(listFile));
    assert.ok(copied, `COPY --from=weights ${listFile}`);
    const runs = final.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    assert.ok(
      runs.some((r) => r.startsWith(`xargs python /opt/geobatch/bake-weights.py < ${copied.dest}`)),
      'bake-weights.py runs on the listed names',
    );
    const text = read('docker/gpu.Dockerfile');
    assert.doesNotMatch(text, /PRETRAINED_WEIGHTS|\w+_Weights\.\w+/, 'no weights named in the Dockerfile');
    assert.ok(inContext('docker/bake-weights.py', dockerignore), '.dockerignore keeps bake-weights.py');
  });
});

describe('docker/geobatch-job', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'geobatch-entry-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  function run(...args: string[]): string[] {
    const fakeNode = join(scratch, 'node');
    writeFileSync(fakeNode, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
    chmodSync(fakeNode, 0o755);
    const out = execFileSync('sh', [join(root, 'docker/geobatch-job'), ...args], {
      env: { PATH: `${scratch}:/usr/bin:/bin` },
      encoding: 'utf8',
    });
    return out.trimEnd().split('\n');
  }

  it('passes its arguments to the built job entry point', () => {
    assert.deepEqual(run('s3://runs/r1/plan.json', 'chip', '--index', '3'), [
      '/app/dist/bin/job.js',
      's3://runs/r1/plan.json',
      'chip',
      '--index',
      '3',
    ]);
  });

  it('accepts the command Batch sends, which repeats the name', () => {
    assert.deepEqual(run('geobatch-job', 's3://runs/r1/plan.json', 'merge'), [
      '/app/dist/bin/job.js',
      's3://runs/r1/plan.json',
      'merge',
    ]);
    assert.deepEqual(run('geobatch-job', '--help'), ['/app/dist/bin/job.js', '--help']);
  });
});
