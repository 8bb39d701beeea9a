/**
 * Which source values (xView type ids, a GeoJSON property's values) become which COCO
 * categories. Explicit on purpose: values a map does not know are reported, never silently
 * dropped, and a map can exclude a value on purpose (null). Pure: callers read the files and
 * pass their text.
 */
import { LabelError } from './errors.js';

/** A COCO category. */
export interface Category {
  readonly id: number;
  readonly name: string;
}

/**
 * The 60 xView classes (type_id, name) in the order the usual 0..59 remapping follows; the
 * preset gives them COCO ids 1..60 in this order (id = usual index + 1). Type ids 75 and 82 are
 * noise in the xView data and are not classes.
 */
export const XVIEW_CLASSES: readonly (readonly [number, string])[] = [
  [11, 'Fixed-wing Aircraft'],
  [12, 'Small Aircraft'],
  [13, 'Cargo Plane'],
  [15, 'Helicopter'],
  [17, 'Passenger Vehicle'],
  [18, 'Small Car'],
  [19, 'Bus'],
  [20, 'Pickup Truck'],
  [21, 'Utility Truck'],
  [23, 'Truck'],
  [24, 'Cargo Truck'],
  [25, 'Truck w/Box'],
  [26, 'Truck Tractor'],
  [27, 'Trailer'],
  [28, 'Truck w/Flatbed'],
  [29, 'Truck w/Liquid'],
  [32, 'Crane Truck'],
  [33, 'Railway Vehicle'],
  [34, 'Passenger Car'],
  [35, 'Cargo Car'],
  [36, 'Flat Car'],
  [37, 'Tank car'],
  [38, 'Locomotive'],
  [40, 'Maritime Vessel'],
  [41, 'Motorboat'],
  [42, 'Sailboat'],
  [44, 'Tugboat'],
  [45, 'Barge'],
  [47, 'Fishing Vessel'],
  [49, 'Ferry'],
  [50, 'Yacht'],
  [51, 'Container Ship'],
  [52, 'Oil Tanker'],
  [53, 'Engineering Vehicle'],
  [54, 'Tower crane'],
  [55, 'Container Crane'],
  [56, 'Reach Stacker'],
  [57, 'Straddle Carrier'],
  [59, 'Mobile Crane'],
  [60, 'Dump Truck'],
  [61, 'Haul Truck'],
  [62, 'Scraper/Tractor'],
  [63, 'Front loader/Bulldozer'],
  [64, 'Excavator'],
  [65, 'Cement Mixer'],
  [66, 'Ground Grader'],
  [71, 'Hut/Tent'],
  [72, 'Shed'],
  [73, 'Building'],
  [74, 'Aircraft Hangar'],
  [76, 'Damaged Building'],
  [77, 'Facility'],
  [79, 'Construction Site'],
  [83, 'Vehicle Lot'],
  [84, 'Helipad'],
  [86, 'Storage Tank'],
  [89, 'Shipping container lot'],
  [91, 'Shipping Container'],
  [93, 'Pylon'],
  [94, 'Tower'],
];

/** Source values to categories; `null` marks a value excluded on purpose. */
export class CategoryMap {
  private readonly byValue: ReadonlyMap<string, Category | null>;
  /** Categories in id order. */
  readonly categories: readonly Category[];

  constructor(
    entries: Iterable<readonly [string, Category | null]>,
    /** Where the map came from, for summaries ("built-in xview preset (60 classes)"). */
    readonly source: string,
    /** The category of every value, when there is one for all. */
    private readonly every?: Category,
  ) {
    this.byValue = new Map(entries);
    const byId = new Map<number, Category>();
    if (every) byId.set(every.id, every);
    for (const c of this.byValue.values()) if (c) byId.set(c.id, c);
    this.categories = [...byId.values()].sort((a, b) => a.id - b.id);
  }

  /** The category of a source value: a category, null (excluded on purpose) or undefined (unknown). */
  lookup(value: unknown): Category | null | undefined {
    if (this.every) return this.every;
    if (value === undefined || value === null) return undefined;
    return this.byValue.get(String(value));
  }
}

/** The built-in xView preset: the 60 classes, COCO ids 1..60. */
export function xviewCategories(): CategoryMap {
  return new CategoryMap(
    XVIEW_CLASSES.map(([typeId, name], i) => [String(typeId), { id: i + 1, name }] as const),
    'built-in xview preset (60 classes)',
  );
}

/** One category for every feature. */
export function singleCategory(name: string): CategoryMap {
  return new CategoryMap([], `every feature is '${name}'`, { id: 1, name });
}

/** Categories for the distinct values seen, ids 1..n in sorted order (numbers numerically). */
export function categoriesFromValues(values: Iterable<unknown>, field: string): CategoryMap {
  const distinct = [...new Set([...values].filter((v) => v !== undefined && v !== null).map(String))];
  const numeric = distinct.every((v) => v.trim() !== '' && Number.isFinite(Number(v)));
  distinct.sort(numeric ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return new CategoryMap(
    distinct.map((v, i) => [v, { id: i + 1, name: v }] as const),
    `the ${distinct.length} distinct values of '${field}', ids in sorted order`,
  );
}

/**
 * Parses a class-names file: one class per line, `value:name` (xView's xview_class_labels.txt
 * format, e.g. `73:Building`) or just `name` (the value is the name itself); ids 1..n in file
 * order. Blank lines and lines starting with # are skipped.
 */
export function parseClassNames(text: string, file: string): CategoryMap {
  const entries: [string, Category][] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const value = colon === -1 ? line : line.slice(0, colon).trim();
    const name = colon === -1 ? line : line.slice(colon + 1).trim();
    if (value === '' || name === '') {
      throw new LabelError(`${file}: line ${i + 1}: expected 'value:name' or 'name' but got '${raw}'`);
    }
    const earlier = seen.get(value);
    if (earlier !== undefined) {
      throw new LabelError(
        `${file}: line ${i + 1}: value '${value}' was already given a class on line ${earlier}`,
      );
    }
    seen.set(value, i + 1);
    entries.push([value, { id: entries.length + 1, name }]);
  });
  if (entries.length === 0)
    throw new LabelError(`${file}: no classes (expected one 'value:name' or 'name' per line)`);
  return new CategoryMap(entries, `${file} (${entries.length} classes)`);
}

/**
 * Parses a category map: a JSON object from source value to a category name, an
 * `{"id": n, "name": "..."}` object, a category id (named after the value), or null to exclude
 * the value on purpose. Several values may map to one category (merging classes). Names without
 * an id get ids after the largest explicit one, in the order the object lists its keys (as
 * JavaScript reads JSON: integer-like keys first, ascending); give ids for a fixed numbering.
 */
export function parseCategoryMap(text: string, file: string): CategoryMap {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new LabelError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new LabelError(
      `${file}: expected a JSON object from source values to categories, e.g. {"73": "building", "18": {"id": 2, "name": "car"}, "75": null}`,
    );
  }
  const expected = `expected a category name, {"id": <positive integer>, "name": "..."}, a positive integer id, or null`;
  const explicit = new Map<string, number>();
  const idNames = new Map<number, string>();
  const pending: [string, string][] = [];
  const entries = new Map<string, Category | null>();
  const nameFor = (id: number, name: string, key: string): void => {
    const other = idNames.get(id);
    if (other !== undefined && other !== name) {
      throw new LabelError(`${file}: "${key}": id ${id} is already the category '${other}', not '${name}'`);
    }
    const otherId = explicit.get(name);
    if (otherId !== undefined && otherId !== id) {
      throw new LabelError(`${file}: "${key}": category '${name}' already has id ${otherId}, not ${id}`);
    }
    idNames.set(id, name);
    explicit.set(name, id);
  };
  for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
    if (value === null) entries.set(key, null);
    else if (typeof value === 'string' && value.trim() !== '') pending.push([key, value]);
    else if (typeof value === 'number' && Number.isInteger(value) && value > 0) {
      nameFor(value, idNames.get(value) ?? key, key);
      entries.set(key, { id: value, name: idNames.get(value)! });
    } else if (
      typeof value === 'object' &&
      !Array.isArray(value) &&
      Number.isInteger((value as { id?: unknown }).id) &&
      (value as { id: number }).id > 0 &&
      typeof (value as { name?: unknown }).name === 'string'
    ) {
      const { id, name } = value as { id: number; name: string };
      nameFor(id, name, key);
      entries.set(key, { id, name });
    } else {
      throw new LabelError(`${file}: "${key}": ${expected} but got ${JSON.stringify(value)}`);
    }
  }
  let next = Math.max(0, ...idNames.keys()) + 1;
  for (const [key, name] of pending) {
    let id = explicit.get(name);
    if (id === undefined) {
      id = next++;
      explicit.set(name, id);
      idNames.set(id, name);
    }
    entries.set(key, { id, name });
  }
  if (entries.size === 0) throw new LabelError(`${file}: the category map is empty`);
  // keep file order for lookups; categories are listed by id
  const ordered = Object.keys(json as Record<string, unknown>).map((k) => [k, entries.get(k)!] as const);
  const count = new Set([...entries.values()].filter((c) => c).map((c) => c!.id)).size;
  return new CategoryMap(ordered, `${file} (${count} categories)`);
}
