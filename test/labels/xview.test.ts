import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  categoriesFromValues,
  parseCategoryMap,
  parseClassNames,
  xviewCategories,
  XVIEW_CLASSES,
} from '../../lib/labels/categories.js';
import { cocoText } from '../../lib/labels/coco.js';
import { listImages } from '../../lib/labels/images.js';
import { convertXview, parseBoundsImcoords } from '../../lib/labels/xview.js';
import { createStorage } from '../../lib/storage/index.js';
import { tempDir } from '../raster/fixtures.js';
import { writeScene } from '../raster/scene-fixtures.js';

const storage = createStorage();

function feature(imageId: string, typeId: number | undefined, bounds: string, featureId = 1): object {
  return {
    type: 'Feature',
    geometry: {
      type: 'Polygon',
      coordinates: [
        [
          [0, 0],
          [1, 0],
          [1, 1],
          [0, 0],
        ],
      ],
    },
    properties: {
      bounds_imcoords: bounds,
      ...(typeId === undefined ? {} : { type_id: typeId }),
      image_id: imageId,
      feature_id: featureId,
      cat_id: 'x',
    },
  };
}

describe('xView categories', () => {
  it('the preset has the 60 classes of REFERENCE §2, COCO ids 1..60 in the usual order', () => {
    const map = xviewCategories();
    assert.equal(XVIEW_CLASSES.length, 60);
    assert.equal(map.categories.length, 60);
    assert.deepEqual(map.lookup(11), { id: 1, name: 'Fixed-wing Aircraft' });
    assert.deepEqual(map.lookup('73'), { id: 49, name: 'Building' });
    assert.deepEqual(map.lookup(94), { id: 60, name: 'Tower' });
    assert.equal(map.lookup(75), undefined, 'noise class 75 is not a class');
    assert.equal(map.lookup(82), undefined, 'noise class 82 is not a class');
  });

  it('category maps: names, {id, name}, ids and null; merging values into one category', () => {
    const map = parseCategoryMap(
      JSON.stringify({
        '17': 'vehicle',
        '18': 'vehicle',
        '73': { id: 5, name: 'building' },
        '86': 7,
        '75': null,
      }),
      'map.json',
    );
    assert.deepEqual(map.lookup(17), { id: 8, name: 'vehicle' });
    assert.deepEqual(map.lookup(18), { id: 8, name: 'vehicle' });
    assert.deepEqual(map.lookup(73), { id: 5, name: 'building' });
    assert.deepEqual(map.lookup(86), { id: 7, name: '86' });
    assert.equal(map.lookup(75), null);
    assert.equal(map.lookup(99), undefined);
    assert.deepEqual(
      map.categories.map((c) => c.id),
      [5, 7, 8],
    );
  });

  const badMaps: [string, string][] = [
    [
      '[1]',
      'map.json: expected a JSON object from source values to categories, e.g. {"73": "building", "18": {"id": 2, "name": "car"}, "75": null}',
    ],
    [
      '{"1": true}',
      'map.json: "1": expected a category name, {"id": <positive integer>, "name": "..."}, a positive integer id, or null but got true',
    ],
    [
      '{"1": {"id": 0, "name": "a"}}',
      'map.json: "1": expected a category name, {"id": <positive integer>, "name": "..."}, a positive integer id, or null but got {"id":0,"name":"a"}',
    ],
    [
      '{"1": {"id": 2, "name": "a"}, "2": {"id": 2, "name": "b"}}',
      "map.json: \"2\": id 2 is already the category 'a', not 'b'",
    ],
    ['{}', 'map.json: the category map is empty'],
  ];
  for (const [text, message] of badMaps) {
    it(`a bad category map ${text}`, () => {
      assert.throws(() => parseCategoryMap(text, 'map.json'), { name: 'LabelError', message });
    });
  }

  it("class-names files: xView's 'type_id:name' lines or plain names", () => {
    const map = parseClassNames('# xView\n11:Fixed-wing Aircraft\n\n73:Building\n', 'classes.txt');
    assert.deepEqual(map.categories, [
      { id: 1, name: 'Fixed-wing Aircraft' },
      { id: 2, name: 'Building' },
    ]);
    assert.deepEqual(map.lookup(73), { id: 2, name: 'Building' });
    assert.deepEqual(parseClassNames('car\ntruck', 'c.txt').lookup('truck'), { id: 2, name: 'truck' });
    assert.throws(() => parseClassNames('1:a\n1:b', 'c.txt'), {
      message: "c.txt: line 2: value '1' was already given a class on line 1",
    });
  });

  it('categories from the values seen: sorted, numbers numerically', () => {
    assert.deepEqual(
      categoriesFromValues([10, 9, 10, undefined, 100], 'class').categories.map((c) => c.name),
      ['9', '10', '100'],
    );
  });
});

describe('bounds_imcoords', () => {
  it('parses the xView string, and arrays', () => {
    assert.deepEqual(parseBoundsImcoords('10,20,30,40', 'f'), [10, 20, 30, 40]);
    assert.deepEqual(parseBoundsImcoords([1, 2, 3, 4], 'f'), [1, 2, 3, 4]);
  });
  it('names the feature, the field and the value when it is not 4 numbers', () => {
    assert.throws(() => parseBoundsImcoords('10,20,30', "a.geojson: feature 5 (image_id '2355.tif')"), {
      name: 'LabelError',
      message:
        "a.geojson: feature 5 (image_id '2355.tif'): properties.bounds_imcoords = '10,20,30' has 3 numbers; expected 4: 'xmin,ymin,xmax,ymax'",
    });
    assert.throws(() => parseBoundsImcoords('10,20,x,40', 'f'), {
      message:
        "f: properties.bounds_imcoords = '10,20,x,40' is not 4 finite numbers; expected 'xmin,ymin,xmax,ymax'",
    });
    assert.throws(() => parseBoundsImcoords(undefined, 'f'), {
      message:
        "f: properties.bounds_imcoords is missing; expected a string 'xmin,ymin,xmax,ymax' of pixel coordinates",
    });
  });
});

describe('xView to COCO shards', () => {
  const tmp = tempDir('xview');
  const images = join(tmp.dir, 'images');
  let labels: string;
  before(async () => {
    await writeScene(join(images, '100.tif'), { width: 200, height: 100, bands: 1, dtype: 'uint8' });
    await writeScene(join(images, 'sub', '200.tif'), { width: 50, height: 60, bands: 1, dtype: 'uint8' });
    await writeScene(join(images, '300.tif'), { width: 10, height: 10, bands: 1, dtype: 'uint8' });
    writeFileSync(join(images, '._100.tif'), 'macOS resource fork, not an image');
    writeFileSync(join(images, 'notes.txt'), 'not an image');
    labels = join(tmp.dir, 'xview.geojson');
    const features = [
      feature('100.tif', 73, '10,10,30,40', 1), // kept
      feature('100.tif', 18, '190,90,210,120', 2), // clipped to 190,90,200,100
      feature('100.tif', 18, '-5,-5,5,5', 3), // clipped
      feature('100.tif', 18, '300,10,320,20', 4), // outside
      feature('100.tif', 18, '200,10,220,20', 5), // outside: only touches the right edge
      feature('100.tif', 73, '10,10,10,40', 6), // zero area
      feature('100.tif', 75, '10,10,20,20', 7), // unmapped (noise class)
      feature('100.tif', 82, '10,10,20,20', 8), // unmapped
      feature('100.tif', undefined, '10,10,20,20', 9), // unmapped: no type_id
      feature('200.tif', 86, '1.5,2.5,11.5,12.5', 10), // kept, fractional
      feature('1395.tif', 73, '10,10,20,20', 11), // missing image
      feature('1395.tif', 73, '10,10,20,20', 12), // missing image
    ];
    writeFileSync(labels, JSON.stringify({ type: 'FeatureCollection', features }));
  });
  after(() => tmp.cleanup());

  it('counts every feature once, clips boxes, and writes a shard for every image', async () => {
    const found = await listImages(storage, images);
    assert.deepEqual(
      found.map((i) => [i.name, i.id, i.width, i.height]),
      [
        ['100.tif', '100', 200, 100],
        ['300.tif', '300', 10, 10],
        ['200.tif', '200', 50, 60],
      ],
    );
    const c = await convertXview(storage, labels, found, xviewCategories());
    assert.deepEqual(c.counts, {
      features: 12,
      kept: 4,
      zeroArea: 1,
      outside: 2,
      unmappedCategory: 3,
      excludedCategory: 0,
      missingImage: 2,
      clipped: 2,
    });
    assert.deepEqual(c.unmappedTypeIds, { '75': 1, '82': 1, '(missing)': 1 });
    assert.deepEqual(c.missingImages, { '1395.tif': 2 });
    const [a, empty, b] = c.shards.map((s) => s.dataset);
    assert.deepEqual(a!.images, [
      { id: 1, file_name: '100.tif', width: 200, height: 100, uri: join(images, '100.tif') },
    ]);
    assert.deepEqual(
      a!.annotations.map((x) => [x.id, x.category_id, x.bbox, x.area, x.feature_id, x.source_index]),
      [
        [1, 49, [10, 10, 20, 30], 600, 1, 0],
        [2, 6, [190, 90, 10, 10], 100, 2, 1],
        [3, 6, [0, 0, 5, 5], 25, 3, 2],
      ],
    );
    assert.deepEqual(empty!.annotations, []);
    assert.equal(empty!.categories.length, 60);
    assert.deepEqual(
      b!.annotations.map((x) => [x.bbox, x.category_id]),
      [[[1.5, 2.5, 10, 10], 56]],
    );
    // the text form is valid JSON with the same content
    assert.deepEqual(JSON.parse(cocoText(a!)), JSON.parse(JSON.stringify(a)));
  });

  it('a category map decides what is kept; excluded values are counted apart from unknown ones', async () => {
    const found = await listImages(storage, images);
    const map = parseCategoryMap(JSON.stringify({ '73': 'building', '18': 'vehicle', '75': null }), 'm.json');
    const c = await convertXview(storage, labels, found, map);
    assert.equal(c.counts.excludedCategory, 1);
    assert.deepEqual(c.unmappedTypeIds, { '86': 1, '82': 1, '(missing)': 1 });
    // names without ids are numbered in the order JSON objects list keys: integer keys ascending
    assert.deepEqual(c.shards[0]!.dataset.categories, [
      { id: 1, name: 'vehicle' },
      { id: 2, name: 'building' },
    ]);
  });

  it('stops at the first bad feature, naming it', async () => {
    const bad = join(tmp.dir, 'bad.geojson');
    writeFileSync(
      bad,
      JSON.stringify({
        type: 'FeatureCollection',
        features: [feature('100.tif', 73, '1,2,3,4'), feature('100.tif', 73, '1,2,3')],
      }),
    );
    await assert.rejects(convertXview(storage, bad, await listImages(storage, images), xviewCategories()), {
      name: 'LabelError',
      message: `${bad}: feature 1 (image_id '100.tif'): properties.bounds_imcoords = '1,2,3' has 3 numbers; expected 4: 'xmin,ymin,xmax,ymax'`,
    });
  });
});
