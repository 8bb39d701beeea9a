/**
 * `chip locate`: from a grid chip's name back to its cell (bounds in the grid CRS and in lon/lat,
 * level, cell size) and, given a folder or prefix of scenes, to the scene(s) it was cut from and
 * the pixel window it covers there.
 */
import { boundsToWindow, type PixelWindow } from '../geo/affine.js';
import { ardCellBounds, ardCellColRow, ardCellId, parseArdChipName } from '../geo/ard-grid.js';
import { CRS84, crsTransform } from '../geo/crs.js';
import { GridError } from '../geo/grid-error.js';
import { tileBounds, tileMercatorBounds, tileQuadkey, type Tile } from '../geo/web-mercator.js';
import { openRaster } from '../raster/reader.js';
import type { Storage } from '../storage/types.js';
import { compareUtf8, normalizeUri } from '../storage/uri.js';
import { catalogIdFromStem, stemOf, type CrsBox, type GridKind } from './grid-cells.js';

export interface ChipSourceMatch {
  readonly uri: string;
  /** Pixels of the scene the cell covers (clipped to the scene). */
  readonly window: PixelWindow;
  /** Whether the scene holds the whole cell. */
  readonly whole: boolean;
}

export interface ChipLocation {
  readonly chip: string;
  readonly grid: GridKind;
  /** `Z21-031202` or `z/x/y`. */
  readonly cell: string;
  readonly quadkey: string;
  readonly level: number;
  /** Cell side in grid CRS units (metres; web-mercator metres for tiles). */
  readonly cellSize: number;
  readonly epsg: number;
  readonly bounds: CrsBox;
  readonly lonLat: {
    readonly west: number;
    readonly south: number;
    readonly east: number;
    readonly north: number;
  };
  readonly catalogId?: string;
  /** With `sources`: the scenes holding (part of) the cell, by name. */
  readonly sources?: readonly ChipSourceMatch[];
}

type ParsedChip =
  | {
      readonly grid: 'ard';
      readonly cell: ReturnType<typeof parseArdChipName>['cell'];
      readonly catalogId: string;
    }
  | { readonly grid: 'webmercator'; readonly tile: Tile };

/** Parses an ARD chip name (`Z21-031202_CATID.png`) or a web-mercator path (`.../9/168/68.png`). */
export function parseGridChipName(name: string): ParsedChip {
  const xyz = /(?:^|\/)(\d+)\/(\d+)\/(\d+)(?:\.[A-Za-z0-9]+)?$/.exec(name);
  if (xyz) {
    const [z, x, y] = [Number(xyz[1]), Number(xyz[2]), Number(xyz[3])];
    const n = 2 ** z;
    if (z < 1 || z > 24 || x >= n || y >= n) {
      throw new GridError(
        `Expected a web-mercator tile z/x/y with z in [1, 24] and x, y in [0, 2^z - 1] but received ${JSON.stringify(name)}`,
      );
    }
    return { grid: 'webmercator', tile: { z, x, y } };
  }
  try {
    const { cell, catalogId } = parseArdChipName(name);
    return { grid: 'ard', cell, catalogId };
  } catch (error) {
    if (!(error instanceof GridError)) throw error;
    throw new GridError(
      `Expected an ARD chip name like Z21-031202_10300100ABCDEF00.png or a web-mercator tile path like 9/168/68.png but received ${JSON.stringify(name)}`,
    );
  }
}

function lonLatBox(epsg: number, b: CrsBox): ChipLocation['lonLat'] {
  const t = crsTransform({ epsg, text: `EPSG:${epsg}` }, CRS84);
  const pts: [number, number][] = [];
  for (let i = 0; i <= 8; i++) {
    const f = i / 8;
    const x = b.xmin + f * (b.xmax - b.xmin);
    const y = b.ymin + f * (b.ymax - b.ymin);
    pts.push(t.forward(x, b.ymin), t.forward(x, b.ymax), t.forward(b.xmin, y), t.forward(b.xmax, y));
  }
  const r = (v: number): number => Math.round(v * 1e9) / 1e9;
  return {
    west: r(Math.min(...pts.map((p) => p[0]))),
    south: r(Math.min(...pts.map((p) => p[1]))),
    east: r(Math.max(...pts.map((p) => p[0]))),
    north: r(Math.max(...pts.map((p) => p[1]))),
  };
}

/** Where a chip's cell is; with `sources`, which scenes under that folder or prefix hold it. */
export async function locateChip(
  storage: Storage,
  chip: string,
  options: { readonly sources?: string; readonly signal?: AbortSignal } = {},
): Promise<ChipLocation> {
  const parsed = parseGridChipName(chip);
  let location: ChipLocation;
  if (parsed.grid === 'ard') {
    const b = ardCellBounds(parsed.cell);
    const bounds = { xmin: b.xmin, ymin: b.ymin, xmax: b.xmax, ymax: b.ymax };
    location = {
      chip,
      grid: 'ard',
      cell: ardCellId(parsed.cell),
      quadkey: parsed.cell.quadkey,
      level: ardCellColRow(parsed.cell).level,
      cellSize: b.xmax - b.xmin,
      epsg: b.epsg,
      bounds,
      lonLat: lonLatBox(b.epsg, bounds),
      catalogId: parsed.catalogId,
    };
  } else {
    const m = tileMercatorBounds(parsed.tile);
    const ll = tileBounds(parsed.tile);
    const r = (v: number): number => Math.round(v * 1e9) / 1e9;
    location = {
      chip,
      grid: 'webmercator',
      cell: `${parsed.tile.z}/${parsed.tile.x}/${parsed.tile.y}`,
      quadkey: tileQuadkey(parsed.tile),
      level: parsed.tile.z,
      cellSize: m.right - m.left,
      epsg: 3857,
      bounds: { xmin: m.left, ymin: m.bottom, xmax: m.right, ymax: m.top },
      lonLat: { west: r(ll.west), south: r(ll.south), east: r(ll.east), north: r(ll.north) },
    };
  }
  if (options.sources === undefined) return location;
  return { ...location, sources: await matchSources(storage, location, options.sources, options.signal) };
}

async function matchSources(
  storage: Storage,
  location: ChipLocation,
  sources: string,
  signal?: AbortSignal,
): Promise<ChipSourceMatch[]> {
  const io = signal ? { signal } : {};
  const candidates: string[] = [];
  for await (const info of storage.list(normalizeUri(sources), io)) {
    if (!/\.(tiff?|jp2|j2k|j2c)$/i.test(info.uri)) continue;
    if (location.catalogId !== undefined && catalogIdFromStem(stemOf(info.uri)) !== location.catalogId)
      continue;
    candidates.push(info.uri);
  }
  candidates.sort(compareUtf8);
  const matches: ChipSourceMatch[] = [];
  const b = location.bounds;
  for (const uri of candidates) {
    const raster = await openRaster(storage, uri, io);
    try {
      const geo = raster.info.geo;
      if (!geo || geo.epsg === null) continue;
      const t = crsTransform(
        { epsg: location.epsg, text: `EPSG:${location.epsg}` },
        { epsg: geo.epsg, text: `EPSG:${geo.epsg}` },
      );
      const pts: [number, number][] = [];
      for (let i = 0; i <= 8; i++) {
        const f = i / 8;
        const x = b.xmin + f * (b.xmax - b.xmin);
        const y = b.ymin + f * (b.ymax - b.ymin);
        pts.push(t.forward(x, b.ymin), t.forward(x, b.ymax), t.forward(b.xmin, y), t.forward(b.xmax, y));
      }
      const box = {
        minX: Math.min(...pts.map((p) => p[0])),
        minY: Math.min(...pts.map((p) => p[1])),
        maxX: Math.max(...pts.map((p) => p[0])),
        maxY: Math.max(...pts.map((p) => p[1])),
      };
      const { width, height } = raster.info;
      const window = boundsToWindow(geo.geotransform, box, width, height);
      if (!window) continue;
      const [sx0, sy0, sx1, sy1] = geo.bounds;
      const whole = box.minX >= sx0 && box.minY >= sy0 && box.maxX <= sx1 && box.maxY <= sy1;
      matches.push({ uri, window, whole });
    } finally {
      await raster.close();
    }
  }
  return matches;
}
