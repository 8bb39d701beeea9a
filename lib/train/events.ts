/** The trainer's stdout protocol: one JSON event per line (see the trainer contract in jobs/train). */

export type TrainTask = 'detection' | 'segmentation' | 'classification';
export type Metrics = Record<string, unknown>;

export interface StartEvent {
  readonly event: 'start';
  readonly task: TrainTask;
  readonly model: string;
  readonly device: string;
  readonly worldSize: number;
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  readonly trainImages: number;
  readonly valImages: number;
  readonly resumedFrom: number | null;
  readonly weights: 'default' | 'none' | 'scratch';
}
export interface StepEvent {
  readonly event: 'step';
  readonly epoch: number;
  readonly step: number;
  readonly steps: number;
  readonly loss: number | null;
  readonly lr: number;
  readonly imagesPerSecond: number;
}
export interface EpochEvent {
  readonly event: 'epoch';
  readonly epoch: number;
  readonly trainLoss: number | null;
  readonly seconds: number;
  readonly imagesPerSecond: number;
  readonly metrics: Metrics;
}
export interface CheckpointEvent {
  readonly event: 'checkpoint';
  readonly epoch: number;
  readonly path: string;
}
export interface ArtifactEvent {
  readonly event: 'artifact';
  readonly name: string;
  readonly path: string;
}
export interface WarningEvent {
  readonly event: 'warning';
  readonly message: string;
}
export interface DoneEvent {
  readonly event: 'done';
  readonly epochs: number;
  readonly metrics: Metrics;
  readonly bestEpoch: number | null;
}
export interface ErrorEvent {
  readonly event: 'error';
  readonly kind: string;
  readonly message: string;
}
export interface EnvEvent {
  readonly event: 'env';
  readonly python: string;
  readonly torch: string;
  readonly torchvision: string;
  readonly cuda: boolean;
  readonly gpus: number;
}

export type TrainerEvent =
  | StartEvent
  | StepEvent
  | EpochEvent
  | CheckpointEvent
  | ArtifactEvent
  | WarningEvent
  | DoneEvent
  | ErrorEvent
  | EnvEvent;

const eventNames = new Set([
  'start',
  'step',
  'epoch',
  'checkpoint',
  'artifact',
  'warning',
  'done',
  'error',
  'env',
]);

/** The event on one line, or undefined when the line is not a JSON object with a known `event`. */
export function parseEventLine(line: string): TrainerEvent | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const name = (value as { event?: unknown }).event;
  return typeof name === 'string' && eventNames.has(name) ? (value as TrainerEvent) : undefined;
}

export interface LineSplitterHandlers {
  /** A line that is a trainer event. */
  onEvent(event: TrainerEvent): void;
  /** A non-empty line that is not (a library printed to stdout, a truncated line): log it as text. */
  onText(line: string): void;
}

/**
 * Splits a byte stream into lines (chunks may end mid-line or mid-character) and hands each to
 * `onEvent` or `onText`. A line longer than `maxLineBytes` is passed on as text in pieces rather
 * than buffered without bound.
 */
export class JsonLinesParser {
  private pending = '';
  private readonly decoder = new TextDecoder('utf-8');

  constructor(
    private readonly handlers: LineSplitterHandlers,
    private readonly maxLineBytes = 1 << 20,
  ) {}

  push(chunk: Uint8Array | string): void {
    this.pending += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, newline);
      this.pending = this.pending.slice(newline + 1);
      this.line(line);
    }
    if (this.pending.length > this.maxLineBytes) {
      this.handlers.onText(this.pending);
      this.pending = '';
    }
  }

  /** Flushes a last line without a newline. */
  end(): void {
    this.pending += this.decoder.decode();
    if (this.pending !== '') this.line(this.pending);
    this.pending = '';
  }

  private line(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const event = parseEventLine(line);
    if (event) this.handlers.onEvent(event);
    else this.handlers.onText(line);
  }
}
