/**
 * Which S3 buckets the jobs of an environment may reach: the job role reads the raw bucket,
 * reads and writes the processed and runs buckets, and the extra buckets the environment lists
 * (`buckets.extraRead`, `buckets.extraReadWrite`). A run whose inputs, stage parameters or
 * outputs lie elsewhere would fail in its containers with AccessDenied, after queueing and
 * pulling images: this is checked before anything is submitted. Pure: no AWS, no storage.
 */
import type { PlatformDescriptor } from '../config/descriptor.js';
import type { JobGraph } from '../pipeline/types.js';
import { isS3Uri } from '../storage/uri.js';
import { BatchError } from './batch-errors.js';

export interface BucketAccess {
  /** Buckets the jobs may read (including those they may write). */
  readonly read: readonly string[];
  /** Buckets the jobs may write. */
  readonly write: readonly string[];
}

/** The buckets the job role of the environment the descriptor describes may read and write. */
export function bucketAccess(descriptor: PlatformDescriptor): BucketAccess {
  const { raw, processed, runs, extraRead = [], extraReadWrite = [] } = descriptor.buckets;
  const write = [processed.name, runs.name, ...extraReadWrite];
  return { read: [...new Set([raw.name, ...extraRead, ...write])], write: [...new Set(write)] };
}

function bucketOf(uri: string): string {
  return uri.slice('s3://'.length).split('/')[0]!;
}

/** Every `s3://` string in a stage's parameters, with its path (`params.weights`, `params.x[0]`). */
function s3Params(value: unknown, path: string, out: { path: string; uri: string }[]): void {
  if (typeof value === 'string') {
    if (isS3Uri(value)) out.push({ path, uri: value });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => s3Params(v, `${path}[${i}]`, out));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) s3Params(v, `${path}.${k}`, out);
  }
}

function denied(
  what: string,
  uri: string,
  env: string,
  access: BucketAccess,
  mode: 'read' | 'write',
): BatchError {
  const bucket = bucketOf(uri);
  const readOnly = access.read.filter((b) => !access.write.includes(b));
  const can = `they read ${readOnly.join(', ') || 'no other bucket'} and read and write ${access.write.join(', ')}`;
  if (mode === 'read') {
    return new BatchError(
      `${what}: ${uri} is in bucket '${bucket}', which the jobs of environment '${env}' cannot read (${can}); copy the data to one of those buckets, or add '${bucket}' to buckets.extraRead of environment '${env}' and redeploy`,
    );
  }
  const verb = access.read.includes(bucket) ? 'can only read' : 'cannot write';
  return new BatchError(
    `${what}: ${uri} is in bucket '${bucket}', which the jobs of environment '${env}' ${verb} (${can}), and every task writes its outputs under the run; put the run in one of the buckets they write, or add '${bucket}' to buckets.extraReadWrite of environment '${env}' and redeploy`,
  );
}

/**
 * Checks that the jobs can read every item and every `s3://` stage parameter of the graph and
 * write the run (`run` names where its location came from: `--run` or `output`). Throws a
 * BatchError naming the first input set, parameter or output outside, the URI, and what is
 * allowed. Local paths are left to the check that every input is on S3.
 */
export function checkBucketAccess(
  input: { readonly graph: JobGraph; readonly runUri: string; readonly run: string },
  descriptor: PlatformDescriptor,
): void {
  const access = bucketAccess(descriptor);
  const env = descriptor.env;
  for (const [set, items] of Object.entries(input.graph.items)) {
    const outside = items.filter((i) => isS3Uri(i.uri) && !access.read.includes(bucketOf(i.uri)));
    if (outside.length === 0) continue;
    const count =
      outside.length === items.length ? 'every item' : `${outside.length} of ${items.length} items`;
    throw denied(`inputs.${set} (${count})`, outside[0]!.uri, env, access, 'read');
  }
  for (const stage of input.graph.stages) {
    const found: { path: string; uri: string }[] = [];
    s3Params(stage.params, `stages.${stage.name}.params`, found);
    const outside = found.find((p) => !access.read.includes(bucketOf(p.uri)));
    if (outside) throw denied(outside.path, outside.uri, env, access, 'read');
  }
  if (isS3Uri(input.runUri) && !access.write.includes(bucketOf(input.runUri))) {
    throw denied(input.run, input.runUri, env, access, 'write');
  }
}
