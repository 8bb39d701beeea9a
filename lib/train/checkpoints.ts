/**
 * Checkpoints in the run: `<out>/checkpoints/epoch-NNNN.pt`, uploaded as the trainer writes them,
 * and the latest one fetched into the trainer's local checkpoint folder before it starts, so that
 * a retried attempt (a spot reclaim on Batch, a rerun of the CLI) resumes instead of restarting.
 */
import { createReadStream } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../storage/local.js';
import type { Storage } from '../storage/types.js';
import { basenameUri, joinUri } from '../storage/uri.js';

const CHECKPOINT = /^epoch-(\d+)\.pt$/;

/** `epoch-0007.pt` */
export function checkpointName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}.pt`;
}

/** The latest checkpoint under `remoteDir`, or undefined. */
export async function latestCheckpoint(
  storage: Storage,
  remoteDir: string,
  signal?: AbortSignal,
): Promise<{ uri: string; epoch: number } | undefined> {
  let latest: { uri: string; epoch: number } | undefined;
  for await (const info of storage.list(`${remoteDir.replace(/\/+$/, '')}/`, { signal })) {
    const match = CHECKPOINT.exec(basenameUri(info.uri));
    if (!match) continue;
    const epoch = Number(match[1]);
    if (!latest || epoch > latest.epoch) latest = { uri: info.uri, epoch };
  }
  return latest;
}

/**
 * Copies the latest checkpoint of `remoteDir` into `localDir` (same name); returns its epoch, or
 * undefined when there is none.
 */
export async function restoreCheckpoint(
  storage: Storage,
  remoteDir: string,
  localDir: string,
  signal?: AbortSignal,
): Promise<number | undefined> {
  const latest = await latestCheckpoint(storage, remoteDir, signal);
  if (!latest) return undefined;
  const path = join(localDir, checkpointName(latest.epoch));
  await writeFileAtomic(path, await storage.createReadStream(latest.uri, { signal }), signal);
  return latest.epoch;
}

/** Uploads a local checkpoint file to `<remoteDir>/<its name>`; returns the URI. */
export async function uploadCheckpoint(
  storage: Storage,
  localPath: string,
  remoteDir: string,
  signal?: AbortSignal,
): Promise<string> {
  const uri = joinUri(remoteDir, basename(localPath));
  await storage.writeAtomic(uri, createReadStream(localPath), {
    signal,
    contentType: 'application/octet-stream',
  });
  return uri;
}
