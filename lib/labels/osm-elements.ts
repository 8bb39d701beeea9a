/**
 * OpenStreetMap elements as the label reader sees them, from the three inputs it takes: an
 * `.osm.pbf` extract (streamed, see osm-pbf.ts), OSM XML (`.osm`) and a saved Overpass API
 * JSON answer (`out geom;` with geometry on ways and relation members, or `out body; >; out
 * skel qt;` with the nodes listed). XML and JSON answers are read whole: they are the small inputs.
 */
import type { Storage } from '../storage/types.js';
import { LabelError } from './errors.js';
import { readPbfElements } from './osm-pbf.js';

export type OsmKind = 'node' | 'way' | 'relation';
export type OsmTags = Readonly<Record<string, string>>;
/** [lon, lat] in degrees. */
export type LonLat = [number, number];

export interface OsmMember {
  readonly type: OsmKind;
  readonly ref: number;
  readonly role: string;
  /** Overpass `out geom`: the member way's coordinates. */
  readonly geometry?: readonly LonLat[];
}

export type OsmElement =
  | {
      readonly type: 'node';
      readonly id: number;
      readonly lat: number;
      readonly lon: number;
      readonly tags: OsmTags;
    }
  | {
      readonly type: 'way';
      readonly id: number;
      readonly tags: OsmTags;
      readonly refs: readonly number[];
      /** Overpass `out geom`: the way's coordinates, one per ref. */
      readonly geometry?: readonly LonLat[];
    }
  | {
      readonly type: 'relation';
      readonly id: number;
      readonly tags: OsmTags;
      readonly members: readonly OsmMember[];
    };

/** A source that can be scanned several times, each scan yielding only the kinds asked for. */
export interface OsmSource {
  readonly uri: string;
  scan(kinds: ReadonlySet<OsmKind>): AsyncIterable<OsmElement>;
}

export type OsmFormat = 'pbf' | 'xml' | 'overpass-json';

/** The input's format, by its name: `.pbf` / `.osm.pbf`, `.osm` / `.xml`, `.json`. */
export function osmFormatOf(uri: string): OsmFormat {
  const lower = uri.toLowerCase();
  if (lower.endsWith('.pbf')) return 'pbf';
  if (lower.endsWith('.osm') || lower.endsWith('.xml')) return 'xml';
  if (lower.endsWith('.json')) return 'overpass-json';
  throw new LabelError(
    `${uri}: unknown OSM input by its name; expected .osm.pbf, .osm (XML) or .json (a saved Overpass answer)`,
  );
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code =
        name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name] ?? whole;
  });
}

function attributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([\w:-]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) {
    out[m[1]!] = unescapeXml(m[3] ?? m[4] ?? '');
  }
  return out;
}

function numberAttr(attrs: Record<string, string>, name: string, element: string, uri: string): number {
  const v = Number(attrs[name]);
  if (attrs[name] === undefined || !Number.isFinite(v)) {
    throw new LabelError(
      `${uri}: <${element}> has ${name}=${JSON.stringify(attrs[name]) ?? 'missing'}; expected a number`,
    );
  }
  return v;
}

/** Parses OSM XML (the `<osm>` document osmosis, osmium and the editors write). */
export function parseOsmXml(text: string, uri: string): OsmElement[] {
  if (!/<osm[\s>]/.test(text)) throw new LabelError(`${uri}: not OSM XML (no <osm> element)`);
  const out: OsmElement[] = [];
  // elements are either self-closing (<node .../>) or hold <tag>, <nd> and <member> children
  const re = /<(node|way|relation)\b([^>]*?)(\/>|>([\s\S]*?)<\/\1\s*>)/g;
  for (const m of text.matchAll(re)) {
    const kind = m[1] as OsmKind;
    const attrs = attributes(m[2]!);
    const body = m[4] ?? '';
    const id = numberAttr(attrs, 'id', kind, uri);
    const tags: Record<string, string> = {};
    for (const t of body.matchAll(/<tag\b([^>]*?)\/?>/g)) {
      const a = attributes(t[1]!);
      if (a.k !== undefined) tags[a.k] = a.v ?? '';
    }
    if (kind === 'node') {
      out.push({
        type: 'node',
        id,
        lat: numberAttr(attrs, 'lat', 'node', uri),
        lon: numberAttr(attrs, 'lon', 'node', uri),
        tags,
      });
    } else if (kind === 'way') {
      const refs = [...body.matchAll(/<nd\b([^>]*?)\/?>/g)].map((n) =>
        numberAttr(attributes(n[1]!), 'ref', 'nd', uri),
      );
      out.push({ type: 'way', id, tags, refs });
    } else {
      const members = [...body.matchAll(/<member\b([^>]*?)\/?>/g)].map((n) => {
        const a = attributes(n[1]!);
        const type = a.type as OsmKind;
        if (type !== 'node' && type !== 'way' && type !== 'relation') {
          throw new LabelError(
            `${uri}: relation ${id} has a member of type ${JSON.stringify(a.type)}; expected node, way or relation`,
          );
        }
        return { type, ref: numberAttr(a, 'ref', 'member', uri), role: a.role ?? '' };
      });
      out.push({ type: 'relation', id, tags, members });
    }
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function geometryOf(v: unknown): LonLat[] | undefined {
  if (!Array.isArray(v)) return undefined;
  // Overpass writes null for member nodes outside the query's bbox
  return v.map((p: unknown) => (isRecord(p) ? [Number(p.lon), Number(p.lat)] : [NaN, NaN]));
}

function tagsFromJson(v: unknown): OsmTags {
  const tags: Record<string, string> = {};
  if (isRecord(v)) for (const [k, val] of Object.entries(v)) tags[k] = String(val);
  return tags;
}

/**
 * Parses a saved Overpass API answer in JSON (`[out:json]`). An answer with a `remark` (the
 * server's way of saying the query failed or timed out, often with partial elements) is refused.
 */
export function parseOverpassJson(text: string, uri: string): OsmElement[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new LabelError(
      `${uri}: not JSON (${error instanceof Error ? error.message : String(error)}); expected an Overpass answer`,
    );
  }
  if (!isRecord(doc) || !Array.isArray(doc.elements)) {
    throw new LabelError(`${uri}: no 'elements' array; expected an Overpass API answer in JSON ([out:json])`);
  }
  if (typeof doc.remark === 'string') {
    throw new LabelError(
      `${uri}: the Overpass answer has the remark ${JSON.stringify(doc.remark)}: the query failed or was cut short, so its elements are incomplete; rerun the query`,
    );
  }
  return doc.elements.map((e: unknown, i: number): OsmElement => {
    if (!isRecord(e) || typeof e.id !== 'number') {
      throw new LabelError(`${uri}: elements[${i}] has no numeric 'id'; expected an OSM element`);
    }
    const tags = tagsFromJson(e.tags);
    if (e.type === 'node') {
      return { type: 'node', id: e.id, lat: Number(e.lat), lon: Number(e.lon), tags };
    }
    if (e.type === 'way') {
      const refs = Array.isArray(e.nodes) ? e.nodes.map(Number) : [];
      const geometry = geometryOf(e.geometry);
      return { type: 'way', id: e.id, tags, refs, ...(geometry ? { geometry } : {}) };
    }
    if (e.type === 'relation') {
      const members = (Array.isArray(e.members) ? e.members : []).map((m: unknown): OsmMember => {
        const r = isRecord(m) ? m : {};
        const type = r.type === 'way' || r.type === 'relation' ? r.type : 'node';
        const geometry = geometryOf(r.geometry);
        return {
          type,
          ref: Number(r.ref),
          role: typeof r.role === 'string' ? r.role : '',
          ...(geometry ? { geometry } : {}),
        };
      });
      return { type: 'relation', id: e.id, tags, members };
    }
    throw new LabelError(
      `${uri}: elements[${i}] has type ${JSON.stringify(e.type)}; expected node, way or relation`,
    );
  });
}

function memorySource(uri: string, elements: readonly OsmElement[]): OsmSource {
  return {
    uri,
    async *scan(kinds) {
      for (const e of elements) if (kinds.has(e.type)) yield e;
    },
  };
}

/** Opens an OSM input by its name: PBF streamed per scan, XML and Overpass JSON read once. */
export async function openOsmSource(
  storage: Storage,
  uri: string,
  options: { signal?: AbortSignal } = {},
): Promise<OsmSource> {
  const format = osmFormatOf(uri);
  if (format === 'pbf') {
    if (!(await storage.exists(uri))) throw new LabelError(`${uri}: no such file`);
    return { uri, scan: (kinds) => readPbfElements(storage, uri, kinds, options) };
  }
  const text = (await storage.read(uri, options.signal ? { signal: options.signal } : {})).toString('utf8');
  return memorySource(uri, format === 'xml' ? parseOsmXml(text, uri) : parseOverpassJson(text, uri));
}
