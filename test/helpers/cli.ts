/** Runs the real CLI entry points in a child process, as a user would. */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '../..');
/** tsx's loader by absolute URL: `--import tsx` would resolve against the child's working directory. */
export const tsxLoader = import.meta.resolve('tsx');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Environment with no AWS credentials, no instance metadata lookups, and nothing from the developer's profile. */
export function isolatedEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('AWS_') && !k.startsWith('GEOBATCH_')) env[k] = v;
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
    AWS_CONFIG_FILE: '/nonexistent/config',
    AWS_REGION: 'us-east-1',
    ...extra,
  };
}

function runBin(
  bin: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', tsxLoader, resolve(repo, 'bin', bin), ...args], {
      cwd: options.cwd ?? repo,
      env: options.env ?? isolatedEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** `geobatch <args>` */
export function geobatch(
  args: string[],
  options?: { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<CliResult> {
  return runBin('geobatch.ts', args, options);
}

/** `geobatch-job <args>` */
export function geobatchJob(
  args: string[],
  options?: { cwd?: string; env?: NodeJS.ProcessEnv },
): Promise<CliResult> {
  return runBin('job.ts', args, options);
}
