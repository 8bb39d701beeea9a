/**
 * `<run>/batch.json`: which AWS Batch jobs a run was submitted as, written through storage
 * before `geobatch run --runner batch` (or `resume`) returns. `status`, `logs`, `cancel` and
 * `resume` start from it; it is rewritten whole on every submission (and cancellation).
 */
import { z } from 'zod';
import { StorageError } from '../storage/errors.js';
import type { Storage } from '../storage/types.js';
import { runLayout } from './layout.js';

export const batchRecordVersion = 1;

const submittedJob = z.object({
  stage: z.string(),
  jobId: z.string(),
  jobName: z.string(),
  jobQueue: z.string(),
  jobDefinition: z.string(),
  /** Children of the array job; absent for a plain job. */
  arraySize: z.number().int().optional(),
  /** The plan's task indexes the job runs, as ranges: array child k runs the k-th of them. */
  tasks: z.string(),
});

const submission = z.object({
  /** 0 for the run, 1, 2, ... for each resume. */
  number: z.number().int().min(0),
  kind: z.enum(['run', 'resume']),
  submittedAt: z.string(),
  /** Set when `--image-tag` made derived job-definition revisions. */
  imageTag: z.string().optional(),
  /** Cost tags given with `--tag`, reused by resume. */
  tags: z.record(z.string(), z.string()),
  jobs: z.array(submittedJob),
  cancelledAt: z.string().optional(),
  /**
   * `submitting` while the jobs are being submitted (the record is written before the first call
   * to AWS, so that the run stays a Batch run whatever fails), `failed` when a call was refused.
   * Absent in records written before it existed: those were written once, when submitted.
   */
  state: z.enum(['submitting', 'submitted', 'failed']).optional(),
  /** Why the submission failed. */
  error: z.string().optional(),
  /**
   * `--image-tag`: the deployed job definition ARN -> the revision registered for the tag, which
   * a resume with the same tag reuses while it is ACTIVE.
   */
  jobDefinitions: z.record(z.string(), z.string()).optional(),
});

const batchRecord = z.object({
  version: z.literal(batchRecordVersion),
  runId: z.string(),
  runUri: z.string(),
  planUri: z.string(),
  env: z.string(),
  region: z.string(),
  logGroup: z.string(),
  submissions: z.array(submission),
});

export type SubmittedJob = z.output<typeof submittedJob>;
export type BatchSubmission = z.output<typeof submission>;
export type BatchRecord = z.output<typeof batchRecord>;

/** Reads `<run>/batch.json`, or undefined when the run was never submitted to Batch. */
export async function readBatchRecord(storage: Storage, runUri: string): Promise<BatchRecord | undefined> {
  const uri = runLayout(runUri).batch;
  let text: string;
  try {
    text = (await storage.read(uri)).toString('utf8');
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NotFound') return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${uri}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = batchRecord.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `${uri}: not a geobatch Batch record (version ${batchRecordVersion}): ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    );
  }
  return parsed.data;
}

/** Writes `<run>/batch.json` whole. */
export async function writeBatchRecord(storage: Storage, record: BatchRecord): Promise<void> {
  await storage.writeAtomic(runLayout(record.runUri).batch, JSON.stringify(record, null, 2) + '\n', {
    contentType: 'application/json',
  });
}

/**
 * Per stage, the job of the latest submission that ran it: earlier submissions of a stage only
 * covered tasks that are finished by the time a resume was submitted.
 */
export function latestJobs(
  record: BatchRecord,
): Map<string, { job: SubmittedJob; submission: BatchSubmission }> {
  const out = new Map<string, { job: SubmittedJob; submission: BatchSubmission }>();
  for (const s of record.submissions) for (const job of s.jobs) out.set(job.stage, { job, submission: s });
  return out;
}
