// The run report as a person sees it: opened from disk in headless Chromium (Debian's chromium
// through playwright-core), with nothing fetched from the network.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { writeRunReport } from '../../lib/report/report.js';
import { runLayout } from '../../lib/runners/layout.js';
import { runLocal } from '../../lib/runners/local.js';
import { createStorage } from '../../lib/storage/index.js';
import { browserSkip, launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { items, plan, stage } from '../helpers/plans.js';

const storage = createStorage();

/** What the test reads from the page (evaluated in the browser; no DOM types in this project). */
interface ReportWindow {
  document: {
    title: string;
    body: { innerText: string };
    querySelectorAll(selector: string): ArrayLike<{
      getBoundingClientRect(): { width: number; height: number };
      getAttribute(name: string): string | null;
      complete?: boolean;
      naturalWidth?: number;
      href?: string;
    }>;
  };
}

describe('the run report in headless Chromium', { skip: browserSkip }, () => {
  let root: string;
  let runUri: string;
  let b: TestBrowser;
  const bad = items(3, 'x<b>&')[1]!.id;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'geobatch-report-browser-'));
    runUri = join(root, 'run');
    const scenes = items(3, 'x<b>&');
    const p = plan(
      runUri,
      [
        stage('a', { itemsFrom: 'scenes', count: 3, params: { failItems: [bad] } }),
        stage('b', { itemsFrom: 'scenes', count: 3, dependsOn: [{ stage: 'a', type: 'N_TO_N' }] }),
        stage('c', {}),
      ],
      { scenes },
    );
    await storage.writeAtomic(runLayout(runUri).plan, JSON.stringify(p));
    await runLocal({ storage, plan: p, concurrency: 2 });
    // pictures a merge and a train stage write, in stage c's folder
    const c = join(runUri, 'c');
    await mkdir(c, { recursive: true });
    for (const [name, colour] of [
      ['contact-sheet.png', '#336699'],
      ['curves.png', '#993366'],
    ] as const) {
      const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: colour } })
        .png()
        .toBuffer();
      await writeFile(join(c, name), png);
    }
    await writeRunReport(storage, p);
    b = await launchBrowser({ width: 1200, height: 900 });
  });
  after(async () => {
    await b?.close();
    await rm(root, { recursive: true, force: true });
  });

  test('opens from disk: graph, table and pictures render, nothing is fetched, no errors', async () => {
    const page = join(runUri, 'report', 'index.html');
    const response = await b.page.goto(pathToFileURL(page).href, { waitUntil: 'load' });
    assert.ok(response === null || response.ok());
    const seen = await b.page.evaluate(() => {
      const { document } = globalThis as unknown as ReportWindow;
      return {
        title: document.title,
        text: document.body.innerText,
        nodes: Array.from(document.querySelectorAll('svg.graph g.node'), (n) => [
          n.getAttribute('data-stage'),
          n.getAttribute('data-state'),
        ]),
        // no helper functions in here: the test's compiler would name them with a helper the page lacks
        nodeSizes: Array.from(document.querySelectorAll('svg.graph g.node'), (e) => [
          e.getBoundingClientRect().width,
          e.getBoundingClientRect().height,
        ]),
        edges: document.querySelectorAll('svg.graph path.edge').length,
        images: Array.from(document.querySelectorAll('img'), (i) => [i.complete, i.naturalWidth]),
        rows: Array.from(document.querySelectorAll('tr[data-stage]'), (e) => [
          e.getBoundingClientRect().width,
          e.getBoundingClientRect().height,
        ]),
      };
    });
    assert.match(seen.title, /: failed$/);
    assert.deepEqual(seen.nodes, [
      ['a', 'failed'],
      ['b', 'blocked'],
      ['c', 'done'],
    ]);
    // drawn, not just present: every box and table row has a size on the page
    for (const [w, h] of [...seen.nodeSizes, ...seen.rows]) assert.ok(w! > 0 && h! > 0);
    assert.equal(seen.rows.length, 3);
    assert.equal(seen.edges, 1);
    // the embedded pictures (data: URIs) decode at their size
    assert.ok(seen.images.length >= 1);
    for (const image of seen.images) assert.deepEqual(image, [true, 40]);
    // the item id with markup is shown as text, in the failure line
    assert.ok(seen.text.includes(bad), 'the failing item appears as text');
    assert.deepEqual(b.offline, [], 'nothing requested from the network');
    assert.deepEqual(b.errors, []);
  });

  test("the failure's log link opens the task's log file", async () => {
    const hrefs = await b.page.evaluate(() => {
      const { document } = globalThis as unknown as ReportWindow;
      return Array.from(document.querySelectorAll('li.failure a'), (a) => a.href ?? '');
    });
    assert.equal(hrefs.length, 1);
    const log = fileURLToPath(hrefs[0]!);
    assert.equal(log, join(runUri, 'logs', 'a', '1.log'));
    assert.ok(existsSync(log));
    await b.page.goto(hrefs[0]!);
    const text = await b.page.evaluate(() => (globalThis as unknown as ReportWindow).document.body.innerText);
    assert.match(text, /ERROR smoke: item/);
  });
});
