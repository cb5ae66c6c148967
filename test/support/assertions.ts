import { expect } from 'vitest';
import type { Harness } from './worker-harness.js';
import { DEMO_USER_POOL_ID, type DemoUser } from '../../local/demo.js';

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
