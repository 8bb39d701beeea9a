/** How a training run failed, as the CLI and the job report it. */
export type TrainErrorKind =
  /** A bad trainer config or option (trainer exit 2, kind config). */
  | 'config'
  /** A bad dataset: a missing or unreadable split file or image (exit 2, kind data). */
  | 'data'
  /** Pretrained weights could not be loaded (exit 3). */
  | 'weights'
  /** Out of memory: the trainer said so, or the process was SIGKILLed (the kernel's OOM killer). */
  | 'memory'
  /** Any other trainer failure, or a signal. */
  | 'runtime'
  /** No Python with torch and the trainer package could be found. */
  | 'python'
  /** The ONNX export does not load or does not match the PyTorch outputs. */
  | 'onnx'
  /** The run was cancelled (the job's signal). */
  | 'aborted';

/** A training failure: `kind` says whose problem it is, the message names the file, field or value. */
export class TrainError extends Error {
  override readonly name = 'TrainError';
  constructor(
    readonly kind: TrainErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
