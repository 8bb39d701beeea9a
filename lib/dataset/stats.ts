/**
 * Dataset statistics (`stats.json`): per split and class the annotations and the chips that
 * have the class, chips without labels, the label co-occurrence matrix (chips on which both
 * classes occur; the diagonal is the chips with the class) and the distribution of annotation
 * areas (px², quantiles by linear interpolation). Pure.
 */
import type { DatasetCategory } from './categories.js';
import { imageLabels, type SplitCoco } from './labels.js';

export const AREA_QUANTILES = [0, 0.05, 0.25, 0.5, 0.75, 0.95, 1] as const;

export interface AreaDistribution {
  readonly count: number;
  /** `p0` (min), `p5`, `p25`, `p50`, `p75`, `p95`, `p100` (max); absent when there are no annotations. */
  readonly quantiles?: Readonly<Record<string, number>>;
}

export interface ClassCounts {
  readonly annotations: number;
  readonly chips: number;
}

export interface SplitStats {
  readonly scenes: number;
  readonly chips: number;
  readonly annotations: number;
  readonly chipsWithoutLabels: number;
  /** By class name, in category order. */
  readonly classes: Readonly<Record<string, ClassCounts>>;
  /** [i][j]: chips on which categories[i] and categories[j] both occur. */
  readonly cooccurrence: readonly (readonly number[])[];
}

export interface DatasetStats {
  readonly categories: readonly string[];
  readonly splits: Readonly<Record<string, SplitStats>>;
  readonly total: SplitStats;
  /** Annotation areas, all classes together and per class. */
  readonly area: AreaDistribution & { readonly byClass: Readonly<Record<string, AreaDistribution>> };
}

/** The q-quantile of sorted values, interpolating linearly between neighbours. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of no values');
  const at = q * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

function areaDistribution(values: number[]): AreaDistribution {
  if (values.length === 0) return { count: 0 };
  const sorted = values.sort((a, b) => a - b);
  const quantiles = Object.fromEntries(
    AREA_QUANTILES.map((q) => [`p${Math.round(q * 100)}`, Math.round(quantile(sorted, q) * 100) / 100]),
  );
  return { count: sorted.length, quantiles };
}

interface Accumulator {
  scenes: Set<string>;
  chips: number;
  annotations: number;
  chipsWithoutLabels: number;
  perClass: { annotations: number; chips: number }[];
  cooccurrence: number[][];
}

function accumulator(k: number): Accumulator {
  return {
    scenes: new Set(),
    chips: 0,
    annotations: 0,
    chipsWithoutLabels: 0,
    perClass: Array.from({ length: k }, () => ({ annotations: 0, chips: 0 })),
    cooccurrence: Array.from({ length: k }, () => new Array<number>(k).fill(0)),
  };
}

function finish(acc: Accumulator, categories: readonly DatasetCategory[]): SplitStats {
  return {
    scenes: acc.scenes.size,
    chips: acc.chips,
    annotations: acc.annotations,
    chipsWithoutLabels: acc.chipsWithoutLabels,
    classes: Object.fromEntries(categories.map((c, i) => [c.name, acc.perClass[i]!])),
    cooccurrence: acc.cooccurrence,
  };
}

export function datasetStats(
  splits: readonly SplitCoco[],
  categories: readonly DatasetCategory[],
): DatasetStats {
  const k = categories.length;
  const index = new Map(categories.map((c, i) => [c.id, i]));
  const total = accumulator(k);
  const areas: number[] = [];
  const areasByClass: number[][] = categories.map(() => []);
  const splitStats: Record<string, SplitStats> = {};
  for (const { split, coco } of splits) {
    const acc = accumulator(k);
    for (const target of [acc, total]) {
      for (const image of coco.images) target.scenes.add(image.scene);
      target.chips += coco.images.length;
      target.annotations += coco.annotations.length;
    }
    for (const a of coco.annotations) {
      const i = index.get(a.category_id)!;
      acc.perClass[i]!.annotations++;
      total.perClass[i]!.annotations++;
      areas.push(a.area);
      areasByClass[i]!.push(a.area);
    }
    for (const labels of imageLabels(coco)) {
      const present = [...labels].map((id) => index.get(id)!).sort((a, b) => a - b);
      for (const target of [acc, total]) {
        if (present.length === 0) target.chipsWithoutLabels++;
        for (const i of present) {
          target.perClass[i]!.chips++;
          for (const j of present) target.cooccurrence[i]![j]!++;
        }
      }
    }
    splitStats[split] = finish(acc, categories);
  }
  return {
    categories: categories.map((c) => c.name),
    splits: splitStats,
    total: finish(total, categories),
    area: {
      ...areaDistribution(areas),
      byClass: Object.fromEntries(categories.map((c, i) => [c.name, areaDistribution(areasByClass[i]!)])),
    },
  };
}
