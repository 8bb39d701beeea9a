/**
 * Runs a command as a child process and reports its wall time and peak resident memory, the
 * latter from Linux's /proc/<pid>/status (VmHWM, the high-water mark), polled while it runs.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Measured {
  readonly seconds: number;
  /** Peak resident memory in MiB; null where /proc is not available. */
  readonly peakRssMiB: number | null;
  readonly stdout: string;
}

function highWaterMiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Runs `command args`, failing when it exits non-zero. */
export function measure(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    let peak: number | null = null;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const poll = setInterval(() => {
      const v = child.pid === undefined ? null : highWaterMiB(child.pid);
      if (v !== null) peak = Math.max(peak ?? 0, v);
    }, 50);
    child.on('error', (error) => {
      clearInterval(poll);
      reject(error);
    });
    child.on('exit', (code) => {
      clearInterval(poll);
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`));
      else resolve({ seconds, peakRssMiB: peak, stdout });
    });
  });
}

/** "12.3 s, 245 MiB" */
export function formatMeasured(m: Measured): string {
  return `${m.seconds.toFixed(1).padStart(6)} s  ${m.peakRssMiB === null ? '   n/a' : m.peakRssMiB.toFixed(0).padStart(6)} MiB`;
}
