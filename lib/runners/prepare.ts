/**
 * From a pipeline file to a run: read and validate the file, list its inputs, compile the
 * job graph, choose the run's location and write its immutable plan.json.
 */
import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { compilePipeline, parsePipeline, PipelineError } from '../pipeline/index.js';
import { isDatasetInput, isStacInput } from '../pipeline/index.js';
import type { DatasetInputSpec, PipelineSource, PipelineSpec, StacInputSpec } from '../pipeline/index.js';
import { RegistryError } from '../datasets/errors.js';
import { datasetInputItems, resolveRegistryName } from '../datasets/files.js';
import { findDataset, locateRegistry, readRegistry } from '../datasets/registry.js';
import type { Item, JobGraph } from '../pipeline/types.js';
import { StacError } from '../stac/errors.js';
import { expandStacInput } from '../stac/inputs.js';
import { expandInputs } from '../storage/inputs.js';
import { StorageError } from '../storage/errors.js';
import type { InputItem } from '../storage/inputs.js';
import type { Storage } from '../storage/types.js';
import { isS3Uri, joinUri } from '../storage/uri.js';
import { newRunId, runLayout } from './layout.js';
import { parseRunPlan, planVersion } from './records.js';
import type { RunPlan } from './records.js';

/** A run cannot be created or continued as asked. */
export class PlanError extends Error {
  override readonly name = 'PlanError';
}

export interface LoadedPipeline {
  /** Absolute path or URI of the pipeline file. */
  readonly file: string;
  readonly spec: PipelineSpec;
  readonly graph: JobGraph;
  /** Where runs of this pipeline go: `<output>/<name>`. */
  readonly runsRoot: string;
  readonly fingerprint: string;
}

/** Reads the pipeline file through storage, naming it in every error. */
async function readPipelineText(storage: Storage, file: string): Promise<string> {
  try {
    return (await storage.read(file)).toString('utf8');
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') {
      throw new PlanError(`${file}: pipeline file not found`);
    }
    throw error;
  }
}

/** Parses, validates and compiles a pipeline file, listing its inputs (local globs or S3 prefixes). */
export async function loadPipeline(storage: Storage, fileArg: string): Promise<LoadedPipeline> {
  const file = isS3Uri(fileArg) ? fileArg : resolve(fileArg);
  const text = await readPipelineText(storage, file);
  const { spec, source } = parsePipeline(text, fileArg);
  const baseDir = isS3Uri(file) ? file.slice(0, file.lastIndexOf('/') + 1) : dirname(file);
  const items: Record<string, Item[]> = {};
  for (const [name, patterns] of Object.entries(spec.inputs)) {
    if (isStacInput(patterns)) {
      items[name] = await expandStacSet(
        storage,
        patterns,
        baseDir,
        ['inputs', name, 'stac'],
        source,
        fileArg,
      );
      continue;
    }
    if (isDatasetInput(patterns)) {
      items[name] = await expandDatasetSet(storage, patterns, file, ['inputs', name], source, fileArg);
      continue;
    }
    const list: readonly string[] = patterns;
    try {
      items[name] = await expandInputs(list, storage, { baseDir, label: `inputs.${name}` });
    } catch (error) {
      if (!(error instanceof StorageError)) throw error;
      // name the line of the input set in the pipeline file, not just the pattern
      const m = /^inputs\.[^[\s:]+\[(\d+)\]: /.exec(error.message);
      const path = m
        ? ['inputs', name, ...(Array.isArray(patterns) ? [Number(m[1])] : [])]
        : ['inputs', name];
      const position = source.locate(path, 'value');
      const message = m ? error.message.slice(m[0].length) : error.message;
      throw new PipelineError(
        [
          {
            path: path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i ? `.${p}` : p)).join(''),
            message,
            ...(position ?? {}),
          },
        ],
        fileArg,
      );
    }
  }
  const graph = compilePipeline(spec, items, source);
  const output = isS3Uri(spec.output) ? spec.output : resolve(baseDir, spec.output);
  const fingerprint = createHash('sha256').update(JSON.stringify({ spec, items })).digest('hex');
  return { file, spec, graph, runsRoot: joinUri(output, spec.name), fingerprint };
}

/** The items of a `{ stac: file }` input set; a bad or missing file is a PipelineError at `path`'s line. */
async function expandStacSet(
  storage: Storage,
  input: StacInputSpec,
  baseDir: string,
  path: readonly (string | number)[],
  source: PipelineSource,
  fileArg: string,
): Promise<InputItem[]> {
  try {
    return await expandStacInput(input.stac, storage, {
      baseDir,
      ...(input.asset === undefined ? {} : { asset: input.asset }),
    });
  } catch (error) {
    if (!(error instanceof StorageError) && !(error instanceof StacError)) throw error;
    const position = source.locate(path, 'value');
    throw new PipelineError([{ path: path.join('.'), message: error.message, ...(position ?? {}) }], fileArg);
  }
}

/**
 * The items of a `{ dataset: tag }` input set, read from the registry now (the plan records them,
 * so a run does not depend on the registry later). A missing registry, an unknown tag or a list
 * that matches nothing is a PipelineError at the input's line, carrying the registry's own message.
 */
async function expandDatasetSet(
  storage: Storage,
  input: DatasetInputSpec,
  pipelineFile: string,
  path: readonly (string | number)[],
  source: PipelineSource,
  fileArg: string,
): Promise<InputItem[]> {
  try {
    const registryUri =
      input.registry === undefined
        ? locateRegistry(undefined)
        : resolveRegistryName(input.registry, pipelineFile);
    const registry = await readRegistry(storage, registryUri);
    const { index } = findDataset(registry, input.dataset);
    return await datasetInputItems(storage, registry, index, input.files);
  } catch (error) {
    if (!(error instanceof StorageError) && !(error instanceof RegistryError)) throw error;
    const at = [...path, 'dataset'];
    const position = source.locate(at, 'value');
    throw new PipelineError([{ path: at.join('.'), message: error.message, ...(position ?? {}) }], fileArg);
  }
}

interface LatestPointer {
  readonly runId: string;
  readonly runUri: string;
  readonly fingerprint: string;
}

export interface PrepareRunOptions {
  /** Explicit run location; continued when it exists (same pipeline and inputs), created otherwise. */
  readonly runUri?: string;
  /** Always start a new run, even when the latest run of the pipeline is unfinished. */
  readonly fresh?: boolean;
}

export interface PreparedRun {
  readonly plan: RunPlan;
  /** True when an unfinished earlier run is being continued. */
  readonly continued: boolean;
}

/** Reads a JSON record, or undefined when there is none (one GET: on S3 a HEAD first would cost two). */
async function readJson<T>(storage: Storage, uri: string): Promise<T | undefined> {
  let bytes: Buffer;
  try {
    bytes = await storage.read(uri);
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') return undefined;
    throw error;
  }
  return JSON.parse(bytes.toString('utf8')) as T;
}

/** Reads an existing run's plan. */
export async function readRunPlan(storage: Storage, runUri: string): Promise<RunPlan> {
  const planUri = runLayout(runUri).plan;
  const plan = await readJson<RunPlan>(storage, planUri);
  if (!plan) throw new PlanError(`${runUri}: not a geobatch run (no plan.json there)`);
  if (plan.version !== planVersion) {
    throw new PlanError(
      `${planUri}: plan version ${String(plan.version)} is not supported (this geobatch reads ${planVersion})`,
    );
  }
  // fills what older plans lack (tasksPerItem)
  return parseRunPlan(plan, planUri);
}

/**
 * Chooses the run: the one named by `runUri`, else the latest run of this pipeline when it was
 * made from the same pipeline and inputs, else a new one. Writes plan.json
 * (never rewrites an existing one).
 */
export async function prepareRun(
  storage: Storage,
  loaded: LoadedPipeline,
  options: PrepareRunOptions = {},
): Promise<PreparedRun> {
  const latestUri = joinUri(loaded.runsRoot, 'latest.json');
  let runUri = options.runUri
    ? isS3Uri(options.runUri)
      ? options.runUri
      : resolve(options.runUri)
    : undefined;

  if (!runUri && !options.fresh) {
    const latest = await readJson<LatestPointer>(storage, latestUri);
    // like make: the same pipeline over the same inputs continues its latest run, where finished
    // tasks are skipped (a complete run has nothing left to do); --new starts afresh
    if (
      latest &&
      latest.fingerprint === loaded.fingerprint &&
      (await storage.exists(runLayout(latest.runUri).plan))
    ) {
      runUri = latest.runUri;
    }
  }

  if (runUri) {
    const existing = await readJson<RunPlan>(storage, runLayout(runUri).plan);
    if (existing) {
      if (existing.pipeline.fingerprint !== loaded.fingerprint) {
        throw new PlanError(
          `${runUri}: this run was made from a different pipeline file or inputs (plan.json is immutable); start a new run without --run, or pass another --run location`,
        );
      }
      return { plan: parseRunPlan(existing, runLayout(runUri).plan), continued: true };
    }
  }

  const runId = newRunId();
  const uri = runUri ?? joinUri(loaded.runsRoot, runId);
  const plan: RunPlan = {
    version: planVersion,
    runId,
    runUri: uri,
    createdAt: new Date().toISOString(),
    pipeline: {
      name: loaded.spec.name,
      file: loaded.file,
      fingerprint: loaded.fingerprint,
      spec: loaded.spec,
    },
    graph: loaded.graph,
  };
  await storage.writeAtomic(runLayout(uri).plan, JSON.stringify(plan, null, 2) + '\n', {
    contentType: 'application/json',
  });
  const pointer: LatestPointer = { runId, runUri: uri, fingerprint: loaded.fingerprint };
  await storage.writeAtomic(latestUri, JSON.stringify(pointer, null, 2) + '\n');
  return { plan, continued: false };
}
