import { setTimeout as sleep } from 'node:timers/promises';
import { ImportError, asImportError, type Step } from './errors.js';

/**
 * Retries transient failures with exponential backoff and full jitter, but only while the
 * invocation has time left: a retry that cannot finish before the Lambda deadline is worse
 * than handing the message back to SQS, which will redeliver it after the visibility timeout.
 */
export interface RetryPolicy {
  /** Attempts including the first. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Epoch ms after which no new attempt starts. */
  deadline: number;
  /** Time one attempt may take (the call timeout): an attempt starts only if it fits. */
  attemptBudgetMs: number;
  random?: () => number;
  /** Which failures to retry; default: transient ones that are not ambiguous creates. */
  shouldRetry?: (error: ImportError) => boolean;
  onRetry?: (error: ImportError, attempt: number, delayMs: number) => void;
}

export function backoffDelay(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs' | 'random'>): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round((policy.random ?? Math.random)() * ceiling);
}

const defaultShouldRetry = (error: ImportError) => error.kind === 'transient' && !error.ambiguous;

export async function withRetry<T>(step: Step, policy: RetryPolicy, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      const error = asImportError(e, step);
      const retryable = (policy.shouldRetry ?? defaultShouldRetry)(error);
      if (!retryable || attempt >= policy.maxAttempts) throw error;
      const delay = backoffDelay(attempt, policy);
      if (Date.now() + delay + policy.attemptBudgetMs > policy.deadline) throw error;
      policy.onRetry?.(error, attempt, delay);
      await sleep(delay);
    }
  }
}
