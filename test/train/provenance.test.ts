// How a train stage's chips were made, traced through compiled plans (the quickstart and small
// pipelines written here), with the headers of real scenes from ../shared/data read for the
// source bands: rgb stage, chip converting on the fly, chips of plain RGB, chip-grid, unknown.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { chipProvenance, traceChips } from '../../jobs/train/provenance.js';
import { compilePipeline, parsePipeline } from '../../lib/pipeline/index.js';
import type { Item, JobGraph } from '../../lib/pipeline/types.js';
import { bundleSchema } from '../../lib/predict/bundle.js';
import { createStorage } from '../../lib/storage/index.js';
import { UNKNOWN_CONVERSION } from '../../lib/train/bundle.js';

const SPACENET = resolve(import.meta.dirname, '../../../shared/data/spacenet');
/** 4 bands of float64 (SpaceNet multispectral), 300 x 300. */
const MS = { id: 'ms1', uri: `${SPACENET}/ms1.tif` };
/** 3 bands of uint8, photometric RGB. */
const RGB = { id: 'rgb1', uri: `${SPACENET}/rgb_unmasked.tif` };
/** 1 band of uint16. */
const PAN = { id: 'sample', uri: `${SPACENET}/sample_geotiff.tif` };

const storage = createStorage();

function compile(text: string, items: Record<string, Item[]>): JobGraph {
  const { spec, source } = parsePipeline(text, 'test.yaml');
  return compilePipeline(spec, items, source);
}

/** A pipeline of `stages` (YAML lines under `stages:`), then merge `dataset` over `chips` and train. */
function pipeline(...stages: string[]): string {
  return [
    'version: 1',
    'name: t',
    'inputs:',
    '  scenes: [data/*.tif]',
    'stages:',
    ...stages,
    '  dataset:',
    '    job: merge',
    '    needs: [chips]',
    '    params: { chips: chips }',
    '  train:',
    '    job: train',
    '    needs: [dataset]',
    '    params: { dataset: dataset, task: detection }',
    '',
  ].join('\n');
}

interface Case {
  readonly name: string;
  readonly graph: () => Promise<JobGraph>;
  readonly windows: { size: number; overlap: number };
  readonly conversion: Record<string, unknown>;
}

const cases: Case[] = [
  {
    name: 'the quickstart: chips of an rgb stage with the default conversion of 4-band scenes',
    graph: async () => {
      const text = await readFile(resolve(import.meta.dirname, '../../examples/quickstart.yaml'), 'utf8');
      return compile(text, {
        scenes: [MS],
        xview: [{ id: 'xview', uri: '/x.geojson' }],
        outlines: [{ id: 'ms1', uri: '/o.geojson' }],
      });
    },
    windows: { size: 320, overlap: 0.2 },
    conversion: {
      sourceBands: 4,
      sourceType: 'float64',
      bands: null,
      stretch: null,
      description:
        'stage rgb (rgb): bands 3,2,1 (the default for 4 band(s)), percentile 2-98 (the default for float64), from 4-band float64 scenes',
    },
  },
  {
    name: 'an rgb stage with bands and a percentile stretch chosen',
    graph: async () =>
      compile(
        pipeline(
          '  rgb:',
          '    job: rgb',
          '    foreach: scenes',
          '    params: { bands: [4, 3, 2], stretch: percentile, percentiles: [1, 99] }',
          '  chips:',
          '    job: chip',
          '    foreach: rgb',
          '    params: { image: rgb, size: 256, overlap: 0.25 }',
        ),
        { scenes: [MS] },
      ),
    windows: { size: 256, overlap: 0.25 },
    conversion: {
      sourceBands: 4,
      sourceType: 'float64',
      bands: [4, 3, 2],
      stretch: { kind: 'percentile', low: 1, high: 99 },
      description: 'stage rgb (rgb): bands 4,3,2, percentile 1-99, from 4-band float64 scenes',
    },
  },
  {
    name: 'a chip stage converting on the fly: one band as grey, a fixed range',
    graph: async () =>
      compile(
        pipeline(
          '  chips:',
          '    job: chip',
          '    foreach: scenes',
          '    params: { size: 128, bands: [1], range: [0, 2000] }',
        ),
        { scenes: [PAN] },
      ),
    windows: { size: 128, overlap: 0.2 },
    conversion: {
      sourceBands: 1,
      sourceType: 'uint16',
      bands: [1, 1, 1],
      stretch: { kind: 'range', ranges: [[0, 2000]] },
      description:
        'stage chips (chip, converted while cutting): bands 1,1,1, range 0..2000, from 1-band uint16 scenes',
    },
  },
  {
    name: 'chips of plain 8-bit RGB scenes',
    graph: async () =>
      compile(pipeline('  chips:', '    job: chip', '    foreach: scenes', '    params: { size: 300 }'), {
        scenes: [RGB],
      }),
    windows: { size: 300, overlap: 0.2 },
    conversion: {
      sourceBands: 3,
      sourceType: 'uint8',
      bands: null,
      stretch: null,
      description:
        'stage chips (chip, converted while cutting): bands 1,2,3 (the default for 3 band(s)), none (the default for uint8), from 3-band uint8 scenes',
    },
  },
  {
    name: 'chips of PNG scenes, taken as they are',
    graph: async () =>
      compile(pipeline('  chips:', '    job: chip', '    foreach: scenes', '    params: { size: 300 }'), {
        scenes: [{ id: 'a', uri: '/data/a.png' }],
      }),
    windows: { size: 300, overlap: 0.2 },
    conversion: {
      sourceBands: null,
      sourceType: null,
      bands: null,
      stretch: null,
      description: 'stage chips (chip, converted while cutting): 8-bit images taken as they were',
    },
  },
  {
    name: 'a chip-grid stage: grid tiles without overlap, the default conversion',
    graph: async () =>
      compile(
        pipeline(
          '  chips:',
          '    job: chip-grid',
          '    foreach: scenes',
          '    params: { grid: ard, level: 12 }',
        ),
        { scenes: [MS] },
      ),
    windows: { size: 512, overlap: 0 },
    conversion: {
      sourceBands: 4,
      sourceType: 'float64',
      bands: null,
      stretch: null,
      description:
        'stage chips (chip-grid): bands 3,2,1 (the default for 4 band(s)), percentile 2-98 (the default for float64), from 4-band float64 scenes',
    },
  },
  {
    name: 'a chip-grid stage of web-mercator tiles over an rgb stage',
    graph: async () =>
      compile(
        pipeline(
          '  rgb:',
          '    job: rgb',
          '    foreach: scenes',
          '    params: { stretch: minmax }',
          '  chips:',
          '    job: chip-grid',
          '    foreach: rgb',
          '    params: { grid: webmercator, level: 17, image: rgb }',
        ),
        { scenes: [PAN] },
      ),
    windows: { size: 256, overlap: 0 },
    conversion: {
      sourceBands: 1,
      sourceType: 'uint16',
      bands: null,
      stretch: { kind: 'minmax' },
      description:
        'stage rgb (rgb): bands 1,1,1 (the default for 1 band(s)), minmax, from 1-band uint16 scenes',
    },
  },
];

describe('the chips of a train stage, traced through the plan', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const graph = await c.graph();
      const { provenance } = await chipProvenance(storage, graph, 'dataset');
      assert.ok(provenance);
      assert.deepEqual(provenance.windows, c.windows);
      assert.deepEqual(provenance.conversion, c.conversion);
      // what predict reads back
      assert.ok(bundleSchema.shape.conversion.safeParse(provenance.conversion).success);
      assert.ok(bundleSchema.shape.windows.safeParse(provenance.windows).success);
    });
  }

  it('leaves the source unknown when its header cannot be read, and says why', async () => {
    const graph = compile(
      pipeline(
        '  chips:',
        '    job: chip',
        '    foreach: scenes',
        '    params: { size: 64, bands: [3, 2, 1] }',
      ),
      { scenes: [{ id: 'gone', uri: '/nonexistent/gone.tif' }] },
    );
    const { provenance, notes } = await chipProvenance(storage, graph, 'dataset');
    assert.deepEqual(provenance?.conversion, {
      sourceBands: null,
      sourceType: null,
      bands: [3, 2, 1],
      stretch: null,
      description: 'stage chips (chip, converted while cutting): bands 3,2,1, default stretch',
    });
    assert.equal(notes.length, 1);
    assert.match(
      notes[0]!,
      /^cannot read the header of \/nonexistent\/gone\.tif \(.*no such file.*\): source bands unknown$/,
    );
  });

  it('records nothing when the dataset stage is not a merge of chip stages', async () => {
    const graph = compile(
      [
        'version: 1',
        'name: t',
        'inputs:',
        '  scenes: [data/*.tif]',
        'stages:',
        '  inspect:',
        '    job: inspect',
        '    foreach: scenes',
        '  dataset:',
        '    job: merge',
        '    needs: [inspect]',
        '    params: { chips: inspect }',
        '',
      ].join('\n'),
      { scenes: [MS] },
    );
    assert.deepEqual(await chipProvenance(storage, graph, 'dataset'), {
      notes: [
        "stage 'inspect' (the chips of merge stage 'dataset') runs job 'inspect', not chip or chip-grid: how its chips were made is not known",
      ],
    });
    assert.deepEqual(traceChips(graph, 'inspect').notes, [
      "dataset stage 'inspect' runs job 'inspect', not merge: how its chips were made is not known",
    ]);
    // the harness then records its defaults
    assert.match(UNKNOWN_CONVERSION.description, /not recorded/);
  });
});
