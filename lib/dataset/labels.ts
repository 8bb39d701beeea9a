/**
 * Multi-label encodings per chip (the classes present on it, as scene-classification datasets
 * have them). Pure.
 * - `labels.csv`: `file_name,split,<class 1>,...,<class K>` with 0/1 columns in category order;
 *   RFC 4180 quoting where a value needs it.
 * - `labels.jsonl`: one JSON object per chip, `{"file_name","split","labels":[names]}`, the
 *   sparse form (JSON lines rather than a delimiter-joined column, so no class name needs escaping).
 */
import type { DatasetCategory } from './categories.js';
import type { DatasetCoco } from './merge.js';

export interface SplitCoco {
  readonly split: string;
  readonly coco: DatasetCoco;
}

/** One CSV field, quoted when it holds a comma, quote, CR or LF (quotes doubled). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Per image of one split (in image order): the set of dataset category ids on it. */
export function imageLabels(coco: DatasetCoco): Set<number>[] {
  const labels = coco.images.map(() => new Set<number>());
  for (const a of coco.annotations) labels[a.image_id - 1]!.add(a.category_id);
  return labels;
}

export function multiHotCsv(splits: readonly SplitCoco[], categories: readonly DatasetCategory[]): string {
  const rows = [['file_name', 'split', ...categories.map((c) => c.name)].map(csvField).join(',')];
  for (const { split, coco } of splits) {
    const labels = imageLabels(coco);
    coco.images.forEach((image, i) => {
      const hot = categories.map((c) => (labels[i]!.has(c.id) ? '1' : '0'));
      rows.push([csvField(image.file_name), csvField(split), ...hot].join(','));
    });
  }
  return rows.join('\n') + '\n';
}

export function sparseLabelsJsonl(
  splits: readonly SplitCoco[],
  categories: readonly DatasetCategory[],
): string {
  const lines: string[] = [];
  for (const { split, coco } of splits) {
    const labels = imageLabels(coco);
    coco.images.forEach((image, i) => {
      const names = categories.filter((c) => labels[i]!.has(c.id)).map((c) => c.name);
      lines.push(JSON.stringify({ file_name: image.file_name, split, labels: names }));
    });
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}
