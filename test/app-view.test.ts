import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AppStatusResult, runAppStatus, runWizardUrl, type WizardUrlResult } from '../cli/commands/app-view.js';
import type { CliDeps } from '../cli/context.js';
import { main } from '../cli/main.js';
import { type BufferIo, bufferIo } from '../cli/toolkit/output.js';
import { DEMO_SOLUTION, DEMO_USER_POOL_ID, type DemoUser, demoPlan, demoSecrets, demoUsers } from '../local/demo.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { AppViewError, type AppViewOptions, createAppView } from '../shared/app-view.js';
import { importUser } from '../shared/import-workflow.js';
import { Ledger } from '../shared/ledger.js';
import { createLogger } from '../shared/logging.js';
import type { QueueMessage } from '../shared/message.js';
import { type ImportPlan, parsePlan } from '../shared/plan.js';
import { jsonScrubber, scrub } from '../shared/redact.js';
import { SecretReader } from '../shared/secrets.js';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';
import { Pacer } from '../shared/tray/pacer.js';

/**
 * The app's view of each user (shared/app-view.ts) and its CLI (app-status, wizard-url), against
 * the Tray stand-in on Tray's schema: users are imported with the worker's own workflow first.
 */
const secrets = demoSecrets();
const [imported, notImported, cliUser, member] = demoUsers(84).slice(80) as [DemoUser, DemoUser, DemoUser, DemoUser];
const EMBEDDED_ID = 'acme-embedded';
let stack: LocalStack;
let ledger: Ledger;
let dir: string;

/**
 * Every code the stand-in minted, with the userId it was asked for: read from the requests and
 * answers on the wire (the stand-in exposes its authorizationCodes map nowhere else).
 */
const minted: { userId: string; code: string }[] = [];
const realFetch = globalThis.fetch;
async function recordingFetch(...args: Parameters<typeof fetch>): Promise<Response> {
  const response = await realFetch(...args);
  const request = JSON.parse((args[1]?.body as string | undefined) ?? '{}') as { query?: string; variables?: { userId?: string } };
  if (request.query?.includes('generateAuthorizationCode')) {
    const body = (await response.clone().json()) as { data?: { generateAuthorizationCode?: { authorizationCode?: string } } };
    const code = body.data?.generateAuthorizationCode?.authorizationCode;
    if (code && request.variables?.userId) minted.push({ userId: request.variables.userId, code });
  }
  return response;
}

const pacer = new Pacer({ ratePerSecond: 50, burst: 10 });
const tray = () =>
  new TrayClient({ url: stack.tray!.url, masterToken: staticMasterToken(() => secrets.masterToken), pacer, fetch: recordingFetch });

function messageFor(user: DemoUser): QueueMessage {
  const { email, name } = user.attributes;
  return {
    v: 1,
    userPoolId: DEMO_USER_POOL_ID,
    username: user.username,
    sub: user.sub,
    attributes: { email: email!, name: name!, 'custom:tenant_id': user.attributes['custom:tenant_id']! },
    source: 'manual',
    requestedAt: new Date().toISOString(),
  };
}

function view(overrides: Partial<AppViewOptions> = {}) {
  return createAppView({ ledger, tray: tray(), plan: demoPlan(), userPoolId: DEMO_USER_POOL_ID, embeddedId: EMBEDDED_ID, ...overrides });
}

const planIn = (tray: ImportPlan['tray']): ImportPlan => parsePlan({ ...demoPlan(), tray });

beforeAll(async () => {
  stack = await startLocalStack({
    masterToken: secrets.masterToken,
    secrets: secrets.credentials,
    tray: { solutions: [DEMO_SOLUTION], rateLimit: false, latencyMs: 0, enableDelayMs: 0 },
  });
  ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb });
  dir = mkdtempSync(join(tmpdir(), 'app-view-'));
  const deps = {
    plan: demoPlan(),
    tray: tray(),
    ledger,
    secrets: new SecretReader({ client: stack.secretsManager }),
    leaseMs: 30_000,
    enableDelayMs: 0,
  };
  for (const user of [imported, cliUser]) await expect(importUser(messageFor(user), deps)).resolves.toMatchObject({ outcome: 'enabled' });
});
afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The Tray objects the stand-in holds for a user. */
function trayObjectsOf(user: DemoUser) {
  const snap = stack.tray!.snapshot();
  const trayUser = snap.users.find((u) => u.externalUserId === user.sub)!;
  return {
    trayUser,
    auths: snap.authentications.filter((a) => a.userId === trayUser.id),
    instances: snap.instances.filter((i) => i.owner === trayUser.id),
  };
}

describe('getImportStatus', () => {
  it("returns the ledger's ids, which are Tray's, without calling Tray", async () => {
    const { trayUser, auths, instances } = trayObjectsOf(imported);
    expect(auths).toHaveLength(1);
    expect(instances).toHaveLength(1);
    const calls = stack.tray!.calls.length;
    const status = await view().getImportStatus(imported.sub);
    expect(status).toMatchObject({
      sub: imported.sub,
      userPoolId: DEMO_USER_POOL_ID,
      status: 'enabled',
      enabled: true,
      trayUserId: trayUser.id,
      authIds: { external_acme_crm_authentication: auths[0]!.id },
      instanceId: instances[0]!.id,
    });
    expect(status?.lastError).toBeUndefined();
    expect(status?.company).toBeUndefined();
    // The import's internals are not part of the app's view.
    expect(status).not.toHaveProperty('leaseOwner');
    expect(status).not.toHaveProperty('pending');
    expect(stack.tray!.calls.length).toBe(calls);
  });

  it('is undefined for a user the ledger does not know', async () => {
    await expect(view().getImportStatus(notImported.sub)).resolves.toBeUndefined();
  });
});

describe('per-company plans', () => {
  it("shows the member's company, and links the company's instance with a code minted for the company's Tray user", async () => {
    const plan = parsePlan({
      ...demoPlan(),
      trayUserPer: 'company',
      externalUserId: '{{custom:tenant_id}}',
      userName: 'Company {{custom:tenant_id}}',
      instanceName: 'CRM sync for {{custom:tenant_id}}',
    });
    const deps = {
      plan,
      tray: tray(),
      ledger,
      secrets: new SecretReader({ client: stack.secretsManager }),
      leaseMs: 30_000,
      enableDelayMs: 0,
    };
    await expect(importUser(messageFor(member), deps)).resolves.toMatchObject({ outcome: 'enabled' });
    const company = member.attributes['custom:tenant_id']!;
    const snap = stack.tray!.snapshot();
    const companyUser = snap.users.find((u) => u.externalUserId === company)!;
    const instance = snap.instances.find((i) => i.owner === companyUser.id)!;
    const app = view({ plan });
    await expect(app.getImportStatus(member.sub)).resolves.toMatchObject({
      company: `${DEMO_USER_POOL_ID}#company/${company}`,
      trayUserId: companyUser.id,
      instanceId: instance.id,
    });
    const url = new URL((await app.configWizardUrl(member.sub)).url);
    expect(url.pathname).toBe(`/external/solutions/${EMBEDDED_ID}/configure/${instance.id}`);
    expect(minted).toContainEqual({ userId: companyUser.id, code: url.searchParams.get('code') });
  });
});

describe('configWizardUrl', () => {
  it("links the user's instance on the US host with a code the stand-in minted for that user, a new one each call", async () => {
    const { trayUser, instances } = trayObjectsOf(imported);
    const app = view();
    const first = await app.configWizardUrl(imported.sub);
    const second = await app.configWizardUrl(imported.sub);
    for (const link of [first, second]) {
      const url = new URL(link.url);
      expect(url.origin).toBe('https://embedded.tray.io');
      expect(url.pathname).toBe(`/external/solutions/${EMBEDDED_ID}/configure/${instances[0]!.id}`);
      expect([...url.searchParams.keys()]).toEqual(['code']);
      expect(minted).toContainEqual({ userId: trayUser.id, code: url.searchParams.get('code') });
      expect(link).toMatchObject({ trayUserId: trayUser.id, solutionInstanceId: instances[0]!.id });
      expect(Date.parse(link.expiresAt) - Date.now()).toBeGreaterThan(4 * 60_000);
      expect(Date.parse(link.expiresAt) - Date.now()).toBeLessThanOrEqual(5 * 60_000);
    }
    expect(new URL(first.url).searchParams.get('code')).not.toBe(new URL(second.url).searchParams.get('code'));
  });

  it("takes the host from the plan's region, and demands one for a plan with an explicit graphqlUrl", async () => {
    expect(new URL((await view({ plan: planIn({ region: 'eu' }) }).configWizardUrl(imported.sub)).url).host).toBe('embedded.eu1.tray.io');
    expect(new URL((await view({ plan: planIn({ region: 'apac' }) }).configWizardUrl(imported.sub)).url).host).toBe('embedded.ap1.tray.io');
    const custom = planIn({ graphqlUrl: 'https://eu1.tray.io/graphql' });
    expect(() => view({ plan: custom })).toThrow(
      expect.objectContaining({ code: 'EMBEDDED_HOST_UNKNOWN', message: expect.stringContaining('pass embeddedHost') }),
    );
    expect(new URL((await view({ plan: custom, embeddedHost: 'embedded.eu1.tray.io' }).configWizardUrl(imported.sub)).url).host).toBe(
      'embedded.eu1.tray.io',
    );
    expect(() => view({ embeddedHost: 'https://evil.example/x' })).toThrow(expect.objectContaining({ code: 'INVALID_SETTING' }));
    expect(() => view({ embeddedId: 'a/../b' })).toThrow(
      expect.objectContaining({ code: 'INVALID_SETTING', message: expect.stringContaining('Embedded ID') }),
    );
  });

  it('fails with a typed error naming the fix for a user not imported yet, without minting a code', async () => {
    const calls = stack.tray!.calls.length;
    const error = await view()
      .configWizardUrl(notImported.sub)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppViewError);
    expect(error).toMatchObject({ code: 'NOT_IMPORTED', message: expect.stringContaining(`import-user ${notImported.sub}`) });
    expect(stack.tray!.calls.length).toBe(calls);
  });

  it('never lets the code reach a log line', async () => {
    const link = await view().configWizardUrl(imported.sub);
    const code = new URL(link.url).searchParams.get('code')!;
    expect(code.length).toBeGreaterThanOrEqual(16);
    // A Powertools logger of the project (createLogger: jsonScrubber), its output captured.
    const lines: string[] = [];
    // Powertools writes through the console under POWERTOOLS_DEV (vitest.config.ts).
    const info = vi.spyOn(console, 'info').mockImplementation((line: unknown) => void lines.push(String(line)));
    try {
      const logger = createLogger('app-view-test');
      logger.info('redirecting to the config wizard', { url: link.url, code });
    } finally {
      info.mockRestore();
    }
    const logged = lines.join('');
    expect(logged).toContain('redirecting to the config wizard');
    expect(logged).not.toContain(code);
    expect(JSON.stringify({ msg: link.url }, jsonScrubber)).not.toContain(code);
    expect(scrub(link.url)).not.toContain(code);
  });
});

describe('authDialogUrl', () => {
  it("links the auth dialog of the plan's slot, with the slot's service, environment and scopes", async () => {
    const { trayUser } = trayObjectsOf(imported);
    const link = await view().authDialogUrl(imported.sub, 'external_acme_crm_authentication');
    const url = new URL(link.url);
    expect(url.origin).toBe('https://embedded.tray.io');
    expect(url.pathname).toBe(`/external/auth/create/${EMBEDDED_ID}`);
    expect(url.searchParams.get('serviceId')).toBe('svc-acme-crm');
    expect(url.searchParams.get('serviceEnvironmentId')).toBe('env-acme-crm-production');
    expect(url.searchParams.getAll('scopes[]')).toEqual(['contacts.read', 'contacts.write']);
    expect(minted).toContainEqual({ userId: trayUser.id, code: url.searchParams.get('code') });
    expect(link).toMatchObject({ slot: 'external_acme_crm_authentication', trayUserId: trayUser.id });
  });

  it('names the valid slots for an unknown one (case-sensitive), before any Tray call', async () => {
    const calls = stack.tray!.calls.length;
    await expect(view().authDialogUrl(imported.sub, 'External_Acme_CRM_Authentication')).rejects.toMatchObject({
      code: 'UNKNOWN_SLOT',
      message: expect.stringMatching(
        /"External_Acme_CRM_Authentication" is not in the plan.*valid slots: "external_acme_crm_authentication"/,
      ),
    });
    expect(stack.tray!.calls.length).toBe(calls);
  });

  it('fails with NOT_IMPORTED for a user not imported yet', async () => {
    await expect(view().authDialogUrl(notImported.sub, 'external_acme_crm_authentication')).rejects.toMatchObject({ code: 'NOT_IMPORTED' });
  });
});

describe('CLI: app-status and wizard-url', () => {
  const env = () => ({ ...process.env, TRAY_MASTER_TOKEN: secrets.masterToken });
  function deps(): { io: BufferIo; deps: CliDeps } {
    const io = bufferIo();
    return {
      io,
      deps: {
        io,
        env: env(),
        sqs: stack.sqs,
        dynamodb: stack.dynamodb,
        secretsManager: stack.secretsManager,
        pacer: new Pacer({ ratePerSecond: 50, burst: 10 }),
        fetch: recordingFetch,
      },
    };
  }
  const common = () => ['--user-pool-id', DEMO_USER_POOL_ID, '--table', stack.tableName];
  const planFile = () => {
    const path = join(dir, 'plan-eu.json');
    writeFileSync(path, JSON.stringify({ ...demoPlan(), tray: { region: 'eu' } }));
    return path;
  };

  it('app-status: exit 0 with the ledger ids (--json ok: true), exit 1 for an unknown user', async () => {
    const { trayUser, instances } = trayObjectsOf(cliUser);
    const ok = deps();
    expect(await main(['app-status', cliUser.sub, ...common(), '--json'], ok.deps)).toBe(0);
    expect(ok.io.json<AppStatusResult & { ok: boolean }>()).toMatchObject({
      ok: true,
      found: true,
      status: { status: 'enabled', trayUserId: trayUser.id, instanceId: instances[0]!.id },
    });

    const missing = deps();
    const result = await runAppStatus(notImported.sub, { userPoolId: DEMO_USER_POOL_ID, table: stack.tableName, json: true }, missing.deps);
    expect(result.exitCode).toBe(1);
    expect(missing.io.json()).toMatchObject({ ok: false, found: false });
  });

  it('wizard-url: the URL on stdout only (text and --json), the code nowhere else', async () => {
    const { trayUser, instances } = trayObjectsOf(cliUser);
    const text = deps();
    expect(await main(['wizard-url', cliUser.sub, ...common(), '--plan', planFile(), '--embedded-id', EMBEDDED_ID], text.deps)).toBe(0);
    const url = new URL(text.io.stdout.trim());
    expect(url.origin).toBe('https://embedded.eu1.tray.io');
    expect(url.pathname).toBe(`/external/solutions/${EMBEDDED_ID}/configure/${instances[0]!.id}`);
    const code = url.searchParams.get('code')!;
    expect(minted).toContainEqual({ userId: trayUser.id, code });
    expect(text.io.stderr).toContain('5 minutes');
    expect(text.io.stderr).not.toContain(code);

    const json = deps();
    expect(
      await main(
        [
          'wizard-url',
          cliUser.sub,
          ...common(),
          '--plan',
          planFile(),
          '--embedded-id',
          EMBEDDED_ID,
          '--slot',
          'external_acme_crm_authentication',
          '--json',
        ],
        json.deps,
      ),
    ).toBe(0);
    const out = json.io.json<WizardUrlResult & { ok: boolean }>();
    expect(out).toMatchObject({
      ok: true,
      kind: 'authDialog',
      sub: cliUser.sub,
      slot: 'external_acme_crm_authentication',
      trayUserId: trayUser.id,
    });
    const dialogCode = new URL(out.url).searchParams.get('code')!;
    expect(minted).toContainEqual({ userId: trayUser.id, code: dialogCode });
    expect(json.io.stderr).not.toContain(dialogCode);
    expect(json.io.stdout + json.io.stderr + text.io.stdout + text.io.stderr).not.toContain(secrets.masterToken);
  });

  it('wizard-url: exit 1 for a user not imported, exit 2 for an unknown slot or a missing embedded id', async () => {
    const notYet = deps();
    await expect(
      runWizardUrl(
        notImported.sub,
        { userPoolId: DEMO_USER_POOL_ID, table: stack.tableName, plan: planFile(), embeddedId: EMBEDDED_ID },
        notYet.deps,
      ),
    ).rejects.toMatchObject({ exitCode: 1, message: expect.stringContaining('not imported yet') });

    // Refused before the master token is read: no token source at all, and still the slot error.
    const slot = deps();
    slot.deps.env = { ...process.env, TRAY_MASTER_TOKEN: '' };
    const calls = stack.tray!.calls.length;
    expect(
      await main(
        ['wizard-url', cliUser.sub, ...common(), '--plan', planFile(), '--embedded-id', EMBEDDED_ID, '--slot', 'nope', '--json'],
        slot.deps,
      ),
    ).toBe(2);
    expect(slot.io.json()).toMatchObject({
      ok: false,
      error: { exitCode: 2, message: expect.stringContaining('valid slots: "external_acme_crm_authentication"') },
    });
    expect(stack.tray!.calls.length).toBe(calls);

    const noId = deps();
    expect(await main(['wizard-url', cliUser.sub, ...common(), '--plan', planFile()], noId.deps)).toBe(2);
    expect(noId.io.stderr).toContain('--embedded-id');
  });
});
