#!/usr/bin/env node
// Runs every test/**/*.test.ts file with node's built-in test runner through tsx.
// Node 20's `--test` does not expand globs itself, so the files are listed here.
// Extra arguments are passed through: `npm test -- test/storage` runs one folder,
// `npm test -- --test-name-pattern=s3` filters by name.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const args = process.argv.slice(2);
const roots = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
const files = (roots.length ? roots : ['test']).flatMap((r) => (statSync(r).isDirectory() ? find(r) : [r]));
if (files.length === 0) {
  console.error('no test files found under', roots.join(', ') || 'test');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
