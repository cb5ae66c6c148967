import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { handleCognitoDelete } from '../functions/lifecycle-events/cognito.js';
import { createLifecycleEventsHandler } from '../functions/lifecycle-events/handler.js';
import { dynamoDeletedUserLookup } from '../functions/lifecycle-events/ledger-lookup.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { Ledger } from '../shared/ledger.js';
import { parseWorkMessage } from '../shared/lifecycle/message.js';

/**
 * The lifecycle-events function with CloudTrail-shaped events (as EventBridge delivers them) against
 * the local SQS and DynamoDB emulators: the sub from the event, else from the ledger by username;
 * hidden usernames and unknown users are unresolved (logged, counted, never enqueued wrongly);
 * failures to enqueue throw so that Lambda retries.
 */
const POOL = 'eu-west-1_AbCdEf123';
const SUB = '11111111-2222-4333-8444-555555555555';
const SUB_B = '21111111-2222-4333-8444-555555555555';
const SUB_AS_USERNAME = '31111111-2222-4333-8444-555555555555';

function cloudTrail(eventName: string, detail: Record<string, unknown>) {
  return {
    version: '0',
    id: `evt-${Math.random().toString(36).slice(2)}`,
    'detail-type': 'AWS API Call via CloudTrail',
    source: 'aws.cognito-idp',
    account: '123456789012',
    time: '2026-12-02T07:00:00Z',
    region: 'eu-west-1',
    resources: [],
    detail: { eventVersion: '1.08', eventSource: 'cognito-idp.amazonaws.com', eventName, awsRegion: 'eu-west-1', ...detail },
  };
}

let stack: LocalStack;
let handler: ReturnType<typeof createLifecycleEventsHandler>;
const env = () => ({ QUEUE_URL: stack.queueUrl, LEDGER_TABLE: stack.tableName, USER_POOL_ID: POOL });

async function received(): Promise<unknown[]> {
  const out = await stack.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }),
  );
  return (out.Messages ?? []).map((m) => parseWorkMessage(m.Body ?? ''));
}

beforeAll(async () => {
  stack = await startLocalStack({ masterToken: 'unused-master-token-0123456789', tray: false });
  const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb });
  const seed = async (sub: string, username: string, email: string) => {
    await ledger.acquire({ userPoolId: POOL, sub }, 'seed', 1_000, { username, email, source: 'signup' });
    await ledger.release({ userPoolId: POOL, sub }, 'seed');
  };
  await seed(SUB, 'alice', 'alice@example.com');
  await seed(SUB_B, 'bob', 'bob@example.com');
  await seed(SUB_AS_USERNAME, SUB_AS_USERNAME, 'carol@example.com');
  handler = createLifecycleEventsHandler({ env: env(), sqs: stack.sqs, dynamodb: stack.dynamodb });
});
afterAll(async () => stack?.close());

describe('lifecycle-events: Cognito deletions', () => {
  it('AdminDeleteUser with the sub in additionalEventData: one offboard message for it', async () => {
    await handler(
      cloudTrail('AdminDeleteUser', {
        requestParameters: { userPoolId: POOL, username: 'HIDDEN_DUE_TO_SECURITY_REASONS' },
        additionalEventData: { sub: SUB },
      }),
    );
    const messages = await received();
    expect(messages).toEqual([
      {
        kind: 'offboard',
        message: expect.objectContaining({
          kind: 'offboard',
          userPoolId: POOL,
          sub: SUB,
          source: 'cognito-delete',
          requestedAt: '2026-12-02T07:00:00.000Z',
        }),
      },
    ]);
  });

  it('no sub in the event: found in the ledger by username, by email alias, or by a username that is the sub', async () => {
    await handler(cloudTrail('AdminDeleteUser', { requestParameters: { userPoolId: POOL, username: 'bob' } }));
    await handler(cloudTrail('AdminDeleteUser', { requestParameters: { userPoolId: POOL, username: 'alice@example.com' } }));
    await handler(cloudTrail('AdminDeleteUser', { requestParameters: { userPoolId: POOL, username: SUB_AS_USERNAME } }));
    const subs = (await received()).map((m) => (m as { message: { sub: string } }).message.sub).sort();
    expect(subs).toEqual([SUB, SUB_B, SUB_AS_USERNAME].sort());
  });

  it('a hidden username and no sub, or a username the ledger does not know: unresolved (logged, counted), nothing enqueued', async () => {
    const log = { info: vi.fn(), error: vi.fn() };
    const unresolved = vi.fn();
    const enqueue = vi.fn();
    const deps = {
      userPoolId: POOL,
      lookup: dynamoDeletedUserLookup(DynamoDBDocumentClient.from(stack.dynamodb), stack.tableName),
      enqueue,
      log,
      unresolved,
    };
    const hidden = await handleCognitoDelete(
      cloudTrail('AdminDeleteUser', { requestParameters: { userPoolId: POOL, username: 'HIDDEN_DUE_TO_SECURITY_REASONS' } }),
      deps,
    );
    const unknown = await handleCognitoDelete(
      cloudTrail('AdminDeleteUser', { requestParameters: { userPoolId: POOL, username: 'nobody' } }),
      deps,
    );
    expect(hidden.kind).toBe('unresolved');
    expect(unknown.kind).toBe('unresolved');
    expect(unresolved).toHaveBeenCalledTimes(2);
    expect(enqueue).not.toHaveBeenCalled();
    expect(log.error.mock.calls[0]![0]).toContain('offboard --deleted');
    // Through the handler: it does not throw (retrying cannot help), and counts the metric.
    const emf = vi.spyOn(console, 'log');
    await handler(cloudTrail('AdminDeleteUser', { requestParameters: { userPoolId: POOL, username: 'HIDDEN_DUE_TO_SECURITY_REASONS' } }));
    expect(emf.mock.calls.map((c) => String(c[0])).join('\n')).toContain('OffboardUnresolved');
    emf.mockRestore();
    expect(await received()).toEqual([]);
  });

  it('DeleteUser (no pool in the request): enqueued only for a sub the ledger knows', async () => {
    await handler(
      cloudTrail('DeleteUser', {
        requestParameters: { accessToken: 'HIDDEN_DUE_TO_SECURITY_REASONS' },
        additionalEventData: { sub: SUB_B },
      }),
    );
    await handler(
      cloudTrail('DeleteUser', {
        requestParameters: { accessToken: 'HIDDEN_DUE_TO_SECURITY_REASONS' },
        additionalEventData: { sub: '91111111-2222-4333-8444-555555555555' },
      }),
    );
    expect((await received()).map((m) => (m as { message: { sub: string } }).message.sub)).toEqual([SUB_B]);
  });

  it('ignores another pool, a failed call, other events and other sources', async () => {
    await handler(
      cloudTrail('AdminDeleteUser', {
        requestParameters: { userPoolId: 'eu-west-1_Other', username: 'alice' },
        additionalEventData: { sub: SUB },
      }),
    );
    await handler(
      cloudTrail('AdminDeleteUser', { errorCode: 'UserNotFoundException', requestParameters: { userPoolId: POOL, username: 'alice' } }),
    );
    await handler(cloudTrail('AdminDisableUser', { requestParameters: { userPoolId: POOL, username: 'alice' } }));
    await handler({ ...cloudTrail('AdminDeleteUser', {}), source: 'aws.unknown' });
    expect(await received()).toEqual([]);
  });

  it('a failure to enqueue is thrown (Lambda retries, then the on-failure queue keeps the event)', async () => {
    const broken = new SQSClient({
      endpoint: 'http://127.0.0.1:1',
      region: 'eu-west-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      maxAttempts: 1,
    });
    const failing = createLifecycleEventsHandler({ env: env(), sqs: broken, dynamodb: stack.dynamodb });
    await expect(
      failing(
        cloudTrail('AdminDeleteUser', { requestParameters: { userPoolId: POOL, username: 'alice' }, additionalEventData: { sub: SUB } }),
      ),
    ).rejects.toThrow();
  });

  it('refuses invalid settings at cold start, naming the variable', () => {
    expect(() => createLifecycleEventsHandler({ env: { QUEUE_URL: 'not a url', LEDGER_TABLE: 't', USER_POOL_ID: POOL } })).toThrow(
      /QUEUE_URL/,
    );
  });
});
