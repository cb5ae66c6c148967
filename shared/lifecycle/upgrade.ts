import { randomUUID } from 'node:crypto';
import { asImportError, ImportError } from '../errors.js';
import type { LedgerEntry, UserKey } from '../ledger.js';
import { planVersion } from '../plan-version.js';
import type { TraySolutionInstance } from '../tray/operations.js';
import type { LifecycleDeps, LifecycleOutcome } from './index.js';
import { leaseUser, tooLateToStart } from './lease.js';
import type { LifecycleMessage } from './message.js';
import { renderUpgradeValues } from './upgrade-values.js';

/**
 * Moves a user's instance to the current plan and to its solution's newest version:
 *   acquireExisting → authorize → solutionInstances(id) → upgradeSolutionInstance(values of the
 *   current plan) → ledger: planVersion, upgradedAt
 *
 * One Tray write, and it is safe to repeat: upgrading an instance already on the newest version
 * with the same values changes nothing. So there is no pending mark: a crash (or a Tray fault)
 * after the upgrade but before the ledger write leaves the old planVersion in the ledger, and the
 * redelivery simply upgrades again, then records it. Skipped, with the reason:
 * - a user the ledger does not know, offboarded, or not enabled (the import applies the current plan);
 * - up to date: the ledger's planVersion is the current plan's and Tray reports no newer version;
 * - Tray's newer version needs the end user's input: not upgraded (values sent by us cannot stand
 *   in for the user's answers); `upgradeNeedsUser` is recorded and the CLI reports a wizard link.
 * Per-company plans are not upgraded by this flow yet (their instance belongs to the company entry).
 */

export async function upgradeUser(message: LifecycleMessage, deps: LifecycleDeps): Promise<LifecycleOutcome> {
  const key: UserKey = { userPoolId: message.userPoolId, sub: message.sub };
  if (deps.plan.trayUserPer === 'company') {
    return { outcome: 'skipped', reason: 'per-company plans are not upgraded by this flow: their instance belongs to the company entry' };
  }
  const tooLate = tooLateToStart(deps, 'upgrade');
  if (tooLate) return tooLate;

  const owner = randomUUID();
  // An import, a rotation or another upgrade holding the user defers it until that lease is over.
  const lease = await leaseUser(deps, key, owner);
  if (lease.kind === 'busy') return lease.outcome;
  if (lease.kind === 'missing') return { outcome: 'skipped', reason: 'no ledger entry: the user was never imported' };
  if (lease.kind === 'offboarded') return { outcome: 'skipped', reason: 'the user is offboarded', entry: lease.entry };

  try {
    return await new UserUpgrade(deps, key, owner, lease.entry).execute();
  } catch (e) {
    // The entry keeps its status (the user stays enabled on the old values); the lease is let go
    // so that the retry can take it at once, and the error goes the usual retry/dead-letter way.
    await deps.ledger.release(key, owner).catch(() => undefined);
    throw asImportError(e, 'lifecycle');
  }
}

class UserUpgrade {
  private readonly version: string;

  constructor(
    private readonly deps: LifecycleDeps,
    private readonly key: UserKey,
    private readonly owner: string,
    private readonly entry: LedgerEntry,
  ) {
    this.version = planVersion(deps.plan);
  }

  async execute(): Promise<LifecycleOutcome> {
    const { entry } = this;
    if (entry.status !== 'enabled' || !entry.instanceId || !entry.trayUserId) {
      return this.skip(`not enabled (status ${entry.status}): the import will apply the current plan`);
    }
    if (entry.company !== undefined) return this.skip('a member of a per-company Tray user: the company entry holds the instance');
    // Rendered before any Tray call: a plan that cannot be applied fails having changed nothing.
    const values = renderUpgradeValues(this.deps.plan, entry);

    const { tray } = this.deps;
    const token = await tray.authorize(entry.trayUserId);
    const instance = await this.readInstance(token, entry.instanceId);
    const flags = instance.solutionVersionFlags;
    if (entry.planVersion === this.version && !flags?.hasNewerVersion) return this.skip('up to date', true);
    if (flags?.hasNewerVersion && flags.requiresUserInputToUpdateVersion) {
      const noted = await this.deps.ledger.writeLeased(
        this.key,
        this.owner,
        'SET upgradeNeedsUser = if_not_exists(upgradeNeedsUser, :at), updatedAt = :at REMOVE leaseOwner, leaseUntil',
        {},
        {},
      );
      return {
        outcome: 'skipped',
        reason: "Tray's newer solution version needs the user's input: send them the config wizard (`wizard-url SUB`)",
        entry: noted,
      };
    }

    // Safe to resend (operations.ts): the client retries transient failures, then SQS does.
    await tray.upgradeSolutionInstance(token, instance.id, values);
    const done = await this.deps.ledger.writeLeased(
      this.key,
      this.owner,
      'SET planVersion = :version, upgradedAt = :at, updatedAt = :at REMOVE upgradeNeedsUser, leaseOwner, leaseUntil, lastError',
      {},
      { ':version': this.version },
    );
    const from = entry.planVersion ?? 'unknown';
    const detail = flags?.hasNewerVersion
      ? `instance ${instance.id} moved to the solution's newest version with plan ${this.version} (was ${from})`
      : `instance ${instance.id} given the values of plan ${this.version} (was ${from})`;
    return { outcome: 'done', entry: done, detail };
  }

  private async readInstance(token: string, instanceId: string): Promise<TraySolutionInstance> {
    const found = (await this.deps.tray.listSolutionInstances({ kind: 'user', token }, { id: instanceId })).find(
      (i) => i.id === instanceId,
    );
    if (!found) {
      throw new ImportError(
        'TRAY_REJECTED',
        'lookup',
        `Tray has no instance ${instanceId} for user ${this.key.sub} any more (removed in Tray?): check with \`status ${this.key.sub} --live\`, then offboard and re-import the user`,
      );
    }
    const solutionId = found.solution?.id;
    if (solutionId !== undefined && solutionId !== this.deps.plan.solutionId) {
      throw new ImportError(
        'PLAN_INVALID',
        'plan',
        `the plan now targets solution "${this.deps.plan.solutionId}" but instance ${instanceId} is of "${solutionId}": an upgrade cannot change the solution; offboard and re-import the user`,
      );
    }
    return found;
  }

  /** Ends without a Tray write, letting go of the lease; `current`: the entry is up to date (cleared note). */
  private async skip(reason: string, current = false): Promise<LifecycleOutcome> {
    const entry = await this.deps.ledger.writeLeased(
      this.key,
      this.owner,
      `SET updatedAt = :at REMOVE leaseOwner, leaseUntil${current ? ', upgradeNeedsUser' : ''}`,
      {},
      {},
    );
    return { outcome: 'skipped', reason, entry };
  }
}
