// Multi-label encodings and statistics on hand-made splits with known answers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvField, multiHotCsv, sparseLabelsJsonl, type SplitCoco } from '../../lib/dataset/labels.js';
import type { DatasetCoco } from '../../lib/dataset/merge.js';
import { datasetStats, quantile } from '../../lib/dataset/stats.js';

const categories = [
  { id: 1, name: 'car' },
  { id: 2, name: 'house, big' },
  { id: 3, name: 'tree "oak"' },
];

function coco(split: string, images: string[], labels: [number, number, number][]): DatasetCoco {
  return {
    info: { description: '', split },
    categories,
    images: images.map((file_name, i) => ({ id: i + 1, file_name, width: 10, height: 10, scene: 's' })),
    // [image id, category id, area]
    annotations: labels.map(([image_id, category_id, area], i) => ({
      id: i + 1,
      image_id,
      category_id,
      bbox: [0, 0, 1, area] as const,
      area,
      iscrowd: 0,
    })),
  };
}

// train: a.png {car x2, house}, b.png {}, c.png {house, tree}; val: d,e.png {car}, {car, tree}
const splits: SplitCoco[] = [
  {
    split: 'train',
    coco: coco(
      'train',
      ['s/images/a.png', 's/images/b.png', 's/images/c.png'],
      [
        [1, 1, 10],
        [1, 1, 20],
        [1, 2, 30],
        [3, 2, 40],
        [3, 3, 50],
      ],
    ),
  },
  {
    split: 'val',
    coco: coco(
      'val',
      ['t/images/d,1.png', 't/images/e.png'],
      [
        [1, 1, 60],
        [2, 1, 70],
        [2, 3, 80],
      ],
    ),
  },
];

describe('multi-label encodings', () => {
  it('writes one multi-hot row per chip in category order, CSV-escaped', () => {
    assert.equal(
      multiHotCsv(splits, categories),
      [
        'file_name,split,car,"house, big","tree ""oak"""',
        's/images/a.png,train,1,1,0',
        's/images/b.png,train,0,0,0',
        's/images/c.png,train,0,1,1',
        '"t/images/d,1.png",val,1,0,0',
        't/images/e.png,val,1,0,1',
        '',
      ].join('\n'),
    );
  });

  it('writes the sparse form as JSON lines with class names', () => {
    const lines = sparseLabelsJsonl(splits, categories)
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(lines, [
      { file_name: 's/images/a.png', split: 'train', labels: ['car', 'house, big'] },
      { file_name: 's/images/b.png', split: 'train', labels: [] },
      { file_name: 's/images/c.png', split: 'train', labels: ['house, big', 'tree "oak"'] },
      { file_name: 't/images/d,1.png', split: 'val', labels: ['car'] },
      { file_name: 't/images/e.png', split: 'val', labels: ['car', 'tree "oak"'] },
    ]);
  });

  it('quotes only what needs quoting', () => {
    assert.equal(csvField('plain'), 'plain');
    assert.equal(csvField('a\nb'), '"a\nb"');
    assert.equal(csvField('say "x"'), '"say ""x"""');
  });
});

describe('datasetStats', () => {
  const stats = datasetStats(splits, categories);

  it('counts annotations and chips per split and class', () => {
    assert.deepEqual(stats.splits.train!.classes, {
      car: { annotations: 2, chips: 1 },
      'house, big': { annotations: 2, chips: 2 },
      'tree "oak"': { annotations: 1, chips: 1 },
    });
    assert.deepEqual(stats.splits.val!.classes['car'], { annotations: 2, chips: 2 });
    assert.equal(stats.splits.train!.chipsWithoutLabels, 1);
    assert.equal(stats.total.chips, 5);
    assert.equal(stats.total.annotations, 8);
    assert.deepEqual(stats.total.classes['car'], { annotations: 4, chips: 3 });
  });

  it('counts co-occurrence as chips on which both classes occur', () => {
    assert.deepEqual(stats.splits.train!.cooccurrence, [
      [1, 1, 0],
      [1, 2, 1],
      [0, 1, 1],
    ]);
    assert.deepEqual(stats.total.cooccurrence, [
      [3, 1, 1],
      [1, 2, 1],
      [1, 1, 2],
    ]);
  });

  it('gives area quantiles overall and per class', () => {
    assert.deepEqual(stats.area.quantiles, {
      p0: 10,
      p5: 13.5,
      p25: 27.5,
      p50: 45,
      p75: 62.5,
      p95: 76.5,
      p100: 80,
    });
    assert.equal(stats.area.count, 8);
    assert.deepEqual(stats.area.byClass['tree "oak"']!.quantiles!['p50'], 65);
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  });
});
