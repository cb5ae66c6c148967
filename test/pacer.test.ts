import { describe, expect, it } from 'vitest';
import { Pacer, workerShare } from '../shared/tray/pacer.js';

/** A clock that only moves when the pacer sleeps: pacing is proved by counting, not by timing. */
function fakeClock() {
  let now = 1_000_000;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

/** Calls granted per one-second window, for a run of `calls` sequential takes. */
async function grantsPerSecond(pacer: Pacer, clock: ReturnType<typeof fakeClock>, calls: number): Promise<number[]> {
  const start = clock.now();
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    await pacer.take();
    times.push(clock.now() - start);
  }
  const windows: number[] = [];
  for (const t of times) windows[Math.floor(t / 1000)] = (windows[Math.floor(t / 1000)] ?? 0) + 1;
  return windows.map((n) => n ?? 0);
}

describe('the Tray pacer', () => {
  it('grants exactly its rate per second after the burst, however fast callers ask', async () => {
    const clock = fakeClock();
    const pacer = new Pacer({ ratePerSecond: 12, burst: 2, ...clock });
    const windows = await grantsPerSecond(pacer, clock, 12 * 10);
    // The first second includes the burst; every full second after it holds exactly 12 calls.
    expect(windows[0]).toBeLessThanOrEqual(12 + 2);
    for (const n of windows.slice(1, -1)) expect(n).toBe(12);
  });

  it('lets a burst go at once after an idle spell, and no more', async () => {
    const clock = fakeClock();
    const pacer = new Pacer({ ratePerSecond: 10, burst: 3, ...clock });
    const start = clock.now();
    for (let i = 0; i < 3; i++) await pacer.take();
    expect(clock.now()).toBe(start);
    await pacer.take();
    expect(clock.now()).toBe(start + 100);
  });

  it('serves concurrent callers in turn, never two in one slot', async () => {
    let now = 0;
    const sleeps: number[] = [];
    const pacer = new Pacer({ ratePerSecond: 5, burst: 1, now: () => now, sleep: async (ms) => void sleeps.push(ms) });
    await Promise.all(Array.from({ length: 5 }, () => pacer.take()));
    expect(sleeps).toEqual([200, 400, 600, 800]);
    now = 10_000;
    await pacer.take();
    expect(sleeps).toHaveLength(4); // idle again: no wait
  });

  it('slows down after a rate-limit answer and recovers over time', async () => {
    const clock = fakeClock();
    const pacer = new Pacer({ ratePerSecond: 10, burst: 1, recoveryMs: 10_000, ...clock });
    expect(pacer.intervalMs()).toBe(100);
    pacer.onRateLimited();
    expect(pacer.intervalMs()).toBeCloseTo(100 / 0.75);
    pacer.onRateLimited();
    expect(pacer.intervalMs()).toBeCloseTo(100 / 0.5625);
    for (let i = 0; i < 10; i++) pacer.onRateLimited();
    expect(pacer.intervalMs()).toBe(400); // never below a quarter of the rate
    clock.advance(5_000);
    expect(pacer.intervalMs()).toBeCloseTo(1000 / (10 * 0.625));
    clock.advance(5_000);
    expect(pacer.intervalMs()).toBe(100);
    expect(pacer.rateLimited).toBe(12);
  });

  it('refuses a slot that would come after the deadline, sending nothing', async () => {
    const clock = fakeClock();
    const pacer = new Pacer({ ratePerSecond: 1, burst: 1, ...clock });
    await pacer.take();
    await expect(pacer.take('createExternalUser', clock.now() + 500)).rejects.toMatchObject({
      code: 'OUT_OF_TIME',
      step: 'createExternalUser',
    });
    // The refused call took no slot: the next caller gets the one it would have had.
    await pacer.take();
    expect(pacer.granted).toBe(2);
  });

  it("shares the budget between the fleet's invocations after the CLI's reserve", () => {
    expect(workerShare(25, 2)).toBe(12.25);
    expect(workerShare(25, 4) * 4 + 0.5).toBe(25);
  });
});
