/** Messages between the local runner and its worker processes (JSON over the IPC channel). */

export type ToWorker =
  | {
      readonly type: 'run';
      readonly id: number;
      readonly planUri: string;
      readonly stage: string;
      readonly index: number;
    }
  | { readonly type: 'abort' };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly id: number; readonly done: number; readonly total: number }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly status: 'done' | 'skipped' | 'failed' | 'interrupted';
      readonly durationMs: number;
      readonly error?: string;
    };
