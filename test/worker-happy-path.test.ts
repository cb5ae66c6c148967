import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoUsers, type Harness, startHarness } from '../local/worker-harness.js';

describe('import worker: happy path against the emulators and the Tray stand-in', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => h?.close());

  it('imports a fresh user with exactly the documented calls and enables the instance', async () => {
    const [user] = demoUsers(1);
    await h.send(h.messageFor(user!));
    await h.drain();

    const tray = h.stack.tray!;
    expect(tray.countsByOperation()).toEqual({
      createExternalUser: 1,
      authorize: 1,
      createUserAuthentication: 1,
      createSolutionInstance: 1,
      updateSolutionInstance: 1,
    });
    const snap = tray.snapshot();
    expect(snap.users).toHaveLength(1);
    expect(snap.users[0]).toMatchObject({ externalUserId: user!.sub, name: user!.attributes.email, isTestUser: true });
    expect(snap.authentications).toHaveLength(1);
    const auth = snap.authentications[0]!;
    expect(auth).toMatchObject({
      userId: snap.users[0]!.id,
      name: `Acme CRM (${user!.attributes.email})`,
      serviceId: 'svc-acme-crm',
      serviceEnvironmentId: 'env-acme-crm-production',
      scopes: ['contacts.read', 'contacts.write'],
    });
    const apiKey = JSON.parse(h.secrets.credentials['tray-auth-import/demo/acme-crm']!).apiKey;
    expect(auth.data).toEqual({ api_key: apiKey, account_id: user!.attributes['custom:tenant_id'], api_version: '2024-01' });
    expect(snap.instances).toHaveLength(1);
    expect(snap.instances[0]).toMatchObject({
      owner: snap.users[0]!.id,
      solutionId: 'sol-demo-crm-sync',
      name: `CRM sync for ${user!.attributes.email}`,
      enabled: true,
      authValues: [{ externalId: 'external_acme_crm_authentication', authId: auth.id }],
    });
    expect(snap.instances[0]!.configValues).toEqual(
      expect.arrayContaining([
        { externalId: 'external_notification_email', value: JSON.stringify(user!.attributes.email) },
        { externalId: 'external_sync_interval_minutes', value: '15' },
      ]),
    );

    const entry = await h.ledger.get({ userPoolId: h.messageFor(user!).userPoolId, sub: user!.sub });
    expect(entry).toMatchObject({
      status: 'enabled',
      enabled: true,
      trayUserId: snap.users[0]!.id,
      authIds: { external_acme_crm_authentication: auth.id },
      instanceId: snap.instances[0]!.id,
      attempts: 1,
      pending: {},
    });
    expect(entry?.leaseOwner).toBeUndefined();
    expect(await h.dlqMessages()).toEqual([]);
  });

  it('costs no Tray call for a user already enabled', async () => {
    const [user] = demoUsers(1);
    const before = h.stack.tray!.calls.length;
    await h.send(h.messageFor(user!, { source: 'backfill' }));
    await h.drain();
    expect(h.stack.tray!.calls.length).toBe(before);
    expect(h.stack.tray!.snapshot().instances).toHaveLength(1);
  });
});
