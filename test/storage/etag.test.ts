import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { candidatePartSizes, contentMatchesEtag, parseEtag } from '../../lib/storage/etag.js';

const MiB = 1024 * 1024;

async function* chunksOf(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** The multipart ETag of `data` in parts of `partSize`, computed by Python's hashlib (independent of the code under test). */
function pythonEtag(data: Buffer, partSize: number): string {
  const script =
    'import hashlib,sys\n' +
    'd=sys.stdin.buffer.read();p=int(sys.argv[1])\n' +
    'parts=[hashlib.md5(d[i:i+p]).digest() for i in range(0,len(d),p)]\n' +
    'print(hashlib.md5(b"".join(parts)).hexdigest()+"-"+str(len(parts)))';
  return execFileSync('python3', ['-c', script, String(partSize)], { input: data })
    .toString()
    .trim();
}

describe('parseEtag', () => {
  const valid: [string, ReturnType<typeof parseEtag>][] = [
    ['"d41d8cd98f00b204e9800998ecf8427e"', { md5: 'd41d8cd98f00b204e9800998ecf8427e' }],
    ['D41D8CD98F00B204E9800998ECF8427E', { md5: 'd41d8cd98f00b204e9800998ecf8427e' }],
    ['"0123456789abcdef0123456789abcdef-12"', { md5: '0123456789abcdef0123456789abcdef', parts: 12 }],
  ];
  for (const [etag, parsed] of valid) it(`parses ${etag}`, () => assert.deepEqual(parseEtag(etag), parsed));
  for (const etag of [undefined, '', '"abc"', '"0123456789abcdef0123456789abcdef-0"', 'W/"x"']) {
    it(`refuses ${String(etag)}`, () => assert.equal(parseEtag(etag), undefined));
  }
});

describe('candidatePartSizes', () => {
  it('keeps only part sizes that give the number of parts, hints first', () => {
    const sizes = candidatePartSizes(17 * MiB, 2, [9 * MiB]);
    assert.equal(sizes[0], 9 * MiB);
    for (const p of sizes) assert.equal(Math.ceil((17 * MiB) / p), 2);
    assert.ok(sizes.includes(16 * MiB) && !sizes.includes(8 * MiB));
  });
});

describe('contentMatchesEtag', () => {
  it('matches the multipart ETag S3 would give (checked against hashlib), whatever the chunking', async () => {
    const data = randomBytes(11 * MiB + 7);
    const etag = `"${pythonEtag(data, 5 * MiB)}"`;
    assert.match(etag, /-3"$/);
    for (const chunk of [1000, 64 * 1024, 5 * MiB, 20 * MiB]) {
      assert.equal(
        await contentMatchesEtag(chunksOf(data, chunk), data.length, etag),
        true,
        `chunks of ${chunk}`,
      );
    }
    const other = Buffer.from(data);
    other.writeUInt8(other.readUInt8(0) ^ 1, 0);
    assert.equal(await contentMatchesEtag(chunksOf(other, MiB), other.length, etag), false);
  });

  it('matches a single-part ETag by MD5 and refuses ETags that are not MD5s', async () => {
    const data = Buffer.from('hello');
    assert.equal(await contentMatchesEtag(chunksOf(data, 2), 5, '"5d41402abc4b2a76b9719d911017c592"'), true);
    assert.equal(await contentMatchesEtag(chunksOf(data, 2), 5, '"5d41402abc4b2a76b9719d911017c593"'), false);
    assert.equal(await contentMatchesEtag(chunksOf(data, 2), 5, '"kms-encrypted"'), false);
  });
});
