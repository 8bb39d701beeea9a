/**
 * Pipeline files for the pipeline tests, written here by hand. Each is a list of lines so that a
 * test can see which line an error should name (line n is entry n - 1). Only the catalog jobs
 * that exist from the start (smoke, inspect, catalog) are used.
 */
import assert from 'node:assert/strict';
import { compilePipeline, parsePipeline } from '../../lib/pipeline/index.js';
import type { GraphStage, Item, JobGraph } from '../../lib/pipeline/types.js';

/** Joins lines into a YAML text. */
export function yaml(...lines: string[]): string {
  return lines.join('\n') + '\n';
}

/** `n` items of an input set, ids `<prefix>00000`.., in order. */
export function items(n: number, prefix = 'scene'): Item[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${String(i).padStart(5, '0')}`,
    uri: `/data/${prefix}${i}.tif`,
  }));
}

/** The first lines of every fixture: version, name and one input set. */
export const HEAD = ['version: 1', 'name: quickstart', 'inputs:', '  scenes: [data/*.tif]', 'stages:'];

/** The quickstart: inspect every scene, then gather one catalog (the graph `geobatch run` starts with). */
export const QUICKSTART = yaml(
  ...HEAD,
  '  inspect:', // line 6
  '    job: inspect',
  '    foreach: scenes',
  '    params:',
  '      sampleStep: 4', // line 10
  '  catalog:',
  '    job: catalog',
  '    needs: [inspect]',
);

/** Stages named `s1`..`sN`, each running smoke over the scenes, and one stage `many` that needs all of them. */
export function fanIn(n: number): string {
  const lines = [...HEAD];
  for (let i = 1; i <= n; i++) lines.push(`  s${i}:`, '    job: smoke', '    foreach: scenes');
  lines.push(
    '  many:',
    '    job: catalog',
    `    needs: [${Array.from({ length: n }, (_, i) => `s${i + 1}`).join(', ')}]`,
  );
  return yaml(...lines);
}

/** Parses and compiles `text` (named `file` in errors) with `n` scenes, or the given items per input set. */
export function compileText(file: string, text: string, resolved: number | Record<string, Item[]>): JobGraph {
  const { spec, source } = parsePipeline(text, file);
  return compilePipeline(spec, typeof resolved === 'number' ? { scenes: items(resolved) } : resolved, source);
}

/** The stage named `name` of a graph (fails the test when there is none). */
export function stageOf(graph: JobGraph, name: string): GraphStage {
  const stage = graph.stages.find((s) => s.name === name);
  assert.ok(stage, `no stage ${name}`);
  return stage;
}
