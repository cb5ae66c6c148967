import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  CognitoIdentityProviderClient,
  DescribeUserPoolCommand,
  ListUsersCommand,
  type ListUsersCommandInput,
  type UserStatusType,
  type UserType,
} from '@aws-sdk/client-cognito-identity-provider';
import {
  DeleteMessageCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  type SendMessageBatchCommandOutput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readState } from '../cli/backfill-state.js';
import { type BackfillSummary, DEPTH_CHECK_MS, runBackfill } from '../cli/commands/backfill.js';
import { type ReconcileSummary, runReconcile } from '../cli/commands/reconcile.js';
import { main } from '../cli/main.js';
import { bufferIo } from '../cli/toolkit/output.js';
import { DEMO_PLAN_PATH } from '../local/demo.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { Ledger, type LedgerStatus } from '../shared/ledger.js';
import { parseQueueMessage, type QueueMessage } from '../shared/message.js';

const PLAN = DEMO_PLAN_PATH.pathname;
const cognitoMock = mockClient(CognitoIdentityProviderClient);

let stack: LocalStack;
let dir: string;
/** A pool per test: the ledger table outlives each test. */
let POOL = '';
let poolCount = 0;

beforeAll(async () => {
  stack = await startLocalStack({ masterToken: 'master-token-backfill-tests', tray: false });
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  POOL = `us-east-1_Pool${++poolCount}`;
  cognitoMock.reset();
  dir = mkdtempSync(join(tmpdir(), 'backfill-'));
  await stack.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.queueUrl }));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sub = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function cognitoUser(n: number, status: UserStatusType = 'CONFIRMED', modified = new Date('2020-01-01T00:00:00Z')): UserType {
  return {
    Username: `user${n}`,
    UserStatus: status,
    Enabled: true,
    UserCreateDate: modified,
    UserLastModifiedDate: modified,
    Attributes: [
      { Name: 'sub', Value: sub(n) },
      { Name: 'email', Value: `user${n}@example.com` },
      { Name: 'name', Value: `User ${n}` },
      { Name: 'custom:tenant_id', Value: `tenant-${n}` },
      { Name: 'phone_number', Value: '+15550100' },
    ],
  };
}

/** ListUsers served in pages of `size` with tokens p1, p2, …; `onPage` sees each page number served. */
function servePool(users: UserType[], size: number, onPage?: (page: number, input: ListUsersCommandInput) => void) {
  cognitoMock.on(ListUsersCommand).callsFake((input: ListUsersCommandInput) => {
    const page = input.PaginationToken ? Number(input.PaginationToken.slice(1)) : 0;
    onPage?.(page, input);
    const slice = users.slice(page * size, (page + 1) * size);
    const more = (page + 1) * size < users.length;
    return { Users: slice, PaginationToken: more ? `p${page + 1}` : undefined };
  });
}

async function queued(): Promise<QueueMessage[]> {
  const out: QueueMessage[] = [];
  for (;;) {
    const r = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
    const got = r.Messages ?? [];
    if (got.length === 0) return out;
    for (const m of got) {
      out.push(parseQueueMessage(m.Body ?? ''));
      await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: stack.queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}

async function seedLedger(n: number, status: LedgerStatus, minutesAgo = 0) {
  const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb, now: () => Date.now() - minutesAgo * 60_000 });
  const key = { userPoolId: POOL, sub: sub(n) };
  await ledger.acquire(key, 'seed', 60_000, { username: `user${n}`, source: 'signup' });
  if (status === 'enabled') await ledger.recordEnabled(key, 'seed');
  if (status === 'failed' || status === 'retrying') {
    await ledger.recordFailure(
      key,
      'seed',
      { code: 'TRAY_REJECTED', step: 'createSolutionInstance', message: 'slot id wrong' },
      status === 'failed',
    );
  }
}

const noSleep = async () => undefined;

function backfillDeps(extra: { sqs?: SQSClient; signal?: AbortSignal } = {}) {
  const io = bufferIo();
  return {
    io,
    deps: {
      io,
      sqs: extra.sqs ?? stack.sqs,
      dynamodb: stack.dynamodb,
      cognito: new CognitoIdentityProviderClient({}),
      sleep: noSleep,
      signal: extra.signal,
    },
  };
}

const baseOptions = () => ({
  userPoolId: POOL,
  queueUrl: stack.queueUrl,
  table: stack.tableName,
  plan: PLAN,
  state: join(dir, 'state.json'),
});

/** An SQS client whose SendMessageBatch calls fail from call `failFrom` on (1-based) while `failing()`. */
function flakySqs(failFrom: number, failing: () => boolean): { sqs: SQSClient; calls: () => number } {
  const sqs = new SQSClient({});
  let calls = 0;
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'SendMessageBatchCommand') {
        calls++;
        if (calls >= failFrom && failing()) throw Object.assign(new Error('connection reset'), { name: 'NetworkingError' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'flaky' },
  );
  return { sqs, calls: () => calls };
}

describe('backfill', () => {
  it("enqueues every confirmed user without an enabled ledger entry, ten per batch, with the plan's attributes only", async () => {
    // 25 users over 3 pages: two not confirmed, one imported already.
    const users = Array.from({ length: 25 }, (_, i) =>
      cognitoUser(i + 1, i === 3 ? 'UNCONFIRMED' : i === 7 ? 'FORCE_CHANGE_PASSWORD' : 'CONFIRMED'),
    );
    servePool(users, 10);
    await seedLedger(5, 'enabled');
    await seedLedger(6, 'failed');

    const { io, deps } = backfillDeps();
    const batchSizes: number[] = [];
    const sqs = new SQSClient({});
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'SendMessageBatchCommand') batchSizes.push((args.input as { Entries: unknown[] }).Entries.length);
        return next(args);
      },
      { step: 'initialize', name: 'countBatches' },
    );
    const result = await runBackfill({ ...baseOptions(), json: true }, { ...deps, sqs });
    sqs.destroy();

    expect(result.exitCode).toBe(0);
    const summary = io.json<BackfillSummary>();
    expect(summary).toMatchObject({ listed: 25, notConfirmed: 2, alreadyEnabled: 1, enqueued: 22, completed: true, failed: [] });
    const messages = await queued();
    expect(messages).toHaveLength(22);
    expect(new Set(messages.map((m) => m.sub)).size).toBe(22);
    expect(messages.map((m) => m.sub)).not.toContain(sub(5));
    expect(messages.map((m) => m.sub)).toContain(sub(6)); // failed, not enabled: enqueued again
    expect(messages.every((m) => m.source === 'backfill' && m.userPoolId === POOL)).toBe(true);
    const first = messages.find((m) => m.sub === sub(1));
    expect(first?.attributes).toEqual({ email: 'user1@example.com', name: 'User 1', 'custom:tenant_id': 'tenant-1' }); // no phone_number
    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(10);
    expect(readState(join(dir, 'state.json'))).toMatchObject({ completed: true, enqueuedTotal: 22 });
  });

  it('advances the progress bar per user sent, not per user listed', async () => {
    servePool(
      Array.from({ length: 25 }, (_, i) => cognitoUser(i + 1)),
      30,
    );
    cognitoMock.on(DescribeUserPoolCommand).resolves({ UserPool: { Id: POOL, EstimatedNumberOfUsers: 25 } });
    const stream = Object.assign(new PassThrough(), {
      isTTY: true,
      columns: 120,
      cursorTo: () => true,
      clearLine: () => true,
      moveCursor: () => true,
    });
    let drawn = '';
    stream.on('data', (c: Buffer) => (drawn += c.toString()));
    const flaky = flakySqs(2, () => true); // the first batch of ten goes out, then the queue is unreachable
    const { deps } = backfillDeps({ sqs: flaky.sqs });
    const result = await runBackfill(baseOptions(), { ...deps, io: { ...deps.io, stderrIsTTY: true, progressStream: stream } });
    flaky.sqs.destroy();
    expect(result.data.enqueued).toBe(10);
    const values = [...drawn.matchAll(/(\d+)\/25/g)].map((m) => Number(m[1]));
    expect(values.at(-1)).toBe(10); // the ten sent; the batch that could not be sent and the last five are not done
    expect(values).not.toContain(25);
  });

  it('passes --filter to ListUsers and --dry-run only counts', async () => {
    const seen: (string | undefined)[] = [];
    servePool([cognitoUser(1), cognitoUser(2)], 10, (_p, input) => seen.push(input.Filter));
    await seedLedger(2, 'enabled');
    const { io, deps } = backfillDeps();
    const result = await runBackfill({ ...baseOptions(), filter: 'email ^= "user"', dryRun: true }, deps);
    expect(result.exitCode).toBe(0);
    expect(result.data).toMatchObject({ wouldEnqueue: 1, alreadyEnabled: 1, enqueued: 0 });
    expect(seen).toEqual(['email ^= "user"']);
    expect(await queued()).toEqual([]);
    expect(existsSync(join(dir, 'state.json'))).toBe(false);
    expect(io.stdout).toContain('would enqueue');
  });

  it('resumes after the queue fails mid-way without enqueueing anyone twice', async () => {
    const users = Array.from({ length: 47 }, (_, i) => cognitoUser(i + 1));
    servePool(users, 20);
    let failing = true;
    const flaky = flakySqs(4, () => failing); // batches 1-3 go through, then the queue is unreachable

    const first = backfillDeps({ sqs: flaky.sqs });
    const interrupted = await runBackfill({ ...baseOptions(), json: true }, first.deps);
    expect(interrupted.exitCode).toBe(1);
    expect(interrupted.data.interrupted).toMatch(/SendMessageBatch/);
    expect(interrupted.data.enqueued).toBe(30);
    const saved = readState(join(dir, 'state.json'));
    // Page 1 (20 users) done: the token moved on; 10 users of page 2 recorded as enqueued.
    expect(saved).toMatchObject({ paginationToken: 'p1', pagesDone: 1, enqueuedTotal: 30, completed: false });
    expect(saved?.enqueued).toHaveLength(10);

    failing = false;
    const second = backfillDeps({ sqs: flaky.sqs });
    const resumed = await runBackfill({ ...baseOptions(), json: true }, second.deps);
    expect(resumed.exitCode).toBe(0);
    expect(resumed.data).toMatchObject({ resumed: true, alreadyEnqueued: 10, enqueued: 17, completed: true, enqueuedTotal: 47 });
    // ListUsers resumed at page 2 (token p1), not at the start.
    expect(cognitoMock.commandCalls(ListUsersCommand).map((c) => c.args[0].input.PaginationToken)).toEqual([undefined, 'p1', 'p1', 'p2']);

    const messages = await queued();
    expect(messages).toHaveLength(47);
    expect(new Set(messages.map((m) => m.sub)).size).toBe(47);
    flaky.sqs.destroy();
  });

  it('resumes after an abort between pages', async () => {
    const users = Array.from({ length: 30 }, (_, i) => cognitoUser(i + 1));
    const controller = new AbortController();
    servePool(users, 10, (page) => {
      if (page === 1) controller.abort(); // Ctrl-C while page 2 is being listed
    });
    const first = backfillDeps({ signal: controller.signal });
    const aborted = await runBackfill(baseOptions(), first.deps);
    expect(aborted.exitCode).toBe(1);
    expect(aborted.data).toMatchObject({ interrupted: 'aborted', enqueued: 10, completed: false });
    expect(first.io.stdout).toContain('rerun the same command to resume');

    const second = backfillDeps();
    const resumed = await runBackfill(baseOptions(), second.deps);
    expect(resumed.data).toMatchObject({ enqueued: 20, completed: true });
    const messages = await queued();
    expect(messages).toHaveLength(30);
    expect(new Set(messages.map((m) => m.sub)).size).toBe(30);

    // A third run finds the backfill complete and sends nothing.
    const third = backfillDeps();
    const done = await runBackfill(baseOptions(), third.deps);
    expect(done.exitCode).toBe(0);
    expect(third.io.stderr).toContain('--restart');
    expect(await queued()).toEqual([]);
  });

  it('retries failed batch entries, reports those that keep failing, and a rerun sends only them', async () => {
    servePool(
      Array.from({ length: 12 }, (_, i) => cognitoUser(i + 1)),
      5,
    );
    const stubborn = sub(7);
    let failEntry = true;
    const sqs = new SQSClient({});
    const attemptsFor7: number[] = [];
    sqs.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'SendMessageBatchCommand') return next(args);
        const input = args.input as { QueueUrl: string; Entries: { Id: string; MessageBody: string }[] };
        const bad = failEntry ? input.Entries.filter((e) => e.MessageBody.includes(stubborn)) : [];
        if (bad.length) attemptsFor7.push(1);
        const rest = input.Entries.filter((e) => !bad.includes(e));
        // Only failing entries: answer as SQS would, without a (rejected) empty batch.
        const result =
          rest.length > 0
            ? await next({ ...args, input: { ...input, Entries: rest } })
            : { output: { Successful: [], Failed: [], $metadata: {} }, response: {} };
        const output = result.output as SendMessageBatchCommandOutput;
        output.Failed = [
          ...(output.Failed ?? []),
          ...bad.map((e) => ({ Id: e.Id, SenderFault: false, Code: 'InternalError', Message: 'try again' })),
        ];
        return result;
      },
      { step: 'initialize', name: 'failOneEntry' },
    );

    const first = backfillDeps({ sqs });
    const partial = await runBackfill({ ...baseOptions(), json: true }, first.deps);
    expect(partial.exitCode).toBe(1);
    expect(partial.data.failed).toEqual([{ sub: stubborn, username: 'user7', reason: 'InternalError: try again' }]);
    expect(attemptsFor7.length).toBeGreaterThan(1); // retried before being reported
    expect(partial.data.enqueued).toBe(11);
    expect(readState(join(dir, 'state.json'))).toMatchObject({ paginationToken: 'p1', completed: false }); // frozen at the page with the failure

    failEntry = false;
    const second = backfillDeps({ sqs });
    const rerun = await runBackfill(baseOptions(), second.deps);
    expect(rerun.exitCode).toBe(0);
    expect(rerun.data).toMatchObject({ enqueued: 1, completed: true });
    const messages = await queued();
    expect(messages).toHaveLength(12);
    expect(new Set(messages.map((m) => m.sub)).size).toBe(12);
    sqs.destroy();
  });

  it('ends with the summary when Cognito fails mid-way, and resumes; a stale token points to --restart', async () => {
    const users = Array.from({ length: 25 }, (_, i) => cognitoUser(i + 1));
    let throttle = true;
    servePool(users, 10, (page) => {
      if (page === 1 && throttle) throw Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException' });
    });
    const first = backfillDeps();
    const interrupted = await runBackfill(baseOptions(), first.deps);
    expect(interrupted.exitCode).toBe(1);
    expect(interrupted.data).toMatchObject({ interrupted: 'TooManyRequestsException: Rate exceeded', enqueued: 10 });
    expect(first.io.stdout).toContain('rerun the same command to resume');

    throttle = false;
    const resumed = await runBackfill(baseOptions(), backfillDeps().deps);
    expect(resumed.data).toMatchObject({ enqueued: 15, completed: true });
    expect(new Set((await queued()).map((m) => m.sub)).size).toBe(25);

    cognitoMock.on(ListUsersCommand).rejects(Object.assign(new Error('Invalid pagination token'), { name: 'InvalidParameterException' }));
    const stale = join(dir, 'stale.json');
    writeFileSync(stale, JSON.stringify({ ...readState(join(dir, 'state.json')), completed: false, paginationToken: 'old' }));
    await expect(runBackfill({ ...baseOptions(), state: stale }, backfillDeps().deps)).rejects.toMatchObject({
      message: expect.stringContaining('--restart'),
    });
  });

  it('refuses a state file of another pool or filter, and needs --plan or --attributes', async () => {
    servePool([cognitoUser(1)], 10);
    await runBackfill(baseOptions(), backfillDeps().deps);
    await expect(runBackfill({ ...baseOptions(), userPoolId: 'us-east-1_Other' }, backfillDeps().deps)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--state'),
    });
    await expect(runBackfill({ ...baseOptions(), filter: 'email ^= "x"' }, backfillDeps().deps)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--filter'),
    });
    await expect(runBackfill({ ...baseOptions(), plan: undefined }, backfillDeps().deps)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--attributes'),
    });
    const withAttributes = await runBackfill(
      { ...baseOptions(), plan: undefined, attributes: 'email', restart: true },
      backfillDeps().deps,
    );
    expect(withAttributes.data.enqueued).toBe(1);
    const messages = await queued();
    expect(messages.at(-1)?.attributes).toEqual({ email: 'user1@example.com' });
    expect(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'))).toMatchObject({ userPoolId: POOL, completed: true });
  });
});

/**
 * A fake clock: sleeping advances it. `sends` records each SendMessageBatch (clock, entries), so
 * pacing is checked by counting messages per window of the fake clock, never by wall time.
 */
function pacedDeps(onSleep?: (ms: number) => Promise<void> | void) {
  let t = 1_000_000;
  const sends: { at: number; entries: number }[] = [];
  const sqs = new SQSClient({});
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'SendMessageBatchCommand')
        sends.push({ at: t, entries: (args.input as { Entries: unknown[] }).Entries.length });
      return next(args);
    },
    { step: 'initialize', name: 'recordSends' },
  );
  const { io, deps } = backfillDeps({ sqs });
  const sleep = async (ms: number) => {
    t += ms;
    await onSleep?.(ms);
  };
  return { io, sends, sqs, elapsed: () => (t - 1_000_000) / 1000, deps: { ...deps, now: () => t, sleep } };
}

/** The most messages sent within any window of `seconds` (fake clock) starting at a send. */
function mostInWindow(sends: { at: number; entries: number }[], seconds: number): number {
  return Math.max(
    ...sends.map((s) => sends.filter((o) => o.at >= s.at && o.at < s.at + seconds * 1000).reduce((n, o) => n + o.entries, 0)),
  );
}

describe('backfill pacing: never faster than the workers drain', () => {
  it('enqueues at (budget − 0.5) / (4 + auths) users/s: 4.9/s by default with the demo plan (1 auth), 2/s with --tray-budget 10.5', async () => {
    servePool(
      Array.from({ length: 200 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    const run = pacedDeps();
    const result = await runBackfill({ ...baseOptions(), json: true }, run.deps);
    expect(result.exitCode).toBe(0);
    expect(result.data.enqueued).toBe(200);
    expect(result.data.pace).toMatchObject({
      trayBudgetPerSecond: 25,
      budgetFrom: 'default',
      callsPerUser: 5,
      callsFrom: 'plan',
      usersPerSecond: 4.9,
      retentionSeconds: 4 * 24 * 3600,
      retentionFrom: 'queue',
    });
    // At most one batch of ten ahead of the pace in any minute, and the whole run takes as long as draining it.
    expect(mostInWindow(run.sends, 60)).toBeLessThanOrEqual(Math.ceil(4.9 * 60) + 10);
    expect(run.elapsed()).toBeGreaterThanOrEqual((200 - 10) / 4.9);
    run.sqs.destroy();
    await queued();

    POOL = `${POOL}b`;
    servePool(
      Array.from({ length: 100 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    const slow = pacedDeps();
    const slower = await runBackfill({ ...baseOptions(), state: join(dir, 'b.json'), trayBudget: 10.5 }, slow.deps);
    expect(slower.data.pace).toMatchObject({ budgetFrom: 'flag', usersPerSecond: 2 });
    expect(mostInWindow(slow.sends, 30)).toBeLessThanOrEqual(2 * 30 + 10);
    expect(slow.elapsed()).toBeGreaterThanOrEqual((100 - 10) / 2);
    expect(slow.io.stderr).toMatch(
      /enqueueing at 2 users\/s, what the workers drain at budget 10\.5\/s \(flag\), 5 Tray calls per user \(plan\)/,
    );
    slow.sqs.destroy();
  });

  it('--rate can only go slower than the drain rate', async () => {
    servePool(
      Array.from({ length: 40 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    const fast = pacedDeps();
    const result = await runBackfill({ ...baseOptions(), rate: 100 }, fast.deps);
    expect(result.data.pace.usersPerSecond).toBe(4.9);
    expect(fast.io.stderr).toContain('--rate 100 is faster than the fleet drains (4.9 users/s)');
    fast.sqs.destroy();
    await queued();

    POOL = `${POOL}b`;
    servePool(
      Array.from({ length: 40 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    const slow = pacedDeps();
    expect((await runBackfill({ ...baseOptions(), state: join(dir, 'b.json'), rate: 1 }, slow.deps)).data.pace.usersPerSecond).toBe(1);
    expect(slow.elapsed()).toBeGreaterThanOrEqual(30);
    slow.sqs.destroy();
  });

  it('waits while the queue is deeper than --max-queue-depth, then goes on', async () => {
    servePool(
      Array.from({ length: 60 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    let drains = 0;
    // The "workers" drain the queue only while the backfill waits for them.
    const run = pacedDeps(async (ms) => {
      if (ms === DEPTH_CHECK_MS) {
        drains++;
        await stack.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.queueUrl }));
      }
    });
    // Budget 3/s → 0.5 users/s: a batch of ten every 20 s, the depth read every 30 s.
    const result = await runBackfill({ ...baseOptions(), trayBudget: 3, maxQueueDepth: 15 }, run.deps);
    expect(result.exitCode).toBe(0);
    expect(result.data.enqueued).toBe(60);
    expect(result.data.pace.depthWaits).toBeGreaterThan(0);
    expect(drains).toBe(result.data.pace.depthWaits);
    expect(run.io.stderr).toMatch(/the import queue holds \d+ messages \(> --max-queue-depth 15\): waiting/);
    run.sqs.destroy();
  });

  it("refuses (exit 1, nothing sent) a backfill the workers cannot drain within 80 % of the queue's retention, with the numbers and the way out", async () => {
    servePool(
      Array.from({ length: 30 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    // 2,000,000 users at 4.9 users/s is 4.7 days; 80 % of 4 days at 4.9/s is 1,354,752 users.
    cognitoMock.on(DescribeUserPoolCommand).resolves({ UserPool: { Id: POOL, EstimatedNumberOfUsers: 2_000_000 } });
    const run = pacedDeps();
    const args = [
      'backfill',
      '--user-pool-id',
      POOL,
      '--queue-url',
      stack.queueUrl,
      '--table',
      stack.tableName,
      '--plan',
      PLAN,
      '--state',
      join(dir, 'state.json'),
    ];
    expect(await main(args, run.deps)).toBe(1);
    expect(run.io.stderr).toMatch(/refusing to backfill about 2000000 users: at 4\.9 users\/s/);
    expect(run.io.stderr).toMatch(/need 4 d 17 h, more than 80 % of the queue's 4 d retention \(1354752 users\)/);
    expect(run.io.stderr).toMatch(/--max-users 1354752.*--tray-budget/);
    expect(run.sends).toEqual([]);
    expect(existsSync(join(dir, 'state.json'))).toBe(false);

    // Split: --max-users within the bound runs.
    const split = pacedDeps();
    expect(await main([...args, '--max-users', '1000000'], split.deps)).toBe(0);
    expect(split.io.stderr).toMatch(/about 1000000 users, ETA 2 d 8 h/);
    split.sqs.destroy();
    run.sqs.destroy();
  });

  it('--max-users stops mid-page and a rerun goes on without enqueueing anyone twice', async () => {
    servePool(
      Array.from({ length: 25 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    const first = pacedDeps();
    const r1 = await runBackfill({ ...baseOptions(), maxUsers: 15 }, first.deps);
    expect(r1.exitCode).toBe(0);
    expect(r1.data).toMatchObject({ enqueued: 15, limitReached: 'max-users', completed: false });
    const second = pacedDeps();
    const r2 = await runBackfill(baseOptions(), second.deps);
    expect(r2.data).toMatchObject({ enqueued: 10, alreadyEnqueued: 15, completed: true });
    const subs = (await queued()).map((m) => m.sub);
    expect(subs).toHaveLength(25);
    expect(new Set(subs).size).toBe(25);
    first.sqs.destroy();
    second.sqs.destroy();
  });

  it('--dry-run counts exactly and prints the ETA, and says (exit 1) when the real run would be refused', async () => {
    servePool(
      Array.from({ length: 120 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    const run = pacedDeps();
    const result = await runBackfill({ ...baseOptions(), dryRun: true }, run.deps);
    expect(result.exitCode).toBe(0);
    expect(result.data.pace).toMatchObject({ expectedUsers: 120 });
    expect(result.data.pace.etaSeconds).toBeCloseTo(120 / 4.9, 6);
    expect(run.io.stdout).toMatch(/ETA:\s+24 s for 120 users \(queue retention 4 d\)/);

    // Budget 0.51/s: 0.002 users/s, 552 users within 80 % of 4 days.
    POOL = `${POOL}b`;
    servePool(
      Array.from({ length: 600 }, (_, i) => cognitoUser(i + 1)),
      60,
    );
    const tiny = pacedDeps();
    const refused = await runBackfill({ ...baseOptions(), dryRun: true, trayBudget: 0.51 }, tiny.deps);
    expect(refused.exitCode).toBe(1);
    expect(refused.data.wouldRefuse).toMatch(/refusing to backfill 600 users: at 0\.002 users\/s.*\(552 users\)/);
    expect(tiny.io.stdout).toContain('the backfill would be refused');
    run.sqs.destroy();
    tiny.sqs.destroy();
  });
});

describe('reconcile', () => {
  it('enqueues the confirmed users missing from the ledger, retrying, or stuck in progress for longer than --older-than (default 30 min); failed ones only with --include-failed', async () => {
    const recent = new Date(Date.now() - 2 * 60_000);
    servePool(
      [
        cognitoUser(1), // enabled
        cognitoUser(2), // failed 45 min ago → only with --include-failed
        cognitoUser(3), // retrying 45 min ago → yes
        cognitoUser(4), // failed 5 min ago → not yet, even with --include-failed
        cognitoUser(5), // missing, confirmed long ago → yes
        cognitoUser(6, 'CONFIRMED', recent), // missing but just confirmed: its message may be in flight
        cognitoUser(7), // in progress 45 min ago, lease long expired: stuck → yes
        cognitoUser(8, 'UNCONFIRMED'), // missing but not confirmed
        cognitoUser(9), // in progress right now (lease held) → no
        cognitoUser(10), // retrying 20 min ago: its retry (up to 15 min back-off) may still be pending → not by default
      ],
      3,
    );
    await seedLedger(1, 'enabled', 60);
    await seedLedger(2, 'failed', 45);
    await seedLedger(3, 'retrying', 45);
    await seedLedger(4, 'failed', 5);
    await seedLedger(7, 'in_progress', 45);
    await seedLedger(9, 'in_progress', 0);
    await seedLedger(10, 'retrying', 20);

    // Default: failed users are left alone (their message is in the DLQ already).
    const { io, deps } = backfillDeps();
    const dry = await runReconcile({ userPoolId: POOL, table: stack.tableName, plan: PLAN, dryRun: true, json: true }, deps);
    expect(dry.exitCode).toBe(1); // users to reconcile were found
    const drySummary = io.json<ReconcileSummary>();
    expect(drySummary.candidates.map((c) => [c.sub, c.reason])).toEqual([
      [sub(3), 'retrying'],
      [sub(5), 'missing'],
      [sub(7), 'stuck'],
    ]);
    expect(drySummary).toMatchObject({ olderThanMinutes: 30, includeFailed: false, failedSkipped: 2, recent: 2 });
    expect(await queued()).toEqual([]);

    const run = await runReconcile({ userPoolId: POOL, queueUrl: stack.queueUrl, table: stack.tableName, plan: PLAN }, backfillDeps().deps);
    expect(run.exitCode).toBe(0);
    expect(run.data).toMatchObject({ enqueued: 3, recent: 2, failedSkipped: 2, failed: [] });
    let messages = await queued();
    expect(messages.map((m) => m.sub).sort()).toEqual([sub(3), sub(5), sub(7)]);
    expect(messages.every((m) => m.source === 'reconcile')).toBe(true);

    // --include-failed: the failed user is due too, with its attributes as Cognito has them now
    // (a DLQ redrive would replay the old message body).
    const included = backfillDeps();
    const withFailed = await runReconcile(
      { userPoolId: POOL, queueUrl: stack.queueUrl, table: stack.tableName, plan: PLAN, includeFailed: true },
      included.deps,
    );
    expect(withFailed.exitCode).toBe(0);
    expect(withFailed.data.candidates.map((c) => [c.sub, c.reason])).toEqual([
      [sub(2), 'failed'],
      [sub(3), 'retrying'],
      [sub(5), 'missing'],
      [sub(7), 'stuck'],
    ]);
    expect(withFailed.data).toMatchObject({ includeFailed: true, failedSkipped: 0, enqueued: 4, recent: 3 });
    messages = await queued();
    expect(messages.map((m) => m.sub).sort()).toEqual([sub(2), sub(3), sub(5), sub(7)]);
    expect(messages.find((m) => m.sub === sub(2))?.attributes).toEqual({
      email: 'user2@example.com',
      name: 'User 2',
      'custom:tenant_id': 'tenant-2',
    });

    // With a shorter window, the recent ones are due too.
    const shorter = await runReconcile(
      { userPoolId: POOL, table: stack.tableName, plan: PLAN, dryRun: true, olderThan: 1 },
      backfillDeps().deps,
    );
    expect(shorter.data.candidates.map((c) => c.sub)).toEqual([sub(3), sub(5), sub(6), sub(7), sub(10)]);
    const shorterWithFailed = await runReconcile(
      { userPoolId: POOL, table: stack.tableName, plan: PLAN, dryRun: true, olderThan: 1, includeFailed: true },
      backfillDeps().deps,
    );
    expect(shorterWithFailed.data.candidates.map((c) => c.sub)).toEqual([sub(2), sub(3), sub(4), sub(5), sub(6), sub(7), sub(10)]);
  });

  it('through the CLI: --older-than defaults to 30 minutes and --include-failed is wired', async () => {
    servePool([cognitoUser(1), cognitoUser(2), cognitoUser(3)], 10);
    await seedLedger(1, 'failed', 45);
    await seedLedger(2, 'retrying', 20);
    await seedLedger(3, 'retrying', 45);
    const args = ['--json', 'reconcile', '--user-pool-id', POOL, '--table', stack.tableName, '--plan', PLAN, '--dry-run'];

    const plain = backfillDeps();
    expect(await main(args, plain.deps)).toBe(1);
    expect(plain.io.json<ReconcileSummary>()).toMatchObject({
      olderThanMinutes: 30,
      includeFailed: false,
      failedSkipped: 1,
      recent: 1,
      candidates: [{ sub: sub(3), reason: 'retrying' }],
    });

    const withFailed = backfillDeps();
    expect(await main([...args, '--include-failed'], withFailed.deps)).toBe(1);
    const summary = withFailed.io.json<ReconcileSummary>();
    expect(summary).toMatchObject({ olderThanMinutes: 30, includeFailed: true, failedSkipped: 0 });
    expect(summary.candidates.map((c) => [c.sub, c.reason])).toEqual([
      [sub(1), 'failed'],
      [sub(3), 'retrying'],
    ]);

    const text = backfillDeps();
    await main(['reconcile', '--user-pool-id', POOL, '--table', stack.tableName, '--plan', PLAN, '--dry-run'], text.deps);
    expect(text.io.stdout).toContain('1 failed user(s) left alone');
    expect(text.io.stdout).toContain('--include-failed');
  });
});
