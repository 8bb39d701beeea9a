/**
 * `geobatch eval`: predictions against truth, per scene, per class and overall, written to
 * `<out>/eval.json` (last), `errors.geojson`, a picture (`pr-curves.png` or `confusion.png`) and
 * `eval.md`. Every input is read and checked before anything is written, so bad input leaves
 * nothing behind.
 */
import type { CrsRef } from '../geo/crs.js';
import type { Polygon } from '../labels/geometry.js';
import type { BurnShape } from '../labels/rasterize.js';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import { EvalError } from './errors.js';
import { listFolder, rasterGrid, readPredictions, readTruth, stemOf } from './inputs.js';
import type {
  EvalClass,
  EvalTask,
  PredictedScene,
  RawLabel,
  RawObject,
  SceneGrid,
  TruthSource,
} from './inputs.js';
import {
  ClassAccumulator,
  IOU_THRESHOLDS,
  RECALL_POINTS,
  countsOf,
  matchImageClass,
  meanOf,
} from './matching.js';
import type { Counts, ScoredBox } from './matching.js';
import { confusionPng, evalMarkdown, prCurvesPng } from './pictures.js';
import { footprintText, pixelsToCrs84, placeOnGrid } from './place.js';
import { boxPolygon, matchPolygons } from './polygon-matching.js';
import type { Shape } from './polygon-matching.js';
import { addConfusion, confusionOf, pixelScores, rasterRows, shapeRows } from './segmentation.js';
import type { Confusion, PixelScores } from './segmentation.js';

/** What {@link evaluate} compares and where it writes. */
export interface EvalOptions {
  /** A predict output folder, or a folder / file / list of files of plain COCO or GeoJSON. */
  readonly predictions: string | readonly string[];
  /** COCO shards, geo-labels or masks (a folder, one file or a list of files). */
  readonly truth: string | readonly string[];
  /** Folder the results are written to. */
  readonly out: string;
  /** Property of geo-label features that names the class. @default 'class' */
  readonly classField?: string;
  /** CRS of GeoJSON without a `crs` member. @default CRS84 */
  readonly truthCrs?: CrsRef;
  /** GeoPackage table (or shapefile in a .zip) of geo-label truth. */
  readonly truthLayer?: string;
  /** Scene rasters (a folder of `<scene>.tif`) whose grids place GeoJSON when neither side has one. */
  readonly images?: string | readonly string[];
  /** Cap of detections per scene and class for AP, as COCO's maxDets. @default no cap */
  readonly maxDets?: number;
  /**
   * 'all': a scene with truth and no predictions is scored, every truth object missed;
   * 'predicted': only scenes with predictions are scored (predict ran on a subset, e.g. the
   * validation split), the others listed as not scored. @default 'all'
   */
  readonly scenes?: 'all' | 'predicted';
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

/** One false positive or false negative for errors.geojson. */
interface ErrorRecord {
  readonly scene: string;
  readonly kind: 'fp' | 'fn';
  readonly cls: string;
  readonly score: number | null;
  readonly iou: number;
  readonly polygons: readonly Polygon[];
  readonly toCrs84: ((x: number, y: number) => [number, number]) | null;
}

/** Detection scores of a group (scene, class, or all). */
export interface DetectionScores extends Counts {
  readonly truth: number;
  readonly predicted: number;
  readonly ap50: number | null;
  readonly ap: number | null;
}

/** Segmentation scores of a group. */
export type SegmentationScores = PixelScores;

/** The scores of one scene in eval.json (`perScene.<id>`). */
export interface SceneReport {
  readonly predictions: string | null;
  readonly truth: string;
  readonly width: number;
  readonly height: number;
  readonly detection?: DetectionScores & { readonly perClass: Record<string, DetectionScores> };
  readonly segmentation?: {
    readonly meanIou: number | null;
    readonly pixelAccuracy: number | null;
    readonly nodataPixels: number;
    readonly perClass: Record<string, SegmentationScores>;
  };
  readonly spacenet: (Counts & { readonly perClass: Record<string, Counts> }) | null;
  /** Truth features that fell outside the scene (geo-labels). */
  readonly truthOutside?: number;
}

/** eval.json: what was compared, how, and the scores overall, per class and per scene. */
export interface EvalReport {
  readonly format: 'geobatch-eval';
  readonly version: 1;
  readonly task: EvalTask;
  readonly predictions: string;
  readonly truth: { readonly uri: string; readonly kind: TruthSource['kind'] };
  readonly iouThreshold: 0.5;
  readonly apIouThresholds: readonly number[];
  /** null: no cap on detections per scene and class (COCO's default is 100). */
  readonly maxDets: number | null;
  readonly scored: boolean;
  readonly classes: readonly EvalClass[];
  readonly scenes: {
    readonly evaluated: readonly string[];
    /** Scenes with predictions and no truth: not scored. */
    readonly predictionsWithoutTruth: readonly string[];
    /** Scenes with truth and no predictions: scored, every truth object a false negative. */
    readonly truthWithoutPredictions: readonly string[];
    /** Scenes with truth and no predictions left out (`scenes: 'predicted'`). */
    readonly truthNotPredicted: readonly string[];
  };
  readonly overall: Omit<SceneReport, 'predictions' | 'truth' | 'width' | 'height' | 'truthOutside'>;
  readonly perScene: Record<string, SceneReport>;
  /** Interpolated precision at the 101 recall points, IoU 0.5, per class with truth (detection). */
  readonly prCurves?: Record<
    string,
    { readonly recall: readonly number[]; readonly precision: readonly number[] }
  >;
  readonly confusion?: Confusion;
  readonly errors: { readonly features: number; readonly scenesWithoutGeoreference: readonly string[] };
  readonly outputs: Record<string, string>;
  readonly seconds: number;
}

/** One scene to score: its predictions (none: all truth missed) and its truth. */
interface ScenePair {
  readonly id: string;
  readonly prediction: PredictedScene | null;
  readonly truth: TruthSource;
  readonly grid: SceneGrid;
}

function sameGrid(a: SceneGrid, b: SceneGrid): string | undefined {
  if (a.width !== b.width || a.height !== b.height)
    return `${a.width} x ${a.height} px vs ${b.width} x ${b.height} px`;
  if (a.epsg !== null && b.epsg !== null && a.epsg !== b.epsg) return `EPSG:${a.epsg} vs EPSG:${b.epsg}`;
  if (a.geotransform && b.geotransform) {
    const tol = Math.abs(a.geotransform[1]) * 1e-3;
    if (a.geotransform.some((v, i) => Math.abs(v - b.geotransform![i]!) > tol)) {
      return `geotransform [${a.geotransform.join(', ')}] vs [${b.geotransform.join(', ')}]`;
    }
  }
  return undefined;
}

/** Resolves raw labels to class indexes, collecting what is unknown for one error at the end. */
class ClassTable {
  readonly unknown = new Map<string, { count: number; files: Set<string> }>();
  constructor(readonly classes: readonly EvalClass[]) {}

  resolve(label: RawLabel, file: string): number {
    let i = -1;
    if (label.name !== undefined) i = this.classes.findIndex((c) => c.name === label.name);
    else if (label.id !== undefined) i = this.classes.findIndex((c) => c.id === label.id);
    else if (this.classes.length === 1) i = 0;
    if (i < 0) {
      const key =
        label.name !== undefined
          ? `'${label.name}'`
          : label.id !== undefined
            ? `id ${label.id}`
            : '(no class)';
      const u = this.unknown.get(key) ?? { count: 0, files: new Set<string>() };
      u.count++;
      u.files.add(file);
      this.unknown.set(key, u);
    }
    return i;
  }

  check(): void {
    if (this.unknown.size === 0) return;
    const list = [...this.unknown]
      .map(
        ([k, u]) =>
          `${k} (${u.count} in ${[...u.files].slice(0, 2).join(', ')}${u.files.size > 2 ? ', ...' : ''})`,
      )
      .join(', ');
    const known = this.classes.map((c) => `${c.id} '${c.name}'`).join(', ');
    throw new EvalError(
      `unknown classes ${list}; the predictions' classes are ${known} (classes are matched by name, else by id)`,
    );
  }
}

/** Truth COCO categories give names to the ids the truth objects use. */
function nameTruthLabels(truth: TruthSource, objects: readonly RawObject[]): RawObject[] {
  const classes = truth.classes;
  if (!classes) return [...objects];
  return objects.map((o) => {
    if (o.label.name !== undefined || o.label.id === undefined) return o;
    const c = classes.find((k) => k.id === o.label.id);
    return c ? { ...o, label: { id: c.id, name: c.name } } : o;
  });
}

/** Predictions' COCO categories likewise. */
function namePredictionLabels(p: PredictedScene, objects: readonly RawObject[]): RawObject[] {
  const classes = p.classes;
  if (!classes) return [...objects];
  return objects.map((o) => {
    if (o.label.name !== undefined || o.label.id === undefined) return o;
    const c = classes.find((k) => k.id === o.label.id);
    return c ? { ...o, label: { id: c.id, name: c.name } } : o;
  });
}

function sameClasses(a: readonly EvalClass[], b: readonly EvalClass[]): boolean {
  return a.length === b.length && a.every((c, i) => c.id === b[i]!.id && c.name === b[i]!.name);
}

const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 1e6) / 1e6);

/** Scores predictions against truth and writes the results (see the module comment). */
export async function evaluate(storage: Storage, options: EvalOptions): Promise<EvalReport> {
  const started = performance.now();
  const { signal } = options;
  const predictionsText =
    typeof options.predictions === 'string' ? options.predictions : options.predictions.join(', ');
  const truthText = typeof options.truth === 'string' ? options.truth : options.truth.join(', ');
  const classField = options.classField ?? 'class';
  const readOpts = {
    ...(signal ? { signal } : {}),
    classField,
    ...(options.truthCrs ? { truthCrs: options.truthCrs } : {}),
    ...(options.truthLayer !== undefined ? { truthLayer: options.truthLayer } : {}),
  };
  const predictions = await readPredictions(storage, options.predictions, readOpts);
  const truths = await readTruth(storage, options.truth, readOpts);
  const tasks = new Set(predictions.map((p) => p.task));
  if (tasks.size > 1)
    throw new EvalError(
      `predictions ${predictionsText}: mixes detection and segmentation scenes; evaluate one task at a time`,
    );
  const task: EvalTask = predictions[0]?.task ?? 'detection';
  const kind = truths[0]!.kind;
  if (task === 'detection' && kind === 'mask') {
    throw new EvalError(
      `truth ${truthText}: class masks score segmentation, but the predictions ${predictionsText} are detections; give box or polygon truth (COCO shards or geo-labels)`,
    );
  }
  if (task === 'segmentation' && kind === 'coco') {
    const boxes = truths.filter((t) => !t.hasPolygons && (t.objects?.length ?? 0) > 0);
    if (boxes.length > 0) {
      throw new EvalError(
        `truth ${boxes[0]!.uri}: box truth (annotations without segmentation polygons) cannot score segmentation predictions ${predictionsText}; give class masks, geo-label polygons or COCO with polygons`,
      );
    }
  }

  // scene pairs: by id; one geo-labels file ('*') serves every scene
  const byId = new Map(truths.map((t) => [t.id, t]));
  const everyScene = truths.length === 1 && truths[0]!.id === '*' ? truths[0]! : undefined;
  const imageGrids = new Map<string, string>();
  if (options.images !== undefined) {
    const images = options.images;
    const stat =
      typeof images === 'string' ? await storage.stat(images, signal ? { signal } : {}) : undefined;
    const files =
      typeof images !== 'string' ? images : stat ? [images] : await listFolder(storage, images, signal);
    for (const f of files.filter((u) => /\.tiff?$/i.test(u))) imageGrids.set(stemOf(f), f);
  }
  const gridFor = async (id: string, ...candidates: (SceneGrid | null)[]): Promise<SceneGrid | null> => {
    const known = candidates.filter((g): g is SceneGrid => g !== null);
    const georef = known.find((g) => g.geotransform !== null);
    if (georef) return georef;
    const image = imageGrids.get(id);
    if (image !== undefined) return rasterGrid(storage, image, signal);
    return known[0] ?? null;
  };
  const pairs: ScenePair[] = [];
  const predictionsWithoutTruth: string[] = [];
  const truthWithoutPredictions: string[] = [];
  const truthNotPredicted: string[] = [];
  for (const p of predictions) {
    const t = everyScene ?? byId.get(p.id);
    if (!t) {
      predictionsWithoutTruth.push(p.id);
      continue;
    }
    const grid = await gridFor(p.id, p.grid, t.grid);
    if (!grid) {
      throw new EvalError(
        `scene '${p.id}': neither ${p.uri} nor ${t.uri} gives the scene's pixel grid (both GeoJSON); pass the scene rasters with --images`,
      );
    }
    for (const other of [p.grid, t.grid]) {
      const diff = other ? sameGrid(grid, other) : undefined;
      if (diff !== undefined) {
        throw new EvalError(
          `scene '${p.id}': the predictions ${p.uri} and the truth ${t.uri} are on different grids (${diff}); they must describe the same scene`,
        );
      }
    }
    pairs.push({ id: p.id, prediction: p, truth: t, grid });
  }
  if (!everyScene) {
    const predicted = new Set(predictions.map((p) => p.id));
    for (const t of truths) {
      if (predicted.has(t.id)) continue;
      if (options.scenes === 'predicted') {
        truthNotPredicted.push(t.id);
        continue;
      }
      truthWithoutPredictions.push(t.id);
      const grid = await gridFor(t.id, t.grid);
      if (!grid) {
        throw new EvalError(
          `scene '${t.id}': truth ${t.uri} has no predictions and no pixel grid to place it on; pass the scene rasters with --images`,
        );
      }
      pairs.push({ id: t.id, prediction: null, truth: t, grid });
    }
  }
  if (!pairs.some((p) => p.prediction !== null)) {
    throw new EvalError(
      `no scene has both predictions and truth: predictions ${predictions.map((p) => p.id).join(', ') || 'none'}; truth ${truths.map((t) => t.id).join(', ')} (scenes are matched by file stem / predict.json id)`,
    );
  }
  pairs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // classes: the predictions' (the model's); plain GeoJSON predictions take the truth's
  const declared = predictions.find((p) => p.classes)?.classes ?? undefined;
  for (const p of predictions) {
    if (p.classes && declared && !sameClasses(p.classes, declared)) {
      throw new EvalError(
        `predictions ${p.uri}: classes ${JSON.stringify(p.classes)} differ from ${JSON.stringify(declared)} of the other scenes; evaluate predictions of one model at a time`,
      );
    }
  }
  // place everything on the grids first (plain GeoJSON on both sides only names its classes)
  const placedPairs: {
    pair: ScenePair;
    predObjects: RawObject[];
    truthObjects: RawObject[];
    outside: number;
  }[] = [];
  const geoTruthPlaced = new Map<string, { features: number; placed: number; scenes: string[] }>();
  for (const pair of pairs) {
    signal?.throwIfAborted();
    const { prediction: p, truth: t, grid } = pair;
    let predObjects: RawObject[] = [];
    if (p?.objects) predObjects = namePredictionLabels(p, p.objects);
    else if (p?.geo) predObjects = placeOnGrid(p.geo, grid, 'class', 'predictions').objects;
    let truthObjects: RawObject[] = [];
    let outside = 0;
    if (t.objects) truthObjects = nameTruthLabels(t, t.objects);
    else if (t.geo) {
      const placed = placeOnGrid(t.geo, grid, classField, 'truth');
      truthObjects = placed.objects;
      outside = placed.outside;
      const g = geoTruthPlaced.get(t.uri) ?? {
        features: t.geo.features.length - placed.unsupported,
        placed: 0,
        scenes: [],
      };
      g.placed += placed.objects.length;
      g.scenes.push(`'${pair.id}' ${footprintText(grid)}`);
      geoTruthPlaced.set(t.uri, g);
    }
    placedPairs.push({ pair, predObjects, truthObjects, outside });
  }
  for (const [uri, g] of geoTruthPlaced) {
    if (g.features > 0 && g.placed === 0) {
      const crs = truths.find((t) => t.uri === uri)?.geo?.crs.text ?? 'CRS84';
      throw new EvalError(
        `truth ${uri}: none of its ${g.features} polygons lies on the scene(s) ${g.scenes.slice(0, 3).join('; ')}: read as ${crs}, they are outside the footprint (another CRS? say it in the GeoJSON 'crs' member or with --truth-crs)`,
      );
    }
  }

  // classes: the predictions' (the model's), else the truth's categories, else the names used
  let classes: readonly EvalClass[] | undefined = declared;
  if (!classes) classes = truths.find((t) => t.classes)?.classes ?? undefined;
  if (!classes) {
    const seen = new Map<string, number | undefined>();
    for (const { predObjects, truthObjects } of placedPairs) {
      for (const o of [...predObjects, ...truthObjects]) {
        const name = o.label.name ?? (o.label.id !== undefined ? String(o.label.id) : undefined);
        if (name !== undefined && !seen.has(name)) seen.set(name, o.label.id);
      }
    }
    const names = [...seen.keys()].sort();
    const ids = names.map((n) => seen.get(n));
    const useIds = ids.every((id) => id !== undefined) && new Set(ids).size === ids.length;
    classes = names.map((name, i) => ({ id: useIds ? ids[i]! : i + 1, name }));
    if (classes.length === 0) classes = [{ id: 1, name: 'object' }];
  }
  const table = new ClassTable(classes);
  // predicted classes the truth does not know (when the truth lists its categories)
  const truthNames = new Set(truths.flatMap((t) => (t.classes ?? []).map((c) => c.name)));
  const lacking = new Map<string, number>();
  interface Prepared {
    readonly pair: ScenePair;
    readonly predicted: { obj: RawObject; label: number }[];
    readonly truth: { obj: RawObject; label: number }[];
    readonly outside: number;
  }
  const prepared: Prepared[] = [];
  for (const { pair, predObjects, truthObjects, outside } of placedPairs) {
    const { prediction: p, truth: t } = pair;
    const predicted = predObjects.map((obj) => ({ obj, label: table.resolve(obj.label, p!.uri) }));
    if (truthNames.size > 0) {
      for (const { label } of predicted) {
        const name = label >= 0 ? classes[label]!.name : undefined;
        if (name !== undefined && !truthNames.has(name)) lacking.set(name, (lacking.get(name) ?? 0) + 1);
      }
    }
    const truth = truthObjects.map((obj) => ({ obj, label: table.resolve(obj.label, t.uri) }));
    prepared.push({ pair, predicted, truth, outside });
  }
  table.check();
  if (lacking.size > 0) {
    const list = [...lacking].map(([n, c]) => `'${n}' (${c} predicted)`).join(', ');
    throw new EvalError(
      `unknown classes: the predictions' classes ${list} are not among the truth's categories (${[...truthNames].slice(0, 12).join(', ')}${truthNames.size > 12 ? ', ...' : ''}) of ${truthText}; classes are matched by name`,
    );
  }

  const errors: ErrorRecord[] = [];
  const noGeoref: string[] = [];
  const perScene: Record<string, SceneReport> = {};
  const K = classes.length;
  const names = classes.map((c) => c.name);
  const allAcc = names.map(() => new ClassAccumulator());
  const allCounts = names.map(() => [0, 0, 0]);
  const allSpace = names.map(() => [0, 0, 0]);
  let spacenetAvailable = true;
  let confusion: Confusion | undefined;
  let done = 0;
  for (const { pair, predicted, truth, outside } of prepared) {
    signal?.throwIfAborted();
    const { id, prediction: p, truth: t, grid } = pair;
    const toCrs84 = pixelsToCrs84(grid);
    if (!toCrs84) noGeoref.push(id);
    const scene: Record<string, unknown> = {
      predictions: p?.uri ?? null,
      truth: t.uri,
      width: grid.width,
      height: grid.height,
    };
    if (t.geo) scene.truthOutside = outside;
    // SpaceNet F1: polygons (boxes for detections without polygons), one to one at IoU >= 0.5
    const polyPred = predicted.filter((o) => o.label >= 0);
    const polyTruth = truth.filter((o) => o.label >= 0);
    const hasTruthPolygons = t.kind !== 'mask';
    const hasPredPolygons = task === 'detection' || p === null || p.geo !== null;
    if (hasTruthPolygons && hasPredPolygons) {
      const perClass: Record<string, Counts> = {};
      const sums = [0, 0, 0];
      for (let k = 0; k < K; k++) {
        const ps: Shape[] = polyPred
          .filter((o) => o.label === k)
          .map((o) => ({
            polygons: o.obj.polygons ?? [boxPolygon(o.obj.box)],
            label: k,
            score: o.obj.score,
          }));
        const ts: Shape[] = polyTruth
          .filter((o) => o.label === k)
          .map((o) => ({ polygons: o.obj.polygons ?? [boxPolygon(o.obj.box)], label: k, score: 1 }));
        const m = matchPolygons(ps, ts, 0.5);
        const tp = m.truthMatches.filter((x) => x >= 0).length;
        const c = [tp, ps.length - tp, ts.length - tp] as const;
        perClass[names[k]!] = roundCounts(countsOf(...c));
        c.forEach((v, i) => {
          sums[i]! += v;
          allSpace[k]![i]! += v;
        });
        if (task === 'segmentation') {
          ps.forEach((s, i) => {
            if (m.predictionMatches[i]! < 0)
              errors.push({
                scene: id,
                kind: 'fp',
                cls: names[k]!,
                score: s.score,
                iou: m.bestIouOfPrediction[i]!,
                polygons: s.polygons,
                toCrs84,
              });
          });
          ts.forEach((s, i) => {
            if (m.truthMatches[i]! < 0)
              errors.push({
                scene: id,
                kind: 'fn',
                cls: names[k]!,
                score: null,
                iou: m.bestIouOfTruth[i]!,
                polygons: s.polygons,
                toCrs84,
              });
          });
        }
      }
      scene.spacenet = { ...roundCounts(countsOf(sums[0]!, sums[1]!, sums[2]!)), perClass };
    } else {
      scene.spacenet = null;
      spacenetAvailable = false;
    }
    if (task === 'detection') {
      const perClass: Record<string, DetectionScores> = {};
      const sums = [0, 0, 0];
      const aps: { ap50: number | null; ap: number | null }[] = [];
      for (let k = 0; k < K; k++) {
        const dets: ScoredBox[] = predicted
          .filter((o) => o.label === k)
          .map((o) => ({ box: o.obj.box, score: o.obj.score, label: k }));
        const gts = truth
          .filter((o) => o.label === k)
          .map((o) => ({ box: o.obj.box, label: k, polygons: o.obj.polygons }));
        const m = matchImageClass(dets, gts, IOU_THRESHOLDS);
        const acc = new ClassAccumulator();
        acc.add(
          dets,
          options.maxDets === undefined ? m : matchImageClass(dets, gts, IOU_THRESHOLDS, options.maxDets),
          gts.length,
        );
        allAcc[k]!.merge(acc);
        const at50 = IOU_THRESHOLDS.indexOf(0.5);
        const tp = m.matches[at50]!.filter((x) => x >= 0).length;
        const c = [tp, dets.length - tp, gts.length - tp] as const;
        c.forEach((v, i) => {
          sums[i]! += v;
          allCounts[k]![i]! += v;
        });
        const s = acc.scores50And5095();
        aps.push(s);
        perClass[names[k]!] = {
          ...roundCounts(countsOf(...c)),
          truth: gts.length,
          predicted: dets.length,
          ap50: round(s.ap50),
          ap: round(s.ap),
        };
        m.order.forEach((d, pos) => {
          if (m.matches[at50]![pos]! < 0)
            errors.push({
              scene: id,
              kind: 'fp',
              cls: names[k]!,
              score: dets[d]!.score,
              iou: m.bestIouOfDetection[d]!,
              polygons: [boxPolygon(dets[d]!.box)],
              toCrs84,
            });
        });
        gts.forEach((g, i) => {
          if (m.truthMatches[at50]![i]! < 0)
            errors.push({
              scene: id,
              kind: 'fn',
              cls: names[k]!,
              score: null,
              iou: m.bestIouOfTruth[i]!,
              polygons: g.polygons ?? [boxPolygon(g.box)],
              toCrs84,
            });
        });
      }
      scene.detection = {
        ...roundCounts(countsOf(sums[0]!, sums[1]!, sums[2]!)),
        truth: truth.length,
        predicted: predicted.length,
        ap50: round(meanOf(aps.map((a) => a.ap50))),
        ap: round(meanOf(aps.map((a) => a.ap))),
        perClass,
      };
    } else {
      // segmentation: the class raster against the truth raster, by bands of rows
      // a scene without predictions is all background: every truth pixel a false negative
      const predRows =
        p === null || p.classRaster === null
          ? shapeRows([], grid.width, grid.height)
          : await rasterRows(storage, p.classRaster, signal);
      let truthRows;
      if (t.mask !== null) truthRows = await rasterRows(storage, t.mask, signal);
      else {
        const shapes: BurnShape[] = truth
          .filter((o) => o.label >= 0 && o.obj.polygons)
          .map((o) => ({
            rings: o.obj.polygons!.flatMap((poly) => poly.map((r) => r.flat())),
            value: classes[o.label]!.id,
          }));
        truthRows = shapeRows(shapes, grid.width, grid.height);
      }
      try {
        const c = await confusionOf(
          predRows,
          truthRows,
          grid,
          classes,
          { predicted: p?.classRaster ?? '(no predictions)', truth: t.uri },
          signal ? { signal } : {},
        );
        confusion = confusion ? addConfusion(confusion, c) : c;
        scene.segmentation = segmentationScores(c, names);
      } finally {
        await predRows.close();
        await truthRows.close();
      }
    }
    perScene[id] = scene as unknown as SceneReport;
    options.onProgress?.(++done, prepared.length);
  }

  const overall: Record<string, unknown> = {};
  if (task === 'detection') {
    const perClass: Record<string, DetectionScores> = {};
    const sums = [0, 0, 0];
    const aps = allAcc.map((acc, k) => {
      const s = acc.scores50And5095();
      const c = allCounts[k]!;
      c.forEach((v, i) => (sums[i]! += v));
      perClass[names[k]!] = {
        ...roundCounts(countsOf(c[0]!, c[1]!, c[2]!)),
        truth: acc.truth,
        predicted: c[0]! + c[1]!,
        ap50: round(s.ap50),
        ap: round(s.ap),
      };
      return s;
    });
    overall.detection = {
      ...roundCounts(countsOf(sums[0]!, sums[1]!, sums[2]!)),
      truth: sums[0]! + sums[2]!,
      predicted: sums[0]! + sums[1]!,
      ap50: round(meanOf(aps.map((a) => a.ap50))),
      ap: round(meanOf(aps.map((a) => a.ap))),
      perClass,
    };
  } else if (confusion) overall.segmentation = segmentationScores(confusion, names);
  if (spacenetAvailable) {
    const perClass: Record<string, Counts> = {};
    const sums = [0, 0, 0];
    allSpace.forEach((c, k) => {
      perClass[names[k]!] = roundCounts(countsOf(c[0]!, c[1]!, c[2]!));
      c.forEach((v, i) => (sums[i]! += v));
    });
    overall.spacenet = { ...roundCounts(countsOf(sums[0]!, sums[1]!, sums[2]!)), perClass };
  } else overall.spacenet = null;

  const prCurves: Record<string, { recall: number[]; precision: number[] }> = {};
  if (task === 'detection') {
    allAcc.forEach((acc, k) => {
      const p = acc.precisionAtRecall(IOU_THRESHOLDS.indexOf(0.5));
      if (p) prCurves[names[k]!] = { recall: [...RECALL_POINTS], precision: p.map((v) => round(v)!) };
    });
  }

  // outputs: picture, errors, summary, eval.json last
  const out = options.out;
  const uris: Record<string, string> = {
    errors: joinUri(out, 'errors.geojson'),
    picture: joinUri(out, task === 'detection' ? 'pr-curves.png' : 'confusion.png'),
    summary: joinUri(out, 'eval.md'),
    report: joinUri(out, 'eval.json'),
  };
  const report: EvalReport = {
    format: 'geobatch-eval',
    version: 1,
    task,
    predictions: predictionsText,
    truth: { uri: truthText, kind },
    iouThreshold: 0.5,
    apIouThresholds: IOU_THRESHOLDS,
    maxDets: options.maxDets ?? null,
    scored: predictions.some((p) => p.scored),
    classes,
    scenes: {
      evaluated: pairs.map((p) => p.id),
      predictionsWithoutTruth: predictionsWithoutTruth.sort(),
      truthWithoutPredictions: truthWithoutPredictions.sort(),
      truthNotPredicted: truthNotPredicted.sort(),
    },
    overall: overall as EvalReport['overall'],
    perScene,
    ...(task === 'detection' ? { prCurves } : {}),
    ...(confusion ? { confusion } : {}),
    errors: { features: errors.filter((e) => e.toCrs84).length, scenesWithoutGeoreference: noGeoref },
    outputs: uris,
    seconds: 0,
  };
  const io = signal ? { signal } : {};
  const png = task === 'detection' ? await prCurvesPng(report) : await confusionPng(report);
  await storage.writeAtomic(uris.picture!, png, { ...io, contentType: 'image/png' });
  await storage.writeAtomic(uris.errors!, errorsGeojson(errors), {
    ...io,
    contentType: 'application/geo+json',
  });
  const final: EvalReport = { ...report, seconds: Math.round((performance.now() - started) / 10) / 100 };
  await storage.writeAtomic(uris.summary!, evalMarkdown(final), { ...io, contentType: 'text/markdown' });
  await storage.writeAtomic(uris.report!, JSON.stringify(final, null, 2) + '\n', {
    ...io,
    contentType: 'application/json',
  });
  return final;
}

function roundCounts(c: Counts): Counts {
  return { ...c, precision: round(c.precision), recall: round(c.recall), f1: round(c.f1) };
}

function segmentationScores(
  c: Confusion,
  names: readonly string[],
): NonNullable<SceneReport['segmentation']> {
  const perClass: Record<string, SegmentationScores> = {};
  names.forEach((n, k) => {
    const s = pixelScores(c, k + 1);
    perClass[n] = { ...roundCounts(s), iou: round(s.iou) };
  });
  const total = c.counts.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  const diagonal = c.counts.reduce((s, row, i) => s + row[i]!, 0);
  return {
    meanIou: round(meanOf(Object.values(perClass).map((s) => s.iou))),
    pixelAccuracy: round(total > 0 ? diagonal / total : null),
    nodataPixels: c.nodataPixels,
    perClass,
  };
}

/** errors.geojson: each FP and FN of a georeferenced scene as a CRS84 polygon. */
function errorsGeojson(errors: readonly ErrorRecord[]): string {
  const lines = errors
    .filter((e) => e.toCrs84)
    .map((e) =>
      JSON.stringify({
        type: 'Feature',
        properties: { kind: e.kind, class: e.cls, score: e.score, iou: round(e.iou), scene: e.scene },
        geometry: {
          type: e.polygons.length === 1 ? 'Polygon' : 'MultiPolygon',
          coordinates: (() => {
            const polys = e.polygons.map((p) =>
              p.map((r) => {
                const ring = r.map(([x, y]) => e.toCrs84!(x, y));
                return [...ring, ring[0]!];
              }),
            );
            return polys.length === 1 ? polys[0] : polys;
          })(),
        },
      }),
    );
  return `{"type":"FeatureCollection","features":[${lines.length ? `\n${lines.join(',\n')}\n` : ''}]}\n`;
}
