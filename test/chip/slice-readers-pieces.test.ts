import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { openChipRows, SharpRows } from '../../lib/chip/slice-readers.js';
import { createStorage } from '../../lib/storage/index.js';

describe('SharpRows on a tiled 8-bit RGB TIFF wider than one decode piece', () => {
  const dir = mkdtempSync(join(tmpdir(), 'geobatch-pieces-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rows decoded in pieces of whole tiles across are the pixels of one full-width decode', async () => {
    const [width, height] = [9000, 300];
    const pixels = Buffer.alloc(width * height * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 2654435761) >>> 24;
    const path = join(dir, 'wide.tif');
    await sharp(pixels, { raw: { width, height, channels: 3 } })
      .tiff({ tile: true, tileWidth: 256, tileHeight: 256, compression: 'deflate' })
      .toFile(path);
    const rows = await openChipRows(createStorage(), path);
    try {
      assert.equal(rows.constructor, SharpRows, 'a local 8-bit RGB TIFF is read with sharp');
      const bands = [
        { top: 0, bottom: 140 },
        { top: 100, bottom: 300 },
      ];
      rows.plan(bands, [0, width]);
      for (const band of bands) {
        await rows.load(band);
        const want = await sharp(path)
          .extract({ left: 0, top: band.top, width, height: band.bottom - band.top })
          .raw()
          .toBuffer();
        assert.ok(
          rows.cut([0, band.top, width, band.bottom]).equals(want),
          `rows ${band.top}..${band.bottom}`,
        );
        const w: [number, number, number, number] = [4000, band.top + 5, 4300, band.top + 40];
        const expected = Buffer.alloc(300 * 35 * 3);
        for (let y = 0; y < 35; y++) {
          pixels.copy(expected, y * 900, ((w[1] + y) * width + 4000) * 3, ((w[1] + y) * width + 4300) * 3);
        }
        assert.ok(rows.cut(w).equals(expected), 'a window across a piece boundary (4096)');
      }
    } finally {
      await rows.close();
    }
  });
});
