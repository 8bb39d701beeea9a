/**
 * The parts of a JPEG 2000 codestream (ISO 15444-1 Annex A) that window reads need: the main
 * header (image and tile grid from SIZ, decomposition levels from COD), where each tile's
 * tile-parts are (from a TLM marker when the writer left one, else by walking the SOT markers,
 * 12 bytes each), and a one-tile codestream per tile: the main header with SIZ narrowed to the
 * tile's rectangle followed by the tile's own tile-parts renumbered as tile 0. Coordinates on the
 * reference grid are unchanged, so code-blocks and precincts — and thus the decoded samples — are
 * exactly those of the tile in the full image, and any decoder that decodes whole codestreams
 * decodes one tile.
 */
import { RasterError } from './errors.js';
import type { RangeReader } from './jp2-boxes.js';

const SOC = 0xff4f;
const SIZ = 0xff51;
const COD = 0xff52;
const TLM = 0xff55;
const PLM = 0xff57;
const PPM = 0xff60;
const SOT = 0xff90;
const EOC = 0xffd9;

export interface TilePart {
  readonly offset: number;
  readonly length: number;
}

export interface Codestream {
  /** Image rectangle on the reference grid: [x0, x1) x [y0, y1). */
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
  readonly tileWidth: number;
  readonly tileHeight: number;
  readonly tileX0: number;
  readonly tileY0: number;
  readonly tilesAcross: number;
  readonly tilesDown: number;
  readonly components: number;
  /** Bit depth and signedness per component. */
  readonly depths: readonly {
    readonly bits: number;
    readonly signed: boolean;
    readonly dx: number;
    readonly dy: number;
  }[];
  /** Wavelet decomposition levels (COD): the resolution levels below full are 1..levels. */
  readonly levels: number;
  readonly layers: number;
  readonly reversible: boolean;
  /** Packed packet headers in the main header (PPM): tiles cannot be cut out on their own. */
  readonly packedHeaders: boolean;
  /** Tile-parts of each tile (absolute file offsets), in tile index order. */
  readonly tileParts: readonly (readonly TilePart[])[];
  /** How the tile-parts were found. */
  readonly index: 'tlm' | 'sot';
  /** Main-header marker segments kept in one-tile codestreams (all but SOC, SIZ, TLM, PLM). */
  readonly headerSegments: Buffer;
  /** The SIZ segment as read. */
  readonly siz: Buffer;
}

/**
 * Reads the main header and the tile-part index of the codestream at [offset, offset + length).
 * `uri` names the file in errors.
 */
export async function readCodestream(
  read: RangeReader,
  offset: number,
  length: number,
  uri: string,
): Promise<Codestream> {
  const end = offset + length;
  let head = await read(offset, Math.min(length, 4096));
  const need = async (upTo: number): Promise<void> => {
    if (upTo - offset <= head.length) return;
    if (upTo > end)
      throw new RasterError(`${uri}: truncated JPEG 2000 codestream: its main header is cut at byte ${end}`);
    head = await read(offset, Math.min(length, Math.max(upTo - offset, head.length * 2)));
  };
  await need(offset + 4);
  if (head.readUInt16BE(0) !== SOC || head.readUInt16BE(2) !== SIZ) {
    throw new RasterError(
      `${uri}: corrupt JPEG 2000 codestream: it starts with ${head.subarray(0, 4).toString('hex')}; expected the SOC and SIZ markers (ff4fff51)`,
    );
  }
  let pos = 2;
  let siz: Buffer | undefined;
  let levels = 0;
  let layers = 1;
  let reversible = false;
  let packedHeaders = false;
  const kept: Buffer[] = [];
  const tlm: Buffer[] = [];
  for (;;) {
    await need(offset + pos + 4);
    const marker = head.readUInt16BE(pos);
    if (marker === SOT) break;
    if (marker >> 8 !== 0xff) {
      throw new RasterError(
        `${uri}: corrupt JPEG 2000 main header: byte ${offset + pos} is not a marker (${marker.toString(16)})`,
      );
    }
    const segLength = head.readUInt16BE(pos + 2);
    await need(offset + pos + 2 + segLength);
    const segment = head.subarray(pos, pos + 2 + segLength);
    if (marker === SIZ) siz = Buffer.from(segment);
    else if (marker === TLM) tlm.push(Buffer.from(segment));
    else if (marker !== PLM) kept.push(Buffer.from(segment));
    if (marker === PPM) packedHeaders = true;
    if (marker === COD) {
      layers = segment.readUInt16BE(6);
      levels = segment[9]!;
      reversible = segment[13] === 1;
    }
    pos += 2 + segLength;
  }
  if (!siz || siz.length < 41)
    throw new RasterError(`${uri}: corrupt JPEG 2000 codestream: no valid SIZ marker`);
  const x1 = siz.readUInt32BE(6);
  const y1 = siz.readUInt32BE(10);
  const x0 = siz.readUInt32BE(14);
  const y0 = siz.readUInt32BE(18);
  const tileWidth = siz.readUInt32BE(22);
  const tileHeight = siz.readUInt32BE(26);
  const tileX0 = siz.readUInt32BE(30);
  const tileY0 = siz.readUInt32BE(34);
  const components = siz.readUInt16BE(38);
  if (
    x1 <= x0 ||
    y1 <= y0 ||
    tileWidth === 0 ||
    tileHeight === 0 ||
    components === 0 ||
    siz.length < 40 + 3 * components
  ) {
    throw new RasterError(
      `${uri}: corrupt JPEG 2000 SIZ marker: image ${x0}..${x1} x ${y0}..${y1}, tiles ${tileWidth} x ${tileHeight}, ${components} components`,
    );
  }
  const depths = Array.from({ length: components }, (_, c) => {
    const s = siz[40 + 3 * c]!;
    return { bits: (s & 0x7f) + 1, signed: (s & 0x80) !== 0, dx: siz[41 + 3 * c]!, dy: siz[42 + 3 * c]! };
  });
  const tilesAcross = Math.ceil((x1 - tileX0) / tileWidth);
  const tilesDown = Math.ceil((y1 - tileY0) / tileHeight);
  const tileCount = tilesAcross * tilesDown;
  const tileParts: TilePart[][] = Array.from({ length: tileCount }, () => []);
  const first = offset + pos;
  const bad = (what: string): RasterError =>
    new RasterError(
      `${uri}: truncated or corrupt JPEG 2000 codestream (${length} bytes from byte ${offset}): ${what}`,
    );
  let index: 'tlm' | 'sot' = 'sot';
  const fromTlm = tlm.length > 0 ? tilePartsFromTlm(tlm, tileCount) : undefined;
  if (fromTlm) {
    index = 'tlm';
    let at = first;
    for (const { tile, length: partLength } of fromTlm) {
      if (at + partLength > end)
        throw bad(`tile ${tile} needs bytes ${at}..${at + partLength} past the codestream's end`);
      tileParts[tile]!.push({ offset: at, length: partLength });
      at += partLength;
    }
  } else {
    let at = first;
    while (at + 2 <= end) {
      const sot = await read(at, 12);
      if (sot.length >= 2 && sot.readUInt16BE(0) === EOC) break;
      if (sot.length < 12 || sot.readUInt16BE(0) !== SOT) {
        throw bad(
          `expected a tile-part (SOT marker) at byte ${at}, found ${sot.subarray(0, 2).toString('hex') || 'the end of the file'}`,
        );
      }
      const tile = sot.readUInt16BE(4);
      let partLength = sot.readUInt32BE(6);
      // Psot 0: the last tile-part, up to the EOC marker
      if (partLength === 0) partLength = end - at - 2;
      if (tile >= tileCount)
        throw bad(`tile-part at byte ${at} is of tile ${tile}, but the image has ${tileCount} tiles`);
      if (partLength < 14 || at + partLength > end) {
        throw bad(
          `tile ${tile} needs bytes ${at}..${at + partLength} but the codestream ends at byte ${end}`,
        );
      }
      tileParts[tile]!.push({ offset: at, length: partLength });
      at += partLength;
    }
  }
  const missing = tileParts.findIndex((parts) => parts.length === 0);
  if (missing >= 0) throw bad(`tile ${missing} of ${tileCount} has no data`);
  return {
    x0,
    y0,
    x1,
    y1,
    tileWidth,
    tileHeight,
    tileX0,
    tileY0,
    tilesAcross,
    tilesDown,
    components,
    depths,
    levels,
    layers,
    reversible,
    packedHeaders,
    tileParts,
    index,
    headerSegments: Buffer.concat(kept),
    siz,
  };
}

/** Tile-part lengths from TLM segments, or undefined when they do not list every tile-part. */
function tilePartsFromTlm(
  segments: readonly Buffer[],
  tileCount: number,
): { tile: number; length: number }[] | undefined {
  const sorted = [...segments].sort((a, b) => a[4]! - b[4]!);
  const parts: { tile: number; length: number }[] = [];
  for (const seg of sorted) {
    const stlm = seg[5]!;
    const st = (stlm >> 4) & 3;
    const sp = (stlm >> 6) & 1 ? 4 : 2;
    if (st === 3) return undefined;
    let p = 6;
    while (p + st + sp <= seg.length) {
      const tile = st === 0 ? parts.length : st === 1 ? seg[p]! : seg.readUInt16BE(p);
      p += st;
      const length = sp === 4 ? seg.readUInt32BE(p) : seg.readUInt16BE(p);
      p += sp;
      if (tile >= tileCount) return undefined;
      parts.push({ tile, length });
    }
  }
  return parts.length > 0 ? parts : undefined;
}

/** The rectangle of tile `t` on the reference grid. */
export function tileRect(cs: Codestream, t: number): { x0: number; y0: number; x1: number; y1: number } {
  const p = t % cs.tilesAcross;
  const q = Math.floor(t / cs.tilesAcross);
  return {
    x0: Math.max(cs.tileX0 + p * cs.tileWidth, cs.x0),
    y0: Math.max(cs.tileY0 + q * cs.tileHeight, cs.y0),
    x1: Math.min(cs.tileX0 + (p + 1) * cs.tileWidth, cs.x1),
    y1: Math.min(cs.tileY0 + (q + 1) * cs.tileHeight, cs.y1),
  };
}

/**
 * A codestream holding tile `t` alone: SIZ with the image and tile grid origin at the tile's
 * corner and its far corner as the image's, then the tile's tile-parts (`parts`, as read) with
 * their tile index set to 0.
 */
export function oneTileCodestream(cs: Codestream, t: number, parts: readonly Buffer[]): Buffer {
  const r = tileRect(cs, t);
  const siz = Buffer.from(cs.siz);
  siz.writeUInt32BE(r.x1, 6);
  siz.writeUInt32BE(r.y1, 10);
  siz.writeUInt32BE(r.x0, 14);
  siz.writeUInt32BE(r.y0, 18);
  siz.writeUInt32BE(r.x0, 30);
  siz.writeUInt32BE(r.y0, 34);
  const renumbered = parts.map((part) => {
    const copy = Buffer.from(part);
    copy.writeUInt16BE(0, 4);
    // a Psot of 0 means "to the end of the codestream", which no longer holds: write the length
    if (copy.readUInt32BE(6) === 0) copy.writeUInt32BE(copy.length, 6);
    return copy;
  });
  const soc = Buffer.from([0xff, 0x4f]);
  const eoc = Buffer.from([0xff, 0xd9]);
  return Buffer.concat([soc, siz, cs.headerSegments, ...renumbered, eoc]);
}
