/**
 * Reading what eval compares: predictions (a predict output folder of `<scene>.predict.json`
 * and the files each names, or plain COCO files / GeoJSON whose objects all score 1) and truth
 * (COCO shards `<scene>.json` as the labels stages write them, geo-labels GeoJSON in any CRS,
 * or class masks `<scene>.tif` as the mask stage writes them). Scenes are keyed by id: the
 * predict.json's `id`, else the file's stem.
 */
import type { GeoTransform } from '../geo/affine.js';
import { CrsError } from '../geo/crs.js';
import type { CrsRef } from '../geo/crs.js';
import { readLabelFeatures } from '../labels/geo-labels.js';
import type { GeoFeature } from '../labels/geo-labels.js';
import { LabelError } from '../labels/errors.js';
import type { Polygon } from '../labels/geometry.js';
import { openRaster } from '../raster/reader.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, joinUri } from '../storage/uri.js';
import { EvalError } from './errors.js';
import type { Box } from './matching.js';

/** A class as a source names it: by name, by id or both. */
export interface RawLabel {
  readonly id?: number;
  readonly name?: string;
}

/** A class of the evaluation: the COCO category id and name. */
export interface EvalClass {
  readonly id: number;
  readonly name: string;
}

/** An object in scene pixels as read from a file, before its class is resolved. */
export interface RawObject {
  readonly box: Box;
  /** Polygons (outer ring then holes) in scene pixels, when the source has them. */
  readonly polygons: Polygon[] | null;
  readonly score: number;
  readonly label: RawLabel;
}

/** A scene's pixel grid and where it is on the ground. */
export interface SceneGrid {
  readonly width: number;
  readonly height: number;
  readonly epsg: number | null;
  readonly geotransform: GeoTransform | null;
}

/** The tasks eval scores (classification predictions are refused). */
export type EvalTask = 'detection' | 'segmentation';

/** One scene's predictions. */
export interface PredictedScene {
  readonly id: string;
  /** The file that stands for the scene (its predict.json, or the plain file). */
  readonly uri: string;
  readonly task: EvalTask;
  readonly grid: SceneGrid | null;
  /** The classes the predictions declare (the model's, or the COCO file's categories). */
  readonly classes: readonly EvalClass[] | null;
  /** Detections, or the polygons of a segmentation (score 1); null when the scene has none to read. */
  readonly objects: readonly RawObject[] | null;
  /** Where objects in map coordinates still have to be placed on the grid (plain GeoJSON). */
  readonly geo: GeoSource | null;
  /** The class raster of a segmentation (values = category ids, 0 background, 255 no data). */
  readonly classRaster: string | null;
  /** Whether scores came from the file (false: plain files, every score 1). */
  readonly scored: boolean;
}

/** GeoJSON features in some CRS, to be placed on a scene's grid. */
export interface GeoSource {
  readonly uri: string;
  readonly crs: CrsRef;
  readonly features: readonly GeoFeature[];
}

/** One scene's truth (or, for a single geo-labels file, the truth of every scene). */
export interface TruthSource {
  readonly id: string;
  readonly uri: string;
  readonly kind: 'coco' | 'geo-labels' | 'mask';
  readonly grid: SceneGrid | null;
  readonly classes: readonly EvalClass[] | null;
  /** COCO: the annotations (polygons when the shard has segmentation). */
  readonly objects: readonly RawObject[] | null;
  /** COCO: whether every annotation has a polygon (truth usable for segmentation). */
  readonly hasPolygons: boolean;
  readonly geo: GeoSource | null;
  /** Mask: the raster. */
  readonly mask: string | null;
}

/** Options of {@link readPredictions} and {@link readTruth}. */
export interface ReadOptions {
  readonly signal?: AbortSignal;
  /** Property of geo-label features naming the class. @default 'class' */
  readonly classField?: string;
  /** CRS of GeoJSON that does not say (over its `crs` member). @default CRS84 */
  readonly truthCrs?: CrsRef;
  /** GeoPackage table (or shapefile in a .zip) of geo-label truth; needed when the file has several. */
  readonly truthLayer?: string;
}

/** Whether `uri` is a file (else it is treated as a folder). */
async function isFile(storage: Storage, uri: string, signal?: AbortSignal): Promise<boolean> {
  return (await storage.stat(uri, signal ? { signal } : {})) !== undefined;
}

/** Files directly in folder `uri` (not in sub-folders), sorted. */
export async function listFolder(storage: Storage, uri: string, signal?: AbortSignal): Promise<string[]> {
  const prefix = uri.endsWith('/') ? uri : `${uri}/`;
  const out: string[] = [];
  for await (const o of storage.list(prefix, signal ? { signal } : {})) {
    if (!o.uri.slice(prefix.length).includes('/')) out.push(o.uri);
  }
  return out.sort();
}

/** The files `uri` names: itself, the files of the folder, or a list of files; an EvalError when there are none. */
async function filesOf(
  storage: Storage,
  uri: string | readonly string[],
  what: string,
  signal?: AbortSignal,
): Promise<string[]> {
  if (typeof uri !== 'string') {
    for (const f of uri) {
      if (!(await isFile(storage, f, signal))) throw new EvalError(`${what} ${f}: no such file`);
    }
    if (uri.length === 0) throw new EvalError(`${what}: no files given`);
    return [...uri];
  }
  if (await isFile(storage, uri, signal)) return [uri];
  const files = await listFolder(storage, uri, signal);
  if (files.length === 0)
    throw new EvalError(`${what} ${uri}: no such file or folder (or the folder is empty)`);
  return files;
}

/** A file's stem: its name without `.predict.json`, `.coco.json`, `.json`, `.geojson`, `.tif` or a vector labels extension. */
export function stemOf(uri: string): string {
  return basenameUri(uri).replace(
    /(\.predict\.json|\.coco\.json|\.json|\.geojson|\.tiff?|\.shp\.zip|\.shp|\.zip|\.gpkg|\.fgb)$/i,
    '',
  );
}

/** Geo-label truth files besides GeoJSON: Shapefile, zipped Shapefile, GeoPackage, FlatGeobuf. */
const VECTOR_LABELS = /\.(shp|zip|gpkg|fgb)$/i;

async function readJson(storage: Storage, uri: string, what: string, signal?: AbortSignal): Promise<unknown> {
  const text = (await storage.read(uri, signal ? { signal } : {})).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new EvalError(`${what} ${uri}: not JSON (${(error as Error).message})`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Classes of a `classes` / `categories` list: `{ id, name }` objects. */
function classList(value: unknown, where: string): EvalClass[] {
  if (!Array.isArray(value))
    throw new EvalError(
      `${where}: expected an array of { id, name } but got ${JSON.stringify(value)?.slice(0, 60)}`,
    );
  return value.map((c, i) => {
    if (!isRecord(c) || !Number.isInteger(c.id) || typeof c.name !== 'string' || c.name === '') {
      throw new EvalError(
        `${where}[${i}]: expected { id: integer, name: string } but got ${JSON.stringify(c)?.slice(0, 60)}`,
      );
    }
    return { id: c.id as number, name: c.name };
  });
}

/** A COCO file of one image: its image, categories and annotations as raw objects (score 1 when absent). */
export function parseCoco(
  value: unknown,
  uri: string,
  what: string,
): {
  image: { width: number; height: number };
  classes: EvalClass[];
  objects: RawObject[];
  hasPolygons: boolean;
  scored: boolean;
} {
  if (!isRecord(value) || !Array.isArray(value.images) || !Array.isArray(value.annotations)) {
    throw new EvalError(
      `${what} ${uri}: not a COCO file (expected 'images', 'annotations' and 'categories' arrays)`,
    );
  }
  if (value.images.length !== 1) {
    throw new EvalError(
      `${what} ${uri}: 'images' has ${value.images.length} entries; expected one image per file (a COCO shard per scene, as the labels stages and predict write them)`,
    );
  }
  const img = value.images[0] as Record<string, unknown>;
  if (!isRecord(img) || !Number.isInteger(img.width) || !Number.isInteger(img.height)) {
    throw new EvalError(`${what} ${uri}: images[0] needs integer 'width' and 'height'`);
  }
  const classes = classList(value.categories ?? [], `${what} ${uri}: categories`);
  let hasPolygons = value.annotations.length > 0;
  let scored = false;
  const objects = value.annotations.map((a: unknown, i: number): RawObject => {
    const where = `${what} ${uri}: annotations[${i}]`;
    if (!isRecord(a)) throw new EvalError(`${where}: expected an object`);
    const b = a.bbox;
    if (
      !Array.isArray(b) ||
      b.length !== 4 ||
      !b.every(finite) ||
      !((b[2] as number) > 0) ||
      !((b[3] as number) > 0)
    ) {
      throw new EvalError(
        `${where}.bbox: expected [x, y, width, height] with width, height > 0 but got ${JSON.stringify(b)}`,
      );
    }
    if (!Number.isInteger(a.category_id)) {
      throw new EvalError(
        `${where}.category_id: expected an integer but got ${JSON.stringify(a.category_id)}`,
      );
    }
    let score = 1;
    if (a.score !== undefined) {
      if (!finite(a.score))
        throw new EvalError(`${where}.score: expected a number but got ${JSON.stringify(a.score)}`);
      score = a.score;
      scored = true;
    }
    let polygons: Polygon[] | null = null;
    const seg = a.segmentation;
    if (
      Array.isArray(seg) &&
      seg.length > 0 &&
      seg.every((s) => Array.isArray(s) && s.length >= 6 && s.every(finite))
    ) {
      polygons = (seg as number[][]).map((flat) => [
        Array.from({ length: flat.length >> 1 }, (_, k): [number, number] => [
          flat[2 * k]!,
          flat[2 * k + 1]!,
        ]),
      ]);
    } else hasPolygons = false;
    const [x, y, w, h] = b as number[];
    return { box: [x!, y!, x! + w!, y! + h!], polygons, score, label: { id: a.category_id as number } };
  });
  return {
    image: { width: img.width as number, height: img.height as number },
    classes,
    objects,
    hasPolygons,
    scored,
  };
}

/** Geo-labels (GeoJSON or another vector format) read as raw features (placed on a grid later); the CRS is `override`, else the file's. */
async function readGeoSource(
  storage: Storage,
  uri: string,
  what: string,
  signal: AbortSignal | undefined,
  override?: CrsRef,
  layer?: string,
): Promise<GeoSource> {
  try {
    const read = await readLabelFeatures(storage, uri, {
      ...(signal ? { signal } : {}),
      ...(override ? { crs: override } : {}),
      ...(layer !== undefined ? { layer } : {}),
      layerOption: '--truth-layer (truthLayer: in a pipeline)',
    });
    return { uri, crs: read.crs, features: read.features };
  } catch (error) {
    if (error instanceof LabelError || error instanceof CrsError)
      throw new EvalError(`${what}: ${error.message}`);
    throw error;
  }
}

const TASKS = new Set(['detection', 'segmentation', 'classification']);

/** Reads one `<scene>.predict.json` and the files it names. */
async function readPredictJson(storage: Storage, uri: string, signal?: AbortSignal): Promise<PredictedScene> {
  const where = `predictions ${uri}`;
  const doc = await readJson(storage, uri, 'predictions', signal);
  if (!isRecord(doc) || doc.format !== 'geobatch-predictions') {
    throw new EvalError(
      `${where}: 'format' is ${JSON.stringify(isRecord(doc) ? doc.format : doc)}; expected 'geobatch-predictions' (a file written by geobatch predict)`,
    );
  }
  if (doc.version !== 1)
    throw new EvalError(
      `${where}: 'version' is ${JSON.stringify(doc.version)}; this geobatch reads version 1`,
    );
  if (typeof doc.task !== 'string' || !TASKS.has(doc.task)) {
    throw new EvalError(
      `${where}: 'task' is ${JSON.stringify(doc.task)}; expected detection, segmentation or classification`,
    );
  }
  if (doc.task === 'classification') {
    throw new EvalError(
      `${where}: classification predictions cannot be scored against object or mask truth; eval scores detection and segmentation predictions`,
    );
  }
  if (!Number.isInteger(doc.width) || !Number.isInteger(doc.height)) {
    throw new EvalError(`${where}: 'width' and 'height' must be integers`);
  }
  const gt = doc.geotransform;
  const geotransform =
    Array.isArray(gt) && gt.length === 6 && gt.every(finite) ? (gt as unknown as GeoTransform) : null;
  const epsg = Number.isInteger(doc.epsg) ? (doc.epsg as number) : null;
  const grid: SceneGrid = { width: doc.width as number, height: doc.height as number, epsg, geotransform };
  const classes = classList(doc.classes, `${where}: classes`);
  const outputs = isRecord(doc.outputs)
    ? Object.values(doc.outputs).filter((v): v is string => typeof v === 'string')
    : [];
  const dir = uri.slice(0, uri.length - basenameUri(uri).length);
  const named = (suffix: string, not?: string): string | undefined => {
    const name = outputs.find((o) => o.endsWith(suffix) && (not === undefined || !o.endsWith(not)));
    return name === undefined ? undefined : joinUri(dir, name);
  };
  const id = typeof doc.id === 'string' && doc.id !== '' ? doc.id : stemOf(uri);
  const missing = async (file: string): Promise<never> => {
    throw new EvalError(
      `${where}: names ${basenameUri(file)} under 'outputs', which does not exist (the predictions folder is incomplete)`,
    );
  };
  if (doc.task === 'detection') {
    const coco = named('.coco.json');
    if (coco === undefined)
      throw new EvalError(
        `${where}: 'outputs' names no .coco.json file; expected the detection's COCO results`,
      );
    if (!(await isFile(storage, coco, signal))) await missing(coco);
    const parsed = parseCoco(await readJson(storage, coco, 'predictions', signal), coco, 'predictions');
    return {
      id,
      uri,
      task: 'detection',
      grid,
      classes,
      objects: parsed.objects,
      geo: null,
      classRaster: null,
      scored: true,
    };
  }
  const raster = named('.tif');
  if (raster === undefined)
    throw new EvalError(
      `${where}: 'outputs' names no .tif class raster; expected the segmentation's classes GeoTIFF`,
    );
  if (!(await isFile(storage, raster, signal))) await missing(raster);
  const geojson = named('.geojson', '.raw.geojson');
  let geo: GeoSource | null = null;
  if (geojson !== undefined && grid.geotransform !== null && grid.epsg !== null) {
    if (!(await isFile(storage, geojson, signal))) await missing(geojson);
    geo = await readGeoSource(storage, geojson, 'predictions', signal);
  }
  return {
    id,
    uri,
    task: 'segmentation',
    grid,
    classes,
    objects: null,
    geo,
    classRaster: raster,
    scored: true,
  };
}

/**
 * The predictions under `uri`: a predict output folder (every `*.predict.json`), a folder of plain
 * COCO files or GeoJSON, or one such file.
 */
export async function readPredictions(
  storage: Storage,
  uri: string | readonly string[],
  options: ReadOptions = {},
): Promise<PredictedScene[]> {
  const { signal } = options;
  const files = await filesOf(storage, uri, 'predictions', signal);
  // parts of a split scene (<scene>.part-<k>-of-<n>.*) are joined by predict; only whole scenes count
  const predict = files.filter(
    (f) => f.endsWith('.predict.json') && !/\.part-\d+-of-\d+\./.test(basenameUri(f)),
  );
  const scenes: PredictedScene[] = [];
  if (predict.length > 0) {
    for (const f of predict) scenes.push(await readPredictJson(storage, f, signal));
  } else {
    const isPart = (f: string) => /\.part-\d+-of-\d+\./.test(basenameUri(f));
    const plain = files.filter(
      (f) => /\.(geojson|json)$/i.test(f) && basenameUri(f) !== 'summary.json' && !isPart(f),
    );
    if (plain.length === 0 && files.some(isPart)) {
      throw new EvalError(
        `predictions ${uri}: only parts of split scenes (*.part-<k>-of-<n>.*) and no <scene>.predict.json: predict has not finished joining them; run it to the end first`,
      );
    }
    if (plain.length === 0) {
      throw new EvalError(
        `predictions ${uri}: no *.predict.json, COCO *.json or *.geojson files there; expected a geobatch predict output folder`,
      );
    }
    for (const f of plain) {
      if (/\.geojson$/i.test(f)) {
        const geo = await readGeoSource(storage, f, 'predictions', signal);
        scenes.push({
          id: stemOf(f),
          uri: f,
          task: 'detection',
          grid: null,
          classes: null,
          objects: null,
          geo,
          classRaster: null,
          scored: false,
        });
      } else {
        const parsed = parseCoco(await readJson(storage, f, 'predictions', signal), f, 'predictions');
        scenes.push({
          id: stemOf(f),
          uri: f,
          task: 'detection',
          grid: { ...parsed.image, epsg: null, geotransform: null },
          classes: parsed.classes,
          objects: parsed.objects,
          geo: null,
          classRaster: null,
          scored: parsed.scored,
        });
      }
    }
  }
  const seen = new Map<string, string>();
  for (const s of scenes) {
    const other = seen.get(s.id);
    if (other !== undefined)
      throw new EvalError(
        `predictions: scene '${s.id}' appears twice (${other} and ${s.uri}); expected one file per scene`,
      );
    seen.set(s.id, s.uri);
  }
  return scenes;
}

/** A raster's grid (size, EPSG code and geotransform when it has them). */
export async function rasterGrid(
  storage: Storage,
  uri: string,
  signal?: AbortSignal,
): Promise<SceneGrid & { dtype: string; bands: number }> {
  const raster = await openRaster(storage, uri, signal ? { signal } : {});
  try {
    const { width, height, geo, dtype, bands } = raster.info;
    return {
      width,
      height,
      epsg: geo?.epsg ?? null,
      geotransform: geo && !geo.rotated ? geo.geotransform : null,
      dtype,
      bands,
    };
  } finally {
    await raster.close();
  }
}

/**
 * The truth under `uri`: a folder (or one file) of COCO shards `<scene>.json`, geo-labels
 * (`*.geojson`, `.shp`, `.zip`, `.gpkg`, `.fgb`: one per scene, or one file for every scene: id
 * '*'), or masks `<scene>.tif`.
 */
export async function readTruth(
  storage: Storage,
  uri: string | readonly string[],
  options: ReadOptions = {},
): Promise<TruthSource[]> {
  const { signal } = options;
  const single = typeof uri === 'string' ? await isFile(storage, uri, signal) : uri.length === 1;
  const files = await filesOf(storage, uri, 'truth', signal);
  const coco = files.filter(
    (f) => /\.json$/i.test(f) && !/\.geojson$/i.test(f) && basenameUri(f) !== 'summary.json',
  );
  const geojson = files.filter((f) => /\.geojson$/i.test(f) || VECTOR_LABELS.test(f));
  const masks = files.filter((f) => /\.tiff?$/i.test(f));
  const kinds = [coco, geojson, masks].filter((k) => k.length > 0).length;
  if (kinds === 0)
    throw new EvalError(
      `truth ${uri}: no COCO shards (*.json), geo-labels (*.geojson, *.shp, *.zip, *.gpkg, *.fgb) or masks (*.tif) there`,
    );
  if (kinds > 1) {
    throw new EvalError(
      `truth ${uri}: holds ${coco.length} COCO shard(s), ${geojson.length} geo-labels file(s) and ${masks.length} GeoTIFF file(s); expected one kind of truth`,
    );
  }
  const out: TruthSource[] = [];
  for (const f of coco) {
    const parsed = parseCoco(await readJson(storage, f, 'truth', signal), f, 'truth');
    out.push({
      id: stemOf(f),
      uri: f,
      kind: 'coco',
      grid: { ...parsed.image, epsg: null, geotransform: null },
      classes: parsed.classes,
      objects: parsed.objects,
      hasPolygons: parsed.hasPolygons,
      geo: null,
      mask: null,
    });
  }
  for (const f of geojson) {
    // a layer names a table of a GeoPackage or zip: GeoJSON truth beside them reads without it
    const layer = VECTOR_LABELS.test(f) && !/\.(shp|fgb)$/i.test(f) ? options.truthLayer : undefined;
    const geo = await readGeoSource(storage, f, 'truth', signal, options.truthCrs, layer);
    out.push({
      id: single ? '*' : stemOf(f),
      uri: f,
      kind: 'geo-labels',
      grid: null,
      classes: null,
      objects: null,
      hasPolygons: true,
      geo,
      mask: null,
    });
  }
  for (const f of masks) {
    const grid = await rasterGrid(storage, f, signal);
    if (grid.bands !== 1 || grid.dtype !== 'uint8') {
      throw new EvalError(
        `truth ${f}: a ${grid.bands}-band ${grid.dtype} raster; expected a single-band uint8 class mask (values = category ids, 0 background), as the mask stage writes`,
      );
    }
    out.push({
      id: stemOf(f),
      uri: f,
      kind: 'mask',
      grid,
      classes: null,
      objects: null,
      hasPolygons: false,
      geo: null,
      mask: f,
    });
  }
  return out;
}
