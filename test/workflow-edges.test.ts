import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importUser } from '../shared/import-workflow.js';
import { SecretReader } from '../shared/secrets.js';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';
import { expectImportedExactlyOnce } from './support/assertions.js';
import { demoUsers, startHarness, type Harness } from './support/worker-harness.js';

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
  const trayClient = () => new TrayClient({ url: h.stack.tray!.url, masterToken: staticMasterToken(() => h.secrets.masterToken) });

  it('does not record an instance as enabled when Tray answers the enable without enabling it', async () => {
    class StubbornTray extends TrayClient {
      override async enableSolutionInstance(token: string, id: string) {
        await super.enableSolutionInstance(token, id);
        return { id, enabled: false };
      }
    }
    const tray = new StubbornTray({ url: h.stack.tray!.url, masterToken: staticMasterToken(() => h.secrets.masterToken) });
    const user = users[0]!;
    await expect(importUser(h.messageFor(user), deps(tray))).rejects.toMatchObject({ code: 'TRAY_REJECTED', step: 'enableSolutionInstance', kind: 'permanent' });
    expect(await h.ledger.get({ userPoolId: h.messageFor(user).userPoolId, sub: user.sub })).toMatchObject({ status: 'failed', enabled: false });
  });

  it('a redelivery after a fix resumes from the ledger without creating anything again', async () => {
    const user = users[0]!;
    const before = h.stack.tray!.countsByOperation();
    await expect(importUser(h.messageFor(user), deps(trayClient()))).resolves.toMatchObject({ outcome: 'enabled' });
    const after = h.stack.tray!.countsByOperation();
    for (const op of ['createExternalUser', 'createUserAuthentication', 'createSolutionInstance']) expect(after[op]).toBe(before[op]);
    await expectImportedExactlyOnce(h, user);
  });

  it('a user whose lease another delivery holds is not touched (USER_BUSY), and Tray is not called', async () => {
    const user = users[1]!;
    const key = { userPoolId: h.messageFor(user).userPoolId, sub: user.sub };
    await h.ledger.acquire(key, 'someone-else', 60_000, { username: user.username, source: 'signup' });
    const calls = h.stack.tray!.calls.length;
    await expect(importUser(h.messageFor(user), deps(trayClient()))).rejects.toMatchObject({ code: 'USER_BUSY', kind: 'transient' });
    expect(h.stack.tray!.calls.length).toBe(calls);
  });

  it('refuses to mark a create as pending once its own lease has expired', async () => {
    const user = users[2]!;
    const key = { userPoolId: h.messageFor(user).userPoolId, sub: user.sub };
    await h.ledger.acquire(key, 'me', 1, { username: user.username, source: 'signup' });
    await new Promise((r) => setTimeout(r, 20));
    await expect(h.ledger.markPending(key, 'me', 'user')).rejects.toMatchObject({ code: 'USER_BUSY' });
  });
});

describe('the worker near its deadline', () => {
  let h: Harness;
  beforeAll(async () => {
    // 5 s function timeout: 3 s are kept back, leaving less than a user needs to start.
    h = await startHarness({ functionTimeoutMs: 5_000 });
  });
  afterAll(async () => h?.close());

  it('hands the record back without taking the user or calling Tray', async () => {
    const user = users[5]!;
    await h.send(h.messageFor(user));
    const result = await h.poller.pollOnce();
    expect(result).toMatchObject({ received: 1, failed: 1 });
    expect(h.stack.tray!.calls).toHaveLength(0);
    expect(await h.ledger.get({ userPoolId: h.messageFor(user).userPoolId, sub: user.sub })).toBeUndefined();
  });
});
