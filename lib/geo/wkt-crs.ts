/**
 * The EPSG code of a CRS given as WKT (a shapefile's `.prj`, a GeoPackage's or FlatGeobuf's
 * definition). geobatch works with EPSG codes (see crs.ts), so a WKT is accepted when it names
 * its code (WKT1 `AUTHORITY["EPSG","32616"]` or WKT2 `ID["EPSG",32616]` on the outermost node),
 * or when its name is one Esri software and GDAL write for a common EPSG CRS (`.prj` files carry
 * no code: `WGS_1984_UTM_Zone_16N`, `NAD_1983_UTM_Zone_16N`, `GCS_WGS_1984`, ...), or when its
 * name is exactly an EPSG name. A CRS found by name is checked against the EPSG definition
 * (ellipsoid and projection parameters), so a renamed or edited CRS is refused, not misread.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CrsError, epsgDefinition } from './crs.js';
import type { CrsRef } from './crs.js';

/** A WKT node: `KEYWORD[arg, ...]`; quoted strings stay strings, bare words (e.g. EAST) too. */
interface WktNode {
  readonly keyword: string;
  readonly args: (string | number | WktNode)[];
}

/** Parses WKT1 or WKT2 text into its node tree; throws a plain Error saying where it is malformed. */
function parseWkt(text: string): WktNode {
  let i = 0;
  const space = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const node = (): WktNode => {
    space();
    const start = i;
    while (i < text.length && /[A-Za-z0-9_]/.test(text[i]!)) i++;
    const keyword = text.slice(start, i).toUpperCase();
    space();
    if (!keyword || (text[i] !== '[' && text[i] !== '(')) {
      throw new Error(`expected KEYWORD[...] at character ${i + 1}`);
    }
    const close = text[i] === '[' ? ']' : ')';
    i++;
    const args: (string | number | WktNode)[] = [];
    for (;;) {
      space();
      const c = text[i];
      if (c === undefined) throw new Error(`'${keyword}' is not closed`);
      if (c === '"') {
        let s = '';
        i++;
        for (;;) {
          const q = text.indexOf('"', i);
          if (q === -1) throw new Error(`a string in '${keyword}' is not closed`);
          s += text.slice(i, q);
          i = q + 1;
          if (text[i] === '"') {
            s += '"';
            i++;
          } else break;
        }
        args.push(s);
      } else if (/[-+.\d]/.test(c)) {
        const m = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(text.slice(i));
        if (!m) throw new Error(`a bad number at character ${i + 1}`);
        args.push(Number(m[0]));
        i += m[0].length;
      } else {
        const save = i;
        while (i < text.length && /[A-Za-z0-9_]/.test(text[i]!)) i++;
        space();
        if (text[i] === '[' || text[i] === '(') {
          i = save;
          args.push(node());
        } else args.push(text.slice(save, i).trim());
      }
      space();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === close) {
        i++;
        return { keyword, args };
      }
      throw new Error(`expected ',' or '${close}' in '${keyword}' at character ${i + 1}`);
    }
  };
  const root = node();
  space();
  if (i < text.length) throw new Error(`unexpected text after the WKT at character ${i + 1}`);
  return root;
}

function children(n: WktNode, keyword: string): WktNode[] {
  return n.args.filter((a): a is WktNode => typeof a === 'object' && a.keyword === keyword);
}

function child(n: WktNode, ...keywords: string[]): WktNode | undefined {
  for (const k of keywords) {
    const found = children(n, k)[0];
    if (found) return found;
  }
  return undefined;
}

/** Depth-first search for the first node with one of the keywords. */
function find(n: WktNode, keywords: readonly string[]): WktNode | undefined {
  if (keywords.includes(n.keyword)) return n;
  for (const a of n.args) {
    if (typeof a === 'object') {
      const found = find(a, keywords);
      if (found) return found;
    }
  }
  return undefined;
}

const ESRI_NAMES: readonly [RegExp, (m: RegExpExecArray) => number | undefined][] = [
  [/^WGS_1984_UTM_Zone_(\d{1,2})([NS])$/i, (m) => utm(m, m[2]!.toUpperCase() === 'N' ? 32600 : 32700, 1, 60)],
  [/^NAD_1983_UTM_Zone_(\d{1,2})N$/i, (m) => utm(m, 26900, 1, 23)],
  [/^ETRS_1989_UTM_Zone_(\d{1,2})N$/i, (m) => utm(m, 25800, 28, 38)],
  [/^GCS_WGS_1984$/i, () => 4326],
  [/^GCS_North_American_1983$/i, () => 4269],
  [/^GCS_ETRS_1989$/i, () => 4258],
  [/^(WGS_1984_Web_Mercator_Auxiliary_Sphere|WGS_84_Pseudo_Mercator)$/i, () => 3857],
];

function utm(m: RegExpExecArray, base: number, min: number, max: number): number | undefined {
  const zone = Number(m[1]);
  return zone >= min && zone <= max ? base + zone : undefined;
}

const require = createRequire(import.meta.url);
let epsgNames: Map<string, number[]> | undefined;

function normalName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** EPSG names (normalised) to codes, from epsg-index's all.json: read once, only when a name is not known otherwise. */
function codesNamed(name: string): number[] {
  if (!epsgNames) {
    epsgNames = new Map();
    const all = JSON.parse(readFileSync(require.resolve('epsg-index/all.json'), 'utf8')) as Record<
      string,
      { name: string; kind: string; proj4: string | null }
    >;
    for (const [code, e] of Object.entries(all)) {
      if (!e.proj4 || !/^CRS-(PROJCRS|GEOGCRS)$/.test(e.kind)) continue;
      const key = normalName(e.name);
      epsgNames.set(key, [...(epsgNames.get(key) ?? []), Number(code)]);
    }
  }
  return epsgNames.get(normalName(name)) ?? [];
}

/** The numbers that pin a CRS down: ellipsoid axis and flattening, projection parameters (WKT1 names, lower case). */
function signature(root: WktNode): Map<string, number> {
  const out = new Map<string, number>();
  const spheroid = find(root, ['SPHEROID', 'ELLIPSOID']);
  if (spheroid && typeof spheroid.args[1] === 'number' && typeof spheroid.args[2] === 'number') {
    out.set('semi_major', spheroid.args[1]);
    out.set('inverse_flattening', spheroid.args[2]);
  }
  for (const p of children(root, 'PARAMETER')) {
    if (typeof p.args[0] === 'string' && typeof p.args[1] === 'number') {
      out.set(p.args[0].toLowerCase(), p.args[1]);
    }
  }
  return out;
}

/** Why the WKT does not describe EPSG:`code` (a differing number), or undefined when it agrees. */
function disagreement(root: WktNode, code: number): string | undefined {
  const def = epsgDefinition(code);
  if (!def.wkt) return undefined;
  let reference: WktNode;
  try {
    reference = parseWkt(def.wkt);
  } catch {
    return undefined;
  }
  const mine = signature(root);
  const theirs = signature(reference);
  for (const [k, v] of mine) {
    const w = theirs.get(k);
    if (w === undefined) continue;
    if (Math.abs(v - w) > 1e-9 * Math.max(1, Math.abs(w))) {
      return `its ${k} is ${v} where EPSG:${code} (${def.name}) has ${w}`;
    }
  }
  return undefined;
}

function authorityCode(n: WktNode): number | undefined {
  for (const a of [...children(n, 'AUTHORITY'), ...children(n, 'ID')]) {
    if (typeof a.args[0] === 'string' && a.args[0].toUpperCase() === 'EPSG') {
      const code = Number(a.args[1]);
      if (Number.isInteger(code) && code > 0) return code;
    }
  }
  return undefined;
}

/**
 * The EPSG CRS a WKT describes (see the module comment). Throws {@link CrsError} with the WKT's
 * name and what to do when it has no code geobatch can find, or is not valid WKT.
 */
export function crsFromWkt(wkt: string): CrsRef {
  const text = wkt.trim();
  let root: WktNode;
  try {
    root = parseWkt(text);
  } catch (error) {
    throw new CrsError(
      text.length > 60 ? `${text.slice(0, 57)}...` : text,
      `not valid WKT (${(error as Error).message}); pass the CRS as EPSG:<code> instead`,
    );
  }
  if (root.keyword === 'COMPD_CS' || root.keyword === 'COMPOUNDCRS') {
    const horizontal = child(root, 'PROJCS', 'GEOGCS', 'PROJCRS', 'GEOGCRS', 'GEODCRS');
    if (horizontal) root = horizontal;
  }
  const name = typeof root.args[0] === 'string' ? root.args[0] : '(unnamed)';
  const byAuthority = authorityCode(root);
  if (byAuthority !== undefined) {
    epsgDefinition(byAuthority, `EPSG:${byAuthority} (${name})`);
    return { epsg: byAuthority, text: `EPSG:${byAuthority}` };
  }
  let code: number | undefined;
  for (const [pattern, codeOf] of ESRI_NAMES) {
    const m = pattern.exec(name);
    if (m) {
      code = codeOf(m);
      break;
    }
  }
  if (code === undefined) {
    const named = codesNamed(name);
    if (named.length === 1) code = named[0];
  }
  if (code === undefined) {
    throw new CrsError(
      name,
      'the WKT names no EPSG code (no AUTHORITY or ID) and its name is not one geobatch can match to an EPSG CRS; pass the CRS as EPSG:<code>',
    );
  }
  const differs = disagreement(root, code);
  if (differs !== undefined) {
    throw new CrsError(name, `its name says EPSG:${code} but ${differs}; pass the CRS as EPSG:<code>`);
  }
  return { epsg: code, text: `EPSG:${code}` };
}
