/**
 * S3 entity tags computed from content, to tell whether a local file holds what an S3 object
 * does without downloading the object. A single-part upload's ETag is the MD5 of the content; a
 * multipart upload's is `<MD5 of the concatenated binary MD5s of the parts>-<number of parts>`,
 * which depends on the part size the uploader chose and the object does not record.
 */
import { createHash, type Hash } from 'node:crypto';

const MiB = 1024 * 1024;

/** Part sizes common uploaders use (AWS CLI, boto3, lib-storage 8 MiB; rclone 5; s5cmd 50; ...). */
export const COMMON_PART_SIZES: readonly number[] = [
  5, 8, 10, 15, 16, 25, 32, 50, 64, 100, 128, 256, 512, 1024,
].map((n) => n * MiB);

/** An ETag taken apart: the hex digest and, for a multipart upload, its number of parts. */
export interface ParsedEtag {
  readonly md5: string;
  /** Number of parts of a multipart upload; undefined for a single-part upload. */
  readonly parts?: number;
}

/**
 * Parses `"<32 hex>"` or `"<32 hex>-<parts>"` (quotes optional); undefined for anything else (an
 * object encrypted with SSE-KMS or SSE-C has an ETag that is not an MD5 of its content).
 */
export function parseEtag(etag: string | undefined): ParsedEtag | undefined {
  if (etag === undefined) return undefined;
  const match = /^"?([0-9a-fA-F]{32})(?:-([1-9][0-9]{0,4}))?"?$/.exec(etag);
  if (match === null) return undefined;
  const md5 = (match[1] ?? '').toLowerCase();
  return match[2] === undefined ? { md5 } : { md5, parts: Number(match[2]) };
}

/** The ETag without quotes, lowercase: the form two ETags are compared in. */
export function canonicalEtag(etag: string): string {
  return etag.replace(/"/g, '').toLowerCase();
}

/**
 * Part sizes that split `size` bytes into exactly `parts` parts: those of `hints` (the part size
 * this program uploads with first) and {@link COMMON_PART_SIZES} that fit, and the smallest whole
 * MiB that fits (what tools that divide a file evenly choose).
 */
export function candidatePartSizes(size: number, parts: number, hints: readonly number[] = []): number[] {
  if (parts === 1) return [Math.max(size, 1)];
  const fits = (p: number): boolean => p > 0 && Math.ceil(size / p) === parts;
  const even = Math.ceil(size / parts / MiB) * MiB;
  return [...new Set([...hints, ...COMMON_PART_SIZES, even])].filter(fits);
}

class PartHasher {
  private hash: Hash = createHash('md5');
  private filled = 0;
  private readonly digests: Buffer[] = [];

  constructor(private readonly partSize: number) {}

  update(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.partSize - this.filled, chunk.length - offset);
      this.hash.update(chunk.subarray(offset, offset + take));
      this.filled += take;
      offset += take;
      if (this.filled === this.partSize) {
        this.digests.push(this.hash.digest());
        this.hash = createHash('md5');
        this.filled = 0;
      }
    }
  }

  etag(): string {
    const digests =
      this.filled > 0 || this.digests.length === 0 ? [...this.digests, this.hash.digest()] : this.digests;
    const combined = createHash('md5').update(Buffer.concat(digests)).digest('hex');
    return `${combined}-${digests.length}`;
  }
}

/**
 * True when `content` (`size` bytes) is what an S3 object with this ETag holds: the MD5 for a
 * single-part ETag, or the multipart ETag for one of {@link candidatePartSizes} (all computed in
 * one pass over the content). False also when the ETag is not an MD5 or no part size fits: the
 * caller then copies the file again, which is never wrong.
 */
export async function contentMatchesEtag(
  content: AsyncIterable<Uint8Array>,
  size: number,
  etag: string | undefined,
  partSizeHints: readonly number[] = [],
): Promise<boolean> {
  const parsed = parseEtag(etag);
  if (parsed === undefined) return false;
  if (parsed.parts === undefined) return (await md5Hex(content)) === parsed.md5;
  const hashers = candidatePartSizes(size, parsed.parts, partSizeHints).map((p) => new PartHasher(p));
  if (hashers.length === 0) return false;
  for await (const chunk of content) for (const hasher of hashers) hasher.update(chunk);
  const wanted = `${parsed.md5}-${parsed.parts}`;
  return hashers.some((hasher) => hasher.etag() === wanted);
}

/** The MD5 of a stream's bytes, as lowercase hex. */
export async function md5Hex(content: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of content) hash.update(chunk);
  return hash.digest('hex');
}
