/**
 * The web-mercator XYZ tile grid (slippy map), computed as mercantile computes it (REFERENCE §3).
 * Pure, no I/O.
 */
import { GridError } from './grid-error.js';
import { checkLevel, parseQuadkey, quadkey } from './quadkey.js';

/** An XYZ tile. */
export interface Tile {
  readonly x: number;
  readonly y: number;
  readonly z: number;
}

/** Longitude/latitude bounds in degrees. */
export interface LngLatBounds {
  readonly west: number;
  readonly south: number;
  readonly east: number;
  readonly north: number;
}

/** Web-mercator (EPSG:3857) metre bounds. */
export interface MercatorBounds {
  readonly left: number;
  readonly bottom: number;
  readonly right: number;
  readonly top: number;
}

/** Radius of the web-mercator sphere (EPSG:3857), metres. */
export const MERCATOR_RADIUS = 6378137;
/** Half the width of the web-mercator square, metres. */
export const MERCATOR_HALF = Math.PI * MERCATOR_RADIUS;
// mercantile adds this before flooring so points on a tile edge land in the right tile
const EPSILON = 1e-14;
const LL_EPSILON = 1e-11;

function checkLngLat(lng: number, lat: number): void {
  if (!Number.isFinite(lng)) throw new GridError(`Expected finite longitude but received ${lng}`);
  if (!Number.isFinite(lat) || lat <= -90 || lat >= 90) {
    throw new GridError(`Expected latitude in (-90, 90) but received ${lat}`);
  }
}

/** Fractional tile coordinates in [0, 1] of the whole map (y downwards), unclamped. */
function unitXY(lng: number, lat: number): [number, number] {
  const sin = Math.sin((lat * Math.PI) / 180);
  return [lng / 360 + 0.5, 0.5 - (0.25 * Math.log((1 + sin) / (1 - sin))) / Math.PI];
}

/** The tile containing (lng, lat) at zoom `z`; positions beyond the map are clamped to its edge tiles. */
export function tileForLngLat(lng: number, lat: number, z: number): Tile {
  checkLevel(z);
  checkLngLat(lng, lat);
  const n = 2 ** z;
  const [ux, uy] = unitXY(lng, lat);
  const cell = (u: number): number =>
    u <= 0 ? 0 : u >= 1 ? n - 1 : Math.min(n - 1, Math.floor((u + EPSILON) * n));
  return { x: cell(ux), y: cell(uy), z };
}

/** Quadkey of a tile ("" at zoom 0). */
export function tileQuadkey(tile: Tile): string {
  return quadkey(tile.x, tile.y, tile.z);
}

/** The tile of a quadkey. */
export function quadkeyTile(key: string): Tile {
  const { x, y, level } = parseQuadkey(key);
  return { x, y, z: level };
}

/** Longitude/latitude bounds of a tile. */
export function tileBounds(tile: Tile): LngLatBounds {
  const n = 2 ** tile.z;
  const lat = (y: number): number => (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180) / Math.PI;
  return {
    west: (tile.x / n) * 360 - 180,
    south: lat(tile.y + 1),
    east: ((tile.x + 1) / n) * 360 - 180,
    north: lat(tile.y),
  };
}

/** EPSG:3857 bounds of a tile, metres. */
export function tileMercatorBounds(tile: Tile): MercatorBounds {
  const size = (2 * MERCATOR_HALF) / 2 ** tile.z;
  const left = -MERCATOR_HALF + tile.x * size;
  const top = MERCATOR_HALF - tile.y * size;
  return { left, bottom: top - size, right: left + size, top };
}

/** The tile containing an EPSG:3857 point (clamped to the map). */
export function tileForMercator(x: number, y: number, z: number): Tile {
  checkLevel(z);
  const n = 2 ** z;
  const cell = (u: number): number => Math.min(n - 1, Math.max(0, Math.floor((u + EPSILON) * n)));
  return {
    x: cell((x + MERCATOR_HALF) / (2 * MERCATOR_HALF)),
    y: cell((MERCATOR_HALF - y) / (2 * MERCATOR_HALF)),
    z,
  };
}

/**
 * Every tile at zoom `z` that a longitude/latitude box touches, rows outer; latitudes are clamped
 * to the map (±85.0511).
 */
export function tilesCovering(bounds: LngLatBounds, z: number): Tile[] {
  checkLevel(z);
  const clampLat = (v: number): number => Math.max(-85.051128779806, Math.min(85.051128779806, v));
  if (!(bounds.west <= bounds.east) || !(bounds.south <= bounds.north)) {
    throw new GridError(`Expected west <= east and south <= north but received ${JSON.stringify(bounds)}`);
  }
  const nw = tileForLngLat(bounds.west, clampLat(bounds.north), z);
  // like mercantile, a box ending exactly on a tile edge does not touch the next tile
  const se = tileForLngLat(
    Math.max(bounds.west, bounds.east - LL_EPSILON),
    clampLat(bounds.south + LL_EPSILON),
    z,
  );
  const tiles: Tile[] = [];
  for (let y = nw.y; y <= se.y; y++) for (let x = nw.x; x <= se.x; x++) tiles.push({ x, y, z });
  return tiles;
}
