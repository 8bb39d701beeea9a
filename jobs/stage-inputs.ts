/**
 * How a stage's parameters name files of the run, shared by the labels jobs:
 * - `labels: <input set>`: the labels file(s), listed (and resolved relative to the pipeline
 *   file) like every input; a set of one file serves every item, a larger set gives each item
 *   the file with the same id (one GeoJSON per image, e.g. labels/demo-001.geojson).
 * - `labels: <stage>`: a stage that writes one GeoJSON per item (`labels-osm`): the item's
 *   labels are `<run>/<stage>/<item>.geojson`; the stage must be listed under needs.
 * - `image: <stage>` / `images: <stage>`: the image of an item is that stage's output for the
 *   item (`rgb` writes `<run>/rgb/<item>.tif|.png|.jpg`, `mask` `<run>/mask/<item>.tif`);
 *   without it, the item's own file.
 */
import type { Item } from '../lib/pipeline/types.js';
import { joinUri } from '../lib/storage/uri.js';
import type { JobContext } from './types.js';

/** Extension of the images a stage writes, or undefined when its job writes none. */
function stageImageExtension(ctx: JobContext, stage: string): string | undefined {
  const s = ctx.run.graph.stages.find((g) => g.name === stage);
  if (!s) return undefined;
  if (s.job === 'rgb') {
    const format = s.params.format;
    return format === 'png' ? '.png' : format === 'jpeg' ? '.jpg' : '.tif';
  }
  if (s.job === 'mask') return '.tif';
  return undefined;
}

/** Throws unless `stage` (the value of parameter `param`) names a stage of this pipeline. */
export function checkStageParam(ctx: JobContext, stage: string, param: string): void {
  if (ctx.run.graph.stages.some((s) => s.name === stage)) return;
  const names = ctx.run.graph.stages.map((g) => g.name).join(', ');
  throw new Error(
    `stages.${ctx.stage}.params.${param}: expected a stage of this pipeline (${names}) but got '${stage}'`,
  );
}

/** Throws unless `stage` is a stage of this run that writes one image per item. */
export function checkImageStage(ctx: JobContext, stage: string, param: string): void {
  const s = ctx.run.graph.stages.find((g) => g.name === stage);
  const where = `stages.${ctx.stage}.params.${param}`;
  if (!s) {
    const names = ctx.run.graph.stages.map((g) => g.name).join(', ');
    throw new Error(`${where}: expected a stage of this pipeline (${names}) but got '${stage}'`);
  }
  if (stageImageExtension(ctx, stage) === undefined) {
    throw new Error(
      `${where}: stage '${stage}' runs job '${s.job}', which writes no images (expected a stage of job rgb)`,
    );
  }
}

/** The URI of item `item`'s image: the output of stage `imageStage` for it, or the item's own file. */
export function itemImageUri(ctx: JobContext, item: Item, imageStage: string | undefined): string {
  if (imageStage === undefined) return item.uri;
  checkImageStage(ctx, imageStage, 'image');
  return joinUri(ctx.run.stageUri(imageStage), `${item.id}${stageImageExtension(ctx, imageStage)}`);
}

/**
 * The raster whose georeferencing places labels on item `item`'s image: the image itself when it
 * is a GeoTIFF, else (an rgb stage writing PNG or JPEG, same pixel grid) the item's own file.
 */
export function itemGeorefUri(ctx: JobContext, item: Item, imageStage: string | undefined): string {
  if (imageStage === undefined) return item.uri;
  return stageImageExtension(ctx, imageStage) === '.tif' ? itemImageUri(ctx, item, imageStage) : item.uri;
}

/** The items of an input set named by a parameter, or an error naming the sets there are. */
export function inputSetItems(ctx: JobContext, set: string, param: string): readonly Item[] {
  const items = ctx.run.graph.items[set];
  if (!items) {
    const names = Object.keys(ctx.run.graph.items).join(', ') || 'none';
    throw new Error(
      `stages.${ctx.stage}.params.${param}: expected an input set of this pipeline (${names}) but got '${set}'`,
    );
  }
  return items;
}

/** Jobs whose stages write one labels file per item, `<run>/<stage>/<item><extension>`. */
const labelStageExtensions: Readonly<Record<string, string>> = { 'labels-osm': '.geojson' };

/** The labels file for an item from the input set or labels stage `set` (see the module comment). */
export function labelsFileFor(ctx: JobContext, set: string, item: Item): string {
  const stage = ctx.run.graph.stages.find((s) => s.name === set);
  if (stage) {
    const where = `stages.${ctx.stage}.params.labels`;
    const extension = labelStageExtensions[stage.job];
    if (extension === undefined) {
      throw new Error(
        `${where}: stage '${set}' runs job '${stage.job}', which writes no labels per item (expected an input set or a stage of job ${Object.keys(labelStageExtensions).join(', ')})`,
      );
    }
    const self = ctx.run.graph.stages.find((s) => s.name === ctx.stage);
    if (!self?.dependsOn.some((d) => d.stage === set)) {
      throw new Error(
        `${where}: stage '${set}' must finish first: add needs: [${set}] to stage '${ctx.stage}'`,
      );
    }
    return joinUri(ctx.run.stageUri(set), `${item.id}${extension}`);
  }
  if (!ctx.run.graph.items[set]) {
    const sets = Object.keys(ctx.run.graph.items).join(', ') || 'none';
    const stages = ctx.run.graph.stages
      .filter((s) => labelStageExtensions[s.job] !== undefined)
      .map((s) => s.name);
    throw new Error(
      `stages.${ctx.stage}.params.labels: expected an input set (${sets})${stages.length ? ` or a labels-osm stage (${stages.join(', ')})` : ''} of this pipeline but got '${set}'`,
    );
  }
  const files = inputSetItems(ctx, set, 'labels');
  if (files.length === 1) return files[0]!.uri;
  const match = files.find((f) => f.id === item.id);
  if (!match) {
    throw new Error(
      `stages.${ctx.stage}.params.labels: input set '${set}' has ${files.length} files and none with the id '${item.id}' of this item (one labels file for all items, or one per item with the same name)`,
    );
  }
  return match.uri;
}
