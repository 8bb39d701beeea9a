/**
 * How a run shows progress: bars per stage that redraw in place on a terminal, JSON lines
 * (one event per line) when the output is a pipe or `--json` was given.
 */
import type { Writable } from 'node:stream';
import type { RunEvent } from '../runners/local.js';

export interface ProgressView {
  onEvent(event: RunEvent): void;
  /** Stops redrawing and leaves the last frame on screen. */
  close(): void;
}

/** JSON lines: one event per line, for scripts and logs. */
export function jsonLinesView(out: Writable): ProgressView {
  return {
    onEvent: (event) => out.write(JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n'),
    close: () => undefined,
  };
}

interface StageBar {
  readonly name: string;
  readonly tasks: number;
  done: number;
  skipped: number;
  failed: number;
  blocked: number;
  running: number;
  firstStart?: number;
  lastEnd?: number;
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/** Renders one stage line: name, bar, counts, elapsed time and an estimate of what is left. */
export function renderStageLine(bar: StageBar, nameWidth: number, barWidth: number, now: number): string {
  const finished = bar.done + bar.failed + bar.blocked;
  const fraction = bar.tasks === 0 ? 1 : finished / bar.tasks;
  const filled = Math.round(fraction * barWidth);
  const gauge = '█'.repeat(filled) + '░'.repeat(barWidth - filled);
  const parts = [`${bar.done}/${bar.tasks}`];
  if (bar.skipped) parts.push(`${bar.skipped} already done`);
  if (bar.running) parts.push(`${bar.running} running`);
  if (bar.failed) parts.push(`${bar.failed} failed`);
  if (bar.blocked) parts.push(`${bar.blocked} blocked`);
  if (bar.firstStart !== undefined) {
    const end = finished === bar.tasks && bar.lastEnd !== undefined ? bar.lastEnd : now;
    const elapsed = end - bar.firstStart;
    parts.push(formatDuration(elapsed));
    const fresh = bar.done - bar.skipped;
    const left = bar.tasks - finished;
    if (left > 0 && fresh > 0) parts.push(`~${formatDuration((elapsed / fresh) * left)} left`);
  }
  return `${bar.name.padEnd(nameWidth)} ${gauge} ${parts.join(' · ')}`;
}

/** Bars per stage, redrawn at most 10 times a second, with failures printed above them as they happen. */
export function terminalView(out: Writable & { columns?: number }): ProgressView {
  const bars = new Map<string, StageBar>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  let header = '';
  const draw = () => {
    const now = Date.now();
    const nameWidth = Math.max(5, ...[...bars.keys()].map((n) => n.length));
    const width = Math.max(10, Math.min(30, (out.columns ?? 80) - nameWidth - 50));
    const lines = [...bars.values()].map((b) => renderStageLine(b, nameWidth, width, now));
    let text = drawn > 0 ? `\x1b[${drawn}A` : '';
    text += lines.map((l) => `\x1b[2K${l}\n`).join('');
    out.write(text);
    drawn = lines.length;
  };
  const above = (line: string) => {
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
    out.write(line + '\n');
    draw();
  };
  return {
    onEvent(event) {
      if (event.type === 'run-started') {
        header = `run ${event.runId}  ${event.runUri}`;
        out.write(header + '\n');
        for (const s of event.stages) {
          bars.set(s.name, {
            name: s.name,
            tasks: s.tasks,
            done: s.alreadyDone,
            skipped: s.alreadyDone,
            failed: 0,
            blocked: 0,
            running: 0,
          });
        }
        draw();
        timer = setInterval(draw, 100);
        timer.unref();
        return;
      }
      if (event.type === 'task') {
        const bar = bars.get(event.stage);
        if (!bar) return;
        const now = Date.now();
        switch (event.state) {
          case 'started':
            bar.running++;
            bar.firstStart ??= now;
            break;
          case 'done':
            bar.running--;
            bar.done++;
            bar.lastEnd = now;
            break;
          case 'skipped':
            bar.running--;
            bar.done++;
            bar.skipped++;
            break;
          case 'failed':
            bar.running--;
            bar.failed++;
            bar.lastEnd = now;
            above(`✗ ${event.stage}[${event.index}] failed: ${event.error ?? ''}`);
            break;
          case 'interrupted':
            bar.running--;
            break;
          case 'blocked':
            bar.blocked++;
            break;
        }
        return;
      }
      if (timer) clearInterval(timer);
      timer = undefined;
      draw();
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
