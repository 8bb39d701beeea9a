/**
 * polygonizeClasses over a class raster in its own process, for bench/predict.ts to measure:
 * `node --import tsx bench/polygonize-child.ts <raster>`; prints one JSON line with the count of
 * polygons, rings and vertices, the area, and the process's peak resident memory (maxRSS).
 */
import { polygonizeClasses } from '../lib/predict/polygonize.js';
import { createStorage } from '../lib/storage/index.js';

const started = performance.now();
let polygons = 0;
let rings = 0;
let vertices = 0;
let area = 0;
for await (const p of polygonizeClasses(createStorage(), process.argv[2]!)) {
  polygons++;
  rings += p.polygon.length;
  for (const r of p.polygon) vertices += r.length;
  area += p.areaPx;
}
console.log(
  JSON.stringify({
    polygons,
    rings,
    vertices,
    area,
    seconds: (performance.now() - started) / 1000,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
