import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_TABLE_NAME } from '../local/local-stack.js';
import type { FaultKind } from '../local/tray-standin/index.js';
import { demoUsers, type Harness, startHarness } from '../local/worker-harness.js';
import { Ledger, type LedgerEntry, type UserKey } from '../shared/ledger.js';
import { expectImportedExactlyOnce, waitForEnabled } from './support/assertions.js';

/**
 * Every Tray step × every fault kind (a hang after the create took effect included): after redelivery the user is enabled and Tray holds
 * exactly one user, one auth and one instance. `times: 6` outlasts the retries inside one
 * invocation, so the message goes back to SQS and the next delivery resumes from the ledger.
 */
const STEPS = ['createExternalUser', 'authorize', 'createUserAuthentication', 'createSolutionInstance', 'updateSolutionInstance'] as const;
const CASES: { kind: FaultKind; times: number }[] = [
  { kind: 'http500', times: 1 },
  { kind: 'http500', times: 6 },
  { kind: 'hang', times: 1 },
  { kind: 'commitThenHang', times: 1 },
  { kind: 'rateLimit', times: 2 },
  { kind: 'commitThenFail', times: 1 },
  { kind: 'commitThenFail', times: 6 },
];

const users = demoUsers(200);
let next = 0;
const nextUser = () => users[next++]!;

describe('fault matrix: every Tray step × {500, hang, rate limit, commit-then-fail}', () => {
  // The cases run at once, each with faults scoped to its own user (by externalUserId), through
  // one worker polling as Lambda would: Tray's realistic latency and 2 s enable rule included.
  let h: Harness;
  let stop = false;
  let polling: Promise<void>;
  beforeAll(async () => {
    h = await startHarness();
    polling = h.poller.runUntil(() => stop, { timeoutMs: Number.POSITIVE_INFINITY, idleWaitMs: 50 });
  });
  afterAll(async () => {
    stop = true;
    await polling?.catch(() => undefined);
    await h?.close();
  });

  for (const operation of STEPS) {
    for (const { kind, times } of CASES) {
      it.concurrent(`${operation} × ${kind} (${times}×)`, async () => {
        const user = nextUser();
        h.stack.tray!.injectFault({ operation, kind, times, ms: 5_000, externalUserId: user.sub });
        await h.send(h.messageFor(user));
        const entry = await waitForEnabled(h, user, 90_000);
        await expectImportedExactlyOnce(h, user);
        const trayUser = h.stack.tray!.snapshot().users.find((u) => u.externalUserId === user.sub)!;
        if (kind === 'http500' && times > 1) expect(entry.attempts, 'went back to SQS and resumed').toBeGreaterThan(1);
        if ((kind === 'commitThenFail' || kind === 'commitThenHang') && operation.startsWith('create')) {
          // The create happened once; the retry found it instead of creating it again.
          const snap = h.stack.tray!.snapshot();
          const made = {
            createExternalUser: snap.users.filter((u) => u.externalUserId === user.sub).length,
            createUserAuthentication: snap.authentications.filter((a) => a.userId === trayUser.id).length,
            createSolutionInstance: snap.instances.filter((i) => i.owner === trayUser.id).length,
          };
          expect(made[operation as keyof typeof made]).toBe(1);
        }
      });
    }
  }

  it('dead-lettered nobody', async () => {
    await h.drain(120_000);
    expect(await h.dlqMessages()).toEqual([]);
  });
});

/** A ledger whose write after a given Tray create fails once: the process "crashed" in between. */
class CrashingLedger extends Ledger {
  crashOn: 'recordTrayUser' | 'recordAuth' | 'recordInstance' | 'recordEnabled' | undefined;

  private crash(method: string): void {
    if (this.crashOn === method) {
      this.crashOn = undefined;
      throw new Error(`simulated crash before ${method}`);
    }
  }
  override recordTrayUser(key: UserKey, owner: string, id: string): Promise<LedgerEntry> {
    this.crash('recordTrayUser');
    return super.recordTrayUser(key, owner, id);
  }
  override recordAuth(key: UserKey, owner: string, slot: string, id: string): Promise<LedgerEntry> {
    this.crash('recordAuth');
    return super.recordAuth(key, owner, slot, id);
  }
  override recordInstance(key: UserKey, owner: string, id: string, createdAt: number): Promise<LedgerEntry> {
    this.crash('recordInstance');
    return super.recordInstance(key, owner, id, createdAt);
  }
  override recordEnabled(key: UserKey, owner: string): Promise<LedgerEntry> {
    this.crash('recordEnabled');
    return super.recordEnabled(key, owner);
  }
}

describe('a crash between a Tray create and its ledger write', () => {
  let h: Harness;
  let ledger: CrashingLedger;
  beforeAll(async () => {
    ledger = new CrashingLedger({ tableName: LOCAL_TABLE_NAME });
    h = await startHarness({ worker: { ledger } });
  });
  afterAll(async () => h?.close());

  for (const method of ['recordTrayUser', 'recordAuth', 'recordInstance', 'recordEnabled'] as const) {
    it(`after ${method.replace('record', '')}: the retry adopts what Tray already has`, async () => {
      const user = users[150 + ['recordTrayUser', 'recordAuth', 'recordInstance', 'recordEnabled'].indexOf(method)]!;
      ledger.crashOn = method;
      const lookupsBefore = h.stack.tray!.calls.filter((c) => ['users', 'viewer'].includes(c.operation)).length;
      await h.send(h.messageFor(user));
      await h.drain();
      expect(ledger.crashOn).toBeUndefined();
      await expectImportedExactlyOnce(h, user);
      const lookups = h.stack.tray!.calls.filter((c) => ['users', 'viewer'].includes(c.operation)).length - lookupsBefore;
      expect(lookups).toBe(method === 'recordEnabled' ? 0 : 1);
    });
  }
});
