/**
 * The JSON Schema (draft 2020-12) of pipeline files, for editors (yaml-language-server) and for
 * reading expectations out of zod schemas when wording error messages.
 */
import { z } from 'zod';
import { catalog, jobNames, type CatalogEntry } from '../../jobs/catalog.js';
import { pipelineSpecSchema } from './spec.js';

/** A JSON Schema object, read through guards (its shape is open). */
export type JsonSchema = { readonly [keyword: string]: unknown };

const SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

/** The JSON Schema of what a user may write for `schema` (its input side: defaults make keys optional). */
export function inputJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    // A refine or a custom type must not make the whole schema fail; such parts accept anything.
    unrepresentable: 'any',
    override: ({ jsonSchema }) => {
      // `.int()` adds the safe-integer range; it documents nothing and clutters editors.
      if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
      if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
    },
  }) as JsonSchema;
}

/** Whether `value` is a JSON Schema object (as opposed to a boolean schema or anything else). */
export function isJsonSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function child(schema: JsonSchema, ...keys: string[]): JsonSchema {
  let node: unknown = schema;
  for (const key of keys) node = isJsonSchema(node) ? node[key] : undefined;
  if (!isJsonSchema(node)) throw new Error(`pipeline JSON Schema: no object at ${keys.join('/')}`);
  return node;
}

/** The JSON Schema of pipeline files, with each catalog job's `params` (if job is X then params is X's). */
export function pipelineJsonSchema(): JsonSchema {
  const entries = catalog as Record<string, CatalogEntry>;
  // One conversion for everything, so that any $defs share one namespace at the root.
  const combined = inputJsonSchema(
    z.object({
      pipeline: pipelineSpecSchema,
      params: z.object(Object.fromEntries(jobNames.map((name) => [name, entries[name]!.params]))),
    }),
  );
  const pipeline = child(combined, 'properties', 'pipeline');
  const stages = child(pipeline, 'properties', 'stages');
  const stage = child(stages, 'additionalProperties');

  const byJob = jobNames.map((name) => {
    const entry = entries[name]!;
    const params = {
      ...child(combined, 'properties', 'params', 'properties', name),
      description: `Parameters of job '${name}': ${entry.description}`,
    };
    // only jobs whose tasks can do one part of an item take a tasksPerItem above 1
    const then: JsonSchema =
      entry.granularity === 'item'
        ? {
            properties: { params, ...(entry.parts === true ? {} : { tasksPerItem: { const: 1 } }) },
            required: ['foreach'],
          }
        : { properties: { params, foreach: false, itemsPerTask: false, tasksPerItem: false } };
    return { if: { properties: { job: { const: name } }, required: ['job'] }, then };
  });

  const { $defs } = combined;
  return {
    $schema: SCHEMA_DIALECT,
    title: 'geobatch pipeline',
    ...pipeline,
    properties: {
      ...child(pipeline, 'properties'),
      stages: { ...stages, additionalProperties: { ...stage, allOf: byJob } },
    },
    ...(isJsonSchema($defs) ? { $defs } : {}),
  };
}
