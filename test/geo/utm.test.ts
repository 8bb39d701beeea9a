import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  lonLatToUtm,
  transverseMercatorForward,
  transverseMercatorInverse,
  utmEpsg,
  utmName,
  utmToLonLat,
  utmZoneForLonLat,
  utmZoneFromEpsg,
} from '../../lib/geo/utm.js';

// Reference pairs computed with PROJ 9.1 (Debian bookworm), e.g.
//   echo "16.3738 48.2082" | cs2cs -f %.9f +proj=longlat +datum=WGS84 +to +proj=utm +zone=33 +datum=WGS84
// (add +south for southern zones). [lon, lat, zone, north, easting, northing]
const PROJ_PAIRS: [string, number, number, number, boolean, number, number][] = [
  ['Vienna', 16.3738, 48.2082, 33, true, 602065.207411001, 5340353.594303575],
  ['Berlin', 13.405, 52.52, 33, true, 391779.25925275, 5820072.159211027],
  ['equator, 3 deg east of the central meridian', 18.0, 0.0, 33, true, 833978.556919462, 0],
  ['near the equator, 3 deg west', 12.0, 0.5, 33, true, 166034.098266797, 55341.388215555],
  ['Sydney (south)', 151.2093, -33.8688, 56, false, 334368.633648097, 6250948.345385009],
  ['Santiago (south, west)', -70.6693, -33.4489, 19, false, 344846.720310103, 6297700.155609685],
  ['New York', -74.0445, 40.6892, 18, true, 580735.87070326, 4504695.165218929],
  ['6 deg off the central meridian at 70N', 9.0, 70.0, 33, true, 271293.256174203, 7777138.716948336],
  ['central meridian at 84N', 15.0, 84.0, 33, true, 500000, 9328093.830560509],
  ['central meridian at 79S', 3.0, -79.0, 31, false, 500000, 1230025.986201588],
  ['6 deg east at 10N', 21.0, 10.0, 33, true, 1158712.847697735, 1111418.032883527],
];

describe('UTM forward and inverse against PROJ', () => {
  for (const [name, lon, lat, zone, north, easting, northing] of PROJ_PAIRS) {
    it(name, () => {
      const [e, n] = lonLatToUtm(lon, lat, { zone, north });
      assert.ok(Math.abs(e - easting) < 1e-3, `easting ${e} vs ${easting}`);
      assert.ok(Math.abs(n - northing) < 1e-3, `northing ${n} vs ${northing}`);
      const [lo, la] = utmToLonLat(easting, northing, { zone, north });
      assert.ok(Math.abs(lo - lon) < 1e-8, `lon ${lo} vs ${lon}`);
      assert.ok(Math.abs(la - lat) < 1e-8, `lat ${la} vs ${lat}`);
    });
  }
});

describe('round trips', () => {
  it('inverse(forward(p)) = p to 1e-10 deg over a zone-wide grid', () => {
    const params = { lon0: 15, k0: 0.9996, falseEasting: 500000, falseNorthing: 0 };
    for (let lat = -80; lat <= 84; lat += 4) {
      for (let dlon = -3.5; dlon <= 3.5; dlon += 0.5) {
        const [x, y] = transverseMercatorForward(15 + dlon, lat, params);
        const [lon2, lat2] = transverseMercatorInverse(x, y, params);
        assert.ok(
          Math.abs(lon2 - (15 + dlon)) < 1e-10 && Math.abs(lat2 - lat) < 1e-10,
          `${15 + dlon},${lat}`,
        );
      }
    }
  });
  it('the poles and the central meridian', () => {
    const zone = { zone: 33, north: true };
    const [e, n] = lonLatToUtm(15, 90, zone);
    assert.ok(Math.abs(e - 500000) < 1e-6);
    assert.ok(Math.abs(n - 9997964.943) < 1e-3, `north pole northing ${n}`);
    const [lon, lat] = utmToLonLat(500000, 0, zone);
    assert.ok(Math.abs(lon - 15) < 1e-12 && Math.abs(lat) < 1e-12);
  });
  it('longitudes wrap across the antimeridian', () => {
    const [lon] = utmToLonLat(...lonLatToUtm(-179.5, 10, { zone: 60, north: true }), {
      zone: 60,
      north: true,
    });
    assert.ok(Math.abs(lon - -179.5) < 1e-9, `lon ${lon}`);
  });
});

describe('zones and EPSG codes', () => {
  const zones: [string, number, number, number, boolean][] = [
    ['Vienna', 16.37, 48.2, 33, true],
    ['Sydney', 151.2, -33.9, 56, false],
    ['lon -180', -180, 0, 1, true],
    ['lon 180 wraps to zone 1', 180, 0, 1, true],
    ['lon 179.9', 179.9, 0, 60, true],
    ['Bergen (Norway exception)', 5.3, 60.4, 32, true],
    ['Svalbard exception', 15, 78, 33, true],
    ['Svalbard 31X', 8, 78, 31, true],
  ];
  for (const [name, lon, lat, zone, north] of zones) {
    it(`utmZoneForLonLat: ${name}`, () => assert.deepEqual(utmZoneForLonLat(lon, lat), { zone, north }));
  }
  it('EPSG codes both ways', () => {
    assert.equal(utmEpsg({ zone: 33, north: true }), 32633);
    assert.equal(utmEpsg({ zone: 56, north: false }), 32756);
    assert.deepEqual(utmZoneFromEpsg(32633), { zone: 33, north: true });
    assert.deepEqual(utmZoneFromEpsg(32701), { zone: 1, north: false });
    for (const code of [4326, 3857, 32600, 32661, 32700]) assert.equal(utmZoneFromEpsg(code), undefined);
  });
  it('names', () => {
    assert.equal(utmName({ zone: 33, north: true }), 'WGS 84 / UTM zone 33N');
    assert.equal(utmName({ zone: 7, north: false }), 'WGS 84 / UTM zone 7S');
  });
  for (const zone of [0, 61, 1.5, Number.NaN]) {
    it(`rejects zone ${zone}`, () =>
      assert.throws(() => utmEpsg({ zone, north: true }), /Expected UTM zone integer in 1..60 but received/));
  }
  it('rejects latitudes beyond the poles', () => {
    assert.throws(
      () => lonLatToUtm(0, 91, { zone: 31, north: true }),
      /Expected latitude in \[-90, 90\] but received 91/,
    );
  });
});
