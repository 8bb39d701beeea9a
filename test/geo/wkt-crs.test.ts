// WKT to EPSG codes: the forms .prj files, GeoPackages and FlatGeobuf headers carry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { epsgDefinition } from '../../lib/geo/crs.js';
import { crsFromWkt } from '../../lib/geo/wkt-crs.js';

const GCS =
  'GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]';
const esriUtm = (name: string, cm: number, fn = 0): string =>
  `PROJCS["${name}",${GCS},PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",${fn}],PARAMETER["Central_Meridian",${cm}],PARAMETER["Scale_Factor",0.9996],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]`;

describe('crsFromWkt', () => {
  it('the EPSG database WKT1 of a code (outermost AUTHORITY) gives the code back', () => {
    for (const code of [4326, 32616, 3857, 2154, 27700]) {
      assert.equal(crsFromWkt(epsgDefinition(code).wkt).epsg, code);
    }
  });

  it('WKT2 with an outermost ID', () => {
    const wkt =
      'PROJCRS["WGS 84 / UTM zone 33N",BASEGEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,298.257223563]],ID["EPSG",4326]],CONVERSION["UTM zone 33N",METHOD["Transverse Mercator"]],CS[Cartesian,2],AXIS["(E)",east],AXIS["(N)",north],ID["EPSG",32633]]';
    assert.deepEqual(crsFromWkt(wkt), { epsg: 32633, text: 'EPSG:32633' });
  });

  it('Esri names without codes, as GDAL writes .prj files, checked against the EPSG parameters', () => {
    assert.equal(crsFromWkt(esriUtm('WGS_1984_UTM_Zone_16N', -87)).epsg, 32616);
    assert.equal(crsFromWkt(esriUtm('WGS_1984_UTM_Zone_33S', 15, 10000000)).epsg, 32733);
    assert.equal(crsFromWkt(GCS).epsg, 4326);
    assert.throws(
      () => crsFromWkt(esriUtm('WGS_1984_UTM_Zone_16N', -81)),
      /its name says EPSG:32616 but its central_meridian is -81 where EPSG:32616 \(WGS 84 \/ UTM zone 16N\) has -87/,
    );
  });

  it('a WKT named exactly as an EPSG CRS, with no code', () => {
    assert.equal(crsFromWkt(esriUtm('WGS 84 / UTM zone 16N', -87)).epsg, 32616);
  });

  it('an unknown name or malformed text is refused with what to do', () => {
    assert.throws(
      () => crsFromWkt(esriUtm('My_Grid', -87)),
      /unknown CRS 'My_Grid': .*pass the CRS as EPSG:<code>/,
    );
    assert.throws(() => crsFromWkt('PROJCS["x",GEOGCS['), /not valid WKT/);
    assert.throws(() => crsFromWkt('hello'), /not valid WKT/);
  });
});
