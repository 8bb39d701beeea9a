/**
 * The layers `geobatch serve` shows, found in a run folder (local or s3://) from its plan and its
 * stages' outputs, or a single raster:
 *
 * - rasters: `rgb` stage outputs (else the plan's raw scenes), `mask` outputs and the predicted
 *   class rasters of `predict` stages (`<scene>.classes.tif`) as class layers;
 * - vectors: chip footprints (`<stage>/<scene>/chips.geojson` of `chip` and `chip-grid` stages,
 *   joined with `nodata-index.json` when there is one), geo-labels (the GeoJSON inputs named by
 *   the `labels` parameter of label and mask stages), predictions (`predict` outputs
 *   `<scene>.geojson`) and evaluation errors (`<eval>/errors.geojson`).
 *
 * Rasters are opened (header only) through the tile engine; vector files are only listed here and
 * streamed feature by feature when asked for (lib/serve/vector.ts).
 */
import type { Storage } from '../storage/types.js';
import { basenameUri, joinUri } from '../storage/uri.js';
import { readRunPlan } from '../runners/prepare.js';
import type { RunPlan } from '../runners/records.js';
import type { GraphStage } from '../pipeline/types.js';
import { openTileLayer, type TileLayer } from './tiles.js';
import { classHex } from './palette.js';
import { ServeError } from './errors.js';

/** One entry of a class legend. */
export interface LegendEntry {
  readonly value: number;
  readonly name: string;
  readonly color: string;
}

/** What a vector layer holds, which decides how the page draws it. */
export type VectorRole = 'chips' | 'labels' | 'predictions' | 'errors';

/** A raster layer, served as XYZ tiles. */
export interface RasterLayerInfo {
  readonly id: string;
  readonly type: 'raster';
  readonly title: string;
  /** The stage (or `scene` for a raw scene) the layer comes from. */
  readonly group: string;
  readonly kind: TileLayer['kind'];
  readonly uri: string;
  readonly bounds: readonly [number, number, number, number];
  readonly minZoom: number;
  readonly maxZoom: number;
  readonly legend?: readonly LegendEntry[];
}

/** A vector layer: one or more GeoJSON files streamed as one FeatureCollection. */
export interface VectorLayerInfo {
  readonly id: string;
  readonly type: 'vector';
  readonly title: string;
  readonly group: string;
  readonly role: VectorRole;
  readonly uris: readonly string[];
}

export type LayerInfo = RasterLayerInfo | VectorLayerInfo;

/** A chip folder (`annotations.json` and `chips.geojson`) of a chipping stage. */
export interface ChipFolder {
  readonly stage: string;
  readonly uri: string;
}

/** What was found: the layers, their open tile engines, and the chip folders for chip details. */
export interface ServedRun {
  readonly root: string;
  readonly runId?: string;
  readonly layers: readonly LayerInfo[];
  readonly tiles: ReadonlyMap<string, TileLayer>;
  readonly chipFolders: readonly ChipFolder[];
  /** The embeddings folder of an `embed` stage, if the run has one. */
  readonly embeddings?: string;
  close(): Promise<void>;
}

export interface DiscoverOptions {
  /** Tile cache size per raster layer. */
  readonly cacheBytes?: number;
  /** Warnings about outputs that cannot be shown (the layer is then left out). */
  readonly warn?: (message: string) => void;
  readonly signal?: AbortSignal;
}

const RASTER = /\.(tif|tiff)$/i;
const GEOJSON = /\.(geojson|json)$/i;
const CHIP_JOBS = new Set(['chip', 'chip-grid', 'retile']);
const LABEL_JOBS = new Set(['labels', 'labels-xview', 'mask']);

/** A layer id safe in a URL path segment. */
export function layerId(...parts: string[]): string {
  return parts
    .join('.')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^\.+/, '');
}

async function listFiles(storage: Storage, prefix: string, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  for await (const info of storage.list(
    prefix.endsWith('/') ? prefix : prefix + '/',
    signal ? { signal } : {},
  ))
    out.push(info.uri);
  return out.sort();
}

function relative(root: string, uri: string): string {
  const base = root.endsWith('/') ? root : root + '/';
  return uri.startsWith(base) ? uri.slice(base.length) : uri;
}

async function readJson(storage: Storage, uri: string): Promise<unknown> {
  return JSON.parse((await storage.read(uri)).toString('utf8')) as unknown;
}

function legendOf(entries: readonly { value: number; name: string }[]): LegendEntry[] {
  return entries
    .map((e) => ({ value: e.value, name: e.name, color: classHex(e.value) }))
    .filter((e): e is LegendEntry => e.color !== null)
    .sort((a, b) => a.value - b.value);
}

/** The class names a mask stage burns (`categories: {name: value}`), as a legend. */
function maskLegend(stage: GraphStage): LegendEntry[] | undefined {
  const categories = stage.params['categories'];
  if (!categories || typeof categories !== 'object') return undefined;
  const entries = Object.entries(categories as Record<string, unknown>)
    .filter((e): e is [string, number] => typeof e[1] === 'number')
    .map(([name, value]) => ({ value, name }));
  return entries.length ? legendOf(entries) : undefined;
}

/** The classes a predict stage's `<scene>.predict.json` names, as a legend. */
async function predictLegend(storage: Storage, jsonUri: string): Promise<LegendEntry[] | undefined> {
  try {
    const json = (await readJson(storage, jsonUri)) as { classes?: unknown };
    if (!Array.isArray(json.classes)) return undefined;
    const entries = (json.classes as { id?: unknown; name?: unknown }[])
      .filter((c) => typeof c.id === 'number' && typeof c.name === 'string')
      .map((c) => ({ value: c.id as number, name: c.name as string }));
    return legendOf(entries);
  } catch {
    return undefined;
  }
}

class LayerCollector {
  readonly layers: LayerInfo[] = [];
  readonly tiles = new Map<string, TileLayer>();
  readonly chipFolders: ChipFolder[] = [];
  private readonly ids = new Set<string>();

  constructor(
    private readonly storage: Storage,
    private readonly options: DiscoverOptions,
  ) {}

  private uniqueId(id: string): string {
    let out = id;
    for (let n = 2; this.ids.has(out); n++) out = `${id}-${n}`;
    this.ids.add(out);
    return out;
  }

  readonly labelInputs = new Set<string>();

  async raster(
    uri: string,
    info: {
      id: string;
      title: string;
      group: string;
      kind: 'rgb' | 'classes' | 'auto';
      legend?: LegendEntry[];
    },
    strict = false,
  ): Promise<void> {
    const id = this.uniqueId(info.id);
    let tile: TileLayer;
    try {
      tile = await openTileLayer(this.storage, uri, {
        kind: info.kind,
        id,
        ...(this.options.cacheBytes !== undefined ? { cacheBytes: this.options.cacheBytes } : {}),
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      });
    } catch (error) {
      this.ids.delete(id);
      if (strict) throw error;
      this.options.warn?.(`${uri}: not shown: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    this.tiles.set(id, tile);
    this.layers.push({
      id,
      type: 'raster',
      title: info.title,
      group: info.group,
      kind: tile.kind,
      uri,
      bounds: tile.bounds,
      minZoom: tile.minZoom,
      maxZoom: tile.maxZoom,
      ...(info.legend?.length ? { legend: info.legend } : {}),
    });
  }

  vector(info: Omit<VectorLayerInfo, 'type'>): void {
    if (info.uris.length === 0) return;
    this.layers.push({ ...info, id: this.uniqueId(info.id), type: 'vector' });
  }

  async close(): Promise<void> {
    await Promise.all([...this.tiles.values()].map((t) => t.close()));
  }
}

async function discoverStage(
  c: LayerCollector,
  storage: Storage,
  root: string,
  plan: RunPlan,
  stage: GraphStage,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  const dir = joinUri(root, stage.name);
  const files = await listFiles(storage, dir, signal);
  const top = files.filter((f) => !relative(dir, f).includes('/'));
  const name = stage.name;
  switch (stage.job) {
    case 'rgb':
      for (const f of top.filter((u) => RASTER.test(u))) {
        const scene = basenameUri(f).replace(RASTER, '');
        await c.raster(f, { id: layerId(name, scene), title: `${name}: ${scene}`, group: name, kind: 'rgb' });
      }
      return undefined;
    case 'mask': {
      const legend = maskLegend(stage);
      for (const f of top.filter((u) => RASTER.test(u))) {
        const scene = basenameUri(f).replace(RASTER, '');
        await c.raster(f, {
          id: layerId(name, scene),
          title: `${name}: ${scene}`,
          group: name,
          kind: 'classes',
          ...(legend ? { legend } : {}),
        });
      }
      break;
    }
    case 'predict':
    case 'predict-gpu': {
      for (const f of top.filter((u) => /\.classes\.tiff?$/i.test(u))) {
        const scene = basenameUri(f).replace(/\.classes\.tiff?$/i, '');
        const legend = await predictLegend(storage, joinUri(dir, `${scene}.predict.json`));
        await c.raster(f, {
          id: layerId(name, scene, 'classes'),
          title: `${name}: ${scene} classes`,
          group: name,
          kind: 'classes',
          ...(legend ? { legend } : {}),
        });
      }
      const geojson = top.filter((u) => /\.geojson$/i.test(u));
      c.vector({
        id: layerId(name),
        title: `${name}: predictions`,
        group: name,
        role: 'predictions',
        uris: geojson,
      });
      return undefined;
    }
    case 'eval': {
      const errors = top.filter((u) => basenameUri(u) === 'errors.geojson');
      c.vector({
        id: layerId(name, 'errors'),
        title: `${name}: errors`,
        group: name,
        role: 'errors',
        uris: errors,
      });
      return undefined;
    }
    case 'embed':
      return top.some((u) => basenameUri(u) === 'embed.json') ? dir : undefined;
    default:
      break;
  }
  if (CHIP_JOBS.has(stage.job)) {
    const footprints = files.filter((u) => basenameUri(u) === 'chips.geojson');
    for (const f of footprints) {
      const folder = f.slice(0, -'/chips.geojson'.length);
      c.chipFolders.push({ stage: name, uri: folder });
    }
    c.vector({
      id: layerId(name),
      title: `${name}: chip footprints`,
      group: name,
      role: 'chips',
      uris: footprints,
    });
  }
  if (LABEL_JOBS.has(stage.job)) {
    const input = stage.params['labels'];
    // the same input may feed several stages (polygons and masks): show it once
    if (typeof input === 'string' && !c.labelInputs.has(input)) {
      c.labelInputs.add(input);
      const items = plan.graph.items[input] ?? [];
      const uris = items.map((i) => i.uri).filter((u) => GEOJSON.test(u));
      c.vector({
        id: layerId('labels', input),
        title: `labels: ${input}`,
        group: 'labels',
        role: 'labels',
        uris,
      });
    }
  }
  return undefined;
}

/** Finds the layers of a run folder (a local dir or s3:// prefix with a plan.json). */
export async function discoverRun(
  storage: Storage,
  root: string,
  options: DiscoverOptions = {},
): Promise<ServedRun> {
  const plan = await readRunPlan(storage, root);
  const c = new LayerCollector(storage, options);
  let embeddings: string | undefined;
  try {
    const stages = plan.graph.stages;
    for (const stage of stages) {
      const emb = await discoverStage(c, storage, root, plan, stage, options.signal);
      embeddings ??= emb;
    }
    if (!stages.some((s) => s.job === 'rgb')) {
      // no 8-bit RGB made: show the raw scenes (stretched by the tile engine)
      const scenes = plan.graph.items['scenes'] ?? [];
      for (const item of scenes.filter((i) => RASTER.test(i.uri) || /\.jp2$/i.test(i.uri)))
        await c.raster(item.uri, {
          id: layerId('scene', item.id),
          title: `scene: ${item.id}`,
          group: 'scene',
          kind: 'rgb',
        });
    }
  } catch (error) {
    await c.close();
    throw error;
  }
  return served(root, c, plan.runId, embeddings);
}

function served(root: string, c: LayerCollector, runId?: string, embeddings?: string): ServedRun {
  return {
    root,
    ...(runId ? { runId } : {}),
    layers: c.layers,
    tiles: c.tiles,
    chipFolders: c.chipFolders,
    ...(embeddings ? { embeddings } : {}),
    close: () => c.close(),
  };
}

/** Serves one raster (a scene, a mask or a class raster; `auto` picks the kind from its name). */
export async function discoverScene(
  storage: Storage,
  uri: string,
  options: DiscoverOptions = {},
): Promise<ServedRun> {
  const c = new LayerCollector(storage, options);
  const scene = basenameUri(uri).replace(/\.[^.]+$/, '');
  // a single raster that cannot be served is the whole request: its error is the answer
  await c.raster(uri, { id: layerId(scene), title: scene, group: 'scene', kind: 'auto' }, true);
  return served(uri, c);
}

/**
 * What to serve at `target`: a run folder (has plan.json), a single raster file (.tif, .tiff,
 * .jp2), else a ServeError that says what is expected.
 */
export async function discover(
  storage: Storage,
  target: string,
  options: DiscoverOptions = {},
): Promise<ServedRun> {
  if (/\.(tif|tiff|jp2)$/i.test(target)) return discoverScene(storage, target, options);
  const trimmed = target.replace(/\/+$/, '');
  if (await storage.exists(joinUri(trimmed, 'plan.json'))) return discoverRun(storage, trimmed, options);
  throw new ServeError(
    `${target}: neither a run folder (no plan.json there) nor a raster (.tif, .tiff, .jp2); give a run folder, an s3:// run prefix or a scene file`,
  );
}
