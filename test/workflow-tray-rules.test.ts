import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_TABLE_NAME } from '../local/local-stack.js';
import { DEMO_USER_POOL_ID, demoUsers, type Harness, startHarness } from '../local/worker-harness.js';
import { companyLedgerKey, type ImportDeps, type ImportEvent, importUser } from '../shared/import-workflow.js';
import { Ledger, type LedgerEntry, type UserKey } from '../shared/ledger.js';
import { type ImportPlan, parsePlan } from '../shared/plan.js';
import { SecretReader } from '../shared/secrets.js';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';
import { Pacer } from '../shared/tray/pacer.js';
import { expectImportedExactlyOnce } from './support/assertions.js';

/**
 * Tray's rules that the import must follow, each proved against the stand-in running on Tray's
 * published schema, with realistic latency and Tray's 2 s wait-before-enabling rule.
 */
const users = demoUsers(60).slice(40);
const keyOf = (sub: string): UserKey => ({ userPoolId: DEMO_USER_POOL_ID, sub });

/** A ledger whose next write of the given kind fails once: the process "crashed" after Tray's create. */
class CrashingLedger extends Ledger {
  crashOn: 'recordAuth' | 'recordInstance' | undefined;
  override recordAuth(key: UserKey, owner: string, slot: string, id: string): Promise<LedgerEntry> {
    if (this.crashOn === 'recordAuth') return this.crash();
    return super.recordAuth(key, owner, slot, id);
  }
  override recordInstance(key: UserKey, owner: string, id: string, createdAt: number): Promise<LedgerEntry> {
    if (this.crashOn === 'recordInstance') return this.crash();
    return super.recordInstance(key, owner, id, createdAt);
  }
  private crash(): never {
    this.crashOn = undefined;
    throw new Error('simulated crash after the create');
  }
}

describe("Tray's rules, followed", () => {
  let h: Harness;
  let ledger: CrashingLedger;
  beforeAll(async () => {
    h = await startHarness();
    ledger = new CrashingLedger({ tableName: LOCAL_TABLE_NAME, client: h.stack.dynamodb });
  });
  afterAll(async () => h?.close());

  const tray = () =>
    new TrayClient({
      url: h.stack.tray!.url,
      masterToken: staticMasterToken(() => h.secrets.masterToken),
      pacer: new Pacer({ ratePerSecond: 25, burst: 5 }),
    });
  const deps = (overrides: Partial<ImportDeps> = {}): ImportDeps => ({
    plan: h.config.plan,
    tray: tray(),
    ledger,
    secrets: new SecretReader({ client: h.stack.secretsManager }),
    leaseMs: 30_000,
    ...overrides,
  });
  const callsOf = (from: number, operation: string) => h.stack.tray!.calls.slice(from).filter((c) => c.operation === operation);

  it('waits at least 2 s after createSolutionInstance before enabling, once, and Tray never refuses the enable', async () => {
    const user = users[0]!;
    const from = h.stack.tray!.calls.length;
    const events: ImportEvent[] = [];
    await expect(importUser(h.messageFor(user), deps({ onEvent: (e) => events.push(e) }))).resolves.toMatchObject({ outcome: 'enabled' });
    const [create] = callsOf(from, 'createSolutionInstance');
    const enables = callsOf(from, 'updateSolutionInstance');
    expect(enables).toHaveLength(1);
    expect(enables[0]!.outcome).toBe('ok');
    // `at` is when the request arrived: the create's answer came later still.
    expect(enables[0]!.at - create!.at).toBeGreaterThanOrEqual(2_000);
    expect(events.some((e) => e.type === 'waitedBeforeEnable')).toBe(true);
    await expectImportedExactlyOnce(h, user);
  });

  it('a retry after the 2 s have passed does not wait again', async () => {
    const user = users[1]!;
    class FailingEnableOnce extends TrayClient {
      failed = false;
      override async enableSolutionInstance(...args: Parameters<TrayClient['enableSolutionInstance']>) {
        if (!this.failed) {
          this.failed = true;
          const { ImportError } = await import('../shared/errors.js');
          throw new ImportError('TRAY_UNAVAILABLE', 'enableSolutionInstance', 'Tray answered updateSolutionInstance with HTTP 503');
        }
        return super.enableSolutionInstance(...args);
      }
    }
    const first = new FailingEnableOnce({
      url: h.stack.tray!.url,
      masterToken: staticMasterToken(() => h.secrets.masterToken),
      pacer: new Pacer({ ratePerSecond: 25 }),
    });
    await expect(importUser(h.messageFor(user), deps({ tray: first }))).rejects.toMatchObject({ code: 'TRAY_UNAVAILABLE' });
    expect((await h.ledger.get(keyOf(user.sub)))?.instanceCreatedAt).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 2_100));
    const events: ImportEvent[] = [];
    await expect(importUser(h.messageFor(user), deps({ onEvent: (e) => events.push(e) }))).resolves.toMatchObject({ outcome: 'enabled' });
    expect(events.filter((e) => e.type === 'waitedBeforeEnable')).toEqual([]);
    await expectImportedExactlyOnce(h, user);
  });

  it('after crashes, a redelivery whose email changed adopts what was sent: no duplicate auth or instance', async () => {
    const user = users[2]!;
    const withEmail = (email: string) => h.messageFor(user, { attributes: { ...h.messageFor(user).attributes, email } });
    // Delivery 1 creates the auth (named after the first email), then dies before recording it.
    ledger.crashOn = 'recordAuth';
    await expect(importUser(withEmail('first@example.com'), deps())).rejects.toThrow(/simulated crash/);
    // Delivery 2 carries a changed email: it must find the auth by the name that was sent; it then
    // creates the instance (named after the second email) and dies before recording it.
    ledger.crashOn = 'recordInstance';
    await expect(importUser(withEmail('second@example.com'), deps())).rejects.toThrow(/simulated crash/);
    // Delivery 3, yet another email: finds the instance by the name that was sent.
    const events: ImportEvent[] = [];
    await expect(importUser(withEmail('third@example.com'), deps({ onEvent: (e) => events.push(e) }))).resolves.toMatchObject({
      outcome: 'enabled',
    });
    expect(events).toContainEqual(expect.objectContaining({ type: 'adopted', object: 'instance' }));
    await expectImportedExactlyOnce(h, user);
    const snap = h.stack.tray!.snapshot();
    const trayUser = snap.users.find((u) => u.externalUserId === user.sub)!;
    expect(snap.authentications.filter((a) => a.userId === trayUser.id).map((a) => a.name)).toEqual(['Acme CRM (first@example.com)']);
    expect(snap.instances.filter((i) => i.owner === trayUser.id).map((i) => i.name)).toEqual(['CRM sync for second@example.com']);
  });

  it('an instance that could not be enabled heals once the plan is fixed: the retry sends the current values', async () => {
    const user = users[3]!;
    // The solution requires external_notification_email; this plan forgets it.
    const broken: ImportPlan = parsePlan({
      ...h.config.plan,
      configValues: h.config.plan.configValues.filter((c) => c.externalId !== 'external_notification_email'),
    });
    // Moments after the create, a refused enable is Tray not being ready: transient.
    await expect(
      importUser(h.messageFor(user), deps({ plan: broken, deadline: Date.now() + 9_000, callTimeoutMs: 10_000 })),
    ).rejects.toMatchObject({ code: 'TRAY_NOT_READY', kind: 'transient' });
    // Long after, it is final: the message would be dead-lettered with Tray's reason.
    const doc = DynamoDBDocumentClient.from(h.stack.dynamodb);
    await doc.send(
      new UpdateCommand({
        TableName: LOCAL_TABLE_NAME,
        Key: keyOf(user.sub),
        UpdateExpression: 'SET instanceCreatedAt = :old',
        ExpressionAttributeValues: { ':old': Date.now() - 60_000 },
      }),
    );
    await expect(importUser(h.messageFor(user), deps({ plan: broken }))).rejects.toMatchObject({
      code: 'TRAY_REJECTED',
      message: expect.stringContaining('external_notification_email'),
    });
    expect(await h.ledger.get(keyOf(user.sub))).toMatchObject({ status: 'failed' });
    // The plan is fixed and the user redriven: the enable carries the missing value and succeeds.
    await expect(importUser(h.messageFor(user), deps())).resolves.toMatchObject({ outcome: 'enabled' });
    await expectImportedExactlyOnce(h, user);
    const instance = h.stack.tray!.snapshot().instances.find((i) => i.name === `CRM sync for ${user.attributes.email}`)!;
    expect(instance.configValues).toContainEqual({
      externalId: 'external_notification_email',
      value: JSON.stringify(user.attributes.email),
    });
  });

  it('one Tray user per company, when the plan says so: later sign-ups of the company reuse its user, auth and instance', async () => {
    const plan = parsePlan({
      ...h.config.plan,
      trayUserPer: 'company',
      externalUserId: '{{custom:tenant_id}}',
      userName: 'Company {{custom:tenant_id}}',
      instanceName: 'CRM sync for {{custom:tenant_id}}',
    });
    const [alice, bob] = [users[4]!, users[5]!];
    const company = 'tenant-acme-corp';
    const messageOf = (u: typeof alice) => h.messageFor(u, { attributes: { ...h.messageFor(u).attributes, 'custom:tenant_id': company } });
    const from = h.stack.tray!.calls.length;
    await expect(importUser(messageOf(alice), deps({ plan }))).resolves.toMatchObject({ outcome: 'enabled' });
    const afterAlice = h.stack.tray!.calls.length;
    await expect(importUser(messageOf(bob), deps({ plan }))).resolves.toMatchObject({ outcome: 'alreadyEnabled' });
    // Bob cost no Tray call at all.
    expect(h.stack.tray!.calls.length).toBe(afterAlice);
    expect(callsOf(from, 'createExternalUser')).toHaveLength(1);
    const snap = h.stack.tray!.snapshot();
    const trayUsers = snap.users.filter((u) => u.externalUserId === company);
    expect(trayUsers).toHaveLength(1);
    expect(snap.authentications.filter((a) => a.userId === trayUsers[0]!.id)).toHaveLength(1);
    expect(snap.instances.filter((i) => i.owner === trayUsers[0]!.id)).toEqual([
      expect.objectContaining({ enabled: true, name: `CRM sync for ${company}` }),
    ]);
    const companyKey = companyLedgerKey(DEMO_USER_POOL_ID, company);
    const [a, b, c] = await Promise.all([h.ledger.get(keyOf(alice.sub)), h.ledger.get(keyOf(bob.sub)), h.ledger.get(companyKey)]);
    for (const member of [a, b])
      expect(member).toMatchObject({
        status: 'enabled',
        company: `${companyKey.userPoolId}/${company}`,
        trayUserId: c!.trayUserId,
        instanceId: c!.instanceId,
        authIds: c!.authIds,
      });
    // Listing the pool's users (status, backfill, reconcile) sees the members, not the company.
    const subs: string[] = [];
    for await (const e of h.ledger.entries(DEMO_USER_POOL_ID)) subs.push(e.sub);
    expect(subs).toEqual(expect.arrayContaining([alice.sub, bob.sub]));
    expect(subs).not.toContain(company);
  });
});
