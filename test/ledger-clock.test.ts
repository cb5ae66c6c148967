import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_TABLE_NAME, type LocalStack, startLocalStack } from '../local/local-stack.js';
import { Ledger } from '../shared/ledger.js';
import { ServerClock } from '../shared/server-clock.js';

/**
 * Leases are written by several machines. One whose clock is 10 minutes slow (an operator's
 * laptop running import-user beside the deployed worker) wrote leases that had expired before
 * they were written, so the worker took the same user at once and Tray got a second user.
 * Leases are now decided on DynamoDB's clock, read from its answers.
 */
const TEN_MINUTES = 10 * 60_000;

describe("leases on DynamoDB's clock", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ masterToken: 'master-token-for-tests', tray: false });
  });
  afterAll(async () => stack?.close());

  const ledgerWithClock = (localClock: () => number) =>
    new Ledger({ tableName: LOCAL_TABLE_NAME, client: new DynamoDBClient({}), localClock });
  const info = { username: 'ada', source: 'manual' as const };

  it("a host whose clock is 10 minutes slow holds its lease as long as it said, by the server's clock", async () => {
    const key = { userPoolId: 'us-east-1_Clock1', sub: '3f1c2a9e-0b7d-4c55-9a53-2f0c8e6d1b7a' };
    const slow = ledgerWithClock(() => Date.now() - TEN_MINUTES);
    await slow.get(key); // any answer measures the offset
    expect(slow.clock.offsetMs).toBeGreaterThan(TEN_MINUTES - 2_000);
    expect(slow.clock.offsetMs).toBeLessThan(TEN_MINUTES + 2_000);
    await slow.acquire(key, 'operator', 60_000, info);
    // The worker, on a correct clock, must find the user busy.
    const worker = ledgerWithClock(Date.now);
    await expect(worker.acquire(key, 'worker', 60_000, info)).rejects.toMatchObject({ code: 'USER_BUSY' });
  });

  it('a host whose clock is fast cannot take a live lease early', async () => {
    const key = { userPoolId: 'us-east-1_Clock1', sub: '8b5e8f0a-6a1d-4a63-9c1e-6f3d2b9a4c10' };
    const worker = ledgerWithClock(Date.now);
    await worker.get(key);
    await worker.acquire(key, 'worker', 60_000, info);
    const fast = ledgerWithClock(() => Date.now() + TEN_MINUTES);
    await fast.get(key);
    await expect(fast.acquire(key, 'operator', 60_000, info)).rejects.toMatchObject({ code: 'USER_BUSY' });
  });

  it('reads the offset from the Date header, to the second', () => {
    let local = 1_000_000;
    const clock = new ServerClock(() => local);
    expect(clock.now()).toBe(1_000_000);
    clock.observe(new Date(1_000_000 + 5 * 60_000).toUTCString(), local - 100, local + 100);
    expect(Math.abs(clock.offsetMs - 5 * 60_000)).toBeLessThanOrEqual(1_000);
    local += 1_000;
    expect(Math.abs(clock.now() - (1_001_000 + 5 * 60_000))).toBeLessThanOrEqual(1_000);
    clock.observe('not a date', 0, 0);
    expect(clock.isMeasured).toBe(true);
  });
});
