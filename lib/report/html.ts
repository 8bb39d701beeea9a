/**
 * The run report page: one HTML file with inline CSS and SVG, no scripts and nothing fetched from
 * the network. Everything taken from the run's files is escaped. Pure: facts and image sources in,
 * text out.
 */
import { escapeHtml as esc } from './escape.js';
import type { ReportFacts, ReportStage } from './facts.js';
import { graphSvg, stateColours } from './graph-svg.js';

export interface RenderOptions {
  /** Prefix that turns a path relative to the run folder into a link from the page (`../`). */
  readonly linkBase: string;
  /** `src` of each picture by its run-relative path: a data: URI, or a link when too large to embed. */
  readonly images: ReadonlyMap<string, string>;
}

/** `1.2s`-style duration. */
export function formatMs(v: number): string {
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 60_000) return `${(v / 1000).toFixed(1)} s`;
  if (v < 3_600_000) return `${(v / 60_000).toFixed(1)} min`;
  return `${(v / 3_600_000).toFixed(1)} h`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A run-relative path as a link target: each segment percent-encoded, then escaped for the attribute. */
function href(base: string, path: string): string {
  return esc(base + path.split('/').map(encodeURIComponent).join('/'));
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A cell of a metrics table: numbers to 4 significant digits, null as a dash. */
function scalarText(v: unknown): string | undefined {
  if (v === null) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (typeof v === 'string') return v.length > 120 ? v.slice(0, 119) + '…' : v;
  if (typeof v === 'boolean') return String(v);
  return undefined;
}

/** Scalars of a JSON document as `a.b.c` -> value rows (arrays skipped), at most `limit`. */
function scalarRows(value: unknown, limit = 60): [string, string, boolean][] {
  const rows: [string, string, boolean][] = [];
  const walk = (v: unknown, key: string, depth: number) => {
    if (rows.length >= limit) return;
    const text = scalarText(v);
    if (text !== undefined) rows.push([key, text, typeof v === 'number']);
    else if (isRecord(v) && depth < 3)
      for (const [k, child] of Object.entries(v)) walk(child, key ? `${key}.${k}` : k, depth + 1);
  };
  walk(value, '', 0);
  return rows;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], numeric = new Set<number>()) {
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${numeric.has(i) ? ' class="num"' : ''}>${esc(c)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function keyValues(value: unknown): string {
  const rows = scalarRows(value);
  if (!rows.length) return '<p>(no values)</p>';
  const body = rows
    .map(([k, v, n]) => `<tr><td>${esc(k)}</td><td${n ? ' class="num"' : ''}>${esc(v)}</td></tr>`)
    .join('\n');
  return `<table><thead><tr><th>field</th><th>value</th></tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/** metrics.json as the trainer writes it: final metrics first, one row per epoch, then the rest. */
function trainMetrics(metrics: unknown): string {
  if (!isRecord(metrics) || !isRecord(metrics.final)) return keyValues(metrics);
  const { final, epochs, config, ...rest } = metrics;
  const parts = [
    '<h4>Final metrics</h4>',
    keyValues({ bestEpoch: rest.bestEpoch, threshold: rest.threshold, ...final }),
  ];
  if (Array.isArray(epochs) && epochs.length) {
    const rows = epochs.filter(isRecord);
    const metricKeys = [
      ...new Set(
        rows.flatMap((e) =>
          isRecord(e.metrics)
            ? Object.entries(e.metrics)
                .filter(([, v]) => scalarText(v) !== undefined)
                .map(([k]) => k)
            : [],
        ),
      ),
    ];
    const head = ['epoch', 'trainLoss', 'seconds', ...metricKeys];
    const body = rows.map((e) => [
      ...['epoch', 'trainLoss', 'seconds'].map((k) => scalarText(e[k]) ?? '–'),
      ...metricKeys.map((k) => (isRecord(e.metrics) ? (scalarText(e.metrics[k]) ?? '–') : '–')),
    ]);
    parts.push('<h4>Epochs</h4>', table(head, body, new Set(head.map((_, i) => i))));
  }
  const other: Record<string, unknown> = { ...rest, config };
  delete other.bestEpoch;
  delete other.threshold;
  parts.push(`<details><summary>model, configuration, export check</summary>${keyValues(other)}</details>`);
  return parts.join('\n');
}

/** Bars of the duration histogram, min to max, as a small inline SVG. */
function histogramSvg(s: ReportStage): string {
  if (!s.histogram || !s.durationMs) return '';
  const w = 120;
  const h = 24;
  const top = Math.max(...s.histogram);
  const bw = w / s.histogram.length;
  const bars = s.histogram
    .map((n, i) => {
      const bh = top ? Math.max(n ? 1 : 0, (n / top) * h) : 0;
      return `<rect x="${(i * bw).toFixed(1)}" y="${(h - bh).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${bh.toFixed(1)}" fill="#4a7ab0"/>`;
    })
    .join('');
  const label = `task durations of ${s.name}: ${formatMs(s.durationMs.min)} to ${formatMs(s.durationMs.max)}, ${s.done} tasks`;
  return `<svg class="hist" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img"><title>${esc(label)}</title>${bars}</svg>`;
}

function picture(opts: RenderOptions, path: string, caption: string): string {
  const src = opts.images.get(path);
  if (!src) return '';
  return `<figure><a href="${href(opts.linkBase, path)}"><img src="${esc(src)}" alt="${esc(caption)}"/></a><figcaption>${esc(caption)}</figcaption></figure>`;
}

function datasetSection(stage: ReportStage, opts: RenderOptions): string {
  const stats = stage.json['stats.json'];
  const has = (n: string) => stage.files.some((f) => f.path === `${stage.name}/${n}`);
  if (!isRecord(stats) && !has('dataset.json')) return '';
  const parts = ['<h3>Dataset</h3>'];
  if (isRecord(stats) && isRecord(stats.splits)) {
    const rows: string[][] = [];
    const splits = Object.entries(stats.splits);
    if (isRecord(stats.total)) splits.push(['total', stats.total]);
    for (const [name, v] of splits) {
      if (!isRecord(v)) continue;
      rows.push([
        name,
        ...['scenes', 'chips', 'annotations', 'chipsWithoutLabels'].map((k) => String(v[k] ?? '-')),
      ]);
    }
    parts.push(
      table(['split', 'scenes', 'chips', 'annotations', 'chips without labels'], rows, new Set([1, 2, 3, 4])),
    );
    const classes = isRecord(stats.total) && isRecord(stats.total.classes) ? stats.total.classes : undefined;
    if (classes) {
      const crow = Object.entries(classes).map(([name, c]) => [
        name,
        String(isRecord(c) ? (c.annotations ?? '-') : '-'),
        String(isRecord(c) ? (c.chips ?? '-') : '-'),
      ]);
      parts.push(table(['class', 'annotations', 'chips'], crow, new Set([1, 2])));
    }
  } else if (stage.json['dataset.json'] !== undefined) {
    parts.push(keyValues(stage.json['dataset.json']));
  }
  parts.push(
    '<div class="figures">' +
      picture(opts, `${stage.name}/contact-sheet.png`, 'contact sheet') +
      picture(opts, `${stage.name}/class-distribution.png`, 'class distribution') +
      picture(opts, `${stage.name}/cooccurrence.png`, 'class co-occurrence') +
      '</div>',
  );
  return parts.join('\n');
}

function trainSection(stage: ReportStage, opts: RenderOptions): string {
  const metrics = stage.json['metrics.json'];
  const card = stage.text['MODEL_CARD.md'];
  const curves = picture(opts, `${stage.name}/curves.png`, 'training curves');
  if (metrics === undefined && card === undefined && !curves) return '';
  const parts = ['<h3>Training</h3>'];
  if (curves) parts.push(`<div class="figures">${curves}</div>`);
  if (metrics !== undefined) parts.push(trainMetrics(metrics));
  if (card !== undefined)
    parts.push(`<details><summary>MODEL_CARD.md</summary><pre>${esc(card)}</pre></details>`);
  return parts.join('\n');
}

/** eval.json: task and thresholds, overall scores, then one row per class of each overall kind. */
function evalMetrics(report: unknown): string {
  if (!isRecord(report) || !isRecord(report.overall)) return keyValues(report);
  const head: Record<string, unknown> = { task: report.task, iouThreshold: report.iouThreshold };
  const parts: string[] = [];
  for (const [kind, scores] of Object.entries(report.overall)) {
    if (!isRecord(scores)) {
      head[kind] = scores;
      continue;
    }
    const { perClass, ...overall } = scores;
    head[kind] = overall;
    if (!isRecord(perClass)) continue;
    const classes = Object.entries(perClass).filter((e): e is [string, Record<string, unknown>] =>
      isRecord(e[1]),
    );
    const keys = [
      ...new Set(classes.flatMap(([, c]) => Object.keys(c).filter((k) => scalarText(c[k]) !== undefined))),
    ];
    const rows = classes.map(([name, c]) => [name, ...keys.map((k) => scalarText(c[k]) ?? '–')]);
    parts.push(
      `<h4>${esc(kind)} per class</h4>`,
      table(['class', ...keys], rows, new Set(keys.map((_, i) => i + 1))),
    );
  }
  return [keyValues(head), ...parts].join('\n');
}

function evalSection(stage: ReportStage, opts: RenderOptions): string {
  const report = stage.json['eval.json'];
  const summary = stage.text['eval.md'];
  const pics =
    picture(opts, `${stage.name}/pr-curves.png`, 'precision-recall curves') +
    picture(opts, `${stage.name}/confusion.png`, 'confusion matrix');
  if (report === undefined && summary === undefined && !pics) return '';
  const parts = ['<h3>Evaluation</h3>'];
  if (pics) parts.push(`<div class="figures">${pics}</div>`);
  if (report !== undefined) parts.push(evalMetrics(report));
  if (summary !== undefined)
    parts.push(`<details><summary>eval.md</summary><pre>${esc(summary)}</pre></details>`);
  return parts.join('\n');
}

function failureList(stage: ReportStage, opts: RenderOptions, logPath: (index: number) => string): string {
  if (!stage.failures.length) return '';
  const items = stage.failures.map((f) => {
    const what = f.items.length
      ? ` (${f.items.join(', ')}${f.part ? ` part ${f.part.index + 1}/${f.part.count}` : ''})`
      : '';
    return (
      `<li class="failure"><b>${esc(stage.name)}[${f.index}]</b>${esc(what)}: <code class="error">${esc(f.error)}</code>` +
      (f.logCommand
        ? `<br/>log: <code>${esc(f.log)}</code></li>`
        : `<br/>log: <a href="${href(opts.linkBase, logPath(f.index))}">${esc(f.log)}</a></li>`)
    );
  });
  return `<ul class="failures">\n${items.join('\n')}\n</ul>`;
}

const css = `
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em;margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.meta{color:#555} .badge{padding:.1em .5em;border-radius:.3em;border:1px solid}
table{border-collapse:collapse;margin:.5em 0} th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:middle}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.graph-wrap{overflow-x:auto;border:1px solid #ddd;padding:.5em} .legend span{margin-right:1em}
.legend i{display:inline-block;width:.9em;height:.9em;border:2px solid;margin-right:.3em;vertical-align:middle}
.figures{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} figure img{max-width:560px;max-height:560px;border:1px solid #ddd}
figcaption{color:#555;font-size:.9em} code.error{color:#b00020;white-space:pre-wrap} pre{background:#f7f7f7;padding:.6em;overflow-x:auto;max-height:30em}
li.failure{margin-bottom:.5em}
`;

/** The whole page. */
export function renderReportHtml(facts: ReportFacts, opts: RenderOptions): string {
  const logPath = (stage: string) => (index: number) => `logs/${stage}/${index}.log`;
  const runColour =
    facts.state === 'succeeded'
      ? stateColours.done
      : facts.state === 'failed'
        ? stateColours.failed
        : facts.state === 'running'
          ? stateColours.running
          : stateColours.pending;
  const legend = Object.entries(stateColours)
    .map(([k, c]) => `<span><i style="background:${c.fill};border-color:${c.stroke}"></i>${k}</span>`)
    .join('');
  const stageRows = facts.stages.map((s) => {
    const d = s.durationMs;
    const c = stateColours[s.state];
    return (
      `<tr data-stage="${esc(s.name)}"><td><a href="#stage-${esc(s.name)}">${esc(s.name)}</a></td><td>${esc(s.job)}</td>` +
      `<td><span class="badge" style="background:${c.fill};border-color:${c.stroke}">${s.state}</span></td>` +
      `<td class="num">${s.tasks}</td><td class="num">${s.done}</td><td class="num">${s.failed}</td><td class="num">${s.pending}</td>` +
      `<td class="num">${s.wall ? formatMs(s.wall.ms) : '-'}</td>` +
      `<td class="num">${d ? `${formatMs(d.min)} / ${formatMs(d.median)} / ${formatMs(d.max)}` : '-'}</td>` +
      `<td class="num">${d ? formatMs(d.total) : '-'}</td><td>${histogramSvg(s)}</td></tr>`
    );
  });
  const failures = facts.stages.map((s) => failureList(s, opts, logPath(s.name))).join('\n');
  const failedCount = facts.stages.reduce((n, s) => n + s.failures.length, 0);
  const stageSections = facts.stages.map((s) => {
    const files = s.files.length
      ? `<ul class="outputs">${s.files.map((f) => `<li><a href="${href(opts.linkBase, f.path)}">${esc(f.path)}</a> (${formatBytes(f.size)})</li>`).join('')}</ul>`
      : '';
    return [
      `<section id="stage-${esc(s.name)}" class="stage">`,
      `<h2>${esc(s.name)} <small>(${esc(s.job)})</small></h2>`,
      `<p>${s.done}/${s.tasks} tasks done, ${s.failed} failed, ${s.pending} pending. Outputs: <a href="${href(opts.linkBase, s.name)}/">${esc(s.name)}/</a>` +
        (s.dependsOn.length
          ? `; waits for ${s.dependsOn.map((d) => `${esc(d.stage)} (${d.type === 'FAN_IN' ? 'all tasks' : 'task for task'})`).join(', ')}`
          : '') +
        `</p>`,
      datasetSection(s, opts),
      trainSection(s, opts),
      evalSection(s, opts),
      files,
      `</section>`,
    ]
      .filter(Boolean)
      .join('\n');
  });
  const when = [
    facts.startedAt ? `started ${esc(facts.startedAt)}` : `planned ${esc(facts.createdAt)}`,
    facts.finishedAt ? `finished ${esc(facts.finishedAt)}` : '',
    `report written ${esc(facts.generatedAt)}`,
  ]
    .filter(Boolean)
    .join(' · ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<title>${esc(`${facts.pipeline} run ${facts.runId}: ${facts.state}`)}</title>
<style>${css}</style>
</head>
<body>
<h1>${esc(facts.pipeline)} <span class="badge" style="background:${runColour.fill};border-color:${runColour.stroke}">${esc(facts.state)}</span></h1>
<p class="meta">run <code>${esc(facts.runId)}</code> at <code>${esc(facts.runUri)}</code>${facts.batch ? ` (AWS Batch, environment ${esc(facts.batch.env)}, ${esc(facts.batch.region)}; states as of ${esc(facts.batch.checkedAt)})` : facts.runner ? ` (${esc(facts.runner)} runner)` : ''}<br/>${when}</p>
<h2>Job graph</h2>
<div class="graph-wrap">${graphSvg(facts.stages)}</div>
<p class="legend">${legend} <span>dashed arrow: waits for the whole stage (FAN_IN)</span></p>
<h2>Stages</h2>
<table class="stages"><thead><tr><th>stage</th><th>job</th><th>state</th><th>tasks</th><th>done</th><th>failed</th><th>pending</th><th>wall time</th><th>task min / median / max</th><th>task total</th><th>durations</th></tr></thead><tbody>
${stageRows.join('\n')}
</tbody></table>
<h2>Failures</h2>
${failedCount ? failures : '<p>none</p>'}
${stageSections.join('\n')}
</body>
</html>
`;
}
