import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminGetUserCommand, CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ImportUserResult, runImportUser } from '../cli/commands/import-user.js';
import { type PreflightReport, runPreflight } from '../cli/commands/preflight.js';
import { runStatus, type StatusResult } from '../cli/commands/status.js';
import type { CliDeps } from '../cli/context.js';
import { type BufferIo, bufferIo } from '../cli/toolkit/output.js';
import { DEMO_PLAN_PATH, DEMO_SOLUTION, DEMO_USER_POOL_ID, demoSecrets, demoUsers } from '../local/demo.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import type { SeedSolution } from '../local/tray-standin/index.js';
import { parseQueueMessage } from '../shared/message.js';
import { Pacer } from '../shared/tray/pacer.js';

const PLAN = DEMO_PLAN_PATH.pathname;
const secrets = demoSecrets();
const EXTRA_SOLUTION: SeedSolution = {
  id: 'sol-extra',
  title: 'Two slots',
  authSlots: [
    { externalId: 'external_acme_crm_authentication', title: 'Acme CRM' },
    { externalId: 'external_hidden_billing_auth', title: 'Billing (hidden)' },
  ],
  configSlots: [
    { externalId: 'external_notification_email', title: 'Notification email' },
    { externalId: 'external_region', title: 'Region' },
    { externalId: 'external_batch', title: 'Batch', defaultValue: 10 },
  ],
};
const DRAFT_SOLUTION: SeedSolution = { ...DEMO_SOLUTION, id: 'sol-draft', published: false };

const cognitoMock = mockClient(CognitoIdentityProviderClient);
let stack: LocalStack;
let dir: string;

/**
 * The user tokens the Tray stand-in hands out (authorize mutations), read from the responses
 * through a wrapper around globalThis.fetch (what the Tray client's graphql-request calls), so
 * that expectNoSecrets can look for them in the CLI's output too.
 */
const userTokens: string[] = [];
const realFetch = globalThis.fetch;
async function capturingFetch(...args: Parameters<typeof fetch>): Promise<Response> {
  const response = await realFetch(...args);
  try {
    const body = (await response.clone().json()) as { data?: { authorize?: { accessToken?: unknown } } };
    const token = body?.data?.authorize?.accessToken;
    if (typeof token === 'string' && token.length > 0) userTokens.push(token);
  } catch {
    // Not JSON: not an authorize answer.
  }
  return response;
}

beforeAll(async () => {
  globalThis.fetch = capturingFetch;
  stack = await startLocalStack({
    masterToken: secrets.masterToken,
    secrets: secrets.credentials,
    tray: { solutions: [DEMO_SOLUTION, EXTRA_SOLUTION, DRAFT_SOLUTION], rateLimit: false },
  });
  dir = mkdtempSync(join(tmpdir(), 'cli-tray-'));
});
afterAll(async () => {
  globalThis.fetch = realFetch;
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  cognitoMock.reset();
});

/** The demo plan with some fields changed, written to a temporary file. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests edit the plan JSON freely
type PlanJson = Record<string, any>;
function planWith(change: (plan: PlanJson) => void): string {
  const plan = JSON.parse(readFileSync(PLAN, 'utf8')) as PlanJson;
  change(plan);
  const path = join(dir, `plan-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(plan));
  return path;
}

function deps(env: NodeJS.ProcessEnv = process.env): { io: BufferIo; deps: CliDeps } {
  const io = bufferIo();
  // A pacer of its own: the CLI's default share (0.5 calls/s) would only slow the test down.
  return {
    io,
    deps: {
      io,
      env,
      sqs: stack.sqs,
      dynamodb: stack.dynamodb,
      secretsManager: stack.secretsManager,
      cognito: new CognitoIdentityProviderClient({}),
      pacer: new Pacer({ ratePerSecond: 50, burst: 10 }),
    },
  };
}

function expectNoSecrets(io: BufferIo) {
  for (const secret of [secrets.masterToken, ...Object.values(secrets.credentials), ...userTokens]) {
    expect(io.stdout).not.toContain(secret);
    expect(io.stderr).not.toContain(secret);
  }
  expect(io.stdout + io.stderr).not.toContain('demo-api-key-');
}

describe('preflight against the Tray stand-in', () => {
  it("passes on the demo plan (master token from the stack's secret)", async () => {
    const { io, deps: d } = deps();
    const result = await runPreflight({ plan: PLAN, masterTokenSecret: stack.masterTokenSecretName, json: true }, d);
    const report = io.json<PreflightReport>();
    expect(result.exitCode).toBe(0);
    expect(report).toMatchObject({ ok: true, errors: 0, warnings: 0, solution: { id: DEMO_SOLUTION.id } });
    expect(report.trayUrl).toBe(stack.tray?.url);
    expectNoSecrets(io);
  });

  it('fails on a wrong-case auth slot with "did you mean" (master token from TRAY_MASTER_TOKEN)', async () => {
    const plan = planWith((p) => (p.auths[0].externalId = 'External_Acme_CRM_Authentication'));
    const { io, deps: d } = deps({ ...process.env, TRAY_MASTER_TOKEN: secrets.masterToken });
    const result = await runPreflight({ plan }, d);
    expect(result.exitCode).toBe(1);
    expect(io.stdout).toContain(
      'auth slot "External_Acme_CRM_Authentication" does not exist (ids are case-sensitive); did you mean "external_acme_crm_authentication"?',
    );
    expect(io.stdout).toContain('preflight FAILED');
    expectNoSecrets(io);
  });

  it('fails on a wrong-case config slot and an unknown one', async () => {
    const plan = planWith((p) => {
      p.configValues[0].externalId = 'external_Notification_Email';
      p.configValues.push({ externalId: 'external_nope', value: 1 });
    });
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${secrets.masterToken}\n`);
    chmodSync(tokenFile, 0o600);
    const { io, deps: d } = deps();
    const result = await runPreflight({ plan, masterTokenFile: tokenFile, json: true }, d);
    expect(result.exitCode).toBe(1);
    const messages = io
      .json<PreflightReport>()
      .findings.filter((f) => f.level === 'error')
      .map((f) => f.message);
    expect(messages).toEqual([
      'config slot "external_Notification_Email" does not exist (ids are case-sensitive); did you mean "external_notification_email"?',
      expect.stringContaining('config slot "external_nope" does not exist in the solution'),
    ]);
    // The real slot is then not set by the plan and has no default: a warning too.
    expect(io.json<PreflightReport>().findings).toContainEqual(
      expect.objectContaining({ level: 'warning', check: 'config', message: expect.stringContaining('"external_notification_email"') }),
    );
  });

  it('warns about auth slots the plan leaves empty and config slots without a value; --strict fails on them', async () => {
    const plan = planWith((p) => {
      p.solutionId = 'sol-extra';
      p.configValues = [{ externalId: 'external_notification_email', attribute: 'email' }];
    });
    const env = { ...process.env, TRAY_MASTER_TOKEN: secrets.masterToken };
    const { io, deps: d } = deps(env);
    const result = await runPreflight({ plan, json: true }, d);
    expect(result.exitCode).toBe(0);
    const warnings = io
      .json<PreflightReport>()
      .findings.filter((f) => f.level === 'warning')
      .map((f) => f.message);
    expect(warnings).toEqual([
      expect.stringContaining('config slot "external_region" (Region) has no default value'),
      expect.stringContaining('auth slot "external_hidden_billing_auth" (Billing (hidden)) is not filled by the plan'),
    ]);
    const strict = await runPreflight({ plan, strict: true }, deps(env).deps);
    expect(strict.exitCode).toBe(1);
  });

  it('fails when the solution is not published or does not exist', async () => {
    const env = { ...process.env, TRAY_MASTER_TOKEN: secrets.masterToken };
    const draft = await runPreflight({ plan: planWith((p) => (p.solutionId = 'sol-draft')) }, deps(env).deps);
    expect(draft.exitCode).toBe(1);
    expect(draft.data.findings.find((f) => f.check === 'solution')?.message).toContain(
      '"sol-draft" is not among the 2 published solution(s)',
    );
    const wrongCase = await runPreflight({ plan: planWith((p) => (p.solutionId = 'SOL-DEMO-CRM-SYNC')) }, deps(env).deps);
    expect(wrongCase.data.findings.find((f) => f.check === 'solution')?.message).toContain('did you mean "sol-demo-crm-sync"');
  });

  it('reports a refused master token as a failure, and an invalid plan', async () => {
    const refused = await runPreflight({ plan: PLAN }, deps({ ...process.env, TRAY_MASTER_TOKEN: 'not-the-master-token' }).deps);
    expect(refused.exitCode).toBe(1);
    expect(refused.data.findings.find((f) => f.check === 'tray')?.message).toContain('Tray refused the master token');

    const invalid = await runPreflight(
      { plan: planWith((p) => delete p.solutionId) },
      deps({ ...process.env, TRAY_MASTER_TOKEN: secrets.masterToken }).deps,
    );
    expect(invalid.exitCode).toBe(1);
    expect(invalid.data.findings[0]).toMatchObject({ level: 'error', check: 'plan', message: expect.stringContaining('$.solutionId') });
  });

  it('needs a master token source and never takes the token itself', async () => {
    const env = { ...process.env };
    delete env.TRAY_MASTER_TOKEN;
    // No flag, no env, no stack (DescribeStacks is not reachable): a usage error naming the ways to give it.
    const d = deps(env).deps;
    d.cloudformation = { send: async () => Promise.reject(new Error('no stack')) } as never;
    await expect(runPreflight({ plan: PLAN }, d)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringMatching(/TRAY_MASTER_TOKEN.*--master-token-file.*--master-token-secret/),
    });
  });
});

describe('import-user and status', () => {
  const user = demoUsers(3)[2]!;
  const adminGetUser = () =>
    cognitoMock.on(AdminGetUserCommand, { Username: user.sub }).resolves({
      Username: user.username,
      UserStatus: 'CONFIRMED',
      Enabled: true,
      UserAttributes: Object.entries(user.attributes).map(([Name, Value]) => ({ Name, Value })),
    });

  it('status of a user never imported exits 1 and says so', async () => {
    const { io, deps: d } = deps();
    const result = await runStatus(user.sub, { userPoolId: DEMO_USER_POOL_ID, table: stack.tableName }, d);
    expect(result.exitCode).toBe(1);
    expect(io.stdout).toContain(`no ledger entry for sub ${user.sub}`);
  });

  it("imports one user with the worker's workflow, then status shows the ledger entry and the live instance", async () => {
    adminGetUser();
    const imported = deps();
    const result = await runImportUser(
      user.sub,
      { userPoolId: DEMO_USER_POOL_ID, plan: PLAN, table: stack.tableName, masterTokenSecret: stack.masterTokenSecretName, json: true },
      imported.deps,
    );
    expect(result.exitCode).toBe(0);
    const out = imported.io.json<ImportUserResult>();
    expect(out).toMatchObject({ outcome: 'enabled', message: { source: 'manual', sub: user.sub, username: user.username } });
    expect(out.events.map((e) => `${e.type} ${'object' in e ? e.object : ''}`)).toEqual([
      'created user',
      'created auth',
      'created instance',
      'waitedBeforeEnable ',
    ]);
    // The import authorized the new Tray user: its token is among the canaries.
    expect(userTokens.length).toBeGreaterThan(0);
    expectNoSecrets(imported.io);
    const snapshot = stack.tray!.snapshot();
    expect(snapshot.instances).toHaveLength(1);
    expect(snapshot.instances[0]).toMatchObject({ enabled: true, solutionId: DEMO_SOLUTION.id });

    // Again: the ledger says it is done; no second Tray user.
    const again = await runImportUser(
      user.sub,
      { userPoolId: DEMO_USER_POOL_ID, plan: PLAN, table: stack.tableName, masterTokenSecret: stack.masterTokenSecretName },
      deps().deps,
    );
    expect(again.data.outcome).toBe('alreadyEnabled');
    expect(stack.tray!.snapshot().users).toHaveLength(1);

    const text = deps();
    const status = await runStatus(user.sub, { userPoolId: DEMO_USER_POOL_ID, table: stack.tableName }, text.deps);
    expect(status.exitCode).toBe(0);
    expect(text.io.stdout).toMatch(/status:\s+enabled/);
    expect(text.io.stdout).toContain(`instanceId:`);
    expect(text.io.stdout).toContain(snapshot.instances[0]!.id);

    const live = deps({ ...process.env, TRAY_MASTER_TOKEN: secrets.masterToken });
    const liveStatus = await runStatus(
      user.sub,
      { userPoolId: DEMO_USER_POOL_ID, table: stack.tableName, live: true, plan: PLAN, json: true },
      live.deps,
    );
    expect(liveStatus.exitCode).toBe(0);
    const parsed = live.io.json<StatusResult>();
    expect(parsed.entry).toMatchObject({
      status: 'enabled',
      sub: user.sub,
      trayUserId: snapshot.users[0]!.id,
      instanceId: snapshot.instances[0]!.id,
    });
    expect(parsed.live).toMatchObject({
      problems: [],
      instances: [{ id: snapshot.instances[0]!.id, enabled: true, solutionId: DEMO_SOLUTION.id }],
    });
    expectNoSecrets(live.io);
  });

  it('--enqueue sends the manual message to the queue instead', async () => {
    adminGetUser();
    const { deps: d } = deps();
    const result = await runImportUser(user.sub, { userPoolId: DEMO_USER_POOL_ID, plan: PLAN, queueUrl: stack.queueUrl, enqueue: true }, d);
    expect(result.data.outcome).toBe('enqueued');
    const received = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10 }));
    expect(received.Messages).toHaveLength(1);
    const message = parseQueueMessage(received.Messages![0]!.Body!);
    expect(message).toMatchObject({
      source: 'manual',
      sub: user.sub,
      attributes: { email: user.attributes.email, 'custom:tenant_id': user.attributes['custom:tenant_id'] },
    });
    expect(message.attributes).not.toHaveProperty('email_verified');
    await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: stack.queueUrl, ReceiptHandle: received.Messages![0]!.ReceiptHandle }));
  });

  it('refuses a user who is not confirmed unless --force', async () => {
    cognitoMock.on(AdminGetUserCommand).resolves({
      Username: 'pending',
      UserStatus: 'UNCONFIRMED',
      UserAttributes: [
        { Name: 'sub', Value: '00000000-0000-4000-8000-00000000beef' },
        { Name: 'email', Value: 'p@example.com' },
      ],
    });
    await expect(
      runImportUser('00000000-0000-4000-8000-00000000beef', { userPoolId: DEMO_USER_POOL_ID, plan: PLAN, dryRun: true }, deps().deps),
    ).rejects.toMatchObject({ exitCode: 1, message: expect.stringContaining('--force') });
    const forced = await runImportUser(
      '00000000-0000-4000-8000-00000000beef',
      { userPoolId: DEMO_USER_POOL_ID, plan: PLAN, dryRun: true, force: true },
      deps().deps,
    );
    expect(forced.data).toMatchObject({ dryRun: true, message: { sub: '00000000-0000-4000-8000-00000000beef' } });
    expect(forced.data.outcome).toBeUndefined();
  });
});
