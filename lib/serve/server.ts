/**
 * The viewer's HTTP server (node:http): the map page, MapLibre GL's files from the installed npm
 * package, the run's layers as XYZ PNG tiles and streamed GeoJSON, and chip details. Nothing is
 * fetched from the network. Bad paths are 404 with a short message; a failing tile is a 500,
 * logged once per layer, and the server keeps serving.
 *
 * GET /                                the page (lib/serve/page/index.html)
 * GET /static/<file>                   the page's script and style
 * GET /assets/<file>                   maplibre-gl.js / maplibre-gl.css (node_modules/maplibre-gl/dist)
 * GET /api/layers                      {root, runId, bounds, layers, similar}
 * GET /tiles/<layer>/<z>/<x>/<y>.png   a 256 px PNG tile (transparent when empty)
 * GET /api/vector/<layer>.geojson      a vector layer as one FeatureCollection
 * GET /api/chip/<name>                 a chip's scene, window, footprint and COCO annotations
 * GET /api/chip/<name>/image           the chip picture
 * GET /api/similar?chip=<name>&k=10    nearest chips by embedding (runs with embeddings)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Storage } from '../storage/types.js';
import { joinUri } from '../storage/uri.js';
import { emptyTilePng } from './tiles.js';
import type { ChipFolder, LayerInfo, ServedRun } from './layers.js';
import { geojsonFeatures, sliceWindowXywh, streamVectorLayer } from './vector.js';
import { ServeError } from './errors.js';
import { classHex } from './palette.js';

/** Nearest chips of one chip, as `/api/similar` answers (an embeddings search plugs in here). */
export type SimilarLookup = (
  chip: string,
  k: number,
) => Promise<readonly { readonly name: string; readonly score: number; readonly footprint: unknown }[]>;

export interface ServeOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
  /** Where problems are logged (failing tiles, once per layer). Default stderr. */
  readonly log?: (line: string) => void;
  /** Answers `/api/similar`; without it that route says the run has no embeddings. */
  readonly similar?: SimilarLookup;
}

export interface RunningServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The page folder: next to this file in the sources, or back in lib/ when running from dist/. */
export function pageDir(): string {
  const candidates = [join(here, 'page'), join(here, '..', '..', '..', 'lib', 'serve', 'page')];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!found)
    throw new ServeError(`the viewer page is missing: looked for index.html in ${candidates.join(', ')}`);
  return found;
}

/** MapLibre GL's dist folder in the installed npm package. */
export function maplibreDir(): string {
  return dirname(fileURLToPath(import.meta.resolve('maplibre-gl')));
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.tif': 'image/tiff',
};

function typeOf(name: string): string {
  const m = /\.[^.]+$/.exec(name);
  return (m && TYPES[m[0].toLowerCase()]) ?? 'application/octet-stream';
}

function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  type = 'text/plain; charset=utf-8',
): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-cache',
  });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), 'application/json; charset=utf-8');
}

/** The union of the raster layers' bounds (CRS84), or null without rasters. */
export function layersBounds(layers: readonly LayerInfo[]): [number, number, number, number] | null {
  let out: [number, number, number, number] | null = null;
  for (const l of layers) {
    if (l.type !== 'raster') continue;
    const [w, s, e, n] = l.bounds;
    out = out
      ? [Math.min(out[0], w), Math.min(out[1], s), Math.max(out[2], e), Math.max(out[3], n)]
      : [w, s, e, n];
  }
  return out;
}

interface ChipDetails {
  readonly name: string;
  readonly stage: string;
  readonly folder: string;
  readonly source: unknown;
  readonly window: unknown;
  readonly footprint: unknown;
  readonly width?: number;
  readonly height?: number;
  readonly annotations: readonly {
    readonly category: string;
    readonly categoryId: number;
    readonly bbox: unknown;
    readonly area: unknown;
  }[];
}

interface CocoImage {
  id: number;
  file_name: string;
  width?: number;
  height?: number;
}
interface CocoFile {
  images?: CocoImage[];
  categories?: { id: number; name: string }[];
  annotations?: { image_id: number; category_id: number; bbox?: unknown; area?: unknown }[];
}

/** Chip lookups over the run's chip folders; a few folders' annotations kept parsed. */
class ChipIndex {
  private readonly coco = new Map<string, Promise<CocoFile | null>>();

  constructor(
    private readonly storage: Storage,
    private readonly folders: readonly ChipFolder[],
  ) {}

  private annotations(folder: string): Promise<CocoFile | null> {
    let p = this.coco.get(folder);
    if (!p) {
      const uri = joinUri(folder, 'annotations.json');
      p = this.storage
        .exists(uri)
        .then(async (ok) =>
          ok ? (JSON.parse((await this.storage.read(uri)).toString('utf8')) as CocoFile) : null,
        );
      this.coco.set(folder, p);
      if (this.coco.size > 4) this.coco.delete(this.coco.keys().next().value!);
    }
    return p;
  }

  /** Folders most likely to hold `name` first (chip names start with their scene). */
  private ordered(name: string): ChipFolder[] {
    const scene = (f: ChipFolder): string => f.uri.slice(f.uri.lastIndexOf('/') + 1);
    return [...this.folders].sort(
      (a, b) => Number(name.startsWith(scene(b) + '_')) - Number(name.startsWith(scene(a) + '_')),
    );
  }

  async find(name: string): Promise<ChipDetails | undefined> {
    for (const folder of this.ordered(name)) {
      const stream = await this.storage.createReadStream(joinUri(folder.uri, 'chips.geojson'));
      let feature: { properties?: Record<string, unknown>; geometry?: unknown } | undefined;
      for await (const text of geojsonFeatures(stream, joinUri(folder.uri, 'chips.geojson'))) {
        if (!text.includes(JSON.stringify(name))) continue;
        const f = JSON.parse(text) as { properties?: Record<string, unknown>; geometry?: unknown };
        if (f.properties?.['chip'] === name) {
          feature = f;
          stream.destroy();
          break;
        }
      }
      if (!feature) continue;
      const p = feature.properties ?? {};
      const window = 'cell' in p ? p['window'] : sliceWindowXywh(p['window']);
      const coco = await this.annotations(folder.uri);
      const image = coco?.images?.find((i) => i.file_name === name || i.file_name.endsWith('/' + name));
      const names = new Map((coco?.categories ?? []).map((c) => [c.id, c.name]));
      const annotations = image
        ? (coco?.annotations ?? [])
            .filter((a) => a.image_id === image.id)
            .map((a) => ({
              category: names.get(a.category_id) ?? String(a.category_id),
              categoryId: a.category_id,
              bbox: a.bbox,
              area: a.area,
            }))
        : [];
      return {
        name,
        stage: folder.stage,
        folder: folder.uri,
        source: p['source'] ?? null,
        window: window ?? null,
        footprint: feature.geometry ?? null,
        ...(image?.width ? { width: image.width } : {}),
        ...(image?.height ? { height: image.height } : {}),
        ...('cell' in p ? { cell: p['cell'] } : {}),
        annotations,
      };
    }
    return undefined;
  }

  async image(name: string): Promise<{ uri: string } | undefined> {
    for (const folder of this.ordered(name)) {
      const uri = joinUri(folder.uri, 'images', name);
      if (await this.storage.exists(uri)) return { uri };
    }
    return undefined;
  }
}

const TILE = /^\/tiles\/([^/]+)\/(\d{1,2})\/(\d{1,8})\/(\d{1,8})\.png$/;
const VECTOR = /^\/api\/vector\/([^/]+)\.geojson$/;
const CHIP = /^\/api\/chip\/([^/]+?)(\/image)?$/;
const NAME = /^[A-Za-z0-9._-]+$/;

/** Starts the server over a discovered run; resolves once it listens. */
export async function startServer(
  storage: Storage,
  run: ServedRun,
  options: ServeOptions = {},
): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const page = pageDir();
  const maplibre = maplibreDir();
  const chips = new ChipIndex(storage, run.chipFolders);
  const vectors = new Map(run.layers.filter((l) => l.type === 'vector').map((l) => [l.id, l] as const));
  const failedLayers = new Set<string>();
  const empty = await emptyTilePng();
  const bounds = layersBounds(run.layers);

  async function staticFile(res: ServerResponse, dir: string, name: string): Promise<void> {
    if (!NAME.test(name)) return send(res, 404, `not found: ${name}\n`);
    const path = join(dir, name);
    if (!existsSync(path)) return send(res, 404, `not found: ${name}\n`);
    send(res, 200, await readFile(path), typeOf(name));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(`http://localhost${(req.url ?? '/').replace(/^\/+/, '/')}`);
    const path = decodeURIComponent(url.pathname);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET\n');
    if (path === '/' || path === '/index.html') return staticFile(res, page, 'index.html');
    if (path.startsWith('/static/')) return staticFile(res, page, path.slice('/static/'.length));
    if (path.startsWith('/assets/')) {
      const name = path.slice('/assets/'.length);
      if (!/^maplibre-gl\.(js|css)(\.map)?$/.test(name)) return send(res, 404, `not found: ${path}\n`);
      return staticFile(res, maplibre, name);
    }
    if (path === '/api/layers') {
      return sendJson(res, 200, {
        root: run.root,
        runId: run.runId ?? null,
        bounds,
        layers: run.layers,
        similar: options.similar !== undefined,
        // the class colours of class rasters, for vector classes too (class id n is palette[(n - 1) % 20])
        palette: Array.from({ length: 20 }, (_, i) => classHex(i + 1)),
      });
    }
    let m = TILE.exec(path);
    if (m) {
      const layer = run.tiles.get(m[1]!);
      if (!layer) return send(res, 404, `no raster layer '${m[1]}' (see /api/layers)\n`);
      const [z, x, y] = [Number(m[2]), Number(m[3]), Number(m[4])];
      if (z > 24 || x >= 2 ** z || y >= 2 ** z) return send(res, 404, `no tile ${z}/${x}/${y}\n`);
      const controller = new AbortController();
      res.on('close', () => controller.abort());
      try {
        const png = await layer.tile(z, x, y, controller.signal);
        return send(res, 200, png ?? empty, 'image/png');
      } catch (error) {
        if (controller.signal.aborted) return;
        if (!failedLayers.has(layer.id)) {
          failedLayers.add(layer.id);
          log(
            `serve: tile ${z}/${x}/${y} of ${layer.id} (${layer.uri}) failed: ${error instanceof Error ? error.message : String(error)} (further failures of this layer are not logged)`,
          );
        }
        return send(res, 500, `tile ${z}/${x}/${y} of ${layer.id} failed\n`);
      }
    }
    m = VECTOR.exec(path);
    if (m) {
      const layer = vectors.get(m[1]!);
      if (!layer) return send(res, 404, `no vector layer '${m[1]}' (see /api/layers)\n`);
      res.writeHead(200, { 'content-type': 'application/geo+json', 'cache-control': 'no-cache' });
      const controller = new AbortController();
      res.on('close', () => controller.abort());
      const write = (text: string): Promise<void> =>
        new Promise((resolve) => {
          if (res.write(text)) resolve();
          else res.once('drain', resolve);
        });
      try {
        await streamVectorLayer(storage, layer, write, controller.signal);
        res.end();
      } catch (error) {
        if (!controller.signal.aborted)
          log(
            `serve: vector layer ${layer.id} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        res.destroy();
      }
      return;
    }
    m = CHIP.exec(path);
    if (m) {
      const name = m[1]!;
      if (!NAME.test(name)) return send(res, 404, `no chip '${name}'\n`);
      if (m[2]) {
        const found = await chips.image(name);
        if (!found) return send(res, 404, `no chip picture '${name}'\n`);
        return send(res, 200, await storage.read(found.uri), typeOf(name));
      }
      const details = await chips.find(name);
      if (!details) return send(res, 404, `no chip '${name}' in this run's chip footprints\n`);
      return sendJson(res, 200, details);
    }
    if (path === '/api/similar') {
      if (!options.similar)
        return send(res, 404, 'this run has no embeddings (an embed stage or --embeddings <dir>)\n');
      const chip = url.searchParams.get('chip') ?? '';
      const k = Number(url.searchParams.get('k') ?? '10');
      if (!chip) return send(res, 400, 'give ?chip=<chip name>\n');
      if (!Number.isInteger(k) || k < 1 || k > 1000)
        return send(res, 400, `k must be an integer 1..1000, not ${url.searchParams.get('k')}\n`);
      try {
        return sendJson(res, 200, { chip, neighbours: await options.similar(chip, k) });
      } catch (error) {
        return send(res, 404, `${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
    return send(res, 404, `not found: ${path}\n`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`serve: ${req.url}: ${error instanceof Error ? error.message : String(error)}`);
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        error.code === 'EADDRINUSE' || error.code === 'EACCES' || error.code === 'EADDRNOTAVAIL'
          ? new ServeError(
              `cannot listen on ${host}:${options.port ?? 0}: ${error.code} (choose another --port or --host)`,
            )
          : error,
      ),
    );
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    server,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await run.close();
    },
  };
}
