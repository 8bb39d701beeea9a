import { LabelError } from '../lib/labels/errors.js';
import { openOsmSource } from '../lib/labels/osm-elements.js';
import { parseClassesFile } from '../lib/labels/osm-filters.js';
import {
  chipLabels,
  chipLabelsCsv,
  chipLabelsJsonl,
  extractOsmFeatures,
  featureCollectionText,
  parseChipFootprints,
  sceneFeatures,
  sceneFootprint,
  type OsmChip,
  type OsmScene,
} from '../lib/labels/osm.js';
import type { Item } from '../lib/pipeline/types.js';
import { joinUri } from '../lib/storage/uri.js';
import type { JobParams } from './catalog.js';
import { checkImageStage, checkStageParam, inputSetItems, itemGeorefUri } from './stage-inputs.js';
import type { JobContext, JobModule } from './types.js';

/** Throws unless stage `name` (parameter `param`) is one this stage waits for. */
function requireNeeded(ctx: JobContext, name: string, param: string): void {
  const self = ctx.run.graph.stages.find((s) => s.name === ctx.stage);
  if (!self?.dependsOn.some((d) => d.stage === name)) {
    throw new Error(
      `stages.${ctx.stage}.params.${param}: stage '${name}' must finish first: add needs: [${name}] to stage '${ctx.stage}'`,
    );
  }
}

/** The scenes: the items of an input set, or of an image stage (its GeoTIFF for each, or the item's own file when it writes PNG/JPEG on the same grid). */
function sceneItems(ctx: JobContext, images: string): { item: Item; georef: string }[] {
  const stage = ctx.run.graph.stages.find((s) => s.name === images);
  if (!stage) return inputSetItems(ctx, images, 'images').map((item) => ({ item, georef: item.uri }));
  checkImageStage(ctx, images, 'images');
  requireNeeded(ctx, images, 'images');
  const items = stage.itemsFrom ? (ctx.run.graph.items[stage.itemsFrom] ?? []) : [];
  return items.map((item) => ({ item, georef: itemGeorefUri(ctx, item, images) }));
}

/**
 * One task for the whole stage: reads the OSM data once (three scans of a PBF) and writes, per
 * scene of `images`, `<stage>/<item>.geojson` (the features clipped to its footprint, as
 * `geobatch labels osm --images` writes them); with `chips`, `labels.csv` and `labels.jsonl`
 * over every chip of every item (`<item>/<chip>`); `summary.json` last.
 */
export const labelsOsmJob: JobModule<JobParams<'labels-osm'>> = {
  async run(params, ctx) {
    const where = `stages.${ctx.stage}.params`;
    const files = inputSetItems(ctx, params.osm, 'osm');
    if (files.length !== 1) {
      throw new Error(
        `${where}.osm: expected input set '${params.osm}' to hold one OSM file (.osm.pbf, .osm or Overpass .json) but it holds ${files.length}`,
      );
    }
    const classes = parseClassesFile(JSON.stringify(params.classes), `${where}.classes`);
    const io = { signal: ctx.signal };

    // footprints and chip lists first: a bad raster fails before the scans of the extract
    const scenes: { item: Item; scene: OsmScene }[] = [];
    for (const { item, georef } of sceneItems(ctx, params.images)) {
      scenes.push({ item, scene: { ...(await sceneFootprint(ctx.storage, georef, io)), id: item.id } });
    }
    const chips: { item: string; chips: OsmChip[] }[] = [];
    if (params.chips !== undefined) {
      checkStageParam(ctx, params.chips, 'chips');
      requireNeeded(ctx, params.chips, 'chips');
      const chipStage = ctx.run.graph.stages.find((s) => s.name === params.chips)!;
      if (chipStage.job !== 'chip' && chipStage.job !== 'chip-grid') {
        throw new Error(
          `${where}.chips: stage '${params.chips}' runs job '${chipStage.job}', which writes no chips.geojson (expected a stage of job chip or chip-grid)`,
        );
      }
      // a split chip stage (tasksPerItem: N) writes one footprints file per part, in chip order
      const n = chipStage.tasksPerItem;
      const names =
        n > 1
          ? Array.from({ length: n }, (_, k) => [
              `chips.part-${k + 1}-of-${n}.geojson`,
              `annotations.part-${k + 1}-of-${n}.json`,
            ])
          : [['chips.geojson', 'annotations.json']];
      for (const { item } of scenes) {
        const folder = joinUri(ctx.run.stageUri(params.chips), item.id);
        const itemChips: OsmChip[] = [];
        for (const [footprints, annotations] of names) {
          const uri = joinUri(folder, footprints!);
          if (await ctx.storage.exists(uri, io)) {
            itemChips.push(...parseChipFootprints((await ctx.storage.read(uri, io)).toString('utf8'), uri));
          } else if (!(await ctx.storage.exists(joinUri(folder, annotations!), io))) {
            throw new LabelError(
              `${where}.chips: ${uri} does not exist (stage '${params.chips}' writes chips.geojson beside annotations.json for each georeferenced scene)`,
            );
          }
          // annotations without footprints: the chip job wrote no chips of this scene (or part)
        }
        chips.push({ item: item.id, chips: itemChips });
      }
    }

    const source = await openOsmSource(ctx.storage, files[0]!.uri);
    const extraction = await extractOsmFeatures(source, classes);
    const classNames = classes.map((c) => c.name);
    const byClass = Object.fromEntries(classNames.map((c) => [c, 0])) as Record<string, number>;
    for (const f of extraction.features) byClass[f.cls]!++;

    const dir = ctx.run.stageUri(ctx.stage);
    const outputs: string[] = [];
    const perScene: { item: string; image: string; features: number }[] = [];
    let done = 0;
    for (const { item, scene } of scenes) {
      const features = sceneFeatures(extraction.features, scene);
      const out = joinUri(dir, `${item.id}.geojson`);
      await ctx.storage.writeAtomic(out, featureCollectionText(features), {
        contentType: 'application/geo+json',
        ...io,
      });
      outputs.push(out);
      perScene.push({ item: item.id, image: scene.uri, features: features.length });
      ctx.progress(++done, scenes.length);
    }

    let chipSummary: { count: number; byClass: Record<string, number> } | undefined;
    if (params.chips !== undefined) {
      // one table for the stage: chips are named <item>/<chip> so names stay unique across scenes
      const all: OsmChip[] = chips.flatMap((c) =>
        c.chips.map((x) => ({ ...x, chip: `${c.item}/${x.chip}` })),
      );
      const labels = chipLabels(extraction.features, all);
      const csv = joinUri(dir, 'labels.csv');
      const jsonl = joinUri(dir, 'labels.jsonl');
      await ctx.storage.writeAtomic(csv, chipLabelsCsv(all, labels, classNames), {
        contentType: 'text/csv',
        ...io,
      });
      await ctx.storage.writeAtomic(jsonl, chipLabelsJsonl(all, labels, classNames), {
        contentType: 'application/jsonl',
        ...io,
      });
      outputs.push(csv, jsonl);
      chipSummary = {
        count: all.length,
        byClass: Object.fromEntries(classNames.map((k) => [k, labels.filter((l) => l.has(k)).length])),
      };
    }

    const summary = {
      input: source.uri,
      classes: classNames,
      features: extraction.features.length,
      byClass,
      skipped: extraction.skipped,
      nodesKept: extraction.nodesKept,
      scenes: perScene,
      ...(chipSummary ? { chips: chipSummary } : {}),
    };
    const summaryUri = joinUri(dir, 'summary.json');
    await ctx.storage.writeAtomic(summaryUri, JSON.stringify(summary, null, 2) + '\n', {
      contentType: 'application/json',
      ...io,
    });
    ctx.log.info(
      `${summary.features} features (${classNames.map((c) => `${c} ${byClass[c]}`).join(', ')}) over ${scenes.length} scene(s); skipped ${JSON.stringify(extraction.skipped)}`,
    );
    return {
      outputs: [...outputs, summaryUri],
      summary: {
        features: summary.features,
        byClass,
        scenes: scenes.length,
        ...(chipSummary ? { chips: chipSummary.count } : {}),
      },
    };
  },
};
