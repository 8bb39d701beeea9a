/**
 * Which grid cells cover a georeferenced scene and how each maps onto the scene's pixels: the
 * Maxar ARD grid (one quadtree per UTM zone, the scene's zone) or the web-mercator XYZ grid.
 * No I/O; CRS transformations through lib/geo/crs.ts.
 */
import { invertGeoTransform, pixelToWorld, type GeoTransform } from '../geo/affine.js';
import { ardCellBounds, ardCellId, ardCellsCovering, ardChipName, type ArdCell } from '../geo/ard-grid.js';
import { CRS84, crsTransform } from '../geo/crs.js';
import { GridError } from '../geo/grid-error.js';
import { checkLevel } from '../geo/quadkey.js';
import { utmEpsg, utmZoneForLonLat, utmZoneFromEpsg, type UtmZone } from '../geo/utm.js';
import { tileMercatorBounds, tileQuadkey, tilesCovering, type Tile } from '../geo/web-mercator.js';
import type { PixelMapping } from './warp.js';

export type GridKind = 'ard' | 'webmercator';
export const GRID_KINDS: readonly GridKind[] = ['ard', 'webmercator'];
/** Levels (ARD) and zooms (web mercator) a grid chip may have. */
export const MIN_GRID_LEVEL = 1;
export const MAX_GRID_LEVEL = 24;
/**
 * Chip size by grid: web-mercator tiles are 256 px (the XYZ / slippy-map convention); ARD chips
 * 512 px (a common training chip size; ARD itself only fixes the cell, not a pixel count).
 */
export const DEFAULT_TILE_SIZE: Record<GridKind, number> = { ard: 512, webmercator: 256 };
export const TILE_SIZES: readonly number[] = [256, 512];
/** Largest distance from the grid's pixel lattice at which a raster still counts as on the grid. */
export const ON_GRID_TOLERANCE_PX = 1e-6;

/** The georeferencing of a scene, as chipping needs it. */
export interface SceneGeoreference {
  readonly uri: string;
  readonly width: number;
  readonly height: number;
  readonly geotransform: GeoTransform;
  readonly epsg: number;
}

/** A box in a CRS. */
export interface CrsBox {
  readonly xmin: number;
  readonly ymin: number;
  readonly xmax: number;
  readonly ymax: number;
}

/** One cell of the grid that covers the scene, with its chip's placement. */
export interface GridCell {
  /** The chip's path under the output folder, without extension (`Z21-0312..._CAT` or `9/168/68`). */
  readonly name: string;
  /** `Z21-031202` (ARD) or `9/168/68` (web mercator). */
  readonly id: string;
  readonly quadkey: string;
  readonly level: number;
  /** The grid CRS of this cell (UTM 326xx/327xx for ARD, 3857 for web mercator). */
  readonly epsg: number;
  readonly bounds: CrsBox;
  /** Geotransform of the chip (tileSize x tileSize pixels over the cell). */
  readonly geotransform: GeoTransform;
  /** The cell's corners in CRS84 (lon, lat), closed ring, counter-clockwise from the top-left. */
  readonly lonLatRing: readonly (readonly [number, number])[];
  /** Top-left source pixel when the scene lies on the grid's pixel lattice (a pure window), else undefined. */
  readonly window?: { readonly col: number; readonly row: number };
}

export interface GridPlanOptions {
  readonly grid: GridKind;
  readonly level: number;
  /** @default {@link DEFAULT_TILE_SIZE} of the grid */
  readonly tileSize?: number;
  /** ARD chips' catalog id. */
  readonly catalogId?: string;
}

/** Throws GridError for a grid, level or tile size chipping does not support. */
export function validateGridOptions(options: GridPlanOptions): void {
  if (!GRID_KINDS.includes(options.grid)) {
    throw new GridError(
      `Expected grid ${GRID_KINDS.join(' or ')} but received ${JSON.stringify(options.grid)}`,
    );
  }
  checkLevel(options.level, MIN_GRID_LEVEL, MAX_GRID_LEVEL);
  const size = options.tileSize ?? DEFAULT_TILE_SIZE[options.grid];
  if (!TILE_SIZES.includes(size)) {
    throw new GridError(`Expected tile size ${TILE_SIZES.join(' or ')} but received ${size}`);
  }
}

/** A catalog id from a file stem: its letters and digits (`cog_nodata` -> `cognodata`). */
export function catalogIdFromStem(stem: string): string {
  return stem.replace(/[^A-Za-z0-9]/g, '');
}

/** Points along the scene's outline (pixel corners), `per` per edge, in the scene's CRS. */
function outline(scene: SceneGeoreference, per = 16): [number, number][] {
  const pts: [number, number][] = [];
  const { width: w, height: h, geotransform: gt } = scene;
  for (let i = 0; i < per; i++) {
    const t = i / per;
    pts.push(pixelToWorld(gt, t * w, 0), pixelToWorld(gt, w, t * h));
    pts.push(pixelToWorld(gt, w - t * w, h), pixelToWorld(gt, 0, h - t * h));
  }
  return pts;
}

function boxOf(points: readonly (readonly [number, number])[]): CrsBox {
  let xmin = Infinity;
  let ymin = Infinity;
  let xmax = -Infinity;
  let ymax = -Infinity;
  for (const [x, y] of points) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    xmin = Math.min(xmin, x);
    ymin = Math.min(ymin, y);
    xmax = Math.max(xmax, x);
    ymax = Math.max(ymax, y);
  }
  return { xmin, ymin, xmax, ymax };
}

/** The UTM zone of an ARD chipping: the scene's own when its CRS is WGS 84 / UTM, else that of its centre. */
export function sceneUtmZone(scene: SceneGeoreference): UtmZone {
  const own = utmZoneFromEpsg(scene.epsg);
  if (own) return own;
  const [x, y] = pixelToWorld(scene.geotransform, scene.width / 2, scene.height / 2);
  const [lon, lat] = crsTransform({ epsg: scene.epsg, text: `EPSG:${scene.epsg}` }, CRS84).forward(x, y);
  return utmZoneForLonLat(lon, lat);
}

const ref = (epsg: number) => ({ epsg, text: `EPSG:${epsg}` });

function lonLatRing(epsg: number, b: CrsBox): [number, number][] {
  const t = crsTransform(ref(epsg), CRS84);
  return [
    [b.xmin, b.ymax],
    [b.xmin, b.ymin],
    [b.xmax, b.ymin],
    [b.xmax, b.ymax],
    [b.xmin, b.ymax],
  ].map(([x, y]) => {
    const [lon, lat] = t.forward(x!, y!);
    return [Math.round(lon * 1e9) / 1e9, Math.round(lat * 1e9) / 1e9];
  });
}

/** Whether the scene lies on the pixel lattice of a cell (same CRS, same pixel size, aligned origin). */
function latticeWindow(
  scene: SceneGeoreference,
  epsg: number,
  bounds: CrsBox,
  res: number,
  tileSize: number,
): { col: number; row: number } | undefined {
  const gt = scene.geotransform;
  if (scene.epsg !== epsg || gt[2] !== 0 || gt[4] !== 0) return undefined;
  const tol = ON_GRID_TOLERANCE_PX;
  if (Math.abs(gt[1] - res) * tileSize > tol * res || Math.abs(-gt[5] - res) * tileSize > tol * res) {
    return undefined;
  }
  const col = (bounds.xmin - gt[0]) / res;
  const row = (gt[3] - bounds.ymax) / res;
  if (Math.abs(col - Math.round(col)) > tol || Math.abs(row - Math.round(row)) > tol) return undefined;
  return { col: Math.round(col), row: Math.round(row) };
}

/** The cells of the grid that the scene overlaps, rows outer (north to south), columns inner. */
export function planGridCells(scene: SceneGeoreference, options: GridPlanOptions): GridCell[] {
  validateGridOptions(options);
  const tileSize = options.tileSize ?? DEFAULT_TILE_SIZE[options.grid];
  const level = options.level;
  const source = ref(scene.epsg);
  const points = outline(scene);
  const cells: GridCell[] = [];
  const make = (id: string, name: string, quadkey: string, epsg: number, bounds: CrsBox): GridCell =>
    gridCell(scene, { id, name, quadkey, level, epsg, bounds }, tileSize);
  if (options.grid === 'ard') {
    const zone = sceneUtmZone(scene);
    const zoneEpsg = utmEpsg(zone);
    const t = crsTransform(source, ref(zoneEpsg));
    const box = boxOf(points.map(([x, y]) => t.forward(x, y)));
    if (!Number.isFinite(box.xmin)) {
      throw new GridError(`${scene.uri}: the scene's outline cannot be transformed to EPSG:${zoneEpsg}`);
    }
    const catalogId = options.catalogId ?? catalogIdFromStem(stemOf(scene.uri));
    for (const cell of ardCellsCovering(zone.zone, zone.north, box, level) as ArdCell[]) {
      const b = ardCellBounds(cell);
      cells.push(
        make(ardCellId(cell), ardChipName(cell, catalogId), cell.quadkey, b.epsg, {
          xmin: b.xmin,
          ymin: b.ymin,
          xmax: b.xmax,
          ymax: b.ymax,
        }),
      );
    }
    return cells;
  }
  const ll = sceneBoxIn(scene, 4326);
  const tiles: Tile[] = tilesCovering(
    { west: ll.xmin, south: ll.ymin, east: ll.xmax, north: ll.ymax },
    level,
  );
  for (const tile of tiles) cells.push(webMercatorCell(scene, tile, tileSize));
  return cells;
}

/**
 * The bounding box of the scene's outline (densified, 16 points per edge) in another CRS
 * (4326: CRS84 longitude/latitude); throws GridError when the outline cannot be transformed.
 */
export function sceneBoxIn(scene: SceneGeoreference, epsg: number): CrsBox {
  const t = crsTransform(ref(scene.epsg), epsg === 4326 ? CRS84 : ref(epsg));
  const box = boxOf(outline(scene).map(([x, y]) => t.forward(x, y)));
  if (!Number.isFinite(box.xmin)) {
    throw new GridError(
      epsg === 4326
        ? `${scene.uri}: the scene's outline cannot be transformed to longitude/latitude`
        : `${scene.uri}: the scene's outline cannot be transformed to EPSG:${epsg}`,
    );
  }
  return box;
}

/** The web-mercator XYZ cell of a tile, placed on the scene (`z/x/y` is its id and name). */
export function webMercatorCell(scene: SceneGeoreference, tile: Tile, tileSize: number): GridCell {
  const m = tileMercatorBounds(tile);
  const id = `${tile.z}/${tile.x}/${tile.y}`;
  return gridCell(
    scene,
    {
      id,
      name: id,
      quadkey: tileQuadkey(tile),
      level: tile.z,
      epsg: 3857,
      bounds: { xmin: m.left, ymin: m.bottom, xmax: m.right, ymax: m.top },
    },
    tileSize,
  );
}

function gridCell(
  scene: SceneGeoreference,
  cell: Pick<GridCell, 'id' | 'name' | 'quadkey' | 'level' | 'epsg' | 'bounds'>,
  tileSize: number,
): GridCell {
  const { bounds, epsg } = cell;
  const res = (bounds.xmax - bounds.xmin) / tileSize;
  const window = latticeWindow(scene, epsg, bounds, res, tileSize);
  return {
    ...cell,
    geotransform: [bounds.xmin, res, 0, bounds.ymax, 0, -res],
    lonLatRing: lonLatRing(epsg, bounds),
    ...(window ? { window } : {}),
  };
}

/** The file stem of a URI (`s3://b/x/scene.tif` -> `scene`). */
export function stemOf(uri: string): string {
  const base = uri.slice(uri.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Transformations between a scene and grid cells, cached per grid CRS. */
export class SceneGridMapping {
  private readonly toSource = new Map<number, (x: number, y: number) => [number, number]>();
  private readonly toGrid = new Map<number, (x: number, y: number) => [number, number]>();
  private readonly inverse: GeoTransform;

  constructor(private readonly scene: SceneGeoreference) {
    this.inverse = invertGeoTransform(scene.geotransform);
  }

  private transform(
    cache: Map<number, (x: number, y: number) => [number, number]>,
    from: number,
    to: number,
    key: number,
  ): (x: number, y: number) => [number, number] {
    let f = cache.get(key);
    if (!f) {
      const t = crsTransform(ref(from), ref(to));
      f = t.forward;
      cache.set(key, f);
    }
    return f;
  }

  /** Exact mapping of chip pixel-corner coordinates to scene pixel-corner coordinates (NaN outside the projection). */
  chipToScene(cell: GridCell): PixelMapping {
    const f = this.transform(this.toSource, cell.epsg, this.scene.epsg, cell.epsg);
    const [x0, res, , y0] = cell.geotransform;
    const inv = this.inverse;
    return (col, row) => {
      let sx: number;
      let sy: number;
      try {
        [sx, sy] = f(x0 + col * res, y0 - row * res);
      } catch {
        return [NaN, NaN];
      }
      if (!Number.isFinite(sx) || !Number.isFinite(sy)) return [NaN, NaN];
      return pixelToWorld(inv, sx, sy);
    };
  }

  /** Exact mapping of scene pixel coordinates to the chip's pixel coordinates (for annotations). */
  sceneToChip(cell: GridCell): (col: number, row: number) => [number, number] {
    const f = this.transform(this.toGrid, this.scene.epsg, cell.epsg, cell.epsg);
    const [x0, res, , y0] = cell.geotransform;
    const gt = this.scene.geotransform;
    if (cell.window) {
      const { col: c0, row: r0 } = cell.window;
      return (col, row) => [col - c0, row - r0];
    }
    return (col, row) => {
      const [x, y] = pixelToWorld(gt, col, row);
      const [gx, gy] = f(x, y);
      return [(gx - x0) / res, (y0 - gy) / res];
    };
  }
}
