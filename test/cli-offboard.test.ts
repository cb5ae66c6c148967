import { AdminGetUserCommand, CognitoIdentityProviderClient, UserNotFoundException } from '@aws-sdk/client-cognito-identity-provider';
import { PurgeQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runImportUser } from '../cli/commands/import-user.js';
import { type OffboardResult, runOffboard } from '../cli/commands/offboard.js';
import type { CliDeps } from '../cli/context.js';
import { type BufferIo, bufferIo } from '../cli/toolkit/output.js';
import { DEMO_PLAN_PATH, DEMO_SOLUTION, DEMO_USER_POOL_ID, type DemoUser, demoSecrets, demoUsers } from '../local/demo.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { Ledger } from '../shared/ledger.js';
import { parseWorkMessage } from '../shared/lifecycle/message.js';
import { Pacer } from '../shared/tray/pacer.js';

/** `offboard` against the local emulators and the Tray stand-in (Cognito mocked). */
const PLAN = DEMO_PLAN_PATH.pathname;
const secrets = demoSecrets();
const cognitoMock = mockClient(CognitoIdentityProviderClient);
const users = demoUsers(8);
let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({
    masterToken: secrets.masterToken,
    secrets: secrets.credentials,
    tray: { solutions: [DEMO_SOLUTION], rateLimit: false },
  });
});
afterAll(async () => stack?.close());
beforeEach(() => cognitoMock.reset());

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
      pacer: new Pacer({ ratePerSecond: 50, burst: 10 }),
      sleep: async () => undefined,
    },
  };
}
const common = () => ({
  userPoolId: DEMO_USER_POOL_ID,
  table: stack.tableName,
  queueUrl: stack.queueUrl,
  masterTokenSecret: stack.masterTokenSecretName,
});

function cognitoUser(user: DemoUser, sub = user.sub) {
  return {
    Username: user.username,
    UserStatus: 'CONFIRMED' as const,
    Enabled: true,
    UserAttributes: Object.entries({ ...user.attributes, sub }).map(([Name, Value]) => ({ Name, Value })),
  };
}

async function importOne(user: DemoUser): Promise<void> {
  cognitoMock.on(AdminGetUserCommand, { Username: user.sub }).resolves(cognitoUser(user));
  const result = await runImportUser(user.sub, { ...common(), plan: PLAN }, deps().deps);
  expect(result.exitCode).toBe(0);
}

async function queued(): Promise<{ kind: string; sub: string; source: string }[]> {
  const out = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
  return (out.Messages ?? []).map((m) => {
    const w = parseWorkMessage(m.Body ?? '');
    return { kind: w.kind, sub: w.message.sub, source: w.message.source };
  });
}

describe('offboard SUB', () => {
  const user = users[0]!;
  beforeAll(async () => importOne(user));

  it('--dry-run shows what the policy would remove, from the ledger, and changes nothing', async () => {
    const { io, deps: d } = deps();
    const result = await runOffboard([user.sub], { ...common(), plan: PLAN, dryRun: true, json: true }, d);
    expect(result.exitCode).toBe(0);
    const out = io.json<OffboardResult>();
    const entry = (await new Ledger({ tableName: stack.tableName, client: stack.dynamodb }).get({
      userPoolId: DEMO_USER_POOL_ID,
      sub: user.sub,
    }))!;
    expect(out.users).toEqual([
      expect.objectContaining({
        sub: user.sub,
        outcome: 'wouldOffboard',
        policy: 'remove',
        wouldRemove: { instanceId: entry.instanceId, authIds: entry.authIds, trayUserId: entry.trayUserId },
      }),
    ]);
    expect(entry.status).toBe('enabled');
    expect(await queued()).toEqual([]);
  });

  it('enqueues one offboard message per user (text output names each)', async () => {
    const { io, deps: d } = deps();
    const result = await runOffboard([user.sub, user.sub], common(), d);
    expect(result.exitCode).toBe(0);
    expect(io.stdout).toContain(user.sub);
    expect(io.stdout).toContain('enqueued');
    expect(await queued()).toEqual([{ kind: 'offboard', sub: user.sub, source: 'operator' }]);
    await stack.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.queueUrl }));
  });

  it("--now runs the worker's workflow: nothing of the user's is left in Tray; again: already offboarded", async () => {
    const { io, deps: d } = deps();
    const result = await runOffboard([user.sub], { ...common(), plan: PLAN, now: true, json: true }, d);
    expect(result.exitCode).toBe(0);
    expect(io.json<OffboardResult>().users[0]).toMatchObject({ sub: user.sub, outcome: 'offboarded', policy: 'remove' });
    const snap = stack.tray!.snapshot();
    expect(snap.users.filter((u) => u.externalUserId === user.sub)).toEqual([]);
    expect(snap.authentications).toEqual([]);
    expect(snap.instances).toEqual([]);
    for (const secret of [secrets.masterToken, ...Object.values(secrets.credentials)]) expect(io.stdout + io.stderr).not.toContain(secret);

    const again = deps();
    await runOffboard([user.sub], { ...common(), plan: PLAN, now: true, json: true }, again.deps);
    expect(again.io.json<OffboardResult>().users[0]).toMatchObject({ outcome: 'alreadyOffboarded' });
  });

  it('refuses bad input with the fix', async () => {
    await expect(runOffboard([], common(), deps().deps)).rejects.toThrow(/SUB.*--deleted/);
    await expect(runOffboard(['alice'], common(), deps().deps)).rejects.toThrow(/not a Cognito sub.*alice/);
    await expect(runOffboard([user.sub], { ...common(), deleted: true }, deps().deps)).rejects.toThrow(/either SUB… or --deleted/);
    await expect(runOffboard([user.sub], { ...common(), now: true }, deps().deps)).rejects.toThrow(/--plan FILE is required/);
  });
});

describe('offboard --deleted', () => {
  it('enqueues the ledger users whose Cognito user is gone, or whose username now belongs to someone else', async () => {
    const [gone, alive, reused] = [users[3]!, users[4]!, users[5]!];
    for (const u of [gone, alive, reused]) await importOne(u);
    cognitoMock.reset();
    cognitoMock.on(AdminGetUserCommand).rejects(new UserNotFoundException({ message: 'User does not exist.', $metadata: {} }));
    cognitoMock.on(AdminGetUserCommand, { Username: alive.username }).resolves(cognitoUser(alive));
    cognitoMock
      .on(AdminGetUserCommand, { Username: reused.username })
      .resolves(cognitoUser(reused, '99999999-2222-4333-8444-555555555555'));
    const dry = deps();
    await runOffboard([], { ...common(), plan: PLAN, deleted: true, dryRun: true, json: true }, dry.deps);
    expect(
      dry.io
        .json<OffboardResult>()
        .users.map((u) => u.sub)
        .sort(),
    ).toEqual([gone.sub, reused.sub].sort());
    expect(await queued()).toEqual([]);

    const { io, deps: d } = deps();
    const result = await runOffboard([], { ...common(), deleted: true, json: true }, d);
    expect(result.exitCode).toBe(0);
    const out = io.json<OffboardResult>();
    // users[0] is offboarded already (not checked); the three imported here are.
    expect(out.checked).toBe(3);
    expect((await queued()).map((m) => m.sub).sort()).toEqual([gone.sub, reused.sub].sort());
  });
});
