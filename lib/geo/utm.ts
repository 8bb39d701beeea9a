/**
 * Transverse Mercator on the WGS84 ellipsoid (Krüger's series to order n^6, as in
 * Karney 2011, "Transverse Mercator with an accuracy of a few nanometers"), and UTM on top.
 * Accurate to well under a millimetre within a few thousand km of the central meridian.
 * Pure functions, no I/O.
 */

const WGS84_A = 6378137;
const WGS84_F = 1 / 298.257223563;

/** Parameters of one transverse Mercator projection on WGS84. */
export interface TransverseMercatorParams {
  /** Central meridian, degrees. */
  readonly lon0: number;
  /** Scale factor on the central meridian. */
  readonly k0: number;
  /** Metres added to eastings. */
  readonly falseEasting: number;
  /** Metres added to northings. */
  readonly falseNorthing: number;
}

/** A UTM zone: number 1..60 and hemisphere. */
export interface UtmZone {
  readonly zone: number;
  readonly north: boolean;
}

const n = WGS84_F / (2 - WGS84_F);
const e2 = WGS84_F * (2 - WGS84_F);
const e = Math.sqrt(e2);
const n2 = n * n;
const n3 = n2 * n;
const n4 = n3 * n;
const n5 = n4 * n;
const n6 = n5 * n;
/** Rectifying radius: meridian arc length per radian of rectifying latitude. */
const A = (WGS84_A / (1 + n)) * (1 + n2 / 4 + n4 / 64 + n6 / 256);

const ALPHA = [
  n / 2 - (2 * n2) / 3 + (5 * n3) / 16 + (41 * n4) / 180 - (127 * n5) / 288 + (7891 * n6) / 37800,
  (13 * n2) / 48 - (3 * n3) / 5 + (557 * n4) / 1440 + (281 * n5) / 630 - (1983433 * n6) / 1935360,
  (61 * n3) / 240 - (103 * n4) / 140 + (15061 * n5) / 26880 + (167603 * n6) / 181440,
  (49561 * n4) / 161280 - (179 * n5) / 168 + (6601661 * n6) / 7257600,
  (34729 * n5) / 80640 - (3418889 * n6) / 1995840,
  (212378941 * n6) / 319334400,
];

const BETA = [
  n / 2 - (2 * n2) / 3 + (37 * n3) / 96 - n4 / 360 - (81 * n5) / 512 + (96199 * n6) / 604800,
  n2 / 48 + n3 / 15 - (437 * n4) / 1440 + (46 * n5) / 105 - (1118711 * n6) / 3870720,
  (17 * n3) / 480 - (37 * n4) / 840 - (209 * n5) / 4480 + (5569 * n6) / 90720,
  (4397 * n4) / 161280 - (11 * n5) / 504 - (830251 * n6) / 7257600,
  (4583 * n5) / 161280 - (108847 * n6) / 3991680,
  (20648693 * n6) / 638668800,
];

const DEG = Math.PI / 180;

/** tan of the conformal latitude from tan of the geodetic latitude (Karney 2011, eq. 7-9). */
function conformalTan(tau: number): number {
  const sigma = Math.sinh(e * Math.atanh((e * tau) / Math.hypot(1, tau)));
  return tau * Math.hypot(1, sigma) - sigma * Math.hypot(1, tau);
}

/** Inverse of {@link conformalTan} by Newton's method (converges in 2-3 steps). */
function geodeticTan(tauPrime: number): number {
  let tau = tauPrime / (1 - e2);
  for (let i = 0; i < 8; i++) {
    const tp = conformalTan(tau);
    const dtau =
      ((tauPrime - tp) * (1 + (1 - e2) * tau * tau)) / ((1 - e2) * Math.hypot(1, tau) * Math.hypot(1, tp));
    tau += dtau;
    if (Math.abs(dtau) <= 1e-14 * Math.max(1, Math.abs(tau))) break;
  }
  return tau;
}

/** Wraps a longitude difference into [-180, 180). */
function wrapDegrees(deg: number): number {
  return ((((deg + 180) % 360) + 360) % 360) - 180;
}

/** Projects a WGS84 lon/lat (degrees) to transverse Mercator easting/northing (metres). */
export function transverseMercatorForward(
  lon: number,
  lat: number,
  params: TransverseMercatorParams,
): [easting: number, northing: number] {
  if (!(Math.abs(lat) <= 90)) throw new Error(`Expected latitude in [-90, 90] but received ${lat}`);
  const lam = wrapDegrees(lon - params.lon0) * DEG;
  const phi = lat * DEG;
  const tauP = Math.abs(lat) === 90 ? Math.sign(lat) * Infinity : conformalTan(Math.tan(phi));
  const xiP = Math.atan2(tauP, Math.cos(lam));
  const etaP = Math.asinh(Math.sin(lam) / Math.hypot(tauP, Math.cos(lam)));
  let xi = xiP;
  let eta = etaP;
  for (let j = 1; j <= 6; j++) {
    const a = ALPHA[j - 1] as number;
    xi += a * Math.sin(2 * j * xiP) * Math.cosh(2 * j * etaP);
    eta += a * Math.cos(2 * j * xiP) * Math.sinh(2 * j * etaP);
  }
  return [params.falseEasting + params.k0 * A * eta, params.falseNorthing + params.k0 * A * xi];
}

/** Inverse of {@link transverseMercatorForward}: easting/northing (metres) to WGS84 lon/lat (degrees). */
export function transverseMercatorInverse(
  easting: number,
  northing: number,
  params: TransverseMercatorParams,
): [lon: number, lat: number] {
  const xi = (northing - params.falseNorthing) / (params.k0 * A);
  const eta = (easting - params.falseEasting) / (params.k0 * A);
  let xiP = xi;
  let etaP = eta;
  for (let j = 1; j <= 6; j++) {
    const b = BETA[j - 1] as number;
    xiP -= b * Math.sin(2 * j * xi) * Math.cosh(2 * j * eta);
    etaP -= b * Math.cos(2 * j * xi) * Math.sinh(2 * j * eta);
  }
  const tauP = Math.sin(xiP) / Math.hypot(Math.sinh(etaP), Math.cos(xiP));
  const lat = Math.atan(geodeticTan(tauP)) / DEG;
  const lon = wrapDegrees(params.lon0 + Math.atan2(Math.sinh(etaP), Math.cos(xiP)) / DEG);
  return [lon, lat];
}

/** Transverse Mercator parameters of a UTM zone. */
export function utmParams(zone: UtmZone): TransverseMercatorParams {
  checkZone(zone.zone);
  return {
    lon0: zone.zone * 6 - 183,
    k0: 0.9996,
    falseEasting: 500000,
    falseNorthing: zone.north ? 0 : 10000000,
  };
}

/** EPSG code of a WGS84 UTM zone: 326zz (north) or 327zz (south). */
export function utmEpsg(zone: UtmZone): number {
  checkZone(zone.zone);
  return (zone.north ? 32600 : 32700) + zone.zone;
}

/** The UTM zone of a WGS84 / UTM EPSG code (32601..32660, 32701..32760), else undefined. */
export function utmZoneFromEpsg(epsg: number): UtmZone | undefined {
  if (epsg >= 32601 && epsg <= 32660) return { zone: epsg - 32600, north: true };
  if (epsg >= 32701 && epsg <= 32760) return { zone: epsg - 32700, north: false };
  return undefined;
}

/** The standard UTM zone of a lon/lat, including the Norway and Svalbard exceptions. */
export function utmZoneForLonLat(lon: number, lat: number): UtmZone {
  const wrapped = wrapDegrees(lon);
  let zone = Math.floor((wrapped + 180) / 6) + 1;
  if (lat >= 56 && lat < 64 && wrapped >= 3 && wrapped < 12) zone = 32;
  if (lat >= 72 && lat < 84) {
    if (wrapped >= 0 && wrapped < 9) zone = 31;
    else if (wrapped >= 9 && wrapped < 21) zone = 33;
    else if (wrapped >= 21 && wrapped < 33) zone = 35;
    else if (wrapped >= 33 && wrapped < 42) zone = 37;
  }
  return { zone: Math.min(zone, 60), north: lat >= 0 };
}

/** WGS84 lon/lat (degrees) to UTM easting/northing (metres) in the given zone. */
export function lonLatToUtm(lon: number, lat: number, zone: UtmZone): [easting: number, northing: number] {
  return transverseMercatorForward(lon, lat, utmParams(zone));
}

/** UTM easting/northing (metres) in the given zone to WGS84 lon/lat (degrees). */
export function utmToLonLat(easting: number, northing: number, zone: UtmZone): [lon: number, lat: number] {
  return transverseMercatorInverse(easting, northing, utmParams(zone));
}

/** Common name of a WGS84 UTM CRS, e.g. "WGS 84 / UTM zone 33N". */
export function utmName(zone: UtmZone): string {
  checkZone(zone.zone);
  return `WGS 84 / UTM zone ${zone.zone}${zone.north ? 'N' : 'S'}`;
}

function checkZone(zone: number): void {
  if (!Number.isInteger(zone) || zone < 1 || zone > 60) {
    throw new Error(`Expected UTM zone integer in 1..60 but received ${zone}`);
  }
}
