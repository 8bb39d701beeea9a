/**
 * Everything that can be checked in a pipeline file before its inputs are listed: the schema,
 * each stage's params against its catalog job, and the graph rules (what foreach and needs
 * name, cycles, Batch's dependency limit). Issues are collected, never thrown one at a time.
 */
import { catalog, isJobName, jobsWithParts, type CatalogEntry } from '../../jobs/catalog.js';
import type { IssueDraft, YamlPath } from './errors.js';
import { formatValue, listNames, suggestion, zodIssuesToDrafts } from './issues.js';
import { inputJsonSchema, type JsonSchema } from './json-schema.js';
import { BATCH_LIMITS, pipelineSpecSchema, type PipelineSpec } from './spec.js';

export type Validation =
  { readonly ok: true; readonly spec: PipelineSpec } | { readonly ok: false; readonly issues: IssueDraft[] };

export interface ValidateOptions {
  /**
   * Validate each stage's params against its catalog job and replace them by the result
   * (defaults filled). Off when re-checking a spec that was already validated, since a job's
   * schema may transform its params and need not accept its own output.
   * @default true
   */
  readonly params?: boolean;
}

type Raw = Record<string, unknown>;

function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

let specJsonSchema: JsonSchema | undefined;
const paramsJsonSchemas = new Map<string, JsonSchema>();

/** The catalog entry of a job name (any string: the catalog is a plain record at run time). */
export function catalogEntry(job: string): CatalogEntry | undefined {
  return isJobName(job) ? (catalog as Record<string, CatalogEntry>)[job] : undefined;
}

function paramsJsonSchema(job: string, entry: CatalogEntry): JsonSchema {
  let schema = paramsJsonSchemas.get(job);
  if (!schema) paramsJsonSchemas.set(job, (schema = inputJsonSchema(entry.params)));
  return schema;
}

/** A stage as far as the graph rules care, read leniently from unvalidated input. */
interface StageRefs {
  readonly name: string;
  readonly foreach?: string;
  readonly needs: readonly { readonly name: string; readonly index: number }[];
  readonly itemsPerTask?: number;
  readonly tasksPerItem?: number;
  /** Of its catalog job, when the job is known. */
  readonly granularity?: CatalogEntry['granularity'];
}

/** Whether a stage splits each item over several tasks (its tasks are then not one per item). */
function isSplit(stage: StageRefs | undefined): boolean {
  return stage?.tasksPerItem !== undefined && stage.tasksPerItem > 1;
}

function stageRefs(stages: Raw): StageRefs[] {
  return Object.entries(stages).map(([name, raw]) => {
    const stage = isRecord(raw) ? raw : {};
    const needs = Array.isArray(stage.needs) ? stage.needs : [];
    const granularity = typeof stage.job === 'string' ? catalogEntry(stage.job)?.granularity : undefined;
    return {
      name,
      ...(granularity ? { granularity } : {}),
      ...(typeof stage.foreach === 'string' ? { foreach: stage.foreach } : {}),
      needs: needs.flatMap((need, index) => (typeof need === 'string' ? [{ name: need, index }] : [])),
      ...(typeof stage.itemsPerTask === 'number' ? { itemsPerTask: stage.itemsPerTask } : {}),
      ...(typeof stage.tasksPerItem === 'number' ? { tasksPerItem: stage.tasksPerItem } : {}),
    };
  });
}

/** Checks a pipeline (parsed YAML or a spec built in code) and returns the validated spec or every issue found. */
export function validatePipeline(input: unknown, options: ValidateOptions = {}): Validation {
  const checkParams = options.params ?? true;
  const issues: IssueDraft[] = [];
  const parsed = pipelineSpecSchema.safeParse(input);
  if (!parsed.success) {
    specJsonSchema ??= inputJsonSchema(pipelineSpecSchema);
    issues.push(...zodIssuesToDrafts(parsed.error.issues, { schema: specJsonSchema, input, prefix: [] }));
  }

  const root = isRecord(input) ? input : {};
  const stages = isRecord(root.stages) ? root.stages : {};
  const inputs = isRecord(root.inputs) ? root.inputs : {};
  const params: Record<string, Record<string, unknown>> = {};

  for (const [name, raw] of Object.entries(stages)) {
    if (!isRecord(raw) || typeof raw.job !== 'string') continue;
    const entry = catalogEntry(raw.job);
    if (!entry) continue;
    const at: YamlPath = ['stages', name];
    if (checkParams && (raw.params === undefined || isRecord(raw.params))) {
      const given = raw.params ?? {};
      const result = entry.params.safeParse(given);
      if (result.success) params[name] = result.data as Record<string, unknown>;
      else {
        const schema = paramsJsonSchema(raw.job, entry);
        issues.push(
          ...zodIssuesToDrafts(result.error.issues, { schema, input: given, prefix: [...at, 'params'] }),
        );
      }
    }
    if (entry.granularity === 'item' && raw.foreach === undefined) {
      issues.push({
        path: [...at, 'foreach'],
        message: `expected an input set or stage to run over (job '${raw.job}' runs once per item) but it is missing`,
      });
    }
    if (typeof raw.tasksPerItem === 'number' && raw.tasksPerItem > 1 && entry.parts !== true) {
      issues.push({
        path: [...at, 'tasksPerItem'],
        value: raw.tasksPerItem,
        message: `expected 1 but got ${formatValue(raw.tasksPerItem)}: job '${raw.job}' cannot split an item into parts (only ${listNames(jobsWithParts)} can)`,
      });
    }
    if (entry.granularity === 'stage' && raw.foreach !== undefined) {
      const hint =
        typeof raw.foreach === 'string' && Object.hasOwn(stages, raw.foreach)
          ? `; to wait for stage '${raw.foreach}', use needs: [${raw.foreach}]`
          : '';
      issues.push({
        path: [...at, 'foreach'],
        value: raw.foreach,
        message: `job '${raw.job}' runs once for the whole stage, so it takes no foreach${hint}`,
      });
    }
  }

  issues.push(...graphIssues(stageRefs(stages), Object.keys(inputs)));

  if (issues.length > 0 || !parsed.success) return { ok: false, issues };
  if (!checkParams) return { ok: true, spec: parsed.data };
  const spec: PipelineSpec = {
    ...parsed.data,
    stages: Object.fromEntries(
      Object.entries(parsed.data.stages).map(([name, stage]) => [
        name,
        { ...stage, params: params[name] ?? stage.params },
      ]),
    ),
  };
  return { ok: true, spec };
}

/** The graph rules: foreach/needs targets, duplicates, Batch's dependency limit, itemsPerTask, tasksPerItem, cycles. */
function graphIssues(stages: readonly StageRefs[], inputSets: readonly string[]): IssueDraft[] {
  const issues: IssueDraft[] = [];
  const byName = new Map(stages.map((stage) => [stage.name, stage]));
  const stageNames = stages.map((stage) => stage.name);

  for (const stage of stages) {
    if (inputSets.includes(stage.name)) {
      issues.push({
        path: ['stages', stage.name],
        target: 'key',
        value: stage.name,
        message: `'${stage.name}' is also an input set; a name must be either a stage or an input set, so that foreach is unambiguous`,
      });
    }
  }

  for (const stage of stages) {
    const at: YamlPath = ['stages', stage.name];
    const { foreach } = stage;
    if (foreach !== undefined && !byName.has(foreach) && !inputSets.includes(foreach)) {
      issues.push({
        path: [...at, 'foreach'],
        value: foreach,
        message:
          `expected an input set (${listNames(inputSets)}) or a stage (${listNames(stageNames)}) but got ${formatValue(foreach)}` +
          suggestion(foreach, [...inputSets, ...stageNames]),
      });
    }
    const over = foreach === undefined ? undefined : byName.get(foreach);
    // Only when the stage runs over items and its target runs as one task on purpose; other cases have their own issue.
    if (over && over.granularity === 'stage' && stage.granularity === 'item' && over.foreach === undefined) {
      issues.push({
        path: [...at, 'foreach'],
        value: foreach,
        message: `expected a stage that runs over items, but '${over.name}' runs as one task; use needs: [${over.name}] to wait for it`,
      });
    }
    const seen = new Set<string>();
    for (const need of stage.needs) {
      const path: YamlPath = [...at, 'needs', need.index];
      if (!byName.has(need.name)) {
        const what = inputSets.includes(need.name)
          ? `, which is an input set; use foreach to run over its items`
          : suggestion(need.name, stageNames);
        issues.push({
          path,
          value: need.name,
          message: `expected a stage (${listNames(stageNames)}) but got ${formatValue(need.name)}${what}`,
        });
      } else if (need.name === foreach) {
        issues.push({
          path,
          value: need.name,
          message: `'${need.name}' is already this stage's foreach, which waits for it task by task (N_TO_N); remove it from needs, or remove foreach to wait for the whole stage`,
        });
      } else if (seen.has(need.name)) {
        issues.push({ path, value: need.name, message: `'${need.name}' is listed twice in needs` });
      }
      seen.add(need.name);
    }
    const count = seen.size + (foreach !== undefined && byName.has(foreach) && !seen.has(foreach) ? 1 : 0);
    if (count > BATCH_LIMITS.maxDependencies) {
      issues.push({
        path: [...at, 'needs'],
        message: `expected at most ${BATCH_LIMITS.maxDependencies} dependencies (foreach and needs together; an AWS Batch limit) but got ${count}`,
      });
    }
    if (stage.itemsPerTask !== undefined && foreach === undefined) {
      issues.push({
        path: [...at, 'itemsPerTask'],
        value: stage.itemsPerTask,
        message: 'itemsPerTask applies only to a stage with foreach; this stage runs as one task',
      });
    }
    if (over && isSplit(over)) {
      issues.push({
        path: [...at, 'foreach'],
        value: foreach,
        message: `expected a stage with one task per item, but '${over.name}' splits each item into ${over.tasksPerItem} tasks (tasksPerItem: ${over.tasksPerItem}), so no stage can run task for task after it; use needs: [${over.name}] to wait for the whole stage`,
      });
    }
    if (stage.tasksPerItem !== undefined && foreach === undefined) {
      issues.push({
        path: [...at, 'tasksPerItem'],
        value: stage.tasksPerItem,
        message: 'tasksPerItem applies only to a stage with foreach; this stage runs as one task',
      });
    }
    if (isSplit(stage) && stage.itemsPerTask !== undefined && stage.itemsPerTask !== 1) {
      issues.push({
        path: [...at, 'itemsPerTask'],
        value: stage.itemsPerTask,
        message: `expected 1 (or no itemsPerTask) because tasksPerItem is ${stage.tasksPerItem}: a task of a split stage handles one part of one item, but got ${formatValue(stage.itemsPerTask)}`,
      });
    }
    // a split stage waits for the whole stage it runs over (FAN_IN), so it does not inherit its grouping
    const upstream =
      foreach === undefined || isSplit(stage) ? undefined : explicitItemsPerTask(byName, foreach);
    if (stage.itemsPerTask !== undefined && upstream && upstream.value !== stage.itemsPerTask) {
      issues.push({
        path: [...at, 'itemsPerTask'],
        value: stage.itemsPerTask,
        message: `expected ${upstream.value}, the itemsPerTask of stage '${upstream.stage}' (this stage runs task for task after it), but got ${stage.itemsPerTask}`,
      });
    }
  }

  issues.push(...cycleIssues(stages, byName));
  return issues;
}

/** The nearest explicit itemsPerTask up a chain of foreach stages (a stage inherits its foreach stage's). */
function explicitItemsPerTask(
  byName: ReadonlyMap<string, StageRefs>,
  start: string,
): { readonly stage: string; readonly value: number } | undefined {
  const visited = new Set<string>();
  for (
    let stage = byName.get(start);
    stage && !visited.has(stage.name);
    stage = byName.get(stage.foreach ?? '')
  ) {
    visited.add(stage.name);
    if (stage.itemsPerTask !== undefined) return { stage: stage.name, value: stage.itemsPerTask };
  }
  return undefined;
}

/** Dependencies of a stage that exist, foreach first, each with the path that declares it. */
function edges(
  stage: StageRefs,
  byName: ReadonlyMap<string, StageRefs>,
): { readonly to: string; readonly path: YamlPath }[] {
  const out: { to: string; path: YamlPath }[] = [];
  if (stage.foreach !== undefined && byName.has(stage.foreach)) {
    out.push({ to: stage.foreach, path: ['stages', stage.name, 'foreach'] });
  }
  for (const need of stage.needs) {
    if (byName.has(need.name)) out.push({ to: need.name, path: ['stages', stage.name, 'needs', need.index] });
  }
  return out;
}

/** One issue per strongly connected group of stages, naming its shortest cycle from the stage first in the file. */
function cycleIssues(stages: readonly StageRefs[], byName: ReadonlyMap<string, StageRefs>): IssueDraft[] {
  const issues: IssueDraft[] = [];
  for (const component of stronglyConnected(stages, byName)) {
    const start = component[0]!;
    const members = new Set(component);
    // Breadth-first from `start` back to itself, inside the component, following declared order.
    const previous = new Map<string, { from: string; path: YamlPath }>();
    const queue = [start];
    let closing: YamlPath | undefined;
    let last = start;
    search: while (queue.length > 0) {
      const name = queue.shift()!;
      for (const edge of edges(byName.get(name)!, byName)) {
        if (!members.has(edge.to)) continue;
        if (edge.to === start) {
          closing = edge.path;
          last = name;
          break search;
        }
        if (!previous.has(edge.to)) {
          previous.set(edge.to, { from: name, path: edge.path });
          queue.push(edge.to);
        }
      }
    }
    if (closing === undefined) continue;
    const cycle = [start];
    let first = closing;
    for (let name = last; name !== start; name = previous.get(name)!.from) {
      cycle.splice(1, 0, name);
      first = previous.get(name)!.path;
    }
    cycle.push(start);
    issues.push({
      path: first,
      message: `stages wait for each other in a cycle: ${cycle.join(' -> ')} (each waits for the next)`,
    });
  }
  return issues;
}

/** Groups of stages that wait for each other (Tarjan), each in file order; single stages only when they wait for themselves. */
function stronglyConnected(stages: readonly StageRefs[], byName: ReadonlyMap<string, StageRefs>): string[][] {
  const order = new Map(stages.map((stage, i) => [stage.name, i]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  let counter = 0;

  const connect = (name: string): void => {
    index.set(name, counter);
    low.set(name, counter);
    counter++;
    stack.push(name);
    onStack.add(name);
    for (const { to } of edges(byName.get(name)!, byName)) {
      if (!index.has(to)) {
        connect(to);
        low.set(name, Math.min(low.get(name)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(name, Math.min(low.get(name)!, index.get(to)!));
      }
    }
    if (low.get(name) === index.get(name)) {
      const group: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        group.push(member);
      } while (member !== name);
      const selfLoop = edges(byName.get(name)!, byName).some((edge) => edge.to === name);
      if (group.length > 1 || selfLoop) groups.push(group.sort((a, b) => order.get(a)! - order.get(b)!));
    }
  };

  for (const stage of stages) if (!index.has(stage.name)) connect(stage.name);
  return groups.sort((a, b) => order.get(a[0]!)! - order.get(b[0]!)!);
}
