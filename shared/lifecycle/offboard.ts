import { randomUUID } from 'node:crypto';
import { asImportError, ImportError } from '../errors.js';
import type { LedgerEntry, OffboardPolicy, UserKey } from '../ledger.js';
import { pendingKey } from '../ledger.js';
import { scrubExcerpt } from '../redact.js';
import { renderTemplate } from '../template.js';
import type { LifecycleDeps, LifecycleOutcome } from './index.js';
import { leaseUser, tooLateToStart } from './lease.js';
import type { LifecycleMessage } from './message.js';

/**
 * Offboarding: the Cognito user was deleted, and the plan's `offboarding.policy` is applied in Tray.
 * - `remove`: removeSolutionInstance → removeAuthentication (each auth) → removeExternalUser.
 *   The auths go before the user because Tray documents that a user's instances go with it, but
 *   not its auths: removing only the user could leave billable auths nobody can reach.
 * - `disable`: the instance is disabled, nothing is deleted.
 * - `keep`: nothing changes in Tray.
 * The entry then ends `offboarded` (terminal: an import message for the user is skipped).
 *
 * Crash-safe like the import: the user's lease serialises it with an import in flight (which it
 * waits for), and each Tray step is appended to `offboard.done` as soon as Tray answered, so a
 * retry resumes with the steps left. Tray answering "not found" counts as done (a removal that
 * happened but whose answer was lost). Objects a crashed import may have created without recording
 * their id (its `pending` marks) are looked up by exactly what was sent, as the import would, and
 * recorded before the removal, so that no orphan remains.
 *
 * Per-company plans: a member's offboarding marks only the member offboarded. The company's Tray
 * user, auths and instance are shared by the company's other members, who keep using them; the
 * company's own entry is left as it is.
 */

/** The steps recorded in `offboard.done`. */
export const OFFBOARD_STEP = {
  instance: 'instance',
  auth: (slot: string) => `auth:${slot}`,
  user: 'user',
  disabled: 'disabled',
} as const;

export type OffboardEvent =
  | { type: 'adopted'; object: 'user' | 'auth' | 'instance'; id: string }
  | { type: 'removed' | 'gone'; step: string; id: string }
  | { type: 'disabled'; id: string }
  | { type: 'trayUserGone'; id: string };

export async function offboardUser(message: LifecycleMessage, deps: LifecycleDeps): Promise<LifecycleOutcome> {
  const key: UserKey = { userPoolId: message.userPoolId, sub: message.sub };
  const tooLate = tooLateToStart(deps, 'offboarding');
  if (tooLate) return tooLate;
  const owner = randomUUID();
  // Twice at most: a missing entry may be created by an import between the lease and the tombstone.
  for (let round = 0; ; round++) {
    // An import (or another lifecycle step) holding the user defers the offboarding until its
    // delivery is over, so that whatever it created is in the ledger and removed with the rest.
    const lease = await leaseUser(deps, key, owner);
    if (lease.kind === 'busy') return lease.outcome;
    if (lease.kind === 'offboarded') return { outcome: 'skipped', reason: 'already offboarded', entry: lease.entry };
    if (lease.kind === 'missing') {
      const tombstone = await deps.ledger.recordOffboardedTombstone(key, {
        username: message.username,
        policy: deps.plan.offboarding.policy,
      });
      if (tombstone.kind === 'written') {
        return { outcome: 'done', entry: tombstone.entry, detail: 'not imported yet: recorded offboarded, so that its import is skipped' };
      }
      if (round === 0) continue;
      throw new ImportError('USER_BUSY', 'ledger', 'the ledger entry changed while offboarding; will retry');
    }
    return runLeased(key, owner, lease.entry, deps);
  }
}

async function runLeased(key: UserKey, owner: string, entry: LedgerEntry, deps: LifecycleDeps): Promise<LifecycleOutcome> {
  const member = deps.plan.trayUserPer === 'company' || entry.company !== undefined;
  // An offboarding already begun keeps its policy: its recorded steps belong to it.
  const policy: OffboardPolicy = member ? 'keep' : (entry.offboard?.policy ?? deps.plan.offboarding.policy);
  const run = new Offboarding(deps, key, owner, entry, policy);
  try {
    const done = await run.execute();
    const detail = member
      ? "company member offboarded; the company's shared Tray objects stay for its other members"
      : `offboarded (${policy}${run.steps.length > 0 ? `: ${run.steps.join(', ')}` : ''})` +
        (run.unreachable.length > 0
          ? `; the Tray user was already gone, so its auths ${run.unreachable.join(', ')} could not be reached: remove them in Tray`
          : '');
    return { outcome: 'done', entry: done, detail };
  } catch (e) {
    const error = asImportError(e, 'lifecycle');
    if (error.code !== 'USER_BUSY') {
      // Releases the lease so that the retry can take it at once; status shows why it waits.
      await deps.ledger
        .writeLeased(
          key,
          owner,
          'SET lastError = :error, updatedAt = :at REMOVE leaseOwner, leaseUntil',
          {},
          { ':error': { code: error.code, step: error.step, message: scrubExcerpt(error.message, 1_000), at: new Date().toISOString() } },
        )
        .catch(() => undefined);
    }
    throw error;
  }
}

/** What a pending mark says was sent; a mark of an older version (a timestamp) says nothing. */
function sentIn(mark: LedgerEntry['pending'][string] | undefined): string | undefined {
  return typeof mark === 'object' ? mark.sent : undefined;
}

class Offboarding {
  /** The Tray steps this delivery did (for the log). */
  readonly steps: string[] = [];
  /** Auths left behind because their Tray user was already gone (no token reaches them): said in the outcome's detail. */
  readonly unreachable: string[] = [];
  private userToken: string | undefined;
  private trayUserGone = false;

  constructor(
    private readonly deps: LifecycleDeps,
    private readonly key: UserKey,
    private readonly owner: string,
    private entry: LedgerEntry,
    private readonly policy: OffboardPolicy,
  ) {}

  async execute(): Promise<LedgerEntry> {
    if (!this.entry.offboard) {
      this.entry = await this.deps.ledger.writeLeased(
        this.key,
        this.owner,
        'SET #ob = :ob, updatedAt = :at',
        { '#ob': 'offboard' },
        { ':ob': { policy: this.policy, startedAt: new Date().toISOString(), done: [] } },
      );
    }
    if (this.policy === 'remove') await this.remove();
    if (this.policy === 'disable') await this.disable();
    return this.finish();
  }

  private async remove(): Promise<void> {
    // Once the Tray user is removed, every other step was done before it: nothing to look up.
    if (!this.isDone(OFFBOARD_STEP.user)) await this.adoptPending();
    const { tray } = this.deps;
    const instanceId = this.entry.instanceId;
    if (instanceId && !this.isDone(OFFBOARD_STEP.instance)) {
      const answer = await this.asUser((token) => tray.removeSolutionInstance(token, instanceId));
      await this.record(OFFBOARD_STEP.instance, instanceId, answer);
    }
    for (const [slot, authId] of Object.entries(this.entry.authIds)) {
      const step = OFFBOARD_STEP.auth(slot);
      if (this.isDone(step)) continue;
      const answer = await this.asUser((token) => tray.removeAuthentication(token, authId));
      if (this.trayUserGone) this.unreachable.push(authId);
      await this.record(step, authId, answer);
    }
    const trayUserId = this.entry.trayUserId;
    if (trayUserId && !this.isDone(OFFBOARD_STEP.user)) {
      const answer = this.trayUserGone ? 'gone' : await tray.removeExternalUser(trayUserId);
      await this.record(OFFBOARD_STEP.user, trayUserId, answer);
    }
  }

  private async disable(): Promise<void> {
    if (this.isDone(OFFBOARD_STEP.disabled)) return;
    await this.adoptPending();
    const instanceId = this.entry.instanceId;
    if (!instanceId) return;
    let answer: 'removed' | 'gone' = 'removed';
    try {
      await this.asUser((token) => this.deps.tray.disableSolutionInstance(token, instanceId));
    } catch (e) {
      if (!(e instanceof ImportError && e.notFound)) throw e;
      answer = 'gone';
    }
    await this.record(OFFBOARD_STEP.disabled, instanceId, answer);
  }

  /**
   * A crashed import may have created objects without recording their id: its pending marks say
   * exactly what was sent. They are looked up exactly as the import's retry would, and recorded
   * (with the import's own ledger writes) so that the removal below takes them too.
   */
  private async adoptPending(): Promise<void> {
    const { tray, ledger, plan } = this.deps;
    if (!this.entry.trayUserId) {
      const mark = this.entry.pending[pendingKey.user];
      if (mark === undefined) return; // no Tray user was ever asked for, so nothing else exists either
      const sent = sentIn(mark) ?? this.legacyExternalUserId();
      if (sent === undefined) return;
      const found = (await tray.findUsersByExternalUserId(sent)).find((u) => u.externalUserId === sent);
      if (!found) return;
      this.entry = await ledger.recordTrayUser(this.key, this.owner, found.id);
      this.emit({ type: 'adopted', object: 'user', id: found.id });
    }
    const authMarks = Object.entries(this.entry.pending).filter(
      ([what]) => what.startsWith('auth:') && this.entry.authIds[what.slice('auth:'.length)] === undefined,
    );
    if (authMarks.length > 0) {
      const listed = await this.asUser((token) => tray.listAuthentications(token));
      const auths = listed === 'gone' ? [] : listed;
      for (const [what, mark] of authMarks) {
        const sent = sentIn(mark);
        if (sent === undefined) continue;
        const taken = new Set(Object.values(this.entry.authIds));
        const slot = what.slice('auth:'.length);
        const serviceId = plan.auths.find((a) => a.externalId === slot)?.serviceId;
        const found = auths.find(
          (a) =>
            !taken.has(a.id) && a.name === sent && (serviceId === undefined || a.service?.id === undefined || a.service.id === serviceId),
        );
        if (!found) continue;
        this.entry = await ledger.recordAuth(this.key, this.owner, slot, found.id);
        this.emit({ type: 'adopted', object: 'auth', id: found.id });
      }
    }
    const instanceMark = sentIn(this.entry.pending[pendingKey.instance]);
    if (!this.entry.instanceId && instanceMark !== undefined) {
      const listed = await this.asUser((token) => tray.listSolutionInstances({ kind: 'user', token }, { solutionId: plan.solutionId }));
      const found = (listed === 'gone' ? [] : listed).find(
        (i) => (i.solution?.id ?? plan.solutionId) === plan.solutionId && i.name === instanceMark,
      );
      if (found) {
        this.entry = await ledger.recordInstance(this.key, this.owner, found.id, Date.now());
        this.emit({ type: 'adopted', object: 'instance', id: found.id });
      }
    }
  }

  /** A user mark of an older version (a timestamp) did not say what was sent: per-user plans render it from the sub alone. */
  private legacyExternalUserId(): string | undefined {
    const rendered = renderTemplate(this.deps.plan.externalUserId, { sub: this.key.sub });
    return rendered.ok ? rendered.value : undefined;
  }

  private isDone(step: string): boolean {
    return this.entry.offboard?.done.includes(step) ?? false;
  }

  /** Recorded as soon as Tray answered: a crash after this point resumes with the next step. */
  private async record(step: string, id: string, answer: 'removed' | 'gone'): Promise<void> {
    this.entry = await this.deps.ledger.writeLeased(
      this.key,
      this.owner,
      'SET #ob.#done = list_append(#ob.#done, :step), updatedAt = :at',
      { '#ob': 'offboard', '#done': 'done' },
      { ':step': [step] },
    );
    this.steps.push(step);
    if (step === OFFBOARD_STEP.disabled) this.emit({ type: 'disabled', id });
    else this.emit({ type: answer, step, id });
  }

  private finish(): Promise<LedgerEntry> {
    const keep = this.policy === 'keep';
    return this.deps.ledger.writeLeased(
      this.key,
      this.owner,
      // `keep` leaves `enabled` as it is: the instance still runs in Tray, and the entry says so.
      `SET #status = :offboarded, offboardedAt = :at, ${keep ? '' : 'enabled = :false, pending = :empty, '}updatedAt = :at ` +
        'REMOVE leaseOwner, leaseUntil, lastError',
      { '#status': 'status' },
      { ':offboarded': 'offboarded', ...(keep ? {} : { ':false': false, ':empty': {} }) },
    );
  }

  /**
   * Runs a user-token call; a token refused (expired, revoked) is minted again, once. A Tray user
   * that no longer exists took its instances with it, and its auths are out of any token's reach:
   * the remaining user-token steps are then done, as far as anything can do them.
   */
  private async asUser<T>(call: (token: string) => Promise<T>): Promise<T | 'gone'> {
    if (this.trayUserGone) return 'gone';
    try {
      this.userToken ??= await this.deps.tray.authorize(this.entry.trayUserId as string);
      return await call(this.userToken);
    } catch (e) {
      if (e instanceof ImportError && e.notFound && e.step === 'authorize') {
        this.trayUserGone = true;
        this.emit({ type: 'trayUserGone', id: this.entry.trayUserId as string });
        return 'gone';
      }
      if (!(e instanceof ImportError) || e.code !== 'TRAY_UNAUTHORIZED') throw e;
      this.userToken = await this.deps.tray.authorize(this.entry.trayUserId as string);
      return call(this.userToken);
    }
  }

  private emit(event: OffboardEvent): void {
    this.deps.onEvent?.(event as never);
  }
}
