/**
 * The job graph drawn as inline SVG: one box per stage, in columns by topological level, coloured
 * by state, with task counts; one arrow per dependency (dashed for FAN_IN). Pure.
 */
import { escapeHtml } from './escape.js';
import type { ReportStage, ReportStageState } from './facts.js';

/** Fill and stroke of a stage box per state (also the legend's). */
export const stateColours: Readonly<Record<ReportStageState, { fill: string; stroke: string }>> = {
  done: { fill: '#d8f3dc', stroke: '#2d6a4f' },
  failed: { fill: '#ffd6d6', stroke: '#b00020' },
  running: { fill: '#dbeafe', stroke: '#1d4ed8' },
  blocked: { fill: '#fde68a', stroke: '#92400e' },
  pending: { fill: '#eeeeee', stroke: '#666666' },
};

const boxW = 190;
const boxH = 62;
const colGap = 70;
const rowGap = 24;
const pad = 16;

/** Where each stage's box goes: column = level; within a column, ordered by the rows of its dependencies. */
export function layoutGraph(stages: readonly ReportStage[]): {
  readonly positions: ReadonlyMap<string, { x: number; y: number }>;
  readonly width: number;
  readonly height: number;
} {
  // rows within a column follow the mean row of what each stage waits for (fewer crossings)
  const byLevel = new Map<number, ReportStage[]>();
  for (const s of stages) byLevel.set(s.level, [...(byLevel.get(s.level) ?? []), s]);
  const rowOf = new Map<string, number>();
  const rows = new Map<number, number>();
  const positions = new Map<string, { x: number; y: number }>();
  for (const level of [...byLevel.keys()].sort((a, b) => a - b)) {
    const column = byLevel.get(level)!.map((s, i) => {
      const deps = s.dependsOn.map((d) => rowOf.get(d.stage)).filter((r) => r !== undefined);
      return { s, key: deps.length ? deps.reduce((a, b) => a + b, 0) / deps.length : i };
    });
    if (level > 0) column.sort((a, b) => a.key - b.key);
    column.forEach(({ s }, row) => {
      rowOf.set(s.name, row);
      positions.set(s.name, { x: pad + level * (boxW + colGap), y: pad + row * (boxH + rowGap) });
    });
    rows.set(level, column.length);
  }
  const cols = Math.max(1, ...[...rows.keys()].map((l) => l + 1));
  const maxRows = Math.max(1, ...rows.values());
  return {
    positions,
    width: pad * 2 + cols * boxW + (cols - 1) * colGap,
    height: pad * 2 + maxRows * boxH + (maxRows - 1) * rowGap,
  };
}

function fit(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

/** The SVG element (no XML declaration: it is inlined in the page). */
export function graphSvg(stages: readonly ReportStage[]): string {
  const { positions, width, height } = layoutGraph(stages);
  const edges: string[] = [];
  const nodes: string[] = [];
  for (const s of stages) {
    const to = positions.get(s.name)!;
    for (const d of s.dependsOn) {
      const from = positions.get(d.stage);
      if (!from) continue;
      const x1 = from.x + boxW;
      const y1 = from.y + boxH / 2;
      const x2 = to.x - 4;
      const y2 = to.y + boxH / 2;
      const mid = (x1 + x2) / 2;
      edges.push(
        `<path class="edge" data-from="${escapeHtml(d.stage)}" data-to="${escapeHtml(s.name)}" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}" fill="none" stroke="#555" stroke-width="1.5"${d.type === 'FAN_IN' ? ' stroke-dasharray="5,3"' : ''} marker-end="url(#arrow)"><title>${escapeHtml(`${d.stage} → ${s.name} (${d.type})`)}</title></path>`,
      );
    }
    const c = stateColours[s.state];
    const counts = `${s.done}/${s.tasks} done${s.failed ? `, ${s.failed} failed` : ''}`;
    nodes.push(
      `<g class="node" data-stage="${escapeHtml(s.name)}" data-state="${s.state}" transform="translate(${to.x},${to.y})">` +
        `<a href="#stage-${escapeHtml(s.name)}">` +
        `<rect width="${boxW}" height="${boxH}" rx="6" fill="${c.fill}" stroke="${c.stroke}" stroke-width="2"/>` +
        `<text x="10" y="20" font-weight="bold">${escapeHtml(fit(s.name, 24))}</text>` +
        `<text x="10" y="37" fill="#444">${escapeHtml(fit(s.job, 26))} · ${s.state}</text>` +
        `<text x="10" y="53" fill="#444">${escapeHtml(counts)}</text>` +
        `<title>${escapeHtml(`${s.name} (${s.job}): ${s.state}, ${counts}, ${s.pending} pending`)}</title>` +
        `</a></g>`,
    );
  }
  return (
    `<svg class="graph" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>` +
    edges.join('') +
    nodes.join('') +
    `</svg>`
  );
}
