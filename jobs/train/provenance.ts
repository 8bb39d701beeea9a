/**
 * Where a train stage's chips came from, read off the run's graph for the model bundle: the
 * `dataset` stage (a merge) names its `chips` stage (chip or chip-grid), whose parameters give the
 * windows; the band conversion is that stage's own (chip: `bands` / `stretch` / `percentiles` /
 * `range`; chip-grid: always the defaults) or, when its `image` is an rgb stage, the rgb stage's.
 * The scenes converted are the items of the converting stage; the header of the first one says
 * what they are made of.
 */
import type { GraphStage, JobGraph } from '../../lib/pipeline/types.js';
import type { ChipProvenance } from '../../lib/train/bundle.js';
import {
  bundleConversion,
  readSourceHeader,
  type ConversionChoice,
  type SourceHeader,
} from '../../lib/train/provenance.js';
import type { Storage } from '../../lib/storage/types.js';
import type { JobParams } from '../catalog.js';
import { stretchFromParams } from '../rgb.js';

/** What the graph says, before any file is read. */
export interface ChipTrace {
  /** The windows the chips were cut with; undefined when the graph does not say. */
  readonly windows?: ChipProvenance['windows'];
  /** Where the conversion was found, e.g. "stage rgb (rgb)"; undefined: unknown. */
  readonly where?: string;
  readonly choice: ConversionChoice;
  /** A scene that was converted: its header gives the source bands and type. */
  readonly sourceUri?: string;
  /** Why something is not known, for the log. */
  readonly notes: readonly string[];
}

function find(graph: JobGraph, name: unknown): GraphStage | undefined {
  return typeof name === 'string' ? graph.stages.find((s) => s.name === name) : undefined;
}

function choiceOf(params: Record<string, unknown>): ConversionChoice {
  const stretch = stretchFromParams(params as JobParams<'rgb'>);
  const bands = params['bands'];
  return {
    ...(Array.isArray(bands) ? { bands: bands as number[] } : {}),
    ...(stretch ? { stretch } : {}),
  };
}

function firstItem(graph: JobGraph, stage: GraphStage): string | undefined {
  return stage.itemsFrom === undefined ? undefined : graph.items[stage.itemsFrom]?.[0]?.uri;
}

/** Traces the chips of the dataset stage `dataset` through the graph (pure). */
export function traceChips(graph: JobGraph, dataset: string): ChipTrace {
  const merge = find(graph, dataset);
  if (!merge || merge.job !== 'merge') {
    return {
      choice: {},
      notes: [
        `dataset stage '${dataset}' ${merge ? `runs job '${merge.job}', not merge` : 'is not in the graph'}: how its chips were made is not known`,
      ],
    };
  }
  const chips = find(graph, merge.params['chips']);
  if (!chips || (chips.job !== 'chip' && chips.job !== 'chip-grid')) {
    return {
      choice: {},
      notes: [
        `stage '${String(merge.params['chips'])}' (the chips of merge stage '${merge.name}') ${chips ? `runs job '${chips.job}', not chip or chip-grid` : 'is not in the graph'}: how its chips were made is not known`,
      ],
    };
  }
  const p = chips.params;
  const windows =
    chips.job === 'chip'
      ? { size: p['size'] as number, overlap: p['overlap'] as number }
      : {
          size: (p['tileSize'] as number | undefined) ?? (p['grid'] === 'ard' ? 512 : 256),
          overlap: 0,
        };
  const notes: string[] = [];
  if (chips.job === 'chip-grid') {
    notes.push(
      `stage '${chips.name}' cut ${p['grid']} grid cells at level ${p['level']}: chips on the grid's resolution, windows of ${windows.size} px without overlap recorded`,
    );
  }
  const image = find(graph, p['image']);
  if (image) {
    if (image.job !== 'rgb') {
      return {
        windows,
        where: `stage ${image.name} (${image.job})`,
        choice: {},
        notes: [
          ...notes,
          `the chips were cut from stage '${image.name}' (job ${image.job}), not from an rgb stage`,
        ],
      };
    }
    const source = firstItem(graph, image);
    return {
      windows,
      where: `stage ${image.name} (rgb)`,
      choice: choiceOf(image.params),
      ...(source ? { sourceUri: source } : {}),
      notes,
    };
  }
  const source = firstItem(graph, chips);
  return {
    windows,
    where: `stage ${chips.name} (${chips.job}${chips.job === 'chip' ? ', converted while cutting' : ''})`,
    // chip-grid converts with the defaults only
    choice: chips.job === 'chip' ? choiceOf(p) : {},
    ...(source ? { sourceUri: source } : {}),
    notes,
  };
}

/**
 * The provenance of a train stage's chips: the trace, with the header of its source scene read
 * (a header that cannot be read leaves the source unknown, with a note); undefined when the graph
 * does not say how the chips were made (the harness then records its defaults).
 */
export async function chipProvenance(
  storage: Storage,
  graph: JobGraph,
  dataset: string,
  options: { readonly signal?: AbortSignal } = {},
): Promise<{ provenance?: ChipProvenance; notes: readonly string[] }> {
  const trace = traceChips(graph, dataset);
  const notes = [...trace.notes];
  if (!trace.windows || trace.where === undefined) return { notes };
  let source: SourceHeader | undefined;
  if (trace.sourceUri !== undefined) {
    try {
      source = await readSourceHeader(storage, trace.sourceUri, options);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      notes.push(
        `cannot read the header of ${trace.sourceUri} (${(error as Error).message}): source bands unknown`,
      );
    }
  }
  return {
    provenance: { windows: trace.windows, conversion: bundleConversion(trace.where, trace.choice, source) },
    notes,
  };
}
