/**
 * Fault injection and the rate limiter: the failure modes a Tray client has to survive
 * (timeouts, 5xx, rate limits, and the nastiest one, a create that happened but whose answer
 * was lost).
 */
import * as z from 'zod';

export type FaultKind = 'latency' | 'http500' | 'hang' | 'rateLimit' | 'commitThenFail' | 'commitThenHang';

export interface FaultRule {
  operation: string; // root field name or '*'
  kind: FaultKind;
  onCall?: number; // 1-based, counted per rule from when it was added; default 1
  times?: number; // consecutive calls from onCall that fire; default 1
  ms?: number; // 'latency' delay (default 200) / 'hang' and 'commitThenHang' duration (default 60000)
  /** Only calls about this Tray user (by its externalUserId) match: lets concurrent tests fault their own user. */
  externalUserId?: string;
}

/** For POST /_standin/faults: humans type these bodies by hand, so reject typos loudly. */
export const faultRuleSchema = z.strictObject({
  operation: z.string().min(1),
  kind: z.enum(['latency', 'http500', 'hang', 'rateLimit', 'commitThenFail', 'commitThenHang']),
  onCall: z.number().int().min(1).optional(),
  times: z.number().int().min(1).optional(),
  ms: z.number().int().min(0).optional(),
  externalUserId: z.string().min(1).optional(),
});

export const DEFAULT_LATENCY_MS = 200;
export const DEFAULT_HANG_MS = 60_000;

export interface FiredFault {
  kind: FaultKind;
  ms: number;
}

interface ActiveRule {
  rule: Required<Omit<FaultRule, 'ms' | 'externalUserId'>> & { ms?: number; externalUserId?: string };
  seen: number;
}

export class FaultInjector {
  private rules: ActiveRule[] = [];

  constructor(
    private readonly randomRate: number,
    private readonly random: () => number,
  ) {}

  add(rule: FaultRule): void {
    // `??` rather than spread defaults: an explicit `onCall: undefined` must still mean 1.
    const { operation, kind, ms, externalUserId } = rule;
    this.rules.push({ rule: { operation, kind, ms, externalUserId, onCall: rule.onCall ?? 1, times: rule.times ?? 1 }, seen: 0 });
  }

  clear(): void {
    this.rules = [];
  }

  /**
   * Called once per request. Every matching rule counts the call (so each rule's onCall is
   * relative to when it was added, independently of the others); the first-added rule that
   * fires wins. Without an explicit fault, the random transient rate is rolled.
   */
  decide(operation: string, isMutation: boolean, subject?: string): FiredFault | undefined {
    let fired: FiredFault | undefined;
    for (const r of this.rules) {
      if (r.rule.operation !== '*' && r.rule.operation !== operation) continue;
      if (r.rule.externalUserId !== undefined && r.rule.externalUserId !== subject) continue;
      r.seen += 1;
      const { onCall, times, kind } = r.rule;
      if (!fired && r.seen >= onCall && r.seen < onCall + times) {
        fired = { kind, ms: r.rule.ms ?? (kind === 'hang' || kind === 'commitThenHang' ? DEFAULT_HANG_MS : DEFAULT_LATENCY_MS) };
      }
    }
    if (fired) return fired;
    // The RNG is consulted only when a rate is set, so injected RNGs stay predictable.
    if (this.randomRate > 0 && this.random() < this.randomRate) {
      // commitThenFail only makes sense (and only hurts) for mutations.
      const kinds: FaultKind[] = isMutation ? ['http500', 'rateLimit', 'commitThenFail'] : ['http500', 'rateLimit'];
      const kind = kinds[Math.min(kinds.length - 1, Math.floor(this.random() * kinds.length))] ?? 'http500';
      return { kind, ms: 0 };
    }
    return undefined;
  }
}

/** Token bucket shared by the whole partner account (Tray limits per partner, not per token). */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  tryTake(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
