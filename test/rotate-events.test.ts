import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { handleSecretChange, type SecretChangeDeps } from '../functions/lifecycle-events/secrets.js';
import { DEMO_CREDENTIAL_SECRET, demoPlan, demoUsers } from '../local/demo.js';
import type { Ledger, LedgerEntry } from '../shared/ledger.js';
import { LifecycleMessageSchema } from '../shared/lifecycle/message.js';
import { parsePlan } from '../shared/plan.js';

/** Secrets Manager events → rotate messages: who gets one, and a repeated fan-out skipping those done. */
const POOL = 'us-east-1_DemoPool1';
const EVENT_TIME = '2026-12-02T07:00:00Z';
const users = demoUsers(25);
const plan = demoPlan();
const SLOT = plan.auths[0]!.externalId;
const perUserPlan = parsePlan({
  ...plan,
  auths: [{ ...plan.auths[0]!, data: { api_key: { secret: { secretIdTemplate: 'tray-import/users/{{sub}}', field: 'apiKey' } } } }],
});

function entry(sub: string, extra: Partial<LedgerEntry> = {}): LedgerEntry {
  return {
    userPoolId: POOL,
    sub,
    username: sub,
    status: 'enabled',
    authIds: {},
    enabled: true,
    attempts: 1,
    pending: {},
    rotations: {},
    expiring: {},
    createdAt: EVENT_TIME,
    updatedAt: EVENT_TIME,
    ...extra,
  };
}

function harness(entries: LedgerEntry[], overrides: Partial<SecretChangeDeps> = {}) {
  const bodies: unknown[] = [];
  const sqs = {
    send: (command: { input: { Entries: { Id: string; MessageBody: string }[] } }) => {
      for (const e of command.input.Entries) bodies.push(JSON.parse(e.MessageBody));
      return Promise.resolve({ Successful: command.input.Entries.map((e) => ({ Id: e.Id })) });
    },
  } as unknown as SQSClient;
  const ledger = {
    async *entries() {
      yield* entries;
    },
  } as unknown as Ledger;
  const deps: SecretChangeDeps = {
    sqs,
    queueUrl: 'http://queue',
    ledger,
    plan,
    userPoolId: POOL,
    log: { info: () => undefined, error: () => undefined },
    ratePerSecond: 1_000,
    sleep: () => Promise.resolve(),
    ...overrides,
  };
  return { deps, bodies };
}

const apiCall = (eventName: string, secretId: string, extra: Record<string, unknown> = {}) => ({
  source: 'aws.secretsmanager',
  'detail-type': 'AWS API Call via CloudTrail',
  id: 'evt-1',
  time: EVENT_TIME,
  detail: { eventSource: 'secretsmanager.amazonaws.com', eventName, requestParameters: { secretId }, ...extra },
});
const rotationSucceeded = (arn: string) => ({
  source: 'aws.secretsmanager',
  'detail-type': 'AWS Service Event via CloudTrail',
  id: 'evt-2',
  time: EVENT_TIME,
  detail: { eventSource: 'secretsmanager.amazonaws.com', eventName: 'RotationSucceeded', additionalEventData: { SecretId: arn } },
});

describe('secret-change events → rotate messages', () => {
  it('a shared secret: one message per enabled user, with the event time and the slots reading it', async () => {
    const { deps, bodies } = harness([...users.map((u) => entry(u.sub)), entry('x', { status: 'failed' })]);
    const result = await handleSecretChange(
      apiCall('PutSecretValue', DEMO_CREDENTIAL_SECRET, { responseElements: { versionId: 'v2' } }),
      deps,
    );
    expect(result).toMatchObject({ kind: 'enqueued', enqueued: users.length, skipped: 0, perUser: false });
    expect(bodies).toHaveLength(users.length);
    const first = LifecycleMessageSchema.parse(bodies[0]);
    expect(first).toMatchObject({
      kind: 'rotate',
      source: 'secret-change',
      requestedAt: new Date(EVENT_TIME).toISOString(),
      slots: [SLOT],
      secretId: `${DEMO_CREDENTIAL_SECRET}@v2`,
    });
  });

  it('RotationSucceeded names the secret by ARN', async () => {
    const { deps, bodies } = harness(users.slice(0, 3).map((u) => entry(u.sub)));
    await handleSecretChange(
      rotationSucceeded(`arn:aws:secretsmanager:us-east-1:123456789012:secret:${DEMO_CREDENTIAL_SECRET}-AbC123`),
      deps,
    );
    expect(bodies).toHaveLength(3);
  });

  it('a repeated fan-out skips users already rotated after the event', async () => {
    const entries = users.map((u, i) => entry(u.sub, i < 10 ? { lastRotatedAt: '2026-12-02T07:00:30.000Z' } : {}));
    const { deps, bodies } = harness(entries);
    const result = await handleSecretChange(apiCall('UpdateSecret', DEMO_CREDENTIAL_SECRET), deps);
    expect(result).toMatchObject({ enqueued: users.length - 10, skipped: 10 });
    expect(bodies).toHaveLength(users.length - 10);
  });

  it('stops before the deadline and throws so that EventBridge retries', async () => {
    let left = 60_000;
    const { deps, bodies } = harness(
      users.map((u) => entry(u.sub)),
      { remainingMs: () => (left -= 5_000) },
    );
    await expect(handleSecretChange(apiCall('PutSecretValue', DEMO_CREDENTIAL_SECRET), deps)).rejects.toMatchObject({
      code: 'OUT_OF_TIME',
    });
    expect(bodies.length).toBeGreaterThan(0);
    expect(bodies.length).toBeLessThan(users.length);
  });

  it('a per-user secret: one message for its sub', async () => {
    const { deps, bodies } = harness([], { plan: perUserPlan });
    const result = await handleSecretChange(apiCall('PutSecretValue', `tray-import/users/${users[4]!.sub}`), deps);
    expect(result).toMatchObject({ kind: 'enqueued', enqueued: 1, perUser: true });
    expect(bodies).toEqual([expect.objectContaining({ sub: users[4]!.sub, kind: 'rotate' })]);
  });

  it('ignores secrets the plan does not read, failed calls and other events', async () => {
    const { deps, bodies } = harness(users.map((u) => entry(u.sub)));
    expect(await handleSecretChange(apiCall('PutSecretValue', 'other/secret'), deps)).toMatchObject({ kind: 'ignored' });
    expect(await handleSecretChange(apiCall('PutSecretValue', DEMO_CREDENTIAL_SECRET, { errorCode: 'AccessDenied' }), deps)).toMatchObject({
      kind: 'ignored',
    });
    expect(await handleSecretChange(apiCall('TagResource', DEMO_CREDENTIAL_SECRET), deps)).toMatchObject({ kind: 'ignored' });
    expect(await handleSecretChange({ source: 'aws.secretsmanager', detail: 'nonsense' }, deps)).toMatchObject({ kind: 'ignored' });
    expect(bodies).toEqual([]);
  });
});
