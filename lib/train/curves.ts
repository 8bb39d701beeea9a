/**
 * curves.png: training loss per step (thin) and per epoch (points), and the main validation metric
 * per epoch on a second axis; drawn as SVG and rendered to PNG with sharp.
 */
export interface CurvePoint {
  /** Position in epochs: step s of n in epoch e is e - 1 + s / n. */
  readonly x: number;
  readonly y: number;
}

export interface CurveData {
  readonly title: string;
  readonly epochs: number;
  readonly stepLoss: readonly CurvePoint[];
  readonly epochLoss: readonly CurvePoint[];
  readonly metric: readonly CurvePoint[];
  readonly metricName: string;
}

const W = 960;
const H = 540;
const M = { left: 80, right: 90, top: 84, bottom: 70 };
const COLORS = { step: '#9ecae1', epoch: '#2171b5', metric: '#d94801', grid: '#e5e5e5', axis: '#333' };

/** 1, 2, 5 × 10^k ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push(Number(v.toFixed(10)));
  if (ticks[ticks.length - 1]! < hi) ticks.push(ticks[ticks.length - 1]! + step);
  return ticks;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 || v === 0 ? String(Math.round(v)) : String(Number(v.toPrecision(3)));
}

/** The figure as SVG text. */
export function curvesSvg(data: CurveData): string {
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const losses = [...data.stepLoss, ...data.epochLoss].map((p) => p.y).filter(Number.isFinite);
  const lossTicks = niceTicks(0, losses.length ? Math.max(...losses) : 1);
  const lossMax = lossTicks[lossTicks.length - 1]!;
  const xMax = Math.max(1, data.epochs);
  const xTicks = niceTicks(0, xMax, Math.min(10, xMax)).filter((t) => t <= xMax && Number.isInteger(t));
  const sx = (x: number) => M.left + (x / xMax) * pw;
  const sy = (y: number) => M.top + ph - (y / lossMax) * ph;
  const sm = (y: number) => M.top + ph - y * ph;
  const parts: string[] = [];
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2}" y="30" text-anchor="middle" font-size="20" font-weight="bold">${escape(data.title)}</text>`,
  );
  for (const t of lossTicks) {
    parts.push(
      `<line x1="${M.left}" x2="${M.left + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="${COLORS.grid}"/>`,
    );
    parts.push(`<text x="${M.left - 8}" y="${sy(t) + 5}" text-anchor="end" font-size="13">${fmt(t)}</text>`);
  }
  for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    parts.push(
      `<text x="${M.left + pw + 8}" y="${sm(t) + 5}" font-size="13" fill="${COLORS.metric}">${t.toFixed(1)}</text>`,
    );
  }
  for (const t of xTicks) {
    parts.push(
      `<line x1="${sx(t)}" x2="${sx(t)}" y1="${M.top + ph}" y2="${M.top + ph + 5}" stroke="${COLORS.axis}"/>`,
    );
    parts.push(`<text x="${sx(t)}" y="${M.top + ph + 22}" text-anchor="middle" font-size="13">${t}</text>`);
  }
  parts.push(
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="${COLORS.axis}"/>`,
    `<text x="${M.left + pw / 2}" y="${H - 22}" text-anchor="middle" font-size="15">epoch</text>`,
    `<text transform="translate(24 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="15" fill="${COLORS.epoch}">training loss</text>`,
    `<text transform="translate(${W - 24} ${M.top + ph / 2}) rotate(90)" text-anchor="middle" font-size="15" fill="${COLORS.metric}">validation ${escape(data.metricName)}</text>`,
  );
  const path = (points: readonly CurvePoint[], y: (v: number) => number) =>
    points
      .filter((p) => Number.isFinite(p.y))
      .map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)},${y(p.y).toFixed(1)}`)
      .join(' ');
  if (data.stepLoss.length > 1) {
    parts.push(
      `<path d="${path(data.stepLoss, sy)}" fill="none" stroke="${COLORS.step}" stroke-width="1.5"/>`,
    );
  }
  if (data.epochLoss.length) {
    parts.push(
      `<path d="${path(data.epochLoss, sy)}" fill="none" stroke="${COLORS.epoch}" stroke-width="2.5"/>`,
    );
    for (const p of data.epochLoss.filter((q) => Number.isFinite(q.y))) {
      parts.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="5" fill="${COLORS.epoch}"/>`);
    }
  }
  if (data.metric.length) {
    parts.push(
      `<path d="${path(data.metric, sm)}" fill="none" stroke="${COLORS.metric}" stroke-width="2.5" stroke-dasharray="8 4"/>`,
    );
    for (const p of data.metric.filter((q) => Number.isFinite(q.y))) {
      parts.push(
        `<rect x="${sx(p.x) - 5}" y="${sm(p.y) - 5}" width="10" height="10" fill="${COLORS.metric}"/>`,
      );
    }
  }
  const legend: [string, string, string][] = [
    ['loss per step', COLORS.step, ''],
    ['loss per epoch', COLORS.epoch, ''],
    [`${data.metricName} per epoch`, COLORS.metric, '8 4'],
  ];
  // one row under the title, outside the plot, so it never hides a curve
  const widths = legend.map(([label]) => 46 + label.length * 8 + 24);
  let lx = M.left + (pw - widths.reduce((a, b) => a + b, 0)) / 2;
  const ly = 58;
  legend.forEach(([label, color, dash], i) => {
    parts.push(
      `<line x1="${lx}" x2="${lx + 36}" y1="${ly - 5}" y2="${ly - 5}" stroke="${color}" stroke-width="3"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      `<text x="${lx + 44}" y="${ly}" font-size="14">${escape(label)}</text>`,
    );
    lx += widths[i]!;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif">${parts.join('')}</svg>`;
}

/** The figure as PNG bytes. */
export async function renderCurves(data: CurveData): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  return sharp(Buffer.from(curvesSvg(data)))
    .png()
    .toBuffer();
}
