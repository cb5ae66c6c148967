import { asImportError, ImportError } from '../errors.js';
import type { ExistingLeaseResult, UserKey } from '../ledger.js';
import type { LifecycleDeps, LifecycleOutcome } from './index.js';

/** A lifecycle step is started only with at least this much time left (a few Tray calls' worth). */
const MIN_TIME_TO_START_MS = 3_000;

/**
 * How every lifecycle step starts, as the import does: not at all when the invocation is nearly
 * over, and not while another delivery holds the user (an import in flight, another step). Both
 * are `deferred`: the record goes back to the queue uncounted, for when the holder's lease ends.
 */
export function tooLateToStart(deps: LifecycleDeps, what: string): LifecycleOutcome | undefined {
  if (deps.deadline === undefined || deps.deadline - Date.now() >= MIN_TIME_TO_START_MS) return undefined;
  const error = new ImportError(
    'OUT_OF_TIME',
    'lifecycle',
    `not enough time left in this invocation to start the ${what}; it will be retried`,
  );
  return { outcome: 'deferred', error, retryInMs: 0 };
}

export async function leaseUser(
  deps: LifecycleDeps,
  key: UserKey,
  owner: string,
): Promise<ExistingLeaseResult | { kind: 'busy'; outcome: LifecycleOutcome }> {
  try {
    return await deps.ledger.acquireExisting(key, owner, deps.leaseMs);
  } catch (e) {
    const error = asImportError(e, 'ledger');
    if (error.code !== 'USER_BUSY') throw error;
    return { kind: 'busy', outcome: { outcome: 'deferred', error, retryInMs: await deps.ledger.busyRetryMs(key) } };
  }
}
