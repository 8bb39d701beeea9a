/** The one error type of lib/pipeline: a list of issues, each naming a YAML path and line. */

/** A path into the pipeline file: mapping keys and list indexes (`['stages', 'chip', 'needs', 0]`). */
export type YamlPath = readonly (string | number)[];

/** Whether an issue is about a mapping key (an unknown or badly named key) or about its value. */
export type IssueTarget = 'key' | 'value';

/** One problem found in a pipeline file. */
export interface PipelineIssue {
  /** Dotted YAML path, list indexes in brackets: `stages.chip.params.overlap`, `inputs.scenes[0]`; '' for the file. */
  readonly path: string;
  /** 1-based line in the file, when the file is known. */
  readonly line?: number;
  /** 1-based column in the file, when the file is known. */
  readonly column?: number;
  /** What is wrong and what would be valid, without the path or line. */
  readonly message: string;
  /** The offending value, when there is one. */
  readonly value?: unknown;
}

/** An issue before it is placed in a file: a structured path, and whether it is about the key. */
export interface IssueDraft {
  readonly path: YamlPath;
  readonly message: string;
  readonly value?: unknown;
  /** @default 'value' */
  readonly target?: IssueTarget;
  /** Exact column wanted (YAML syntax errors); otherwise found from the path. */
  readonly position?: SourcePosition;
}

export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/** Where a pipeline came from, so that issues found later (compiling) can name lines too. */
export interface PipelineSource {
  readonly fileName: string;
  /** Position of the node at `path` (or of the nearest enclosing key when the node is missing). */
  locate(path: YamlPath, target: IssueTarget): SourcePosition | undefined;
}

/** Formats a structured path as `stages.chip.needs[0]`. */
export function formatPath(path: YamlPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

/**
 * One issue as one line: `quickstart.yaml: stages.chip.params.overlap: expected ... (line 14)`.
 * Issues without a path (YAML syntax errors) show the column too, since nothing else points into the line.
 */
export function formatIssue(issue: PipelineIssue, fileName?: string): string {
  const parts: string[] = [];
  if (fileName) parts.push(fileName);
  if (issue.path) parts.push(issue.path);
  parts.push(issue.message);
  let where = '';
  if (issue.line !== undefined) {
    where =
      !issue.path && issue.column !== undefined
        ? ` (line ${issue.line}, column ${issue.column})`
        : ` (line ${issue.line})`;
  }
  return parts.join(': ') + where;
}

/** Places drafts in the file (line, column) and orders them by position, keeping the order of equals. */
export function placeIssues(drafts: readonly IssueDraft[], source?: PipelineSource): PipelineIssue[] {
  const placed = drafts.map((draft, order) => {
    const position = draft.position ?? source?.locate(draft.path, draft.target ?? 'value');
    const issue: PipelineIssue = {
      path: formatPath(draft.path),
      message: draft.message,
      ...(position ? { line: position.line, column: position.column } : {}),
      ...('value' in draft ? { value: draft.value } : {}),
    };
    return { issue, order };
  });
  placed.sort(
    (a, b) =>
      (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) ||
      (a.issue.column ?? 0) - (b.issue.column ?? 0) ||
      a.order - b.order,
  );
  return placed.map((p) => p.issue);
}

/** A pipeline file (or spec) that cannot be used; `issues` lists every problem found, not just the first. */
export class PipelineError extends Error {
  override readonly name = 'PipelineError';
  readonly issues: readonly PipelineIssue[];
  readonly fileName: string | undefined;

  constructor(issues: readonly PipelineIssue[], fileName?: string) {
    super(issues.map((issue) => formatIssue(issue, fileName)).join('\n'));
    this.issues = issues;
    this.fileName = fileName;
  }
}
