#!/usr/bin/env node
// Deletes the native binaries a linux/amd64 image never loads from an installed node_modules:
// onnxruntime-node ships darwin, win32 and linux-arm64 builds (~290 MB in all) and
// @julusian/jpeg-turbo prebuilds for nine platforms; only linux-x64 (glibc) runs in the images.
// Run after `npm prune --omit=dev`: node scripts/prune-runtime.mjs [node_modules]
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Size of a file tree in bytes. */
function sizeOf(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0);
}

const dirs = (path) =>
  readdirSync(path, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);

/** The directories to delete, and the ones that must remain, under `modules`. */
export function plan(modules) {
  const remove = [];
  const keep = [];
  const ort = join(modules, 'onnxruntime-node', 'bin');
  if (existsSync(ort)) {
    for (const napi of dirs(ort)) {
      for (const platform of dirs(join(ort, napi))) {
        if (platform !== 'linux') {
          remove.push(join(ort, napi, platform));
          continue;
        }
        for (const arch of dirs(join(ort, napi, platform))) {
          (arch === 'x64' ? keep : remove).push(join(ort, napi, platform, arch));
        }
      }
    }
  }
  const jpeg = join(modules, '@julusian', 'jpeg-turbo', 'prebuilds');
  if (existsSync(jpeg)) {
    for (const name of dirs(jpeg)) {
      (name === 'jpeg-turbo-linux-x64' ? keep : remove).push(join(jpeg, name));
    }
  }
  return { remove, keep };
}

export function prune(modules) {
  if (!existsSync(modules) || !statSync(modules).isDirectory()) {
    throw new Error(`prune-runtime: ${modules} is not a node_modules directory`);
  }
  const { remove, keep } = plan(modules);
  const packages = ['onnxruntime-node', '@julusian/jpeg-turbo'].filter((p) => existsSync(join(modules, p)));
  for (const name of packages) {
    if (!keep.some((k) => k.startsWith(join(modules, name)))) {
      throw new Error(
        `prune-runtime: no linux-x64 binary found in ${join(modules, name)}; its layout changed, so nothing was deleted`,
      );
    }
  }
  let freed = 0;
  for (const path of remove) {
    freed += sizeOf(path);
    rmSync(path, { recursive: true, force: true });
  }
  return { removed: remove.map((p) => relative(modules, p)), freed };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const modules = process.argv[2] ?? 'node_modules';
  try {
    const { removed, freed } = prune(modules);
    for (const path of removed) console.log(`removed ${path}`);
    console.log(`prune-runtime: freed ${(freed / 1e6).toFixed(0)} MB in ${modules}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
