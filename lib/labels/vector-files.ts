/**
 * Labels in the vector formats users have besides GeoJSON: Shapefile (`.shp` with its `.dbf`,
 * `.prj` and optional `.cpg` next to it, or all of them in a `.zip`), GeoPackage (`.gpkg`, one
 * feature table: `layer`, or the only one) and FlatGeobuf (`.fgb`). Each feature becomes the
 * same {@link GeoFeature} a GeoJSON feature does, through the same geometry checks; a feature
 * without geometry (or with an empty one) is kept as an unsupported shape 'null geometry', so
 * that it is skipped and counted. The CRS comes from the file (the `.prj` WKT, the GeoPackage's
 * `gpkg_spatial_ref_sys` row, the FlatGeobuf header) unless the caller gives one.
 *
 * Memory: a `.shp`/`.dbf` pair and a FlatGeobuf are streamed (one record at a time; local or
 * S3); a zipped shapefile and a GeoPackage (an SQLite database, read with sql.js) are read whole
 * into memory, which label files allow. The features themselves are kept, as for GeoJSON.
 */
import { Readable } from 'node:stream';
import { unzipSync } from 'fflate';
import { deserialize as deserializeFgb } from 'flatgeobuf/lib/mjs/geojson.js';
import type { HeaderMeta } from 'flatgeobuf/lib/mjs/header-meta.js';
import shapefile from 'shapefile';
import initSqlJs from 'sql.js';
import type { Database, SqlValue } from 'sql.js';
import { CrsError, epsgDefinition } from '../geo/crs.js';
import type { CrsRef } from '../geo/crs.js';
import { crsFromWkt } from '../geo/wkt-crs.js';
import { StorageError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import { basenameUri } from '../storage/uri.js';
import { LabelError } from './errors.js';
import type { GeoFeature } from './geo-labels.js';
import { featureShape } from './geometry.js';
import { decodeGpkgGeometry, WkbError } from './wkb.js';

/** The vector formats read here (GeoJSON is read by geojson-stream.ts). */
export type VectorFormat = 'shapefile' | 'zipped shapefile' | 'geopackage' | 'flatgeobuf';

/** The format a labels file's name says, or undefined for anything else (read as GeoJSON). */
export function vectorFormatOf(uri: string): VectorFormat | undefined {
  const name = basenameUri(uri).toLowerCase();
  if (name.endsWith('.shp')) return 'shapefile';
  if (name.endsWith('.zip')) return 'zipped shapefile';
  if (name.endsWith('.gpkg')) return 'geopackage';
  if (name.endsWith('.fgb')) return 'flatgeobuf';
  return undefined;
}

/** What reading a vector labels file needs besides its name. */
export interface VectorReadOptions {
  /** The GeoPackage table, or the shapefile in a zip (its name without `.shp`). */
  readonly layer?: string;
  /** How the user gives the layer, for messages. @default '--layer (layer: in a pipeline)' */
  readonly layerOption?: string;
  /** The labels' CRS; the file's is then not needed (a shapefile may lack its `.prj`). */
  readonly crs?: CrsRef;
  readonly signal?: AbortSignal;
}

/** Features of a vector file, their CRS, and the layer read when the file has layers. */
export interface VectorRead {
  readonly format: VectorFormat;
  readonly features: GeoFeature[];
  readonly crs: CrsRef;
  readonly layer?: string;
}

const NULL_GEOMETRY = { kind: 'unsupported', type: 'null geometry' } as const;

function feature(
  index: number,
  geometry: unknown,
  properties: Record<string, unknown>,
  uri: string,
): GeoFeature {
  if (geometry === null || geometry === undefined) return { index, properties, shape: NULL_GEOMETRY };
  return { index, properties, shape: featureShape({ geometry, properties }, index, uri) };
}

/** Errors of the format libraries become one LabelError line naming the file; ours pass through. */
function wrap(error: unknown, uri: string, what: string): never {
  if (error instanceof LabelError || error instanceof StorageError) throw error;
  if (error instanceof Error && error.name === 'AbortError') throw error;
  if (error instanceof CrsError) throw new LabelError(`${uri}: ${error.message}`);
  const message = error instanceof Error ? error.message : String(error);
  throw new LabelError(`${uri}: not a readable ${what} (${message})`);
}

/** How the layer is given, for messages. */
export const LAYER_OPTION = '--layer (layer: in a pipeline)';

function noLayers(uri: string, format: VectorFormat, layer: string | undefined): void {
  if (layer !== undefined) {
    throw new LabelError(
      `${uri}: layer '${layer}' given, but a ${format} has one layer; a layer chooses a GeoPackage table or a shapefile in a .zip`,
    );
  }
}

/** The CRS named in a WKT, as a LabelError naming where the WKT came from. */
function wktCrs(wkt: string, where: string): CrsRef {
  try {
    return crsFromWkt(wkt);
  } catch (error) {
    if (error instanceof CrsError) throw new LabelError(`${where}: ${error.message}`);
    throw error;
  }
}

function epsgCrs(code: number, where: string): CrsRef {
  try {
    epsgDefinition(code);
  } catch (error) {
    if (error instanceof CrsError) throw new LabelError(`${where}: ${error.message}`);
    throw error;
  }
  return { epsg: code, text: `EPSG:${code}` };
}

// ---------------------------------------------------------------- shapefile

/** TextDecoder label of a `.cpg` code page (e.g. `UTF-8`, `1252`, `ISO-8859-1`). */
function encodingOf(cpg: string, where: string): string {
  const raw = cpg.trim();
  const label = /^\d+$/.test(raw) ? `windows-${raw}` : raw;
  try {
    new TextDecoder(label);
  } catch {
    throw new LabelError(
      `${where}: code page '${raw}' is not one geobatch can decode; expected e.g. UTF-8, 1252 or ISO-8859-1`,
    );
  }
  return label;
}

type ShapefileInput = Readable | Uint8Array;

async function readShapes(
  shp: ShapefileInput,
  dbf: ShapefileInput,
  encoding: string | undefined,
  uri: string,
): Promise<GeoFeature[]> {
  const features: GeoFeature[] = [];
  let source: Awaited<ReturnType<typeof shapefile.open>> | undefined;
  try {
    source = await shapefile.open(shp, dbf, encoding ? { encoding } : {});
    for (;;) {
      const next = await source.read();
      if (next.done) break;
      const f = next.value;
      features.push(feature(features.length, f.geometry, f.properties ?? {}, uri));
    }
  } catch (error) {
    await source?.cancel().catch(() => undefined);
    wrap(error, uri, 'shapefile');
  }
  return features;
}

/** The sidecar `ext` of a `.shp`, spelled in the `.shp`'s case first, then the other. */
async function sidecar(
  storage: Storage,
  shpUri: string,
  ext: string,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const base = shpUri.slice(0, -4);
  const upper = shpUri.slice(-4) === '.SHP';
  for (const e of upper ? [ext.toUpperCase(), ext] : [ext, ext.toUpperCase()]) {
    if (await storage.exists(base + e, signal ? { signal } : {})) return base + e;
  }
  return undefined;
}

async function readShapefile(storage: Storage, uri: string, options: VectorReadOptions): Promise<VectorRead> {
  noLayers(uri, 'shapefile', options.layer);
  const io = options.signal ? { signal: options.signal } : {};
  if (!(await storage.exists(uri, io))) throw new LabelError(`${uri}: no such file`);
  const dbf = await sidecar(storage, uri, '.dbf', options.signal);
  if (!dbf) {
    throw new LabelError(
      `${uri.slice(0, -4)}.dbf: missing; a shapefile's attributes (the .dbf) must lie next to its .shp`,
    );
  }
  let crs = options.crs;
  if (!crs) {
    const prj = await sidecar(storage, uri, '.prj', options.signal);
    if (!prj) {
      throw new LabelError(
        `${uri.slice(0, -4)}.prj: missing, so the shapefile's CRS is unknown; put the .prj next to the .shp or pass --crs EPSG:<code>`,
      );
    }
    crs = wktCrs((await storage.read(prj, io)).toString('utf8'), prj);
  }
  const cpg = await sidecar(storage, uri, '.cpg', options.signal);
  const encoding = cpg ? encodingOf((await storage.read(cpg, io)).toString('latin1'), cpg) : undefined;
  const shp = await storage.createReadStream(uri, io);
  const attributes = await storage.createReadStream(dbf, io).catch((error: unknown) => {
    shp.destroy();
    throw error;
  });
  try {
    const features = await readShapes(shp, attributes, encoding, uri);
    return { format: 'shapefile', features, crs };
  } finally {
    shp.destroy();
    attributes.destroy();
  }
}

async function readZippedShapefile(
  storage: Storage,
  uri: string,
  options: VectorReadOptions,
): Promise<VectorRead> {
  const io = options.signal ? { signal: options.signal } : {};
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(await storage.read(uri, io), {
      filter: (f) => /\.(shp|dbf|prj|cpg)$/i.test(f.name) && !/(^|\/)(__MACOSX\/|\._)/.test(f.name),
    });
  } catch (error) {
    wrap(error, uri, 'zip file');
  }
  const names = Object.keys(entries);
  const layers = names.filter((n) => /\.shp$/i.test(n)).sort();
  const layerOf = (n: string): string => n.replace(/^.*\//, '').slice(0, -4);
  let shp: string;
  if (layers.length === 0) {
    throw new LabelError(
      `${uri}: the zip holds no .shp file; expected a zipped shapefile (.shp, .dbf, .prj)`,
    );
  }
  if (options.layer !== undefined) {
    const match = layers.find((n) => layerOf(n) === options.layer);
    if (!match) {
      throw new LabelError(
        `${uri}: no shapefile '${options.layer}' in the zip; its shapefiles: ${layers.map(layerOf).join(', ')}`,
      );
    }
    shp = match;
  } else if (layers.length === 1) {
    shp = layers[0]!;
  } else {
    throw new LabelError(
      `${uri}: the zip holds ${layers.length} shapefiles (${layers.map(layerOf).join(', ')}); choose one with ${options.layerOption ?? LAYER_OPTION}`,
    );
  }
  const entry = (ext: string): string | undefined => {
    const want = (shp.slice(0, -4) + ext).toLowerCase();
    return names.find((n) => n.toLowerCase() === want);
  };
  const dbf = entry('.dbf');
  if (!dbf)
    throw new LabelError(
      `${uri}: ${shp.slice(0, -4)}.dbf is missing from the zip; a shapefile needs its .dbf`,
    );
  let crs = options.crs;
  if (!crs) {
    const prj = entry('.prj');
    if (!prj) {
      throw new LabelError(
        `${uri}: ${shp.slice(0, -4)}.prj is missing from the zip, so the shapefile's CRS is unknown; add it or pass --crs EPSG:<code>`,
      );
    }
    crs = wktCrs(Buffer.from(entries[prj]!).toString('utf8'), `${uri}: ${prj}`);
  }
  const cpg = entry('.cpg');
  const encoding = cpg
    ? encodingOf(Buffer.from(entries[cpg]!).toString('latin1'), `${uri}: ${cpg}`)
    : undefined;
  const features = await readShapes(entries[shp]!, entries[dbf]!, encoding, `${uri}: ${shp}`);
  return { format: 'zipped shapefile', features, crs, layer: layerOf(shp) };
}

// ---------------------------------------------------------------- FlatGeobuf

async function readFlatGeobuf(
  storage: Storage,
  uri: string,
  options: VectorReadOptions,
): Promise<VectorRead> {
  noLayers(uri, 'flatgeobuf', options.layer);
  const io = options.signal ? { signal: options.signal } : {};
  const source = await storage.createReadStream(uri, io);
  const stream = Readable.toWeb(source) as unknown as ReadableStream;
  let header: HeaderMeta | undefined;
  const features: GeoFeature[] = [];
  try {
    for await (const f of deserializeFgb(stream, { headerMetaFn: (h: HeaderMeta) => (header = h) })) {
      const g = f.geometry as { coordinates?: unknown; geometries?: unknown } | null | undefined;
      const empty = !g || (Array.isArray(g.coordinates) && g.coordinates.length === 0 && !g.geometries);
      features.push(feature(features.length, empty ? null : g, f.properties ?? {}, uri));
    }
  } catch (error) {
    wrap(error, uri, 'FlatGeobuf file');
  } finally {
    // the reader stops at the last feature, before the stream's end
    source.destroy();
  }
  let crs = options.crs;
  if (!crs) {
    const c = header?.crs;
    if (c && (c.org === null || c.org.toUpperCase() === 'EPSG') && c.code > 0) {
      crs = epsgCrs(c.code, `${uri}: the header's CRS`);
    } else if (c?.wkt) {
      crs = wktCrs(c.wkt, `${uri}: the header's CRS`);
    } else {
      throw new LabelError(
        `${uri}: the FlatGeobuf header names no CRS${c ? ` (${c.org ?? ''}:${c.code} ${c.name ?? ''})` : ''}; pass --crs EPSG:<code>`,
      );
    }
  }
  return { format: 'flatgeobuf', features, crs };
}

// ---------------------------------------------------------------- GeoPackage

let sqlJs: ReturnType<typeof initSqlJs> | undefined;

function rows(db: Database, sql: string, params: SqlValue[] = []): Record<string, SqlValue>[] {
  const stmt = db.prepare(sql);
  try {
    stmt.bind(params);
    const out: Record<string, SqlValue>[] = [];
    while (stmt.step()) out.push(stmt.getAsObject());
    return out;
  } finally {
    stmt.free();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function gpkgCrs(db: Database, srsId: number, where: string): CrsRef {
  const srs = rows(
    db,
    'SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys WHERE srs_id = ?',
    [srsId],
  )[0];
  if (!srs)
    throw new LabelError(
      `${where}: srs_id ${srsId} is not in gpkg_spatial_ref_sys; the GeoPackage is invalid`,
    );
  const org = typeof srs.organization === 'string' ? srs.organization : '';
  const code = Number(srs.organization_coordsys_id);
  if (org.toUpperCase() === 'EPSG' && Number.isInteger(code) && code > 0) return epsgCrs(code, where);
  if (srsId <= 0 || org.toUpperCase() === 'NONE') {
    throw new LabelError(
      `${where}: srs_id ${srsId} is an undefined ${srsId === 0 ? 'geographic' : 'Cartesian'} CRS; pass --crs EPSG:<code>`,
    );
  }
  if (typeof srs.definition === 'string' && srs.definition.trim() !== '' && srs.definition !== 'undefined') {
    return wktCrs(srs.definition, `${where} (srs_id ${srsId}, ${org}:${code})`);
  }
  throw new LabelError(
    `${where}: srs_id ${srsId} (${org}:${code}) is no EPSG CRS and has no definition; pass --crs EPSG:<code>`,
  );
}

async function readGeoPackage(
  storage: Storage,
  uri: string,
  options: VectorReadOptions,
): Promise<VectorRead> {
  const bytes = await storage.read(uri, options.signal ? { signal: options.signal } : {});
  sqlJs ??= initSqlJs();
  const SQL = await sqlJs;
  let db: Database;
  try {
    db = new SQL.Database(bytes);
  } catch (error) {
    wrap(error, uri, 'GeoPackage');
  }
  try {
    let layers: string[];
    try {
      layers = rows(
        db,
        "SELECT table_name FROM gpkg_contents WHERE data_type = 'features' ORDER BY table_name",
      ).map((r) => String(r.table_name));
    } catch (error) {
      wrap(error, uri, 'GeoPackage (no gpkg_contents table: is it a GeoPackage?)');
    }
    let layer: string;
    if (layers.length === 0) throw new LabelError(`${uri}: the GeoPackage has no feature tables (layers)`);
    if (options.layer !== undefined) {
      if (!layers.includes(options.layer)) {
        throw new LabelError(
          `${uri}: no layer '${options.layer}' in the GeoPackage; its layers: ${layers.join(', ')}`,
        );
      }
      layer = options.layer;
    } else if (layers.length === 1) {
      layer = layers[0]!;
    } else {
      throw new LabelError(
        `${uri}: the GeoPackage has ${layers.length} layers (${layers.join(', ')}); choose one with ${options.layerOption ?? LAYER_OPTION}`,
      );
    }
    const where = `${uri}: layer '${layer}'`;
    const column = rows(db, 'SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?', [
      layer,
    ])[0];
    if (!column) throw new LabelError(`${where}: not in gpkg_geometry_columns; the GeoPackage is invalid`);
    const geometryColumn = String(column.column_name);
    const crs = options.crs ?? gpkgCrs(db, Number(column.srs_id), where);
    // the integer primary key is the feature id (GDAL's FID), not an attribute
    const pk = rows(db, `PRAGMA table_info(${quoteIdent(layer)})`)
      .filter((c) => Number(c.pk) > 0)
      .map((c) => String(c.name));
    const order = pk.length === 1 ? ` ORDER BY ${quoteIdent(pk[0]!)}` : '';
    const features: GeoFeature[] = [];
    const stmt = db.prepare(`SELECT * FROM ${quoteIdent(layer)}${order}`);
    try {
      while (stmt.step()) {
        const row = stmt.getAsObject();
        const index = features.length;
        const blob = row[geometryColumn];
        const properties: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(row)) {
          if (k !== geometryColumn && !(pk.length === 1 && k === pk[0])) properties[k] = v;
        }
        let geometry: unknown = null;
        if (blob instanceof Uint8Array) {
          try {
            geometry = decodeGpkgGeometry(blob);
          } catch (error) {
            if (error instanceof WkbError)
              throw new LabelError(`${where}: feature ${index}: ${error.message}`);
            throw error;
          }
        } else if (blob !== null && blob !== undefined) {
          throw new LabelError(
            `${where}: feature ${index}: column '${geometryColumn}' holds a ${typeof blob}; expected a GeoPackage geometry blob`,
          );
        }
        features.push(feature(index, geometry, properties, where));
      }
    } finally {
      stmt.free();
    }
    return { format: 'geopackage', features, crs, layer };
  } catch (error) {
    wrap(error, uri, 'GeoPackage');
  } finally {
    db.close();
  }
}

/** Reads a Shapefile, zipped Shapefile, GeoPackage or FlatGeobuf (by its name; see {@link vectorFormatOf}). */
export async function readVectorFile(
  storage: Storage,
  uri: string,
  format: VectorFormat,
  options: VectorReadOptions = {},
): Promise<VectorRead> {
  switch (format) {
    case 'shapefile':
      return readShapefile(storage, uri, options);
    case 'zipped shapefile':
      return readZippedShapefile(storage, uri, options);
    case 'geopackage':
      return readGeoPackage(storage, uri, options);
    case 'flatgeobuf':
      return readFlatGeobuf(storage, uri, options);
  }
}
