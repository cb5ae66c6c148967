import { describe, expect, it } from 'vitest';
import type { ReconcileOptions, ReconcileSummary } from '../cli/commands/reconcile.js';
import type { CliDeps } from '../cli/context.js';
import { createReconcileHandler } from '../functions/reconcile/handler.js';

/** Issue #11, item 6: the scheduled reconcile runs the CLI command with explicit settings and makes failures visible. */
const ENV = {
  USER_POOL_ID: 'us-east-1_DemoPool1',
  QUEUE_URL: 'https://sqs/q',
  LEDGER_TABLE: 'ledger',
  MESSAGE_ATTRIBUTES: 'custom:tenant_id,email,name',
  RECONCILE_OLDER_THAN_MINUTES: '45',
};
const summary = (over: Partial<ReconcileSummary> = {}): ReconcileSummary => ({
  userPoolId: ENV.USER_POOL_ID,
  dryRun: false,
  olderThanMinutes: 45,
  includeFailed: false,
  listed: 3,
  confirmed: 3,
  recent: 0,
  failedSkipped: 0,
  candidates: [],
  enqueued: 0,
  failed: [],
  invalid: [],
  ...over,
});

describe('scheduled reconcile handler', () => {
  it('passes every setting explicitly (no stack lookup) and stops before the deadline', async () => {
    let seen: { options: ReconcileOptions; deps: CliDeps } | undefined;
    const lines: string[] = [];
    const handler = createReconcileHandler({
      env: ENV,
      log: (l) => lines.push(l),
      run: async (options, deps) => {
        seen = { options, deps };
        await new Promise((r) => setTimeout(r, 50));
        return {
          exitCode: 0,
          data: summary({
            enqueued: 2,
            candidates: [
              { sub: 'a', username: 'a', reason: 'missing' },
              { sub: 'b', username: 'b', reason: 'missing' },
            ],
          }),
        };
      },
    });
    // 30 s margin: with 30,020 ms left the signal fires after ~20 ms, while the run is still going.
    await expect(handler({}, { getRemainingTimeInMillis: () => 30_020 })).resolves.toEqual({ enqueued: 2, candidates: 2 });
    expect(seen?.options).toMatchObject({
      userPoolId: ENV.USER_POOL_ID,
      queueUrl: ENV.QUEUE_URL,
      table: ENV.LEDGER_TABLE,
      attributes: ENV.MESSAGE_ATTRIBUTES,
      olderThan: 45,
      json: true,
    });
    expect(seen?.options).not.toHaveProperty('includeFailed');
    expect(seen?.deps.signal?.aborted).toBe(true);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'INFO', message: 'scheduled reconcile', enqueued: 2, candidates: 2 });
  });

  it('fails the invocation (Errors alarm) when users could not be enqueued or the run was cut short', async () => {
    const failing = createReconcileHandler({
      env: ENV,
      log: () => undefined,
      run: async () => ({ exitCode: 1, data: summary({ failed: [{ sub: 'a', username: 'a', reason: 'x' }] }) }),
    });
    await expect(failing({}, { getRemainingTimeInMillis: () => 900_000 })).rejects.toThrow(/1 user\(s\) not enqueued/);
    const cut = createReconcileHandler({
      env: ENV,
      log: () => undefined,
      run: async () => ({ exitCode: 1, data: summary({ interrupted: 'aborted' }) }),
    });
    await expect(cut({}, { getRemainingTimeInMillis: () => 900_000 })).rejects.toThrow(/interrupted \(aborted\)/);
  });

  it('names a missing setting', async () => {
    const handler = createReconcileHandler({ env: { ...ENV, QUEUE_URL: '' }, run: async () => ({ exitCode: 0, data: summary() }) });
    await expect(handler({}, { getRemainingTimeInMillis: () => 900_000 })).rejects.toThrow(/QUEUE_URL is not set/);
  });
});
