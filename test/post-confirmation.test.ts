import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { PostConfirmationTriggerEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPostConfirmationHandler, METRIC_NAMESPACE } from '../functions/post-confirmation/trigger.js';
import { DEMO_USER_POOL_ID, type DemoUser, demoUsers, postConfirmationEvent } from '../local/demo.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { MESSAGE_VERSION, QueueMessageSchema } from '../shared/message.js';

/**
 * The Cognito post-confirmation trigger against the SQS emulator: what it enqueues, what it
 * ignores, and that an unreachable queue never fails or holds up a sign-up.
 */
const ATTRIBUTES = ['custom:tenant_id', 'email', 'name'];

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ masterToken: 'post-confirmation-test-master-token', tray: false });
});

afterAll(async () => {
  await stack?.close();
});

/** A user with an attribute the plan does not list: it must not leave Cognito. */
function userWithExtras(): DemoUser {
  const [user] = demoUsers(1) as [DemoUser];
  return { ...user, attributes: { ...user.attributes, phone_number: '+15555550100', 'custom:internal_note': 'do not export' } };
}

function event(
  user: DemoUser,
  source?: 'PostConfirmation_ConfirmSignUp' | 'PostConfirmation_ConfirmForgotPassword',
): PostConfirmationTriggerEvent {
  return postConfirmationEvent(user, source);
}

async function receiveAll(queueUrl: string) {
  const out = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
  const messages = out.Messages ?? [];
  for (const m of messages) await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
  return messages;
}

async function queueDepth(): Promise<number> {
  const out = await stack.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: stack.queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return Object.values(out.Attributes ?? {}).reduce((sum, v) => sum + Number(v), 0);
}

/** A 127.0.0.1 port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A raw TCP server that accepts connections and never answers (an HTTP server would at least reject garbage). */
async function blackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The client as functions/post-confirmation/handler.ts builds it, aimed at `endpoint`. */
function handlerLikeClient(endpoint: string, timeoutMs: number): SQSClient {
  return new SQSClient({ endpoint, maxAttempts: 2, requestHandler: { connectionTimeout: 500, requestTimeout: timeoutMs } });
}

function parseLines(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

function expectFailureLogged(lines: string[], user: DemoUser): void {
  const records = parseLines(lines);
  const error = records.find((r) => r.level === 'ERROR');
  expect(error).toMatchObject({ level: 'ERROR', username: user.username, sub: user.sub, userPoolId: DEMO_USER_POOL_ID });
  expect(String(error?.message)).toMatch(/reconcile/);
  // Names the user, never the attributes.
  const errorLine = lines.find((l) => l.includes('"ERROR"')) as string;
  for (const value of [user.attributes.email, user.attributes.name, user.attributes['custom:tenant_id'], user.attributes.phone_number]) {
    if (value) expect(errorLine).not.toContain(value);
  }
  const metric = records.find((r) => r._aws !== undefined) as {
    _aws: { CloudWatchMetrics: { Namespace: string; Metrics: { Name: string; Unit: string }[] }[] };
    EnqueueFailed: number;
    component: string;
  };
  expect(metric).toBeDefined();
  expect(metric._aws.CloudWatchMetrics[0]).toMatchObject({
    Namespace: METRIC_NAMESPACE,
    Metrics: [{ Name: 'EnqueueFailed', Unit: 'Count' }],
  });
  expect(metric).toMatchObject({ EnqueueFailed: 1, component: 'post-confirmation' });
  // Nothing else: no INFO line claiming success.
  expect(records.filter((r) => r.level === 'INFO')).toEqual([]);
}

describe('post-confirmation trigger (createPostConfirmationHandler)', () => {
  it('enqueues one message with only the listed attributes and returns the event unchanged', async () => {
    const lines: string[] = [];
    const trigger = createPostConfirmationHandler({
      sqs: stack.sqs,
      queueUrl: stack.queueUrl,
      attributeNames: ATTRIBUTES,
      timeoutMs: 2_000,
      log: (l) => lines.push(l),
    });
    const user = userWithExtras();
    const input = event(user);
    const before = structuredClone(input);
    const startedAt = new Date();

    const returned = await trigger(input);

    expect(returned).toBe(input);
    expect(returned).toEqual(before);
    const messages = await receiveAll(stack.queueUrl);
    expect(messages).toHaveLength(1);
    const body = JSON.parse(messages[0]?.Body ?? '') as Record<string, unknown>;
    expect(QueueMessageSchema.safeParse(body).success).toBe(true);
    expect(body).toEqual({
      v: MESSAGE_VERSION,
      userPoolId: DEMO_USER_POOL_ID,
      username: user.username,
      sub: user.sub,
      attributes: { 'custom:tenant_id': user.attributes['custom:tenant_id'], email: user.attributes.email, name: user.attributes.name },
      source: 'signup',
      requestedAt: expect.any(String),
    });
    const requestedAt = Date.parse(body.requestedAt as string);
    expect(requestedAt).toBeGreaterThanOrEqual(startedAt.getTime() - 1);
    expect(requestedAt).toBeLessThanOrEqual(Date.now());
    expect(body.requestedAt).toBe(new Date(requestedAt).toISOString());

    expect(parseLines(lines)).toEqual([
      { level: 'INFO', message: 'sign-up enqueued for import', userPoolId: DEMO_USER_POOL_ID, username: user.username, sub: user.sub },
    ]);
  });

  it('leaves out a listed attribute the user does not have', async () => {
    const trigger = createPostConfirmationHandler({
      sqs: stack.sqs,
      queueUrl: stack.queueUrl,
      attributeNames: ATTRIBUTES,
      timeoutMs: 2_000,
      log: () => undefined,
    });
    const user = userWithExtras();
    delete user.attributes['custom:tenant_id'];
    await trigger(event(user));
    const [message] = await receiveAll(stack.queueUrl);
    expect((JSON.parse(message?.Body ?? '') as { attributes: unknown }).attributes).toEqual({
      email: user.attributes.email,
      name: user.attributes.name,
    });
  });

  it('ignores a confirmed forgotten password: nothing enqueued, event returned unchanged', async () => {
    const lines: string[] = [];
    const trigger = createPostConfirmationHandler({
      sqs: stack.sqs,
      queueUrl: stack.queueUrl,
      attributeNames: ATTRIBUTES,
      timeoutMs: 2_000,
      log: (l) => lines.push(l),
    });
    const input = event(userWithExtras(), 'PostConfirmation_ConfirmForgotPassword');
    const before = structuredClone(input);

    const returned = await trigger(input);

    expect(returned).toBe(input);
    expect(returned).toEqual(before);
    expect(await queueDepth()).toBe(0);
    expect(await receiveAll(stack.queueUrl)).toEqual([]);
    expect(lines).toEqual([]);
  });

  it.each([
    ['no request', (e: Record<string, unknown>) => delete e.request],
    ['a null request', (e: Record<string, unknown>) => (e.request = null)],
    ['a request without userAttributes', (e: Record<string, unknown>) => (e.request = {})],
    [
      "a sub that is not Cognito's",
      (e: Record<string, unknown>) =>
        ((e.request as { userAttributes: Record<string, string> }).userAttributes.sub = '../../tray-auth-import/master-token'),
    ],
  ])('returns the event for %s: logged and counted, never thrown at the sign-up, nothing enqueued', async (_name, mutate) => {
    const lines: string[] = [];
    const send = vi.fn();
    const trigger = createPostConfirmationHandler({
      sqs: { send } as unknown as SQSClient,
      queueUrl: stack.queueUrl,
      attributeNames: ATTRIBUTES,
      timeoutMs: 2_000,
      log: (l) => lines.push(l),
    });
    const input = event(userWithExtras());
    mutate(input as unknown as Record<string, unknown>);

    await expect(trigger(input)).resolves.toBe(input);
    expect(send).not.toHaveBeenCalled();
    const records = parseLines(lines);
    expect(records.find((r) => r.level === 'ERROR')).toMatchObject({ username: input.userName, userPoolId: DEMO_USER_POOL_ID });
    expect(records.find((r) => r._aws !== undefined)).toMatchObject({ EnqueueFailed: 1 });
    expect(lines.join('\n')).not.toContain('do not export');
  });

  it('returns the event within its bound when SQS refuses connections, logging the user (not the attributes) and EnqueueFailed', async () => {
    const port = await closedPort();
    const timeoutMs = 1_000;
    const lines: string[] = [];
    const trigger = createPostConfirmationHandler({
      sqs: handlerLikeClient(`http://127.0.0.1:${port}`, timeoutMs),
      queueUrl: `http://127.0.0.1:${port}/000000000000/tray-auth-import-queue`,
      attributeNames: ATTRIBUTES,
      timeoutMs,
      log: (l) => lines.push(l),
    });
    const user = userWithExtras();
    const input = event(user);

    const started = performance.now();
    const returned = await trigger(input);
    const elapsed = performance.now() - started;

    expect(returned).toBe(input);
    expect(elapsed).toBeLessThan(timeoutMs + 1_500); // unbounded, it would take 2 × 5 s
    expectFailureLogged(lines, user);
  });

  it('returns the event within its bound when SQS accepts the connection but never answers', async () => {
    const hole = await blackHole();
    try {
      const timeoutMs = 800;
      const lines: string[] = [];
      const trigger = createPostConfirmationHandler({
        // Without the trigger's own bound, two attempts of this client would take 2 × 5 s.
        sqs: handlerLikeClient(`http://127.0.0.1:${hole.port}`, 5_000),
        queueUrl: `http://127.0.0.1:${hole.port}/000000000000/tray-auth-import-queue`,
        attributeNames: ATTRIBUTES,
        timeoutMs,
        log: (l) => lines.push(l),
      });
      const user = userWithExtras();
      const input = event(user);

      const started = performance.now();
      const returned = await trigger(input);
      const elapsed = performance.now() - started;

      expect(returned).toBe(input);
      expect(elapsed).toBeGreaterThanOrEqual(timeoutMs - 50);
      expect(elapsed).toBeLessThan(timeoutMs + 1_500); // unbounded, it would take 2 × 5 s
      expectFailureLogged(lines, user);
      expect(parseLines(lines).find((r) => r.level === 'ERROR')).toMatchObject({ error: expect.stringMatching(/Timeout|Abort/) });
    } finally {
      await hole.close();
    }
  });
});

describe('post-confirmation trigger: the Lambda entry (functions/post-confirmation/handler.ts)', () => {
  const saved: Record<string, string | undefined> = {};
  const setEnv = (values: Record<string, string>) => {
    for (const [k, v] of Object.entries(values)) {
      if (!(k in saved)) saved[k] = process.env[k];
      process.env[k] = v;
    }
  };
  let imports = 0;
  /** A cold start: the entry reads QUEUE_URL, MESSAGE_ATTRIBUTES and ENQUEUE_TIMEOUT_MS when loaded. */
  const coldStart = async () => {
    const url = new URL('../functions/post-confirmation/handler.js', import.meta.url);
    url.searchParams.set('coldStart', String(++imports));
    return ((await import(url.href)) as { handler: (e: PostConfirmationTriggerEvent) => Promise<PostConfirmationTriggerEvent> }).handler;
  };

  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      delete saved[k];
    }
    vi.restoreAllMocks();
  });

  it('enqueues through the real entry, configured from the environment', async () => {
    setEnv({ QUEUE_URL: stack.queueUrl, MESSAGE_ATTRIBUTES: ATTRIBUTES.join(','), ENQUEUE_TIMEOUT_MS: '1500' });
    const handler = await coldStart();
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const user = userWithExtras();
    const input = event(user);

    const returned = await handler(input);

    expect(returned).toBe(input);
    const [message, ...rest] = await receiveAll(stack.queueUrl);
    expect(rest).toEqual([]);
    const body = QueueMessageSchema.parse(JSON.parse(message?.Body ?? ''));
    expect(body).toMatchObject({
      v: MESSAGE_VERSION,
      userPoolId: DEMO_USER_POOL_ID,
      username: user.username,
      sub: user.sub,
      source: 'signup',
    });
    expect(Object.keys(body.attributes).sort()).toEqual([...ATTRIBUTES].sort());
    expect(log.mock.calls.map((c) => JSON.parse(String(c[0])) as unknown)).toEqual([
      expect.objectContaining({ level: 'INFO', username: user.username }),
    ]);
  });

  it('never fails a sign-up over invalid settings: each one logs what to fix and counts EnqueueFailed', async () => {
    setEnv({ QUEUE_URL: 'not a url', MESSAGE_ATTRIBUTES: ATTRIBUTES.join(','), ENQUEUE_TIMEOUT_MS: '1500' });
    const handler = await coldStart();
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => void lines.push(String(line)));
    const user = userWithExtras();
    const input = event(user);

    expect(await handler(input)).toBe(input);
    expectFailureLogged(lines, user);
    expect(parseLines(lines).find((r) => r.level === 'ERROR')).toMatchObject({ reason: expect.stringContaining('$.QUEUE_URL') });
  });

  it('stays within ENQUEUE_TIMEOUT_MS when the queue cannot be reached', async () => {
    const hole = await blackHole();
    try {
      setEnv({
        QUEUE_URL: `http://127.0.0.1:${hole.port}/000000000000/tray-auth-import-queue`,
        AWS_ENDPOINT_URL_SQS: `http://127.0.0.1:${hole.port}`,
        MESSAGE_ATTRIBUTES: ATTRIBUTES.join(','),
        ENQUEUE_TIMEOUT_MS: '700',
      });
      const handler = await coldStart();
      const lines: string[] = [];
      vi.spyOn(console, 'log').mockImplementation((line: unknown) => void lines.push(String(line)));
      const user = userWithExtras();
      const input = event(user);

      const started = performance.now();
      const returned = await handler(input);
      const elapsed = performance.now() - started;

      expect(returned).toBe(input);
      expect(elapsed).toBeLessThan(700 + 1_500);
      expectFailureLogged(lines, user);
    } finally {
      await hole.close();
    }
  });
});
