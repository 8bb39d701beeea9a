/**
 * Tag filters that map OSM elements to label classes. An expression is one or more conditions
 * joined by `&`: `key` or `key=*` (has the key), `key=a|b` (one of these values), `key!=a|b`
 * (has none of them, or lacks the key). Classes come from a YAML/JSON file or inline
 * `class:expression` options, in order: an element takes the first class it matches.
 *
 * A class's geometries: polygons (closed ways, multipolygon relations) and points (nodes) by
 * default; open ways (lines) only when the class asks for them (`lines: true`, or a `+lines`
 * suffix inline), since an open way of an area tag is usually a mapping error.
 */
import { parse as parseYaml } from 'yaml';
import { LabelError } from './errors.js';
import type { OsmTags } from './osm-elements.js';

export type OsmGeometryKind = 'polygon' | 'line' | 'point';

interface Condition {
  readonly key: string;
  /** undefined: any value. */
  readonly values: ReadonlySet<string> | undefined;
  readonly negate: boolean;
}

/** One class and the filters that select it. */
export interface OsmClass {
  readonly name: string;
  readonly expressions: readonly string[];
  readonly geometries: ReadonlySet<OsmGeometryKind>;
  /** Alternatives, each a conjunction of conditions. */
  readonly filters: readonly (readonly Condition[])[];
}

const KEY = /^[A-Za-z0-9_:.-]+$/;

/** Parses one filter expression; a bad one is a {@link LabelError} naming `where` and what is valid. */
export function parseFilterExpression(text: string, where: string): Condition[] {
  const valid = "valid: key, key=*, key=v1|v2, key!=v1|v2, joined by '&', e.g. highway=residential|primary";
  const parts = text.split('&').map((p) => p.trim());
  return parts.map((part) => {
    const m = /^([^=!]+?)\s*(!?=)\s*(.*)$/.exec(part);
    const key = (m ? m[1]! : part).trim();
    if (!KEY.test(key)) {
      throw new LabelError(
        `${where}: bad filter expression ${JSON.stringify(text)}: ${JSON.stringify(key)} is not a tag key; ${valid}`,
      );
    }
    if (!m) return { key, values: undefined, negate: false };
    const value = m[3]!.trim();
    const values = value.split('|').map((v) => v.trim());
    if (value === '' || values.some((v) => v === '')) {
      throw new LabelError(
        `${where}: bad filter expression ${JSON.stringify(text)}: empty value after '${m[2]}'; ${valid}`,
      );
    }
    if (value === '*') {
      if (m[2] === '!=') {
        throw new LabelError(
          `${where}: bad filter expression ${JSON.stringify(text)}: '!=*' is not supported; ${valid}`,
        );
      }
      return { key, values: undefined, negate: false };
    }
    return { key, values: new Set(values), negate: m[2] === '!=' };
  });
}

function conditionHolds(c: Condition, tags: OsmTags): boolean {
  const v = tags[c.key];
  if (c.negate) return v === undefined || !c.values!.has(v);
  if (v === undefined) return false;
  return c.values === undefined || c.values.has(v);
}

/** The first class whose filters the tags match, and the tags its matching filter names. */
export function matchClass(
  classes: readonly OsmClass[],
  tags: OsmTags,
): { cls: OsmClass; matched: Record<string, string> } | undefined {
  for (const cls of classes) {
    for (const filter of cls.filters) {
      if (filter.every((c) => conditionHolds(c, tags))) {
        const matched: Record<string, string> = {};
        for (const c of filter) if (tags[c.key] !== undefined) matched[c.key] = tags[c.key]!;
        return { cls, matched };
      }
    }
  }
  return undefined;
}

function makeClass(name: string, expressions: string[], lines: boolean, where: string): OsmClass {
  if (!/^\S(.*\S)?$/.test(name)) {
    throw new LabelError(`${where}: class name ${JSON.stringify(name)} is empty or has surrounding spaces`);
  }
  if (expressions.length === 0) throw new LabelError(`${where}: class '${name}' has no filter expression`);
  const geometries = new Set<OsmGeometryKind>(['polygon', 'point']);
  if (lines) geometries.add('line');
  return {
    name,
    expressions,
    geometries,
    filters: expressions.map((e) => parseFilterExpression(e, `${where}: class '${name}'`)),
  };
}

/**
 * Parses a classes file (YAML or JSON): a mapping from class name to an expression, a list of
 * them, or `{ match: <expression or list>, lines: true|false }`, e.g.
 * `building: building=*` / `road: { match: highway=residential|primary, lines: true }`.
 */
export function parseClassesFile(text: string, uri: string): OsmClass[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    throw new LabelError(
      `${uri}: not YAML/JSON (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`,
    );
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new LabelError(
      `${uri}: expected a mapping from class names to filter expressions, e.g. 'building: building=*'`,
    );
  }
  const classes: OsmClass[] = [];
  for (const [name, spec] of Object.entries(doc as Record<string, unknown>)) {
    const asList = (v: unknown): string[] | undefined =>
      typeof v === 'string'
        ? [v]
        : Array.isArray(v) && v.every((x) => typeof x === 'string')
          ? (v as string[])
          : undefined;
    let expressions = asList(spec);
    let lines = false;
    if (!expressions && typeof spec === 'object' && spec !== null) {
      const s = spec as Record<string, unknown>;
      expressions = asList(s.match);
      if (s.lines !== undefined && typeof s.lines !== 'boolean') {
        throw new LabelError(
          `${uri}: class '${name}': lines is ${JSON.stringify(s.lines)}; expected true or false`,
        );
      }
      lines = s.lines === true;
    }
    if (!expressions) {
      throw new LabelError(
        `${uri}: class '${name}' is ${JSON.stringify(spec)}; expected an expression, a list of them, or { match: ..., lines: true|false }`,
      );
    }
    classes.push(makeClass(name, expressions, lines, uri));
  }
  if (classes.length === 0) throw new LabelError(`${uri}: no classes defined`);
  return classes;
}

/** Parses inline `--class 'road+lines:highway=residential|primary'` options (`name[+lines]:expression`). */
export function parseInlineClasses(options: readonly string[]): OsmClass[] {
  const byName = new Map<string, { expressions: string[]; lines: boolean }>();
  for (const option of options) {
    const colon = option.indexOf(':');
    if (colon <= 0) {
      throw new LabelError(
        `--class ${JSON.stringify(option)}: expected NAME:EXPRESSION (NAME+lines:EXPRESSION to keep open ways), e.g. building:building=*`,
      );
    }
    let name = option.slice(0, colon).trim();
    const lines = name.endsWith('+lines');
    if (lines) name = name.slice(0, -'+lines'.length);
    const entry = byName.get(name) ?? { expressions: [], lines: false };
    entry.expressions.push(option.slice(colon + 1).trim());
    entry.lines ||= lines;
    byName.set(name, entry);
  }
  return [...byName].map(([name, e]) => makeClass(name, e.expressions, e.lines, '--class'));
}
