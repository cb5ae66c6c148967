import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_CREDENTIAL_SECRET, type DemoUser, demoPlan } from '../local/demo.js';
import { LOCAL_TABLE_NAME } from '../local/local-stack.js';
import type { FaultKind } from '../local/tray-standin/index.js';
import { DEMO_USER_POOL_ID, demoUsers, type Harness, startHarness } from '../local/worker-harness.js';
import { Ledger, type LedgerEntry, type UserKey } from '../shared/ledger.js';
import { buildLifecycleMessage } from '../shared/lifecycle/message.js';
import { rotatedName, secretSlots, slotsReadingSecret } from '../shared/lifecycle/rotate.js';
import { parsePlan } from '../shared/plan.js';
import { waitForEnabled } from './support/assertions.js';

/**
 * Credential rotation through the real worker against the stand-in: create the new auth with the
 * secret's NEW value, point the instance at it, remove the old one. Every Tray fault and a crash
 * after every ledger write end with exactly one auth per slot, and the instance never names an
 * auth that is gone.
 */

// The demo plan takes account_id from a Cognito attribute, which the worker does not have at
// rotation time (the ledger holds sub, username and email): this plan sources it from the email.
const plan = (() => {
  const p = demoPlan();
  const auth = p.auths[0]!;
  return parsePlan({ ...p, auths: [{ ...auth, data: { ...auth.data, account_id: { attribute: 'email' } } }] });
})();
const SLOT = plan.auths[0]!.externalId;
const users = demoUsers(120).slice(60);
let next = 0;
const nextUser = () => users[next++]!;
const keyOf = (user: DemoUser): UserKey => ({ userPoolId: DEMO_USER_POOL_ID, sub: user.sub });
const rotateMessage = (user: DemoUser, requestedAt?: string) =>
  buildLifecycleMessage({
    kind: 'rotate',
    userPoolId: DEMO_USER_POOL_ID,
    sub: user.sub,
    source: 'operator',
    ...(requestedAt ? { requestedAt } : {}),
  });

async function putSecret(h: Harness, apiKey: string): Promise<void> {
  await h.stack.secretsManager.send(
    new PutSecretValueCommand({ SecretId: DEMO_CREDENTIAL_SECRET, SecretString: JSON.stringify({ apiKey }) }),
  );
}

async function waitForRotated(h: Harness, user: DemoUser, timeoutMs = 60_000): Promise<LedgerEntry> {
  const stopAt = Date.now() + timeoutMs;
  let entry: LedgerEntry | undefined;
  while (Date.now() < stopAt) {
    entry = await h.ledger.get(keyOf(user));
    if (entry?.lastRotatedAt && Object.keys(entry.rotations).length === 0) return entry;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${user.username} not rotated: ${JSON.stringify(entry?.rotations)} ${JSON.stringify(entry?.lastError)}`);
}

/** The instance names only auths that exist (checked at any moment, crashes included). */
function expectInstancePointsAtExistingAuths(h: Harness, user: DemoUser): void {
  const snap = h.stack.tray!.snapshot();
  const trayUser = snap.users.find((u) => u.externalUserId === user.sub)!;
  const auths = new Set(snap.authentications.filter((a) => a.userId === trayUser.id).map((a) => a.id));
  const instances = snap.instances.filter((i) => i.owner === trayUser.id);
  expect(instances).toHaveLength(1);
  for (const v of instances[0]!.authValues) expect(auths.has(v.authId), `instance names auth ${v.authId}, which is gone`).toBe(true);
}

/** The end state: one auth per slot, holding `apiKey`, the instance enabled and pointing at it, the ledger saying the same. */
async function expectRotatedOnce(h: Harness, user: DemoUser, apiKey: string, oldAuthId: string): Promise<void> {
  const snap = h.stack.tray!.snapshot();
  const trayUser = snap.users.find((u) => u.externalUserId === user.sub)!;
  const auths = snap.authentications.filter((a) => a.userId === trayUser.id);
  expect(auths, 'exactly one auth per slot').toHaveLength(1);
  const auth = auths[0]!;
  expect(auth.id).not.toBe(oldAuthId);
  expect((auth.data as { api_key: string }).api_key).toBe(apiKey);
  expect(auth.name).toMatch(/ \(rotated [0-9T:-]+Z\)$/);
  const instance = snap.instances.find((i) => i.owner === trayUser.id)!;
  expect(instance.enabled).toBe(true);
  expect(instance.authValues).toEqual([{ externalId: SLOT, authId: auth.id }]);
  const entry = await h.ledger.get(keyOf(user));
  expect(entry).toMatchObject({ status: 'enabled', authIds: { [SLOT]: auth.id }, rotations: {} });
}

describe('rotation helpers', () => {
  it('names the new auth apart from the old one, once', () => {
    const at = new Date('2026-12-02T07:00:05.123Z');
    expect(rotatedName('Acme CRM (a@b.c)', at)).toBe('Acme CRM (a@b.c) (rotated 2026-12-02T07:00:05Z)');
    expect(rotatedName('Acme CRM (a@b.c) (rotated 2026-11-01T00:00:00Z)', at)).toBe('Acme CRM (a@b.c) (rotated 2026-12-02T07:00:05Z)');
  });
  it('finds the slots reading a secret, by name or ARN, shared or per user', () => {
    expect(secretSlots(plan)).toEqual([SLOT]);
    expect(slotsReadingSecret(plan, DEMO_CREDENTIAL_SECRET)).toEqual({ slots: [SLOT], perUser: false });
    expect(slotsReadingSecret(plan, `arn:aws:secretsmanager:us-east-1:123456789012:secret:${DEMO_CREDENTIAL_SECRET}-AbCdEf`).slots).toEqual(
      [SLOT],
    );
    expect(slotsReadingSecret(plan, 'other/secret').slots).toEqual([]);
    const perUser = parsePlan({
      ...plan,
      auths: [{ ...plan.auths[0]!, data: { api_key: { secret: { secretIdTemplate: 'tray-import/users/{{sub}}', field: 'apiKey' } } } }],
    });
    expect(slotsReadingSecret(perUser, `tray-import/users/${users[0]!.sub}`)).toEqual({ slots: [SLOT], perUser: true });
  });
});

describe('rotate: happy path and Tray faults', () => {
  let h: Harness;
  let stop = false;
  let polling: Promise<void>;
  const oldAuth = new Map<string, string>();
  let newKey = '';
  const FAULTED = 24;
  beforeAll(async () => {
    h = await startHarness({ plan });
    polling = h.poller.runUntil(() => stop, { timeoutMs: Number.POSITIVE_INFINITY, idleWaitMs: 50 });
    const batch = users.slice(0, FAULTED + 2);
    await Promise.all(batch.map((u) => h.send(h.messageFor(u))));
    for (const u of batch) oldAuth.set(u.sub, (await waitForEnabled(h, u, 90_000)).authIds[SLOT]!);
    // The worker's SecretReader has the old value cached (5 minutes): the rotation must read the new one.
    newKey = `rotated-api-key-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    await putSecret(h, newKey);
  }, 120_000);
  afterAll(async () => {
    stop = true;
    await polling?.catch(() => undefined);
    await h?.close();
  });

  it('creates the new auth with the new value, points the instance at it, removes the old one', async () => {
    const user = nextUser();
    const before = h.stack.tray!.countsByOperation();
    await h.send(JSON.stringify(rotateMessage(user)));
    const entry = await waitForRotated(h, user);
    await expectRotatedOnce(h, user, newKey, oldAuth.get(user.sub)!);
    expect(entry.lastRotatedAt).toBeDefined();
    const after = h.stack.tray!.countsByOperation();
    const delta = (op: string) => (after[op] ?? 0) - (before[op] ?? 0);
    expect(delta('createUserAuthentication')).toBe(1);
    expect(delta('removeAuthentication')).toBe(1);
  });

  it('a second delivery of the same message rotates nobody twice', async () => {
    const user = nextUser();
    const message = rotateMessage(user);
    await h.send(JSON.stringify(message));
    const first = await waitForRotated(h, user);
    await h.send(JSON.stringify(message));
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await h.ledger.get(keyOf(user)))!.authIds).toEqual(first.authIds);
  });

  const STEPS = ['createUserAuthentication', 'updateSolutionInstance', 'removeAuthentication'] as const;
  const CASES: { kind: FaultKind; times: number }[] = [
    { kind: 'http500', times: 1 },
    { kind: 'http500', times: 6 },
    { kind: 'hang', times: 1 },
    { kind: 'commitThenFail', times: 1 },
    { kind: 'commitThenFail', times: 6 },
    { kind: 'commitThenHang', times: 1 },
  ];
  for (const operation of STEPS) {
    for (const { kind, times } of CASES) {
      it.concurrent(`${operation} × ${kind} (${times}×)`, async () => {
        const user = nextUser();
        h.stack.tray!.injectFault({ operation, kind, times, ms: 5_000, externalUserId: user.sub });
        await h.send(JSON.stringify(rotateMessage(user)));
        await waitForRotated(h, user, 90_000);
        expectInstancePointsAtExistingAuths(h, user);
        await expectRotatedOnce(h, user, newKey, oldAuth.get(user.sub)!);
      });
    }
  }

  it('dead-lettered nobody', async () => {
    await h.drain(60_000);
    expect(await h.dlqMessages()).toEqual([]);
  });
});

/** A ledger that "crashes" right after its Nth write of a rotation: the write landed, the process died before the next step. */
class CrashingLedger extends Ledger {
  crashAfter: number | undefined;
  onCrash: (() => void) | undefined;
  private writes = 0;

  arm(n: number, onCrash: () => void): void {
    this.crashAfter = n;
    this.writes = 0;
    this.onCrash = onCrash;
  }

  override async writeLeased(...args: Parameters<Ledger['writeLeased']>): Promise<LedgerEntry> {
    const entry = await super.writeLeased(...args);
    if (this.crashAfter !== undefined && ++this.writes === this.crashAfter) {
      this.crashAfter = undefined;
      this.onCrash?.();
      throw new Error(`simulated crash after rotation write ${this.writes}`);
    }
    return entry;
  }
}

describe('rotate: a crash after each ledger write resumes without a duplicate or an orphan', () => {
  let h: Harness;
  let ledger: CrashingLedger;
  const WRITES = ['mark', 'newAuthId', 'repointed', 'mark removed'];
  beforeAll(async () => {
    ledger = new CrashingLedger({ tableName: LOCAL_TABLE_NAME });
    h = await startHarness({ plan, worker: { ledger } });
  });
  afterAll(async () => h?.close());

  WRITES.forEach((write, i) => {
    it(`after the ${write} write`, async () => {
      const user = users[50 + i]!;
      await h.send(h.messageFor(user));
      await h.drain();
      const oldAuthId = (await waitForEnabled(h, user)).authIds[SLOT]!;
      const apiKey = `crash-api-key-${i}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
      await putSecret(h, apiKey);
      let crashed = false;
      const atCrash: unknown[] = [];
      ledger.arm(i + 1, () => {
        crashed = true;
        try {
          expectInstancePointsAtExistingAuths(h, user);
        } catch (e) {
          atCrash.push(e);
        }
      });
      await h.send(JSON.stringify(rotateMessage(user)));
      await h.drain(60_000);
      expect(crashed).toBe(true);
      expect(atCrash, 'at the moment of the crash').toEqual([]);
      // The state Tray was left in by the crash already names only existing auths; the redelivery finished it.
      expectInstancePointsAtExistingAuths(h, user);
      await waitForRotated(h, user);
      await expectRotatedOnce(h, user, apiKey, oldAuthId);
      expect(await h.dlqMessages()).toEqual([]);
    });
  });
});

describe('rotate: per-company plans rotate the company entry once for all its members', () => {
  const companyPlan = parsePlan({ ...plan, trayUserPer: 'company', externalUserId: '{{custom:tenant_id}}' });
  let h: Harness;
  let stop = false;
  let polling: Promise<void>;
  beforeAll(async () => {
    h = await startHarness({ plan: companyPlan });
    polling = h.poller.runUntil(() => stop, { timeoutMs: Number.POSITIVE_INFINITY, idleWaitMs: 50 });
  });
  afterAll(async () => {
    stop = true;
    await polling?.catch(() => undefined);
    await h?.close();
  });

  it("a member's rotate message rotates the company's auth; a second member's is then skipped", async () => {
    const company = 'tenant-company-rotate';
    const members = users.slice(40, 42).map((u) => ({ ...u, attributes: { ...u.attributes, 'custom:tenant_id': company } }));
    for (const m of members) {
      await h.send(h.messageFor(m));
      await waitForEnabled(h, m, 60_000);
    }
    const companyKey = { userPoolId: `${DEMO_USER_POOL_ID}#company`, sub: company };
    const before = (await h.ledger.get(companyKey))!;
    const apiKey = `company-api-key-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
    await putSecret(h, apiKey);
    await h.send(JSON.stringify(rotateMessage(members[0]!)));
    await h.drain(60_000);
    const after = (await h.ledger.get(companyKey))!;
    expect(after.lastRotatedAt).toBeDefined();
    expect(after.authIds[SLOT]).not.toBe(before.authIds[SLOT]);
    const snap = h.stack.tray!.snapshot();
    const trayUser = snap.users.find((u) => u.externalUserId === company)!;
    const auths = snap.authentications.filter((a) => a.userId === trayUser.id);
    expect(auths.map((a) => a.id)).toEqual([after.authIds[SLOT]]);
    expect((auths[0]!.data as { api_key: string }).api_key).toBe(apiKey);

    // The other member's message, requested before that rotation began, finds it done.
    const creates = h.stack.tray!.countsByOperation().createUserAuthentication ?? 0;
    await h.send(JSON.stringify(rotateMessage(members[1]!, before.updatedAt)));
    await h.drain(30_000);
    expect(h.stack.tray!.countsByOperation().createUserAuthentication ?? 0).toBe(creates);
    expect(await h.dlqMessages()).toEqual([]);
  });
});
