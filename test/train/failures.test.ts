import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TrainError } from '../../lib/train/errors.js';
import type { TrainerEvent } from '../../lib/train/events.js';
import { launchTrainer, trainerArgs, trainFailure, type LaunchResult } from '../../lib/train/process.js';
import { writeFakeTrainer } from './fake-trainer.js';

describe('trainer process and failures', () => {
  let dir: string;
  let trainerDir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geobatch-trainfail-'));
    trainerDir = await writeFakeTrainer(join(dir, 'trainer'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  async function run(fake: string, extra: { signal?: AbortSignal; graceMs?: number } = {}) {
    const configPath = join(dir, `${fake}.json`);
    await writeFile(configPath, JSON.stringify({ fake }));
    const events: TrainerEvent[] = [];
    const logs: string[] = [];
    const result = await launchTrainer({
      python: 'python3',
      trainerDir,
      configPath,
      ...extra,
      onEvent: (e) => {
        events.push(e);
        if (e.event === 'warning' && e.message === 'ready' && extra.signal) abort?.();
      },
      onLog: (line, stream) => logs.push(`${stream}: ${line}`),
    });
    return { result, events, logs };
  }
  let abort: (() => void) | undefined;

  it('uses torch.distributed.run only for several processes', () => {
    assert.deepEqual(trainerArgs('/c.json', 1), ['-m', 'geobatch_trainer', '--config', '/c.json']);
    assert.deepEqual(trainerArgs('/c.json', 4).slice(0, 4), [
      '-m',
      'torch.distributed.run',
      '--standalone',
      '--nproc_per_node=4',
    ]);
  });

  it("takes the trainer's error event: kind and message", async () => {
    const { result } = await run('config-event');
    assert.equal(result.code, 2);
    const error = trainFailure(result);
    assert.ok(error instanceof TrainError);
    assert.equal(error.kind, 'config');
    assert.match(error.message, /config error\): 'epochs' = 0: must be an integer >= 1/);
  });

  it('maps exit 2 without an event to config/data, with the last stderr lines', async () => {
    const { result, logs } = await run('exit2');
    const error = trainFailure(result)!;
    assert.equal(error.kind, 'config');
    assert.match(
      error.message,
      /exit 2\)\nlast trainer stderr lines:\n {2}fake trainer: mode exit2\n {2}something about the dataset/,
    );
    assert.ok(logs.includes('stderr: something about the dataset'));
  });

  it('maps exit 3 to weights', async () => {
    const error = trainFailure((await run('weights')).result)!;
    assert.equal(error.kind, 'weights');
    assert.match(error.message, /pretrained weights \(exit 3\)/);
  });

  it('adds stderr to a runtime error event', async () => {
    const error = trainFailure((await run('runtime-event')).result)!;
    assert.equal(error.kind, 'runtime');
    assert.match(error.message, /RuntimeError: boom\nlast trainer stderr lines:[^]*Traceback: boom/);
  });

  it('says out of memory for a SIGKILL, with the last stderr lines', async () => {
    const { result } = await run('oom-kill');
    assert.equal(result.signal, 'SIGKILL');
    const error = trainFailure(result)!;
    assert.equal(error.kind, 'memory');
    assert.match(error.message, /killed by SIGKILL, most likely out of memory[^]*allocating a lot/);
  });

  it('parses events written a character at a time and logs other stdout lines as text', async () => {
    const { result, events, logs } = await run('split-lines');
    assert.equal(trainFailure(result), undefined);
    assert.deepEqual(events, [{ event: 'warning', message: 'split' }]);
    assert.ok(logs.includes('stdout: not json'));
  });

  it('stops the process group on abort: SIGTERM, then SIGKILL after the grace period', async () => {
    for (const [fake, expected] of [
      ['sleep', 'SIGTERM'],
      ['stubborn', 'SIGKILL'],
    ] as const) {
      const controller = new AbortController();
      abort = () => controller.abort();
      const started = Date.now();
      const { result } = await run(fake, { signal: controller.signal, graceMs: 300 });
      assert.equal(result.signal, expected, fake);
      assert.ok(Date.now() - started < 10_000);
      const error = trainFailure(result, true)!;
      assert.equal(error.kind, 'aborted');
    }
  });

  it('rejects with a clear error when the interpreter does not exist', async () => {
    await assert.rejects(
      launchTrainer({
        python: join(dir, 'missing-python'),
        trainerDir,
        configPath: join(dir, 'x.json'),
        onEvent: () => undefined,
        onLog: () => undefined,
      }),
      /cannot start .*missing-python/,
    );
  });

  it('reports any other exit code as runtime', () => {
    const result: LaunchResult = { code: 1, signal: null, stderrTail: ['x'] };
    assert.equal(trainFailure(result)!.kind, 'runtime');
    assert.equal(trainFailure({ code: 0, signal: null, stderrTail: [] }), undefined);
  });
});
