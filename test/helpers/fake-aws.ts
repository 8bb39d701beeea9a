/**
 * A stand-in for the AWS control-plane APIs the Batch runner calls (Batch's REST-JSON API, SSM
 * and CloudWatch Logs' JSON 1.1 APIs), on 127.0.0.1 with a random port, for CLI tests that run
 * the real commands in child processes. The SDK is pointed at it with AWS_ENDPOINT_URL_<SERVICE>.
 * Every request is recorded; answers come from handlers registered per operation.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeService = 'batch' | 'ssm' | 'logs';

export interface FakeRequest {
  readonly service: FakeService;
  /** The API operation, e.g. `SubmitJob`, `GetParameter`, `GetLogEvents`. */
  readonly operation: string;
  readonly input: Record<string, unknown>;
}

/** An error answer: the SDK raises an exception named `name`. */
export class FakeAwsError {
  constructor(
    readonly name: string,
    readonly message: string,
    readonly status = 400,
  ) {}
}

type Handler = (input: Record<string, unknown>) => unknown;

export interface FakeAws {
  readonly endpoint: string;
  readonly requests: FakeRequest[];
  /** Answers `operation` with what `handler` returns (or throws a FakeAwsError for). */
  on(operation: string, handler: Handler): void;
  /** The environment that points the SDK's Batch, SSM and CloudWatch Logs clients here. */
  env(): Record<string, string>;
  /** Requests of one operation, in order. */
  calls(operation: string): Record<string, unknown>[];
  stop(): Promise<void>;
}

// Batch's REST paths are the lowercased operation names
const batchOperations = [
  'SubmitJob',
  'DescribeJobs',
  'ListJobs',
  'TerminateJob',
  'DescribeJobQueues',
  'DescribeJobDefinitions',
  'RegisterJobDefinition',
];

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

/** Starts the fake on 127.0.0.1. */
export async function startFakeAws(): Promise<FakeAws> {
  const handlers = new Map<string, Handler>();
  const requests: FakeRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const input = await body(req);
      const target = req.headers['x-amz-target'];
      let service: FakeService;
      let operation: string;
      if (typeof target === 'string') {
        const [prefix, op] = target.split('.') as [string, string];
        service = prefix.startsWith('AmazonSSM') ? 'ssm' : 'logs';
        operation = op;
      } else {
        service = 'batch';
        const path = (req.url ?? '').replace(/^\/v1\//, '').split('?')[0]!;
        operation = batchOperations.find((o) => o.toLowerCase() === path) ?? path;
      }
      requests.push({ service, operation, input });
      const handler = handlers.get(operation);
      const json = service === 'batch' ? 'application/json' : 'application/x-amz-json-1.1';
      try {
        if (!handler)
          throw new FakeAwsError('UnknownOperationException', `the fake has no answer for ${operation}`);
        const out = handler(input) ?? {};
        res.writeHead(200, { 'content-type': json });
        res.end(JSON.stringify(out));
      } catch (error) {
        if (!(error instanceof FakeAwsError)) throw error;
        res.writeHead(error.status, {
          'content-type': json,
          'x-amzn-errortype': error.name,
          'x-amzn-requestid': 'fake',
        });
        res.end(JSON.stringify({ __type: error.name, message: error.message }));
      }
    })().catch((error: unknown) => {
      res.writeHead(500);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    requests,
    on: (operation, handler) => void handlers.set(operation, handler),
    env: () => ({
      AWS_ENDPOINT_URL_BATCH: endpoint,
      AWS_ENDPOINT_URL_SSM: endpoint,
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: endpoint,
      AWS_MAX_ATTEMPTS: '1',
    }),
    calls: (operation) => requests.filter((r) => r.operation === operation).map((r) => r.input),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
