// A small geobatch dataset from the shared real data: SpaceNet building footprints (polygons,
// some cut in two by chip edges) on sample_geotiff.tif, and SAHI's terrain1.jpg (human) and
// terrain2.png (car, and chips without objects) boxes-as-polygons, each chipped by `chip slice` and merged by `dataset build`.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sliceImages } from '../../lib/chip/slice-images.js';
import { buildDataset } from '../../lib/dataset/build.js';
import { cocoText } from '../../lib/labels/coco.js';
import { geojsonToCoco } from '../../lib/labels/geo-labels.js';
import { createStorage } from '../../lib/storage/index.js';

export const SHARED = join(import.meta.dirname, '../../../shared/data');
const SPACENET = join(SHARED, 'spacenet/sample_geotiff.tif');
const FOOTPRINTS = join(SHARED, 'spacenet/geotiff_labels.geojson');
const COCO = join(SHARED, 'coco');

/** Builds the dataset under `dir` and returns its folder (`<dir>/dataset`). */
export async function buildRealDataset(dir: string): Promise<string> {
  const storage = createStorage();
  const { dataset } = await geojsonToCoco(storage, FOOTPRINTS, SPACENET, { category: 'building' });
  const spacenetCoco = join(dir, 'spacenet-coco.json');
  await writeFile(spacenetCoco, cocoText(dataset));
  const chips = join(dir, 'chips');
  const common = { size: 450, overlap: 0, ignoreNegatives: true, format: 'png' as const };
  await sliceImages(storage, {
    ...common,
    images: SPACENET,
    coco: spacenetCoco,
    out: join(chips, 'spacenet'),
  });
  await sliceImages(storage, {
    ...common,
    images: COCO,
    coco: join(COCO, 'terrain1_coco.json'),
    out: join(chips, 'terrain1'),
  });
  // every chip, with or without objects: the export must write empty label files
  await sliceImages(storage, {
    ...common,
    ignoreNegatives: false,
    images: COCO,
    coco: join(COCO, 'terrain2_coco.json'),
    out: join(chips, 'terrain2'),
  });
  const out = join(dir, 'dataset');
  await buildDataset(storage, { inputs: [chips], out, val: 0.34, seed: 1, contactSheet: 0 });
  return out;
}
