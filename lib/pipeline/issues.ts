/**
 * Turns zod issues into messages people can act on, always in one shape:
 * `expected <what would be valid> but got <the value>`, `unknown key 'x', did you mean 'y'? (valid keys: ...)`.
 * What is expected is read from the JSON Schema of the zod schema (ranges, options, patterns), so
 * the wording follows the schema without a table per field.
 */
import type { z } from 'zod';
import type { IssueDraft, YamlPath } from './errors.js';
import { isJsonSchema, type JsonSchema } from './json-schema.js';

type ZodIssue = z.core.$ZodIssue;

/** Context of one validation: the JSON Schema of what was validated, the input, and where it sits in the file. */
export interface IssueContext {
  readonly schema: JsonSchema;
  readonly input: unknown;
  /** Path of `input` in the pipeline file (e.g. `['stages', 'chip', 'params']`). */
  readonly prefix: YamlPath;
}

/** Formats a value the way messages show it: `1.5`, `'abc'`, `null`, `a list of 3 items`, `a mapping`. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  // what `key:` with nothing after it reads as
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return `'${value.length > 60 ? `${value.slice(0, 57)}...` : value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) {
    return value.length === 0
      ? 'an empty list'
      : `a list of ${value.length} item${value.length === 1 ? '' : 's'}`;
  }
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty mapping' : 'a mapping';
  return String(value);
}

/** Lists names for a message: `a, b, c`, or `(none)`. */
export function listNames(names: readonly string[]): string {
  return names.length === 0 ? '(none)' : names.join(', ');
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      row.push(best);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/** The candidate `word` was most likely meant to be (by edit distance, case or prefix), if any is close. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    if (other === lower) return candidate;
    const distance = editDistance(lower, other);
    const longest = Math.max(lower.length, other.length);
    if (distance <= Math.max(1, Math.floor(longest / 3)) && distance < longest && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined || lower.length < 3) return best;
  // A shared stem catches what edit distance misses: 'retry' -> 'retries', 'timeout' -> 'timeoutSeconds'.
  let stem = 0;
  for (const candidate of candidates) {
    const shared = commonPrefix(lower, candidate.toLowerCase());
    if (shared > stem && shared >= Math.min(4, lower.length, candidate.length)) {
      best = candidate;
      stem = shared;
    }
  }
  return best;
}

function commonPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** ` (did you mean 'x'?)`, or '' when nothing is close. */
export function suggestion(word: string, candidates: readonly string[]): string {
  const match = didYouMean(word, candidates);
  return match === undefined ? '' : ` (did you mean '${match}'?)`;
}

/** The value at `path` inside `input`, or undefined. */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

function resolveRef(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return schema;
  const target = valueAt(
    root,
    ref
      .slice(2)
      .split('/')
      .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~')),
  );
  return isJsonSchema(target) ? resolveRef(target, root) : schema;
}

/** The JSON Schema of the node at `path` below `schema`, or undefined when the path leaves the schema. */
export function schemaAt(
  schema: JsonSchema,
  path: readonly PropertyKey[],
  root = schema,
): JsonSchema | undefined {
  const node = resolveRef(schema, root);
  const [segment, ...rest] = path;
  if (segment === undefined) return node;
  for (const keyword of ['anyOf', 'oneOf', 'allOf']) {
    const branches = node[keyword];
    if (!Array.isArray(branches)) continue;
    for (const branch of branches) {
      const found = isJsonSchema(branch) ? schemaAt(branch, path, root) : undefined;
      if (found) return found;
    }
  }
  let next: unknown;
  if (typeof segment === 'number') {
    next = node.items;
  } else if (typeof segment === 'string') {
    const properties = node.properties;
    next =
      isJsonSchema(properties) && Object.hasOwn(properties, segment)
        ? properties[segment]
        : node.additionalProperties;
  }
  return isJsonSchema(next) ? schemaAt(next, rest, root) : undefined;
}

/**
 * `schema` when it has properties, else the branch (of anyOf/oneOf) with properties that `value`
 * fits best: the most of its keys known, then one where `unknown` is close to a known key (the
 * mapping forms of a union, e.g. `{ stac, asset }` and `{ dataset, files }`).
 */
function objectBranch(
  schema: JsonSchema,
  value: unknown,
  unknown: readonly string[],
): JsonSchema | undefined {
  if (isJsonSchema(schema.properties)) return schema;
  const given = isJsonSchema(value) ? Object.keys(value) : [];
  let best: { branch: JsonSchema; score: number } | undefined;
  for (const keyword of ['anyOf', 'oneOf']) {
    const branches = schema[keyword];
    if (!Array.isArray(branches)) continue;
    for (const branch of branches) {
      if (!isJsonSchema(branch) || !isJsonSchema(branch.properties)) continue;
      const names = Object.keys(branch.properties);
      const known = given.filter((key) => names.includes(key)).length;
      const close = unknown.some((key) => didYouMean(key, names) !== undefined) ? 1 : 0;
      const score = known * 2 + close;
      if (best === undefined || score > best.score) best = { branch, score };
    }
  }
  return best?.branch;
}

function literal(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function numberText(schema: JsonSchema): string {
  const base = schema.type === 'integer' ? 'an integer' : 'a number';
  const min = typeof schema.minimum === 'number' ? schema.minimum : undefined;
  const xmin = typeof schema.exclusiveMinimum === 'number' ? schema.exclusiveMinimum : undefined;
  const max = typeof schema.maximum === 'number' ? schema.maximum : undefined;
  const xmax = typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum : undefined;
  const lo = xmin ?? min;
  const hi = xmax ?? max;
  let text = base;
  if (lo !== undefined && hi !== undefined) {
    text += ` in ${xmin === undefined ? '[' : '('}${lo}, ${hi}${xmax === undefined ? ']' : ')'}`;
  } else if (lo !== undefined) {
    text += ` ${xmin === undefined ? '>=' : '>'} ${lo}`;
  } else if (hi !== undefined) {
    text += ` ${xmax === undefined ? '<=' : '<'} ${hi}`;
  }
  if (typeof schema.multipleOf === 'number' && schema.type !== 'integer')
    text += ` (a multiple of ${schema.multipleOf})`;
  return text;
}

function stringText(schema: JsonSchema): string {
  if (typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`;
  const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : undefined;
  if (max === undefined)
    return min === 0
      ? 'a string'
      : min === 1
        ? 'a non-empty string'
        : `a string of at least ${min} characters`;
  if (min === max) return `a string of ${min} characters`;
  return min === 0 ? `a string of at most ${max} characters` : `a string of ${min} to ${max} characters`;
}

/** `a string` -> `strings`, `an integer in [1, 5]` -> `integers in [1, 5]`; undefined when there is no noun. */
function plural(text: string): string | undefined {
  if (text === 'true or false') return 'booleans';
  const match = /^an? (.*?)\b(string|number|integer|mapping|list)\b(.*)$/.exec(text);
  return match ? `${match[1]}${match[2]}s${match[3]}` : undefined;
}

function arrayText(schema: JsonSchema, root: JsonSchema): string {
  const items = isJsonSchema(schema.items) ? expectedOf(schema.items, root) : undefined;
  const nouns = items === undefined ? undefined : plural(items);
  const min = typeof schema.minItems === 'number' ? schema.minItems : 0;
  const max = typeof schema.maxItems === 'number' ? schema.maxItems : undefined;
  let count = '';
  if (max !== undefined) count = min === max ? `exactly ${max} ` : `${min} to ${max} `;
  else if (min > 1) count = `at least ${min} `;
  const text = `${min === 1 && max === undefined ? 'a non-empty list' : 'a list'} of ${count}${nouns ?? 'items'}`;
  if (nouns === undefined && items !== undefined) return `${text}, each ${items}`;
  return count === '' && nouns === undefined ? 'a list' : text;
}

/** What `schema` accepts, in words: `a number in [0, 1)`, `one of a, b`, `a non-empty list of strings`. */
export function expectedOf(
  schema: JsonSchema | undefined,
  root: JsonSchema = schema ?? {},
): string | undefined {
  if (schema === undefined) return undefined;
  const node = resolveRef(schema, root);
  if ('const' in node) return typeof node.const === 'string' ? `'${node.const}'` : literal(node.const);
  if (Array.isArray(node.enum)) {
    return node.enum.length === 1 ? formatValue(node.enum[0]) : `one of ${node.enum.map(literal).join(', ')}`;
  }
  for (const keyword of ['anyOf', 'oneOf']) {
    const branches = node[keyword];
    if (!Array.isArray(branches)) continue;
    const parts = branches.map((branch) => (isJsonSchema(branch) ? expectedOf(branch, root) : undefined));
    if (parts.every((part) => part !== undefined)) return [...new Set(parts)].join(' or ');
    return undefined;
  }
  switch (node.type) {
    case 'integer':
    case 'number':
      return numberText(node);
    case 'string':
      return stringText(node);
    case 'boolean':
      return 'true or false';
    case 'array':
      return arrayText(node, root);
    case 'object':
      return 'a mapping';
    case 'null':
      return 'null';
    default:
      return undefined;
  }
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  null: 'null',
};

/** Fallback wording of a range from the issue itself, when the schema is not at hand. */
function rangeFromIssue(issue: z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall): string {
  const big = issue.code === 'too_big';
  const bound = String(big ? issue.maximum : issue.minimum);
  const op = big ? (issue.inclusive ? 'at most' : 'less than') : issue.inclusive ? 'at least' : 'more than';
  switch (issue.origin) {
    case 'string':
      return `a string of ${op} ${bound} characters`;
    case 'array':
    case 'set':
      return `a list of ${op} ${bound} items`;
    default:
      return `a number ${big ? (issue.inclusive ? '<=' : '<') : issue.inclusive ? '>=' : '>'} ${bound}`;
  }
}

/** Our own custom messages start with 'expected ' and are completed with the value. */
function isOwnMessage(message: string): boolean {
  return message.startsWith('expected ');
}

function expectedButGot(what: string, value: unknown): string {
  return value === undefined ? `${what} but it is missing` : `${what} but got ${formatValue(value)}`;
}

/** Turns zod issues (from validating `context.input`) into issue drafts with human messages. */
export function zodIssuesToDrafts(issues: readonly ZodIssue[], context: IssueContext): IssueDraft[] {
  const drafts: IssueDraft[] = [];
  const { schema, input, prefix } = context;

  const visit = (issue: ZodIssue, base: readonly PropertyKey[]): void => {
    const at = [...base, ...issue.path];
    const path: YamlPath = [...prefix, ...at.map((s) => (typeof s === 'number' ? s : String(s)))];
    const value = valueAt(input, at);
    const leaf = schemaAt(schema, at);
    const expected = (fallback: string): string => `expected ${expectedOf(leaf, schema) ?? fallback}`;

    switch (issue.code) {
      case 'unrecognized_keys': {
        const object = leaf && objectBranch(leaf, value, issue.keys);
        const properties = object && isJsonSchema(object.properties) ? Object.keys(object.properties) : [];
        for (const key of issue.keys) {
          const hint = didYouMean(key, properties);
          drafts.push({
            path: [...path, key],
            target: 'key',
            value: valueAt(value, [key]),
            message:
              `unknown key '${key}'${hint === undefined ? '' : `, did you mean '${hint}'?`}` +
              ` (valid keys: ${listNames(properties)})`,
          });
        }
        return;
      }
      case 'invalid_union': {
        // A branch whose issues all lie deeper matched the shape; its issues say more than "no branch matched".
        const deeper = issue.errors.filter(
          (branch) => branch.length > 0 && branch.every((i) => i.path.length > 0),
        );
        if (deeper.length === 1) {
          for (const inner of deeper[0]!) visit(inner, at);
          return;
        }
        drafts.push({ path, value, message: expectedButGot(expected('something else'), value) });
        return;
      }
      case 'invalid_key': {
        const key = at[at.length - 1];
        const own = issue.issues.find((i) => isOwnMessage(i.message));
        const keySchema = schemaAt(schema, at.slice(0, -1));
        const names =
          keySchema && isJsonSchema(keySchema.propertyNames) ? keySchema.propertyNames : undefined;
        const what = own?.message ?? `expected ${expectedOf(names, schema) ?? 'another key'}`;
        drafts.push({ path, target: 'key', value: key, message: `${what} but got ${formatValue(key)}` });
        return;
      }
      case 'invalid_type': {
        drafts.push({
          path,
          value,
          message: expectedButGot(expected(TYPE_WORDS[issue.expected] ?? issue.expected), value),
        });
        return;
      }
      case 'too_big':
      case 'too_small':
        drafts.push({ path, value, message: expectedButGot(expected(rangeFromIssue(issue)), value) });
        return;
      case 'invalid_value': {
        const options = issue.values.filter((v): v is string => typeof v === 'string');
        const hint = typeof value === 'string' ? suggestion(value, options) : '';
        const what =
          issue.values.length === 1
            ? `expected ${expectedOf({ const: issue.values[0] }) ?? String(issue.values[0])}`
            : `expected one of ${issue.values.map(literal).join(', ')}`;
        drafts.push({ path, value, message: expectedButGot(what, value) + hint });
        return;
      }
      case 'invalid_format': {
        const what = isOwnMessage(issue.message) ? issue.message : expected(`a ${issue.format} string`);
        drafts.push({ path, value, message: expectedButGot(what, value) });
        return;
      }
      case 'not_multiple_of':
        drafts.push({
          path,
          value,
          message: expectedButGot(`expected a multiple of ${String(issue.divisor)}`, value),
        });
        return;
      default:
        drafts.push({
          path,
          value,
          message: isOwnMessage(issue.message) ? expectedButGot(issue.message, value) : issue.message,
        });
    }
  };

  for (const issue of issues) visit(issue, []);
  return drafts;
}
