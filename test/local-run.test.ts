import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AdminConfirmSignUpCommand,
  CognitoIdentityProviderClient,
  ListUsersCommand,
  SignUpCommand,
} from '@aws-sdk/client-cognito-identity-provider';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../cli/toolkit/errors.js';
import { DEMO_CREDENTIAL_SECRET, DEMO_PLAN_PATH, DEMO_SOLUTION, type DemoUser, demoUsers } from '../local/demo.js';
import { parseRunOptions } from '../local/runner/options.js';
import { runLocalPipeline } from '../local/runner/pipeline.js';
import type { LocalRunResult, RunOutput } from '../local/runner/types.js';
import { startTrayStandIn, type TrayStandIn } from '../local/tray-standin/index.js';

/**
 * `npm start`'s pipeline, in process: the real trigger and worker, the emulators, the Tray
 * stand-in with injected faults, and the runner's own verdict checked against what it claims.
 */
function capture(): RunOutput & { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  return { lines, warnings, log: (l) => void lines.push(l), warn: (l) => void warnings.push(l) };
}

function expectAllEnabled(result: LocalRunResult, n: number): void {
  const good = result.users.filter((u) => u.expected === 'enabled');
  expect(good).toHaveLength(n);
  for (const u of good) {
    expect(u.problems, u.username).toEqual([]);
    expect(u).toMatchObject({ enqueued: true, ledgerStatus: 'enabled', enabled: true, deadLettered: false });
    expect(u.trayUserId).toMatch(/^user-/);
    expect(u.instanceId).toMatch(/^inst-/);
    expect(Object.keys(u.authIds)).toEqual(['external_acme_crm_authentication']);
  }
  // No duplicates: every user got its own Tray user, auth and instance.
  expect(new Set(good.map((u) => u.trayUserId)).size).toBe(n);
  expect(new Set(good.flatMap((u) => Object.values(u.authIds))).size).toBe(n);
  expect(new Set(good.map((u) => u.instanceId)).size).toBe(n);
  expect(result.counts.enabled).toBe(n);
  expect(result.counts.queueRemaining).toBe(0);
}

const DEMO_PLAN_FILE = fileURLToPath(DEMO_PLAN_PATH);

describe('npm start pipeline against the Tray stand-in', () => {
  it("imports 20 users through 10% injected Tray faults: 20 enabled in the ledger and the stand-in, nothing duplicated, DLQ empty (the 100- and 600-user runs are the benchmark's)", async () => {
    const out = capture();
    const started = Date.now();
    const result = await runLocalPipeline({ users: 20, faultRate: 0.1, brokenUser: false }, out);
    const seconds = (Date.now() - started) / 1000;

    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.mode).toBe('standin');
    expectAllEnabled(result, 20);
    for (const u of result.users) expect(u.enabledInTray, u.username).toBe(true);
    expect(result.counts.tray).toEqual({ users: 20, authentications: 20, instances: 20, enabledInstances: 20 });
    expect(result.deadLettered).toEqual([]);
    // The faults did happen (and were survived).
    expect(result.counts.trayFaults).toBeGreaterThan(0);
    // The report: progress lines (no TTY), the table, the verdict.
    expect(out.lines.some((l) => l.startsWith('progress '))).toBe(true);
    expect(out.lines.some((l) => /^user\s+Tray user id\s+auth id\s+instance id\s+enabled$/.test(l))).toBe(true);
    expect(out.lines.filter((l) => /^user0\d\d\s+user-\S+\s+auth-\S+\s+inst-\S+\s+yes$/.test(l))).toHaveLength(20);
    expect(out.lines).toContain('Dead-letter queue: 0 messages');
    expect(out.lines.at(-1)).toMatch(/^OK: 20 of 20 users enabled/);
    console.info(
      `20 users with 10% faults: ${seconds.toFixed(1)}s, ${result.counts.trayFaults} Tray faults, ${result.counts.retried} redeliveries`,
    );
  }, 120_000);

  it('dead-letters exactly the broken user, with its reason, and imports the others', async () => {
    const out = capture();
    const result = await runLocalPipeline({ users: 5, faultRate: 0.1 }, out);

    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expectAllEnabled(result, 5);
    expect(result.counts.tray).toEqual({ users: 5, authentications: 5, instances: 5, enabledInstances: 5 });
    expect(result.deadLettered).toHaveLength(1);
    expect(result.deadLettered[0]).toMatchObject({
      username: 'broken-user',
      errorCode: 'MISSING_ATTRIBUTE',
      step: 'plan',
      kind: 'permanent',
      receiveCount: 1,
      expected: true,
    });
    expect(result.deadLettered[0]?.reason).toMatch(/lacks attribute "custom:tenant_id"/);
    const broken = result.users.find((u) => u.expected === 'deadLettered');
    expect(broken).toMatchObject({ username: 'broken-user', deadLettered: true, enabled: false, trayUserId: undefined, problems: [] });
    expect(result.broken).toEqual({ username: 'broken-user', attribute: 'custom:tenant_id', usedAt: ['auths[0].data.account_id'] });

    // The users signed up through cognito-local: 5 + the broken one in its pool, all confirmed, and
    // each confirmation reached the trigger through the Lambda stand-in, exactly once.
    expect(result.cognito).toMatchObject({ users: 6, confirmed: 6, triggerInvocations: 6 });
    expect(result.cognito?.userPoolId).toMatch(/^local_/);
    // Subs are Cognito's (random UUIDs), not the demo's fixed ones, and they are what the DLQ and ledger hold.
    const subs = result.users.map((u) => u.sub);
    for (const sub of subs) expect(sub).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(subs.some((sub) => sub.startsWith('00000000-0000-4000-8000-'))).toBe(false);
    expect(new Set(subs).size).toBe(6);
    expect(result.deadLettered[0]?.sub).toBe(broken?.sub);
    expect(
      out.lines.some((l) =>
        /^Cognito \(cognito-local at http:\/\/127\.0\.0\.1:\d+\): pool local_\w+ holds 6 users \(6 CONFIRMED\); it invoked the post-confirmation trigger 6 times\.$/.test(
          l,
        ),
      ),
    ).toBe(true);

    expect(out.lines).toContain('Dead-letter queue: 1 message');
    expect(out.lines.some((l) => l.includes('ErrorReason: user broken-user lacks attribute "custom:tenant_id"'))).toBe(true);
    expect(out.lines.some((l) => /^broken-user\s+-\s+-\s+-\s+no \(in DLQ, expected\)$/.test(l))).toBe(true);
  }, 60_000);

  it('fails the run when a user who should be imported is not (the verdict is not vacuous)', async () => {
    const [good, bad] = demoUsers(2) as [DemoUser, DemoUser];
    const lacking: DemoUser = { ...bad, attributes: { ...bad.attributes } };
    delete lacking.attributes['custom:tenant_id'];
    const out = capture();
    const result = await runLocalPipeline({ userList: [good, lacking], faultRate: 0, brokenUser: false }, out);

    expect(result.ok).toBe(false);
    expect(out.warnings.some((w) => w.includes('user002 lacks "custom:tenant_id"'))).toBe(true);
    const failed = result.users.find((u) => u.username === 'user002');
    expect(failed?.problems.join(' ')).toMatch(/ledger entry|dead-lettered: MISSING_ATTRIBUTE/);
    // The stand-in holds 1 user where the run expected 2.
    expect(result.problems).toContain('the Tray stand-in holds 1 users, expected exactly 2');
    expect(out.lines.some((l) => l.startsWith('FAILED:'))).toBe(true);
  }, 60_000);
});

describe('npm start --serve', () => {
  it('keeps the stand-ins and the worker running on fixed ports until stop()', async () => {
    const basePort = 20_000 + Math.floor(Math.random() * 40_000);
    const out = capture();
    const result = await runLocalPipeline({ users: 1, brokenUser: false, faultRate: 0, serve: true, basePort }, out);
    try {
      expect(result.ok).toBe(true);
      expect(result.serve).toMatchObject({
        sqs: `http://127.0.0.1:${basePort}`,
        dynamodb: `http://127.0.0.1:${basePort + 1}`,
        secretsManager: `http://127.0.0.1:${basePort + 2}`,
        tray: `http://127.0.0.1:${basePort + 3}/graphql`,
      });
      const text = out.lines.join('\n');
      expect(text).toContain(`curl -s http://127.0.0.1:${basePort + 3}/_standin/state`);
      expect(text).toContain(`--endpoint-url http://127.0.0.1:${basePort} sqs receive-message --queue-url ${result.serve?.dlqUrl}`);
      const cognitoInfo = result.serve?.cognito;
      expect(cognitoInfo?.userPoolId).toBe(result.cognito?.userPoolId);
      expect(text).toContain(
        `--endpoint-url ${cognitoInfo?.endpoint} cognito-idp sign-up --client-id ${cognitoInfo?.clientId} --username grace`,
      );
      expect(text).toContain(`'Name=custom:tenant_id,Value=tenant-001'`);
      expect(text).toContain(`cognito-idp admin-confirm-sign-up --user-pool-id ${cognitoInfo?.userPoolId} --username grace`);

      // The printed example message, sent by hand, is imported by the worker that keeps polling.
      const sqs = new SQSClient({
        endpoint: result.serve?.sqs,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      await sqs.send(new SendMessageCommand({ QueueUrl: result.serve?.queueUrl, MessageBody: result.serve?.exampleMessage }));
      sqs.destroy();
      const state = async () =>
        (await (await fetch(`http://127.0.0.1:${basePort + 3}/_standin/state`)).json()) as {
          users: unknown[];
          instances: { enabled: boolean }[];
        };
      const deadline = Date.now() + 15_000;
      // Tray enables the instance a moment before the invocation returns and prints its line:
      // wait for both, or the check races the worker under load.
      const batchLogged = () => out.lines.some((l) => l.startsWith('worker: batch of 1'));
      while (((await state()).instances.filter((i) => i.enabled).length < 2 || !batchLogged()) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect((await state()).users).toHaveLength(2);
      expect(batchLogged()).toBe(true);

      // The printed sign-up, done by hand against cognito-local: Cognito invokes the trigger, the worker imports the user.
      const cognito = new CognitoIdentityProviderClient({
        endpoint: cognitoInfo?.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      try {
        const attributes = Object.entries(cognitoInfo?.exampleAttributes ?? {}).map(([Name, Value]) => ({ Name, Value }));
        await cognito.send(
          new SignUpCommand({
            ClientId: cognitoInfo?.clientId,
            Username: 'grace',
            Password: cognitoInfo?.password,
            UserAttributes: attributes,
          }),
        );
        await cognito.send(new AdminConfirmSignUpCommand({ UserPoolId: cognitoInfo?.userPoolId, Username: 'grace' }));
        expect((await cognito.send(new ListUsersCommand({ UserPoolId: cognitoInfo?.userPoolId }))).Users).toHaveLength(2);
      } finally {
        cognito.destroy();
      }
      const byHand = Date.now() + 15_000;
      while ((await state()).instances.filter((i) => i.enabled).length < 3 && Date.now() < byHand)
        await new Promise((r) => setTimeout(r, 100));
      expect((await state()).users).toHaveLength(3);
      expect(out.lines.some((l) => /^post-confirmation: Cognito confirmed grace \(sub [0-9a-f-]{36}\)/.test(l))).toBe(true);
    } finally {
      await result.stop?.();
    }
    // Stopped: the ports are free again.
    await expect(fetch(`http://127.0.0.1:${basePort + 3}/_standin/state`)).rejects.toThrow();
  }, 60_000);
});

describe('npm start options', () => {
  const dir = mkdtempSync(join(tmpdir(), 'local-run-options-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const silent = { writeOut: () => undefined, writeErr: () => undefined };

  it('has the documented defaults', () => {
    const options = parseRunOptions([], { env: {} });
    expect(options).toMatchObject({ users: 10, faultRate: 0.1, brokenUser: true, serve: false, verbose: false, planFile: DEMO_PLAN_FILE });
    expect(options.timeoutSeconds).toBeUndefined(); // 120 s, more for big runs
    expect(parseRunOptions(['--timeout', '30', '--users', '3', '--no-broken-user'], { env: {} })).toMatchObject({
      timeoutSeconds: 30,
      users: 3,
      brokenUser: false,
    });
    expect(options.tray).toBeUndefined();
  });

  it('never takes the master token as an option value', () => {
    expect(() =>
      parseRunOptions(['--tray-region', 'eu', '--plan', DEMO_PLAN_FILE, '--master-token', 'abc'], { env: {}, output: silent }),
    ).toThrow(CommanderError);
  });

  it('asks for the master token, the plan and valid files with your own Tray', () => {
    expect(() => parseRunOptions(['--tray-region', 'eu', '--plan', DEMO_PLAN_FILE], { env: {} })).toThrow(/TRAY_MASTER_TOKEN/);
    expect(() => parseRunOptions(['--tray-url', 'https://tray.example/graphql'], { env: { TRAY_MASTER_TOKEN: 't' } })).toThrow(
      /needs --plan/,
    );
    const badPlan = join(dir, 'bad-plan.json');
    writeFileSync(badPlan, JSON.stringify({ version: 1, solutionId: 's', instanceName: 'x', auths: [] }));
    expect(() => parseRunOptions(['--plan', badPlan], { env: {} })).toThrow(UsageError);
    expect(() => parseRunOptions(['--plan', badPlan], { env: {} })).toThrow(/\$\.auths: needs at least one auth/);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, '  token-from-file\n');
    const options = parseRunOptions(['--tray-region', 'eu', '--plan', DEMO_PLAN_FILE, '--master-token-file', tokenFile], {
      env: { TRAY_MASTER_TOKEN: 'from-env' },
    });
    expect(options.tray).toEqual({ url: 'https://eu1.tray.io/graphql', masterToken: 'token-from-file' });
    const badSecrets = join(dir, 'secrets.json');
    writeFileSync(badSecrets, JSON.stringify({ 'acme/api': 'not json, and a credential' }));
    let message = '';
    try {
      parseRunOptions(['--secrets-file', badSecrets], { env: {} });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/secret "acme\/api" .* must be a JSON object/);
    expect(message).not.toContain('a credential');
  });
});

describe('npm start against your own Tray (wiring, proven with a second stand-in)', () => {
  const MASTER = `byo-master-token-${Math.random().toString(36).slice(2)}`;
  const API_KEY = `byo-api-key-${Math.random().toString(36).slice(2)}`;
  let remote: TrayStandIn;
  let dir: string;

  beforeAll(async () => {
    remote = await startTrayStandIn({ masterToken: MASTER, solutions: [DEMO_SOLUTION] });
    dir = mkdtempSync(join(tmpdir(), 'local-run-byo-'));
  });
  afterAll(async () => {
    await remote?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the pipeline against --tray-url with TRAY_MASTER_TOKEN, --plan and --secrets-file', async () => {
    const secretsFile = join(dir, 'secrets.json');
    writeFileSync(secretsFile, JSON.stringify({ [DEMO_CREDENTIAL_SECRET]: { apiKey: API_KEY } }));
    const options = parseRunOptions(
      ['--tray-url', remote.url, '--plan', DEMO_PLAN_FILE, '--secrets-file', secretsFile, '--users', '3', '--fault-rate', '0.5'],
      {
        env: { TRAY_MASTER_TOKEN: MASTER },
      },
    );
    expect(options.notes).toContain('--fault-rate is ignored with your own Tray: faults are injected by the stand-in only.');
    const out = capture();
    const result = await runLocalPipeline(options, out);

    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.mode).toBe('tray');
    expect(result.trayUrl).toBe(remote.url);
    expect(result.counts.tray).toBeUndefined(); // no stand-in of the runner's own to cross-check
    expectAllEnabled(result, 3);

    // What "your Tray" now holds is exactly what the ledger says, created with your token.
    const snapshot = remote.snapshot();
    const good = result.users.filter((u) => u.expected === 'enabled');
    expect(snapshot.users.map((u) => u.id).sort()).toEqual(good.map((u) => u.trayUserId).sort());
    expect(snapshot.users.every((u) => u.isTestUser)).toBe(true); // the demo plan says isTestUser: true
    expect(snapshot.users.map((u) => u.externalUserId).sort()).toEqual(good.map((u) => u.sub).sort());
    expect(snapshot.authentications).toHaveLength(3);
    for (const auth of snapshot.authentications) expect(auth.data).toMatchObject({ api_key: API_KEY, api_version: '2024-01' });
    expect(snapshot.instances.map((i) => i.id).sort()).toEqual(good.map((u) => u.instanceId).sort());
    expect(snapshot.instances.every((i) => i.enabled && i.solutionId === DEMO_SOLUTION.id)).toBe(true);
    expect(remote.calls.every((c) => c.tokenKind === 'master' || c.tokenKind === 'user')).toBe(true);
    expect(remote.calls.some((c) => c.tokenKind === 'master')).toBe(true);

    // The broken user went to the DLQ without touching Tray.
    expect(result.deadLettered).toHaveLength(1);
    expect(result.deadLettered[0]).toMatchObject({ errorCode: 'MISSING_ATTRIBUTE', expected: true });
    expect(out.lines.join('\n')).not.toContain(MASTER);
    expect(out.lines.join('\n')).not.toContain(API_KEY);
  }, 60_000);
});
