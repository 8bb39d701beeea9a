/** Terminal summaries of label conversions: what was kept and what was dropped, and why. */
import type { GeoLabelsResult, MaskResult } from './geo-labels.js';
import type { XviewConversion } from './xview.js';

const n = (v: number): string => v.toLocaleString('en-US');

/** "75: 1,200, 82: 30" from a count per value, largest first, at most `limit` entries. */
export function topCounts(counts: Readonly<Record<string, number>>, limit = 8): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const shown = entries.slice(0, limit).map(([k, v]) => `${k}: ${n(v)}`);
  if (entries.length > limit) shown.push(`and ${entries.length - limit} more`);
  return shown.join(', ');
}

/** The summary JSON of an xView conversion (written as summary.json next to the shards). */
export function xviewSummaryJson(
  c: XviewConversion,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    source: c.source,
    categories: c.categories,
    images: c.shards.length,
    imagesWithLabels: c.shards.filter((s) => s.dataset.annotations.length > 0).length,
    counts: c.counts,
    unmappedTypeIds: c.unmappedTypeIds,
    missingImages: c.missingImages,
    ...extra,
  };
}

/** Lines for the terminal after an xView conversion. */
export function xviewSummaryText(c: XviewConversion, out: string, seconds: number): string {
  const k = c.counts;
  const withLabels = c.shards.filter((s) => s.dataset.annotations.length > 0).length;
  const dropped = [
    `zero-area ${n(k.zeroArea)}`,
    `outside the image ${n(k.outside)}`,
    `unmapped category ${n(k.unmappedCategory)}${k.unmappedCategory ? ` (type_id ${topCounts(c.unmappedTypeIds)})` : ''}`,
    ...(k.excludedCategory ? [`excluded category ${n(k.excludedCategory)}`] : []),
    `missing image ${n(k.missingImage)}${k.missingImage ? ` (${topCounts(c.missingImages, 5)})` : ''}`,
  ];
  return (
    [
      `labels xview: ${c.source} -> ${out} in ${seconds.toFixed(1)} s`,
      `  features    ${n(k.features)}`,
      `  kept        ${n(k.kept)} (${n(k.clipped)} clipped to their image)`,
      `  dropped     ${dropped.join(', ')}`,
      `  images      ${n(c.shards.length)} (${n(withLabels)} with labels)`,
      `  categories  ${c.categories}`,
      `  wrote       ${n(c.shards.length)} COCO shards (<image>.json) and summary.json`,
    ].join('\n') + '\n'
  );
}

/** Lines for the terminal after a GeoJSON to COCO conversion. */
export function geoLabelsSummaryText(r: GeoLabelsResult, out: string, seconds: number): string {
  const k = r.counts;
  const dropped = [
    `outside the image ${n(k.outside)}`,
    `zero-area ${n(k.zeroArea)}`,
    `unmapped category ${n(k.unmappedCategory)}${k.unmappedCategory ? ` (${topCounts(r.unmappedValues)})` : ''}`,
    ...(k.excludedCategory ? [`excluded category ${n(k.excludedCategory)}`] : []),
    `not polygons ${n(k.unsupportedGeometry)}${k.unsupportedGeometry ? ` (${topCounts(r.unsupportedTypes)})` : ''}`,
  ];
  const lines = [
    `labels geojson: ${r.labels} on ${r.image} -> ${out} in ${seconds.toFixed(1)} s`,
    `  features    ${n(k.features)} (CRS ${r.crs})`,
    `  kept        ${n(k.kept)} (${n(k.clipped)} clipped to the image${k.withHoles ? `, ${n(k.withHoles)} with holes: COCO polygons show outer rings, area excludes holes` : ''})`,
    `  dropped     ${dropped.join(', ')}`,
    `  categories  ${r.categories}`,
  ];
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** Lines for the terminal after rasterising a mask. */
export function maskSummaryText(r: MaskResult, seconds: number): string {
  const k = r.counts;
  const lines = [
    `labels mask: ${r.labels} on ${r.image} -> ${r.output} (${r.width} x ${r.height}, uint8) in ${seconds.toFixed(1)} s`,
    `  features    ${n(k.features)} (CRS ${r.crs})`,
    `  burned      ${n(k.burned)} (values ${topCounts(r.values)})`,
    `  skipped     outside the image ${n(k.outside)}, not polygons ${n(k.unsupportedGeometry)}${k.unmappedCategory ? `, unmapped category ${n(k.unmappedCategory)} (${topCounts(r.unmappedValues)})` : ''}${k.excludedCategory ? `, excluded category ${n(k.excludedCategory)}` : ''}`,
  ];
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}
