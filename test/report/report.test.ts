import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { escapeHtml } from '../../lib/report/escape.js';
import type { ReportFacts } from '../../lib/report/facts.js';
import { writeRunReport } from '../../lib/report/report.js';
import { runLayout } from '../../lib/runners/layout.js';
import { runLocal } from '../../lib/runners/local.js';
import type { RunEvent } from '../../lib/runners/local.js';
import type { RunPlan, TaskFailure } from '../../lib/runners/records.js';
import { createStorage } from '../../lib/storage/index.js';
import { geobatch, isolatedEnv } from '../helpers/cli.js';
import { items, plan, stage } from '../helpers/plans.js';
import { startS3rver } from '../helpers/s3rver.js';
import type { S3rverHandle } from '../helpers/s3rver.js';
import { wellFormedProblems } from './well-formed.js';

const storage = createStorage();

/** Values of `attr="..."` for every src and href in the page. */
function links(html: string): string[] {
  return [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
}

function count(html: string, pattern: RegExp): number {
  return [...html.matchAll(pattern)].length;
}

/** a (4 items, one fails) -> b (task for task) -> c (all of b); d alone. */
function failingPlan(runUri: string): { plan: RunPlan; bad: string } {
  // ids with markup characters: the page must show them as text
  const scenes = items(4, 'x<b>&');
  const bad = scenes[2]!.id;
  const p = plan(
    runUri,
    [
      stage('a', { itemsFrom: 'scenes', count: 4, params: { failItems: [bad] } }),
      stage('b', { itemsFrom: 'scenes', count: 4, dependsOn: [{ stage: 'a', type: 'N_TO_N' }] }),
      stage('c', { dependsOn: [{ stage: 'b', type: 'FAN_IN' }] }),
      stage('d', {}),
    ],
    { scenes },
  );
  return { plan: p, bad };
}

describe('run report', () => {
  let root: string;
  let runUri: string;
  let p: RunPlan;
  let bad: string;
  let finished: Extract<RunEvent, { type: 'run-finished' }> | undefined;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'geobatch-report-'));
    runUri = join(root, 'run');
    ({ plan: p, bad } = failingPlan(runUri));
    await storage.writeAtomic(runLayout(runUri).plan, JSON.stringify(p));
    await runLocal({
      storage,
      plan: p,
      concurrency: 2,
      onEvent: (e) => {
        if (e.type === 'run-finished') finished = e;
      },
    });
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('the local runner writes the report when the run ends, with every stage, its counts and state', async () => {
    const uri = join(runUri, 'report', 'index.html');
    assert.deepEqual(finished?.report, { uri });
    const html = await readFile(uri, 'utf8');
    assert.deepEqual(wellFormedProblems(html), []);
    const expected: Record<string, [string, number, number, number, number]> = {
      a: ['failed', 4, 3, 1, 0],
      b: ['blocked', 4, 3, 0, 1],
      c: ['blocked', 1, 0, 0, 1],
      d: ['done', 1, 1, 0, 0],
    };
    for (const [name, [state, tasks, done, failed, pending]] of Object.entries(expected)) {
      const row = new RegExp(
        `<tr data-stage="${name}">.*?<span class="badge"[^>]*>${state}</span></td>` +
          `<td class="num">${tasks}</td><td class="num">${done}</td><td class="num">${failed}</td><td class="num">${pending}</td>`,
      );
      assert.match(html, row, `stage ${name} row`);
      assert.match(html, new RegExp(`<g class="node" data-stage="${name}" data-state="${state}"`));
      assert.match(html, new RegExp(`<section id="stage-${name}" class="stage">`));
    }
    assert.match(html, /<title>test run test-run: failed<\/title>/);
  });

  test('the job graph has one box per stage and one arrow per dependency, in columns by level', async () => {
    const html = await readFile(join(runUri, 'report', 'index.html'), 'utf8');
    const svg = /<svg class="graph"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
    assert.equal(count(svg, /<g class="node"/g), p.graph.stages.length);
    const dependencies = p.graph.stages.flatMap((s) => s.dependsOn.map((d) => `${d.stage}->${s.name}`));
    const edges = [...svg.matchAll(/<path class="edge" data-from="([^"]*)" data-to="([^"]*)"/g)].map(
      (m) => `${m[1]}->${m[2]}`,
    );
    assert.deepEqual(edges.sort(), dependencies.sort());
    // a and d wait for nothing: same column; b after a, c after b
    const x = (name: string) =>
      Number(new RegExp(`data-stage="${name}"[^>]*transform="translate\\((\\d+),`).exec(svg)?.[1]);
    assert.equal(x('a'), x('d'));
    assert.ok(x('a') < x('b') && x('b') < x('c'), `columns a=${x('a')} b=${x('b')} c=${x('c')}`);
    assert.match(svg, /data-from="b" data-to="c"[^>]*stroke-dasharray/, 'FAN_IN drawn dashed');
  });

  test('the failure shows its first error line escaped and links the task log relatively', async () => {
    const html = await readFile(join(runUri, 'report', 'index.html'), 'utf8');
    const failure = JSON.parse(
      await readFile(join(runUri, 'failures', 'a', '2.json'), 'utf8'),
    ) as TaskFailure;
    assert.ok(failure.error.includes(bad), failure.error);
    assert.ok(html.includes(`<code class="error">${escapeHtml(failure.error)}</code>`), 'escaped error line');
    assert.ok(!html.includes(bad), 'the raw item id (with < > &) appears nowhere');
    assert.ok(html.includes('href="../logs/a/2.log"'), 'relative link to the log');
    const log = await readFile(join(runUri, 'report', '../logs/a/2.log'), 'utf8');
    assert.match(log, /ERROR smoke: item/);
    for (const link of links(html)) assert.doesNotMatch(link, /^https?:\/\//i, `external link ${link}`);
    assert.doesNotMatch(html, /<script/i);
  });

  test('durations: min <= median <= max per stage with finished tasks, and a histogram of every task', async () => {
    const r = await writeRunReport(storage, p, { out: join(root, 'elsewhere', 'page.html') });
    for (const s of r.facts.stages) {
      if (s.done === 0) {
        assert.equal(s.durationMs, undefined);
        continue;
      }
      const d = s.durationMs!;
      assert.ok(d.min <= d.median && d.median <= d.max, `${s.name}: ${JSON.stringify(d)}`);
      assert.equal(
        s.histogram!.reduce((a, b) => a + b, 0),
        s.done,
      );
      assert.ok(s.wall && s.wall.ms >= 0);
    }
    // from another folder, links reach the run by a relative path
    const html = await readFile(r.uri, 'utf8');
    const base = relative(join(root, 'elsewhere'), runUri);
    assert.ok(html.includes(`href="${base}/logs/a/2.log"`), `links from ${r.uri}`);
  });

  test('dataset, training and evaluation outputs are shown, pictures embedded', async () => {
    // files as the merge, train and eval stages name them, written into stage d's folder
    const d = join(runUri, 'd');
    await mkdir(d, { recursive: true });
    const png = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#336699' } })
      .png()
      .toBuffer();
    for (const name of ['contact-sheet.png', 'class-distribution.png', 'curves.png', 'pr-curves.png'])
      await writeFile(join(d, name), png);
    await writeFile(
      join(d, 'stats.json'),
      JSON.stringify({
        categories: ['car', 'bus'],
        splits: { train: { scenes: 3, chips: 40, annotations: 120, chipsWithoutLabels: 2, classes: {} } },
        total: {
          scenes: 4,
          chips: 52,
          annotations: 150,
          chipsWithoutLabels: 3,
          classes: { car: { annotations: 140, chips: 50 }, '<bus>': { annotations: 10, chips: 7 } },
        },
      }),
    );
    await writeFile(join(d, 'dataset.json'), JSON.stringify({ name: 'ds' }));
    await writeFile(
      join(d, 'metrics.json'),
      JSON.stringify({
        task: 'detection',
        model: 'm',
        config: { epochs: 2 },
        epochs: [
          { epoch: 1, trainLoss: 2.5, seconds: 4, metrics: { mAP50: null, perClass: {} } },
          { epoch: 2, trainLoss: 1.25, seconds: 5, metrics: { mAP50: 0.61, perClass: {} } },
        ],
        final: { mAP50: 0.61, valLoss: 0.4321 },
        bestEpoch: 2,
      }),
    );
    await writeFile(join(d, 'MODEL_CARD.md'), '# Model card\n<script>alert(1)</script>\n');
    await writeFile(
      join(d, 'eval.json'),
      JSON.stringify({
        task: 'detection',
        overall: { detection: { f1: 0.5, perClass: { car: { tp: 3, f1: 0.25 } } } },
        prCurves: {},
      }),
    );
    const r = await writeRunReport(storage, p);
    const html = await readFile(r.uri, 'utf8');
    assert.deepEqual(wellFormedProblems(html), []);
    assert.deepEqual([...r.embedded].sort(), [
      'd/class-distribution.png',
      'd/contact-sheet.png',
      'd/curves.png',
      'd/pr-curves.png',
    ]);
    const dataUri = `data:image/png;base64,${png.toString('base64')}`;
    assert.equal(count(html, new RegExp(`src="${dataUri.replace(/[+/]/g, '\\$&')}"`, 'g')), 4);
    assert.match(html, /<h3>Dataset<\/h3>/);
    assert.match(
      html,
      /<td>total<\/td><td class="num">4<\/td><td class="num">52<\/td><td class="num">150<\/td>/,
    );
    assert.match(html, /<td>&lt;bus&gt;<\/td><td class="num">10<\/td><td class="num">7<\/td>/);
    assert.match(html, /<h3>Training<\/h3>/);
    assert.match(html, /<td>valLoss<\/td><td class="num">0\.4321<\/td>/);
    assert.match(html, /<td>bestEpoch<\/td><td class="num">2<\/td>/);
    assert.match(
      html,
      /<tr><td class="num">2<\/td><td class="num">1\.250<\/td><td class="num">5<\/td><td class="num">0\.6100<\/td><\/tr>/,
      'one row per epoch',
    );
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(html, /<script/i);
    assert.match(html, /<h3>Evaluation<\/h3>/);
    assert.match(html, /<td>detection\.f1<\/td><td class="num">0\.5000<\/td>/);
    assert.match(html, /<h4>detection per class<\/h4>/);
    assert.match(html, /<td>car<\/td><td class="num">3<\/td><td class="num">0\.2500<\/td>/);
    assert.ok(html.includes('href="../d/metrics.json"'));
    for (const link of links(html)) assert.doesNotMatch(link, /^https?:\/\//i);
    const leftovers = (await readdir(join(runUri, 'report'))).filter((n) => n !== 'index.html');
    assert.deepEqual(leftovers, [], 'no temporary files left');
  });
});

test('a report that cannot be written is a warning on run-finished; the run still succeeds', async () => {
  const root = await mkdtemp(join(tmpdir(), 'geobatch-report-fail-'));
  try {
    const runUri = join(root, 'run');
    const p = plan(runUri, [stage('only', {})], {});
    await storage.writeAtomic(runLayout(runUri).plan, JSON.stringify(p));
    // a file where the report folder should be: the page cannot be written
    await writeFile(join(runUri, 'report'), 'in the way');
    let finished: Extract<RunEvent, { type: 'run-finished' }> | undefined;
    const summary = await runLocal({
      storage,
      plan: p,
      onEvent: (e) => {
        if (e.type === 'run-finished') finished = e;
      },
    });
    assert.equal(summary.state, 'succeeded');
    assert.ok(finished?.report && 'error' in finished.report, JSON.stringify(finished?.report));
    assert.match(finished.report.error, /report/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

describe('geobatch report on a run in S3 (s3rver)', () => {
  let root: string;
  let s3: S3rverHandle;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'geobatch-report-s3-'));
    s3 = await startS3rver();
  });
  after(async () => {
    await s3.stop();
    await rm(root, { recursive: true, force: true });
  });

  test('reads the records through S3, writes <run>/report/index.html there; --json gives the same facts', async () => {
    const { S3Client, PutObjectCommand, GetObjectCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client(s3.clientConfig);
    const bucket = await s3.createBucket();
    // a run's records as Batch tasks leave them in S3: run locally, then upload under the run URI
    const local = join(root, 'run');
    const { plan: localPlan } = failingPlan(local);
    await storage.writeAtomic(runLayout(local).plan, JSON.stringify(localPlan));
    await runLocal({ storage, plan: localPlan, concurrency: 2, report: false });
    const runUri = `s3://${bucket}/runs/test/r1`;
    const files = (await readdir(local, { recursive: true, withFileTypes: true })).filter((f) => f.isFile());
    for (const f of files) {
      const path = join(f.parentPath, f.name);
      const key = `runs/test/r1/${relative(local, path)}`;
      let body = await readFile(path);
      if (key.endsWith('plan.json')) body = Buffer.from(JSON.stringify({ ...localPlan, runUri }));
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    }
    const env = isolatedEnv({
      GEOBATCH_S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
    });
    const r = await geobatch(['report', runUri, '--json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const facts = JSON.parse(r.stdout) as ReportFacts & { report: string };
    assert.equal(facts.report, `${runUri}/report/index.html`);
    assert.deepEqual(
      facts.stages.map((s) => [s.name, s.state, s.tasks, s.done, s.failed, s.pending, s.failures.length]),
      [
        ['a', 'failed', 4, 3, 1, 0, 1],
        ['b', 'blocked', 4, 3, 0, 1, 0],
        ['c', 'blocked', 1, 0, 0, 1, 0],
        ['d', 'done', 1, 1, 0, 0, 0],
      ],
    );
    const got = await client.send(
      new GetObjectCommand({ Bucket: bucket, Key: 'runs/test/r1/report/index.html' }),
    );
    assert.equal(got.ContentType, 'text/html; charset=utf-8');
    const html = await got.Body!.transformToString();
    assert.deepEqual(wellFormedProblems(html), []);
    // the page says what --json says
    for (const s of facts.stages) {
      assert.match(
        html,
        new RegExp(
          `<tr data-stage="${s.name}">.*?>${s.state}</span></td><td class="num">${s.tasks}</td><td class="num">${s.done}</td><td class="num">${s.failed}</td><td class="num">${s.pending}</td>`,
        ),
      );
      for (const f of s.failures) assert.ok(html.includes(escapeHtml(f.error)));
    }
    const text = await geobatch(['report', runUri], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, `report: ${runUri}/report/index.html\n`);
    client.destroy();
  });
});
