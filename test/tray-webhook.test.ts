import { randomBytes, randomUUID } from 'node:crypto';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadWebhookConfig } from '../functions/tray-webhook/settings.js';
import { createTrayWebhook, type WebhookDeps } from '../functions/tray-webhook/webhook.js';
import { DEMO_CREDENTIAL_SECRET, DEMO_SOLUTION, demoPlan, demoSecrets } from '../local/demo.js';
import { startFunctionUrl } from '../local/emulators/function-url.js';
import { lambdaContext } from '../local/lambda-context.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { startLocalWebhook } from '../local/runner/webhook.js';
import { companyLedgerKey } from '../shared/import-workflow.js';
import { Ledger, type UserKey } from '../shared/ledger.js';
import { parseWorkMessage } from '../shared/lifecycle/message.js';
import { createMetrics } from '../shared/logging.js';
import { EXPIRY_METRIC, METRIC_COMPONENT } from '../shared/names.js';
import { parsePlan } from '../shared/plan.js';
import { TrayClient } from '../shared/tray/client.js';

/**
 * Tray's expired-auth webhook (functions/tray-webhook) against the local emulators: the token,
 * the body, the ledger record, the decision (rotation enqueued or AuthExpiring), repeats,
 * unknown users, crash and queue failures, secrets kept out of logs, and the Tray stand-in's
 * notification reaching the local function URL end to end.
 */

const POOL = 'us-east-1_WebhookPool';
const SLOT = 'external_acme_crm_authentication';
const TOKEN_SECRET = 'tray-auth-import/tray-webhook-token';
const TOKEN = randomBytes(24).toString('base64url');
const demo = demoSecrets();

const written: string[] = [];
let stack: LocalStack;

beforeAll(async () => {
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const)
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void written.push(args.map(String).join(' ')));
  stack = await startLocalStack({
    masterToken: demo.masterToken,
    secrets: { ...demo.credentials, [TOKEN_SECRET]: TOKEN },
    tray: { solutions: [DEMO_SOLUTION], rateLimit: false, latencyMs: 0 },
  });
});

afterAll(async () => {
  await stack?.close();
  vi.restoreAllMocks();
});

function webhookEnv(extra: Record<string, string> = {}) {
  return {
    ...stack.env,
    USER_POOL_ID: POOL,
    WEBHOOK_TOKEN_SECRET_ID: TOKEN_SECRET,
    IMPORT_PLAN: JSON.stringify(demoPlan()),
    ...extra,
  };
}

function newWebhook(overrides: Partial<WebhookDeps> = {}, env: Record<string, string> = {}) {
  const metrics = createMetrics(METRIC_COMPONENT.webhook);
  const added: string[] = [];
  vi.spyOn(metrics, 'addMetric').mockImplementation((name: string) => {
    added.push(name);
    return metrics;
  });
  const handler = createTrayWebhook({
    config: loadWebhookConfig(webhookEnv(env)),
    dynamodb: stack.dynamodb,
    sqs: stack.sqs,
    secretsManager: stack.secretsManager,
    metrics,
    ...overrides,
  });
  const call = (event: LambdaFunctionURLEvent) =>
    handler(event, lambdaContext('tray-webhook', 10_000)) as Promise<Exclude<LambdaFunctionURLResult, string>>;
  return { call, added };
}

function event(body: unknown, options: { token?: string | undefined; method?: string } = {}): LambdaFunctionURLEvent {
  const token = 'token' in options ? options.token : TOKEN;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/',
    rawQueryString: token === undefined ? '' : `token=${encodeURIComponent(token)}`,
    headers: { 'content-type': 'application/json' },
    queryStringParameters: token === undefined ? undefined : { token },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName: 'local',
      domainPrefix: 'local',
      http: { method: options.method ?? 'POST', path: '/', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'tray' },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    isBase64Encoded: false,
  };
}

const notification = (externalUserId: string, authId: string) => ({
  authentication_name: 'Acme CRM (ada@example.com)',
  service_name: 'acme-crm',
  user_id: `user-${randomUUID()}`,
  authId,
  external_user_id: externalUserId,
});

/** A user imported (enabled) `agoMs` ago, with `authId` in the demo slot. */
async function seedUser(agoMs: number, key?: UserKey): Promise<{ key: UserKey; authId: string }> {
  const k = key ?? { userPoolId: POOL, sub: randomUUID() };
  const authId = `auth-${randomUUID()}`;
  const at = Date.now() - agoMs;
  const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb, now: () => at });
  await ledger.acquire(k, 'seed', 60_000, { username: 'ada', source: 'manual' });
  await ledger.recordAuth(k, 'seed', SLOT, authId);
  await ledger.recordEnabled(k, 'seed');
  return { key: k, authId };
}

const ledger = () => new Ledger({ tableName: stack.tableName, client: stack.dynamodb });

async function drainQueue(sqs: SQSClient): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < 5; i++) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    for (const m of out.Messages ?? []) {
      bodies.push(m.Body ?? '');
      await sqs.send(new DeleteMessageCommand({ QueueUrl: stack.queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
    if ((out.Messages ?? []).length === 0) break;
  }
  return bodies;
}

const HOUR = 3_600_000;

describe('the token', () => {
  it.each([
    ['missing', undefined],
    ['wrong', `${TOKEN.slice(0, -1)}x`],
    ['empty', ''],
  ])('%s → 401 without detail, nothing recorded or enqueued', async (_name, token) => {
    const { key, authId } = await seedUser(HOUR);
    const { call, added } = newWebhook();
    const answer = await call(event(notification(key.sub, authId), { token }));
    expect(answer.statusCode).toBe(401);
    expect(answer.body).toBe('{"message":"unauthorized"}');
    expect((await ledger().get(key))?.expiring).toEqual({});
    expect(await drainQueue(stack.sqs)).toEqual([]);
    expect(added).toEqual([]);
  });

  it('the token is checked before anything else: a bad body with a wrong token is 401, not 400', async () => {
    const { call } = newWebhook();
    expect((await call(event('not json', { token: 'nope' }))).statusCode).toBe(401);
    expect((await call(event('{}', { token: 'nope', method: 'GET' }))).statusCode).toBe(401);
  });
});

describe('the body', () => {
  it.each([
    ['not JSON', 'oops', /not JSON/],
    ['authId missing', { external_user_id: randomUUID() }, /authId/],
    ['external_user_id missing', { authId: 'auth-1' }, /external_user_id/],
    ['authId not a string', { authId: 42, external_user_id: randomUUID() }, /authId/],
  ])('%s → 400 naming the field', async (_name, body, field) => {
    const { call } = newWebhook();
    const answer = await call(event(body));
    expect(answer.statusCode).toBe(400);
    expect(answer.body).toMatch(field);
  });

  it('anything but POST → 405', async () => {
    const { call } = newWebhook();
    expect((await call(event('{}', { method: 'GET' }))).statusCode).toBe(405);
  });
});

describe('a valid notification', () => {
  it('secret changed after the auth was created: recorded as reimport, one rotate message for that user and slot', async () => {
    // Imported an hour ago; the demo secret was (re)written when the stack started, after that.
    const { key, authId } = await seedUser(HOUR);
    const { call, added } = newWebhook();
    const answer = await call(event(notification(key.sub, authId)));
    expect(answer.statusCode).toBe(200);
    expect(JSON.parse(answer.body ?? '')).toEqual({ action: 'reimport' });
    const entry = await ledger().get(key);
    expect(entry?.expiring[authId]).toMatchObject({ action: 'reimport', service: 'acme-crm' });
    expect(entry?.leaseOwner).toBeUndefined();
    const messages = (await drainQueue(stack.sqs)).map(parseWorkMessage);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      kind: 'rotate',
      message: { kind: 'rotate', userPoolId: POOL, sub: key.sub, source: 'tray-expiry', slots: [SLOT], secretId: DEMO_CREDENTIAL_SECRET },
    });
    expect(added).toEqual([]);
  });

  it('secret unchanged since the auth was created: recorded as alert, AuthExpiring, a warning naming user and service', async () => {
    const { key, authId } = await seedUser(0);
    const { call, added } = newWebhook();
    const before = written.length;
    const answer = await call(event(notification(key.sub, authId)));
    expect(answer.statusCode).toBe(200);
    expect(JSON.parse(answer.body ?? '')).toEqual({ action: 'alert' });
    expect((await ledger().get(key))?.expiring[authId]).toMatchObject({ action: 'alert', service: 'acme-crm' });
    expect(await drainQueue(stack.sqs)).toEqual([]);
    expect(added).toEqual([EXPIRY_METRIC.authExpiring]);
    const warning = written.slice(before).find((line) => line.includes('the company must renew it'));
    expect(warning).toContain(key.sub);
    expect(warning).toContain('acme-crm');
  });

  it('a rotation since the import counts from lastRotatedAt', async () => {
    const { key, authId } = await seedUser(HOUR);
    await ledger().acquireExisting(key, 'rot', 60_000);
    await ledger().writeLeased(key, 'rot', 'SET lastRotatedAt = :at REMOVE leaseOwner, leaseUntil', {}, {});
    const { call } = newWebhook();
    expect(JSON.parse((await call(event(notification(key.sub, authId)))).body ?? '')).toEqual({ action: 'alert' });
  });

  it('does not disturb a delivery holding the lease: only expiring is written', async () => {
    const { key, authId } = await seedUser(0);
    await ledger().acquireExisting(key, 'holder', 60_000);
    const before = await ledger().get(key);
    const { call } = newWebhook();
    expect((await call(event(notification(key.sub, authId)))).statusCode).toBe(200);
    const after = await ledger().get(key);
    expect(after?.leaseOwner).toBe('holder');
    expect({ ...after, expiring: {} }).toEqual({ ...before, expiring: {} });
  });

  it('a plan with a prefix in externalUserId reads the sub back out of it', async () => {
    const plan = parsePlan({ ...demoPlan(), externalUserId: 'acme-{{sub}}' });
    const { key, authId } = await seedUser(HOUR);
    const { call } = newWebhook({}, { IMPORT_PLAN: JSON.stringify(plan) });
    expect(JSON.parse((await call(event(notification(`acme-${key.sub}`, authId)))).body ?? '')).toEqual({ action: 'reimport' });
    await drainQueue(stack.sqs);
    const { call: plain, added } = newWebhook({}, { IMPORT_PLAN: JSON.stringify(plan) });
    expect(JSON.parse((await plain(event(notification(key.sub, authId)))).body ?? '')).toEqual({ action: 'none' });
    expect(added).toEqual([EXPIRY_METRIC.unknown]);
  });

  it('per-company plans: the company entry is found by its key and alerted (a rotate message names a Cognito user)', async () => {
    const plan = parsePlan({ ...demoPlan(), trayUserPer: 'company', externalUserId: '{{custom:tenant_id}}' });
    const company = `tenant-${randomUUID().slice(0, 8)}`;
    const { authId } = await seedUser(HOUR, companyLedgerKey(POOL, company));
    const { call, added } = newWebhook({}, { IMPORT_PLAN: JSON.stringify(plan) });
    expect(JSON.parse((await call(event(notification(company, authId)))).body ?? '')).toEqual({ action: 'alert' });
    expect((await ledger().get(companyLedgerKey(POOL, company)))?.expiring[authId]?.action).toBe('alert');
    expect(added).toEqual([EXPIRY_METRIC.authExpiring]);
    expect(await drainQueue(stack.sqs)).toEqual([]);
  });
});

describe('repeats, unknowns and failures', () => {
  it('the same notification again: 200, no second rotation, no second alert within the window', async () => {
    const changed = await seedUser(HOUR);
    const unchanged = await seedUser(0);
    const { call, added } = newWebhook();
    for (let i = 0; i < 3; i++) {
      expect((await call(event(notification(changed.key.sub, changed.authId)))).statusCode).toBe(200);
      expect((await call(event(notification(unchanged.key.sub, unchanged.authId)))).statusCode).toBe(200);
    }
    expect(await drainQueue(stack.sqs)).toHaveLength(1);
    expect(added).toEqual([EXPIRY_METRIC.authExpiring]);
  });

  it('concurrent repeats: exactly one rotation (the conditional record is the claim)', async () => {
    const { key, authId } = await seedUser(HOUR);
    const answers = await Promise.all(Array.from({ length: 5 }, () => newWebhook().call(event(notification(key.sub, authId)))));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect(await drainQueue(stack.sqs)).toHaveLength(1);
  });

  it('past the window, the auth still in its slot is handled anew', async () => {
    const { key, authId } = await seedUser(2 * 24 * HOUR);
    await newWebhook({ now: () => Date.now() - 25 * HOUR }).call(event(notification(key.sub, authId)));
    expect(await drainQueue(stack.sqs)).toHaveLength(1);
    await newWebhook().call(event(notification(key.sub, authId)));
    expect(await drainQueue(stack.sqs)).toHaveLength(1);
  });

  it.each([
    ['an unknown user', () => ({ sub: randomUUID(), authId: 'auth-x' })],
    ['an external_user_id that is no sub', () => ({ sub: 'not-a-sub', authId: 'auth-x' })],
  ])('%s → 200, ExpiringUnknown, nothing recorded', async (_name, make) => {
    const { sub, authId } = make();
    const { call, added } = newWebhook();
    const answer = await call(event(notification(sub, authId)));
    expect(answer.statusCode).toBe(200);
    expect(JSON.parse(answer.body ?? '')).toEqual({ action: 'none' });
    expect(added).toEqual([EXPIRY_METRIC.unknown]);
    expect(await ledger().get({ userPoolId: POOL, sub })).toBeUndefined();
  });

  it('an auth no longer in any slot (rotated away) → 200, ExpiringUnknown, nothing recorded', async () => {
    const { key } = await seedUser(HOUR);
    const { call, added } = newWebhook();
    expect((await call(event(notification(key.sub, 'auth-rotated-away')))).statusCode).toBe(200);
    expect(added).toEqual([EXPIRY_METRIC.unknown]);
    expect((await ledger().get(key))?.expiring).toEqual({});
  });

  it('the queue fails: 500, the record is taken back, and the retry enqueues exactly one rotation', async () => {
    const { key, authId } = await seedUser(HOUR);
    const failing = { send: () => Promise.reject(Object.assign(new Error('service unavailable'), { name: 'ServiceUnavailable' })) };
    const first = await newWebhook({ sqs: failing as unknown as SQSClient }).call(event(notification(key.sub, authId)));
    expect(first.statusCode).toBe(500);
    expect((await ledger().get(key))?.expiring).toEqual({});
    expect((await newWebhook().call(event(notification(key.sub, authId)))).statusCode).toBe(200);
    expect(await drainQueue(stack.sqs)).toHaveLength(1);
  });

  it('a crash between the record and the send: the repeat within the window does nothing, past it the rotation is sent', async () => {
    const { key, authId } = await seedUser(3 * 24 * HOUR);
    // The function dies after the ledger write: no answer, no message, no take-back.
    const crashing = { send: () => new Promise(() => undefined) };
    const dying = newWebhook({ sqs: crashing as unknown as SQSClient, now: () => Date.now() - 25 * HOUR });
    void dying.call(event(notification(key.sub, authId)));
    await vi.waitFor(async () => expect((await ledger().get(key))?.expiring[authId]?.action).toBe('reimport'), {
      timeout: 15_000,
      interval: 50,
    });
    expect(await drainQueue(stack.sqs)).toEqual([]);
    // Tray's repeat an hour later, within the window: handled already, nothing sent.
    const repeat = await newWebhook({ now: () => Date.now() - 24 * HOUR }).call(event(notification(key.sub, authId)));
    expect(JSON.parse(repeat.body ?? '')).toEqual({ action: 'reimport', repeated: true });
    expect(await drainQueue(stack.sqs)).toEqual([]);
    // Tray's repeat a day later (past the 24 h window) acts again: one rotation in the end.
    expect((await newWebhook().call(event(notification(key.sub, authId)))).statusCode).toBe(200);
    expect(await drainQueue(stack.sqs)).toHaveLength(1);
  });

  it('the ledger fails: 500 (Tray may retry), nothing sent', async () => {
    const { key, authId } = await seedUser(HOUR);
    const broken = new Ledger({ tableName: 'no-such-table', client: stack.dynamodb });
    const answer = await newWebhook({ ledger: broken }).call(event(notification(key.sub, authId)));
    expect(answer.statusCode).toBe(500);
    expect(answer.body).toBe('{"message":"internal error"}');
    expect(await drainQueue(stack.sqs)).toEqual([]);
  });
});

describe('end to end: the Tray stand-in notifies the local function URL', () => {
  it("POST /_standin/notify-expiring sends Tray's body to the webhook, which records it", async () => {
    // A Tray user and auth in the stand-in, and the ledger entry the import would have written.
    const tray = new TrayClient({
      url: stack.tray!.url,
      masterToken: { get: async () => demo.masterToken, refresh: async () => demo.masterToken },
    });
    const sub = randomUUID();
    const userId = await tray.createExternalUser({ name: 'ada', externalUserId: sub, isTestUser: true });
    const userToken = await tray.authorize(userId);
    const authId = await tray.createUserAuthentication(userToken, {
      name: 'Acme CRM (ada@example.com)',
      serviceId: 'svc-acme-crm',
      serviceEnvironmentId: 'env-acme-crm-production',
      data: { api_key: 'a-credential-long-enough' },
    });
    await seedUser(HOUR, { userPoolId: POOL, sub }).then(async ({ key }) => {
      await ledger().acquireExisting(key, 'fix', 60_000);
      await ledger().writeLeased(
        key,
        'fix',
        'SET authIds.#slot = :id, updatedAt = :at REMOVE leaseOwner, leaseUntil',
        { '#slot': SLOT },
        { ':id': authId },
      );
    });

    const handler = createTrayWebhook({
      config: loadWebhookConfig(webhookEnv()),
      dynamodb: stack.dynamodb,
      sqs: stack.sqs,
      secretsManager: stack.secretsManager,
    });
    const url = await startFunctionUrl(handler);
    try {
      const base = stack.tray!.url.replace(/\/graphql$/, '');
      const notify = async (target: string) =>
        (await fetch(`${base}/_standin/notify-expiring`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ authId, url: target }),
        }).then((r) => r.json())) as { sent: Record<string, string>; webhook: { status: number; body: unknown } };

      const denied = await notify(`${url.url}?token=wrong-token-of-some-length`);
      expect(denied.webhook).toEqual({ status: 401, body: { message: 'unauthorized' } });
      const answer = await notify(`${url.url}?token=${encodeURIComponent(TOKEN)}`);
      expect(answer.sent).toEqual({
        authentication_name: 'Acme CRM (ada@example.com)',
        service_name: 'svc-acme-crm',
        user_id: userId,
        authId,
        external_user_id: sub,
      });
      expect(answer.webhook).toEqual({ status: 200, body: { action: 'reimport' } });
      expect((await ledger().get({ userPoolId: POOL, sub }))?.expiring[authId]?.action).toBe('reimport');
      expect(await drainQueue(stack.sqs)).toHaveLength(1);
    } finally {
      await url.close();
    }
  });

  it('the serve step: startLocalWebhook seeds its token in the Secrets Manager stand-in and serves the function URL', async () => {
    // The run's settings, as applyFunctionSettings puts them on process.env.
    vi.stubEnv('IMPORT_PLAN', JSON.stringify(demoPlan()));
    const webhook = await startLocalWebhook(stack, POOL);
    vi.unstubAllEnvs();
    try {
      expect(webhook.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const unauthorized = await fetch(webhook.url, { method: 'POST', body: '{}' });
      expect(unauthorized.status).toBe(401);
      expect(stack.secretsStandIn.reads(webhook.tokenSecretName)).toBeGreaterThan(0);
    } finally {
      await webhook.close();
    }
  });
});

describe('secrets', () => {
  it('the token and the credentials never appear in logs', () => {
    expect(written.length).toBeGreaterThan(0);
    const all = written.join('\n');
    expect(all).not.toContain(TOKEN);
    for (const value of Object.values(demo.credentials)) {
      const apiKey = (JSON.parse(value) as { apiKey: string }).apiKey;
      expect(all).not.toContain(apiKey);
    }
    expect(all).not.toContain(demo.masterToken);
  });
});
