import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { spreadBlocks } from '../../lib/raster/band-sample.js';
import {
  BandHistogram,
  buildLut,
  defaultBands,
  mapValue,
  parseBands,
  parsePercentiles,
  parseRanges,
  stretchRanges,
} from '../../lib/raster/stretch.js';

describe('default bands', () => {
  const table: [number, boolean, number[]][] = [
    [1, false, [1, 1, 1]],
    [3, false, [1, 2, 3]],
    [4, false, [3, 2, 1]],
    [4, true, [1, 2, 3]],
    [8, false, [5, 3, 2]],
  ];
  for (const [count, rgb, bands] of table) {
    it(`${count} band(s)${rgb ? ', photometric RGB' : ''} -> ${bands.join(',')}`, () => {
      assert.deepEqual(defaultBands(count, rgb, 'x.tif'), bands);
    });
  }
  for (const count of [2, 5, 6, 7, 12]) {
    it(`${count} bands: no default, --bands asked for`, () => {
      assert.throws(() => defaultBands(count, false, 'x.tif'), {
        name: 'RasterError',
        message: `x.tif: has ${count} bands and no default band choice for that count (defaults exist for 1, 3, 4 and 8 bands); choose with --bands R,G,B, e.g. --bands 3,2,1`,
      });
    });
  }
});

describe('option parsing', () => {
  it('valid --bands', () => {
    assert.deepEqual(parseBands('5,3,2'), [5, 3, 2]);
    assert.deepEqual(parseBands(' 4 '), [4, 4, 4]);
  });
  for (const bad of ['', '0,1,2', '1,2', '1,,3', 'a,b,c', '1.5,2,3', '1,2,3,4']) {
    it(`invalid --bands '${bad}'`, () => {
      assert.throws(() => parseBands(bad), {
        message: `--bands: expected one band or three comma-separated band numbers counted from 1 (e.g. 5,3,2) but got '${bad}'`,
      });
    });
  }
  it('percentiles and ranges', () => {
    assert.deepEqual(parsePercentiles('1,99.5'), { low: 1, high: 99.5 });
    assert.throws(() => parsePercentiles('98,2'), /--percentiles: expected two numbers LOW,HIGH/);
    assert.throws(() => parsePercentiles('2,101'), /--percentiles/);
    assert.deepEqual(parseRanges('0,2047'), [[0, 2047]]);
    assert.deepEqual(parseRanges('1,2,3,4,5,6'), [
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    assert.throws(() => parseRanges('5,1'), /--range: expected MIN,MAX/);
    assert.throws(() => parseRanges('1,2,3'), /--range: expected MIN,MAX/);
  });
});

describe('histograms and percentiles', () => {
  it('match numpy.percentile (linear interpolation) for integers and floats', () => {
    const values = [5, 1, 9, 3, 3, 7, 10, 2];
    // numpy.percentile(values, [0, 2, 25, 50, 98, 100]) -> 1, 1.14, 2.75, 4, 9.86, 10
    const expected: [number, number][] = [
      [0, 1],
      [2, 1.14],
      [25, 2.75],
      [50, 4],
      [98, 9.86],
      [100, 10],
    ];
    for (const dtype of ['uint16', 'int16', 'float32'] as const) {
      const h = new BandHistogram(dtype);
      for (const v of values) h.add(dtype === 'int16' ? v - 5 : v);
      for (const [p, v] of expected) {
        assert.ok(Math.abs(h.percentile(p)! - (dtype === 'int16' ? v - 5 : v)) < 1e-9, `${dtype} p${p}`);
      }
      assert.equal(h.count, 8);
    }
    assert.equal(new BandHistogram('uint8').percentile(50), null);
  });
});

describe('the linear map', () => {
  it('is what gdal_translate -scale lo hi dstMin dstMax -ot Byte computes, clamped', () => {
    const m = { lo: 100, hi: 1100, dstMin: 0, dstMax: 255 };
    assert.equal(mapValue(m, 100), 0);
    assert.equal(mapValue(m, 1100), 255);
    assert.equal(mapValue(m, 600), 128); // 127.5 rounds up
    assert.equal(mapValue(m, 50), 0);
    assert.equal(mapValue(m, 5000), 255);
    // with 0 kept for no-data, valid values map to 1..255 and never below 1
    assert.equal(mapValue({ ...m, dstMin: 1 }, 0), 1);
    assert.equal(mapValue({ ...m, dstMin: 1 }, 1100), 255);
    // a constant band
    assert.equal(mapValue({ lo: 5, hi: 5, dstMin: 1, dstMax: 255 }, 5), 1);
    assert.equal(mapValue({ lo: 5, hi: 5, dstMin: 1, dstMax: 255 }, 6), 255);
  });
  it('lookup tables agree with the map for every value', () => {
    for (const dtype of ['uint8', 'int16'] as const) {
      const m = { lo: -20, hi: 200, dstMin: 1, dstMax: 255 };
      const { lut, offset } = buildLut(m, dtype);
      const [min, max] = dtype === 'uint8' ? [0, 255] : [-32768, 32767];
      for (let v = min; v <= max; v += dtype === 'uint8' ? 1 : 7)
        assert.equal(lut[v + offset], mapValue(m, v));
    }
  });
  it('stretch ranges from histograms, fixed ranges and none', () => {
    const h = new BandHistogram('uint16');
    for (let v = 0; v <= 100; v++) h.add(v);
    assert.deepEqual(stretchRanges({ kind: 'percentile', low: 2, high: 98 }, [h, h, h], 3)[0], [2, 98]);
    assert.deepEqual(stretchRanges({ kind: 'minmax' }, [h], 1)[0], [0, 100]);
    assert.deepEqual(stretchRanges({ kind: 'range', ranges: [[0, 2047]] }, [], 3), [
      [0, 2047],
      [0, 2047],
      [0, 2047],
    ]);
    assert.deepEqual(
      stretchRanges({ kind: 'percentile', low: 2, high: 98 }, [new BandHistogram('uint16')], 1),
      [[0, 1]],
    );
  });
});

describe('sample blocks', () => {
  it('all blocks when few, else about the number wanted, spread over rows and columns', () => {
    assert.equal(spreadBlocks({ blocksAcross: 4, blocksDown: 3 }, 20).length, 12);
    const tiles = spreadBlocks({ blocksAcross: 20, blocksDown: 20 }, 16);
    assert.equal(tiles.length, 16);
    assert.equal(new Set(tiles.map((t) => t.by)).size, 4);
    assert.ok(new Set(tiles.map((t) => t.bx)).size >= 4);
    const strips = spreadBlocks({ blocksAcross: 1, blocksDown: 10000 }, 419);
    assert.equal(strips.length, 419);
    assert.ok(strips[0]!.by < 20 && strips[418]!.by > 9980);
  });
});
