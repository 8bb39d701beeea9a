/**
 * The box structure of a JP2 file (ISO 15444-1 Annex I), read by range so that only the header
 * boxes are fetched: the image header (size, components, bit depth, signedness), the colour
 * space, and the georeferencing boxes — GeoJP2 (a `uuid` box holding a degenerate GeoTIFF) and
 * GMLJP2 (an `asoc` box whose `xml` box holds a GML RectifiedGrid). The codestream box (`jp2c`)
 * is located, not read.
 */
import { RasterError } from './errors.js';

/** The 12-byte JP2 signature box. */
export const JP2_SIGNATURE = '0000000c6a5020200d0a870a';
/** The UUID of a GeoJP2 box. */
const GEOJP2_UUID = 'b14bf8bd083d4b43a5ae8cd7d5a6ce03';

/** Reads `length` bytes at `offset` (fewer at the end of the file). */
export type RangeReader = (offset: number, length: number) => Promise<Buffer>;

export interface Jp2Boxes {
  /** From the `ihdr` box. */
  readonly header: {
    readonly width: number;
    readonly height: number;
    readonly components: number;
    /** Bits per component; undefined when they differ (then the `bpcc` box says each). */
    readonly bits: number | undefined;
    readonly signed: boolean | undefined;
  };
  /** Enumerated colour space of the `colr` box (16 sRGB, 17 greyscale, 18 sYCC), when given. */
  readonly colourSpace: number | undefined;
  /** The GeoTIFF bytes of a GeoJP2 box. */
  readonly geoJp2: Buffer | undefined;
  /** The XML of the GMLJP2 box (label `gml.root-instance` inside `gml.data`). */
  readonly gml: string | undefined;
  /** Where the contiguous codestream is. */
  readonly codestream: { readonly offset: number; readonly length: number };
}

interface Box {
  readonly type: string;
  /** Offset of the box's contents. */
  readonly start: number;
  /** Offset just past the box. */
  readonly end: number;
}

/** Boxes at [from, to), by their headers only. */
async function listBoxes(read: RangeReader, from: number, to: number, uri: string): Promise<Box[]> {
  const boxes: Box[] = [];
  let offset = from;
  while (offset + 8 <= to) {
    const head = await read(offset, 16);
    if (head.length < 8) break;
    let length = head.readUInt32BE(0);
    const type = head.toString('latin1', 4, 8);
    let headerBytes = 8;
    if (length === 1) {
      if (head.length < 16)
        throw new RasterError(`${uri}: truncated JP2: box '${type}' at byte ${offset} is cut`);
      length = Number(head.readBigUInt64BE(8));
      headerBytes = 16;
    } else if (length === 0) {
      length = to - offset;
    }
    if (length < headerBytes || offset + length > to) {
      throw new RasterError(
        `${uri}: truncated or corrupt JP2: box '${type}' at byte ${offset} claims ${length} bytes but ${to - offset} remain`,
      );
    }
    boxes.push({ type, start: offset + headerBytes, end: offset + length });
    offset += length;
  }
  return boxes;
}

async function contents(read: RangeReader, box: Box, uri: string): Promise<Buffer> {
  const data = await read(box.start, box.end - box.start);
  if (data.length < box.end - box.start)
    throw new RasterError(`${uri}: truncated JP2: box '${box.type}' is cut`);
  return data;
}

/** Reads the header boxes of a JP2 file of `size` bytes. */
export async function readJp2Boxes(read: RangeReader, size: number, uri: string): Promise<Jp2Boxes> {
  const top = await listBoxes(read, 0, size, uri);
  const jp2h = top.find((b) => b.type === 'jp2h');
  const jp2c = top.find((b) => b.type === 'jp2c');
  if (!jp2h) throw new RasterError(`${uri}: corrupt JP2: no JP2 header box ('jp2h')`);
  if (!jp2c) throw new RasterError(`${uri}: truncated or corrupt JP2: no codestream box ('jp2c')`);
  const inner = await listBoxes(read, jp2h.start, jp2h.end, uri);
  const ihdrBox = inner.find((b) => b.type === 'ihdr');
  if (!ihdrBox || ihdrBox.end - ihdrBox.start < 14) {
    throw new RasterError(`${uri}: corrupt JP2: no image header box ('ihdr') in 'jp2h'`);
  }
  const ihdr = await contents(read, ihdrBox, uri);
  const bpc = ihdr[10]!;
  const header = {
    height: ihdr.readUInt32BE(0),
    width: ihdr.readUInt32BE(4),
    components: ihdr.readUInt16BE(8),
    bits: bpc === 255 ? undefined : (bpc & 0x7f) + 1,
    signed: bpc === 255 ? undefined : (bpc & 0x80) !== 0,
  };
  let colourSpace: number | undefined;
  const colrBox = inner.find((b) => b.type === 'colr');
  if (colrBox) {
    const colr = await contents(read, colrBox, uri);
    if (colr[0] === 1 && colr.length >= 7) colourSpace = colr.readUInt32BE(3);
  }
  let geoJp2: Buffer | undefined;
  for (const box of top.filter((b) => b.type === 'uuid' && b.end - b.start > 16)) {
    const data = await contents(read, box, uri);
    if (data.subarray(0, 16).toString('hex') === GEOJP2_UUID) {
      geoJp2 = data.subarray(16);
      break;
    }
  }
  let gml: string | undefined;
  for (const asoc of top.filter((b) => b.type === 'asoc')) {
    gml = await findGml(read, asoc, uri, false);
    if (gml) break;
  }
  return {
    header,
    colourSpace,
    geoJp2,
    gml,
    codestream: { offset: jp2c.start, length: jp2c.end - jp2c.start },
  };
}

/** The XML of a GMLJP2 `asoc` tree: `asoc(lbl gml.data, asoc(lbl gml.root-instance, xml))`. */
async function findGml(
  read: RangeReader,
  asoc: Box,
  uri: string,
  inData: boolean,
): Promise<string | undefined> {
  const children = await listBoxes(read, asoc.start, asoc.end, uri);
  const lblBox = children[0]?.type === 'lbl ' ? children[0] : undefined;
  const label = lblBox ? (await contents(read, lblBox, uri)).toString('utf8').replace(/\0+$/, '') : '';
  if (!inData && label !== 'gml.data') return undefined;
  if (inData && label === 'gml.root-instance') {
    const xml = children.find((b) => b.type === 'xml ');
    return xml ? (await contents(read, xml, uri)).toString('utf8') : undefined;
  }
  for (const child of children.filter((b) => b.type === 'asoc')) {
    const found = await findGml(read, child, uri, true);
    if (found) return found;
  }
  return undefined;
}

export interface GmlGeoref {
  /** GDAL geotransform of the pixel corners. */
  readonly geotransform: [number, number, number, number, number, number];
  readonly epsg: number | null;
}

/**
 * The georeferencing of a GMLJP2 RectifiedGrid. Its origin is the centre of the first pixel
 * (GML grid points are pixel centres), so the corner is half an offset vector up-left; for an
 * EPSG geographic CRS in the `urn:ogc:def:crs:EPSG::` form the coordinates are latitude first.
 */
export function parseGmlGeoref(xml: string): GmlGeoref | undefined {
  const grid = /<(?:\w+:)?RectifiedGrid\b[\s\S]*?<\/(?:\w+:)?RectifiedGrid>/.exec(xml)?.[0];
  if (!grid) return undefined;
  const numbers = (s: string | undefined): number[] =>
    (s ?? '')
      .trim()
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(Number);
  const origin = numbers(/<(?:\w+:)?pos\b[^>]*>([^<]*)</.exec(grid)?.[1]);
  const vectors = [...grid.matchAll(/<(?:\w+:)?offsetVector\b[^>]*>([^<]*)</g)].map((m) => numbers(m[1]));
  const [v1, v2] = vectors;
  if (origin.length < 2 || !v1 || !v2 || v1.length < 2 || v2.length < 2) return undefined;
  if ([...origin, ...v1, ...v2].some((n) => !Number.isFinite(n))) return undefined;
  const srs = /srsName="([^"]+)"/.exec(grid)?.[1] ?? /srsName="([^"]+)"/.exec(xml)?.[1] ?? '';
  const code = /EPSG:(?:[\d.]*:)?(\d+)/i.exec(srs)?.[1] ?? /EPSG\/\d+\/(\d+)/i.exec(srs)?.[1];
  const epsg = code ? Number(code) : null;
  let [ox, oy] = origin as [number, number];
  let [ax, ay] = v1 as [number, number];
  let [bx, by] = v2 as [number, number];
  if (epsg !== null && epsg >= 4000 && epsg < 5000 && /^urn:/i.test(srs)) {
    [ox, oy, ax, ay, bx, by] = [oy, ox, ay, ax, by, bx];
  }
  return {
    geotransform: [ox - 0.5 * ax - 0.5 * bx, ax, bx, oy - 0.5 * ay - 0.5 * by, ay, by],
    epsg,
  };
}
