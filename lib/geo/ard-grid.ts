/**
 * The Maxar ARD tile grid (REFERENCE §3): one quadtree per UTM zone over a square of side
 * 20,480,000 m in "north" UTM metres, x in [-9,740,000, 10,740,000], y in [-10,240,000,
 * 10,240,000]. Cells whose quadkey starts with 2 or 3 are southern: their true northings
 * (EPSG 327xx) are the grid's + 10,000,000. Pure, no I/O.
 */
import { GridError } from './grid-error.js';
import { checkLevel, parseQuadkey, quadkey } from './quadkey.js';

export const ARD_X_MIN = -9_740_000;
export const ARD_Y_MAX = 10_240_000;
export const ARD_SIDE = 20_480_000;
const SOUTH_OFFSET = 10_000_000;

/** One ARD grid cell: a UTM zone and a quadkey (its length is the level). */
export interface ArdCell {
  readonly zone: number;
  readonly quadkey: string;
}

/** Bounds of a cell in its own UTM CRS (EPSG 326xx north, 327xx south), metres. */
export interface ArdCellBounds {
  readonly epsg: number;
  readonly xmin: number;
  readonly ymin: number;
  readonly xmax: number;
  readonly ymax: number;
}

function checkZone(zone: number): void {
  if (!Number.isInteger(zone) || zone < 1 || zone > 60) {
    throw new GridError(`Expected integer in [1, 60] for UTM zone but received ${zone}`);
  }
}

/** Cell side at `level`, metres (level 12 = 5,000 m; 17 = 156.25 m). */
export function ardCellSize(level: number): number {
  checkLevel(level);
  return ARD_SIDE / 2 ** level;
}

/** Whether a cell lies in the southern hemisphere (quadkey starts with 2 or 3). */
export function ardIsSouth(key: string): boolean {
  return key.startsWith('2') || key.startsWith('3');
}

/**
 * The cell at `level` containing a UTM point (easting, northing in the zone's own north or south
 * CRS). Cells are half-open: a point on a cell's left or top edge belongs to it.
 */
export function ardCellAt(
  zone: number,
  north: boolean,
  easting: number,
  northing: number,
  level: number,
): ArdCell {
  checkZone(zone);
  checkLevel(level);
  const y = north ? northing : northing - SOUTH_OFFSET;
  const size = ARD_SIDE / 2 ** level;
  const n = 2 ** level;
  const col = Math.floor((easting - ARD_X_MIN) / size);
  const row = Math.floor((ARD_Y_MAX - y) / size);
  if (!(col >= 0 && col < n && row >= 0 && row < n)) {
    throw new GridError(
      `Expected a point inside the ARD grid of zone ${zone} but received easting ${easting}, northing ${northing} (${north ? 'north' : 'south'})`,
    );
  }
  return { zone, quadkey: quadkey(col, row, level) };
}

/** Grid column and row of a cell at its level. */
export function ardCellColRow(cell: ArdCell): { col: number; row: number; level: number } {
  const { x, y, level } = parseQuadkey(cell.quadkey);
  return { col: x, row: y, level };
}

/** Bounds of a cell in its UTM CRS. The level-0 cell spans both hemispheres and has no single CRS. */
export function ardCellBounds(cell: ArdCell): ArdCellBounds {
  checkZone(cell.zone);
  const { x, y, level } = parseQuadkey(cell.quadkey);
  if (level === 0)
    throw new GridError('Expected an ARD cell of level 1 or more but received the level-0 cell');
  const size = ARD_SIDE / 2 ** level;
  const south = ardIsSouth(cell.quadkey);
  const offset = south ? SOUTH_OFFSET : 0;
  const xmin = ARD_X_MIN + x * size;
  const ymax = ARD_Y_MAX - y * size + offset;
  return { epsg: (south ? 32700 : 32600) + cell.zone, xmin, ymin: ymax - size, xmax: xmin + size, ymax };
}

/** `Z<zone>-<quadkey>`, the zone on two digits (`Z40-3012302221`). */
export function ardCellId(cell: ArdCell): string {
  checkZone(cell.zone);
  return `Z${String(cell.zone).padStart(2, '0')}-${cell.quadkey}`;
}

/** Parses a cell id `Z<zone>-<quadkey>`. */
export function parseArdCellId(id: string): ArdCell {
  const m = /^Z(\d{2})-([0-3]+)$/.exec(id);
  if (!m)
    throw new GridError(`Expected an ARD cell id like Z40-3012302221 but received ${JSON.stringify(id)}`);
  const zone = Number(m[1]);
  checkZone(zone);
  parseQuadkey(m[2]!);
  return { zone, quadkey: m[2]! };
}

/** Whether cell `outer` contains cell `inner` (same zone, quadkey prefix); a cell contains itself. */
export function ardContains(outer: ArdCell, inner: ArdCell): boolean {
  return outer.zone === inner.zone && inner.quadkey.startsWith(outer.quadkey);
}

/** A chip name `Z<zone>-<quadkey>_<catalogid>[.ext]`. */
export function ardChipName(cell: ArdCell, catalogId: string, ext?: string): string {
  if (!/^[A-Za-z0-9]+$/.test(catalogId)) {
    throw new GridError(`Expected an alphanumeric catalog id but received ${JSON.stringify(catalogId)}`);
  }
  return `${ardCellId(cell)}_${catalogId}${ext ? `.${ext}` : ''}`;
}

/** Parses a chip name back into its cell and catalog id (any extension and directory are ignored). */
export function parseArdChipName(name: string): { cell: ArdCell; catalogId: string } {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const m = /^(Z\d{2}-[0-3]+)_([A-Za-z0-9]+)(\.[A-Za-z0-9.]+)?$/.exec(base);
  if (!m) {
    throw new GridError(
      `Expected an ARD chip name like Z40-3012302221_10300100ABCDEF00.tif but received ${JSON.stringify(name)}`,
    );
  }
  return { cell: parseArdCellId(m[1]!), catalogId: m[2]! };
}

/**
 * Every cell at `level` that a UTM box (in the zone's north or south CRS) overlaps with positive
 * area, rows outer; an edge shared with a neighbour does not count as overlap.
 */
export function ardCellsCovering(
  zone: number,
  north: boolean,
  box: { readonly xmin: number; readonly ymin: number; readonly xmax: number; readonly ymax: number },
  level: number,
): ArdCell[] {
  checkZone(zone);
  checkLevel(level);
  if (!(box.xmin < box.xmax && box.ymin < box.ymax)) {
    throw new GridError(`Expected xmin < xmax and ymin < ymax but received ${JSON.stringify(box)}`);
  }
  const offset = north ? 0 : SOUTH_OFFSET;
  const size = ARD_SIDE / 2 ** level;
  const n = 2 ** level;
  const clamp = (v: number): number => Math.min(n - 1, Math.max(0, v));
  const col0 = clamp(Math.floor((box.xmin - ARD_X_MIN) / size));
  const col1 = clamp(Math.ceil((box.xmax - ARD_X_MIN) / size) - 1);
  const row0 = clamp(Math.floor((ARD_Y_MAX - (box.ymax - offset)) / size));
  const row1 = clamp(Math.ceil((ARD_Y_MAX - (box.ymin - offset)) / size) - 1);
  const cells: ArdCell[] = [];
  for (let row = row0; row <= row1; row++) {
    for (let col = col0; col <= col1; col++) cells.push({ zone, quadkey: quadkey(col, row, level) });
  }
  return cells;
}
