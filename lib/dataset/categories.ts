/**
 * Categories unified across scenes by name: shards written by different label jobs may give
 * one class different ids (or one id different classes); the dataset numbers classes 1..K
 * again and reports every disagreement. Pure.
 */
import type { SceneShard } from './shards.js';

export interface DatasetCategory {
  readonly id: number;
  readonly name: string;
}

export interface UnifiedCategories {
  /** Ids 1..K, ordered by the smallest source id a name had, then by name. */
  readonly categories: readonly DatasetCategory[];
  /** Per scene: source category id -> dataset id (absent: the category was dropped as unused). */
  readonly remap: ReadonlyMap<string, ReadonlyMap<number, number>>;
  /** One line per name with several ids and per id with several names. */
  readonly conflicts: readonly string[];
}

/**
 * @param keep `used` keeps the categories with at least one annotation in some scene; `all`
 *   keeps every category any shard lists (e.g. all 60 xView classes).
 */
export function unifyCategories(
  shards: readonly SceneShard[],
  keep: 'used' | 'all' = 'used',
): UnifiedCategories {
  const idsOfName = new Map<string, Map<number, string[]>>();
  const namesOfId = new Map<number, Map<string, string[]>>();
  const used = new Set<string>();
  for (const shard of shards) {
    const nameOf = new Map(shard.categories.map((c) => [c.id, c.name]));
    for (const c of shard.categories) {
      const ids = idsOfName.get(c.name) ?? new Map<number, string[]>();
      idsOfName.set(c.name, ids);
      ids.set(c.id, [...(ids.get(c.id) ?? []), shard.scene]);
      const names = namesOfId.get(c.id) ?? new Map<string, string[]>();
      namesOfId.set(c.id, names);
      names.set(c.name, [...(names.get(c.name) ?? []), shard.scene]);
    }
    for (const a of shard.annotations) used.add(nameOf.get(a.category_id)!);
  }
  const describe = (m: Map<unknown, string[]>, quote: boolean): string =>
    [...m.entries()]
      .map(([k, scenes]) => `${quote ? `'${String(k)}'` : String(k)} in ${scenes.join(', ')}`)
      .join('; ');
  const conflicts: string[] = [];
  for (const [name, ids] of idsOfName) {
    if (ids.size > 1) conflicts.push(`category '${name}' has different ids: ${describe(ids, false)}`);
  }
  for (const [id, names] of namesOfId) {
    if (names.size > 1) conflicts.push(`category id ${id} has different names: ${describe(names, true)}`);
  }
  const kept = [...idsOfName.entries()]
    .filter(([name]) => keep === 'all' || used.has(name))
    .map(([name, ids]) => ({ name, first: Math.min(...ids.keys()) }))
    .sort((a, b) => a.first - b.first || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const categories = kept.map((c, i) => ({ id: i + 1, name: c.name }));
  const idOfName = new Map(categories.map((c) => [c.name, c.id]));
  const remap = new Map<string, Map<number, number>>();
  for (const shard of shards) {
    const m = new Map<number, number>();
    for (const c of shard.categories) {
      const id = idOfName.get(c.name);
      if (id !== undefined) m.set(c.id, id);
    }
    remap.set(shard.scene, m);
  }
  return { categories, remap, conflicts };
}
