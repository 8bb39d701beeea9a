/**
 * A small OpenStreetMap extract over the SpaceNet sample GeoTIFF (lon -84.4814..-84.4765, lat
 * 33.6363..33.6405), shared by the OSM label tests: buildings as closed ways (one across the
 * scene's east edge, one outside it, one an open way), a multipolygon forest with a hole joined
 * from three member ways, a road, a footway, a lake and a cafe node. Written as OSM XML or as the
 * two Overpass JSON forms; `osmium` makes the .osm.pbf.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

export const osmiumSkip: false | string =
  spawnSync('osmium', ['--version'], { encoding: 'utf8' }).status === 0
    ? false
    : 'osmium not found on PATH: install osmium-tool (apt-get install osmium-tool) to make the .osm.pbf fixtures';
// the scene spans about lon -84.4814..-84.4765, lat 33.6363..33.6405
export type P = [number, number];
export const nodes = new Map<number, P>();
let nextNode = 1;
function node(lon: number, lat: number): number {
  const id = nextNode++;
  nodes.set(id, [Math.round(lon * 1e7) / 1e7, Math.round(lat * 1e7) / 1e7]);
  return id;
}
function square(lon: number, lat: number, w: number, h: number): number[] {
  const ids = [node(lon, lat), node(lon + w, lat), node(lon + w, lat + h), node(lon, lat + h)];
  return [...ids, ids[0]!];
}
interface Way {
  id: number;
  refs: number[];
  tags: Record<string, string>;
}
export const ways: Way[] = [];
ways.push({ id: 10, refs: square(-84.4795, 33.638, 0.0004, 0.0003), tags: { building: 'yes' } });
// crosses the scene's east edge: clipped
ways.push({
  id: 11,
  refs: square(-84.477, 33.638, 0.001, 0.0003),
  tags: { building: 'house', 'building:levels': '2' },
});
// outside the scene
ways.push({ id: 12, refs: square(-84.474, 33.638, 0.0003, 0.0003), tags: { building: 'yes' } });
// an open way with an area tag: skipped
ways.push({
  id: 13,
  refs: [node(-84.48, 33.637), node(-84.4799, 33.637), node(-84.4799, 33.6371)],
  tags: { building: 'yes' },
});
// the forest: outer ring in two ways (the second drawn backwards), a hole in one
const f = [node(-84.481, 33.6388), node(-84.4798, 33.6388), node(-84.4798, 33.64), node(-84.481, 33.64)];
ways.push({ id: 20, refs: [f[0]!, f[1]!, f[2]!], tags: {} });
ways.push({ id: 21, refs: [f[0]!, f[3]!, f[2]!], tags: { barrier: 'fence' } });
ways.push({ id: 22, refs: square(-84.4806, 33.6392, 0.0004, 0.0004), tags: {} });
ways.push({
  id: 30,
  refs: [node(-84.4812, 33.6366), node(-84.479, 33.6375), node(-84.4775, 33.6376)],
  tags: { highway: 'residential', name: 'Elm St' },
});
ways.push({ id: 31, refs: [node(-84.4805, 33.6366), node(-84.48, 33.6367)], tags: { highway: 'footway' } });
ways.push({ id: 40, refs: square(-84.4785, 33.6395, 0.0005, 0.0005), tags: { natural: 'water' } });
export const poi = node(-84.4789, 33.6384);
export const nodeTags = new Map<number, Record<string, string>>([
  [poi, { amenity: 'cafe', name: 'A & "B" <C>' }],
]);
export const relation = {
  id: 100,
  tags: { type: 'multipolygon', landuse: 'forest' },
  members: [
    { type: 'way', ref: 20, role: 'outer' },
    { type: 'way', ref: 22, role: 'inner' },
    { type: 'way', ref: 21, role: 'outer' },
  ],
};

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
function tagXml(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `<tag k="${esc(k)}" v="${esc(v)}"/>`)
    .join('');
}
/** The extract as OSM XML. */
export function osmXml(): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="geobatch-test">'];
  for (const [id, [lon, lat]] of nodes) {
    const tags = nodeTags.get(id);
    const attrs = `id="${id}" version="1" lat="${lat.toFixed(7)}" lon="${lon.toFixed(7)}"`;
    lines.push(tags ? ` <node ${attrs}>${tagXml(tags)}</node>` : ` <node ${attrs}/>`);
  }
  for (const w of ways) {
    lines.push(
      ` <way id="${w.id}" version="1">${w.refs.map((r) => `<nd ref="${r}"/>`).join('')}${tagXml(w.tags)}</way>`,
    );
  }
  const members = relation.members
    .map((m) => `<member type="${m.type}" ref="${m.ref}" role="${m.role}"/>`)
    .join('');
  lines.push(
    ` <relation id="${relation.id}" version="1">${members}${tagXml(relation.tags)}</relation>`,
    '</osm>',
  );
  return lines.join('\n') + '\n';
}
const geom = (refs: number[]): { lat: number; lon: number }[] =>
  refs.map((r) => ({ lat: nodes.get(r)![1], lon: nodes.get(r)![0] }));
/** The Overpass answer of `out geom;` (geometry inline) or `out body; >; out skel qt;` (nodes listed). */
export function overpassJson(form: 'geom' | 'skel'): string {
  const elements: unknown[] = [];
  const wayById = new Map(ways.map((w) => [w.id, w]));
  if (form === 'skel') {
    for (const [id, [lon, lat]] of nodes)
      elements.push({ type: 'node', id, lat, lon, ...(nodeTags.has(id) ? { tags: nodeTags.get(id) } : {}) });
  } else {
    for (const [id, tags] of nodeTags)
      elements.push({ type: 'node', id, lat: nodes.get(id)![1], lon: nodes.get(id)![0], tags });
  }
  for (const w of ways) {
    elements.push({
      type: 'way',
      id: w.id,
      nodes: w.refs,
      ...(form === 'geom' ? { geometry: geom(w.refs) } : {}),
      tags: w.tags,
    });
  }
  elements.push({
    type: 'relation',
    id: relation.id,
    members: relation.members.map((m) => ({
      ...m,
      ...(form === 'geom' ? { geometry: geom(wayById.get(m.ref)!.refs) } : {}),
    })),
    tags: relation.tags,
  });
  return JSON.stringify({ version: 0.6, generator: 'Overpass API (test)', osm3s: {}, elements });
}

/** The classes file of the tests (YAML). */
export const CLASSES = [
  'building: building=*',
  'road: { match: highway=residential|primary, lines: true }',
  'forest: landuse=forest',
  'water: natural=water',
  'poi: [amenity=cafe|restaurant]',
].join('\n');

/** Runs osmium; fails the test on a non-zero exit. */
export function osmium(args: string[]): string {
  const r = spawnSync('osmium', args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, `osmium ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
