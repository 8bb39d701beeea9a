export * from './types.js';
export * from './spec.js';
export { PipelineError, formatIssue, formatPath } from './errors.js';
export type { PipelineIssue, PipelineSource, SourcePosition, YamlPath, IssueTarget } from './errors.js';
export { parsePipeline } from './parse.js';
export type { ParsedPipeline } from './parse.js';
export { validatePipeline } from './validate.js';
export type { Validation, ValidateOptions } from './validate.js';
export {
  compilePipeline,
  defaultItemsPerTask,
  itemTask,
  taskItemRange,
  taskItems,
  taskPart,
} from './compile.js';
export { pipelineJsonSchema } from './json-schema.js';
export type { JsonSchema } from './json-schema.js';
export { describeGraph, summarizeGraph, formatDuration, formatMemory } from './describe.js';
export type { GraphSummary, StageSummary } from './describe.js';
