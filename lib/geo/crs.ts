/**
 * Coordinate reference systems by EPSG code, offline: definitions come from the `epsg-index`
 * package (one small JSON file per code, read on demand), transformations from proj4js.
 * CRS names accepted: `EPSG:32633`, `urn:ogc:def:crs:EPSG::32633` (and with a version),
 * `http://www.opengis.net/def/crs/EPSG/0/32633`, and CRS84 (`urn:ogc:def:crs:OGC:1.3:CRS84`,
 * `OGC:CRS84`, `CRS84`) — the lon/lat order of RFC 7946 GeoJSON.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import proj4 from 'proj4';

/** A CRS by EPSG code; CRS84 is code 4326 with longitude first (as every GeoJSON writer does). */
export interface CrsRef {
  readonly epsg: number;
  /** How the user wrote it, for messages. */
  readonly text: string;
}

/** What the EPSG database says about a code. */
export interface EpsgDefinition {
  readonly code: number;
  readonly name: string;
  readonly kind: string;
  readonly proj4: string;
  readonly wkt: string;
}

/** A CRS name or definition that cannot be used; `reason` says why and what is valid. */
export class CrsError extends Error {
  constructor(
    readonly crs: string,
    readonly reason: string,
  ) {
    super(`unknown CRS '${crs}': ${reason}`);
    this.name = 'CrsError';
  }
}

/** RFC 7946 GeoJSON coordinates: WGS 84 longitude, latitude. */
export const CRS84: CrsRef = { epsg: 4326, text: 'CRS84' };

const EPSG_PATTERNS = [
  /^EPSG:(\d+)$/i,
  /^urn:ogc:def:crs:EPSG:[\d.]*:(\d+)$/i,
  /^https?:\/\/www\.opengis\.net\/def\/crs\/EPSG\/[\d.]+\/(\d+)$/i,
];
const CRS84_PATTERN =
  /^(urn:ogc:def:crs:OGC:[\d.]*:CRS84|OGC:CRS84|CRS84|https?:\/\/www\.opengis\.net\/def\/crs\/OGC\/[\d.]+\/CRS84)$/i;

/** Parses a CRS name (see the module comment); throws {@link CrsError} for anything else. */
export function parseCrs(text: string): CrsRef {
  const trimmed = text.trim();
  if (CRS84_PATTERN.test(trimmed)) return { epsg: 4326, text: trimmed };
  for (const pattern of EPSG_PATTERNS) {
    const m = pattern.exec(trimmed);
    if (m) {
      const epsg = Number(m[1]);
      epsgDefinition(epsg, trimmed);
      return { epsg, text: trimmed };
    }
  }
  throw new CrsError(
    text,
    'expected EPSG:<code> (e.g. EPSG:4326, EPSG:32633), urn:ogc:def:crs:EPSG::<code>, or CRS84',
  );
}

const require = createRequire(import.meta.url);
const definitions = new Map<number, EpsgDefinition | null>();

/** The EPSG database entry of a code; throws {@link CrsError} when the database does not have it. */
export function epsgDefinition(code: number, text = `EPSG:${code}`): EpsgDefinition {
  let def = definitions.get(code);
  if (def === undefined) {
    def = null;
    if (Number.isInteger(code) && code > 0) {
      try {
        const raw = JSON.parse(readFileSync(require.resolve(`epsg-index/s/${code}.json`), 'utf8')) as {
          code: string;
          name: string;
          kind: string;
          proj4: string | null;
          wkt: string | null;
        };
        if (raw.proj4) {
          def = { code, name: raw.name, kind: raw.kind, proj4: raw.proj4, wkt: raw.wkt ?? '' };
        }
      } catch {
        def = null;
      }
    }
    definitions.set(code, def);
  }
  if (!def) {
    throw new CrsError(
      text,
      `EPSG code ${code} is not in the EPSG database (epsg-index) or has no projection definition; expected a coordinate system code such as 4326 or 32633`,
    );
  }
  return def;
}

/** A point transformation between two CRSs, and notes worth telling the user. */
export interface CrsTransform {
  readonly identity: boolean;
  forward(x: number, y: number): [number, number];
  /** e.g. a datum grid proj4js does not have offline. */
  readonly warnings: readonly string[];
}

/** proj4 text of a CRS without datum-shift grids (not available offline), with a warning when one was dropped. */
function usableProj4(ref: CrsRef, warnings: string[]): string {
  const def = epsgDefinition(ref.epsg, ref.text);
  let text = def.proj4.replace(/\s*\+type=crs\b/, '');
  const grid = /\s*\+nadgrids=([^\s]+)/.exec(text);
  if (grid && grid[1] !== '@null') {
    text = text.replace(grid[0], '');
    warnings.push(
      `EPSG:${ref.epsg} (${def.name}) uses the datum grid ${grid[1]}, which is not available offline: transformed without it (errors up to a few metres)`,
    );
  }
  return text;
}

/** The transformation from one CRS to another (x = easting or longitude). */
export function crsTransform(from: CrsRef, to: CrsRef): CrsTransform {
  if (from.epsg === to.epsg) return { identity: true, forward: (x, y) => [x, y], warnings: [] };
  const warnings: string[] = [];
  const converter = proj4(usableProj4(from, warnings), usableProj4(to, warnings));
  return {
    identity: false,
    forward: (x, y) => {
      const out = converter.forward([x, y]);
      return [out[0]!, out[1]!];
    },
    warnings,
  };
}
