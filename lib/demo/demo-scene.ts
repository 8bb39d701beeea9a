/**
 * A small synthetic WorldView-like scene made by code: 4 bands (blue, green, red, NIR) of
 * 11-bit counts over farmland, a village along roads, an industrial lot with storage tanks,
 * a lake, and a no-data corner; with buildings, vehicles and storage tanks drawn on it and
 * known exactly (their outlines are the labels). Everything follows from one seed.
 *
 * Planning (`planDemoScene`) is cheap and keeps only shapes; pixels are rendered on demand
 * for any band of rows (`renderRows`), so a scene of any size streams through the writer.
 * Pure, no I/O.
 */
import type { GeoTransform } from '../geo/affine.js';
import { lonLatToUtm, utmEpsg, utmName, utmZoneForLonLat } from '../geo/utm.js';
import type { UtmZone } from '../geo/utm.js';
import { createRandom, hash3, unitHash } from './noise.js';
import {
  convexHull,
  fromLocal,
  pixelCoverage,
  pointsBox,
  polygon,
  rectCorners,
  rectsOverlap,
  segmentDistance,
  segmentPolygonDistance,
  shapeBox,
  toLocal,
} from './shapes.js';
import type { Box, OrientedRect, Point, Shape } from './shapes.js';

/** Band order of demo scenes (WorldView-2/3 multispectral core bands). */
export const DEMO_BANDS = ['blue', 'green', 'red', 'nir'] as const;
/** No-data value of demo scenes. */
export const DEMO_NODATA = 0;

/** Classes of labelled objects. */
export type DemoClass = 'building' | 'vehicle' | 'storage_tank';

/** xView type ids the demo uses, with their xView names. */
export const XVIEW_TYPE_NAMES: Readonly<Record<number, string>> = {
  18: 'Small Car',
  19: 'Bus',
  20: 'Pickup Truck',
  23: 'Truck',
  73: 'Building',
  86: 'Storage Tank',
};

/** A place a scene is centred on. */
export interface DemoPlace {
  readonly name: string;
  readonly lon: number;
  readonly lat: number;
}

/** Plausible places for a village with some industry, all in UTM zone 33N (EPSG:32633). */
export const DEMO_PLACES: readonly DemoPlace[] = [
  { name: 'Tulln an der Donau, Austria (outskirts)', lon: 16.0352, lat: 48.3186 },
  { name: 'Pardubice, Czechia (outskirts)', lon: 15.7415, lat: 50.0213 },
  { name: 'Gyor, Hungary (outskirts)', lon: 17.6762, lat: 47.6624 },
  { name: 'Cottbus, Germany (outskirts)', lon: 14.3723, lat: 51.7352 },
  { name: 'Foggia, Italy (outskirts)', lon: 15.5753, lat: 41.4781 },
  { name: 'Leszno, Poland (outskirts)', lon: 16.5702, lat: 51.8324 },
  { name: 'Graz, Austria (outskirts)', lon: 15.4705, lat: 47.0312 },
  { name: 'Olomouc, Czechia (outskirts)', lon: 17.2811, lat: 49.5695 },
];

/** What to make. */
export interface DemoSceneOptions {
  /** Everything in the scene follows from this integer. */
  readonly seed: number;
  /**
   * Width in pixels.
   * @default 3000
   */
  readonly width?: number;
  /**
   * Height in pixels.
   * @default the width
   */
  readonly height?: number;
  /**
   * Ground sample distance, metres per pixel.
   * @default 0.5
   */
  readonly resolution?: number;
  /** Centre of the scene. @default one of DEMO_PLACES, chosen by the seed */
  readonly place?: DemoPlace;
}

/** One labelled object. */
export interface DemoObject {
  /** 1-based, in the order objects were placed. */
  readonly id: number;
  readonly class: DemoClass;
  /** xView type id (73 Building, 18 Small Car, 19 Bus, 20 Pickup Truck, 23 Truck, 86 Storage Tank). */
  readonly typeId: number;
  /** Outline in pixel coordinates (x right, y down; (0, 0) is the image's top-left corner), open ring. */
  readonly outline: readonly Point[];
  /** Whole-pixel box around the outline: [xmin, ymin, xmax, ymax], max edges exclusive. */
  readonly box: Box;
}

type Color = readonly [number, number, number, number];

// Band values (blue, green, red, NIR) in 11-bit counts, roughly like WorldView-3 top-of-atmosphere DNs.
const C = {
  cropGreen: [230, 390, 250, 1750],
  cropRipe: [430, 580, 660, 1150],
  soil: [420, 500, 590, 740],
  meadow: [270, 420, 340, 1450],
  forest: [170, 270, 190, 1150],
  lawn: [250, 400, 320, 1350],
  hedge: [190, 300, 210, 1250],
  water: [330, 300, 170, 80],
  shallow: [390, 430, 320, 330],
  asphalt: [430, 440, 450, 470],
  concrete: [700, 740, 760, 800],
  parking: [380, 390, 400, 420],
  roofRed: [400, 460, 990, 760],
  roofGrey: [1150, 1200, 1230, 1260],
  roofDark: [240, 250, 260, 290],
  roofMetal: [1500, 1560, 1520, 1460],
  tank: [1850, 1900, 1900, 1800],
  tree: [150, 250, 160, 1250],
} satisfies Record<string, Color>;

const VEHICLE_COLORS: readonly Color[] = [
  [1650, 1700, 1720, 1620], // white
  [1650, 1700, 1720, 1620],
  [170, 170, 175, 190], // black
  [1050, 1080, 1100, 1060], // silver
  [1050, 1080, 1100, 1060],
  [620, 630, 640, 650], // grey
  [330, 300, 1150, 700], // red
  [850, 480, 300, 420], // blue
  [300, 520, 330, 480], // green
];
const BUS_COLORS: readonly Color[] = [
  [1650, 1700, 1720, 1620],
  [450, 1250, 1450, 1400], // yellow
  [330, 300, 1150, 700],
];

/** Land covers of field parcels. */
const COVERS: readonly Color[] = [C.cropGreen, C.cropRipe, C.soil, C.meadow, C.forest];
const COVER_WEIGHTS = [0.3, 0.2, 0.2, 0.2, 0.1];
const STRIPED = [true, true, true, false, false];
const FOREST = 4;

/** Draw order: ground, roads, trees, shadows, buildings and tanks, vehicles. */
const LAYER = {
  ground: 0,
  road: 1,
  treeShadow: 2,
  tree: 3,
  shadow: 4,
  structure: 5,
  vehicleShadow: 6,
  vehicle: 7,
};

interface Drawable {
  readonly layer: number;
  readonly shape: Shape;
  readonly box: Box;
  /** Paint colour; unused by shadows. */
  readonly color: Color;
  /** Shadows multiply what is below by this factor where they cover. */
  readonly shade?: number;
  /** Brightness factor at a pixel centre (roof slopes, windscreens, crowns). */
  readonly texture?: (x: number, y: number) => number;
  /** Part of a labelled object or its shadow: left out by `renderRows(..., { objects: false })`. */
  readonly object: boolean;
}

interface Road {
  readonly points: readonly Point[];
  readonly halfWidth: number;
  /** Cumulative length at each point. */
  readonly cumulative: readonly number[];
}

interface Segment {
  readonly ax: number;
  readonly ay: number;
  readonly bx: number;
  readonly by: number;
  readonly r: number;
  readonly box: Box;
}

interface Occupied {
  readonly rect: OrientedRect;
  readonly box: Box;
}

function makeRoad(points: readonly Point[], halfWidth: number): Road {
  const cumulative = [0];
  for (let i = 1; i < points.length; i++) {
    const [ax, ay] = points[i - 1] as Point;
    const [bx, by] = points[i] as Point;
    cumulative.push((cumulative[i - 1] as number) + Math.hypot(bx - ax, by - ay));
  }
  return { points, halfWidth, cumulative };
}

function roadLength(road: Road): number {
  return road.cumulative[road.cumulative.length - 1] as number;
}

/** Point and direction at distance `s` along a road. */
function roadAt(road: Road, s: number): { x: number; y: number; angle: number } {
  let i = 1;
  while (i < road.points.length - 1 && (road.cumulative[i] as number) < s) i++;
  const [ax, ay] = road.points[i - 1] as Point;
  const [bx, by] = road.points[i] as Point;
  const s0 = road.cumulative[i - 1] as number;
  const len = (road.cumulative[i] as number) - s0;
  const t = len === 0 ? 0 : Math.max(0, Math.min(1, (s - s0) / len));
  return { x: ax + (bx - ax) * t, y: ay + (by - ay) * t, angle: Math.atan2(by - ay, bx - ax) };
}

const SIN_TABLE_SIZE = 1024;
const SIN_TABLE = Float32Array.from({ length: SIN_TABLE_SIZE }, (_, i) =>
  Math.sin((i / SIN_TABLE_SIZE) * 2 * Math.PI),
);

/** sin(a) from a table (1/1024 of a turn): plenty for field furrows, and 5x cheaper than Math.sin. */
function fastSin(a: number): number {
  const i = Math.floor((a / (2 * Math.PI)) * SIN_TABLE_SIZE) & (SIN_TABLE_SIZE - 1);
  return SIN_TABLE[i] as number;
}

function boxesOverlap(a: Box, b: Box): boolean {
  return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
}

function rectBox(r: OrientedRect): Box {
  return pointsBox(rectCorners(r));
}

function inflate(r: OrientedRect, by: number): OrientedRect {
  return { ...r, halfLength: r.halfLength + by, halfWidth: r.halfWidth + by };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

function between(random: () => number, min: number, max: number): number {
  return min + (max - min) * random();
}

/** Values on a lattice of `cell` pixels, interpolated with smoothstep: a smooth field over the image. */
class LatticeField {
  protected readonly values: Float32Array;
  protected readonly cols: number;
  protected readonly rows: number;

  constructor(
    width: number,
    height: number,
    protected readonly cell: number,
    init: (i: number, j: number) => number,
  ) {
    this.cols = Math.ceil(width / cell) + 2;
    this.rows = Math.ceil(height / cell) + 2;
    this.values = new Float32Array(this.cols * this.rows);
    for (let j = 0; j < this.rows; j++) {
      for (let i = 0; i < this.cols; i++) this.values[j * this.cols + i] = init(i, j);
    }
  }

  at(x: number, y: number): number {
    const gx = Math.max(0, x / this.cell);
    const gy = Math.max(0, y / this.cell);
    const ix = Math.min(this.cols - 2, Math.floor(gx));
    const iy = Math.min(this.rows - 2, Math.floor(gy));
    const fx = Math.min(1, gx - ix);
    const fy = Math.min(1, gy - iy);
    const sx = fx * fx * (3 - 2 * fx);
    const sy = fy * fy * (3 - 2 * fy);
    const k = iy * this.cols + ix;
    const v = this.values;
    const top = (v[k] as number) + ((v[k + 1] as number) - (v[k] as number)) * sx;
    const bottom =
      (v[k + this.cols] as number) + ((v[k + this.cols + 1] as number) - (v[k + this.cols] as number)) * sx;
    return top + (bottom - top) * sy;
  }

  private rowY = Number.NaN;
  private rowValues: Float32Array | undefined;

  /** Interpolates the lattice across rows for image row `y`, so that {@link onRow} is cheap for every x of it. */
  prepareRow(y: number): void {
    if (y === this.rowY) return;
    this.rowY = y;
    const gy = Math.max(0, y / this.cell);
    const iy = Math.min(this.rows - 2, Math.floor(gy));
    const fy = Math.min(1, gy - iy);
    const sy = fy * fy * (3 - 2 * fy);
    const v = this.values;
    const row = (this.rowValues ??= new Float32Array(this.cols));
    for (let i = 0, k = iy * this.cols; i < this.cols; i++, k++) {
      const top = v[k] as number;
      row[i] = top + ((v[k + this.cols] as number) - top) * sy;
    }
  }

  /** The same as `at(x, y)` for the row last given to {@link prepareRow}, for x >= 0. */
  onRow(x: number): number {
    const row = this.rowValues as Float32Array;
    const gx = x / this.cell;
    const ix = Math.min(this.cols - 2, Math.floor(gx));
    const fx = Math.min(1, gx - ix);
    const sx = fx * fx * (3 - 2 * fx);
    const a = row[ix] as number;
    return a + ((row[ix + 1] as number) - a) * sx;
  }
}

/** Random lattice values: smooth value noise in [0, 1). */
class NoiseGrid extends LatticeField {
  constructor(width: number, height: number, cell: number, seed: number) {
    super(width, height, cell, (i, j) => unitHash(i, j, seed));
  }
}

/** Where gardens are: 1 on lattice points near a house, 0 elsewhere, interpolated. */
class GardenField extends LatticeField {
  constructor(
    width: number,
    height: number,
    cell: number,
    houses: readonly { x: number; y: number; r: number }[],
  ) {
    super(width, height, cell, () => 0);
    for (const h of houses) {
      const i0 = Math.max(0, Math.floor((h.x - h.r) / cell));
      const i1 = Math.min(this.cols - 1, Math.ceil((h.x + h.r) / cell));
      const j0 = Math.max(0, Math.floor((h.y - h.r) / cell));
      const j1 = Math.min(this.rows - 1, Math.ceil((h.y + h.r) / cell));
      for (let j = j0; j <= j1; j++) {
        for (let i = i0; i <= i1; i++) {
          if (Math.hypot(i * cell - h.x, j * cell - h.y) <= h.r) this.values[j * this.cols + i] = 1;
        }
      }
    }
  }
}

/** Field parcels: a jittered-grid Voronoi diagram, each cell with a land cover and a look of its own. */
class Parcels {
  readonly cols: number;
  readonly seedX: Float64Array;
  readonly seedY: Float64Array;
  readonly cover: Uint8Array;
  readonly tint: Float32Array;
  readonly vigour: Float32Array;
  readonly stripeX: Float32Array;
  readonly stripeY: Float32Array;
  /** Results of the last `nearest()` call. */
  id = 0;
  d1 = 0;
  d2 = 0;

  constructor(
    width: number,
    height: number,
    readonly cell: number,
    random: () => number,
  ) {
    // One extra ring of cells on every side so that edge pixels have all their neighbours.
    this.cols = Math.ceil(width / cell) + 3;
    const rows = Math.ceil(height / cell) + 3;
    const n = this.cols * rows;
    this.seedX = new Float64Array(n);
    this.seedY = new Float64Array(n);
    this.cover = new Uint8Array(n);
    this.tint = new Float32Array(n);
    this.vigour = new Float32Array(n);
    this.stripeX = new Float32Array(n);
    this.stripeY = new Float32Array(n);
    for (let j = 0; j < rows; j++) {
      for (let i = 0; i < this.cols; i++) {
        const k = j * this.cols + i;
        this.seedX[k] = (i - 1 + 0.15 + 0.7 * random()) * cell;
        this.seedY[k] = (j - 1 + 0.15 + 0.7 * random()) * cell;
        let u = random();
        let cover = 0;
        while (cover < COVER_WEIGHTS.length - 1 && u >= (COVER_WEIGHTS[cover] as number)) {
          u -= COVER_WEIGHTS[cover] as number;
          cover++;
        }
        this.cover[k] = cover;
        this.tint[k] = between(random, 0.88, 1.12);
        this.vigour[k] = between(random, 0.85, 1.15);
        const angle = random() * Math.PI;
        const period = between(random, 5, 10);
        this.stripeX[k] = (Math.cos(angle) * 2 * Math.PI) / period;
        this.stripeY[k] = (Math.sin(angle) * 2 * Math.PI) / period;
      }
    }
  }

  nearest(x: number, y: number): void {
    const ci = Math.floor(x / this.cell) + 1;
    const cj = Math.floor(y / this.cell) + 1;
    let d1 = Infinity;
    let d2 = Infinity;
    let id = 0;
    for (let j = cj - 1; j <= cj + 1; j++) {
      for (let i = ci - 1; i <= ci + 1; i++) {
        const k = j * this.cols + i;
        const dx = (this.seedX[k] as number) - x;
        const dy = (this.seedY[k] as number) - y;
        const d = dx * dx + dy * dy;
        if (d < d1) {
          d2 = d1;
          d1 = d;
          id = k;
        } else if (d < d2) d2 = d;
      }
    }
    this.id = id;
    this.d1 = Math.sqrt(d1);
    this.d2 = Math.sqrt(d2);
  }
}

interface Lake {
  readonly x: number;
  readonly y: number;
  readonly r: number;
  readonly box: Box;
  readonly noise: NoiseGrid;
}

/** What a planned scene is: size, georeferencing and labelled objects. */
export interface DemoSceneInfo {
  readonly width: number;
  readonly height: number;
  /** Metres per pixel. */
  readonly resolution: number;
  readonly zone: UtmZone;
  readonly epsg: number;
  /** e.g. "WGS 84 / UTM zone 33N". */
  readonly crsName: string;
  readonly geotransform: GeoTransform;
  readonly place: DemoPlace;
  readonly seed: number;
  readonly objects: readonly DemoObject[];
  /** Pixels with col + row < this are no-data (a cut top-left corner, as at a scene's edge). */
  readonly nodataCorner: number;
}

interface NoiseFields {
  /** Slow brightness changes (soil moisture, haze), ~150 m. */
  readonly broad: NoiseGrid;
  /** The ragged edge of the village, ~40 m. */
  readonly mid: NoiseGrid;
  /** Patches in the gardens (beds, paths, shrubs), ~10 m. */
  readonly patch: NoiseGrid;
  /** Texture of lawns and tree crowns, ~2.5 m. */
  readonly fine: NoiseGrid;
}

/** A planned scene: georeferencing, labelled objects, and everything needed to render its pixels. */
export class DemoScene implements DemoSceneInfo {
  readonly width: number;
  readonly height: number;
  readonly resolution: number;
  readonly zone: UtmZone;
  readonly epsg: number;
  readonly crsName: string;
  readonly geotransform: GeoTransform;
  readonly place: DemoPlace;
  readonly seed: number;
  readonly objects: readonly DemoObject[];
  readonly nodataCorner: number;

  /** @internal use {@link planDemoScene} */
  constructor(
    init: DemoSceneInfo,
    private readonly drawables: readonly Drawable[],
    private readonly parcels: Parcels,
    private readonly lake: Lake | undefined,
    private readonly gardens: GardenField,
    private readonly noise: NoiseFields,
  ) {
    this.width = init.width;
    this.height = init.height;
    this.resolution = init.resolution;
    this.zone = init.zone;
    this.epsg = init.epsg;
    this.crsName = init.crsName;
    this.geotransform = init.geotransform;
    this.place = init.place;
    this.seed = init.seed;
    this.objects = init.objects;
    this.nodataCorner = init.nodataCorner;
  }

  /** Whether pixel (col, row) is no-data. */
  isNodata(col: number, row: number): boolean {
    return col + row < this.nodataCorner;
  }

  /** Whether the pixel-coordinate point (x, y) is in the lake. */
  isWater(x: number, y: number): boolean {
    return lakeValue(this.lake, x, y) < 1;
  }

  /**
   * Renders image rows [y0, y0 + rows) into `out`, pixel-interleaved (B, G, R, NIR per pixel),
   * `rows * width * 4` values. With `objects: false`, the same scene without the labelled
   * objects and their shadows (for tests that compare objects with their background).
   */
  renderRows(y0: number, rows: number, out: Uint16Array, options: { readonly objects?: boolean } = {}): void {
    const { width } = this;
    const n = rows * width * 4;
    if (out.length < n)
      throw new RangeError(`renderRows needs ${n} values in 'out' but it holds ${out.length}`);
    const buf = new Float32Array(n);
    const fields = [this.gardens, this.noise.broad, this.noise.mid, this.noise.patch, this.noise.fine];
    if (this.lake) fields.push(this.lake.noise);
    for (let r = 0; r < rows; r++) {
      const y = y0 + r + 0.5;
      for (const field of fields) field.prepareRow(y);
      for (let x = 0; x < width; x++) this.background(x + 0.5, y, buf, (r * width + x) * 4);
    }
    const withObjects = options.objects ?? true;
    const y1 = y0 + rows;
    for (const d of this.drawables) {
      if (!withObjects && d.object) continue;
      const [bx0, by0, bx1, by1] = d.box;
      if (by1 <= y0 || by0 >= y1 || bx1 <= 0 || bx0 >= width) continue;
      const rowFrom = Math.max(y0, Math.floor(by0));
      const rowTo = Math.min(y1, Math.ceil(by1));
      const colFrom = Math.max(0, Math.floor(bx0));
      const colTo = Math.min(width, Math.ceil(bx1));
      for (let row = rowFrom; row < rowTo; row++) {
        for (let col = colFrom; col < colTo; col++) {
          const c = pixelCoverage(d.shape, col, row);
          if (c <= 0) continue;
          const k = ((row - y0) * width + col) * 4;
          if (d.shade !== undefined) {
            const f = 1 - c * (1 - d.shade);
            for (let b = 0; b < 4; b++) buf[k + b] = (buf[k + b] as number) * f;
          } else {
            const t = d.texture ? d.texture(col + 0.5, row + 0.5) : 1;
            for (let b = 0; b < 4; b++)
              buf[k + b] = (buf[k + b] as number) * (1 - c) + (d.color[b] as number) * t * c;
          }
        }
      }
    }
    // Sensor noise (position-hashed, so identical whatever the row bands), quantisation, no-data.
    for (let r = 0; r < rows; r++) {
      const row = y0 + r;
      for (let col = 0; col < width; col++) {
        const k = (r * width + col) * 4;
        if (this.isNodata(col, row)) {
          out.fill(DEMO_NODATA, k, k + 4);
          continue;
        }
        const h = hash3(col, row, this.seed);
        for (let b = 0; b < 4; b++) {
          const u = ((h >>> (8 * b)) & 255) / 255 - 0.5;
          const v = ((buf[k + b] as number) * (1 + 0.03 * u) + 8 * u + 0.5) | 0;
          out[k + b] = v < 50 ? 50 : v > 2047 ? 2047 : v;
        }
      }
    }
  }

  private background(x: number, y: number, out: Float32Array, k: number): void {
    const p = this.parcels;
    p.nearest(x, y);
    const id = p.id;
    let cover = p.cover[id] as number;
    let color: Color = COVERS[cover] as Color;
    let f = p.tint[id] as number;
    let nir = p.vigour[id] as number;
    const noise = this.noise;
    if (this.gardens.onRow(x) + (noise.mid.onRow(x) - 0.5) * 0.6 > 0.55) {
      // Gardens around the houses: lawns, beds and paths.
      cover = -1;
      color = C.lawn;
      const patch = noise.patch.onRow(x);
      f = (0.85 + 0.3 * patch) * (0.9 + 0.2 * noise.fine.onRow(x));
      nir = 0.8 + 0.35 * patch;
    } else if (cover === FOREST) {
      f *= 0.65 + 0.7 * noise.fine.onRow(x);
    } else if (STRIPED[cover]) {
      f *= 1 + 0.05 * fastSin(x * (p.stripeX[id] as number) + y * (p.stripeY[id] as number));
    }
    f *= 0.93 + 0.14 * noise.broad.onRow(x);
    let b0 = (color[0] as number) * f;
    let b1 = (color[1] as number) * f;
    let b2 = (color[2] as number) * f;
    let b3 = (color[3] as number) * f * nir;
    // Hedges and tracks along parcel boundaries.
    const edge = p.d2 - p.d1;
    if (cover >= 0 && edge < 6) {
      const w = edge < 3 ? 1 : (6 - edge) / 3;
      b0 += (C.hedge[0] * f - b0) * w;
      b1 += (C.hedge[1] * f - b1) * w;
      b2 += (C.hedge[2] * f - b2) * w;
      b3 += (C.hedge[3] * f - b3) * w;
    }
    const lake = this.lake;
    if (lake && x >= lake.box[0] && x <= lake.box[2] && y >= lake.box[1] && y <= lake.box[3]) {
      const dx = x - lake.x;
      const dy = y - lake.y;
      const v = Math.sqrt(dx * dx + dy * dy) / lake.r + (lake.noise.onRow(x) - 0.5) * 0.6;
      if (v < 1.05) {
        // Open water, a shallow margin, then a muddy shore.
        const target = v < 0.85 ? C.water : v < 1 ? C.shallow : C.soil;
        const w = v < 0.85 ? 1 : v < 1 ? 1 : (1.05 - v) / 0.05;
        b0 += (target[0] - b0) * w;
        b1 += (target[1] - b1) * w;
        b2 += (target[2] - b2) * w;
        b3 += (target[3] - b3) * w;
      }
    }
    out[k] = b0;
    out[k + 1] = b1;
    out[k + 2] = b2;
    out[k + 3] = b3;
  }
}

function lakeValue(lake: Lake | undefined, x: number, y: number): number {
  if (!lake) return Infinity;
  const dx = x - lake.x;
  const dy = y - lake.y;
  return Math.sqrt(dx * dx + dy * dy) / lake.r + (lake.noise.at(x, y) - 0.5) * 0.6;
}

interface FitOptions {
  /** Pixels kept clear of road edges; undefined: roads are not checked. */
  readonly roadClearance?: number;
  /** Pixels kept clear of the image edge, the no-data corner and other objects. */
  readonly margin: number;
}

/** Places everything, in order, with one PRNG. */
class Planner {
  readonly random: () => number;
  readonly width: number;
  readonly height: number;
  readonly res: number;
  readonly minSide: number;
  readonly nodataCorner: number;
  readonly roads: Road[] = [];
  readonly segments: Segment[] = [];
  readonly occupied: Occupied[] = [];
  readonly drawables: Drawable[] = [];
  readonly objects: DemoObject[] = [];
  settlement = { x: 0, y: 0, r: 1 };
  lake: Lake | undefined;
  gardens: GardenField | undefined;
  readonly houses: { x: number; y: number; r: number }[] = [];

  constructor(
    readonly seed: number,
    width: number,
    height: number,
    res: number,
  ) {
    this.random = createRandom(seed);
    this.width = width;
    this.height = height;
    this.res = res;
    this.minSide = Math.min(width, height);
    this.nodataCorner = Math.round(0.12 * this.minSide);
  }

  /** Metres to pixels. */
  m(metres: number): number {
    return metres / this.res;
  }

  density(x: number, y: number): number {
    const dx = (x - this.settlement.x) / this.settlement.r;
    const dy = (y - this.settlement.y) / this.settlement.r;
    return Math.exp(-(dx * dx + dy * dy));
  }

  addRoad(points: Point[], halfWidth: number): Road {
    const road = makeRoad(points, halfWidth);
    this.roads.push(road);
    for (let i = 1; i < points.length; i++) {
      const [ax, ay] = points[i - 1] as Point;
      const [bx, by] = points[i] as Point;
      const shape: Shape = { kind: 'capsule', ax, ay, bx, by, r: halfWidth };
      const box = shapeBox(shape);
      this.segments.push({ ax, ay, bx, by, r: halfWidth, box });
      this.drawables.push({ layer: LAYER.road, shape, box, color: C.asphalt, object: false });
    }
    return road;
  }

  roadDistance(x: number, y: number): number {
    let best = Infinity;
    for (const s of this.segments) best = Math.min(best, segmentDistance(x, y, s.ax, s.ay, s.bx, s.by) - s.r);
    return best;
  }

  planRoads(): void {
    const { width: w, height: h, random } = this;
    const span = w + h;
    // A main road at a slant through the middle, gently winding.
    const angle = (random() < 0.5 ? -1 : 1) * between(random, 0.35, 0.6);
    const px = w * between(random, 0.4, 0.6);
    const py = h * between(random, 0.4, 0.6);
    const amplitude = this.m(12);
    const wavelength = this.m(between(random, 400, 700));
    const phase = random() * 2 * Math.PI;
    const main: Point[] = [];
    const step = this.m(20);
    for (let t = -span; t <= span; t += step) {
      const off = amplitude * Math.sin((2 * Math.PI * t) / wavelength + phase);
      const x = px + t * Math.cos(angle) - off * Math.sin(angle);
      const y = py + t * Math.sin(angle) + off * Math.cos(angle);
      if (x < -step * 2 || x > w + step * 2 || y < -step * 2 || y > h + step * 2) continue;
      main.push([x, y]);
    }
    this.addRoad(main, this.m(4.5));
    // Straight side roads along the image axes: the buildings along them are axis-aligned.
    const horizontal = random() < 0.5;
    const pad = this.m(60);
    const both = this.minSide * this.res >= 700;
    const roadsToAdd = both ? [horizontal, !horizontal] : [horizontal];
    for (const isHorizontal of roadsToAdd) {
      const along = isHorizontal ? w : h;
      const at = (isHorizontal ? h : w) * between(random, 0.3, 0.7);
      const points: Point[] = [];
      for (let t = -pad; t <= along + pad; t += step) points.push(isHorizontal ? [t, at] : [at, t]);
      this.addRoad(points, this.m(3.5));
    }
    // The village centres where the main road meets the first side road.
    const side = this.roads[1] as Road;
    let best: { x: number; y: number; d: number } = { x: w / 2, y: h / 2, d: Infinity };
    for (const [x, y] of main) {
      const d = Math.min(...side.points.map(([sx, sy]) => Math.hypot(sx - x, sy - y)));
      if (d < best.d && x > 0 && x < w && y > 0 && y < h) best = { x, y, d };
    }
    this.settlement = { x: best.x, y: best.y, r: Math.max(0.3 * this.minSide, this.m(120)) };
  }

  planLake(): void {
    const { random, width: w, height: h } = this;
    let best: { x: number; y: number; score: number; clear: number } | undefined;
    for (let i = 0; i < 60; i++) {
      const x = w * between(random, 0.1, 0.9);
      const y = h * between(random, 0.1, 0.9);
      if (x + y < this.nodataCorner * 2) continue;
      const clear = this.roadDistance(x, y);
      const score = clear + 0.5 * Math.hypot(x - this.settlement.x, y - this.settlement.y);
      if (!best || score > best.score) best = { x, y, score, clear };
    }
    if (!best) return;
    const r = Math.min(0.16 * this.minSide, (best.clear - this.m(20)) / 1.35);
    if (r < this.m(25)) return;
    const reach = r * 1.35;
    this.lake = {
      x: best.x,
      y: best.y,
      r,
      box: [best.x - reach, best.y - reach, best.x + reach, best.y + reach],
      noise: new NoiseGrid(w, h, r * 0.7, this.seed + 77),
    };
  }

  fits(rect: OrientedRect, options: FitOptions): boolean {
    const corners = rectCorners(rect);
    const { margin } = options;
    for (const [x, y] of corners) {
      if (x < margin || y < margin || x > this.width - margin || y > this.height - margin) return false;
      if (x + y < this.nodataCorner + 2 * margin) return false;
    }
    const probes: Point[] = [...corners, [rect.cx, rect.cy]];
    for (let i = 0; i < 4; i++) {
      const [ax, ay] = corners[i] as Point;
      const [bx, by] = corners[(i + 1) % 4] as Point;
      probes.push([(ax + bx) / 2, (ay + by) / 2]);
    }
    if (probes.some(([x, y]) => lakeValue(this.lake, x, y) < 1.1)) return false;
    const box = rectBox(rect);
    if (options.roadClearance !== undefined) {
      const clear = options.roadClearance;
      for (const s of this.segments) {
        const near: Box = [s.box[0] - clear, s.box[1] - clear, s.box[2] + clear, s.box[3] + clear];
        if (!boxesOverlap(near, box)) continue;
        if (segmentPolygonDistance(s.ax, s.ay, s.bx, s.by, corners) < s.r + clear) return false;
      }
    }
    const grown = inflate(rect, margin);
    const grownBox = rectBox(grown);
    for (const o of this.occupied) {
      if (boxesOverlap(o.box, grownBox) && rectsOverlap(o.rect, grown)) return false;
    }
    return true;
  }

  occupy(rect: OrientedRect): void {
    this.occupied.push({ rect, box: rectBox(rect) });
  }

  addObject(cls: DemoClass, typeId: number, outline: Point[]): void {
    const [minX, minY, maxX, maxY] = pointsBox(outline);
    const box: Box = [
      Math.max(0, Math.floor(minX)),
      Math.max(0, Math.floor(minY)),
      Math.min(this.width, Math.ceil(maxX)),
      Math.min(this.height, Math.ceil(maxY)),
    ];
    this.objects.push({ id: this.objects.length + 1, class: cls, typeId, outline, box });
  }

  /** Shadow direction: the sun is in the south-east at mid-morning, so shadows fall north-west. */
  shadowOffset(heightMetres: number): Point {
    const len = this.m(heightMetres * 0.8);
    return [-0.62 * len, -0.78 * len];
  }

  addShadow(points: readonly Point[], height: number, layer: number): void {
    const [ox, oy] = this.shadowOffset(height);
    const hull = convexHull([...points, ...points.map(([x, y]): Point => [x + ox, y + oy])]);
    const shape: Shape = polygon(hull);
    this.drawables.push({ layer, shape, box: shapeBox(shape), color: C.roofDark, shade: 0.5, object: true });
  }

  addBuilding(rect: OrientedRect, lShape: boolean, roof: Color, height: number, gable: boolean): void {
    const L = rect.halfLength;
    const W = rect.halfWidth;
    const notchL = lShape ? L * between(this.random, 0.7, 1.1) : 0;
    const notchW = lShape ? W * between(this.random, 0.6, 1.0) : 0;
    const local: Point[] = lShape
      ? [
          [-L, -W],
          [L, -W],
          [L, W - notchW],
          [L - notchL, W - notchW],
          [L - notchL, W],
          [-L, W],
        ]
      : [
          [-L, -W],
          [L, -W],
          [L, W],
          [-L, W],
        ];
    const outline = local.map(([u, v]) => fromLocal(rect, u, v));
    this.addShadow(rectCorners(rect), height, LAYER.shadow);
    const shape = polygon(outline);
    const seed = this.seed;
    const texture = gable
      ? (x: number, y: number): number => (toLocal(rect, x, y)[1] < 0 ? 1.07 : 0.86)
      : (x: number, y: number): number =>
          0.96 + 0.08 * unitHash(Math.floor(x / 3), Math.floor(y / 3), seed + 5);
    this.drawables.push({
      layer: LAYER.structure,
      shape,
      box: shapeBox(shape),
      color: roof,
      texture,
      object: true,
    });
    this.addObject('building', 73, outline);
  }

  addVehicle(cx: number, cy: number, angle: number, typeId: number): boolean {
    const random = this.random;
    const dims: Record<number, [number, number, number, number]> = {
      18: [4.2, 4.8, 1.75, 1.95],
      20: [5.2, 5.6, 1.9, 2.0],
      23: [7.5, 10, 2.4, 2.55],
      19: [11.5, 12.5, 2.5, 2.55],
    };
    const [l0, l1, w0, w1] = dims[typeId] as [number, number, number, number];
    const rect: OrientedRect = {
      cx,
      cy,
      angle,
      halfLength: this.m(between(random, l0, l1)) / 2,
      halfWidth: this.m(between(random, w0, w1)) / 2,
    };
    if (!this.fits(rect, { margin: this.m(0.4) })) return false;
    this.occupy(rect);
    const corners = rectCorners(rect);
    const color = typeId === 19 ? pick(random, BUS_COLORS) : pick(random, VEHICLE_COLORS);
    const height = typeId === 19 || typeId === 23 ? 3.2 : 1.5;
    const [ox, oy] = this.shadowOffset(height);
    const shadow = polygon(corners.map(([x, y]): Point => [x + ox * 0.7, y + oy * 0.7]));
    this.drawables.push({
      layer: LAYER.vehicleShadow,
      shape: shadow,
      box: shapeBox(shadow),
      color,
      shade: 0.55,
      object: true,
    });
    const L = rect.halfLength;
    // Windscreen and rear window of cars, the cab's windscreen of trucks and buses.
    const texture =
      typeId === 18 || typeId === 20
        ? (x: number, y: number): number => {
            const u = toLocal(rect, x, y)[0] / L;
            return u > 0.25 && u < 0.6 ? 0.35 : u < -0.55 && u > -0.8 ? 0.45 : 1;
          }
        : (x: number, y: number): number => (toLocal(rect, x, y)[0] / L > 0.82 ? 0.4 : 1);
    const shape = polygon(corners);
    this.drawables.push({ layer: LAYER.vehicle, shape, box: shapeBox(shape), color, texture, object: true });
    this.addObject('vehicle', typeId, corners);
    return true;
  }

  addTank(cx: number, cy: number, r: number, height: number): void {
    this.occupy({ cx, cy, halfLength: r, halfWidth: r, angle: 0 });
    const [ox, oy] = this.shadowOffset(height);
    const shadow: Shape = { kind: 'capsule', ax: cx, ay: cy, bx: cx + ox, by: cy + oy, r };
    this.drawables.push({
      layer: LAYER.shadow,
      shape: shadow,
      box: shapeBox(shadow),
      color: C.tank,
      shade: 0.5,
      object: true,
    });
    const shape: Shape = { kind: 'disc', cx, cy, r };
    // A floating roof sits a little lower and darker inside the rim; light comes from the south-east.
    const texture = (x: number, y: number): number => {
      const d = Math.hypot(x - cx, y - cy) / r;
      const lit = 1 + 0.05 * (((x - cx) / r) * 0.62 + ((y - cy) / r) * 0.78);
      return (d < 0.82 ? 0.9 : 1.02) * lit;
    };
    this.drawables.push({
      layer: LAYER.structure,
      shape,
      box: shapeBox(shape),
      color: C.tank,
      texture,
      object: true,
    });
    const outline: Point[] = [];
    for (let i = 0; i < 32; i++) {
      const a = (i / 32) * 2 * Math.PI;
      outline.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
    }
    this.addObject('storage_tank', 86, outline);
  }

  /** An industrial lot beside the main road: a concrete pad with tanks, a warehouse and a car park. */
  planIndustrialLot(): void {
    const { random } = this;
    const road = this.roads[0] as Road;
    // Smaller lots are tried when a full-size one does not fit (small scenes, a lake in the way).
    for (const scale of [1, 0.8, 0.65, 0.5]) {
      const L = Math.min(this.m(140), 0.45 * this.minSide) * scale;
      const D = Math.min(this.m(90), 0.3 * this.minSide) * scale;
      for (let attempt = 0; attempt < 30; attempt++) {
        const at = roadAt(road, roadLength(road) * between(random, 0.1, 0.9));
        const side = random() < 0.5 ? -1 : 1;
        const offset = road.halfWidth + this.m(8) + D / 2;
        const cx = at.x - Math.sin(at.angle) * offset * side;
        const cy = at.y + Math.cos(at.angle) * offset * side;
        if (this.density(cx, cy) > 0.85 && attempt < 20) continue;
        const lot: OrientedRect = { cx, cy, halfLength: L / 2, halfWidth: D / 2, angle: at.angle };
        if (!this.fits(lot, { roadClearance: this.m(4), margin: this.m(3) })) continue;
        // Occupied after its contents are placed, which are checked against each other only.
        this.buildLot(lot, side);
        this.occupy(inflate(lot, this.m(2)));
        return;
      }
    }
  }

  private buildLot(lot: OrientedRect, side: number): void {
    const { random } = this;
    const L = lot.halfLength * 2;
    const D = lot.halfWidth * 2;
    // Local frame: u along the road, w away from it.
    const at = (u: number, w: number): Point => fromLocal(lot, u, w * side);
    const pad = polygon(rectCorners(lot));
    this.drawables.push({
      layer: LAYER.ground,
      shape: pad,
      box: shapeBox(pad),
      color: C.concrete,
      object: false,
    });

    // Storage tanks in a grid on one half.
    const diameter = Math.min(
      this.m(between(random, 14, 22)),
      (D - this.m(10)) / 1.45,
      (L / 2 - this.m(8)) / 1.45,
    );
    const pitch = diameter * 1.45;
    let nx = Math.max(1, Math.floor((L / 2 - this.m(8)) / pitch));
    let ny = Math.max(1, Math.floor((D - this.m(10)) / pitch));
    while (nx * ny > 6) {
      if (ny > 1) ny--;
      else nx--;
    }
    const tankHeight = between(random, 8, 14);
    const u0 = L / 4 - ((nx - 1) * pitch) / 2;
    const w0 = this.m(1) - ((ny - 1) * pitch) / 2;
    for (let i = 0; i < nx; i++) {
      for (let j = 0; j < ny; j++) {
        const [x, y] = at(u0 + i * pitch, w0 + j * pitch);
        this.addTank(x, y, diameter / 2, tankHeight);
      }
    }

    // A warehouse at the back of the other half, a car park in front of it.
    const whLength = Math.min(this.m(45), L / 2 - this.m(10));
    const whDepth = Math.min(this.m(28), D * 0.45);
    const whU = -L / 4;
    const whW = D / 2 - this.m(4) - whDepth / 2;
    const [wx, wy] = at(whU, whW);
    const warehouse: OrientedRect = {
      cx: wx,
      cy: wy,
      halfLength: whLength / 2,
      halfWidth: whDepth / 2,
      angle: lot.angle,
    };
    this.addBuilding(warehouse, false, C.roofMetal, between(random, 8, 11), false);
    this.occupy(warehouse);

    const parkNear = -D / 2 + this.m(3);
    const parkFar = whW - whDepth / 2 - this.m(4);
    if (parkFar - parkNear < this.m(6)) return;
    const [pcx, pcy] = at(whU, (parkNear + parkFar) / 2);
    const park: OrientedRect = {
      cx: pcx,
      cy: pcy,
      halfLength: whLength / 2 + this.m(3),
      halfWidth: (parkFar - parkNear) / 2,
      angle: lot.angle,
    };
    const parkShape = polygon(rectCorners(park));
    this.drawables.push({
      layer: LAYER.ground,
      shape: parkShape,
      box: shapeBox(parkShape),
      color: C.parking,
      object: false,
    });
    const stall = this.m(2.7);
    const rows =
      parkFar - parkNear >= this.m(13)
        ? [parkFar - this.m(2.6), parkNear + this.m(2.6)]
        : [parkFar - this.m(2.6)];
    for (const w of rows) {
      for (let u = whU - whLength / 2 + stall / 2; u <= whU + whLength / 2 - stall / 2; u += stall) {
        if (random() > 0.65) continue;
        const [x, y] = at(u, w);
        this.addVehicle(
          x,
          y,
          lot.angle + Math.PI / 2 + between(random, -0.05, 0.05),
          random() < 0.85 ? 18 : 20,
        );
      }
    }
  }

  /** Houses in one or two rows along every road, denser near the village centre. */
  planHouses(): void {
    const { random } = this;
    const roofs: [Color, number, boolean][] = [
      [C.roofRed, 0.4, true],
      [C.roofGrey, 0.3, true],
      [C.roofDark, 0.15, false],
      [C.roofMetal, 0.15, false],
    ];
    for (const road of this.roads) {
      const length = roadLength(road);
      for (const side of [-1, 1]) {
        let s = between(random, 0, this.m(20));
        while (s < length) {
          const at = roadAt(road, s);
          let offset = road.halfWidth + this.m(between(random, 4, 9));
          for (let rowIndex = 0; rowIndex < 2; rowIndex++) {
            const halfLength = this.m(between(random, 9, 16)) / 2;
            const halfWidth = this.m(between(random, 8, 12)) / 2;
            const dist = offset + halfWidth;
            const cx = at.x - Math.sin(at.angle) * dist * side;
            const cy = at.y + Math.cos(at.angle) * dist * side;
            const density = this.density(cx, cy);
            const p = rowIndex === 0 ? 0.05 + 0.85 * density : 0.6 * density;
            if (random() < p) {
              const rect: OrientedRect = {
                cx,
                cy,
                halfLength,
                halfWidth,
                angle: at.angle + between(random, -0.03, 0.03),
              };
              if (this.fits(rect, { roadClearance: this.m(3), margin: this.m(2) })) {
                let u = random();
                let roof = roofs[0] as [Color, number, boolean];
                for (const r of roofs) {
                  roof = r;
                  if (u < r[1]) break;
                  u -= r[1];
                }
                const lShape = random() < 0.2;
                this.addBuilding(rect, lShape, roof[0], between(random, 4, 9), roof[2] && !lShape);
                this.occupy(rect);
                this.houses.push({ x: cx, y: cy, r: Math.max(halfLength, halfWidth) + this.m(10) });
              }
            }
            offset += 2 * halfWidth + this.m(between(random, 8, 14));
          }
          s += this.m(between(random, 16, 28));
        }
      }
    }
  }

  /** Traffic in both lanes of every road. */
  planTraffic(): void {
    const { random } = this;
    for (const road of this.roads) {
      const length = roadLength(road);
      for (const lane of [-0.45, 0.45]) {
        let s = between(random, 0, this.m(30));
        while (s < length) {
          const at = roadAt(road, s);
          const cx = at.x - Math.sin(at.angle) * road.halfWidth * lane;
          const cy = at.y + Math.cos(at.angle) * road.halfWidth * lane;
          if (random() < 0.25 + 0.6 * this.density(cx, cy)) {
            const u = random();
            const typeId = u < 0.75 ? 18 : u < 0.85 ? 20 : u < 0.95 ? 23 : 19;
            this.addVehicle(cx, cy, at.angle, typeId);
          }
          s += this.m(between(random, 10, 60));
        }
      }
    }
  }

  planGardens(): void {
    this.gardens = new GardenField(this.width, this.height, this.m(4), this.houses);
  }

  /** Unlabelled trees, mostly in the gardens (clutter a detector has to ignore). */
  planTrees(): void {
    const { random } = this;
    const gardens = this.gardens;
    const candidates = Math.round((this.width * this.height * this.res * this.res) / 350);
    for (let i = 0; i < candidates; i++) {
      const x = random() * this.width;
      const y = random() * this.height;
      if (random() > 0.004 + 0.45 * (gardens ? gardens.at(x, y) : 0)) continue;
      const r = this.m(between(random, 2, 4.5));
      const square: OrientedRect = { cx: x, cy: y, halfLength: r, halfWidth: r, angle: 0 };
      if (this.roadDistance(x, y) < r + this.m(1)) continue;
      if (!this.fits(square, { margin: this.m(1) })) continue;
      const [ox, oy] = this.shadowOffset(between(random, 6, 14));
      const shadow: Shape = { kind: 'capsule', ax: x, ay: y, bx: x + ox, by: y + oy, r: r * 0.9 };
      this.drawables.push({
        layer: LAYER.treeShadow,
        shape: shadow,
        box: shapeBox(shadow),
        color: C.tree,
        shade: 0.55,
        object: false,
      });
      const seed = this.seed;
      const texture = (px: number, py: number): number => {
        const d = Math.hypot(px - x, py - y) / r;
        return 0.75 + 0.4 * (1 - d * d) + 0.15 * (unitHash(Math.floor(px), Math.floor(py), seed + 9) - 0.5);
      };
      const shape: Shape = { kind: 'disc', cx: x, cy: y, r };
      this.drawables.push({
        layer: LAYER.tree,
        shape,
        box: shapeBox(shape),
        color: C.tree,
        texture,
        object: false,
      });
    }
  }
}

/** Plans a scene from a seed: roads, lake, lot, houses, traffic and trees, and their labels. */
export function planDemoScene(options: DemoSceneOptions): DemoScene {
  const seed = options.seed;
  if (!Number.isInteger(seed)) throw new RangeError(`Expected integer for seed but received ${seed}`);
  const width = options.width ?? 3000;
  const height = options.height ?? width;
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v < 64)
      throw new RangeError(`Expected integer >= 64 for ${name} but received ${v}`);
  }
  const res = options.resolution ?? 0.5;
  if (!(res > 0 && res <= 100))
    throw new RangeError(`Expected resolution in (0, 100] metres but received ${res}`);
  const place = options.place ?? pick(createRandom(seed ^ 0x5bd1e995), DEMO_PLACES);

  const planner = new Planner(seed, width, height, res);
  planner.planRoads();
  planner.planLake();
  planner.planIndustrialLot();
  planner.planHouses();
  planner.planTraffic();
  planner.planGardens();
  planner.planTrees();
  const drawables = planner.drawables
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.layer - b.d.layer || a.i - b.i)
    .map(({ d }) => d);

  // The scene's top-left corner sits on whole metres, so the geotransform is exact in UTM.
  const zone = utmZoneForLonLat(place.lon, place.lat);
  const [easting, northing] = lonLatToUtm(place.lon, place.lat, zone);
  const originX = Math.round(easting - (width * res) / 2);
  const originY = Math.round(northing + (height * res) / 2);
  const random = createRandom(seed + 1);
  const parcels = new Parcels(width, height, planner.m(85), random);
  return new DemoScene(
    {
      width,
      height,
      resolution: res,
      zone,
      epsg: utmEpsg(zone),
      crsName: utmName(zone),
      geotransform: [originX, res, 0, originY, 0, -res],
      place,
      seed,
      objects: planner.objects,
      nodataCorner: planner.nodataCorner,
    },
    drawables,
    parcels,
    planner.lake,
    planner.gardens ?? new GardenField(width, height, planner.m(4), []),
    {
      broad: new NoiseGrid(width, height, planner.m(150), seed + 3),
      mid: new NoiseGrid(width, height, planner.m(40), seed + 4),
      patch: new NoiseGrid(width, height, planner.m(10), seed + 6),
      fine: new NoiseGrid(width, height, planner.m(2.5), seed + 5),
    },
  );
}
