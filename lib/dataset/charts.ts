/**
 * The dataset's charts as SVG (pure): class distribution (annotations and chips per class, one
 * bar per split) and the label co-occurrence heatmap with counts in the cells.
 */
import type { DatasetStats } from './stats.js';
import { FONT, SPLIT_COLOURS, clip, escapeXml, textWidth } from './svg.js';

const NAME_CHARS = 28;

function splitNames(stats: DatasetStats): string[] {
  return Object.keys(stats.splits).filter((s) => stats.splits[s]!.chips > 0 || s !== 'test');
}

/** Bars of annotations (left panel) and chips (right panel) per class, one bar per split. */
export function classDistributionSvg(stats: DatasetStats): string {
  const splits = splitNames(stats);
  const names = stats.categories.map((n) => clip(n, NAME_CHARS));
  const font = 13;
  const bar = 11;
  const group = splits.length * bar + 10;
  const nameWidth = Math.max(60, ...names.map((n) => textWidth(n, font))) + 12;
  const panel = 300;
  const valueRoom = 56;
  const top = 64;
  const height = top + Math.max(1, names.length) * group + 44;
  const legend = splits.map((s) => {
    const { scenes, chips } = stats.splits[s]!;
    const label = `${s} (${scenes} scene${scenes === 1 ? '' : 's'}, ${chips} chip${chips === 1 ? '' : 's'})`;
    return { s, label, w: 20 + textWidth(label, font) + 20 };
  });
  const width = Math.max(
    nameWidth + 2 * (panel + valueRoom) + 30,
    nameWidth + legend.reduce((n, l) => n + l.w, 0) + 10,
  );
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ${FONT} font-size="${font}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">Class distribution</text>`,
  );
  const panels = [
    { title: 'annotations', value: (c: string, s: string) => stats.splits[s]!.classes[c]!.annotations },
    { title: 'chips with the class', value: (c: string, s: string) => stats.splits[s]!.classes[c]!.chips },
  ];
  panels.forEach((p, pi) => {
    const x0 = nameWidth + pi * (panel + valueRoom + 10);
    const max = Math.max(1, ...stats.categories.flatMap((c) => splits.map((s) => p.value(c, s))));
    out.push(
      `<text x="${x0 + panel / 2}" y="${top - 14}" text-anchor="middle" font-weight="bold">${p.title}</text>`,
    );
    out.push(`<line x1="${x0}" y1="${top - 4}" x2="${x0}" y2="${height - 40}" stroke="#444444"/>`);
    stats.categories.forEach((c, ci) => {
      splits.forEach((s, si) => {
        const v = p.value(c, s);
        const y = top + ci * group + si * bar;
        const w = (v / max) * panel;
        out.push(
          `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${bar - 1}" fill="${SPLIT_COLOURS[s] ?? '#888888'}"/>`,
        );
        out.push(
          `<text x="${(x0 + w + 4).toFixed(1)}" y="${y + bar - 2}" font-size="10" fill="#333333">${v}</text>`,
        );
      });
    });
  });
  names.forEach((n, ci) => {
    const y = top + ci * group + (splits.length * bar) / 2 + 4;
    out.push(`<text x="${nameWidth - 8}" y="${y}" text-anchor="end">${escapeXml(n)}</text>`);
  });
  let lx = nameWidth;
  for (const { s, label, w } of legend) {
    out.push(
      `<rect x="${lx}" y="${height - 28}" width="14" height="14" fill="${SPLIT_COLOURS[s] ?? '#888888'}"/>`,
    );
    out.push(`<text x="${lx + 20}" y="${height - 16}">${escapeXml(label)}</text>`);
    lx += w;
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The co-occurrence matrix of all splits together: cell (i, j) is the chips with both classes. */
export function cooccurrenceSvg(stats: DatasetStats): string {
  const names = stats.categories.map((n) => clip(n, NAME_CHARS));
  const k = Math.max(1, names.length);
  const matrix = stats.total.cooccurrence;
  const font = 13;
  const cell = Math.max(22, Math.min(64, Math.floor(640 / k)));
  const nameWidth = Math.max(60, ...names.map((n) => textWidth(n, font))) + 14;
  const left = nameWidth;
  // column labels are written at -45°: their height is about their width * sin 45°
  const top = 40 + Math.ceil(Math.max(60, ...names.map((n) => textWidth(n, font))) * 0.72);
  // the last column's label leans right past the grid
  const lastLabel = Math.ceil(textWidth(names[names.length - 1] ?? '', font) * 0.72);
  const width = Math.max(left + k * cell + Math.max(40, lastLabel - cell / 2 + 16), 360);
  const height = top + k * cell + 50;
  const max = Math.max(1, ...matrix.flat());
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ${FONT} font-size="${font}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">Label co-occurrence (chips with both classes)</text>`,
  );
  matrix.forEach((row, i) => {
    row.forEach((v, j) => {
      const t = v / max;
      // white -> deep blue; a square root keeps small counts visible next to a large diagonal
      const s = Math.sqrt(t);
      const r = Math.round(255 - s * (255 - 24));
      const g = Math.round(255 - s * (255 - 64));
      const b = Math.round(255 - s * (255 - 140));
      const x = left + j * cell;
      const y = top + i * cell;
      out.push(
        `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="rgb(${r},${g},${b})" stroke="#dddddd"/>`,
      );
      const size = Math.min(13, Math.floor(cell / Math.max(2, String(v).length * 0.62 + 0.6)));
      out.push(
        `<text x="${x + cell / 2}" y="${y + cell / 2 + size / 3}" text-anchor="middle" font-size="${size}" fill="${v === 0 ? '#bbbbbb' : s > 0.55 ? '#ffffff' : '#222222'}">${v}</text>`,
      );
    });
  });
  names.forEach((n, i) => {
    out.push(
      `<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${escapeXml(n)}</text>`,
    );
    const cx = left + i * cell + cell / 2;
    out.push(`<text transform="translate(${cx},${top - 6}) rotate(-45)">${escapeXml(n)}</text>`);
  });
  out.push(
    `<text x="${left}" y="${height - 16}" font-size="11" fill="#555555">diagonal: chips with the class; ${stats.total.chips} chips, ${stats.total.chipsWithoutLabels} without labels</text>`,
  );
  out.push('</svg>');
  return out.join('\n');
}
