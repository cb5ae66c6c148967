import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, PurgeQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runBackfill } from '../cli/commands/backfill.js';
import { type ImportUserResult, runImportUser } from '../cli/commands/import-user.js';
import { runReconcile } from '../cli/commands/reconcile.js';
import { runStatus, type StatusResult } from '../cli/commands/status.js';
import type { CliDeps } from '../cli/context.js';
import { type BufferIo, bufferIo } from '../cli/toolkit/output.js';
import { DEMO_PLAN_PATH, DEMO_SOLUTION, demoSecrets } from '../local/demo.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { Ledger } from '../shared/ledger.js';
import { parseQueueMessage, type QueueMessage } from '../shared/message.js';
import { type CognitoLocal, startCognitoLocal } from './support/cognito-local.js';

/**
 * backfill, reconcile, import-user and status against a real Cognito API (cognito-local) with
 * the real CognitoIdentityProviderClient: users made by SignUp + AdminConfirmSignUp (CONFIRMED)
 * and by AdminCreateUser (FORCE_CHANGE_PASSWORD), usernames that are not the sub.
 *
 * cognito-local answers ListUsers in one page (it ignores Limit and PaginationToken), so paging
 * and resuming stay covered by the mocked tests in cli-backfill.test.ts.
 */
const PLAN = DEMO_PLAN_PATH.pathname;
const secrets = demoSecrets();
let stack: LocalStack;
let cognito: CognitoLocal;
let dir: string;

beforeAll(async () => {
  [stack, cognito] = await Promise.all([
    startLocalStack({
      masterToken: secrets.masterToken,
      secrets: secrets.credentials,
      tray: { solutions: [DEMO_SOLUTION], rateLimit: false },
    }),
    startCognitoLocal(),
  ]);
  dir = mkdtempSync(join(tmpdir(), 'cli-cognito-'));
});
afterAll(async () => {
  await Promise.all([stack?.close(), cognito?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await stack.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.queueUrl }));
});

function deps(extra: Partial<CliDeps> = {}): { io: BufferIo; deps: CliDeps } {
  const io = bufferIo();
  return {
    io,
    deps: {
      io,
      sqs: stack.sqs,
      dynamodb: stack.dynamodb,
      secretsManager: stack.secretsManager,
      cognito: cognito.client,
      sleep: async () => undefined,
      ...extra,
    },
  };
}

async function queued(): Promise<QueueMessage[]> {
  const out: QueueMessage[] = [];
  for (;;) {
    const r = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
    if (!r.Messages?.length) return out;
    for (const m of r.Messages) {
      out.push(parseQueueMessage(m.Body ?? ''));
      await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: stack.queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}

const attrs = (n: number) => ({
  email: `user${n}@example.com`,
  name: `User ${n}`,
  'custom:tenant_id': `tenant-${n}`,
  phone_number: '+15550100',
});

describe('against cognito-local', () => {
  it("backfill enqueues the CONFIRMED users with the plan's attributes only, skips admin-created ones, and a rerun finds it done", async () => {
    const pool = await cognito.createPool('backfill');
    const subs = [await cognito.confirmedUser(pool, 'ann', attrs(1)), await cognito.confirmedUser(pool, 'bea', attrs(2))];
    await cognito.adminCreatedUser(pool, 'cid', attrs(3)); // FORCE_CHANGE_PASSWORD: not a user of the app yet
    const state = join(dir, 'backfill-state.json');

    const { io, deps: d } = deps();
    const result = await runBackfill(
      { userPoolId: pool, plan: PLAN, queueUrl: stack.queueUrl, table: stack.tableName, state, json: true },
      d,
    );
    expect(result.exitCode).toBe(0);
    expect(io.json()).toMatchObject({ ok: true, listed: 3, notConfirmed: 1, enqueued: 2, completed: true });
    const messages = await queued();
    expect(messages.map((m) => m.sub).sort()).toEqual([...subs].sort());
    const ann = messages.find((m) => m.username === 'ann');
    expect(ann).toMatchObject({
      userPoolId: pool,
      source: 'backfill',
      attributes: { email: 'user1@example.com', name: 'User 1', 'custom:tenant_id': 'tenant-1' },
    });
    expect(ann?.attributes).not.toHaveProperty('phone_number');

    const again = await runBackfill({ userPoolId: pool, plan: PLAN, queueUrl: stack.queueUrl, table: stack.tableName, state }, deps().deps);
    expect(again.data).toMatchObject({ completed: true, enqueued: 0 });
    expect(await queued()).toEqual([]);
  });

  it('reconcile enqueues confirmed users missing from the ledger, not imported or failed ones', async () => {
    const pool = await cognito.createPool('reconcile');
    const [missing, imported, failed] = [
      await cognito.confirmedUser(pool, 'dan', attrs(4)),
      await cognito.confirmedUser(pool, 'eve', attrs(5)),
      await cognito.confirmedUser(pool, 'fay', attrs(6)),
    ];
    const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb, now: () => Date.now() - 2 * 3_600_000 });
    await ledger.acquire({ userPoolId: pool, sub: imported }, 'seed', 60_000, { username: 'eve', source: 'signup' });
    await ledger.recordEnabled({ userPoolId: pool, sub: imported }, 'seed');
    await ledger.acquire({ userPoolId: pool, sub: failed }, 'seed', 60_000, { username: 'fay', source: 'signup' });
    await ledger.recordFailure(
      { userPoolId: pool, sub: failed },
      'seed',
      { code: 'MISSING_ATTRIBUTE', step: 'plan', message: 'lacks' },
      true,
    );

    // The users were created seconds ago; an hour later they are past --older-than.
    const later = () => Date.now() + 3_600_000;
    const { deps: d } = deps({ now: later });
    const result = await runReconcile({ userPoolId: pool, plan: PLAN, queueUrl: stack.queueUrl, table: stack.tableName }, d);
    expect(result.exitCode).toBe(0);
    expect(result.data.candidates.map((c) => [c.sub, c.reason])).toEqual([[missing, 'missing']]);
    expect(result.data).toMatchObject({ confirmed: 3, failedSkipped: 1, enqueued: 1 });
    expect((await queued()).map((m) => [m.sub, m.source])).toEqual([[missing, 'reconcile']]);

    // Right now they are all too recent to touch.
    const now = await runReconcile(
      { userPoolId: pool, plan: PLAN, queueUrl: stack.queueUrl, table: stack.tableName, dryRun: true },
      deps().deps,
    );
    expect(now.data).toMatchObject({ recent: 1, candidates: [] });
  });

  it('import-user finds a user by sub (username is not the sub), imports it into the Tray stand-in, and status agrees live', async () => {
    const pool = await cognito.createPool('import');
    const sub = await cognito.confirmedUser(pool, 'gus', attrs(7));
    const imported = deps();
    const result = await runImportUser(
      sub,
      { userPoolId: pool, plan: PLAN, table: stack.tableName, masterTokenSecret: stack.masterTokenSecretName, json: true },
      imported.deps,
    );
    expect(result.exitCode).toBe(0);
    expect(imported.io.json<ImportUserResult>()).toMatchObject({
      ok: true,
      outcome: 'enabled',
      username: 'gus',
      message: { sub, source: 'manual', attributes: { 'custom:tenant_id': 'tenant-7' } },
    });
    const instance = stack.tray!.snapshot().instances.at(-1);
    expect(instance).toMatchObject({ enabled: true, solutionId: DEMO_SOLUTION.id });

    const live = deps({ env: { ...process.env, TRAY_MASTER_TOKEN: secrets.masterToken } });
    const status = await runStatus(sub, { userPoolId: pool, table: stack.tableName, live: true, plan: PLAN, json: true }, live.deps);
    expect(status.exitCode).toBe(0);
    expect(live.io.json<StatusResult & { ok: boolean }>()).toMatchObject({
      ok: true,
      entry: { status: 'enabled', username: 'gus', instanceId: instance?.id },
      live: { problems: [] },
    });
    expect(live.io.stdout).not.toContain(secrets.masterToken);
  });

  it('import-user refuses an admin-created user who never signed in unless --force, and an unknown sub', async () => {
    const pool = await cognito.createPool('pending');
    const sub = await cognito.adminCreatedUser(pool, 'hal', attrs(8));
    await expect(
      runImportUser(sub, { userPoolId: pool, plan: PLAN, queueUrl: stack.queueUrl, enqueue: true }, deps().deps),
    ).rejects.toMatchObject({
      exitCode: 1,
      message: expect.stringContaining('FORCE_CHANGE_PASSWORD, not CONFIRMED; pass --force'),
    });
    const forced = await runImportUser(
      sub,
      { userPoolId: pool, plan: PLAN, queueUrl: stack.queueUrl, enqueue: true, force: true },
      deps().deps,
    );
    expect(forced.data.outcome).toBe('enqueued');
    expect((await queued()).map((m) => m.username)).toEqual(['hal']);

    await expect(
      runImportUser('00000000-0000-4000-8000-000000000000', { userPoolId: pool, plan: PLAN, dryRun: true }, deps().deps),
    ).rejects.toMatchObject({
      exitCode: 1,
      message: expect.stringContaining('no user with sub'),
    });
  });
});
