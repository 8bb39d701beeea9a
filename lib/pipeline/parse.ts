/** Pipeline file text -> validated spec, with every problem reported at its YAML path and line. */
import {
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  type Document,
  type Node,
} from 'yaml';
import {
  PipelineError,
  placeIssues,
  type IssueDraft,
  type IssueTarget,
  type PipelineSource,
  type SourcePosition,
  type YamlPath,
} from './errors.js';
import type { PipelineSpec } from './spec.js';
import { validatePipeline } from './validate.js';

/** A validated pipeline file, and where it came from (so that compile errors can name lines too). */
export interface ParsedPipeline {
  readonly spec: PipelineSpec;
  readonly source: PipelineSource;
}

/**
 * Finds the node of a path in a YAML document, and the key that names it (also used by other YAML
 * files validated the same way, e.g. the dataset registry).
 */
export class YamlSource implements PipelineSource {
  constructor(
    readonly fileName: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private position(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    return { line, column: col };
  }

  private resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  locate(path: YamlPath, target: IssueTarget): SourcePosition | undefined {
    let node: unknown = this.resolve(this.doc.contents);
    // The key that names `node`, when it is a mapping value; the nearest one found so far otherwise.
    let key: Node | undefined;
    let found = true;
    for (const segment of path) {
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment),
        );
        if (pair) {
          key = pair.key as Node;
          next = pair.value;
        }
      } else if (isSeq(node) && typeof segment === 'number') {
        next = node.items[segment];
        if (next !== undefined) key = undefined;
      }
      next = this.resolve(next);
      if (next === undefined || next === null) {
        found = false;
        break;
      }
      node = next;
    }
    if (target === 'key' && found && key?.range) return this.position(key.range[0]);
    const value = found ? (node as Node) : undefined;
    const empty = isScalar(value) && value.range && value.range[0] === value.range[1];
    // A block mapping or list starts on the line after its key: point at the key.
    const block = isCollection(value) && !value.flow;
    if (value?.range && !empty && !(block && key)) return this.position(value.range[0]);
    if (key?.range) return this.position(key.range[0]);
    return value?.range ? this.position(value.range[0]) : { line: 1, column: 1 };
  }
}

/**
 * Parses and validates a pipeline file. Throws a PipelineError listing every issue (YAML syntax,
 * schema, job params, stage references, cycles), each with its YAML path and line.
 */
export function parsePipeline(text: string, fileName: string): ParsedPipeline {
  const lines = new LineCounter();
  // `merge`: `<<: *defaults` keys, as in docker-compose and GitLab CI files (YAML 1.1, off by default in 1.2).
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: true });
  const source = new YamlSource(fileName, doc, lines);

  if (doc.errors.length > 0) {
    const drafts: IssueDraft[] = doc.errors.map((error) => {
      const { line, col } = lines.linePos(error.pos[0]);
      return { path: [], message: `YAML syntax error: ${error.message}`, position: { line, column: col } };
    });
    throw new PipelineError(placeIssues(drafts), fileName);
  }
  if (doc.contents === null) {
    throw new PipelineError(
      [
        {
          path: '',
          line: 1,
          column: 1,
          message: 'the file is empty; expected a mapping with version, name, inputs and stages',
        },
      ],
      fileName,
    );
  }

  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    // yaml refuses documents whose aliases expand too far (a "billion laughs" file).
    throw new PipelineError([{ path: '', message: `YAML: ${(error as Error).message}` }], fileName);
  }

  const result = validatePipeline(input);
  if (!result.ok) throw new PipelineError(placeIssues(result.issues, source), fileName);
  return { spec: result.spec, source };
}
