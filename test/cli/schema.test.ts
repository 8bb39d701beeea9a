import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { pipelineJsonSchema } from '../../lib/pipeline/index.js';

const repo = resolve(import.meta.dirname, '../..');

test('pipeline.schema.json at the repository root is what `geobatch schema` prints now', async () => {
  const committed = JSON.parse(await readFile(resolve(repo, 'pipeline.schema.json'), 'utf8'));
  assert.deepEqual(
    committed,
    JSON.parse(JSON.stringify(pipelineJsonSchema())),
    'regenerate it: npx tsx bin/geobatch.ts schema -o pipeline.schema.json',
  );
});
