import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUpgrade, type UpgradeSummary } from '../cli/commands/upgrade.js';
import type { CliDeps } from '../cli/context.js';
import { bufferIo } from '../cli/toolkit/output.js';
import { DEMO_SOLUTION, DEMO_USER_POOL_ID, type DemoUser, demoPlan, demoUsers } from '../local/demo.js';
import { EventSourcePoller } from '../local/event-source-poller.js';
import { lambdaContext } from '../local/lambda-context.js';
import { queueDepth } from '../local/local-stack.js';
import type { FaultKind, SeedSolution } from '../local/tray-standin/index.js';
import { createWorkerInstance } from '../local/worker.js';
import { type Harness, startHarness } from '../local/worker-harness.js';
import { Ledger, type LedgerEntry, type UserKey } from '../shared/ledger.js';
import { buildLifecycleMessage } from '../shared/lifecycle/message.js';
import type { ImportPlan } from '../shared/plan.js';
import { planVersion } from '../shared/plan-version.js';
import { Pacer } from '../shared/tray/pacer.js';

/**
 * Upgrades end to end: users imported by a worker on one plan, then upgraded by a worker on the
 * current plan (the deployment after a plan change), against the stand-in's solution versions.
 * Each plan gets a worker of its own on the same emulators and queue; the queue is drained by
 * one of them at a time.
 */
const VERSIONED: SeedSolution = { ...DEMO_SOLUTION, id: 'sol-versioned', title: 'Versioned CRM sync' };
const planA = demoPlan();
/** A plan change: another sync interval. */
const planB: ImportPlan = {
  ...planA,
  configValues: planA.configValues.map((c) => (c.externalId === 'external_sync_interval_minutes' ? { ...c, value: 30 } : c)),
};
const onVersioned = (plan: ImportPlan): ImportPlan => ({ ...plan, solutionId: VERSIONED.id });
/** planB on the versioned solution, filling the hidden slot its version 2 adds. */
const planC: ImportPlan = {
  ...onVersioned(planB),
  configValues: [...planB.configValues, { externalId: 'external_region', value: 'eu' }],
};

const users = demoUsers(80);
let h: Harness;
let dir: string;

interface PlanWorker {
  drain(timeoutMs?: number): Promise<void>;
}

function workerFor(plan: ImportPlan, ledger?: Ledger): PlanWorker {
  const env = {
    ...h.stack.env,
    IMPORT_PLAN: JSON.stringify(plan),
    TRAY_TIMEOUT_MS: '1000',
    RETRY_BASE_SECONDS: '1',
    RETRY_MAX_SECONDS: '1',
    MASTER_TOKEN_CACHE_MS: '0',
    TRAY_RATE_PER_SECOND: '50',
  };
  const worker = createWorkerInstance(env, {
    sqs: h.stack.sqs,
    dynamodb: h.stack.dynamodb,
    secretsManager: h.stack.secretsManager,
    ...(ledger ? { ledger } : {}),
  });
  // As the harness: a lease left by a crash expires with the invocation (20 s).
  const functionTimeoutMs = 20_000;
  const handler = (event: SQSEvent) =>
    worker.handler(event, lambdaContext('import-worker', functionTimeoutMs)) as Promise<SQSBatchResponse>;
  const poller = new EventSourcePoller({ sqs: h.stack.sqs, queueUrl: h.stack.queueUrl, handler, batchSize: 10, functionTimeoutMs });
  return {
    drain: (timeoutMs = 60_000) =>
      poller.runUntil(async () => (await queueDepth(h.stack.sqs, h.stack.queueUrl)) === 0, { timeoutMs, idleWaitMs: 50 }),
  };
}

async function importWith(plan: ImportPlan, batch: DemoUser[]): Promise<void> {
  for (const user of batch) await h.send(h.messageFor(user));
  await workerFor(plan).drain();
  for (const user of batch) expect((await entryOf(user))?.status, user.username).toBe('enabled');
}

async function sendUpgrade(user: DemoUser): Promise<void> {
  const message = buildLifecycleMessage({ kind: 'upgrade', userPoolId: DEMO_USER_POOL_ID, sub: user.sub, source: 'plan-change' });
  await h.stack.sqs.send(new SendMessageCommand({ QueueUrl: h.stack.queueUrl, MessageBody: JSON.stringify(message) }));
}

/** Dead letters of these users (others' stay in the DLQ: this file leaves one there on purpose). */
async function deadLettersOf(batch: DemoUser[]) {
  return (await h.dlqMessages()).filter((m) => batch.some((u) => u.sub === m.deadLetter.sub));
}

const entryOf = (user: DemoUser) => h.ledger.get({ userPoolId: DEMO_USER_POOL_ID, sub: user.sub });

function instanceOf(user: DemoUser) {
  const snap = h.stack.tray!.snapshot();
  const trayUsers = snap.users.filter((u) => u.externalUserId === user.sub);
  expect(trayUsers, `Tray users of ${user.username}`).toHaveLength(1);
  const instances = snap.instances.filter((i) => i.owner === trayUsers[0]!.id);
  expect(instances, `instances of ${user.username}`).toHaveLength(1);
  const auths = snap.authentications.filter((a) => a.userId === trayUsers[0]!.id);
  expect(auths, `auths of ${user.username}`).toHaveLength(1);
  return { instance: instances[0]!, auths };
}

const config = (instance: { configValues: { externalId: string; value: string }[] }) =>
  Object.fromEntries(instance.configValues.map((c) => [c.externalId, JSON.parse(c.value) as unknown]));

/** Upgraded, once, consistently: one instance on the newest version with the plan's values, the ledger on the plan. */
async function expectUpgraded(user: DemoUser, plan: ImportPlan, solutionVersion: number): Promise<LedgerEntry> {
  const { instance, auths } = instanceOf(user);
  expect(instance.enabled).toBe(true);
  expect(instance.solutionVersion).toBe(solutionVersion);
  expect(instance.authValues.map((a) => a.authId)).toEqual(auths.map((a) => a.id));
  const expected = Object.fromEntries(plan.configValues.map((c) => [c.externalId, c.attribute ? user.attributes[c.attribute] : c.value]));
  expect(config(instance)).toMatchObject(expected);
  const entry = (await entryOf(user))!;
  expect(entry).toMatchObject({ status: 'enabled', enabled: true, planVersion: planVersion(plan), instanceId: instance.id });
  expect(entry.upgradedAt).toBeDefined();
  expect(entry.leaseOwner).toBeUndefined();
  expect(entry.upgradeNeedsUser).toBeUndefined();
  return entry;
}

function cli(): { io: ReturnType<typeof bufferIo>; deps: CliDeps } {
  const io = bufferIo();
  return {
    io,
    deps: {
      io,
      env: { ...process.env, TRAY_GRAPHQL_URL: h.stack.tray!.url },
      sqs: h.stack.sqs,
      dynamodb: h.stack.dynamodb,
      secretsManager: h.stack.secretsManager,
      pacer: new Pacer({ ratePerSecond: 50, burst: 10 }),
    },
  };
}

function planFile(plan: ImportPlan): string {
  const path = join(dir, `plan-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(plan));
  return path;
}

const upgradeOptions = (plan: ImportPlan) => ({
  plan: planFile(plan),
  userPoolId: DEMO_USER_POOL_ID,
  table: h.config.LEDGER_TABLE,
  queueUrl: h.stack.queueUrl,
  masterTokenSecret: h.stack.masterTokenSecretName,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'upgrade-'));
  h = await startHarness({ plan: planA, stack: { tray: { solutions: [DEMO_SOLUTION, VERSIONED], rateLimit: false } } });
});
afterAll(async () => {
  await h?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('plan version', () => {
  it('is recorded when the import enables the instance, and ignores key order', async () => {
    await importWith(planA, [users[0]!]);
    expect((await entryOf(users[0]!))?.planVersion).toBe(planVersion(planA));
    const reverse = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverse)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverse(x)]),
            )
          : v;
    const reordered = reverse(planA) as ImportPlan;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(planA));
    expect(planVersion(reordered)).toBe(planVersion(planA));
    expect(planVersion(planB)).not.toBe(planVersion(planA));
    expect(planVersion(planA)).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('upgrade after a plan change (CLI, then the worker)', () => {
  const batch = users.slice(1, 4);
  beforeAll(async () => importWith(planA, batch));

  it('--dry-run --json lists users on the older plan and enqueues nothing', async () => {
    const { io, deps } = cli();
    const result = await runUpgrade({ ...upgradeOptions(planB), dryRun: true, json: true }, deps);
    expect(result.exitCode).toBe(1); // found work: usable as a scheduled check
    const summary = io.json<UpgradeSummary & { ok: boolean }>();
    expect(summary).toMatchObject({ ok: false, dryRun: true, planVersion: planVersion(planB), enqueued: 0, needsUser: [] });
    expect(summary.toUpgrade.map((c) => c.sub).sort()).toEqual([users[0]!, ...batch].map((u) => u.sub).sort());
    expect(summary.toUpgrade[0]).toMatchObject({ reasons: ['plan-change'], fromPlanVersion: planVersion(planA), systemInput: false });
    expect(await h.queueDepth()).toBe(0);
  });

  it('enqueues, the worker upgrades with the new values, and a rerun finds everyone up to date', async () => {
    const { io, deps } = cli();
    const result = await runUpgrade(upgradeOptions(planB), deps);
    expect(result.exitCode, io.stdout + io.stderr).toBe(0);
    expect(result.data.enqueued).toBe(4);
    expect(io.stdout).toContain('4 of 4 enqueued for upgrade');
    await workerFor(planB).drain();
    for (const user of [users[0]!, ...batch]) await expectUpgraded(user, planB, 1);
    expect(await deadLettersOf([users[0]!, ...batch])).toEqual([]);

    const again = cli();
    const rerun = await runUpgrade({ ...upgradeOptions(planB), json: true }, again.deps);
    expect(rerun.exitCode).toBe(0);
    expect(rerun.data).toMatchObject({ toUpgrade: [], enqueued: 0, upToDate: 4 });
  });

  it('an upgrade message sent twice upgrades once and then skips', async () => {
    const before = h.stack.tray!.calls.filter((c) => c.operation === 'upgradeSolutionInstance').length;
    await sendUpgrade(batch[0]!);
    await workerFor(planB).drain();
    expect(h.stack.tray!.calls.filter((c) => c.operation === 'upgradeSolutionInstance').length).toBe(before);
    await expectUpgraded(batch[0]!, planB, 1);
  });
});

describe('new solution versions', () => {
  const batch = users.slice(10, 13);
  beforeAll(async () => importWith(onVersioned(planA), batch));

  it("one that needs system input (a hidden slot) is upgraded with the plan's values", async () => {
    h.stack.tray!.publishSolutionVersion(VERSIONED.id, {
      addConfigSlots: [{ externalId: 'external_region', title: 'Region', required: true, hidden: true }],
    });
    const { deps } = cli();
    const dry = await runUpgrade({ ...upgradeOptions(planC), dryRun: true }, deps);
    expect(dry.data.toUpgrade).toHaveLength(3);
    expect(dry.data.toUpgrade[0]).toMatchObject({ reasons: ['plan-change', 'new-version'], systemInput: true });

    // Tray refuses an upgrade that leaves the new required slot empty: a plan without it dead-letters with Tray's reason.
    await sendUpgrade(batch[0]!);
    await workerFor(onVersioned(planB)).drain();
    const dead = await h.dlqMessages();
    expect(dead).toHaveLength(1);
    expect(dead[0]!.deadLetter).toMatchObject({ errorCode: 'TRAY_REJECTED', sub: batch[0]!.sub });
    expect(dead[0]!.deadLetter.reason).toContain('external_region');
    expect(instanceOf(batch[0]!).instance.solutionVersion).toBe(1);

    const run = await runUpgrade(upgradeOptions(planC), cli().deps);
    expect(run.data.enqueued).toBe(3);
    await workerFor(planC).drain();
    for (const user of batch) await expectUpgraded(user, planC, 2);
  });

  it("one that needs the user's input is reported with a wizard link, not upgraded", async () => {
    h.stack.tray!.publishSolutionVersion(VERSIONED.id, {
      addConfigSlots: [{ externalId: 'external_owner_choice', title: 'Which pipeline?', required: true }],
    });
    const { io, deps } = cli();
    const result = await runUpgrade({ ...upgradeOptions(planC), embeddedId: 'acme', json: true }, deps);
    expect(result.exitCode).toBe(0);
    expect(result.data).toMatchObject({ toUpgrade: [], enqueued: 0 });
    expect(result.data.needsUser.map((n) => n.sub).sort()).toEqual(batch.map((u) => u.sub).sort());
    const first = io.json<UpgradeSummary>().needsUser.find((n) => n.sub === batch[0]!.sub)!;
    const { instance } = instanceOf(batch[0]!);
    expect(first.url).toMatch(
      new RegExp(`^https://embedded\\.tray\\.io/external/solutions/acme/configure/${instance.id}\\?code=[0-9a-f]+$`),
    );
    expect(first.command).toContain(`wizard-url ${batch[0]!.sub}`);
    expect(io.stdout + io.stderr).not.toContain(h.secrets.masterToken);

    const text = cli();
    await runUpgrade({ ...upgradeOptions(planC), dryRun: true }, text.deps);
    expect(text.io.stdout).toContain('must answer the new solution version themselves');
    expect(text.io.stdout).toContain(`npm run cli -- wizard-url ${batch[1]!.sub}`);

    // A message sent anyway (an event, an old scan) is skipped by the worker and noted in the ledger.
    const calls = h.stack.tray!.calls.filter((c) => c.operation === 'upgradeSolutionInstance').length;
    await sendUpgrade(batch[1]!);
    await workerFor(planC).drain();
    expect(h.stack.tray!.calls.filter((c) => c.operation === 'upgradeSolutionInstance').length).toBe(calls);
    expect(instanceOf(batch[1]!).instance.solutionVersion).toBe(2);
    const entry = await entryOf(batch[1]!);
    expect(entry?.upgradeNeedsUser).toBeDefined();
    expect(entry?.leaseOwner).toBeUndefined();
  });
});

describe('fault matrix: Tray faults during the upgrade', () => {
  const CASES: { operation: string; kind: FaultKind; times: number }[] = [
    { operation: 'upgradeSolutionInstance', kind: 'http500', times: 1 },
    { operation: 'upgradeSolutionInstance', kind: 'http500', times: 6 },
    { operation: 'upgradeSolutionInstance', kind: 'hang', times: 1 },
    { operation: 'upgradeSolutionInstance', kind: 'commitThenFail', times: 1 },
    { operation: 'upgradeSolutionInstance', kind: 'commitThenFail', times: 6 },
    { operation: 'upgradeSolutionInstance', kind: 'commitThenHang', times: 1 },
    { operation: 'upgradeSolutionInstance', kind: 'rateLimit', times: 2 },
    { operation: 'authorize', kind: 'http500', times: 6 },
    { operation: 'solutionInstances', kind: 'hang', times: 1 },
  ];
  const batch = users.slice(20, 20 + CASES.length);
  beforeAll(async () => importWith(planA, batch));

  it('every user ends upgraded once, the ledger on the current plan, nobody dead-lettered', async () => {
    CASES.forEach(({ operation, kind, times }, i) =>
      h.stack.tray!.injectFault({ operation, kind, times, ms: 3_000, externalUserId: batch[i]!.sub }),
    );
    for (const user of batch) await sendUpgrade(user);
    await workerFor(planB).drain(120_000);
    h.stack.tray!.clearFaults();
    for (const user of batch) await expectUpgraded(user, planB, 1);
    expect(await deadLettersOf(batch)).toEqual([]);
  });
});

type CrashPoint = { method: 'acquireExisting' | 'writeLeased' | 'release'; when: 'before' | 'after' };

/** A ledger that "crashes" (throws) once, before or after one of the upgrade's writes. */
class CrashingLedger extends Ledger {
  crashAt: CrashPoint | undefined;

  private async around<T>(method: CrashPoint['method'], write: () => Promise<T>): Promise<T> {
    const crash = this.crashAt?.method === method ? this.crashAt : undefined;
    if (crash?.when === 'before') {
      this.crashAt = undefined;
      throw new Error(`simulated crash before ${method}`);
    }
    const out = await write();
    if (crash?.when === 'after') {
      this.crashAt = undefined;
      throw new Error(`simulated crash after ${method}`);
    }
    return out;
  }
  override acquireExisting(key: UserKey, owner: string, leaseMs: number) {
    return this.around('acquireExisting', () => super.acquireExisting(key, owner, leaseMs));
  }
  override writeLeased(...args: Parameters<Ledger['writeLeased']>) {
    return this.around('writeLeased', () => super.writeLeased(...args));
  }
  override release(key: UserKey, owner: string) {
    return this.around('release', () => super.release(key, owner));
  }
}

describe('a crash before or after each ledger write of the upgrade', () => {
  const POINTS: CrashPoint[] = (['acquireExisting', 'writeLeased', 'release'] as const).flatMap((method) =>
    (['before', 'after'] as const).map((when) => ({ method, when })),
  );
  const batch = users.slice(40, 40 + POINTS.length);
  beforeAll(async () => importWith(planA, batch));

  for (const [i, point] of POINTS.entries()) {
    it(`${point.when} ${point.method}: the redelivery ends upgraded once`, async () => {
      const user = batch[i]!;
      const ledger = new CrashingLedger({ tableName: h.config.LEDGER_TABLE, client: h.stack.dynamodb });
      ledger.crashAt = point;
      await sendUpgrade(user);
      await workerFor(planB, ledger).drain(60_000);
      // `release` runs only on a failure path: the crash point may never be reached, which is fine.
      if (point.method !== 'release') expect(ledger.crashAt).toBeUndefined();
      await expectUpgraded(user, planB, 1);
      expect(await deadLettersOf([user])).toEqual([]);
    });
  }
});
