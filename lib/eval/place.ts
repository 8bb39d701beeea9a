/**
 * Map coordinates and scene pixels: GeoJSON features placed on a scene's grid (reprojected with
 * the geo-labels code, clipped to the scene), and scene pixels back to CRS84 for errors.geojson.
 */
import { pixelToWorld } from '../geo/affine.js';
import { CRS84, CrsError, crsTransform } from '../geo/crs.js';
import { featuresToPixels } from '../labels/geo-labels.js';
import { LabelError } from '../labels/errors.js';
import { clipPolygon, polygonArea, polygonsBounds } from '../labels/geometry.js';
import type { Polygon } from '../labels/geometry.js';
import { EvalError } from './errors.js';
import type { GeoSource, RawLabel, RawObject, SceneGrid } from './inputs.js';

/** What placing a GeoJSON on a scene found. */
export interface Placed {
  readonly objects: RawObject[];
  /** Features with polygons that do not touch the scene. */
  readonly outside: number;
  /** Features without polygons (points, lines). */
  readonly unsupported: number;
  readonly warnings: readonly string[];
}

/** The class a feature names: `field` (a name, or an integer id), else `category_id`. */
function labelOf(properties: Record<string, unknown>, field: string): RawLabel {
  const v = properties[field];
  const id = properties['category_id'];
  if (typeof v === 'string' && v !== '') {
    return Number.isInteger(id) ? { name: v, id: id as number } : { name: v };
  }
  if (typeof v === 'number' && Number.isInteger(v)) return { id: v };
  if (Number.isInteger(id)) return { id: id as number };
  return {};
}

/**
 * The features of `geo` on `grid` (which must be georeferenced): polygons in scene pixels clipped
 * to the scene, their bounding boxes, score from `properties.score` (else 1).
 */
export function placeOnGrid(geo: GeoSource, grid: SceneGrid, classField: string, where: string): Placed {
  if (grid.epsg === null || grid.geotransform === null) {
    throw new EvalError(
      `${where} ${geo.uri}: GeoJSON needs a georeferenced scene to be placed on, and this scene has no CRS or geotransform`,
    );
  }
  let placed: ReturnType<typeof featuresToPixels>;
  try {
    placed = featuresToPixels(geo.features, geo.crs, {
      uri: geo.uri,
      width: grid.width,
      height: grid.height,
      epsg: grid.epsg,
      geotransform: grid.geotransform,
    });
  } catch (error) {
    if (error instanceof LabelError || error instanceof CrsError)
      throw new EvalError(`${where} ${geo.uri}: ${error.message}`);
    throw error;
  }
  const objects: RawObject[] = [];
  let outside = 0;
  let unsupported = 0;
  for (const f of placed.features) {
    if (f.shape.kind !== 'polygons') {
      unsupported++;
      continue;
    }
    const clipped: Polygon[] = f.shape.polygons.flatMap((p) => clipPolygon(p, grid.width, grid.height));
    const area = clipped.reduce((s, p) => s + polygonArea(p), 0);
    if (clipped.length === 0 || !(area > 0)) {
      outside++;
      continue;
    }
    const [x0, y0, x1, y1] = polygonsBounds(clipped);
    const s = f.properties['score'];
    objects.push({
      box: [x0, y0, x1, y1],
      polygons: clipped,
      score: typeof s === 'number' && Number.isFinite(s) ? s : 1,
      label: labelOf(f.properties, classField),
    });
  }
  return { objects, outside, unsupported, warnings: placed.warnings };
}

/** Scene pixels to CRS84 [lon, lat] for a georeferenced grid, or null when it is not. */
export function pixelsToCrs84(grid: SceneGrid): ((x: number, y: number) => [number, number]) | null {
  if (grid.epsg === null || grid.geotransform === null) return null;
  const gt = grid.geotransform;
  const t = crsTransform({ epsg: grid.epsg, text: `EPSG:${grid.epsg}` }, CRS84);
  return (x, y) => {
    const [wx, wy] = pixelToWorld(gt, x, y);
    const [lon, lat] = t.forward(wx, wy);
    return [Math.round(lon * 1e9) / 1e9, Math.round(lat * 1e9) / 1e9];
  };
}

/** The scene's footprint in its CRS, for messages. */
export function footprintText(grid: SceneGrid): string {
  if (grid.geotransform === null) return `${grid.width} x ${grid.height} px`;
  const [ax, ay] = pixelToWorld(grid.geotransform, 0, 0);
  const [bx, by] = pixelToWorld(grid.geotransform, grid.width, grid.height);
  const f = (v: number) => String(Math.round(v * 1000) / 1000);
  return `[${f(Math.min(ax, bx))}, ${f(Math.min(ay, by))}, ${f(Math.max(ax, bx))}, ${f(Math.max(ay, by))}] in EPSG:${grid.epsg}`;
}
