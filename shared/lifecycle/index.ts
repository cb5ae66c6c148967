import type { ImportError } from '../errors.js';
import type { ImportDeps } from '../import-workflow.js';
import type { LedgerEntry } from '../ledger.js';
import type { LifecycleKind, LifecycleMessage } from './message.js';
import { offboardUser } from './offboard.js';
import { rotateUser } from './rotate.js';
import { upgradeUser } from './upgrade.js';

/**
 * After the import: what the worker does with each lifecycle message. Each handler takes the
 * user's lease (shared/ledger.ts `acquireExisting`), records each Tray step in the ledger as soon
 * as Tray answered (so a crash at any step resumes without a duplicate or an orphan), and ends in
 * one of three ways, like the import:
 * - `done`: the step is complete and recorded;
 * - `skipped`: nothing to do (no such user, already offboarded, nothing to rotate or upgrade);
 * - `deferred`: not started (another delivery holds the user, or no time left): handed back to
 *   the queue without counting as an attempt.
 * Failures are thrown as ImportError and go through the same retry and dead-letter path.
 */
export type LifecycleOutcome =
  | { outcome: 'done'; entry: LedgerEntry; detail: string }
  | { outcome: 'skipped'; reason: string; entry?: LedgerEntry | undefined }
  | { outcome: 'deferred'; error: ImportError; retryInMs: number };

export type LifecycleDeps = ImportDeps;

export type LifecycleHandler = (message: LifecycleMessage, deps: LifecycleDeps) => Promise<LifecycleOutcome>;

export const LIFECYCLE_HANDLERS: Record<LifecycleKind, LifecycleHandler> = {
  offboard: offboardUser,
  rotate: rotateUser,
  upgrade: upgradeUser,
};
