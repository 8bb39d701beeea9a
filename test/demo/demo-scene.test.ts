import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEMO_PLACES, XVIEW_TYPE_NAMES, planDemoScene } from '../../lib/demo/demo-scene.js';
import type { DemoObject, DemoScene } from '../../lib/demo/demo-scene.js';
import { pointInPolygon } from '../../lib/demo/shapes.js';
import { utmZoneForLonLat } from '../../lib/geo/utm.js';

const SIZE = 600;
const scene = planDemoScene({ seed: 42, width: SIZE });

function render(s: DemoScene, options: { objects?: boolean } = {}, band = 128): Uint16Array {
  const out = new Uint16Array(s.width * s.height * 4);
  for (let y = 0; y < s.height; y += band) {
    const rows = Math.min(band, s.height - y);
    s.renderRows(y, rows, out.subarray(y * s.width * 4), options);
  }
  return out;
}

/** Pixels whose four quarter-points all lie inside the object's outline. */
function interiorPixels(obj: DemoObject): [number, number][] {
  const [x0, y0, x1, y1] = obj.box;
  const pixels: [number, number][] = [];
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const inside = [0.1, 0.9].every((dx) =>
        [0.1, 0.9].every((dy) => pointInPolygon(obj.outline, x + dx, y + dy)),
      );
      if (inside) pixels.push([x, y]);
    }
  }
  return pixels;
}

const withObjects = render(scene);
const without = render(scene, { objects: false });

describe('planDemoScene', () => {
  it('is deterministic for a seed and different for another', () => {
    assert.deepEqual(planDemoScene({ seed: 42, width: SIZE }).objects, scene.objects);
    assert.notDeepEqual(planDemoScene({ seed: 43, width: SIZE }).objects, scene.objects);
  });

  it('has buildings, vehicles and storage tanks with xView type ids', () => {
    const classes = new Set(scene.objects.map((o) => o.class));
    assert.deepEqual([...classes].sort(), ['building', 'storage_tank', 'vehicle']);
    for (const o of scene.objects) {
      assert.ok(o.typeId in XVIEW_TYPE_NAMES, `type ${o.typeId}`);
      const expected = o.class === 'building' ? [73] : o.class === 'storage_tank' ? [86] : [18, 19, 20, 23];
      assert.ok(expected.includes(o.typeId), `${o.class} with type ${o.typeId}`);
    }
  });

  it('has rotated and axis-aligned buildings', () => {
    const buildings = scene.objects.filter((o) => o.class === 'building');
    const angles = buildings.map((b) => {
      const [[ax, ay], [bx, by]] = b.outline as [[number, number], [number, number]];
      return Math.abs(Math.atan2(by - ay, bx - ax)) % (Math.PI / 2);
    });
    assert.ok(
      angles.some((a) => a > 0.2 && a < Math.PI / 2 - 0.2),
      'no rotated building',
    );
    assert.ok(
      angles.some((a) => a < 0.05 || a > Math.PI / 2 - 0.05),
      'no axis-aligned building',
    );
  });

  it('keeps every object inside the image, out of the no-data corner and out of the water', () => {
    for (const o of scene.objects) {
      const [x0, y0, x1, y1] = o.box;
      assert.ok(x0 >= 0 && y0 >= 0 && x1 <= SIZE && y1 <= SIZE && x0 < x1 && y0 < y1, `box ${o.box}`);
      for (const [x, y] of o.outline) {
        assert.ok(x >= x0 && x <= x1 && y >= y0 && y <= y1, 'outline outside its box');
        assert.ok(x + y >= scene.nodataCorner, 'object in the no-data corner');
        assert.ok(!scene.isWater(x, y), 'object in the water');
      }
    }
  });

  it('objects do not overlap each other', () => {
    const taken = new Map<string, number>();
    for (const o of scene.objects) {
      for (const [x, y] of interiorPixels(o)) {
        const key = `${x},${y}`;
        assert.equal(taken.get(key), undefined, `objects ${taken.get(key)} and ${o.id} overlap at ${key}`);
        taken.set(key, o.id);
      }
    }
  });

  it('is georeferenced in the UTM zone of its place, north-up, on whole metres', () => {
    assert.equal(scene.epsg, 32633);
    assert.equal(scene.crsName, 'WGS 84 / UTM zone 33N');
    const [x0, res, rx, y0, ry, resY] = scene.geotransform;
    assert.deepEqual([res, rx, ry, resY], [0.5, 0, 0, -0.5]);
    assert.ok(Number.isInteger(x0) && Number.isInteger(y0));
    for (const place of DEMO_PLACES)
      assert.deepEqual(utmZoneForLonLat(place.lon, place.lat), { zone: 33, north: true });
  });

  it('rejects bad options', () => {
    assert.throws(() => planDemoScene({ seed: 1.5 }), /Expected integer for seed but received 1.5/);
    assert.throws(
      () => planDemoScene({ seed: 1, width: 10 }),
      /Expected integer >= 64 for width but received 10/,
    );
    assert.throws(
      () => planDemoScene({ seed: 1, width: 100, resolution: 0 }),
      /Expected resolution in \(0, 100\] metres/,
    );
  });
});

describe('renderRows', () => {
  it('gives the same pixels whatever the band of rows', () => {
    assert.ok(Buffer.from(render(scene, {}, 37).buffer).equals(Buffer.from(withObjects.buffer)));
  });

  it('has 11-bit values outside a no-data (0) top-left corner', () => {
    let nodata = 0;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const k = (y * SIZE + x) * 4;
        const px = Array.from(withObjects.subarray(k, k + 4));
        if (scene.isNodata(x, y)) {
          nodata++;
          assert.deepEqual(px, [0, 0, 0, 0]);
        } else {
          assert.ok(
            px.every((v) => v >= 50 && v <= 2047),
            `(${x}, ${y}) = ${px}`,
          );
        }
      }
    }
    assert.ok(nodata > 0.005 * SIZE * SIZE && nodata < 0.02 * SIZE * SIZE, `${nodata} no-data pixels`);
    assert.equal(withObjects[0], 0);
  });

  it('looks like land: vegetation is bright in NIR, open water is dark in NIR', () => {
    let vegetation = 0;
    let water = 0;
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const k = (y * SIZE + x) * 4;
        const red = withObjects[k + 2] as number;
        const nir = withObjects[k + 3] as number;
        if (nir > 2 * red && nir > 900) vegetation++;
        if (scene.isWater(x + 0.5, y + 0.5)) {
          water++;
          assert.ok(nir < 450, `water pixel (${x}, ${y}) has NIR ${nir}`);
        }
      }
    }
    assert.ok(vegetation > 0.3 * SIZE * SIZE, `vegetation ${vegetation}`);
    assert.ok(water > 0, 'the test scene has a lake');
  });

  it('every object differs from the background under it', () => {
    for (const o of scene.objects) {
      const pixels = interiorPixels(o);
      assert.ok(pixels.length > 0, `object ${o.id} has no interior pixel`);
      let diff = 0;
      for (const [x, y] of pixels) {
        const k = (y * SIZE + x) * 4;
        for (let b = 0; b < 4; b++)
          diff += Math.abs((withObjects[k + b] as number) - (without[k + b] as number));
      }
      const meanPerBand = diff / pixels.length / 4;
      assert.ok(
        meanPerBand > 100,
        `${o.class} ${o.id}: mean difference ${meanPerBand.toFixed(0)} DN per band`,
      );
    }
  });

  it('outside objects and their shadows, the scene without objects is the same', () => {
    const [x0, y0, x1, y1] = [0, 0, 40, 40];
    let same = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const k = (y * SIZE + x) * 4;
        if (withObjects[k] === without[k]) same++;
      }
    }
    assert.equal(same, (x1 - x0) * (y1 - y0));
  });
});
