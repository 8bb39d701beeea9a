/**
 * The dataset registry: a `datasets.yaml` (local, on S3 or at an http(s) URL) naming datasets by
 * tag, with where their images, labels and masks are, their ground sampling distance, licence and
 * sources, and optional sha256 checksums and sizes per file. Validated with zod; every problem is
 * reported at its YAML path and line, the way pipeline files are.
 */
import { resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatIssue, placeIssues, type IssueDraft, type PipelineSource } from '../pipeline/errors.js';
import { valueAt, zodIssuesToDrafts } from '../pipeline/issues.js';
import { inputJsonSchema, type JsonSchema } from '../pipeline/json-schema.js';
import { YamlSource } from '../pipeline/parse.js';
import { StorageError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import { isHttpUri, isS3Uri } from '../storage/uri.js';
import { RegistryError } from './errors.js';

/** Environment variable naming the registry when no `--registry` is given. */
export const REGISTRY_ENV = 'GEOBATCH_DATASETS';
/** The registry read when neither `--registry` nor GEOBATCH_DATASETS is given (in the working directory). */
export const DEFAULT_REGISTRY = 'datasets.yaml';

/** Dataset tags: what pipelines and commands name a dataset by. */
export const TAG_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** The kinds of files a dataset lists. */
export const FILE_KINDS = ['images', 'labels', 'masks'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

const S3_URI = /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/;
const GLOB_CHARS = /[*?[{]/;

// Messages that start with 'expected ' are completed with ' but got <value>' by issues.ts.
const fileLocation = z
  .string()
  .min(1)
  .refine((value) => !/^s3:/i.test(value) || S3_URI.test(value), {
    error: 'expected a local path or glob, an s3://bucket/key URI or glob, or an http(s) URL',
  })
  .refine((value) => !isHttpUri(value) || !GLOB_CHARS.test(urlPath(value)), {
    error: 'expected an http(s) URL without glob characters (a web server cannot be listed)',
  })
  .describe(
    'A local path, directory or glob (relative to the registry file), an s3:// key, prefix or glob, or one http(s) URL.',
  );

/** The path of an http(s) URL (the whole text when it does not parse: then the URL check reports it). */
function urlPath(value: string): string {
  try {
    return new URL(value).pathname;
  } catch {
    return value;
  }
}

const fileList = z
  .union([fileLocation, z.array(fileLocation).min(1)])
  .transform((value) => (typeof value === 'string' ? [value] : value));

const httpUrl = z
  .string()
  .refine((value) => isHttpUri(value), { error: 'expected an http(s) URL' })
  .describe('Where the dataset comes from, for people: a web page or download URL.');

const fileFacts = z
  .object({
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, { error: 'expected a sha256 checksum (64 lowercase hexadecimal digits)' })
      .optional()
      .describe('SHA-256 of the file, lowercase hex; download verifies it.'),
    size: z.number().int().min(0).optional().describe('Size of the file in bytes.'),
  })
  .strict();

const datasetSchema = z
  .object({
    tag: z
      .string()
      .regex(TAG_PATTERN, {
        error:
          'expected a tag (a lowercase letter or digit, then up to 63 lowercase letters, digits, ., _ or -)',
      })
      .describe('The name pipelines and commands use for this dataset.'),
    description: z.string().min(1).describe('What the dataset is, for people.'),
    images: fileList.describe('Where the images are.'),
    labels: fileList
      .optional()
      .describe('Where the vector labels are (GeoJSON, Shapefile, GeoPackage, FlatGeobuf).'),
    masks: fileList.optional().describe('Where the raster masks are.'),
    gsd: z.number().positive().describe('Ground sampling distance of the images, metres per pixel.'),
    licence: z.string().min(1).describe('The licence the data is published under (e.g. CC-BY-SA-4.0).'),
    source: z
      .union([httpUrl, z.array(httpUrl).min(1)])
      .transform((value) => (typeof value === 'string' ? [value] : value))
      .describe('Where the dataset comes from: one URL or a list.'),
    files: z
      .record(z.string().min(1), fileFacts)
      .optional()
      .describe(
        'Checksums and sizes per file, keyed by the file as the lists resolve it (an absolute path or URI, or a path relative to the registry file).',
      ),
  })
  .strict();

export const registrySchema = z
  .object({
    version: z.literal(1).describe('Registry file format version: 1.'),
    datasets: z.array(datasetSchema).min(1).describe('The datasets, each with a unique tag.'),
  })
  .strict()
  .describe('A geobatch dataset registry.');

/** One dataset as validated (lists always lists). */
export type DatasetEntry = z.output<typeof datasetSchema>;

/** A validated registry, where it was read from, and how to point at its lines. */
export interface Registry {
  /** The registry file's absolute path or URI. */
  readonly uri: string;
  readonly datasets: readonly DatasetEntry[];
  /** Finds lines of YAML paths in the file, for errors found later (a glob that matches nothing). */
  readonly source: PipelineSource;
}

let registryJsonSchema: JsonSchema | undefined;

/** Parses and validates registry text; throws a RegistryError with one line per problem. */
export function parseRegistry(text: string, uri: string): Registry {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const source = new YamlSource(uri, doc, lines);
  const fail = (drafts: IssueDraft[]): never => {
    throw new RegistryError(
      placeIssues(drafts, source)
        .map((issue) => formatIssue(issue, uri))
        .join('\n'),
    );
  };
  if (doc.errors.length > 0) {
    fail(
      doc.errors.map((error) => {
        const { line, col } = lines.linePos(error.pos[0]);
        return { path: [], message: `YAML syntax error: ${error.message}`, position: { line, column: col } };
      }),
    );
  }
  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    fail([{ path: [], message: `YAML: ${(error as Error).message}` }]);
  }
  if (input === null || input === undefined) {
    fail([{ path: [], message: 'the file is empty; expected a mapping with version: 1 and datasets' }]);
  }
  const parsed = registrySchema.safeParse(input);
  if (!parsed.success) {
    registryJsonSchema ??= inputJsonSchema(registrySchema);
    const drafts = zodIssuesToDrafts(parsed.error.issues, { schema: registryJsonSchema, input, prefix: [] });
    fail(drafts.map((draft) => placeMissing(draft, input, source)));
  }
  const datasets = parsed.data!.datasets;
  const seen = new Map<string, number>();
  const duplicates: IssueDraft[] = [];
  datasets.forEach((dataset, index) => {
    const first = seen.get(dataset.tag);
    if (first === undefined) seen.set(dataset.tag, index);
    else
      duplicates.push({
        path: ['datasets', index, 'tag'],
        value: dataset.tag,
        message: `tag '${dataset.tag}' is already used by datasets[${first}]; expected a unique tag`,
      });
  });
  if (duplicates.length > 0) fail(duplicates);
  return { uri, datasets, source };
}

/** A missing key has no line of its own: point at the nearest enclosing value that is there. */
function placeMissing(draft: IssueDraft, input: unknown, source: PipelineSource): IssueDraft {
  if (draft.position !== undefined || draft.target === 'key') return draft;
  let at = draft.path;
  while (at.length > 0 && valueAt(input, at) === undefined) at = at.slice(0, -1);
  if (at.length === draft.path.length) return draft;
  const position = source.locate(at, 'value');
  return position === undefined ? draft : { ...draft, position };
}

/** Where the registry is: `explicit` (--registry), else GEOBATCH_DATASETS, else ./datasets.yaml. */
export function locateRegistry(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
  cwd: string = process.cwd(),
): string {
  const chosen = explicit ?? (env[REGISTRY_ENV] || undefined) ?? DEFAULT_REGISTRY;
  return isS3Uri(chosen) || isHttpUri(chosen) ? chosen : resolve(cwd, chosen.replace(/^file:\/\//, ''));
}

/** Reads and validates the registry at `uri` through storage. */
export async function readRegistry(storage: Storage, uri: string, signal?: AbortSignal): Promise<Registry> {
  let text: string;
  try {
    text = (await storage.read(uri, signal ? { signal } : {})).toString('utf8');
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') {
      throw new RegistryError(
        `${uri}: dataset registry not found (give --registry <file>, or set ${REGISTRY_ENV}, or create ./${DEFAULT_REGISTRY})`,
      );
    }
    throw error;
  }
  return parseRegistry(text, uri);
}

/** The dataset tagged `tag` and its index in the file; an unknown tag lists the known ones. */
export function findDataset(registry: Registry, tag: string): { dataset: DatasetEntry; index: number } {
  const index = registry.datasets.findIndex((dataset) => dataset.tag === tag);
  if (index < 0) {
    const known = registry.datasets.map((dataset) => dataset.tag).join(', ');
    throw new RegistryError(`${registry.uri}: no dataset tagged '${tag}' (known tags: ${known})`);
  }
  return { dataset: registry.datasets[index]!, index };
}
