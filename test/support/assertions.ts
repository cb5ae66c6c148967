import { expect } from 'vitest';
import { DEMO_USER_POOL_ID, type DemoUser } from '../../local/demo.js';
import type { Harness } from '../../local/worker-harness.js';
import type { LedgerEntry } from '../../shared/ledger.js';

/** The user is enabled, and Tray holds exactly one user, one auth per slot and one instance for them. */
export async function expectImportedExactlyOnce(h: Harness, user: DemoUser): Promise<void> {
  const snap = h.stack.tray!.snapshot();
  const trayUsers = snap.users.filter((u) => u.externalUserId === user.sub);
  expect(trayUsers, `Tray users for ${user.username}`).toHaveLength(1);
  const trayUser = trayUsers[0]!;
  const auths = snap.authentications.filter((a) => a.userId === trayUser.id);
  expect(auths, `auths for ${user.username}`).toHaveLength(h.config.plan.auths.length);
  const instances = snap.instances.filter((i) => i.owner === trayUser.id);
  expect(instances, `instances for ${user.username}`).toHaveLength(1);
  expect(instances[0]!.enabled).toBe(true);
  expect(instances[0]!.authValues.map((v) => v.authId).sort()).toEqual(auths.map((a) => a.id).sort());
  const entry = await h.ledger.get({ userPoolId: DEMO_USER_POOL_ID, sub: user.sub });
  expect(entry).toMatchObject({ status: 'enabled', enabled: true, trayUserId: trayUser.id, instanceId: instances[0]!.id, pending: {} });
}

/** Polls the ledger until the user is enabled; fails with the user's last error if it ends failed or time runs out. */
export async function waitForEnabled(h: Harness, user: DemoUser, timeoutMs = 60_000): Promise<LedgerEntry> {
  const stopAt = Date.now() + timeoutMs;
  let entry: LedgerEntry | undefined;
  while (Date.now() < stopAt) {
    entry = await h.ledger.get({ userPoolId: DEMO_USER_POOL_ID, sub: user.sub });
    if (entry?.status === 'enabled') return entry;
    if (entry?.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${user.username} not enabled: ${entry ? `${entry.status} ${JSON.stringify(entry.lastError)}` : 'no ledger entry'}`);
}
