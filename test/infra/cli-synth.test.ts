/**
 * `npx cdk synth -c env=dev` as a user runs it, with no AWS credentials, no AWS configuration
 * and nothing to look up: the app must synthesise offline.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'geobatch-synth-'));
const cdk = join(root, 'node_modules', 'aws-cdk', 'bin', 'cdk');

after(() => rmSync(scratch, { recursive: true, force: true }));

function synth(args: readonly string[], out: string) {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('AWS_') && !key.startsWith('CDK_')) env[key] = value;
  }
  env.HOME = join(scratch, 'home');
  return spawnSync(process.execPath, [cdk, 'synth', ...args, '--quiet', '--no-notices', '--output', out], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 170_000,
  });
}

describe('cdk synth (the CLI)', () => {
  it('synthesises the dev environment offline, without credentials, with no lookups', () => {
    const out = join(scratch, 'dev');
    const result = synth(['-c', 'env=dev'], out);
    assert.equal(result.status, 0, `cdk synth failed:\n${result.stderr}`);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { missing?: unknown[] };
    assert.equal(manifest.missing, undefined, 'no context had to be looked up');
    const template = JSON.parse(readFileSync(join(out, 'geobatch-dev.template.json'), 'utf8')) as {
      Resources: Record<string, unknown>;
    };
    assert.ok(Object.keys(template.Resources).length > 40, 'a whole environment');
    assert.equal(
      existsSync(join(out, 'geobatch-prod.template.json')),
      false,
      'only the selected environment',
    );
  });

  it('fails before synthesis with the configuration error for an unknown environment', () => {
    const result = synth(['-c', 'env=staging'], join(scratch, 'staging'));
    assert.notEqual(result.status, 0);
    assert.match(
      result.stderr,
      /In the CDK context: env = "staging" is not a known environment; known: dev, prod/,
    );
  });
});
