/**
 * Hand-made little-endian TIFF headers for tests and benchmarks: one IFD of single-value tags,
 * followed by `trailingBytes` zero bytes (for strips that point right after the IFD).
 */

/** [tag, type (3 = SHORT, 4 = LONG), value] */
export type TiffEntry = readonly [tag: number, type: 3 | 4, value: number];

/** Bytes of a classic TIFF with one IFD holding `entries` (sorted by the caller, as TIFF wants). */
export function tiffWithEntries(entries: readonly TiffEntry[], trailingBytes = 0): Buffer {
  const b = Buffer.alloc(8 + 2 + entries.length * 12 + 4 + trailingBytes);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + i * 12;
    b.writeUInt16LE(tag, at);
    b.writeUInt16LE(type, at + 2);
    b.writeUInt32LE(1, at + 4);
    if (type === 3) b.writeUInt16LE(value, at + 8);
    else b.writeUInt32LE(value, at + 8);
  });
  return b;
}
