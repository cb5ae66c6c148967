import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { WorkerConfig } from '../functions/import-worker/settings.js';
import { type DeadLetter, readDeadLetter } from '../shared/dead-letter.js';
import { Ledger } from '../shared/ledger.js';
import { buildQueueMessage, type QueueMessage } from '../shared/message.js';
import { type ImportPlan, requiredAttributes } from '../shared/plan.js';
import { DEMO_SOLUTION, DEMO_USER_POOL_ID, type DemoUser, demoPlan, demoSecrets, demoUsers } from './demo.js';
import { EventSourcePoller } from './event-source-poller.js';
import { lambdaContext } from './lambda-context.js';
import { type LocalStack, type LocalStackOptions, queueDepth, startLocalStack } from './local-stack.js';
import { createWorkerInstance, type WorkerOverrides } from './worker.js';

/**
 * The real worker handler wired to the local emulators and the Tray stand-in, configured
 * through the same environment variables as in Lambda and built as `npm start` builds it
 * (createWorkerInstance). The tests' way in: one worker, small batches, short timeouts.
 */
export interface Harness {
  stack: LocalStack;
  config: WorkerConfig;
  ledger: Ledger;
  secrets: ReturnType<typeof demoSecrets>;
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>;
  poller: EventSourcePoller;
  send(message: QueueMessage | string): Promise<void>;
  messageFor(user: DemoUser, overrides?: Partial<QueueMessage>): QueueMessage;
  /** Polls until the main queue holds no message (visible or in flight). */
  drain(timeoutMs?: number): Promise<void>;
  /** The DLQ's messages, consumed: raw body and attributes, and as shared/dead-letter.ts reads them. */
  dlqMessages(): Promise<{ body: string; attributes: Record<string, string>; deadLetter: DeadLetter }[]>;
  queueDepth(): Promise<number>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  plan?: ImportPlan;
  stack?: Partial<LocalStackOptions>;
  env?: Record<string, string>;
  worker?: WorkerOverrides;
  functionTimeoutMs?: number;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const secrets = demoSecrets();
  const stack = await startLocalStack({
    masterToken: secrets.masterToken,
    secrets: secrets.credentials,
    visibilityTimeoutSeconds: 1,
    maxReceiveCount: 5,
    tray: { solutions: [DEMO_SOLUTION], rateLimit: false },
    ...options.stack,
  });
  const plan = options.plan ?? demoPlan();
  const env = {
    ...stack.env,
    IMPORT_PLAN: JSON.stringify(plan),
    TRAY_TIMEOUT_MS: '1000',
    RETRY_BASE_SECONDS: '1',
    RETRY_MAX_SECONDS: '1',
    MASTER_TOKEN_CACHE_MS: '0',
    // The stand-in here has no rate limit: pacing is proved on its own (pacer.test.ts) and
    // measured in the benchmark; at the deployed share it would only slow these tests down.
    TRAY_RATE_PER_SECOND: '50',
    ...options.env,
  };
  const worker = createWorkerInstance(env, {
    sqs: stack.sqs,
    dynamodb: stack.dynamodb,
    secretsManager: stack.secretsManager,
    ...options.worker,
  });
  const { config } = worker;
  const ledger = new Ledger({ tableName: config.LEDGER_TABLE, client: stack.dynamodb });
  const functionTimeoutMs = options.functionTimeoutMs ?? 20_000;
  const handler = (event: SQSEvent) =>
    worker.handler(event, lambdaContext('import-worker', functionTimeoutMs)) as Promise<SQSBatchResponse>;
  const poller = new EventSourcePoller({ sqs: stack.sqs, queueUrl: stack.queueUrl, handler, batchSize: 10, functionTimeoutMs });
  const attributeNames = requiredAttributes(plan);

  const depth = () => queueDepth(stack.sqs, stack.queueUrl);

  return {
    stack,
    config,
    ledger,
    secrets,
    handler,
    poller,
    send: async (message) => {
      await stack.sqs.send(
        new SendMessageCommand({ QueueUrl: stack.queueUrl, MessageBody: typeof message === 'string' ? message : JSON.stringify(message) }),
      );
    },
    messageFor: (user, overrides = {}) => ({
      ...buildQueueMessage({
        userPoolId: DEMO_USER_POOL_ID,
        username: user.username,
        userAttributes: user.attributes,
        attributeNames,
        source: 'signup',
      }),
      ...overrides,
    }),
    drain: (timeoutMs = 30_000) => poller.runUntil(async () => (await depth()) === 0, { timeoutMs, idleWaitMs: 50 }),
    dlqMessages: async () => {
      const out: { body: string; attributes: Record<string, string>; deadLetter: DeadLetter }[] = [];
      for (;;) {
        const r = await stack.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: stack.dlqUrl,
            MaxNumberOfMessages: 10,
            MessageAttributeNames: ['All'],
            VisibilityTimeout: 30,
          }),
        );
        if (!r.Messages?.length) return out;
        for (const m of r.Messages) {
          out.push({
            body: m.Body ?? '',
            attributes: Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? ''])),
            deadLetter: readDeadLetter(m),
          });
        }
      }
    },
    queueDepth: depth,
    close: () => stack.close(),
  };
}

export { DEMO_USER_POOL_ID, demoUsers };
