import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { createStorage } from '../../lib/storage/index.js';
import { discover } from '../../lib/serve/layers.js';
import { embeddingsLookup } from '../../lib/serve/similar.js';
import { startServer, type RunningServer } from '../../lib/serve/server.js';
import { browserSkip, launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { CHIPS, lonLat, SCENE, writeRunFixture } from './run-fixture.js';

const BACKGROUND = [0xdf, 0xe5, 0xea];

interface MapHandle {
  project(p: [number, number]): { x: number; y: number };
  getLayoutProperty(id: string, p: string): unknown;
  once(event: string, cb: () => void): void;
  triggerRepaint(): void;
}
/** The page's globals the test reads (evaluated in the browser; no DOM types in this project). */
interface ViewerWindow {
  viewer: { ready: boolean; map: MapHandle; error: string | null };
  document: { querySelector(selector: string): { textContent: string | null } | null };
}

describe('the viewer page in headless Chromium', { skip: browserSkip }, () => {
  let dir: string;
  let srv: RunningServer;
  let b: TestBrowser;
  const tiles: number[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-viewer-'));
    await writeRunFixture(dir);
    const storage = createStorage();
    const run = await discover(storage, dir);
    srv = await startServer(storage, run, {
      log: () => undefined,
      similar: await embeddingsLookup(storage, run.embeddings!),
    });
    b = await launchBrowser({ width: 1000, height: 700 });
    b.page.on('response', (r) => {
      if (r.url().includes('/tiles/')) tiles.push(r.status());
    });
  });
  after(async () => {
    await b?.close();
    await srv?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Page pixel of scene pixel (col, row). */
  async function screenPoint(col: number, row: number): Promise<{ x: number; y: number }> {
    const ll = lonLat(col, row);
    return b.page.evaluate((p) => (globalThis as unknown as ViewerWindow).viewer.map.project(p), ll);
  }

  async function pixelAt(p: { x: number; y: number }): Promise<number[]> {
    const png = await b.page.screenshot({
      clip: { x: Math.round(p.x), y: Math.round(p.y), width: 1, height: 1 },
    });
    return [...(await sharp(png).removeAlpha().raw().toBuffer())];
  }

  async function idle(): Promise<void> {
    await b.page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          const map = (globalThis as unknown as ViewerWindow).viewer.map;
          map.once('idle', () => resolve());
          map.triggerRepaint();
        }),
    );
  }

  const far = (a: number[], c: number[]): boolean => a.some((v, i) => Math.abs(v - c[i]!) > 12);

  test('loads from the server alone, draws the raster tiles, and a layer toggle hides one', async () => {
    await b.page.goto(srv.url);
    await b.page.waitForFunction(
      () => (globalThis as unknown as ViewerWindow).viewer?.ready === true,
      undefined,
      {
        timeout: 20000,
      },
    );
    assert.equal(await b.page.evaluate(() => (globalThis as unknown as ViewerWindow).viewer.error), null);
    assert.deepEqual(b.offline, []);
    assert.deepEqual(b.errors, []);
    assert.ok(tiles.length > 0 && tiles.every((s) => s === 200), `tile responses ${tiles.join(',')}`);

    // a scene pixel with no vector above it: the RGB tile is drawn there, not the background
    const p = await screenPoint(200, 400);
    const shown = await pixelAt(p);
    assert.ok(far(shown, BACKGROUND), `pixel ${shown} is the background`);

    for (const id of [`rgb.${SCENE}`, `masks.${SCENE}`]) await b.page.uncheck(`[data-layer="${id}"]`);
    assert.equal(
      await b.page.evaluate(
        (id) => (globalThis as unknown as ViewerWindow).viewer.map.getLayoutProperty(id, 'visibility'),
        `rgb.${SCENE}`,
      ),
      'none',
    );
    await idle();
    const hidden = await pixelAt(p);
    assert.ok(!far(hidden, BACKGROUND), `pixel ${hidden} after hiding the rasters is not the background`);
    await b.page.check(`[data-layer="rgb.${SCENE}"]`);
    await idle();
    assert.ok(far(await pixelAt(p), BACKGROUND));
  });

  test("clicking a chip footprint shows that chip's name, window and annotations in the panel", async () => {
    const chip = CHIPS[3]!;
    const p = await screenPoint(chip.x + 64, chip.y + 64);
    await b.page.mouse.click(p.x, p.y);
    await b.page.waitForSelector('#panel .chip-name', { timeout: 10000 });
    assert.equal(await b.page.textContent('#panel .chip-name'), chip.name);
    const text = (await b.page.textContent('#panel'))!;
    assert.match(text, new RegExp(`x ${chip.x}, y ${chip.y}, w 128, h 128`));
    assert.match(text, /vehicle/);
  });

  test("'Similar chips' lists the nearest chips by score and outlines their footprints", async () => {
    const chip = CHIPS[0]!;
    const p = await screenPoint(chip.x + 100, chip.y + 100);
    await b.page.mouse.click(p.x, p.y);
    await b.page.waitForFunction(
      (name) =>
        (globalThis as unknown as ViewerWindow).document.querySelector('#panel .chip-name')?.textContent ===
        name,
      chip.name,
      { timeout: 10000 },
    );
    await b.page.click('#panel button');
    await b.page.waitForSelector('#panel .similar li', { timeout: 10000 });
    const items = await b.page.$$eval('#panel .similar li', (els) => els.map((e) => e.textContent));
    assert.deepEqual(items, [
      `${CHIPS[1]!.name} (0.800)`,
      `${CHIPS[2]!.name} (0.600)`,
      `${CHIPS[3]!.name} (0.000)`,
    ]);
    const outlined = await b.page.evaluate(
      () =>
        (
          globalThis as unknown as ViewerWindow & {
            viewer: { map: { querySourceFeatures(id: string): unknown[] } };
          }
        ).viewer.map.querySourceFeatures('similar').length,
    );
    assert.ok(outlined >= 3, `similar outlines: ${outlined}`);
  });

  test('clicking a prediction shows its class and score', async () => {
    const p = await screenPoint(320, 320);
    await b.page.mouse.click(p.x, p.y);
    await b.page.waitForFunction(
      () =>
        (globalThis as unknown as ViewerWindow).document.querySelector('#panel h3')?.textContent ===
        'building',
      undefined,
      {
        timeout: 10000,
      },
    );
    assert.match((await b.page.textContent('#panel'))!, /score\s*0\.9/);
  });
});
