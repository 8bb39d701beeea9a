/**
 * One error shape for every configuration problem: where (environment or descriptor), which
 * field, the value found and the rule it breaks. Users and tests rely on the wording.
 */
import type { z } from 'zod';

export interface ConfigProblem {
  /** `environment 'dev'` or `platform descriptor /geobatch/dev/platform`. */
  readonly where: string;
  /** Dotted path of the field, e.g. `compute.gpu.instanceTypes[0]`; empty for the whole value. */
  readonly field: string;
  readonly value: unknown;
  /** What a valid value looks like, phrased to follow the value: `must be <= 256`. */
  readonly rule: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    super(formatProblems(problems));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatValue(value: unknown): string {
  if (value === undefined) return '(missing)';
  if (typeof value === 'string' || typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function formatProblem(problem: ConfigProblem): string {
  const subject = problem.field === '' ? 'value' : problem.field;
  return `In ${problem.where}: ${subject} = ${formatValue(problem.value)} ${problem.rule}`;
}

function formatProblems(problems: readonly ConfigProblem[]): string {
  if (problems.length === 1 && problems[0]) return formatProblem(problems[0]);
  return `${problems.length} configuration problems:\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * Phrases a zod issue as a rule. Messages written in the schemas (custom checks, regexes) are
 * used as they are; zod's generic messages are rephrased so every error reads the same way.
 */
function ruleOf(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is required';
      if (issue.expected === 'int') return 'must be an integer';
      return `must be ${issue.expected === 'array' ? 'an array' : `a ${issue.expected}`}, not ${describeType(value)}`;
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${String(issue.minimum)} item(s)`;
      if (issue.origin === 'string') return `must have at least ${String(issue.minimum)} character(s)`;
      return `must be ${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${String(issue.maximum)} item(s)`;
      if (issue.origin === 'string') return `must have at most ${String(issue.maximum)} character(s)`;
      return `must be ${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => formatValue(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

/** Turns zod issues into problems; an unknown key becomes one problem naming that key. */
export function problemsFromZod(
  where: string,
  issues: readonly z.core.$ZodIssue[],
  input: unknown,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        problems.push({
          where,
          field: formatPath(path),
          value: valueAt(input, path),
          rule: 'is not a known setting',
        });
      }
      continue;
    }
    if (issue.code === 'invalid_key') {
      const key = issue.path[issue.path.length - 1];
      const parentPath = issue.path.slice(0, -1);
      const inner = issue.issues[0]?.message ?? 'is not allowed';
      problems.push({
        where,
        field: formatPath(parentPath),
        value: valueAt(input, parentPath),
        rule: `has key ${formatValue(key)}, which ${inner}`,
      });
      continue;
    }
    // Cross-field checks report the resolved value (defaults applied), which the raw input may lack.
    const value = 'input' in issue && issue.input !== undefined ? issue.input : valueAt(input, issue.path);
    problems.push({ where, field: formatPath(issue.path), value, rule: ruleOf(issue, value) });
  }
  return problems;
}
