/**
 * Launching the trainer: `python -m geobatch_trainer` (or torch.distributed.run with one process
 * per GPU), its JSON-lines stdout parsed into events, stderr forwarded line by line, cancellation
 * by SIGTERM to the process group then SIGKILL, and its failure mapped to a {@link TrainError}.
 */
import { spawn } from 'node:child_process';
import { TrainError, type TrainErrorKind } from './errors.js';
import { JsonLinesParser, type ErrorEvent, type TrainerEvent } from './events.js';
import { pythonPath } from './python.js';

export interface LaunchOptions {
  readonly python: string;
  readonly trainerDir: string;
  readonly configPath: string;
  /** Processes: more than 1 runs torch.distributed.run with --nproc_per_node. @default 1 */
  readonly processes?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  /** Time between SIGTERM and SIGKILL on cancellation. @default 30 s */
  readonly graceMs?: number;
  onEvent(event: TrainerEvent): void;
  /** A stderr line, or a stdout line that is not an event. */
  onLog(line: string, stream: 'stdout' | 'stderr'): void;
}

export interface LaunchResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly errorEvent?: ErrorEvent;
  /** The last stderr lines (at most 20). */
  readonly stderrTail: readonly string[];
}

/** The command line: module run, or torch.distributed.run for several processes. */
export function trainerArgs(configPath: string, processes: number): string[] {
  const trainer = ['-m', 'geobatch_trainer', '--config', configPath];
  if (processes <= 1) return trainer;
  return ['-m', 'torch.distributed.run', '--standalone', `--nproc_per_node=${processes}`, ...trainer];
}

/** Runs the trainer to its end; resolves whatever the exit (see {@link trainFailure}). */
export function launchTrainer(options: LaunchOptions): Promise<LaunchResult> {
  const env = options.env ?? process.env;
  const child = spawn(options.python, trainerArgs(options.configPath, options.processes ?? 1), {
    env: { ...env, PYTHONPATH: pythonPath(options.trainerDir, env), PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so cancellation reaches torchrun's workers too
  });
  let errorEvent: ErrorEvent | undefined;
  const tail: string[] = [];
  const stdout = new JsonLinesParser({
    onEvent: (event) => {
      if (event.event === 'error') errorEvent = event;
      options.onEvent(event);
    },
    onText: (line) => options.onLog(line, 'stdout'),
  });
  const stderr = new JsonLinesParser({
    // stderr is never parsed for events: a JSON-looking line there is a log line
    onEvent: (event) => stderrLine(JSON.stringify(event)),
    onText: (line) => stderrLine(line),
  });
  function stderrLine(line: string) {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    options.onLog(line, 'stderr');
  }
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));

  let killTimer: NodeJS.Timeout | undefined;
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  const onAbort = () => {
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), options.graceMs ?? 30_000);
    killTimer.unref();
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });

  return new Promise((resolve, reject) => {
    child.on('error', (error) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new TrainError('python', `cannot start ${options.python}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      stdout.end();
      stderr.end();
      resolve({ code, signal, ...(errorEvent ? { errorEvent } : {}), stderrTail: tail });
    });
  });
}

const trainerKinds = new Set<TrainErrorKind>(['config', 'data', 'weights', 'runtime', 'memory']);

/**
 * The error for a trainer that did not succeed, or undefined when it did (exit 0). Its own error
 * event wins; else exit 2 is a config/data problem, 3 weights, SIGKILL most likely the OOM killer.
 */
export function trainFailure(result: LaunchResult, aborted = false): TrainError | undefined {
  if (result.code === 0) return undefined;
  const tail = result.stderrTail.slice(-8);
  const stderrText = tail.length ? `\nlast trainer stderr lines:\n  ${tail.join('\n  ')}` : '';
  if (aborted) {
    return new TrainError(
      'aborted',
      `training cancelled (trainer stopped by ${result.signal ?? `exit ${result.code}`})`,
    );
  }
  if (result.errorEvent) {
    const kind = trainerKinds.has(result.errorEvent.kind as TrainErrorKind)
      ? (result.errorEvent.kind as TrainErrorKind)
      : 'runtime';
    const what =
      kind === 'weights' ? 'pretrained weights' : kind === 'memory' ? 'out of memory' : `${kind} error`;
    return new TrainError(
      kind,
      `trainer failed (${what}): ${result.errorEvent.message}${kind === 'runtime' ? stderrText : ''}`,
    );
  }
  if (result.signal === 'SIGKILL') {
    return new TrainError(
      'memory',
      `trainer killed by SIGKILL, most likely out of memory (the kernel's OOM killer, or the container's memory limit): lower batchSize or imageSize${stderrText}`,
    );
  }
  if (result.signal) {
    return new TrainError('runtime', `trainer killed by signal ${result.signal}${stderrText}`);
  }
  if (result.code === 2) {
    return new TrainError('config', `trainer rejected its config or dataset (exit 2)${stderrText}`);
  }
  if (result.code === 3) {
    return new TrainError('weights', `trainer could not load the pretrained weights (exit 3)${stderrText}`);
  }
  if (result.code === 137) {
    return new TrainError(
      'memory',
      `trainer exited with 137 (killed, most likely out of memory)${stderrText}`,
    );
  }
  return new TrainError('runtime', `trainer failed with exit code ${result.code}${stderrText}`);
}
