/**
 * One error handler for every command: known errors become one clear line (or a short list)
 * on stderr and a non-zero exit code; anything else is shown with its stack only on request.
 */

/** A command-line mistake the user can fix: exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The run stopped because the user asked (Ctrl-C): exit code 130, like a shell. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
}

/**
 * Runs `work` with a signal that the first SIGINT or SIGTERM aborts, so it stops cleanly (no
 * half-written file, its progress recorded) and fails with an InterruptedError saying `message`;
 * a second Ctrl-C kills the process as usual.
 */
export async function interruptible<T>(
  message: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const onSignal = (): void => controller.abort(new InterruptedError(message));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason as Error;
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The command worked but what it reports is a failure (e.g. tasks failed): exit code 1, message already shown. */
export class ReportedFailure extends Error {
  override readonly name = 'ReportedFailure';
}

const userErrorNames = new Set([
  'UsageError',
  'PipelineError',
  'StorageError',
  'InputError',
  'TaskError',
  'RasterError',
  'LabelError',
  'GridError',
  'ConfigError',
  'PlanError',
  'PlatformError',
  'BatchError',
  'TrainError',
  'DatasetError',
  'PredictError',
  'EmbedError',
  'EvalError',
  'StacError',
  'RegistryError',
  'TileError',
  'ServeError',
]);

export interface HandledError {
  readonly exitCode: number;
  readonly message: string;
}

/** What to print and which exit code to use for an error thrown by a command. */
export function describeError(error: unknown, debug = process.env.GEOBATCH_DEBUG === '1'): HandledError {
  if (error instanceof InterruptedError) return { exitCode: 130, message: `geobatch: ${error.message}` };
  if (error instanceof ReportedFailure)
    return { exitCode: 1, message: error.message ? `geobatch: ${error.message}` : '' };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    // commander reports its own usage errors with codes like 'commander.unknownOption'
    if (typeof code === 'string' && code.startsWith('commander.')) {
      return { exitCode: (error as { exitCode?: number }).exitCode ?? 2, message: '' };
    }
    if (userErrorNames.has(error.name) || userErrorNames.has(error.constructor.name)) {
      const exitCode = error.name === 'UsageError' || error.name === 'PipelineError' ? 2 : 1;
      return {
        exitCode,
        message: `geobatch: ${error.message}${debug && error.stack ? `\n${error.stack}` : ''}`,
      };
    }
    return {
      exitCode: 1,
      message:
        `geobatch: ${error.message}\n${debug ? (error.stack ?? '') : '(unexpected error; run with GEOBATCH_DEBUG=1 to see where it came from)'}`.trimEnd(),
    };
  }
  return { exitCode: 1, message: `geobatch: ${String(error)}` };
}

/** Prints the error and sets the process exit code; the only place that decides exit codes. */
export function handleError(error: unknown): void {
  const { exitCode, message } = describeError(error);
  if (message) process.stderr.write(message + '\n');
  process.exitCode = exitCode;
}
