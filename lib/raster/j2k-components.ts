/**
 * Splits a one-tile JPEG 2000 codestream (as made by `oneTileCodestream`) into codestreams of a
 * few components each, so that a decoder that only takes 1 or 3 components decodes any band
 * count. The tile's packets are found by reading their headers (ISO 15444-1 B.10: tag trees,
 * pass counts, code-word lengths) over the precinct and code-block geometry of B.6-B.7, and
 * each new codestream keeps its components' packets, in their order, unchanged: the coded
 * samples, and so the decoded ones, are the same as in the original. Main-header segments that
 * name components (COC, QCC, RGN) are renumbered; SOP markers are dropped (their sequence
 * numbers would have gaps); the inverse component transform (COD MCT) stays with components
 * 0..2, which must then be decoded together.
 */
import { RasterError } from './errors.js';

const SOC = 0xff4f;
const SIZ = 0xff51;
const COD = 0xff52;
const COC = 0xff53;
const QCD = 0xff5c;
const QCC = 0xff5d;
const RGN = 0xff5e;
const SOT = 0xff90;
const SOD = 0xff93;
const SOP = 0xff91;
const EPH = 0xff92;
const EOC = 0xffd9;
const PLT = 0xff58;
const COM = 0xff64;

/** Coding style of one component: COD, or its COC. */
interface Style {
  levels: number;
  cbw: number;
  cbh: number;
  cbStyle: number;
  /** Precinct exponents per resolution (15 when the marker gives none). */
  ppx: number[];
  ppy: number[];
}

interface Segment {
  readonly marker: number;
  readonly bytes: Buffer;
}

/**
 * How to decode `components` components with a decoder that takes 1 or 3 at a time: components
 * 0..2 together when the codestream applies the component transform to them, else triples then
 * singles.
 */
export function componentGroups(components: number, mct: boolean): number[][] {
  const groups: number[][] = [];
  let c = 0;
  if (mct && components >= 3) {
    groups.push([0, 1, 2]);
    c = 3;
  }
  for (; c + 3 <= components; c += 3) groups.push([c, c + 1, c + 2]);
  for (; c < components; c++) groups.push([c]);
  return groups;
}

function readSegments(
  stream: Buffer,
  from: number,
  stop: (marker: number) => boolean,
  uri: string,
): {
  segments: Segment[];
  end: number;
} {
  const segments: Segment[] = [];
  let pos = from;
  for (;;) {
    if (pos + 2 > stream.length) throw corrupt(uri, `header runs past the end at byte ${pos}`);
    const marker = stream.readUInt16BE(pos);
    if (stop(marker)) return { segments, end: pos };
    if (marker >> 8 !== 0xff || pos + 4 > stream.length)
      throw corrupt(uri, `byte ${pos} is not a marker (${marker.toString(16)})`);
    const length = stream.readUInt16BE(pos + 2);
    segments.push({ marker, bytes: stream.subarray(pos, pos + 2 + length) });
    pos += 2 + length;
  }
}

function corrupt(uri: string, what: string): RasterError {
  return new RasterError(`${uri}: cannot split the JPEG 2000 tile by component: ${what}`);
}

function unsupported(uri: string, comps: number, what: string): RasterError {
  return new RasterError(
    `${uri}: unsupported JPEG 2000 file of ${comps} bands: ${what} (geobatch reads 2 or more than 3 bands only without it); convert it first (gdal_translate -of GTiff)`,
  );
}

function styleOf(spc: Buffer, at: number, hasPrecincts: boolean): Style {
  const levels = spc[at]!;
  const ppx: number[] = [];
  const ppy: number[] = [];
  for (let r = 0; r <= levels; r++) {
    const p = hasPrecincts ? spc[at + 5 + r]! : 0xff;
    ppx.push(p & 0x0f);
    ppy.push(p >> 4);
  }
  return { levels, cbw: spc[at + 1]! + 2, cbh: spc[at + 2]! + 2, cbStyle: spc[at + 3]!, ppx, ppy };
}

/** Bit reader of packet headers: after a 0xff byte the next gives only 7 bits (B.10.1). */
class Bits {
  private buf = 0;
  private ct = 0;
  constructor(
    private readonly data: Buffer,
    public pos: number,
  ) {}
  bit(): number {
    if (this.ct === 0) {
      const stuffed = this.buf === 0xff;
      if (this.pos >= this.data.length) throw new RangeError('packet header past the tile end');
      this.buf = this.data[this.pos++]!;
      this.ct = stuffed ? 7 : 8;
    }
    this.ct--;
    return (this.buf >> this.ct) & 1;
  }
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = (v << 1) | this.bit();
    return v;
  }
  /** Ends the header on a byte boundary. */
  align(): void {
    if (this.buf === 0xff) this.pos++;
    this.ct = 0;
    this.buf = 0;
  }
}

/** A tag tree (B.10.2) over w x h leaves. */
class TagTree {
  private readonly levels: { w: number; h: number; value: Int32Array; low: Int32Array }[] = [];
  constructor(w: number, h: number) {
    for (;;) {
      this.levels.push({ w, h, value: new Int32Array(w * h).fill(0x7fffffff), low: new Int32Array(w * h) });
      if (w === 1 && h === 1) break;
      w = Math.ceil(w / 2);
      h = Math.ceil(h / 2);
    }
  }
  /** True when the leaf's value is below `threshold`, reading as few bits as needed. */
  decode(bits: Bits, x: number, y: number, threshold: number): boolean {
    const path: { l: number; i: number }[] = [];
    for (let l = 0; l < this.levels.length; l++) {
      path.push({ l, i: (y >> l) * this.levels[l]!.w + (x >> l) });
    }
    let low = 0;
    for (let k = path.length - 1; k >= 0; k--) {
      const { l, i } = path[k]!;
      const level = this.levels[l]!;
      if (low > level.low[i]!) level.low[i] = low;
      else low = level.low[i]!;
      while (low < threshold && low < level.value[i]!) {
        if (bits.bit()) level.value[i] = low;
        else low++;
      }
      level.low[i] = low;
    }
    return this.levels[0]!.value[(y * this.levels[0]!.w + x) | 0]! < threshold;
  }
}

interface PrecinctBand {
  readonly cw: number;
  readonly ch: number;
  readonly inclusion: TagTree;
  readonly zero: TagTree;
  readonly included: Uint8Array;
  readonly lblock: Uint8Array;
}

/** Code-block grid of every precinct of one component at one resolution. */
interface Resolution {
  readonly precincts: PrecinctBand[][];
}

function resolutions(tile: { x0: number; y0: number; x1: number; y1: number }, s: Style): Resolution[] {
  const out: Resolution[] = [];
  const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
  for (let r = 0; r <= s.levels; r++) {
    const scale = 2 ** (s.levels - r);
    const rx0 = ceilDiv(tile.x0, scale);
    const ry0 = ceilDiv(tile.y0, scale);
    const rx1 = ceilDiv(tile.x1, scale);
    const ry1 = ceilDiv(tile.y1, scale);
    const px = s.ppx[r]!;
    const py = s.ppy[r]!;
    const prcx0 = Math.floor(rx0 / 2 ** px) * 2 ** px;
    const prcy0 = Math.floor(ry0 / 2 ** py) * 2 ** py;
    const pw = rx1 > rx0 ? ceilDiv(rx1, 2 ** px) - Math.floor(rx0 / 2 ** px) : 0;
    const ph = ry1 > ry0 ? ceilDiv(ry1, 2 ** py) - Math.floor(ry0 / 2 ** py) : 0;
    // subbands of this resolution with their offsets (xob, yob): LL alone at r = 0
    const nb = r === 0 ? s.levels : s.levels - r + 1;
    const offsets =
      r === 0
        ? [[0, 0]]
        : [
            [1, 0],
            [0, 1],
            [1, 1],
          ];
    const bands = offsets.map(([xob, yob]) => {
      const half = r === 0 ? 0 : 2 ** (nb - 1);
      return {
        x0: ceilDiv(tile.x0 - half * xob!, 2 ** nb),
        y0: ceilDiv(tile.y0 - half * yob!, 2 ** nb),
        x1: ceilDiv(tile.x1 - half * xob!, 2 ** nb),
        y1: ceilDiv(tile.y1 - half * yob!, 2 ** nb),
      };
    });
    // precincts and code-blocks in band coordinates: halved above resolution 0
    const bpx = r === 0 ? px : px - 1;
    const bpy = r === 0 ? py : py - 1;
    const cbw = Math.min(s.cbw, bpx);
    const cbh = Math.min(s.cbh, bpy);
    const precincts: PrecinctBand[][] = [];
    for (let j = 0; j < ph; j++) {
      for (let i = 0; i < pw; i++) {
        const x0 = (r === 0 ? prcx0 : prcx0 / 2) + i * 2 ** bpx;
        const y0 = (r === 0 ? prcy0 : prcy0 / 2) + j * 2 ** bpy;
        precincts.push(
          bands.map((b) => {
            const ax0 = Math.max(x0, b.x0);
            const ay0 = Math.max(y0, b.y0);
            const ax1 = Math.min(x0 + 2 ** bpx, b.x1);
            const ay1 = Math.min(y0 + 2 ** bpy, b.y1);
            const cw = ax1 > ax0 ? ceilDiv(ax1, 2 ** cbw) - Math.floor(ax0 / 2 ** cbw) : 0;
            const ch = ay1 > ay0 ? ceilDiv(ay1, 2 ** cbh) - Math.floor(ay0 / 2 ** cbh) : 0;
            const n = cw * ch;
            return {
              cw,
              ch,
              inclusion: new TagTree(Math.max(cw, 1), Math.max(ch, 1)),
              zero: new TagTree(Math.max(cw, 1), Math.max(ch, 1)),
              included: new Uint8Array(n),
              lblock: new Uint8Array(n).fill(3),
            };
          }),
        );
      }
    }
    out.push({ precincts });
  }
  return out;
}

/** Packets of one tile in codestream order, each with its component. */
function* packetOrder(
  progression: number,
  layers: number,
  res: readonly Resolution[][],
  uri: string,
): Generator<{ c: number; r: number; p: number; l: number }> {
  const comps = res.length;
  const maxR = Math.max(...res.map((rs) => rs.length));
  const count = (c: number, r: number): number => res[c]![r]?.precincts.length ?? 0;
  if (progression === 0) {
    for (let l = 0; l < layers; l++)
      for (let r = 0; r < maxR; r++)
        for (let c = 0; c < comps; c++) for (let p = 0; p < count(c, r); p++) yield { c, r, p, l };
    return;
  }
  if (progression === 1) {
    for (let r = 0; r < maxR; r++)
      for (let l = 0; l < layers; l++)
        for (let c = 0; c < comps; c++) for (let p = 0; p < count(c, r); p++) yield { c, r, p, l };
    return;
  }
  // the position-driven orders reduce to plain loops when no resolution has two precincts
  for (let c = 0; c < comps; c++)
    for (let r = 0; r < res[c]!.length; r++)
      if (count(c, r) > 1)
        throw unsupported(
          uri,
          comps,
          `progression order ${['LRCP', 'RLCP', 'RPCL', 'PCRL', 'CPRL'][progression] ?? progression} with several precincts per resolution`,
        );
  if (progression === 2) {
    for (let r = 0; r < maxR; r++)
      for (let c = 0; c < comps; c++)
        if (count(c, r)) for (let l = 0; l < layers; l++) yield { c, r, p: 0, l };
    return;
  }
  if (progression === 3 || progression === 4) {
    for (let c = 0; c < comps; c++)
      for (let r = 0; r < res[c]!.length; r++)
        if (count(c, r)) for (let l = 0; l < layers; l++) yield { c, r, p: 0, l };
    return;
  }
  throw corrupt(uri, `progression order ${progression} in COD`);
}

/** The number of coding passes of a code-block in a packet (B.10.6, Table B.4). */
function passCount(bits: Bits): number {
  if (bits.bit() === 0) return 1;
  if (bits.bit() === 0) return 2;
  const n2 = bits.bits(2);
  if (n2 !== 3) return 3 + n2;
  const n5 = bits.bits(5);
  return n5 !== 31 ? 6 + n5 : 37 + bits.bits(7);
}

/** Reads one packet header at `pos`; returns where its body starts and how long it is. */
function readPacket(
  data: Buffer,
  pos: number,
  precinct: PrecinctBand[],
  layer: number,
  eph: boolean,
): { body: number; length: number } {
  if (pos + 1 < data.length && data.readUInt16BE(pos) === SOP) pos += 6;
  const bits = new Bits(data, pos);
  let length = 0;
  if (bits.bit()) {
    for (const band of precinct) {
      for (let y = 0; y < band.ch; y++) {
        for (let x = 0; x < band.cw; x++) {
          const k = y * band.cw + x;
          let included: boolean;
          const first = !band.included[k];
          if (first) included = band.inclusion.decode(bits, x, y, layer + 1);
          else included = bits.bit() === 1;
          if (!included) continue;
          if (first) {
            let i = 0;
            while (!band.zero.decode(bits, x, y, i)) i++;
            band.included[k] = 1;
          }
          const passes = passCount(bits);
          while (bits.bit()) band.lblock[k]!++;
          length += bits.bits(band.lblock[k]! + Math.floor(Math.log2(passes)));
        }
      }
    }
  }
  bits.align();
  let body = bits.pos;
  if (eph && body + 1 < data.length && data.readUInt16BE(body) === EPH) body += 2;
  return { body, length };
}

/**
 * One codestream per group of components (see {@link componentGroups}) of the one-tile
 * codestream `stream`; `uri` names the file in errors.
 */
export function splitComponents(stream: Buffer, uri: string): { groups: number[][]; streams: Buffer[] } {
  if (stream.readUInt16BE(0) !== SOC) throw corrupt(uri, 'no SOC marker');
  const main = readSegments(stream, 2, (m) => m === SOT, uri);
  const siz = main.segments.find((s) => s.marker === SIZ)?.bytes;
  const cod = main.segments.find((s) => s.marker === COD)?.bytes;
  if (!siz || !cod) throw corrupt(uri, 'no SIZ or COD marker');
  const comps = siz.readUInt16BE(38);
  if (comps > 255) throw unsupported(uri, comps, `${comps} components`);
  const tile = {
    x1: siz.readUInt32BE(6),
    y1: siz.readUInt32BE(10),
    x0: siz.readUInt32BE(14),
    y0: siz.readUInt32BE(18),
  };
  const scod = cod[4]!;
  const progression = cod[5]!;
  const layers = cod.readUInt16BE(6);
  const mct = cod[8]!;
  const styles: Style[] = Array.from({ length: comps }, () => styleOf(cod, 9, (scod & 1) !== 0));
  for (const s of main.segments) {
    if (s.marker === COC) styles[s.bytes[4]!] = styleOf(s.bytes, 6, (s.bytes[5]! & 1) !== 0);
    else if (s.marker >= 0xff74 && s.marker <= 0xff77)
      throw unsupported(uri, comps, `Part 2 component transforms (marker ${s.marker.toString(16)})`);
    else if (s.marker === 0xff5f || s.marker === 0xff60)
      throw unsupported(
        uri,
        comps,
        `marker ${s.marker.toString(16)} (progression changes or packed packet headers)`,
      );
  }
  for (const s of styles) {
    if (s.cbStyle & 0x05)
      throw unsupported(uri, comps, `code-block style ${s.cbStyle} (bypass or termination on every pass)`);
  }
  // the tile's data: every tile-part's body, in order
  const bodies: Buffer[] = [];
  let pos = main.end;
  while (pos + 2 <= stream.length && stream.readUInt16BE(pos) === SOT) {
    const psot = stream.readUInt32BE(pos + 6);
    const head = readSegments(stream, pos + 12, (m) => m === SOD, uri);
    for (const s of head.segments) {
      if (s.marker !== PLT && s.marker !== COM)
        throw unsupported(uri, comps, `marker ${s.marker.toString(16)} in a tile-part header`);
    }
    bodies.push(stream.subarray(head.end + 2, pos + psot));
    pos += psot;
  }
  if (pos + 2 > stream.length || stream.readUInt16BE(pos) !== EOC)
    throw corrupt(uri, `no EOC after the tile at byte ${pos}`);
  const data = Buffer.concat(bodies);
  const res = styles.map((s) => resolutions(tile, s));
  const packets: { c: number; bytes: Buffer }[] = [];
  let at = 0;
  try {
    for (const { c, r, p, l } of packetOrder(progression, layers, res, uri)) {
      if (at >= data.length) break;
      const start = at;
      const { body, length } = readPacket(data, at, res[c]![r]!.precincts[p]!, l, (scod & 4) !== 0);
      at = body + length;
      if (at > data.length) throw corrupt(uri, `packet of component ${c} ends past the tile's data`);
      // drop the SOP marker: its sequence number would no longer follow on
      const sop = start + 1 < data.length && data.readUInt16BE(start) === SOP ? 6 : 0;
      packets.push({ c, bytes: data.subarray(start + sop, at) });
    }
  } catch (error) {
    if (error instanceof RangeError) throw corrupt(uri, error.message);
    throw error;
  }
  const groups = componentGroups(comps, mct !== 0);
  const streams = groups.map((group) => {
    const index = new Map(group.map((c, i) => [c, i]));
    const segs: Buffer[] = [];
    for (const s of main.segments) {
      if (s.marker === SIZ) {
        const out = Buffer.alloc(40 + 3 * group.length);
        s.bytes.copy(out, 0, 0, 38);
        out.writeUInt16BE(38 + 3 * group.length, 2);
        out.writeUInt16BE(group.length, 38);
        group.forEach((c, i) => s.bytes.copy(out, 40 + 3 * i, 40 + 3 * c, 43 + 3 * c));
        segs.push(out);
      } else if (s.marker === COD) {
        const out = Buffer.from(s.bytes);
        out[4] = scod & ~2;
        out[8] = mct && group.length === 3 && group[0] === 0 && group[2] === 2 ? mct : 0;
        segs.push(out);
      } else if (s.marker === COC || s.marker === QCC || s.marker === RGN) {
        const i = index.get(s.bytes[4]!);
        if (i === undefined) continue;
        const out = Buffer.from(s.bytes);
        out[4] = i;
        segs.push(out);
      } else if (s.marker === QCD || s.marker === COM || s.marker === 0xff50) {
        segs.push(s.bytes);
      }
    }
    const body = Buffer.concat(packets.filter((p) => index.has(p.c)).map((p) => p.bytes));
    const sot = Buffer.alloc(14);
    sot.writeUInt16BE(SOT, 0);
    sot.writeUInt16BE(10, 2);
    sot.writeUInt16BE(0, 4);
    sot.writeUInt32BE(14 + body.length, 6);
    sot[10] = 0;
    sot[11] = 1;
    sot.writeUInt16BE(SOD, 12);
    return Buffer.concat([Buffer.from([0xff, 0x4f]), ...segs, sot, body, Buffer.from([0xff, 0xd9])]);
  });
  return { groups, streams };
}
