import { AdminGetUserCommand, CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RotateResult, runRotate } from '../cli/commands/rotate.js';
import type { CliDeps } from '../cli/context.js';
import { type BufferIo, bufferIo } from '../cli/toolkit/output.js';
import {
  DEMO_CREDENTIAL_SECRET,
  DEMO_PLAN_PATH,
  DEMO_SOLUTION,
  DEMO_USER_POOL_ID,
  type DemoUser,
  demoPlan,
  demoSecrets,
  demoUsers,
} from '../local/demo.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { importUser } from '../shared/import-workflow.js';
import { Ledger } from '../shared/ledger.js';
import { LifecycleMessageSchema } from '../shared/lifecycle/message.js';
import { SecretReader } from '../shared/secrets.js';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';
import { Pacer } from '../shared/tray/pacer.js';

/** `rotate` against the local stack and the Tray stand-in: enqueue modes, --dry-run, --json, and --now with the worker's workflow. */
const PLAN = DEMO_PLAN_PATH.pathname;
const secrets = demoSecrets();
const users = demoUsers(93).slice(90) as [DemoUser, DemoUser, DemoUser];
const cognitoMock = mockClient(CognitoIdentityProviderClient);
let stack: LocalStack;
let ledger: Ledger;
const pacer = new Pacer({ ratePerSecond: 50, burst: 10 });

function deps(): { io: BufferIo; deps: CliDeps } {
  const io = bufferIo();
  return {
    io,
    deps: {
      io,
      sqs: stack.sqs,
      dynamodb: stack.dynamodb,
      secretsManager: stack.secretsManager,
      cognito: new CognitoIdentityProviderClient({}),
      pacer,
      sleep: () => Promise.resolve(),
    },
  };
}
const base = () => ({ userPoolId: DEMO_USER_POOL_ID, plan: PLAN, table: stack.tableName, queueUrl: stack.queueUrl, json: true });

async function drainQueue(): Promise<unknown[]> {
  const out: unknown[] = [];
  for (;;) {
    const r = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    if (!r.Messages?.length) return out;
    for (const m of r.Messages) {
      out.push(JSON.parse(m.Body ?? '{}'));
      await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: stack.queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}

beforeAll(async () => {
  stack = await startLocalStack({
    masterToken: secrets.masterToken,
    secrets: secrets.credentials,
    tray: { solutions: [DEMO_SOLUTION], rateLimit: false, latencyMs: 0, enableDelayMs: 0 },
  });
  ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb });
  const tray = new TrayClient({ url: stack.tray!.url, masterToken: staticMasterToken(() => secrets.masterToken), pacer });
  for (const user of users) {
    const { email, name } = user.attributes;
    await importUser(
      {
        v: 1,
        userPoolId: DEMO_USER_POOL_ID,
        username: user.username,
        sub: user.sub,
        attributes: { email: email!, name: name!, 'custom:tenant_id': user.attributes['custom:tenant_id']! },
        source: 'manual',
        requestedAt: new Date().toISOString(),
      },
      { plan: demoPlan(), tray, ledger, secrets: new SecretReader({ client: stack.secretsManager }), leaseMs: 60_000, enableDelayMs: 0 },
    );
  }
}, 60_000);
afterAll(async () => {
  cognitoMock.restore();
  await stack?.close();
});

describe('rotate', () => {
  it('refuses a command without exactly one target, naming the flags', async () => {
    await expect(runRotate({ ...base() }, deps().deps)).rejects.toThrow(/exactly one of --user SUB, --all or --secret ID/);
    await expect(runRotate({ ...base(), all: true, user: users[0].sub }, deps().deps)).rejects.toThrow(/exactly one/);
    await expect(runRotate({ ...base(), all: true, now: true }, deps().deps)).rejects.toThrow(/--now rotates one user/);
  });

  it('--all --dry-run lists who and which slots, and enqueues nothing', async () => {
    const { io, deps: d } = deps();
    const result = await runRotate({ ...base(), all: true, dryRun: true }, d);
    expect(result.exitCode).toBe(0);
    const out = io.json<RotateResult>();
    expect(out).toMatchObject({ dryRun: true, enqueued: 0, slots: ['external_acme_crm_authentication'] });
    expect(out.users.sort()).toEqual(users.map((u) => u.sub).sort());
    expect(await drainQueue()).toEqual([]);
  });

  it('--all and --secret enqueue one operator rotate message per enabled user', async () => {
    const all = deps();
    expect((await runRotate({ ...base(), all: true }, all.deps)).exitCode).toBe(0);
    expect(all.io.json<RotateResult>().enqueued).toBe(users.length);
    const messages = (await drainQueue()).map((m) => LifecycleMessageSchema.parse(m));
    expect(messages.map((m) => m.sub).sort()).toEqual(users.map((u) => u.sub).sort());
    expect(messages[0]).toMatchObject({ kind: 'rotate', source: 'operator' });

    const bySecret = deps();
    await runRotate({ ...base(), secret: DEMO_CREDENTIAL_SECRET }, bySecret.deps);
    const secretMessages = (await drainQueue()).map((m) => LifecycleMessageSchema.parse(m));
    expect(secretMessages).toHaveLength(users.length);
    expect(secretMessages[0]).toMatchObject({ slots: ['external_acme_crm_authentication'], secretId: DEMO_CREDENTIAL_SECRET });

    await expect(runRotate({ ...base(), secret: 'not/read/by/the/plan' }, deps().deps)).rejects.toThrow(/no auth of the plan reads secret/);
  });

  it('--user SUB --now rotates here: new auth with the new value (attributes from Cognito), old one removed', async () => {
    const user = users[0];
    cognitoMock.on(AdminGetUserCommand).resolves({
      Username: user.username,
      UserStatus: 'CONFIRMED',
      UserAttributes: Object.entries(user.attributes).map(([Name, Value]) => ({ Name, Value })),
    });
    const newKey = `cli-rotated-key-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    await stack.secretsManager.send(
      new PutSecretValueCommand({ SecretId: DEMO_CREDENTIAL_SECRET, SecretString: JSON.stringify({ apiKey: newKey }) }),
    );
    const oldAuthId = (await ledger.get({ userPoolId: DEMO_USER_POOL_ID, sub: user.sub }))!.authIds.external_acme_crm_authentication!;
    const { io, deps: d } = deps();
    const result = await runRotate({ ...base(), user: user.sub, now: true, masterTokenSecret: stack.masterTokenSecretName }, d);
    const out = io.json<RotateResult>();
    expect(result.exitCode, JSON.stringify(out.error)).toBe(0);
    expect(out.outcome).toBe('done');
    expect(out.steps.map((s) => s.type)).toEqual(['marked', 'created', 'repointed', 'removedOld']);
    const snap = stack.tray!.snapshot();
    const trayUser = snap.users.find((u) => u.externalUserId === user.sub)!;
    const auths = snap.authentications.filter((a) => a.userId === trayUser.id);
    expect(auths).toHaveLength(1);
    expect(auths[0]!.id).not.toBe(oldAuthId);
    expect(auths[0]!.data).toMatchObject({ api_key: newKey, account_id: user.attributes['custom:tenant_id'] });
    expect(snap.instances.find((i) => i.owner === trayUser.id)!.authValues).toEqual([
      { externalId: 'external_acme_crm_authentication', authId: auths[0]!.id },
    ]);
    expect(io.stdout + io.stderr).not.toContain(newKey);
    expect(io.stdout + io.stderr).not.toContain(secrets.masterToken);
  });
});
