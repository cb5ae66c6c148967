import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoUsers, type Harness, startHarness } from '../local/worker-harness.js';
import { importUser } from '../shared/import-workflow.js';
import { SecretReader } from '../shared/secrets.js';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';
import { Pacer } from '../shared/tray/pacer.js';
import { expectImportedExactlyOnce } from './support/assertions.js';

const users = demoUsers(10);

describe('edges of the import workflow', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  const deps = (tray: TrayClient) => ({
    plan: h.config.plan,
    tray,
    ledger: h.ledger,
    secrets: new SecretReader({ client: h.stack.secretsManager }),
    leaseMs: 10_000,
  });
  const trayClient = () =>
    new TrayClient({
      url: h.stack.tray!.url,
      masterToken: staticMasterToken(() => h.secrets.masterToken),
      pacer: new Pacer({ ratePerSecond: 25, burst: 5 }),
    });

  it('does not record an instance as enabled when Tray answers the enable without enabling it: not ready at first, final later', async () => {
    class StubbornTray extends TrayClient {
      override async enableSolutionInstance(token: string, id: string, values: Parameters<TrayClient['enableSolutionInstance']>[2]) {
        await super.enableSolutionInstance(token, id, values);
        return { id, enabled: false };
      }
    }
    const tray = new StubbornTray({
      url: h.stack.tray!.url,
      masterToken: staticMasterToken(() => h.secrets.masterToken),
      pacer: new Pacer({ ratePerSecond: 25, burst: 5 }),
    });
    const user = users[0]!;
    const key = { userPoolId: h.messageFor(user).userPoolId, sub: user.sub };
    // Moments after the create, an instance that is not enabled is Tray not being ready: retried.
    await expect(importUser(h.messageFor(user), deps(tray))).rejects.toMatchObject({
      code: 'TRAY_NOT_READY',
      step: 'enableSolutionInstance',
      kind: 'transient',
    });
    expect(await h.ledger.get(key)).toMatchObject({ status: 'retrying', enabled: false });
    // Long after the create, it is final.
    const doc = DynamoDBDocumentClient.from(h.stack.dynamodb);
    await doc.send(
      new UpdateCommand({
        TableName: h.ledger.tableName,
        Key: key,
        UpdateExpression: 'SET instanceCreatedAt = :old',
        ExpressionAttributeValues: { ':old': Date.now() - 60_000 },
      }),
    );
    await expect(importUser(h.messageFor(user), deps(tray))).rejects.toMatchObject({
      code: 'TRAY_REJECTED',
      step: 'enableSolutionInstance',
      kind: 'permanent',
    });
    expect(await h.ledger.get(key)).toMatchObject({ status: 'failed', enabled: false });
  });

  it('a redelivery after a fix resumes from the ledger without creating anything again', async () => {
    const user = users[0]!;
    const before = h.stack.tray!.countsByOperation();
    await expect(importUser(h.messageFor(user), deps(trayClient()))).resolves.toMatchObject({ outcome: 'enabled' });
    const after = h.stack.tray!.countsByOperation();
    for (const op of ['createExternalUser', 'createUserAuthentication', 'createSolutionInstance']) expect(after[op]).toBe(before[op]);
    await expectImportedExactlyOnce(h, user);
  });

  it('a user whose lease another delivery holds is not touched but deferred (USER_BUSY), and Tray is not called', async () => {
    const user = users[1]!;
    const key = { userPoolId: h.messageFor(user).userPoolId, sub: user.sub };
    await h.ledger.acquire(key, 'someone-else', 30_000, { username: user.username, source: 'signup' });
    const calls = h.stack.tray!.calls.length;
    const out = await importUser(h.messageFor(user), deps(trayClient()));
    expect(out).toMatchObject({ outcome: 'deferred', error: { code: 'USER_BUSY', kind: 'transient' } });
    // Tried again once the other delivery's lease is over, not before.
    expect(out.outcome === 'deferred' && out.retryInMs).toBeGreaterThan(25_000);
    expect(h.stack.tray!.calls.length).toBe(calls);
  });

  it('refuses to mark a create as pending once its own lease has expired', async () => {
    const user = users[2]!;
    const key = { userPoolId: h.messageFor(user).userPoolId, sub: user.sub };
    await h.ledger.acquire(key, 'me', 1, { username: user.username, source: 'signup' });
    await new Promise((r) => setTimeout(r, 20));
    await expect(h.ledger.markPending(key, 'me', 'user', user.sub)).rejects.toMatchObject({ code: 'USER_BUSY' });
  });
});

describe('the worker near its deadline', () => {
  let h: Harness;
  beforeAll(async () => {
    // 5 s function timeout: 3 s are kept back, leaving less than a user needs to start.
    h = await startHarness({ functionTimeoutMs: 5_000 });
  });
  afterAll(async () => h?.close());

  it('hands the record back as a new message, not counted as an attempt, without taking the user or calling Tray', async () => {
    const user = users[5]!;
    await h.send(h.messageFor(user));
    const result = await h.poller.pollOnce();
    expect(result).toMatchObject({ received: 1, deleted: 1, failed: 0 });
    const back = await h.stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: h.stack.queueUrl,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        WaitTimeSeconds: 2,
      }),
    );
    expect(back.Messages).toHaveLength(1);
    expect(back.Messages![0]!.Attributes?.ApproximateReceiveCount).toBe('1');
    expect(back.Messages![0]!.MessageAttributes?.PriorAttempts?.StringValue).toBe('0');
    expect(JSON.parse(back.Messages![0]!.Body!)).toMatchObject({ sub: user.sub });
    expect(h.stack.tray!.calls).toHaveLength(0);
    expect(await h.ledger.get({ userPoolId: h.messageFor(user).userPoolId, sub: user.sub })).toBeUndefined();
  });
});

describe('the hourly ceiling of new Tray users', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { MAX_IMPORTS_PER_HOUR: '2' } });
  });
  afterAll(async () => h?.close());

  it('imports up to the ceiling; beyond it users wait in the queue, never dead-lettered, and cost no Tray call', async () => {
    const [a, b, c] = [users[6]!, users[7]!, users[8]!];
    for (const user of [a, b]) await h.send(h.messageFor(user));
    await h.drain();
    const calls = h.stack.tray!.calls.length;
    await h.send(h.messageFor(c));
    // One poll: the third user is handed back (delayed to the next hour, at most SQS's 15 min).
    const result = await h.poller.pollOnce();
    expect(result).toMatchObject({ received: 1, deleted: 1, failed: 0 });
    expect(h.stack.tray!.calls.length).toBe(calls);
    expect(await h.queueDepth()).toBe(1);
    expect(await h.dlqMessages()).toEqual([]);
    expect(h.stack.tray!.snapshot().users.map((u) => u.externalUserId)).not.toContain(c.sub);
    // Its ledger entry holds no lease: another delivery may take it once a slot is free.
    expect((await h.ledger.get({ userPoolId: h.messageFor(c).userPoolId, sub: c.sub }))?.leaseOwner).toBeUndefined();
  });
});
