/** Finding a Python that can run the trainer: torch installed and the geobatch_trainer package importable. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TrainError } from './errors.js';
import { parseEventLine, type EnvEvent } from './events.js';

/** Tried in this order when GEOBATCH_PYTHON is not set. */
export const PYTHON_CANDIDATES: readonly string[] = ['python3', 'python', '/usr/bin/python3'];

export interface PythonEnv {
  /** The interpreter (as given: a name looked up on PATH, or a path). */
  readonly python: string;
  /** The folder holding geobatch_trainer/, put on PYTHONPATH. */
  readonly trainerDir: string;
  /** What `-m geobatch_trainer --check` reported. */
  readonly env: EnvEvent;
}

/**
 * The folder that holds the trainer package: GEOBATCH_TRAINER_DIR, else `<repo>/jobs/train` with the
 * repository found from this module's location (lib/train from sources, dist/lib/train when built).
 */
export function trainerDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const explicit = env['GEOBATCH_TRAINER_DIR'];
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'jobs', 'train');
    if (existsSync(join(candidate, 'geobatch_trainer', '__main__.py'))) return candidate;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../jobs/train');
}

/** PYTHONPATH with the trainer folder first. */
export function pythonPath(
  dir: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const existing = env['PYTHONPATH'];
  return existing ? `${dir}:${existing}` : dir;
}

interface CheckResult {
  readonly env?: EnvEvent;
  readonly problem?: string;
}

function check(python: string, dir: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CheckResult> {
  return new Promise((done) => {
    execFile(
      python,
      ['-m', 'geobatch_trainer', '--check'],
      { env: { ...env, PYTHONPATH: pythonPath(dir, env) }, timeout: timeoutMs, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        const line = String(stdout)
          .split('\n')
          .map((l) => parseEventLine(l))
          .find((e) => e?.event === 'env');
        if (!error && line?.event === 'env') return done({ env: line });
        const code = (error as NodeJS.ErrnoException | null)?.code;
        if (code === 'ENOENT') return done({ problem: 'not found' });
        const last = String(stderr).trim().split('\n').filter(Boolean).at(-1);
        return done({ problem: last ?? error?.message ?? 'printed no env event' });
      },
    );
  });
}

export interface FindPythonOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** @default 60 s (importing torch is slow on a cold disk) */
  readonly timeoutMs?: number;
}

/**
 * GEOBATCH_PYTHON when set (an error if it cannot run the trainer), else the first of
 * {@link PYTHON_CANDIDATES} whose `-m geobatch_trainer --check` succeeds.
 */
export async function findPython(options: FindPythonOptions = {}): Promise<PythonEnv> {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const dir = trainerDir(env);
  if (!existsSync(join(dir, 'geobatch_trainer', '__main__.py'))) {
    throw new TrainError(
      'python',
      `trainer package not found: ${join(dir, 'geobatch_trainer')} does not exist (set GEOBATCH_TRAINER_DIR to the folder holding geobatch_trainer/)`,
    );
  }
  const explicit = env['GEOBATCH_PYTHON'];
  if (explicit !== undefined && explicit !== '') {
    const result = await check(explicit, dir, env, timeoutMs);
    if (result.env) return { python: explicit, trainerDir: dir, env: result.env };
    throw new TrainError(
      'python',
      `GEOBATCH_PYTHON='${explicit}' cannot run the trainer (${result.problem}): point it at a Python 3 with torch and torchvision, or unset it to try ${PYTHON_CANDIDATES.join(', ')}`,
    );
  }
  const tried: string[] = [];
  for (const python of PYTHON_CANDIDATES) {
    const result = await check(python, dir, env, timeoutMs);
    if (result.env) return { python, trainerDir: dir, env: result.env };
    tried.push(`${python}: ${result.problem}`);
  }
  throw new TrainError(
    'python',
    `no Python can run the trainer (needs torch and torchvision; PYTHONPATH=${dir}); tried ${tried.join('; ')}. Set GEOBATCH_PYTHON to a Python with torch.`,
  );
}
