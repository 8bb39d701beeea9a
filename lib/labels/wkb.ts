/**
 * GeoPackage geometry blobs (the "GP" header of GeoPackage 1.x, section 2.1.3, followed by
 * well-known binary) decoded into GeoJSON geometry objects, so that they go through the same
 * checks as GeoJSON's (geometry.ts). Z and M values are dropped; ISO (1000/2000/3000) and
 * PostGIS extended type codes are both read. Pure, no I/O.
 */

/** A GeoJSON geometry object as decoded (coordinates as nested arrays of numbers). */
export interface DecodedGeometry {
  readonly type: string;
  readonly coordinates?: unknown;
  readonly geometries?: DecodedGeometry[];
}

/** Malformed WKB or GeoPackage header; the caller adds the file and the feature. */
export class WkbError extends Error {
  override readonly name = 'WkbError';
}

const TYPES: Record<number, string> = {
  1: 'Point',
  2: 'LineString',
  3: 'Polygon',
  4: 'MultiPoint',
  5: 'MultiLineString',
  6: 'MultiPolygon',
  7: 'GeometryCollection',
  8: 'CircularString',
  9: 'CompoundCurve',
  10: 'CurvePolygon',
  11: 'MultiCurve',
  12: 'MultiSurface',
  15: 'PolyhedralSurface',
  16: 'TIN',
  17: 'Triangle',
};

class Reader {
  private offset: number;
  private little = true;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    offset: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = offset;
  }

  need(n: number): void {
    if (this.offset + n > this.bytes.length) {
      throw new WkbError(
        `the WKB ends at byte ${this.bytes.length} where ${n} more bytes are needed at byte ${this.offset} (truncated?)`,
      );
    }
  }

  byteOrder(): void {
    this.need(1);
    const b = this.bytes[this.offset++]!;
    if (b !== 0 && b !== 1)
      throw new WkbError(`byte ${this.offset - 1} is ${b}; expected a WKB byte order 0 or 1`);
    this.little = b === 1;
  }

  uint32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset, this.little);
    this.offset += 4;
    return v;
  }

  float64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.offset, this.little);
    this.offset += 8;
    return v;
  }

  count(what: string): number {
    const n = this.uint32();
    // each element takes at least 8 bytes: a count larger than that is a corrupt blob, not a huge one
    if (n * 8 > this.bytes.length - this.offset + 8) {
      throw new WkbError(
        `${what} count ${n} at byte ${this.offset - 4} is more than the ${this.bytes.length - this.offset} bytes left can hold (truncated or corrupt?)`,
      );
    }
    return n;
  }
}

function geometry(r: Reader): DecodedGeometry {
  r.byteOrder();
  const raw = r.uint32();
  let hasZ = (raw & 0x80000000) !== 0;
  let hasM = (raw & 0x40000000) !== 0;
  if (raw & 0x20000000) r.uint32(); // EWKB SRID
  const code = raw & 0x0fffffff;
  const base = code % 1000;
  const iso = Math.floor(code / 1000);
  if (iso === 1 || iso === 3) hasZ = true;
  if (iso === 2 || iso === 3) hasM = true;
  const type = TYPES[base];
  if (type === undefined || iso > 3)
    throw new WkbError(`geometry type code ${code} is not a WKB geometry type`);
  const dims = 2 + (hasZ ? 1 : 0) + (hasM ? 1 : 0);
  const point = (): number[] => {
    const p: number[] = [];
    for (let k = 0; k < dims; k++) {
      const v = r.float64();
      if (k < 2) p.push(v);
    }
    return p;
  };
  const points = (): number[][] => Array.from({ length: r.count('point') }, point);
  const rings = (): number[][][] => Array.from({ length: r.count('ring') }, points);
  switch (type) {
    case 'Point': {
      const p = point();
      return Number.isNaN(p[0]) && Number.isNaN(p[1]) ? { type, coordinates: [] } : { type, coordinates: p };
    }
    case 'LineString':
      return { type, coordinates: points() };
    case 'Polygon':
      return { type, coordinates: rings() };
    case 'MultiPoint':
    case 'MultiLineString':
    case 'MultiPolygon': {
      const parts = Array.from({ length: r.count('part') }, () => geometry(r));
      return { type, coordinates: parts.map((g) => g.coordinates) };
    }
    case 'GeometryCollection':
      return { type, geometries: Array.from({ length: r.count('geometry') }, () => geometry(r)) };
    default:
      // curves and surfaces: named, not decoded (labels take polygons)
      return { type };
  }
}

/** Whether a decoded geometry has no coordinates at all (an empty point, polygon, collection...). */
export function isEmptyGeometry(g: DecodedGeometry): boolean {
  if (g.geometries) return g.geometries.every(isEmptyGeometry);
  return Array.isArray(g.coordinates) && g.coordinates.length === 0;
}

/** Decodes one well-known binary geometry starting at `offset`. */
export function decodeWkb(bytes: Uint8Array, offset = 0): DecodedGeometry {
  return geometry(new Reader(bytes, offset));
}

const ENVELOPE_BYTES = [0, 32, 48, 48, 64];

/**
 * Decodes a GeoPackage geometry blob: null for an empty geometry (the header's empty flag or
 * an empty WKB), else the geometry. Throws {@link WkbError} for a blob that is not one.
 */
export function decodeGpkgGeometry(blob: Uint8Array): DecodedGeometry | null {
  if (blob.length < 8 || blob[0] !== 0x47 || blob[1] !== 0x50) {
    throw new WkbError(
      `the blob does not start with the GeoPackage magic 'GP' (starts ${Buffer.from(blob.subarray(0, 4)).toString('hex') || 'empty'}); expected a GeoPackage geometry`,
    );
  }
  const flags = blob[3]!;
  if (flags & 0x20)
    throw new WkbError('the blob uses a GeoPackage extended geometry type, which geobatch does not read');
  const envelope = ENVELOPE_BYTES[(flags >> 1) & 0x07];
  if (envelope === undefined)
    throw new WkbError(`the header's envelope code ${(flags >> 1) & 0x07} is invalid (0..4)`);
  if (flags & 0x10) return null;
  const g = decodeWkb(blob, 8 + envelope);
  return isEmptyGeometry(g) ? null : g;
}
