/**
 * OpenStreetMap labels: elements matching tag filters become class-labelled CRS84 features
 * (closed ways and multipolygon relations polygons, open ways lines when the class keeps them,
 * nodes points), written per scene clipped to its footprint, and per chip as multi-label
 * encodings by spatial join with `chips.geojson`.
 *
 * Memory: three scans of the input (relations, then ways, then nodes: the order needs flow
 * backwards through the file, which lists nodes first). Only matched elements and the member
 * ways of matched relations are kept; node coordinates are kept only for the nodes those ways
 * use, in typed arrays (24 bytes a node: id, lon, lat), never for the whole extract.
 */
import { crsTransform, CRS84 } from '../geo/crs.js';
import { pixelToWorld } from '../geo/affine.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, joinUri } from '../storage/uri.js';
import { csvField } from '../dataset/labels.js';
import { BoxIndex } from './box-index.js';
import { LabelError } from './errors.js';
import { openGeoreferencedImage } from './geo-labels.js';
import { fileStem } from './images.js';
import type { LonLat, OsmElement, OsmKind, OsmSource } from './osm-elements.js';
import { matchClass, type OsmClass } from './osm-filters.js';
import {
  assembleRings,
  clipLine,
  clipPolygons,
  insideQuad,
  makeQuad,
  nestRings,
  quadBounds,
  wayPolygon,
  type PolygonCoords,
  type Quad,
  type WayPiece,
} from './osm-geometry.js';

export type OsmGeometry =
  | { readonly type: 'Point'; readonly coordinates: LonLat }
  | { readonly type: 'LineString'; readonly coordinates: LonLat[] }
  | { readonly type: 'MultiLineString'; readonly coordinates: LonLat[][] }
  | { readonly type: 'Polygon'; readonly coordinates: PolygonCoords }
  | { readonly type: 'MultiPolygon'; readonly coordinates: PolygonCoords[] };

/** A labelled OSM feature in CRS84. */
export interface OsmFeature {
  readonly osmType: OsmKind;
  readonly osmId: number;
  readonly cls: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly geometry: OsmGeometry;
}

/** Why matched elements gave no feature, by reason. */
export type OsmSkips = Record<string, number>;

export interface OsmExtraction {
  readonly features: OsmFeature[];
  readonly skipped: OsmSkips;
  /** Node coordinates kept (the memory bound's n). */
  readonly nodesKept: number;
}

function bump(s: OsmSkips, why: string): void {
  s[why] = (s[why] ?? 0) + 1;
}

const AREA_RELATIONS = new Set(['multipolygon', 'boundary']);

/** Sorted node ids with their coordinates, filled during the node scan. */
class NodeCoords {
  readonly ids: Float64Array;
  readonly coords: Float64Array;
  constructor(needed: Set<number>) {
    this.ids = Float64Array.from(needed).sort();
    this.coords = new Float64Array(this.ids.length * 2).fill(NaN);
  }
  private index(id: number): number {
    let lo = 0;
    let hi = this.ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.ids[mid]!;
      if (v === id) return mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
  set(id: number, lon: number, lat: number): void {
    const i = this.index(id);
    if (i >= 0) {
      this.coords[2 * i] = lon;
      this.coords[2 * i + 1] = lat;
    }
  }
  get(id: number): LonLat | undefined {
    const i = this.index(id);
    if (i < 0) return undefined;
    const lon = this.coords[2 * i]!;
    return Number.isNaN(lon) ? undefined : [lon, this.coords[2 * i + 1]!];
  }
}

type WayElement = Extract<OsmElement, { type: 'way' }>;
type RelationElement = Extract<OsmElement, { type: 'relation' }>;

function isClosed(w: WayElement): boolean {
  if (w.refs.length >= 4) return w.refs[0] === w.refs[w.refs.length - 1];
  const g = w.geometry;
  return !!g && g.length >= 4 && g[0]![0] === g[g.length - 1]![0] && g[0]![1] === g[g.length - 1]![1];
}

/** Reads the matching features of a source, in relation, way, node order (ids ascending within a kind as the file has them). */
export async function extractOsmFeatures(
  source: OsmSource,
  classes: readonly OsmClass[],
): Promise<OsmExtraction> {
  const skipped: OsmSkips = {};
  const relations: { rel: RelationElement; cls: OsmClass; tags: Record<string, string> }[] = [];
  const memberWays = new Set<number>();
  for await (const e of source.scan(new Set<OsmKind>(['relation']))) {
    if (e.type !== 'relation') continue;
    const m = matchClass(classes, e.tags);
    if (!m) continue;
    if (!AREA_RELATIONS.has(e.tags.type ?? '') || !m.cls.geometries.has('polygon')) {
      bump(skipped, 'relation not a multipolygon');
      continue;
    }
    relations.push({ rel: e, cls: m.cls, tags: m.matched });
    for (const member of e.members) if (member.type === 'way' && !member.geometry) memberWays.add(member.ref);
  }

  const ways: { way: WayElement; cls: OsmClass; tags: Record<string, string>; kind: 'polygon' | 'line' }[] =
    [];
  const members = new Map<number, WayElement>();
  const needed = new Set<number>();
  for await (const e of source.scan(new Set<OsmKind>(['way']))) {
    if (e.type !== 'way') continue;
    if (memberWays.has(e.id)) {
      members.set(e.id, e);
      if (!e.geometry) for (const r of e.refs) needed.add(r);
    }
    const m = matchClass(classes, e.tags);
    if (!m) continue;
    const closed = isClosed(e);
    const kind =
      closed && e.tags.area !== 'no' && m.cls.geometries.has('polygon')
        ? 'polygon'
        : m.cls.geometries.has('line')
          ? 'line'
          : undefined;
    if (!kind) {
      bump(skipped, closed ? 'closed way with area=no' : 'open way (the class keeps no lines)');
      continue;
    }
    ways.push({ way: e, cls: m.cls, tags: m.matched, kind });
    if (!e.geometry) for (const r of e.refs) needed.add(r);
  }

  const nodes = new NodeCoords(needed);
  needed.clear();
  const points: OsmFeature[] = [];
  for await (const e of source.scan(new Set<OsmKind>(['node']))) {
    if (e.type !== 'node') continue;
    nodes.set(e.id, e.lon, e.lat);
    if (Object.keys(e.tags).length === 0) continue;
    const m = matchClass(classes, e.tags);
    if (!m) continue;
    if (!m.cls.geometries.has('point')) continue;
    points.push({
      osmType: 'node',
      osmId: e.id,
      cls: m.cls.name,
      tags: m.matched,
      geometry: { type: 'Point', coordinates: [e.lon, e.lat] },
    });
  }

  const coordsOf = (w: WayElement): LonLat[] | undefined => {
    if (w.geometry) return w.geometry.every((p) => Number.isFinite(p[0])) ? [...w.geometry] : undefined;
    const out: LonLat[] = [];
    for (const r of w.refs) {
      const c = nodes.get(r);
      if (!c) return undefined;
      out.push(c);
    }
    return out;
  };

  const features: OsmFeature[] = [];
  for (const { rel, cls, tags } of relations) {
    const outer: WayPiece[] = [];
    const inner: WayPiece[] = [];
    let missing = false;
    for (const member of rel.members) {
      if (member.type !== 'way') continue;
      const way = members.get(member.ref);
      const coords = member.geometry ? [...member.geometry] : way ? coordsOf(way) : undefined;
      if (!coords || coords.length < 2 || !coords.every((p) => Number.isFinite(p[0]))) {
        missing = true;
        break;
      }
      const key = (i: number): string =>
        way && way.refs.length === coords.length ? `n${way.refs[i]}` : `${coords[i]![0]},${coords[i]![1]}`;
      const piece = { coords, startKey: key(0), endKey: key(coords.length - 1) };
      (member.role === 'inner' ? inner : outer).push(piece);
    }
    if (missing) {
      bump(skipped, 'multipolygon with member ways or nodes missing from the input');
      continue;
    }
    const outers = assembleRings(outer);
    const inners = assembleRings(inner);
    const polygons = outers && inners && outers.length > 0 ? nestRings(outers, inners) : undefined;
    if (!polygons) {
      bump(skipped, 'multipolygon whose rings do not close or nest');
      continue;
    }
    features.push({
      osmType: 'relation',
      osmId: rel.id,
      cls: cls.name,
      tags,
      geometry:
        polygons.length === 1
          ? { type: 'Polygon', coordinates: polygons[0]! }
          : { type: 'MultiPolygon', coordinates: polygons },
    });
  }
  for (const { way, cls, tags, kind } of ways) {
    const coords = coordsOf(way);
    if (!coords) {
      bump(skipped, 'way with nodes missing from the input');
      continue;
    }
    features.push({
      osmType: 'way',
      osmId: way.id,
      cls: cls.name,
      tags,
      geometry:
        kind === 'polygon'
          ? { type: 'Polygon', coordinates: wayPolygon(coords) }
          : { type: 'LineString', coordinates: coords },
    });
  }
  features.push(...points);
  return { features, skipped, nodesKept: nodes.ids.length };
}

function featureBounds(g: OsmGeometry): [number, number, number, number] {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  const visit = (p: LonLat): void => {
    minX = Math.min(minX, p[0]);
    minY = Math.min(minY, p[1]);
    maxX = Math.max(maxX, p[0]);
    maxY = Math.max(maxY, p[1]);
  };
  if (g.type === 'Point') visit(g.coordinates);
  else if (g.type === 'LineString') g.coordinates.forEach(visit);
  else if (g.type === 'MultiLineString' || g.type === 'Polygon')
    g.coordinates.forEach((l) => l.forEach(visit));
  else g.coordinates.forEach((p) => p.forEach((r) => r.forEach(visit)));
  return [minX, minY, maxX, maxY];
}

/** The feature's geometry clipped to the quad, or undefined when nothing of it is inside. */
export function clipGeometry(g: OsmGeometry, q: Quad): OsmGeometry | undefined {
  if (g.type === 'Point') return insideQuad(g.coordinates, q) ? g : undefined;
  if (g.type === 'LineString' || g.type === 'MultiLineString') {
    const lines = g.type === 'LineString' ? [g.coordinates] : g.coordinates;
    const pieces = lines.flatMap((l) => clipLine(l, q));
    if (pieces.length === 0) return undefined;
    return pieces.length === 1
      ? { type: 'LineString', coordinates: pieces[0]! }
      : { type: 'MultiLineString', coordinates: pieces };
  }
  const polygons = clipPolygons(g.type === 'Polygon' ? [g.coordinates] : g.coordinates, q);
  if (polygons.length === 0) return undefined;
  return polygons.length === 1
    ? { type: 'Polygon', coordinates: polygons[0]! }
    : { type: 'MultiPolygon', coordinates: polygons };
}

/** A scene and its CRS84 footprint (the four corners of its raster). */
export interface OsmScene {
  readonly uri: string;
  readonly id: string;
  readonly footprint: Quad;
}

/** Reads a georeferenced raster's header and returns its footprint in CRS84. */
export async function sceneFootprint(
  storage: Storage,
  uri: string,
  options: { signal?: AbortSignal } = {},
): Promise<OsmScene> {
  const image = await openGeoreferencedImage(storage, uri, 'labels osm', options);
  const t = crsTransform({ epsg: image.epsg, text: `EPSG:${image.epsg}` }, CRS84);
  const corners: LonLat[] = [
    [0, 0],
    [image.width, 0],
    [image.width, image.height],
    [0, image.height],
  ].map(([c, r]) => {
    const [x, y] = pixelToWorld(image.geotransform, c!, r!);
    return t.forward(x, y);
  });
  return { uri, id: fileStem(basenameUri(uri)), footprint: makeQuad(corners) };
}

/** A GeoJSON FeatureCollection (CRS84) of features, one per line. */
export function featureCollectionText(features: readonly OsmFeature[]): string {
  const lines = features.map((f) =>
    JSON.stringify({
      type: 'Feature',
      id: `${f.osmType}/${f.osmId}`,
      properties: { class: f.cls, osm_type: f.osmType, osm_id: f.osmId, tags: f.tags },
      geometry: f.geometry,
    }),
  );
  return `{"type":"FeatureCollection","features":[${lines.length ? `\n${lines.join(',\n')}\n` : ''}]}\n`;
}

/** The features clipped to a scene's footprint. */
export function sceneFeatures(features: readonly OsmFeature[], scene: OsmScene): OsmFeature[] {
  const [qx0, qy0, qx1, qy1] = quadBounds(scene.footprint);
  const out: OsmFeature[] = [];
  for (const f of features) {
    const [x0, y0, x1, y1] = featureBounds(f.geometry);
    if (x1 < qx0 || x0 > qx1 || y1 < qy0 || y0 > qy1) continue;
    const g = clipGeometry(f.geometry, scene.footprint);
    if (g) out.push({ ...f, geometry: g });
  }
  return out;
}

/** A chip from `chips.geojson`: its name and footprint. */
export interface OsmChip {
  readonly chip: string;
  readonly footprint: Quad;
}

/** Parses `chips.geojson` as `chip slice` writes it (a Polygon of four corners per chip, `properties.chip`). */
export function parseChipFootprints(text: string, uri: string): OsmChip[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new LabelError(`${uri}: not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  const features = (doc as { features?: unknown }).features;
  if (!Array.isArray(features))
    throw new LabelError(`${uri}: no 'features' array; expected the chips.geojson chip slice writes`);
  return features.map((f: unknown, i: number) => {
    const feature = f as {
      properties?: { chip?: unknown };
      geometry?: { type?: unknown; coordinates?: unknown };
    };
    const chip = feature.properties?.chip;
    const ring = (feature.geometry?.coordinates as unknown[] | undefined)?.[0];
    if (
      typeof chip !== 'string' ||
      feature.geometry?.type !== 'Polygon' ||
      !Array.isArray(ring) ||
      ring.length < 4
    ) {
      throw new LabelError(
        `${uri}: features[${i}] needs properties.chip (a string) and a Polygon of its four corners`,
      );
    }
    return { chip, footprint: makeQuad(ring.slice(0, 4) as LonLat[]) };
  });
}

/** Per chip (in chip order): the set of class names whose features meet it. */
export function chipLabels(features: readonly OsmFeature[], chips: readonly OsmChip[]): Set<string>[] {
  const bounds = features.map((f) => featureBounds(f.geometry));
  const span = Math.max(
    1e-6,
    ...chips.map((c) => {
      const [x0, y0, x1, y1] = quadBounds(c.footprint);
      return Math.max(x1 - x0, y1 - y0);
    }),
  );
  const index = new BoxIndex(span);
  for (const b of bounds) index.insert(b);
  return chips.map((c) => {
    const labels = new Set<string>();
    for (const i of index.candidates(quadBounds(c.footprint))) {
      const f = features[i]!;
      if (labels.has(f.cls)) continue;
      if (clipGeometry(f.geometry, c.footprint)) labels.add(f.cls);
    }
    return labels;
  });
}

/** `chip,<class 1>,...` with 0/1 columns in class order (the conventions of the dataset's labels.csv). */
export function chipLabelsCsv(
  chips: readonly OsmChip[],
  labels: readonly Set<string>[],
  classes: readonly string[],
): string {
  const rows = [['chip', ...classes].map(csvField).join(',')];
  chips.forEach((c, i) =>
    rows.push([csvField(c.chip), ...classes.map((k) => (labels[i]!.has(k) ? '1' : '0'))].join(',')),
  );
  return rows.join('\n') + '\n';
}

/** `{"chip":...,"labels":[names in class order]}` per line. */
export function chipLabelsJsonl(
  chips: readonly OsmChip[],
  labels: readonly Set<string>[],
  classes: readonly string[],
): string {
  const lines = chips.map((c, i) =>
    JSON.stringify({ chip: c.chip, labels: classes.filter((k) => labels[i]!.has(k)) }),
  );
  return lines.length ? lines.join('\n') + '\n' : '';
}

export interface OsmLabelsOptions {
  readonly classes: readonly OsmClass[];
  readonly out: string;
  readonly scenes?: readonly string[];
  readonly chips?: string;
  readonly signal?: AbortSignal;
}

export interface OsmLabelsResult {
  readonly input: string;
  readonly classes: string[];
  readonly features: number;
  readonly byClass: Record<string, number>;
  readonly skipped: OsmSkips;
  readonly nodesKept: number;
  readonly scenes: { scene: string; output: string; features: number }[];
  readonly chips?: { count: number; csv: string; jsonl: string; byClass: Record<string, number> };
  /** What the outputs were made from (input size and date, classes, scenes, chips): a rerun with the same key is skipped. */
  readonly runKey: string;
  /** True when a finished run with the same key was found and nothing was redone. */
  readonly reused?: boolean;
}

/** The whole conversion: features, per-scene GeoJSON, per-chip encodings, then summary.json last. */
export async function osmLabels(
  storage: Storage,
  source: OsmSource,
  options: OsmLabelsOptions,
): Promise<OsmLabelsResult> {
  const io = options.signal ? { signal: options.signal } : {};
  const inputInfo = await storage.stat(source.uri, io);
  const runKey = JSON.stringify({
    input: source.uri,
    size: inputInfo?.size,
    modified: inputInfo?.lastModified?.toISOString(),
    classes: options.classes.map((c) => ({
      name: c.name,
      match: c.expressions,
      lines: c.geometries.has('line'),
    })),
    scenes: options.scenes ?? [],
    chips: options.chips ?? null,
  });
  const summaryUri = joinUri(options.out, 'summary.json');
  if (await storage.exists(summaryUri, io)) {
    try {
      const previous = JSON.parse((await storage.read(summaryUri, io)).toString('utf8')) as OsmLabelsResult;
      if (previous.runKey === runKey) return { ...previous, reused: true };
    } catch {
      // an unreadable summary is redone
    }
  }
  // footprints first: a bad raster fails before the (longer) scans of the input
  const scenes: OsmScene[] = [];
  for (const uri of options.scenes ?? []) scenes.push(await sceneFootprint(storage, uri, io));
  const ids = new Map<string, string>();
  for (const s of scenes) {
    const other = ids.get(s.id);
    if (other !== undefined)
      throw new LabelError(
        `--images: two scenes are named '${s.id}' (${other} and ${s.uri}); output files are named by scene`,
      );
    ids.set(s.id, s.uri);
  }
  let chips: OsmChip[] | undefined;
  let chipsUri: string | undefined;
  if (options.chips !== undefined) {
    chipsUri = options.chips.endsWith('.geojson') ? options.chips : joinUri(options.chips, 'chips.geojson');
    if (!(await storage.exists(chipsUri, io))) {
      throw new LabelError(
        `--chips ${options.chips}: no chips.geojson there (chip slice writes it for georeferenced scenes)`,
      );
    }
    chips = parseChipFootprints((await storage.read(chipsUri, io)).toString('utf8'), chipsUri);
  }

  const extraction = await extractOsmFeatures(source, options.classes);
  const classNames = options.classes.map((c) => c.name);
  const byClass = Object.fromEntries(classNames.map((c) => [c, 0])) as Record<string, number>;
  for (const f of extraction.features) byClass[f.cls]!++;

  const sceneResults: OsmLabelsResult['scenes'] = [];
  for (const scene of scenes) {
    const features = sceneFeatures(extraction.features, scene);
    const output = joinUri(options.out, `${scene.id}.geojson`);
    await storage.writeAtomic(output, featureCollectionText(features), {
      contentType: 'application/geo+json',
      ...io,
    });
    sceneResults.push({ scene: scene.uri, output, features: features.length });
  }
  if (scenes.length === 0) {
    const output = joinUri(options.out, 'features.geojson');
    await storage.writeAtomic(output, featureCollectionText(extraction.features), {
      contentType: 'application/geo+json',
      ...io,
    });
    sceneResults.push({ scene: '', output, features: extraction.features.length });
  }

  let chipResult: OsmLabelsResult['chips'];
  if (chips) {
    const labels = chipLabels(extraction.features, chips);
    const csv = joinUri(options.out, 'labels.csv');
    const jsonl = joinUri(options.out, 'labels.jsonl');
    await storage.writeAtomic(csv, chipLabelsCsv(chips, labels, classNames), {
      contentType: 'text/csv',
      ...io,
    });
    await storage.writeAtomic(jsonl, chipLabelsJsonl(chips, labels, classNames), {
      contentType: 'application/jsonl',
      ...io,
    });
    const chipByClass = Object.fromEntries(classNames.map((k) => [k, labels.filter((l) => l.has(k)).length]));
    chipResult = { count: chips.length, csv, jsonl, byClass: chipByClass };
  }
  const result: OsmLabelsResult = {
    input: source.uri,
    classes: classNames,
    features: extraction.features.length,
    byClass,
    skipped: extraction.skipped,
    nodesKept: extraction.nodesKept,
    scenes: sceneResults,
    ...(chipResult ? { chips: chipResult } : {}),
    runKey,
  };
  // written last: its presence says every other output is complete
  await storage.writeAtomic(summaryUri, JSON.stringify(result, null, 2) + '\n', {
    contentType: 'application/json',
    ...io,
  });
  return result;
}

/** The terminal summary. */
export function osmSummaryText(r: OsmLabelsResult, seconds: number): string {
  if (r.reused)
    return `labels osm: ${r.scenes[0]?.output ?? r.input}: already done with the same input and options (summary.json); nothing redone\n`;
  const lines = [
    `labels osm: ${r.features.toLocaleString('en-US')} feature(s) from ${r.input} in ${seconds.toFixed(1)} s`,
    `  by class: ${r.classes.map((c) => `${c} ${r.byClass[c]}`).join(', ')}`,
  ];
  for (const [why, n] of Object.entries(r.skipped)) lines.push(`  skipped: ${n} ${why}`);
  for (const s of r.scenes) lines.push(`  ${s.output}: ${s.features} feature(s)`);
  if (r.chips) lines.push(`  ${r.chips.count} chip(s): ${r.chips.csv}, ${r.chips.jsonl}`);
  return lines.join('\n') + '\n';
}
