#!/usr/bin/env node
// The `geobatch` command package.json declares: runs the build in dist/, or says how to build it.
// npx links a package's bins once, when it first installs the project into its cache, and skips a
// bin whose file is missing then; pointing "bin" at this committed file instead of dist/ keeps
// `npx geobatch` working whether it first ran before or after `npm run build`.
// The build runs in this process (no child), so exit codes and Ctrl-C behave as with `node dist/...`.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = join(root, 'dist', 'bin', 'geobatch.js');
if (!existsSync(entry)) {
  process.stderr.write(
    `geobatch: ${entry} is not built yet; run 'npm run build' (or 'bash scripts/setup.sh') in ${root}, then run geobatch again\n`,
  );
  process.exit(1);
}
await import(pathToFileURL(entry).href);
