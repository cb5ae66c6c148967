import { setTimeout as sleep } from 'node:timers/promises';
import { asImportError, ImportError, type Step } from './errors.js';

/**
 * The project's one retry policy. A failure can be retried at three layers, from the inside out:
 * 1. `trayCall`: a Tray call that failed transiently is re-sent inside the invocation, with full
 *    jitter, only while the invocation has time for another attempt (`withRetry`). Creates that
 *    failed ambiguously are not re-sent here: the workflow looks them up first.
 * 2. `redelivery`: a user whose import failed transiently goes back to SQS, its next delivery
 *    pushed back by a visibility timeout growing with the attempt count, half fixed and half
 *    jittered (`shared/redelivery.ts`). Base and cap are deployment settings
 *    (RETRY_BASE_SECONDS, RETRY_MAX_SECONDS), defaults below.
 * 3. `enqueue`: the operators' commands re-send SendMessageBatch entries SQS reports as failed.
 * The AWS SDK's own retries sit below all three (its standard mode, per client).
 * Whether a failure is final — dead-lettered rather than retried — is `isFinal`, decided once.
 */
export type Jitter = 'full' | 'half' | 'none';

export interface Backoff {
  baseDelayMs: number;
  maxDelayMs: number;
  jitter: Jitter;
}

export const RETRY_POLICY = {
  trayCall: { maxAttempts: 4, baseDelayMs: 250, maxDelayMs: 4_000, jitter: 'full' },
  redelivery: { baseSeconds: 30, maxSeconds: 900, jitter: 'half', /** SQS's longest visibility timeout. */ sqsMaxSeconds: 43_200 },
  enqueue: { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 30_000, jitter: 'none' },
} as const;

/**
 * Delay before retry number `attempt` (1-based): base × 2^(attempt−1), capped; `full` jitter
 * spreads it over [0, ceiling], `half` over [ceiling/2, ceiling] (never at once), `none` waits
 * the ceiling.
 */
export function backoffMs(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(backoff.maxDelayMs, backoff.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  switch (backoff.jitter) {
    case 'full':
      return Math.round(random() * ceiling);
    case 'half':
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    case 'none':
      return ceiling;
  }
}

/** A failure is final — dead-lettered with its reason, recorded `failed` — when retrying cannot fix it or no delivery is left. */
export function isFinal(error: Pick<ImportError, 'kind'>, lastAttempt: boolean): boolean {
  return error.kind === 'permanent' || lastAttempt;
}

/**
 * Retries transient failures inside one invocation, but only while it has time left: a retry
 * that cannot finish before the Lambda deadline is worse than handing the message back to SQS.
 */
export interface RetryOptions {
  /** Attempts including the first. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Epoch ms after which no new attempt starts. */
  deadline: number;
  /** Time one attempt may take (the call timeout): an attempt starts only if it fits. */
  attemptBudgetMs: number;
  random?: (() => number) | undefined;
  /** Which failures to retry; default: transient ones that are not ambiguous creates. */
  shouldRetry?: (error: ImportError) => boolean;
  onRetry?: (error: ImportError, attempt: number, delayMs: number) => void;
}

const defaultShouldRetry = (error: ImportError) => error.kind === 'transient' && !error.ambiguous;

export async function withRetry<T>(step: Step, options: RetryOptions, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      const error = asImportError(e, step);
      const retryable = (options.shouldRetry ?? defaultShouldRetry)(error);
      if (!retryable || attempt >= options.maxAttempts) throw error;
      const delay = backoffMs(
        attempt,
        { baseDelayMs: options.baseDelayMs, maxDelayMs: options.maxDelayMs, jitter: 'full' },
        options.random,
      );
      if (Date.now() + delay + options.attemptBudgetMs > options.deadline) throw error;
      options.onRetry?.(error, attempt, delay);
      await sleep(delay);
    }
  }
}
