import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { createStorage } from '../../lib/storage/index.js';
import { discover } from '../../lib/serve/layers.js';
import { startServer, type RunningServer } from '../../lib/serve/server.js';
import { geojsonFeatures } from '../../lib/serve/vector.js';
import { ServeError } from '../../lib/serve/errors.js';
import { embeddingsLookup } from '../../lib/serve/similar.js';
import { isolatedEnv, tsxLoader } from '../helpers/cli.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import {
  CHIP_NODATA,
  CHIP_VECTORS,
  CHIPS,
  lonLat,
  SCENE,
  SCENE_SIZE,
  writeRunFixture,
  type RunFixture,
} from './run-fixture.js';
import { writeUint16Scene } from './tile-fixtures.js';

const storage = createStorage();

/** The XYZ tile (z) holding CRS84 point (lon, lat). */
function tileOf(lon: number, lat: number, z: number): [number, number] {
  const n = 2 ** z;
  const x = Math.floor(((lon + 180) / 360) * n);
  const r = (lat * Math.PI) / 180;
  const y = Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n);
  return [x, y];
}

async function opaquePixels(png: Buffer): Promise<number> {
  const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  let n = 0;
  for (let i = info.channels - 1; i < data.length; i += info.channels) if (data[i]! > 0) n++;
  return n;
}

interface Layer {
  id: string;
  type: string;
  kind?: string;
  role?: string;
  group: string;
  legend?: { value: number; name: string; color: string }[];
  bounds?: number[];
  maxZoom?: number;
}

describe('geobatch serve over a local run', () => {
  let dir: string;
  let fx: RunFixture;
  let srv: RunningServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-serve-'));
    fx = await writeRunFixture(dir);
    const run = await discover(storage, dir);
    assert.equal(run.embeddings, join(dir, 'embed'));
    srv = await startServer(storage, run, {
      log: () => undefined,
      similar: await embeddingsLookup(storage, run.embeddings!),
    });
  });
  after(async () => {
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });
  const get = (path: string): Promise<Response> => fetch(new URL(path, srv.url));

  test('listens on loopback and lists the run layers: rasters by stage, vectors by role', async () => {
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const body = (await (await get('/api/layers')).json()) as { layers: Layer[]; bounds: number[] };
    assert.deepEqual(
      body.layers.map((l) => [l.id, l.type, l.kind ?? l.role]),
      [
        [`rgb.${SCENE}`, 'raster', 'rgb'],
        [`masks.${SCENE}`, 'raster', 'classes'],
        ['labels.outlines', 'vector', 'labels'],
        ['chips', 'vector', 'chips'],
        ['predict', 'vector', 'predictions'],
        ['eval.errors', 'vector', 'errors'],
      ],
    );
    const mask = body.layers.find((l) => l.id === `masks.${SCENE}`)!;
    assert.deepEqual(
      mask.legend!.map((e) => [e.value, e.name]),
      [
        [1, 'building'],
        [2, 'vehicle'],
      ],
    );
    // the raster bounds are the scene's corners in CRS84
    const [w, s, e, n] = body.bounds;
    const [lon0, lat0] = lonLat(0, 0);
    const [lon1, lat1] = lonLat(SCENE_SIZE, SCENE_SIZE);
    assert.ok(
      Math.abs(w! - Math.min(lon0, lon1)) < 1e-3 && Math.abs(n! - Math.max(lat0, lat1)) < 1e-3,
      String(body.bounds),
    );
    assert.ok(e! > w! && n! > s!);
  });

  test('the page, its script and MapLibre GL come from the server itself', async () => {
    const page = await (await get('/')).text();
    assert.match(page, /\/assets\/maplibre-gl\.js/);
    for (const path of [
      '/static/app.js',
      '/static/style.css',
      '/assets/maplibre-gl.js',
      '/assets/maplibre-gl.css',
    ]) {
      const r = await get(path);
      assert.equal(r.status, 200, path);
      assert.ok((await r.arrayBuffer()).byteLength > 100, path);
    }
    // no http(s) URL other than loopback anywhere in the page files
    for (const path of ['/', '/static/app.js', '/static/style.css']) {
      assert.doesNotMatch(await (await get(path)).text(), /https?:\/\/(?!localhost|127\.0\.0\.1)/, path);
    }
  });

  test('raster tiles: a tile over the scene has opaque pixels, a tile elsewhere is transparent', async () => {
    const [lon, lat] = lonLat(SCENE_SIZE / 2, SCENE_SIZE / 2);
    const [x, y] = tileOf(lon, lat, 14);
    const inside = await get(`/tiles/rgb.${SCENE}/14/${x}/${y}.png`);
    assert.equal(inside.status, 200);
    assert.equal(inside.headers.get('content-type'), 'image/png');
    assert.ok((await opaquePixels(Buffer.from(await inside.arrayBuffer()))) > 1000);
    const far = await get(`/tiles/rgb.${SCENE}/14/${x + 50}/${y}.png`);
    assert.equal(far.status, 200);
    assert.equal(await opaquePixels(Buffer.from(await far.arrayBuffer())), 0);
    const mask = await get(`/tiles/masks.${SCENE}/14/${x}/${y}.png`);
    assert.ok((await opaquePixels(Buffer.from(await mask.arrayBuffer()))) > 0);
  });

  test('bad paths are 404 with a short message', async () => {
    for (const path of [
      '/nope',
      '/tiles/nope/1/0/0.png',
      `/tiles/rgb.${SCENE}/3/9/0.png`,
      '/api/vector/nope.geojson',
      '/api/chip/nope.png',
      '/static/../plan.json',
      '/assets/package.json',
      '/api/similar?chip=nope.png',
    ]) {
      const r = await get(path);
      assert.equal(r.status, 404, path);
      const text = await r.text();
      assert.ok(text.length > 0 && text.length < 200, text);
    }
  });

  test('chip footprints: one FeatureCollection with the no-data class and the window as x, y, w, h', async () => {
    const r = await get('/api/vector/chips.geojson');
    assert.equal(r.status, 200);
    const fc = (await r.json()) as { features: { properties: Record<string, unknown> }[] };
    assert.deepEqual(
      fc.features.map((f) => [f.properties['chip'], f.properties['nodata'], f.properties['window']]),
      CHIPS.map((c, i) => [c.name, CHIP_NODATA[i], [c.x, c.y, 128, 128]]),
    );
  });

  test('labels (pretty-printed GeoJSON), predictions and errors stream whole', async () => {
    const labels = (await (await get('/api/vector/labels.outlines.geojson')).json()) as {
      features: { properties: Record<string, unknown> }[];
    };
    const original = JSON.parse(await readFile(fx.labels, 'utf8')) as { features: unknown[] };
    assert.deepEqual(labels.features, original.features);
    const preds = (await (await get('/api/vector/predict.geojson')).json()) as {
      features: { properties: { score: number } }[];
    };
    assert.deepEqual(
      preds.features.map((f) => f.properties.score),
      [0.9, 0.3],
    );
    const errors = (await (await get('/api/vector/eval.errors.geojson')).json()) as { features: unknown[] };
    assert.equal(errors.features.length, 1);
  });

  test('chip details: scene, window, footprint and its COCO annotations; its picture', async () => {
    const r = await get(`/api/chip/${CHIPS[0]!.name}`);
    assert.equal(r.status, 200);
    const chip = (await r.json()) as {
      name: string;
      source: string;
      window: number[];
      annotations: { category: string; bbox: number[] }[];
    };
    assert.equal(chip.name, CHIPS[0]!.name);
    assert.equal(chip.source, fx.rgb);
    assert.deepEqual(chip.window, [0, 0, 128, 128]);
    assert.deepEqual(
      chip.annotations.map((a) => [a.category, a.bbox]),
      [
        ['building', [10, 12, 30, 20]],
        ['vehicle', [60, 70, 8, 6]],
      ],
    );
    const other = (await (await get(`/api/chip/${CHIPS[3]!.name}`)).json()) as { annotations: unknown[] };
    assert.equal(other.annotations.length, 1);
    const image = await get(`/api/chip/${CHIPS[0]!.name}/image`);
    assert.equal(image.headers.get('content-type'), 'image/png');
    assert.equal((await sharp(Buffer.from(await image.arrayBuffer())).metadata()).width, 128);
  });

  test('similar chips: the nearest by cosine of the embed stage output, with their footprints', async () => {
    const r = await get(`/api/similar?chip=${CHIPS[0]!.name}&k=2`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as {
      neighbours: { name: string; score: number; footprint: { type: string } }[];
    };
    const cos = (a: readonly number[], b: readonly number[]): number =>
      a.reduce((s, v, i) => s + v * b[i]!, 0);
    assert.deepEqual(
      body.neighbours.map((n) => n.name),
      [CHIPS[1]!.name, CHIPS[2]!.name],
    );
    for (const [i, n] of body.neighbours.entries())
      assert.ok(Math.abs(n.score - cos(CHIP_VECTORS[0], CHIP_VECTORS[i + 1]!)) < 1e-6);
    assert.equal(body.neighbours[0]!.footprint.type, 'Polygon');
    assert.equal((await get(`/api/similar?chip=${CHIPS[0]!.name}&k=0`)).status, 400);
  });

  test('a failing tile is a 500 logged once; the server goes on serving', async () => {
    // storage that starts failing every read once the layers are open (a disk or bucket gone away)
    let broken = false;
    const faulty = new Proxy(storage, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (broken && (prop === 'readRange' || prop === 'read' || prop === 'createReadStream'))
            return Promise.reject(new Error('disk gone'));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const lines: string[] = [];
    const own = await startServer(faulty, await discover(faulty, dir), { log: (l) => lines.push(l) });
    try {
      broken = true;
      const [lon, lat] = lonLat(SCENE_SIZE / 2, SCENE_SIZE / 2);
      const statuses: number[] = [];
      for (const z of [13, 15]) {
        const [x, y] = tileOf(lon, lat, z);
        statuses.push((await fetch(new URL(`/tiles/masks.${SCENE}/${z}/${x}/${y}.png`, own.url))).status);
      }
      assert.deepEqual(statuses, [500, 500]);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, new RegExp(`masks\\.${SCENE}.*disk gone`));
      assert.equal((await fetch(new URL('/api/layers', own.url))).status, 200);
    } finally {
      await own.close();
    }
  });
});

test('geojsonFeatures cuts features out of any chunking, strings with brackets included', async () => {
  const fc = {
    type: 'FeatureCollection',
    bbox: [0, 0, 1, 1],
    features: [
      {
        type: 'Feature',
        properties: { a: 'x]}"{[', b: [1, [2]] },
        geometry: { type: 'Point', coordinates: [1, 2] },
      },
      { type: 'Feature', properties: { features: 'no' }, geometry: null },
    ],
    after: { features: [1] },
  };
  const text = Buffer.from(JSON.stringify(fc, null, 1));
  for (const size of [1, 3, 7, text.length]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < text.length; i += size) chunks.push(text.subarray(i, i + size));
    const out: unknown[] = [];
    for await (const f of geojsonFeatures(Readable.from(chunks))) out.push(JSON.parse(f));
    assert.deepEqual(out, fc.features, `chunks of ${size}`);
  }
});

test('a single raster serves just that layer; a run without an rgb stage shows its raw scenes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'geobatch-serve-scene-'));
  try {
    const fx = await writeRunFixture(dir);
    const one = await discover(storage, fx.mask);
    try {
      assert.deepEqual(
        one.layers.map((l) => [l.id, l.type, l.type === 'raster' ? l.kind : '']),
        [[SCENE, 'raster', 'classes']],
      );
      assert.equal(one.chipFolders.length, 0);
    } finally {
      await one.close();
    }
    // the same run without its rgb stage: the plan's scenes (4-band uint16 here) are the rasters
    const raw = join(dir, 'inputs', `${SCENE}-raw.tif`);
    await writeUint16Scene(raw, 256, 256);
    const p = JSON.parse(await readFile(join(dir, 'plan.json'), 'utf8')) as {
      graph: { stages: { job: string }[] };
    };
    p.graph.stages = p.graph.stages.filter((s) => s.job !== 'rgb');
    await writeFile(join(dir, 'plan.json'), JSON.stringify(p));
    const run = await discover(storage, dir);
    const srv = await startServer(storage, run, { log: () => undefined });
    try {
      const rasters = run.layers.filter((l) => l.type === 'raster').map((l) => [l.id, l.group]);
      assert.deepEqual(rasters, [
        [`masks.${SCENE}`, 'masks'],
        [`scene.${SCENE}`, 'scene'],
      ]);
      const [lon, lat] = lonLat(128, 128);
      const [x, y] = tileOf(lon, lat, 14);
      const tile = await fetch(new URL(`/tiles/scene.${SCENE}/14/${x}/${y}.png`, srv.url));
      assert.ok((await opaquePixels(Buffer.from(await tile.arrayBuffer()))) > 100);
    } finally {
      await srv.close();
    }
    await writeFile(join(dir, 'not-a.tif'), 'hello');
    await assert.rejects(discover(storage, join(dir, 'not-a.tif')), /not-a\.tif/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a folder that is neither a run nor a raster is a ServeError naming it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'geobatch-serve-empty-'));
  try {
    await assert.rejects(
      discover(storage, dir),
      (e: Error) => e instanceof ServeError && e.message.includes(dir),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describe('geobatch serve over S3 (s3rver) and from the command line', () => {
  let dir: string;
  let s3: S3rverHandle;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-serve-s3-'));
    await writeRunFixture(dir);
    s3 = await startS3rver();
  });
  after(async () => {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a run under an s3:// prefix: same layers, tiles and footprints as read through S3', async () => {
    const bucket = await s3.createBucket();
    const prefix = `s3://${bucket}/runs/r1`;
    const s3storage = createStorage({ s3: s3.clientConfig, cacheDir: join(dir, '.cache') });
    const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter(
      (f) => f.isFile() && !f.parentPath.includes('.cache'),
    );
    for (const f of files) {
      const path = join(f.parentPath, f.name);
      let body = await readFile(path, 'utf8').catch(() => '');
      const key = relative(dir, path);
      // the plan's own URIs point into the bucket
      if (key === 'plan.json') body = body.split(dir).join(prefix);
      await s3storage.writeAtomic(`${prefix}/${key}`, key === 'plan.json' ? body : await readFile(path));
    }
    const run = await discover(s3storage, prefix);
    const srv = await startServer(s3storage, run, { log: () => undefined });
    try {
      const body = (await (await fetch(new URL('/api/layers', srv.url))).json()) as { layers: Layer[] };
      assert.deepEqual(
        body.layers.map((l) => l.id),
        [`rgb.${SCENE}`, `masks.${SCENE}`, 'labels.outlines', 'chips', 'predict', 'eval.errors'],
      );
      const [lon, lat] = lonLat(SCENE_SIZE / 2, SCENE_SIZE / 2);
      const [x, y] = tileOf(lon, lat, 14);
      const tile = await fetch(new URL(`/tiles/rgb.${SCENE}/14/${x}/${y}.png`, srv.url));
      assert.ok((await opaquePixels(Buffer.from(await tile.arrayBuffer()))) > 1000);
      const chips = (await (await fetch(new URL('/api/vector/chips.geojson', srv.url))).json()) as {
        features: { properties: { nodata: string } }[];
      };
      assert.deepEqual(
        chips.features.map((f) => f.properties.nodata),
        [...CHIP_NODATA],
      );
      const chip = (await (await fetch(new URL(`/api/chip/${CHIPS[0]!.name}`, srv.url))).json()) as {
        annotations: unknown[];
      };
      assert.equal(chip.annotations.length, 2);
    } finally {
      await srv.close();
    }
  });

  test('geobatch serve --port 0 --json prints the URL and layers, serves, and stops on SIGINT', async () => {
    const child = spawn(
      process.execPath,
      ['--import', tsxLoader, 'bin/geobatch.ts', 'serve', dir, '--port', '0', '--json'],
      {
        env: isolatedEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    const printed = JSON.parse(line) as { url: string; layers: { id: string }[] };
    assert.equal(printed.layers.length, 6);
    const r = await fetch(new URL('/api/layers', printed.url));
    assert.equal(r.status, 200);
    // the run's embed stage output answers similar chips without --embeddings
    assert.equal(((await r.json()) as { similar: boolean }).similar, true);
    const similar = (await fetch(new URL(`/api/similar?chip=${CHIPS[0]!.name}`, printed.url))).status;
    const code = await new Promise<number | null>((resolve) => {
      child.once('exit', (c) => resolve(c));
      child.kill('SIGINT');
    });
    assert.equal(code, 0, stderr);
    assert.equal(similar, 200);
    await assert.rejects(fetch(new URL('/api/layers', printed.url)));
  });
});
