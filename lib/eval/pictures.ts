/**
 * The pictures and the summary of an evaluation: precision-recall curves per class at IoU 0.5
 * (detection), a confusion matrix normalised by truth rows (segmentation), both SVG rendered to
 * PNG, and eval.md, a table of the scores.
 */
import { classColour, escapeXml, svgToPng } from '../dataset/svg.js';
import type { EvalReport } from './eval.js';

const FONT = 'DejaVu Sans, Verdana, sans-serif';

/** The PR curves as SVG text. */
export function prCurvesSvg(report: EvalReport): string {
  const curves = Object.entries(report.prCurves ?? {});
  const W = 900;
  const legendRows = Math.max(1, curves.length);
  const H = Math.max(560, 140 + legendRows * 22);
  const M = { left: 70, right: 300, top: 60, bottom: 60 };
  const pw = W - M.left - M.right;
  const ph = 560 - M.top - M.bottom;
  const sx = (r: number) => M.left + r * pw;
  const sy = (p: number) => M.top + ph - p * ph;
  const parts: string[] = [`<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(
    `<text x="${M.left + pw / 2}" y="32" text-anchor="middle" font-size="18" font-weight="bold">Precision-recall at IoU 0.5 (AP@0.5 ${fmt(report.overall.detection?.ap50 ?? null)})</text>`,
  );
  for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    parts.push(
      `<line x1="${sx(0)}" x2="${sx(1)}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`,
      `<line x1="${sx(t)}" x2="${sx(t)}" y1="${sy(0)}" y2="${sy(1)}" stroke="#e5e5e5"/>`,
      `<text x="${M.left - 8}" y="${sy(t) + 5}" text-anchor="end" font-size="13">${t.toFixed(1)}</text>`,
      `<text x="${sx(t)}" y="${sy(0) + 20}" text-anchor="middle" font-size="13">${t.toFixed(1)}</text>`,
    );
  }
  parts.push(
    `<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${M.left + pw / 2}" y="${M.top + ph + 45}" text-anchor="middle" font-size="15">recall</text>`,
    `<text transform="translate(22 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="15">precision</text>`,
  );
  curves.forEach(([name, c], i) => {
    const colour = classColour(i);
    const d = c.recall
      .map((r, k) => `${k ? 'L' : 'M'}${sx(r).toFixed(1)},${sy(c.precision[k]!).toFixed(1)}`)
      .join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="2.5"/>`);
    const ap = report.overall.detection?.perClass[name]?.ap50 ?? null;
    const y = M.top + 10 + i * 22;
    parts.push(
      `<line x1="${W - M.right + 20}" x2="${W - M.right + 50}" y1="${y}" y2="${y}" stroke="${colour}" stroke-width="3"/>`,
      `<text x="${W - M.right + 58}" y="${y + 5}" font-size="13">${escapeXml(clipName(name, 22))} ${fmt(ap)}</text>`,
    );
  });
  if (curves.length === 0) {
    parts.push(
      `<text x="${M.left + pw / 2}" y="${M.top + ph / 2}" text-anchor="middle" font-size="15">no class has truth objects</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="${FONT}">${parts.join('')}</svg>`;
}

/** The confusion matrix (rows truth, columns predicted, colour = share of the truth row) as SVG text. */
export function confusionSvg(report: EvalReport): string {
  const c = report.confusion;
  const labels = c?.labels ?? [];
  const n = labels.length;
  const cell = Math.max(36, Math.min(90, Math.floor(640 / Math.max(1, n))));
  const left = 170;
  const top = 150;
  const W = Math.max(620, left + n * cell + 40);
  const H = top + n * cell + 60;
  const parts: string[] = [`<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">Confusion matrix: share of each truth row</text>`,
    `<text x="${W / 2}" y="50" text-anchor="middle" font-size="14">pixels; mean IoU ${fmt(report.overall.segmentation?.meanIou ?? null)}, pixel accuracy ${fmt(report.overall.segmentation?.pixelAccuracy ?? null)}</text>`,
    `<text x="${left + (n * cell) / 2}" y="78" text-anchor="middle" font-size="14">predicted</text>`,
    `<text transform="translate(24 ${top + (n * cell) / 2}) rotate(-90)" text-anchor="middle" font-size="14">truth</text>`,
  );
  labels.forEach((label, j) => {
    const x = left + j * cell + cell / 2;
    parts.push(
      `<text transform="translate(${x + 4} ${top - 8}) rotate(-45)" font-size="12">${escapeXml(clipName(label, 16))}</text>`,
    );
  });
  (c?.counts ?? []).forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    const y = top + i * cell;
    parts.push(
      `<text x="${left - 8}" y="${y + cell / 2 + 4}" text-anchor="end" font-size="12">${escapeXml(clipName(labels[i]!, 20))}</text>`,
    );
    row.forEach((v, j) => {
      const share = total > 0 ? v / total : 0;
      const shade = Math.round(255 - share * 200);
      parts.push(
        `<rect x="${left + j * cell}" y="${y}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#999"/>`,
        `<text x="${left + j * cell + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" font-size="11" fill="${share > 0.6 ? 'white' : 'black'}">${total > 0 ? (share * 100).toFixed(share >= 0.995 || share === 0 ? 0 : 1) + '%' : '-'}</text>`,
      );
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="${FONT}">${parts.join('')}</svg>`;
}

/** pr-curves.png */
export async function prCurvesPng(report: EvalReport): Promise<Buffer> {
  return svgToPng(prCurvesSvg(report));
}

/** confusion.png */
export async function confusionPng(report: EvalReport): Promise<Buffer> {
  return svgToPng(confusionSvg(report));
}

function clipName(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function fmt(v: number | null | undefined): string {
  return v === null || v === undefined ? '-' : v.toFixed(3);
}

/** eval.md: what was compared and the score tables. */
export function evalMarkdown(report: EvalReport): string {
  const lines: string[] = [
    '# Evaluation',
    '',
    `- predictions: \`${report.predictions}\``,
    `- truth: \`${report.truth.uri}\` (${report.truth.kind})`,
    `- task: ${report.task}; scenes evaluated: ${report.scenes.evaluated.length}` +
      (report.scenes.truthWithoutPredictions.length
        ? `; truth without predictions (all FN): ${report.scenes.truthWithoutPredictions.join(', ')}`
        : '') +
      (report.scenes.truthNotPredicted.length
        ? `; truth of scenes not predicted (not scored): ${report.scenes.truthNotPredicted.join(', ')}`
        : '') +
      (report.scenes.predictionsWithoutTruth.length
        ? `; predictions without truth (not scored): ${report.scenes.predictionsWithoutTruth.join(', ')}`
        : ''),
  ];
  if (report.task === 'detection') {
    lines.push(
      `- matching: IoU >= ${report.iouThreshold} for TP/FP/FN, COCO AP@0.5 and AP@[.5:.95] (101-point interpolation, ${report.maxDets === null ? 'no cap on detections per scene' : `maxDets ${report.maxDets}`})${report.scored ? '' : '; the predictions carry no scores (all 1)'}`,
      '',
      '| class | truth | predicted | TP | FP | FN | precision | recall | F1 | AP@0.5 | AP@[.5:.95] |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    const d = report.overall.detection!;
    for (const [name, s] of [...Object.entries(d.perClass), ['**all**', d] as const]) {
      lines.push(
        `| ${name} | ${s.truth} | ${s.predicted} | ${s.tp} | ${s.fp} | ${s.fn} | ${fmt(s.precision)} | ${fmt(s.recall)} | ${fmt(s.f1)} | ${fmt(s.ap50)} | ${fmt(s.ap)} |`,
      );
    }
  } else {
    const s = report.overall.segmentation!;
    lines.push(
      `- pixels: mean IoU ${fmt(s.meanIou)}, pixel accuracy ${fmt(s.pixelAccuracy)}, ${s.nodataPixels} no-data pixels not counted`,
      '',
      '| class | IoU | F1 | precision | recall | TP px | FP px | FN px |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [name, c] of Object.entries(s.perClass)) {
      lines.push(
        `| ${name} | ${fmt(c.iou)} | ${fmt(c.f1)} | ${fmt(c.precision)} | ${fmt(c.recall)} | ${c.tp} | ${c.fp} | ${c.fn} |`,
      );
    }
  }
  const sn = report.overall.spacenet;
  lines.push('');
  if (sn) {
    lines.push(
      '## SpaceNet F1 (polygon IoU >= 0.5, one-to-one)',
      '',
      '| class | TP | FP | FN | precision | recall | F1 |',
      '|---|---:|---:|---:|---:|---:|---:|',
    );
    for (const [name, c] of [...Object.entries(sn.perClass), ['**all**', sn] as const]) {
      lines.push(
        `| ${name} | ${c.tp} | ${c.fp} | ${c.fn} | ${fmt(c.precision)} | ${fmt(c.recall)} | ${fmt(c.f1)} |`,
      );
    }
  } else lines.push('SpaceNet F1: not computed (needs polygons on both sides; mask truth has none).');
  lines.push('', '## Per scene', '');
  if (report.task === 'detection') {
    lines.push(
      '| scene | truth | predicted | precision | recall | F1 | AP@0.5 | AP@[.5:.95] |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const [id, s] of Object.entries(report.perScene)) {
      const d = s.detection!;
      lines.push(
        `| ${id} | ${d.truth} | ${d.predicted} | ${fmt(d.precision)} | ${fmt(d.recall)} | ${fmt(d.f1)} | ${fmt(d.ap50)} | ${fmt(d.ap)} |`,
      );
    }
  } else {
    lines.push('| scene | mean IoU | pixel accuracy | SpaceNet F1 |', '|---|---:|---:|---:|');
    for (const [id, s] of Object.entries(report.perScene)) {
      lines.push(
        `| ${id} | ${fmt(s.segmentation?.meanIou)} | ${fmt(s.segmentation?.pixelAccuracy)} | ${fmt(s.spacenet?.f1)} |`,
      );
    }
  }
  lines.push(
    '',
    `Errors: ${report.errors.features} false positives and negatives in errors.geojson${report.errors.scenesWithoutGeoreference.length ? ` (not for ungeoreferenced scenes ${report.errors.scenesWithoutGeoreference.join(', ')})` : ''}.`,
    '',
  );
  return lines.join('\n');
}
