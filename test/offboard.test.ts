import { readFileSync } from 'node:fs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PLAN_PATH, DEMO_SOLUTION, type DemoUser } from '../local/demo.js';
import { LOCAL_TABLE_NAME } from '../local/local-stack.js';
import type { FaultKind } from '../local/tray-standin/index.js';
import { DEMO_USER_POOL_ID, demoUsers, type Harness, startHarness } from '../local/worker-harness.js';
import { Ledger, type LedgerEntry, type UserKey } from '../shared/ledger.js';
import { buildLifecycleMessage } from '../shared/lifecycle/message.js';
import { type ImportPlan, type OffboardPolicy, parsePlan } from '../shared/plan.js';
import { waitForEnabled } from './support/assertions.js';

/**
 * Offboarding under faults: every Tray step of the `remove` policy × {500, hang, commit-then-fail},
 * and a crash before or after every ledger write. After the retries the user ends `offboarded`,
 * each step recorded once, and the stand-in holds nothing of theirs (no orphan auth: the stand-in
 * keeps a removed user's auths, as Tray does not document that they go with the user).
 */
const SECOND_SLOT = 'external_second_crm_authentication';
const SOLUTION = { ...DEMO_SOLUTION, authSlots: [...DEMO_SOLUTION.authSlots, { externalId: SECOND_SLOT, title: 'Second CRM' }] };
const FIRST_SLOT = DEMO_SOLUTION.authSlots[0]!.externalId;
const REMOVE_STEPS = ['instance', `auth:${FIRST_SLOT}`, `auth:${SECOND_SLOT}`, 'user'];

function twoAuthPlan(policy: OffboardPolicy = 'remove'): ImportPlan {
  const raw = JSON.parse(readFileSync(DEMO_PLAN_PATH, 'utf8')) as { auths: Record<string, unknown>[] };
  const first = raw.auths[0]!;
  return parsePlan({
    ...raw,
    auths: [first, { ...first, externalId: SECOND_SLOT, name: 'Second CRM ({{email}})' }],
    offboarding: { policy },
  });
}

type CrashPoint = { label: string; when: 'before' | 'after' };

/** A ledger that "crashes" once at a chosen write of a chosen user: before it, or after it took effect. */
class CrashingLedger extends Ledger {
  readonly crashes = new Map<string, CrashPoint>();

  private async around<T>(key: UserKey, label: string, write: () => Promise<T>): Promise<T> {
    const point = this.crashes.get(key.sub);
    if (point?.label !== label) return write();
    this.crashes.delete(key.sub);
    if (point.when === 'before') throw new Error(`simulated crash before ${label}`);
    await write();
    throw new Error(`simulated crash after ${label}`);
  }

  override writeLeased(
    key: UserKey,
    owner: string,
    expression: string,
    names: Record<string, string>,
    values: Record<string, unknown>,
    extraCondition?: string,
  ): Promise<LedgerEntry> {
    const step = Array.isArray(values[':step']) ? `done:${String(values[':step'][0])}` : undefined;
    const label = step ?? (expression.includes('#ob = :ob') ? 'start' : expression.includes(':offboarded') ? 'finish' : 'other');
    return this.around(key, label, () => super.writeLeased(key, owner, expression, names, values, extraCondition));
  }
  override recordTrayUser(key: UserKey, owner: string, id: string): Promise<LedgerEntry> {
    return this.around(key, 'recordTrayUser', () => super.recordTrayUser(key, owner, id));
  }
  override recordAuth(key: UserKey, owner: string, slot: string, id: string): Promise<LedgerEntry> {
    return this.around(key, 'recordAuth', () => super.recordAuth(key, owner, slot, id));
  }
  override recordInstance(key: UserKey, owner: string, id: string, createdAt: number): Promise<LedgerEntry> {
    return this.around(key, 'recordInstance', () => super.recordInstance(key, owner, id, createdAt));
  }
}

const users = demoUsers(300);
let next = 0;
const nextUser = () => users[next++]!;
const keyOf = (user: DemoUser): UserKey => ({ userPoolId: DEMO_USER_POOL_ID, sub: user.sub });

function offboardMessage(user: DemoUser) {
  return buildLifecycleMessage({
    kind: 'offboard',
    userPoolId: DEMO_USER_POOL_ID,
    sub: user.sub,
    username: user.username,
    source: 'operator',
  });
}

async function waitForStatus(h: Harness, user: DemoUser, status: string, timeoutMs = 60_000): Promise<LedgerEntry> {
  const stopAt = Date.now() + timeoutMs;
  let entry: LedgerEntry | undefined;
  while (Date.now() < stopAt) {
    entry = await h.ledger.get(keyOf(user));
    if (entry?.status === status && entry.leaseOwner === undefined) return entry;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${user.username} not ${status}: ${entry ? `${entry.status} ${JSON.stringify(entry.lastError)}` : 'no ledger entry'}`);
}

async function imported(h: Harness, user: DemoUser): Promise<LedgerEntry> {
  await h.send(h.messageFor(user));
  return waitForEnabled(h, user, 60_000);
}

/** Nothing of the user's is left in Tray: no Tray user, no auth, no instance. */
function expectNothingLeft(h: Harness, user: DemoUser, trayUserId: string | undefined): void {
  const snap = h.stack.tray!.snapshot();
  expect(
    snap.users.filter((u) => u.externalUserId === user.sub),
    'Tray users',
  ).toEqual([]);
  expect(
    snap.authentications.filter((a) => a.userId === trayUserId),
    'auths (orphans)',
  ).toEqual([]);
  expect(
    snap.instances.filter((i) => i.owner === trayUserId),
    'instances',
  ).toEqual([]);
}

function expectOffboardedOnce(entry: LedgerEntry, steps = REMOVE_STEPS): void {
  expect(entry).toMatchObject({ status: 'offboarded', enabled: false, pending: {} });
  expect(entry.offboardedAt).toBeDefined();
  expect(entry.offboard?.done, 'each step recorded exactly once, in order').toEqual(steps);
}

describe('offboarding (remove) under faults', () => {
  let h: Harness;
  let ledger: CrashingLedger;
  let stop = false;
  let polling: Promise<void>;
  beforeAll(async () => {
    ledger = new CrashingLedger({ tableName: LOCAL_TABLE_NAME });
    h = await startHarness({ plan: twoAuthPlan(), stack: { tray: { solutions: [SOLUTION], rateLimit: false } }, worker: { ledger } });
    polling = h.poller.runUntil(() => stop, { timeoutMs: Number.POSITIVE_INFINITY, idleWaitMs: 50 });
  });
  afterAll(async () => {
    stop = true;
    await polling?.catch(() => undefined);
    await h?.close();
  });

  it.concurrent('removes the instance, then both auths, then the Tray user', async () => {
    const user = nextUser();
    const before = await imported(h, user);
    await h.send(JSON.stringify(offboardMessage(user)));
    const entry = await waitForStatus(h, user, 'offboarded');
    expectOffboardedOnce(entry);
    expectNothingLeft(h, user, before.trayUserId);
  });

  const TRAY_STEPS: { operation: string; onCall: number; label: string }[] = [
    { operation: 'removeSolutionInstance', onCall: 1, label: 'removeSolutionInstance' },
    { operation: 'removeAuthentication', onCall: 1, label: 'removeAuthentication (1st)' },
    { operation: 'removeAuthentication', onCall: 2, label: 'removeAuthentication (2nd)' },
    { operation: 'removeExternalUser', onCall: 1, label: 'removeExternalUser' },
    { operation: 'authorize', onCall: 1, label: 'authorize' },
  ];
  const CASES: { kind: FaultKind; times: number }[] = [
    { kind: 'http500', times: 1 },
    { kind: 'http500', times: 6 },
    { kind: 'hang', times: 1 },
    { kind: 'commitThenFail', times: 1 },
    { kind: 'commitThenFail', times: 6 },
  ];
  for (const step of TRAY_STEPS) {
    for (const { kind, times } of CASES) {
      if (step.operation === 'authorize' && kind.startsWith('commit')) continue;
      it.concurrent(`${step.label} × ${kind} (${times}×)`, async () => {
        const user = nextUser();
        const before = await imported(h, user);
        h.stack.tray!.injectFault({ operation: step.operation, kind, times, onCall: step.onCall, ms: 5_000, externalUserId: user.sub });
        await h.send(JSON.stringify(offboardMessage(user)));
        const entry = await waitForStatus(h, user, 'offboarded', 90_000);
        expectOffboardedOnce(entry);
        expectNothingLeft(h, user, before.trayUserId);
      });
    }
  }

  const WRITES = ['start', 'done:instance', `done:auth:${FIRST_SLOT}`, `done:auth:${SECOND_SLOT}`, 'done:user', 'finish'];
  for (const label of WRITES) {
    for (const when of ['before', 'after'] as const) {
      it.concurrent(`a crash ${when} the ledger write ${label}`, async () => {
        const user = nextUser();
        const before = await imported(h, user);
        ledger.crashes.set(user.sub, { label, when });
        await h.send(JSON.stringify(offboardMessage(user)));
        const entry = await waitForStatus(h, user, 'offboarded', 90_000);
        expect(ledger.crashes.has(user.sub), 'the crash happened').toBe(false);
        expectOffboardedOnce(entry);
        expectNothingLeft(h, user, before.trayUserId);
      });
    }
  }

  /**
   * A crashed import: Tray holds the user, its auths and its instance, but the ledger only has the
   * pending marks (what each create sent). The offboarding finds them by exactly that and removes them.
   */
  for (const crash of [undefined, 'recordTrayUser', 'recordAuth', 'recordInstance'] as const) {
    it.concurrent(`objects of a crashed import known only by their pending marks${crash ? ` (and a crash at ${crash})` : ''}`, async () => {
      const user = nextUser();
      const before = await imported(h, user);
      await forgetIds(h, before);
      if (crash) ledger.crashes.set(user.sub, { label: crash, when: 'before' });
      await h.send(JSON.stringify(offboardMessage(user)));
      const entry = await waitForStatus(h, user, 'offboarded', 90_000);
      expect(entry.offboard?.done).toEqual(REMOVE_STEPS);
      expectNothingLeft(h, user, before.trayUserId);
    });
  }

  it.concurrent('an import in flight (lease held): the offboarding waits for it, then removes everything', async () => {
    const user = nextUser();
    // The instance's create takes 3 s: the import holds the user's lease meanwhile.
    h.stack.tray!.injectFault({ operation: 'createSolutionInstance', kind: 'latency', ms: 3_000, externalUserId: user.sub });
    await h.send(h.messageFor(user));
    const stopAt = Date.now() + 30_000;
    while (Date.now() < stopAt) {
      const e = await h.ledger.get(keyOf(user));
      if (e?.leaseOwner !== undefined && e.trayUserId !== undefined) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await h.send(JSON.stringify(offboardMessage(user)));
    const entry = await waitForStatus(h, user, 'offboarded', 90_000);
    expectOffboardedOnce(entry);
    expectNothingLeft(h, user, entry.trayUserId);
  });

  it.concurrent('offboarded before the import message runs: the import is skipped', async () => {
    const user = nextUser();
    await h.send(JSON.stringify(offboardMessage(user)));
    const tombstone = await waitForStatus(h, user, 'offboarded');
    expect(tombstone.trayUserId).toBeUndefined();
    await h.send(h.messageFor(user));
    await new Promise((r) => setTimeout(r, 1_500));
    const after = await h.ledger.get(keyOf(user));
    expect(after?.status).toBe('offboarded');
    expect(h.stack.tray!.snapshot().users.filter((u) => u.externalUserId === user.sub)).toEqual([]);
  });

  it.concurrent('an offboarding delivered twice is done once (the second is skipped)', async () => {
    const user = nextUser();
    const before = await imported(h, user);
    await h.send(JSON.stringify(offboardMessage(user)));
    await h.send(JSON.stringify(offboardMessage(user)));
    const entry = await waitForStatus(h, user, 'offboarded');
    await new Promise((r) => setTimeout(r, 1_000));
    expectOffboardedOnce((await h.ledger.get(keyOf(user)))!);
    expect(entry.offboard?.done).toEqual(REMOVE_STEPS);
    expectNothingLeft(h, user, before.trayUserId);
  });

  it.concurrent('a Tray user removed outside this tool: the entry ends offboarded; the auths no token reaches are left (and named)', async () => {
    const user = nextUser();
    const before = await imported(h, user);
    const removed = await fetch(h.stack.tray!.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.secrets.masterToken}` },
      body: JSON.stringify({
        query: 'mutation ($input: RemoveExternalUserInput!) { removeExternalUser(input: $input) { clientMutationId } }',
        variables: { input: { userId: before.trayUserId } },
      }),
    });
    expect(removed.status).toBe(200);
    await h.send(JSON.stringify(offboardMessage(user)));
    const entry = await waitForStatus(h, user, 'offboarded');
    expectOffboardedOnce(entry);
    // The stand-in keeps a removed user's auths (Tray does not document that they go): the outcome names them.
    expect(h.stack.tray!.snapshot().authentications.filter((a) => a.userId === before.trayUserId)).toHaveLength(2);
  });

  it('dead-lettered nobody', async () => {
    await h.drain(120_000);
    expect(await h.dlqMessages()).toEqual([]);
  });
});

/** Rewrites an enabled user's entry as a crashed import leaves it: no ids, only the pending marks. */
async function forgetIds(h: Harness, entry: LedgerEntry): Promise<void> {
  const snap = h.stack.tray!.snapshot();
  const at = new Date().toISOString();
  const doc = DynamoDBDocumentClient.from(h.stack.dynamodb);
  const names = Object.fromEntries(Object.keys(entry.authIds).map((slot, i) => [`#s${i}`, slot]));
  const authName = (slot: string) => snap.authentications.find((a) => a.id === entry.authIds[slot])!.name;
  const marks = Object.fromEntries(Object.keys(entry.authIds).map((slot) => [`auth:${slot}`, { at, sent: authName(slot) }]));
  const instance = snap.instances.find((i) => i.id === entry.instanceId)!;
  await doc.send(
    new UpdateCommand({
      TableName: LOCAL_TABLE_NAME,
      Key: { userPoolId: entry.userPoolId, sub: entry.sub },
      UpdateExpression: `SET #status = :retrying, enabled = :false, pending = :pending REMOVE trayUserId, instanceId, ${Object.keys(names)
        .map((n) => `authIds.${n}`)
        .join(', ')}`,
      ExpressionAttributeNames: { '#status': 'status', ...names },
      ExpressionAttributeValues: {
        ':retrying': 'retrying',
        ':false': false,
        ':pending': { ...marks, user: { at, sent: entry.sub }, instance: { at, sent: instance.name } },
      },
    }),
  );
}

describe.each(['disable', 'keep'] as const)('offboarding policy %s', (policy) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ plan: twoAuthPlan(policy), stack: { tray: { solutions: [SOLUTION], rateLimit: false } } });
  });
  afterAll(async () => h?.close());

  it(`${policy}: ${policy === 'disable' ? 'the instance is disabled, nothing deleted' : 'nothing changes in Tray'}; the entry ends offboarded`, async () => {
    const user = users[290 + (policy === 'disable' ? 0 : 1)]!;
    await h.send(h.messageFor(user));
    await h.drain();
    const before = await waitForEnabled(h, user);
    h.stack.tray!.injectFault({ operation: 'updateSolutionInstance', kind: 'commitThenFail', externalUserId: user.sub });
    await h.send(JSON.stringify(offboardMessage(user)));
    await h.drain();
    const entry = (await h.ledger.get(keyOf(user)))!;
    expect(entry.status).toBe('offboarded');
    expect(entry.offboardedAt).toBeDefined();
    const snap = h.stack.tray!.snapshot();
    expect(snap.users.filter((u) => u.id === before.trayUserId)).toHaveLength(1);
    expect(snap.authentications.filter((a) => a.userId === before.trayUserId)).toHaveLength(2);
    const instance = snap.instances.find((i) => i.id === before.instanceId)!;
    if (policy === 'disable') {
      expect(instance.enabled).toBe(false);
      expect(entry).toMatchObject({ enabled: false, offboard: { policy: 'disable', done: ['disabled'] } });
    } else {
      expect(instance.enabled).toBe(true);
      expect(entry).toMatchObject({ enabled: true, offboard: { policy: 'keep', done: [] } });
      expect(h.stack.tray!.calls.filter((c) => c.operation.startsWith('remove'))).toEqual([]);
    }
    expect(await h.dlqMessages()).toEqual([]);
  });
});
