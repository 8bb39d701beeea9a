/**
 * Local runner overhead: a pipeline of 2,000 no-op (`smoke`) items run through the real CLI,
 * timed from the command's start to the first task starting and to the end. Printed beside
 * what a runner that starts one process per task costs (`node -e 0` per task via xargs -P).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const ITEMS = Number(process.env.BENCH_ITEMS ?? 2000);
const repo = resolve(import.meta.dirname, '..');

export interface RunnerOverhead {
  readonly tasks: number;
  readonly firstTaskMs: number;
  readonly wallMs: number;
  readonly perTaskMs: number;
  readonly processPerTaskMs: number;
}

async function timeRun(dir: string): Promise<{ firstTaskMs: number; wallMs: number; done: number }> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--import',
      import.meta.resolve('tsx'),
      join(repo, 'bin/geobatch.ts'),
      'run',
      join(dir, 'noop.yaml'),
      '--json',
      '--new',
    ],
    {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let firstTaskMs = NaN;
  let done = 0;
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const event = JSON.parse(line) as { type: string; state?: string };
    if (event.type === 'task' && event.state === 'started' && Number.isNaN(firstTaskMs))
      firstTaskMs = performance.now() - started;
    if (event.type === 'task' && event.state === 'done') done++;
  }
  const code = await new Promise<number | null>((r) => child.on('close', r));
  if (code !== 0) throw new Error(`geobatch run exited ${code}`);
  return { firstTaskMs, wallMs: performance.now() - started, done };
}

/** Runs the benchmark and returns its figures. */
export async function benchRunnerOverhead(): Promise<RunnerOverhead> {
  const dir = await mkdtemp(join(tmpdir(), 'geobatch-bench-runner-'));
  try {
    await mkdir(join(dir, 'in'));
    await Promise.all(
      Array.from({ length: ITEMS }, (_, i) =>
        writeFile(join(dir, 'in', `s${String(i).padStart(5, '0')}.tif`), ''),
      ),
    );
    await writeFile(
      join(dir, 'noop.yaml'),
      [
        'version: 1',
        'name: noop',
        'output: runs',
        'inputs:',
        '  items: in/*.tif',
        'stages:',
        '  noop:',
        '    job: smoke',
        '    foreach: items',
        '',
      ].join('\n'),
    );
    const run = await timeRun(dir);
    if (run.done !== ITEMS) throw new Error(`expected ${ITEMS} tasks done, saw ${run.done}`);
    // the naive alternative: one node process per task
    const sample = 100;
    const t0 = performance.now();
    spawnSync(
      'bash',
      ['-c', `seq ${sample} | xargs -P ${availableParallelism()} -n 1 ${process.execPath} -e 0`],
      { stdio: 'ignore' },
    );
    const processPerTaskMs = (performance.now() - t0) / sample;
    const taskSpan = run.wallMs - run.firstTaskMs;
    return {
      tasks: ITEMS,
      firstTaskMs: run.firstTaskMs,
      wallMs: run.wallMs,
      perTaskMs: taskSpan / ITEMS,
      processPerTaskMs,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
