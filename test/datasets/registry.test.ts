import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryError } from '../../lib/datasets/errors.js';
import { resolveDataset } from '../../lib/datasets/files.js';
import { locateRegistry, parseRegistry, readRegistry } from '../../lib/datasets/registry.js';
import { createStorage } from '../../lib/storage/index.js';

const shared = resolve(import.meta.dirname, '../../../shared/data');

const entry = (overrides: string): string => `version: 1
datasets:
  - tag: sample
    description: two scenes
    images: ${shared}/spacenet/pan1.tif
    gsd: 0.3
    licence: CC-BY-SA-4.0
    source: https://example.org/sample
${overrides}`;

describe('dataset registry validation', () => {
  it('accepts a full entry, lists as lists', () => {
    const registry = parseRegistry(
      entry(`    labels: [a.geojson]
    masks: m/*.tif
    files:
      a.geojson: { size: 3 }
`),
      '/x/datasets.yaml',
    );
    assert.equal(registry.datasets.length, 1);
    assert.deepEqual(registry.datasets[0]!.images, [`${shared}/spacenet/pan1.tif`]);
    assert.deepEqual(registry.datasets[0]!.source, ['https://example.org/sample']);
    assert.deepEqual(registry.datasets[0]!.masks, ['m/*.tif']);
  });

  // each bad registry: one line naming the file, the YAML path, the value and what is valid, with its line
  const bad: ReadonlyArray<readonly [string, string, RegExp]> = [
    [
      'a negative gsd',
      entry('').replace('gsd: 0.3', 'gsd: -1'),
      /^reg\.yaml: datasets\[0\]\.gsd: expected a number > 0 but got -1 \(line 6\)$/,
    ],
    [
      'a bad sha256',
      entry(`    files:\n      a.tif: { sha256: abc }\n`),
      /^reg\.yaml: datasets\[0\]\.files\.a\.tif\.sha256: expected a sha256 checksum \(64 lowercase hexadecimal digits\) but got 'abc' \(line 10\)$/,
    ],
    [
      'a bad tag',
      entry('').replace('tag: sample', 'tag: Bad Tag'),
      /^reg\.yaml: datasets\[0\]\.tag: expected a tag .* but got 'Bad Tag' \(line 3\)$/,
    ],
    [
      'a malformed s3 URI',
      entry('').replace(`${shared}/spacenet/pan1.tif`, 's3://Bad_Bucket/x.tif'),
      /^reg\.yaml: datasets\[0\]\.images: expected a local path or glob, an s3:\/\/bucket\/key URI or glob, or an http\(s\) URL but got 's3:\/\/Bad_Bucket\/x\.tif' \(line 5\)$/,
    ],
    [
      'a glob in an http URL',
      entry('').replace(`${shared}/spacenet/pan1.tif`, '[https://example.org/*.tif]'),
      /^reg\.yaml: datasets\[0\]\.images\[0\]: expected an http\(s\) URL without glob characters .* \(line 5\)$/,
    ],
    [
      'a source that is no URL',
      entry('').replace('source: https://example.org/sample', 'source: [somewhere]'),
      /^reg\.yaml: datasets\[0\]\.source\[0\]: expected an http\(s\) URL but got 'somewhere' \(line 8\)$/,
    ],
    [
      'a missing images list',
      entry('').replace(`    images: ${shared}/spacenet/pan1.tif\n`, ''),
      /^reg\.yaml: datasets\[0\]\.images: expected a non-empty string or a non-empty list of non-empty strings but it is missing \(line 3\)$/,
    ],
    [
      'a duplicate tag',
      entry('') +
        `  - tag: sample\n    description: again\n    images: x.tif\n    gsd: 1\n    licence: MIT\n    source: https://example.org\n`,
      /^reg\.yaml: datasets\[1\]\.tag: tag 'sample' is already used by datasets\[0\]; expected a unique tag \(line 9\)$/,
    ],
    [
      'a YAML syntax error',
      'version: 1\ndatasets: [\n',
      /^reg\.yaml: YAML syntax error: .*\(line \d+, column \d+\)$/,
    ],
    [
      'an empty file',
      '',
      /^reg\.yaml: the file is empty; expected a mapping with version: 1 and datasets \(line 1, column 1\)$/,
    ],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name} in one line`, () => {
      assert.throws(
        () => parseRegistry(text, 'reg.yaml'),
        (error: unknown) => {
          assert.ok(error instanceof RegistryError);
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  it('a misspelt key is named with the likely key', () => {
    assert.throws(
      () => parseRegistry(entry('').replace('licence:', 'license:'), 'reg.yaml'),
      (error: unknown) =>
        error instanceof RegistryError &&
        error.message
          .split('\n')
          .includes(
            "reg.yaml: datasets[0].license: unknown key 'license', did you mean 'licence'? (valid keys: tag, description, images, labels, masks, gsd, licence, source, files) (line 7)",
          ),
    );
  });
});

describe('dataset registry: files', () => {
  const storage = createStorage();
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-registry-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a glob that matches nothing is an error at its YAML path and line', async () => {
    await writeFile(join(dir, 'datasets.yaml'), entry('    masks: [masks/*.tif]\n'));
    const registry = await readRegistry(storage, join(dir, 'datasets.yaml'));
    await assert.rejects(
      resolveDataset(storage, registry, 0),
      (error: unknown) =>
        error instanceof RegistryError &&
        new RegExp(
          `^${dir}/datasets\\.yaml: datasets\\[0\\]\\.masks\\[0\\]: 'masks/\\*\\.tif' matched no files \\(searched ${dir}/masks/\\*\\.tif\\) \\(line 9\\)$`,
        ).test(error.message),
    );
  });

  it('a checksum for a file the lists do not have is refused', async () => {
    await writeFile(join(dir, 'datasets.yaml'), entry('    files:\n      other.tif: { size: 1 }\n'));
    const registry = await readRegistry(storage, join(dir, 'datasets.yaml'));
    await assert.rejects(
      resolveDataset(storage, registry, 0),
      /datasets\[0\]\.files\.other\.tif: 'other\.tif' \(.*\/other\.tif\) is not one of the dataset's files.*\(line 10\)$/,
    );
  });

  it('a missing registry says how to name one', async () => {
    await assert.rejects(
      readRegistry(storage, join(dir, 'nothing.yaml')),
      /nothing\.yaml: dataset registry not found \(give --registry <file>, or set GEOBATCH_DATASETS, or create \.\/datasets\.yaml\)$/,
    );
  });

  it('is found by --registry, else GEOBATCH_DATASETS, else ./datasets.yaml', () => {
    assert.equal(locateRegistry('r.yaml', { GEOBATCH_DATASETS: 's3://b/d.yaml' }, '/w'), '/w/r.yaml');
    assert.equal(locateRegistry(undefined, { GEOBATCH_DATASETS: 's3://b/d.yaml' }, '/w'), 's3://b/d.yaml');
    assert.equal(locateRegistry(undefined, { GEOBATCH_DATASETS: '' }, '/w'), '/w/datasets.yaml');
    assert.equal(locateRegistry(undefined, {}, '/w'), '/w/datasets.yaml');
  });
});
