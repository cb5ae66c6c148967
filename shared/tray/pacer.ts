import { setTimeout as sleep } from 'node:timers/promises';
import { ImportError, type Step } from '../errors.js';

/**
 * Paces this process's Tray calls to its share of the fleet's rate budget: a token bucket
 * (GCRA form: one "theoretical arrival time" instead of a refill timer). Tray limits requests
 * per second per partner account whatever their latency, so pacing by rate — not by a guessed
 * latency and a fixed number of calls in flight — uses the budget at any latency and never
 * more. Waiters are served in arrival order.
 *
 * When Tray answers "Rate limit exceeded" anyway (another environment shares the account, or
 * the budget is set too high), `onRateLimited` cuts the rate multiplicatively; it recovers
 * linearly over `recoveryMs` (AIMD, as TCP does), so a burst of refusals cannot repeat.
 *
 * In Lambda one module instance serves one invocation at a time, so a module-level pacer is the
 * invocation's share; the local runner imports one handler per concurrent invocation for the same
 * reason.
 */
export interface PacerOptions {
  /** Calls per second this process may make. */
  ratePerSecond: number;
  /** Calls that may go out at once after an idle spell (≥ 1). */
  burst?: number;
  /** How long the rate takes to recover fully after a rate-limit answer. */
  recoveryMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
}

/** Lowest share of the configured rate a run of rate-limit answers can cut it to. */
const MIN_FACTOR = 0.25;
/**
 * Each rate-limit answer multiplies the rate by this. Gentle, because the call that was refused
 * is retried with its own backoff anyway: the cut is for a budget set too high (or shared with
 * another environment), which keeps drawing refusals; a lone refusal should cost little.
 */
const CUT = 0.75;

export class Pacer {
  readonly ratePerSecond: number;
  readonly burst: number;
  private readonly recoveryMs: number;
  private readonly now: () => number;
  private readonly wait: (ms: number) => Promise<unknown>;
  /** Theoretical arrival time of the next call (ms). */
  private tat = Number.NEGATIVE_INFINITY;
  private factorAtCut = 1;
  private cutAt = Number.NEGATIVE_INFINITY;
  private waiting = 0;
  /** Calls granted and rate-limit answers seen: for reports and tests. */
  granted = 0;
  rateLimited = 0;

  constructor(options: PacerOptions) {
    if (!(options.ratePerSecond > 0)) throw new Error('Pacer: ratePerSecond must be > 0');
    this.ratePerSecond = options.ratePerSecond;
    this.burst = Math.max(1, Math.floor(options.burst ?? 1));
    this.recoveryMs = options.recoveryMs ?? 5_000;
    this.now = options.now ?? Date.now;
    this.wait = options.sleep ?? sleep;
  }

  /** The share of the configured rate in force now (1 unless Tray said "rate limit" lately). */
  factor(at = this.now()): number {
    if (this.factorAtCut >= 1) return 1;
    const recovered = Math.max(0, (at - this.cutAt) / this.recoveryMs);
    return Math.min(1, this.factorAtCut + (1 - this.factorAtCut) * recovered);
  }

  /** Milliseconds between calls at the current rate. */
  intervalMs(at = this.now()): number {
    return 1000 / (this.ratePerSecond * this.factor(at));
  }

  /** Callers waiting for their turn: a pacer with waiters is using its whole rate. */
  get queued(): number {
    return this.waiting;
  }

  /**
   * Reserves the next slot and waits for it. Refuses (OUT_OF_TIME, nothing sent) when the slot
   * would come after `deadline`: a call that cannot start in time is better handed back.
   */
  async take(step: Step = 'lookup', deadline = Number.POSITIVE_INFINITY): Promise<void> {
    const now = this.now();
    const interval = this.intervalMs(now);
    const tat = Math.max(this.tat, now);
    const startAt = tat - interval * (this.burst - 1);
    const delay = Math.max(0, startAt - now);
    if (now + delay > deadline) {
      throw new ImportError('OUT_OF_TIME', step, 'no Tray call slot left in this invocation within the rate budget; it will be retried');
    }
    this.tat = tat + interval;
    this.granted += 1;
    if (delay <= 0) return;
    this.waiting += 1;
    try {
      await this.wait(delay);
    } finally {
      this.waiting -= 1;
    }
  }

  /** Tray refused a call for its rate: slow down, and push the next slot out by one interval. */
  onRateLimited(): void {
    const now = this.now();
    this.rateLimited += 1;
    this.factorAtCut = Math.max(MIN_FACTOR, this.factor(now) * CUT);
    this.cutAt = now;
    this.tat = Math.max(this.tat, now) + this.intervalMs(now);
  }
}

/**
 * How the fleet shares Tray's budget: every concurrent worker invocation gets an equal share,
 * after the operators' CLI has its reserve. Used by infra (synth checks) and the worker.
 */
export const CLI_RATE_PER_SECOND = 0.5;
/** Tray's documented limit per partner account (bursts to 50). */
export const TRAY_RATE_LIMIT_PER_SECOND = 30;
/** The fleet's default budget: a safe share of Tray's 30/s, leaving room for other callers of the account. */
export const DEFAULT_TRAY_BUDGET_PER_SECOND = 25;

export function workerShare(budgetPerSecond: number, maxConcurrency: number): number {
  return (budgetPerSecond - CLI_RATE_PER_SECOND) / maxConcurrency;
}

/**
 * Calls an invocation may send at once after an idle spell (the gap between two batches): one
 * second of its share. The fleet's bursts then add up to at most one second of the budget
 * (≤ 30 calls), within Tray's burst allowance of 50, and the idle gap is won back.
 */
export function defaultBurst(ratePerSecond: number): number {
  return Math.max(1, Math.floor(ratePerSecond));
}
