/**
 * A local stand-in for AWS Batch that EXECUTES what is submitted, for end-to-end tests of the
 * Batch runner through the real CLI. It answers the control-plane calls over HTTP (composed on
 * test/helpers/fake-aws.ts, which records every request) and runs each array child's container
 * command as a child process of `bin/job.ts` (through tsx), with the container overrides'
 * environment plus AWS_BATCH_JOB_ID, AWS_BATCH_JOB_ARRAY_INDEX, AWS_BATCH_JOB_ARRAY_SIZE and
 * AWS_BATCH_JOB_ATTEMPT. Each attempt's stdout and stderr become its CloudWatch Logs stream
 * (`<job definition name>/default/<ecs task id>`), answered by GetLogEvents.
 *
 * Batch's rules it follows: states SUBMITTED -> PENDING -> RUNNABLE -> STARTING -> RUNNING ->
 * SUCCEEDED | FAILED; a plain dependency waits for the whole job (an array parent finishes when
 * all its children have, and FAILS if any did), N_TO_N makes child i wait for child i only, and a
 * job whose dependency failed fails with 'Dependent Job failed'; an array parent is PENDING until
 * every child has finished, with per-state `statusSummary` counts; retries follow
 * `retryStrategy` (the submitted one, else the job definition's) and its `evaluateOnExit` rules;
 * TerminateJob stops running jobs (SIGTERM, then SIGKILL) and fails queued ones, CancelJob fails
 * queued ones only. Faults (a spot reclaim, a container killed) are injected per attempt by the
 * test.
 *
 * A test double, never a runner: nothing in lib/ may import it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { PlatformDescriptor } from '../../lib/config/descriptor.js';
import { tsxLoader } from './cli.js';
import { FakeAwsError, startFakeAws, type FakeAws } from './fake-aws.js';

const repo = resolve(import.meta.dirname, '../..');

export type StandinState =
  'SUBMITTED' | 'PENDING' | 'RUNNABLE' | 'STARTING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

const states: readonly StandinState[] = [
  'SUBMITTED',
  'PENDING',
  'RUNNABLE',
  'STARTING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
];

const isFinal = (s: StandinState) => s === 'SUCCEEDED' || s === 'FAILED';

/** Where an injected fault hits: one attempt of one task (a plain job or an array child). */
export interface AttemptRef {
  readonly jobName: string;
  /** The stage, from the command `geobatch-job <plan> <stage> ...`. */
  readonly stage: string;
  /** The array index (undefined for a plain job). */
  readonly arrayIndex: number | undefined;
  /** 1-based. */
  readonly attempt: number;
}

/**
 * - `spot-reclaim`: the host goes away once the container has written its first line
 *   (statusReason 'Host EC2 (instance ...) terminated.', no exit code).
 * - `oom-kill`: the container is killed once it has written its first line (exit 137,
 *   reason 'OutOfMemoryError: Container killed due to memory usage').
 * - `killed-after-exit`: the container runs to its end (so it writes its outputs and marker)
 *   and is then reported killed (exit 137, OutOfMemoryError), as when a kill lands between the
 *   marker and the process's exit.
 */
export type Fault = 'spot-reclaim' | 'oom-kill' | 'killed-after-exit';

export interface StandinOptions {
  readonly descriptor: PlatformDescriptor;
  /** The containers' environment (S3 endpoint, credentials); the overrides' environment is added. */
  readonly containerEnv: NodeJS.ProcessEnv;
  /** Containers running at once. @default 2 */
  readonly maxRunning?: number;
  /** A container still running after this long is killed (reported as a timeout). @default 60000 */
  readonly attemptTimeoutMs?: number;
  /** Attempts of each job definition, with Batch's two rules (the CDK default). @default 3 */
  readonly definitionAttempts?: number;
  /** Per attempt, the fault to inject, if any. */
  readonly fault?: (ref: AttemptRef) => Fault | undefined;
  /** Refuses a SubmitJob (e.g. a quota or permission error) when it returns an error. */
  readonly refuseSubmit?: (input: Record<string, unknown>) => FakeAwsError | undefined;
}

interface LogEvent {
  readonly timestamp: number;
  readonly message: string;
  readonly ingestionTime: number;
}

interface Attempt {
  readonly taskId: string;
  readonly logStreamName: string;
  readonly startedAt: number;
  stoppedAt?: number;
  exitCode?: number;
  reason?: string;
  statusReason?: string;
}

interface RetryRule {
  readonly action: string;
  readonly onStatusReason?: string;
  readonly onReason?: string;
  readonly onExitCode?: string;
}

interface RetryStrategy {
  readonly attempts?: number;
  readonly evaluateOnExit?: readonly RetryRule[];
}

interface Job {
  readonly id: string;
  readonly name: string;
  readonly queue: string;
  readonly definition: string;
  readonly definitionName: string;
  readonly command: readonly string[];
  readonly environment: readonly { name: string; value: string }[];
  readonly dependsOn: readonly { jobId: string; type?: string }[];
  readonly retry: RetryStrategy;
  /** `timeout.attemptDurationSeconds`: per attempt (per child of an array). */
  readonly timeoutSeconds?: number;
  readonly createdAt: number;
  readonly parent?: Job;
  readonly index?: number;
  /** Array parents: the children, by index. */
  readonly children?: Job[];
  status: StandinState;
  statusReason?: string;
  startedAt?: number;
  stoppedAt?: number;
  readonly attempts: Attempt[];
  current?: Attempt;
  process?: ChildProcess;
  /** Set by TerminateJob on a running job: its reason. */
  terminating?: string;
  fault?: Fault;
  readonly history: StandinState[];
}

/** What a test may look at of a job. */
export interface StandinJob {
  readonly id: string;
  readonly name: string;
  readonly stage: string;
  readonly arrayIndex?: number;
  /** Array parents: the number of children. */
  readonly arraySize?: number;
  readonly status: StandinState;
  readonly statusReason?: string;
  readonly history: readonly StandinState[];
  /** The log stream of the attempt running now. */
  readonly currentLogStream?: string;
  /** Finished attempts. */
  readonly attempts: readonly {
    readonly logStreamName: string;
    readonly exitCode?: number;
    readonly reason?: string;
    readonly statusReason?: string;
  }[];
}

export interface BatchStandin {
  /** The recording HTTP fake the SDK clients are pointed at. */
  readonly aws: FakeAws;
  /** The environment that points the CLI's Batch, SSM and CloudWatch Logs clients here. */
  env(): Record<string, string>;
  /** Every job and array child, in submission order (parents before their children). */
  jobs(): StandinJob[];
  /** Resolves once `predicate` holds (checked on every state change and log line), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void>;
  /** Resolves once every job submitted so far has finished. */
  settled(timeoutMs: number): Promise<void>;
  /** The lines of a log stream. */
  logLines(logStreamName: string): string[];
  /** Kills every container still running and stops the server. */
  stop(): Promise<void>;
}

function glob(pattern: string, value: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
    's',
  );
  return re.test(value);
}

/** Starts the stand-in on 127.0.0.1. */
export async function startBatchStandin(options: StandinOptions): Promise<BatchStandin> {
  const aws = await startFakeAws();
  const { descriptor } = options;
  const maxRunning = options.maxRunning ?? 2;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? 60_000;
  const region = descriptor.region;
  const account = descriptor.account;
  const jobs = new Map<string, Job>();
  const order: Job[] = [];
  const logs = new Map<string, LogEvent[]>();
  const listeners = new Set<() => void>();
  const processes = new Set<ChildProcess>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const definitions = new Map<string, { name: string; revision: number; body: Record<string, unknown> }>();
  const retryRules: RetryRule[] = [
    { action: 'RETRY', onStatusReason: 'Host EC2*' },
    { action: 'EXIT', onReason: '*' },
  ];
  for (const d of Object.values(descriptor.jobDefinitions)) {
    const revision = Number(/:(\d+)$/.exec(d.arn)?.[1] ?? '1');
    definitions.set(d.arn, {
      name: d.name,
      revision,
      body: {
        jobDefinitionName: d.name,
        jobDefinitionArn: d.arn,
        revision,
        status: 'ACTIVE',
        type: 'container',
        containerProperties: {
          image: `${descriptor.repositories[d.queue].uri}:${descriptor.imageTag}`,
          command: ['geobatch-job', '--help'],
          resourceRequirements: [
            { type: 'VCPU', value: '1' },
            { type: 'MEMORY', value: '512' },
          ],
          logConfiguration: {
            logDriver: 'awslogs',
            options: { 'awslogs-group': descriptor.logGroup.name },
          },
        },
        retryStrategy: { attempts: options.definitionAttempts ?? 3, evaluateOnExit: retryRules },
        propagateTags: true,
        // as deployed: CloudFormation adds its system tags to the resources it creates
        tags: {
          'geobatch:env': descriptor.env,
          'aws:cloudformation:stack-name': `Geobatch-${descriptor.env}`,
          'aws:cloudformation:logical-id': `JobDefinition${d.name.replace(/[^A-Za-z0-9]/g, '')}`,
          'aws:cloudformation:stack-id': `arn:aws:cloudformation:${region}:${account}:stack/Geobatch-${descriptor.env}/0`,
        },
        platformCapabilities: ['EC2'],
      },
    });
  }

  const changed = () => {
    for (const listener of [...listeners]) listener();
  };
  const setState = (job: Job, state: StandinState, reason?: string) => {
    if (job.status === state) return;
    job.status = state;
    job.history.push(state);
    if (reason !== undefined) job.statusReason = reason;
    if (isFinal(state)) job.stoppedAt = Date.now();
    changed();
  };
  const stageOf = (job: Job) => job.command[2] ?? '';
  /** What runs: plain jobs and array children. */
  const units = () => order.filter((j) => !j.children);

  // -- scheduling ------------------------------------------------------------------------------

  /** 'ready', 'wait' or 'failed' for a unit's dependencies. */
  const dependencies = (unit: Job): 'ready' | 'wait' | 'failed' => {
    const owner = unit.parent ?? unit;
    let result: 'ready' | 'wait' = 'ready';
    for (const dep of owner.dependsOn) {
      let target = jobs.get(dep.jobId);
      if (!target) return 'failed';
      if (dep.type === 'N_TO_N') target = target.children?.[unit.index ?? -1] ?? target;
      if (target.status === 'FAILED') return 'failed';
      if (target.status !== 'SUCCEEDED') result = 'wait';
    }
    return result;
  };

  const updateParents = () => {
    for (const parent of order) {
      if (!parent.children || isFinal(parent.status)) continue;
      const children = parent.children;
      if (children.every((c) => isFinal(c.status))) {
        // an array parent fails when any child failed, once every child has finished
        const failed = children.some((c) => c.status === 'FAILED');
        setState(parent, failed ? 'FAILED' : 'SUCCEEDED');
      } else if (
        parent.status === 'SUBMITTED' &&
        children.some((c) => !['SUBMITTED', 'PENDING'].includes(c.status))
      ) {
        // Batch: "an array parent job is updated to PENDING when any child job is updated to RUNNABLE"
        setState(parent, 'PENDING');
      }
      if (parent.startedAt === undefined) {
        const started = children.map((c) => c.startedAt).filter((t): t is number => t !== undefined);
        if (started.length) parent.startedAt = Math.min(...started);
      }
    }
  };

  // one transition per unit per tick, so that every state is observable in `history`
  const tick = () => {
    if (stopped) return;
    for (const unit of units()) {
      switch (unit.status) {
        case 'SUBMITTED':
          setState(unit, 'PENDING');
          break;
        case 'PENDING': {
          const deps = dependencies(unit);
          if (deps === 'ready') setState(unit, 'RUNNABLE');
          else if (deps === 'failed') setState(unit, 'FAILED', 'Dependent Job failed');
          break;
        }
        case 'RUNNABLE': {
          const busy = units().filter((u) => u.status === 'STARTING' || u.status === 'RUNNING').length;
          if (busy < maxRunning) setState(unit, 'STARTING');
          break;
        }
        case 'STARTING':
          startAttempt(unit);
          break;
        default:
          break;
      }
    }
    updateParents();
  };
  const loop = setInterval(tick, 25);
  timers.add(loop);

  // -- containers ------------------------------------------------------------------------------

  /** Collects a container's output as log events, one per line (a line may span chunks). */
  const logWriter = (stream: string) => {
    let partial = '';
    // as with CloudWatch Logs, the stream exists from its first event on
    const push = (line: string) => {
      const now = Date.now();
      const events = logs.get(stream) ?? [];
      logs.set(stream, events);
      events.push({ timestamp: now, message: line, ingestionTime: now });
    };
    return {
      write(text: string) {
        const lines = (partial + text).split('\n');
        partial = lines.pop()!;
        for (const line of lines) push(line);
        if (lines.length) changed();
      },
      end() {
        if (partial) push(partial);
        partial = '';
      },
    };
  };

  const startAttempt = (unit: Job) => {
    const number = unit.attempts.length + 1;
    const taskId = randomBytes(16).toString('hex');
    const attempt: Attempt = {
      taskId,
      logStreamName: `${unit.definitionName}/default/${taskId}`,
      startedAt: Date.now(),
    };
    unit.current = attempt;
    unit.startedAt ??= attempt.startedAt;
    unit.fault = options.fault?.({
      jobName: unit.parent?.name ?? unit.name,
      stage: stageOf(unit),
      arrayIndex: unit.index,
      attempt: number,
    });
    setState(unit, 'RUNNING');
    const [program, ...args] = unit.command;
    if (program !== 'geobatch-job') {
      finishAttempt(unit, { exitCode: 127, reason: `CannotStartContainerError: ${program}: not found` });
      return;
    }
    const env: NodeJS.ProcessEnv = { ...options.containerEnv };
    for (const { name, value } of unit.environment) env[name] = value;
    env.AWS_BATCH_JOB_ID = unit.id;
    env.AWS_BATCH_JOB_ATTEMPT = String(number);
    env.AWS_BATCH_JQ_NAME = unit.queue;
    env.AWS_BATCH_CE_NAME = `${unit.queue}-ce`;
    if (unit.parent) {
      env.AWS_BATCH_JOB_ARRAY_INDEX = String(unit.index);
      env.AWS_BATCH_JOB_ARRAY_SIZE = String(unit.parent.children!.length);
    }
    const child = spawn(process.execPath, ['--import', tsxLoader, resolve(repo, 'bin/job.ts'), ...args], {
      cwd: repo,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    unit.process = child;
    processes.add(child);
    // stdout and stderr go to one stream, as with the awslogs driver
    const out = logWriter(attempt.logStreamName);
    const err = logWriter(attempt.logStreamName);
    let killed = false;
    const onOutput = (writer: ReturnType<typeof logWriter>) => (chunk: Buffer) => {
      writer.write(chunk.toString('utf8'));
      if (!killed && (unit.fault === 'spot-reclaim' || unit.fault === 'oom-kill')) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout!.on('data', onOutput(out));
    child.stderr!.on('data', onOutput(err));
    const timeout = setTimeout(
      () => {
        unit.terminating ??= 'Job attempt duration exceeded timeout';
        child.kill('SIGKILL');
      },
      Math.min(attemptTimeoutMs, (unit.timeoutSeconds ?? Infinity) * 1000),
    );
    timers.add(timeout);
    child.on('close', (code, signal) => {
      out.end();
      err.end();
      clearTimeout(timeout);
      timers.delete(timeout);
      processes.delete(child);
      unit.process = undefined;
      if (stopped) return;
      const exitCode = code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 6);
      if (unit.terminating !== undefined) {
        finishAttempt(unit, { exitCode, statusReason: unit.terminating, noRetry: true });
      } else if (unit.fault === 'spot-reclaim') {
        finishAttempt(unit, { statusReason: 'Host EC2 (instance i-0123456789abcdef0) terminated.' });
      } else if (unit.fault === 'oom-kill' || unit.fault === 'killed-after-exit') {
        finishAttempt(unit, {
          exitCode: 137,
          reason: 'OutOfMemoryError: Container killed due to memory usage',
        });
      } else {
        finishAttempt(unit, { exitCode });
      }
    });
  };

  const finishAttempt = (
    unit: Job,
    end: { exitCode?: number; reason?: string; statusReason?: string; noRetry?: boolean },
  ) => {
    const attempt = unit.current!;
    unit.current = undefined;
    attempt.stoppedAt = Date.now();
    if (end.exitCode !== undefined) attempt.exitCode = end.exitCode;
    if (end.reason !== undefined) attempt.reason = end.reason;
    const succeeded = end.exitCode === 0 && end.statusReason === undefined && end.reason === undefined;
    attempt.statusReason = end.statusReason ?? 'Essential container in task exited';
    unit.attempts.push(attempt);
    if (succeeded) {
      setState(unit, 'SUCCEEDED', 'Essential container in task exited');
      return;
    }
    const limit = unit.retry.attempts ?? 1;
    let action = 'RETRY';
    for (const rule of unit.retry.evaluateOnExit ?? []) {
      const matches =
        (rule.onStatusReason === undefined || glob(rule.onStatusReason, attempt.statusReason)) &&
        (rule.onReason === undefined || glob(rule.onReason, attempt.reason ?? '')) &&
        (rule.onExitCode === undefined || glob(rule.onExitCode, String(attempt.exitCode ?? '')));
      if (matches) {
        action = rule.action.toUpperCase();
        break;
      }
    }
    if (!end.noRetry && action === 'RETRY' && unit.attempts.length < limit) {
      // a retried job goes back to the queue
      unit.status = 'RUNNABLE';
      unit.history.push('RUNNABLE');
      changed();
      return;
    }
    setState(unit, 'FAILED', attempt.statusReason);
  };

  // -- the API ---------------------------------------------------------------------------------

  const clientError = (message: string) => new FakeAwsError('ClientException', message);

  aws.on('GetParameter', (input) => {
    if (input.Name !== `/geobatch/${descriptor.env}/platform`)
      throw new FakeAwsError('ParameterNotFound', `parameter ${String(input.Name)} not found`);
    return {
      Parameter: { Name: input.Name, Type: 'String', Value: JSON.stringify(descriptor), Version: 1 },
    };
  });

  const queues = Object.values(descriptor.queues);
  aws.on('DescribeJobQueues', (input) => ({
    jobQueues: queues
      .filter((q) =>
        ((input.jobQueues as string[] | undefined) ?? [q.name]).some((n) => n === q.name || n === q.arn),
      )
      .map((q) => ({
        jobQueueName: q.name,
        jobQueueArn: q.arn,
        state: 'ENABLED',
        status: 'VALID',
        priority: 1,
        computeEnvironmentOrder: [],
      })),
  }));

  aws.on('DescribeJobDefinitions', (input) => ({
    jobDefinitions: ((input.jobDefinitions as string[] | undefined) ?? [...definitions.keys()])
      .map((arn) => definitions.get(arn)?.body)
      .filter(Boolean),
  }));

  aws.on('RegisterJobDefinition', (input) => {
    const name = String(input.jobDefinitionName);
    const tags = (input.tags ?? {}) as Record<string, string>;
    const reserved = Object.keys(tags).find((k) => k.toLowerCase().startsWith('aws:'));
    if (reserved) throw clientError(`Tag keys starting with 'aws:' are reserved: ${reserved}`);
    const revision =
      Math.max(0, ...[...definitions.values()].filter((d) => d.name === name).map((d) => d.revision)) + 1;
    const arn = `arn:aws:batch:${region}:${account}:job-definition/${name}:${revision}`;
    definitions.set(arn, {
      name,
      revision,
      body: { ...input, jobDefinitionArn: arn, revision, status: 'ACTIVE' },
    });
    return { jobDefinitionName: name, jobDefinitionArn: arn, revision };
  });

  aws.on('SubmitJob', (input) => {
    const refused = options.refuseSubmit?.(input);
    if (refused) throw refused;
    const name = String(input.jobName ?? '');
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(name)) throw clientError(`invalid jobName ${name}`);
    const definitionArn = String(input.jobDefinition ?? '');
    const definition = definitions.get(definitionArn);
    if (!definition) throw clientError(`JobDefinition ${definitionArn} not found`);
    const queue = String(input.jobQueue ?? '');
    if (!queues.some((q) => q.name === queue || q.arn === queue))
      throw clientError(`JobQueue ${queue} not found`);
    const dependsOn = (input.dependsOn ?? []) as { jobId: string; type?: string }[];
    if (dependsOn.length > 20) throw clientError('A job can depend on at most 20 jobs');
    const size = (input.arrayProperties as { size?: number } | undefined)?.size;
    if (size !== undefined && (!Number.isInteger(size) || size < 2 || size > 10_000))
      throw clientError(`array size ${size} must be between 2 and 10000`);
    for (const dep of dependsOn) {
      const target = jobs.get(dep.jobId);
      if (!target) throw clientError(`dependsOn: job ${dep.jobId} not found`);
      if (dep.type === 'N_TO_N' && (size === undefined || target.children?.length !== size))
        throw clientError(`N_TO_N dependency on ${dep.jobId} needs two array jobs of the same size`);
    }
    const tags = (input.tags ?? {}) as Record<string, string>;
    if (Object.keys(tags).length > 50) throw clientError('at most 50 tags');
    const overrides = (input.containerOverrides ?? {}) as {
      command?: string[];
      environment?: { name: string; value: string }[];
    };
    const timeoutSeconds = (input.timeout as { attemptDurationSeconds?: number } | undefined)
      ?.attemptDurationSeconds;
    if (timeoutSeconds !== undefined && timeoutSeconds < 60)
      throw clientError(`timeout.attemptDurationSeconds ${timeoutSeconds}: the minimum is 60`);
    const body = definition.body as {
      containerProperties?: { command?: string[] };
      retryStrategy?: RetryStrategy;
    };
    const base = {
      name,
      queue,
      definition: definitionArn,
      definitionName: definition.name,
      command: overrides.command ?? body.containerProperties?.command ?? [],
      environment: overrides.environment ?? [],
      retry: (input.retryStrategy as RetryStrategy | undefined) ?? body.retryStrategy ?? {},
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      createdAt: Date.now(),
    };
    const id = randomUUID();
    const job: Job = {
      ...base,
      id,
      dependsOn,
      status: 'SUBMITTED',
      attempts: [],
      history: ['SUBMITTED'],
      ...(size !== undefined ? { children: [] } : {}),
    };
    jobs.set(id, job);
    order.push(job);
    for (let i = 0; i < (size ?? 0); i++) {
      const child: Job = {
        ...base,
        id: `${id}:${i}`,
        dependsOn: [],
        parent: job,
        index: i,
        status: 'SUBMITTED',
        attempts: [],
        history: ['SUBMITTED'],
      };
      job.children!.push(child);
      jobs.set(child.id, child);
      order.push(child);
    }
    changed();
    return { jobId: id, jobName: name, jobArn: `arn:aws:batch:${region}:${account}:job/${id}` };
  });

  const stop = (unit: Job, reason: string, running: boolean) => {
    if (isFinal(unit.status)) return;
    if (unit.status === 'STARTING' || unit.status === 'RUNNING') {
      if (!running) return;
      unit.terminating = reason;
      const child = unit.process;
      if (child) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        timers.add(timer);
        child.once('close', () => {
          clearTimeout(timer);
          timers.delete(timer);
        });
      } else {
        setState(unit, 'FAILED', reason);
      }
      return;
    }
    setState(unit, 'FAILED', reason);
  };
  const stopJob = (input: Record<string, unknown>, running: boolean) => {
    const job = jobs.get(String(input.jobId));
    if (!job) throw clientError(`Job ${String(input.jobId)} not found`);
    const reason = String(input.reason ?? '');
    for (const unit of job.children ?? [job]) stop(unit, reason, running);
    updateParents();
    return {};
  };
  aws.on('TerminateJob', (input) => stopJob(input, true));
  aws.on('CancelJob', (input) => stopJob(input, false));

  const statusSummary = (job: Job) =>
    Object.fromEntries(states.map((s) => [s, job.children!.filter((c) => c.status === s).length]));
  const attemptDetail = (a: Attempt) => ({
    container: {
      taskArn: `arn:aws:ecs:${region}:${account}:task/${a.taskId}`,
      logStreamName: a.logStreamName,
      ...(a.exitCode !== undefined ? { exitCode: a.exitCode } : {}),
      ...(a.reason !== undefined ? { reason: a.reason } : {}),
    },
    startedAt: a.startedAt,
    ...(a.stoppedAt !== undefined ? { stoppedAt: a.stoppedAt } : {}),
    ...(a.statusReason !== undefined ? { statusReason: a.statusReason } : {}),
  });
  const detail = (job: Job) => {
    const last = job.current ?? job.attempts[job.attempts.length - 1];
    return {
      jobId: job.id,
      jobName: job.name,
      jobArn: `arn:aws:batch:${region}:${account}:job/${job.id}`,
      jobQueue: job.queue,
      jobDefinition: job.definition,
      status: job.status,
      ...(job.statusReason !== undefined ? { statusReason: job.statusReason } : {}),
      createdAt: job.createdAt,
      ...(job.startedAt !== undefined ? { startedAt: job.startedAt } : {}),
      ...(job.stoppedAt !== undefined ? { stoppedAt: job.stoppedAt } : {}),
      dependsOn: job.dependsOn,
      ...(job.children
        ? { arrayProperties: { size: job.children.length, statusSummary: statusSummary(job) } }
        : job.index !== undefined
          ? { arrayProperties: { index: job.index } }
          : {}),
      // finished attempts only, as Batch lists them
      attempts: job.attempts.map(attemptDetail),
      retryStrategy: job.retry,
      container: {
        command: job.command,
        environment: job.environment,
        logConfiguration: { logDriver: 'awslogs', options: { 'awslogs-group': descriptor.logGroup.name } },
        ...(last && !job.children
          ? {
              logStreamName: last.logStreamName,
              taskArn: `arn:aws:ecs:${region}:${account}:task/${last.taskId}`,
            }
          : {}),
        ...(last?.exitCode !== undefined && job.current === undefined ? { exitCode: last.exitCode } : {}),
        ...(last?.reason !== undefined && job.current === undefined ? { reason: last.reason } : {}),
      },
    };
  };
  aws.on('DescribeJobs', (input) => ({
    jobs: ((input.jobs as string[] | undefined) ?? [])
      .map((id) => jobs.get(id))
      .filter((j): j is Job => j !== undefined)
      .map(detail),
  }));

  aws.on('ListJobs', (input) => {
    const parent = jobs.get(String(input.arrayJobId ?? ''));
    if (!parent?.children)
      throw clientError('ListJobs: only arrayJobId listings are supported by the stand-in');
    const status = input.jobStatus as StandinState | undefined;
    const max = Number(input.maxResults ?? 100);
    const start = Number(input.nextToken ?? 0);
    const matching = parent.children.filter((c) => status === undefined || c.status === status);
    const page = matching.slice(start, start + max);
    return {
      jobSummaryList: page.map((c) => {
        const last = c.attempts[c.attempts.length - 1];
        return {
          jobId: c.id,
          jobName: c.name,
          jobArn: `arn:aws:batch:${region}:${account}:job/${c.id}`,
          status: c.status,
          ...(c.statusReason !== undefined ? { statusReason: c.statusReason } : {}),
          createdAt: c.createdAt,
          arrayProperties: { index: c.index },
          ...(last
            ? {
                container: {
                  ...(last.exitCode !== undefined ? { exitCode: last.exitCode } : {}),
                  ...(last.reason !== undefined ? { reason: last.reason } : {}),
                },
              }
            : {}),
        };
      }),
      ...(start + max < matching.length ? { nextToken: String(start + max) } : {}),
    };
  });

  aws.on('GetLogEvents', (input) => {
    if (input.logGroupName !== descriptor.logGroup.name)
      throw new FakeAwsError(
        'ResourceNotFoundException',
        `log group ${String(input.logGroupName)} does not exist`,
      );
    const events = logs.get(String(input.logStreamName));
    if (!events)
      throw new FakeAwsError('ResourceNotFoundException', 'The specified log stream does not exist.');
    const from = input.nextToken ? Number(String(input.nextToken).slice(2)) : 0;
    return {
      events: events.slice(from),
      nextForwardToken: `f/${events.length}`,
      nextBackwardToken: `b/${from}`,
    };
  });

  const waitFor = (predicate: () => boolean, timeoutMs: number, what: string) =>
    new Promise<void>((resolveWait, reject) => {
      if (predicate()) return resolveWait();
      const check = () => {
        if (!predicate()) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolveWait();
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        const now = order.map(
          (j) => `${j.id.slice(0, 8)}${j.index !== undefined ? `:${j.index}` : ''} ${j.name} ${j.status}`,
        );
        reject(
          new Error(
            `batch stand-in: timed out after ${timeoutMs} ms waiting for ${what}; jobs:\n${now.join('\n')}`,
          ),
        );
      }, timeoutMs);
      listeners.add(check);
    });

  return {
    aws,
    env: () => aws.env(),
    jobs: () =>
      order.map((j) => ({
        id: j.id,
        name: j.name,
        stage: stageOf(j),
        ...(j.index !== undefined ? { arrayIndex: j.index } : {}),
        ...(j.children ? { arraySize: j.children.length } : {}),
        status: j.status,
        ...(j.statusReason !== undefined ? { statusReason: j.statusReason } : {}),
        history: [...j.history],
        ...(j.current ? { currentLogStream: j.current.logStreamName } : {}),
        attempts: j.attempts.map((a) => ({
          logStreamName: a.logStreamName,
          ...(a.exitCode !== undefined ? { exitCode: a.exitCode } : {}),
          ...(a.reason !== undefined ? { reason: a.reason } : {}),
          ...(a.statusReason !== undefined ? { statusReason: a.statusReason } : {}),
        })),
      })),
    waitFor,
    settled: (timeoutMs) =>
      waitFor(() => order.every((j) => isFinal(j.status)), timeoutMs, 'every job to finish'),
    logLines: (stream) => (logs.get(stream) ?? []).map((e) => e.message),
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      clearInterval(loop);
      const exits = [...processes].map(
        (child) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('close', () => done());
            child.kill('SIGKILL');
          }),
      );
      await Promise.all(exits);
      await aws.stop();
    },
  };
}
