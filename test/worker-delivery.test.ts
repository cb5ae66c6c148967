import type { SQSEvent, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPlan } from '../local/demo.js';
import { DEMO_USER_POOL_ID, demoUsers, type Harness, startHarness } from '../local/worker-harness.js';
import { DLQ_ATTRIBUTES } from '../shared/message.js';
import { expectImportedExactlyOnce } from './support/assertions.js';

const users = demoUsers(40);

function record(body: string, messageId: string, receiveCount = 1): SQSRecord {
  return {
    messageId,
    receiptHandle: `rh-${messageId}-${Math.random()}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(Date.now()),
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:tray-auth-import-queue',
    awsRegion: 'us-east-1',
  };
}

describe('at-least-once delivery never duplicates', () => {
  let h: Harness;
  beforeAll(async () => {
    // Records of a batch run concurrently here, so that duplicates really overlap.
    h = await startHarness({ env: { MAX_USERS_IN_FLIGHT: '5' } });
  });
  afterAll(async () => h?.close());

  it('the same message twice in one batch', async () => {
    const user = users[0]!;
    const body = JSON.stringify(h.messageFor(user));
    // Slow Tray down so that both records really are in flight together.
    h.stack.tray!.injectFault({ operation: '*', kind: 'latency', ms: 50, times: 20 });
    const event: SQSEvent = { Records: [record(body, 'dup-1'), record(body, 'dup-2')] };
    const response = await h.handler(event);
    h.stack.tray!.clearFaults();
    // One delivery imported the user; the other found it busy and went back to the queue as a
    // new message, not counted as an attempt (a duplicate on the last delivery is never dead-lettered).
    expect(response.batchItemFailures).toEqual([]);
    await expectImportedExactlyOnce(h, user);
    expect(await h.queueDepth()).toBe(1);
    // Its redelivery costs no Tray call.
    const before = h.stack.tray!.calls.length;
    const retry = await h.handler({ Records: [record(body, 'dup-2-again', 5)] });
    expect(retry.batchItemFailures).toEqual([]);
    expect(h.stack.tray!.calls.length).toBe(before);
  });

  it('the same sign-up enqueued twice (Cognito retried the trigger), through the queue', async () => {
    const user = users[1]!;
    await h.send(h.messageFor(user));
    await h.send(h.messageFor(user));
    await h.drain();
    await expectImportedExactlyOnce(h, user);
  });

  it('the same message in two concurrent invocations', async () => {
    const user = users[2]!;
    const body = JSON.stringify(h.messageFor(user));
    h.stack.tray!.injectFault({ operation: '*', kind: 'latency', ms: 50, times: 20 });
    const depth = await h.queueDepth();
    const [a, b] = await Promise.all([h.handler({ Records: [record(body, 'inv-a')] }), h.handler({ Records: [record(body, 'inv-b')] })]);
    h.stack.tray!.clearFaults();
    expect([...a.batchItemFailures, ...b.batchItemFailures]).toEqual([]);
    // The busy one was handed back to the queue, uncounted.
    expect(await h.queueDepth()).toBe(depth + 1);
    await expectImportedExactlyOnce(h, user);
    const busy = await h.ledger.get({ userPoolId: h.messageFor(user).userPoolId, sub: user.sub });
    expect(busy?.status).toBe('enabled');
  });

  it('one failure in a batch never replays its neighbours', async () => {
    const [ok1, ok2] = [users[3]!, users[4]!];
    h.stack.tray!.injectFault({ operation: 'createExternalUser', kind: 'http500', onCall: 2, times: 10 });
    const response = await h.handler({
      Records: [record(JSON.stringify(h.messageFor(ok1)), 'n-1'), record(JSON.stringify(h.messageFor(ok2)), 'n-2')],
    });
    h.stack.tray!.clearFaults();
    expect(response.batchItemFailures).toHaveLength(1);
    const failedId = response.batchItemFailures[0]!.itemIdentifier;
    const succeeded = failedId === 'n-1' ? ok2 : ok1;
    await expectImportedExactlyOnce(h, succeeded);
  });
});

describe('poison inputs go to the DLQ with their reason after the first receive', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  const cases: { name: string; body: (h: Harness) => string; code: string; step: string; reason: RegExp }[] = [
    { name: 'not JSON', body: () => 'this is not json', code: 'INVALID_MESSAGE', step: 'parse', reason: /not JSON/ },
    {
      name: 'unknown version',
      body: (h) => JSON.stringify({ ...h.messageFor(users[10]!), v: 2 }),
      code: 'INVALID_MESSAGE',
      step: 'parse',
      reason: /\$\.v: unsupported message version/,
    },
    {
      name: 'missing sub',
      body: (h) => {
        const { sub: _sub, ...rest } = h.messageFor(users[11]!);
        return JSON.stringify(rest);
      },
      code: 'INVALID_MESSAGE',
      step: 'parse',
      reason: /\$\.sub: required/,
    },
    {
      name: 'a missing attribute the plan needs',
      body: (h) => {
        const message = h.messageFor(users[12]!);
        const { 'custom:tenant_id': _t, ...attributes } = message.attributes;
        return JSON.stringify({ ...message, attributes });
      },
      code: 'MISSING_ATTRIBUTE',
      step: 'plan',
      reason: /lacks attribute "custom:tenant_id"/,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const callsBefore = h.stack.tray!.calls.length;
      const body = c.body(h);
      await h.send(body);
      await h.drain();
      const dlq = await h.dlqMessages();
      expect(dlq).toHaveLength(1);
      expect(dlq[0]!.attributes[DLQ_ATTRIBUTES.errorCode]).toBe(c.code);
      expect(dlq[0]!.attributes[DLQ_ATTRIBUTES.step]).toBe(c.step);
      expect(dlq[0]!.attributes[DLQ_ATTRIBUTES.reason]).toMatch(c.reason);
      expect(dlq[0]!.attributes[DLQ_ATTRIBUTES.receiveCount]).toBe('1');
      // The body is kept unchanged, so a redrive after the fix replays exactly this message.
      expect(dlq[0]!.body).toBe(body);
      // Nothing was created in Tray for a message that could not be imported.
      expect(h.stack.tray!.calls.length).toBe(callsBefore);
      // Every dead-lettered user whose sub is known has a ledger entry with the reason.
      const sub = (JSON.parse(body.startsWith('{') ? body : '{}') as { sub?: string }).sub;
      if (sub)
        expect(await h.ledger.get({ userPoolId: DEMO_USER_POOL_ID, sub })).toMatchObject({
          status: 'failed',
          lastError: { code: c.code, step: c.step },
        });
    });
  }

  it('a stale message of a user already enabled is acknowledged without a Tray call, whatever it lacks', async () => {
    const user = users[13]!;
    await h.send(h.messageFor(user));
    await h.drain();
    await expectImportedExactlyOnce(h, user);
    const callsBefore = h.stack.tray!.calls.length;
    // The same user again, but the message lacks what the plan needs (an old copy from the DLQ, say).
    const message = h.messageFor(user);
    const { 'custom:tenant_id': _t, ...attributes } = message.attributes;
    await h.send(JSON.stringify({ ...message, attributes }));
    await h.drain();
    expect(await h.dlqMessages()).toEqual([]);
    expect(h.stack.tray!.calls.length).toBe(callsBefore);
  });
});

describe('a plan slot in the wrong case is a permanent Tray rejection', () => {
  let h: Harness;
  beforeAll(async () => {
    const plan = demoPlan();
    plan.auths[0]!.externalId = 'External_Acme_CRM_Authentication';
    h = await startHarness({ plan });
  });
  afterAll(async () => h?.close());

  it('lands in the DLQ after one receive, naming the slot, and the ledger says failed', async () => {
    const user = users[20]!;
    await h.send(h.messageFor(user));
    await h.drain();
    const dlq = await h.dlqMessages();
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.attributes).toMatchObject({
      [DLQ_ATTRIBUTES.errorCode]: 'TRAY_REJECTED',
      [DLQ_ATTRIBUTES.step]: 'createSolutionInstance',
      [DLQ_ATTRIBUTES.receiveCount]: '1',
      [DLQ_ATTRIBUTES.sub]: user.sub,
    });
    expect(dlq[0]!.attributes[DLQ_ATTRIBUTES.reason]).toContain('External_Acme_CRM_Authentication');
    expect(h.stack.tray!.countsByOperation().createSolutionInstance).toBe(1);
    const entry = await h.ledger.get({ userPoolId: h.messageFor(user).userPoolId, sub: user.sub });
    expect(entry).toMatchObject({ status: 'failed', lastError: { code: 'TRAY_REJECTED', step: 'createSolutionInstance' } });
    expect(entry?.leaseOwner).toBeUndefined();
  });
});

describe('transient failures that never clear are dead-lettered with a reason on the last delivery', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ stack: { maxReceiveCount: 2 }, env: { MAX_RECEIVE_COUNT: '2', TRAY_TIMEOUT_MS: '500' } });
  });
  afterAll(async () => h?.close());

  it('Tray down for good: retried, then in the DLQ saying so', async () => {
    const user = users[30]!;
    h.stack.tray!.injectFault({ operation: 'createExternalUser', kind: 'http500', times: 1_000 });
    await h.send(h.messageFor(user));
    await h.drain();
    const dlq = await h.dlqMessages();
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.attributes).toMatchObject({
      [DLQ_ATTRIBUTES.errorCode]: 'TRAY_UNAVAILABLE',
      [DLQ_ATTRIBUTES.kind]: 'transient',
      [DLQ_ATTRIBUTES.receiveCount]: '2',
    });
    expect(dlq[0]!.attributes[DLQ_ATTRIBUTES.reason]).toMatch(/gave up after 2 attempts: Tray answered createExternalUser with HTTP 500/);
    const entry = await h.ledger.get({ userPoolId: h.messageFor(user).userPoolId, sub: user.sub });
    expect(entry).toMatchObject({ status: 'failed', attempts: 2 });
  });
});
