import { ImportError } from '../errors.js';
import type { LedgerEntry } from '../ledger.js';
import type { ImportPlan } from '../plan.js';

/**
 * The slot values an upgrade sends, rendered from the CURRENT plan. An upgrade message carries no
 * user attributes (it is sent by an operator's scan or an event, not by Cognito), so config values
 * are rendered from what the ledger keeps of the user: `sub`, `username` and `email`. A plan whose
 * config values read any other attribute cannot be re-rendered here: that is said, naming the
 * value and the fix, rather than sending a guess. Auth values are the auths the import created
 * (ledger `authIds`): an upgrade never creates an auth, so a plan slot without one is refused too.
 */
export const UPGRADE_ATTRIBUTES = ['sub', 'username', 'email'] as const;

export interface UpgradeValues {
  authValues: { externalId: string; authId: string }[];
  configValues: { externalId: string; value: unknown }[];
}

/** Problems that make the plan unusable for upgrades whoever the user is (the CLI checks them before scanning). */
export function upgradePlanProblems(plan: ImportPlan): string[] {
  return plan.configValues.flatMap((c, i) =>
    c.attribute !== undefined && !(UPGRADE_ATTRIBUTES as readonly string[]).includes(c.attribute)
      ? [
          `configValues[${i}] ("${c.externalId}") reads attribute "${c.attribute}", which the ledger does not keep: ` +
            `an upgrade can only re-render config values from ${UPGRADE_ATTRIBUTES.join(', ')}. ` +
            'Give the slot a literal "value", or re-import the users (offboard, then import) to apply it',
        ]
      : [],
  );
}

export function renderUpgradeValues(plan: ImportPlan, entry: LedgerEntry): UpgradeValues {
  const problems = upgradePlanProblems(plan);
  if (problems.length > 0) throw new ImportError('PLAN_INVALID', 'plan', problems.join('; '));
  const attributes: Record<(typeof UPGRADE_ATTRIBUTES)[number], string | undefined> = {
    sub: entry.sub,
    username: entry.username,
    email: entry.email,
  };
  const authValues = plan.auths.map((a) => {
    const authId = entry.authIds[a.externalId];
    if (!authId) {
      throw new ImportError(
        'PLAN_INVALID',
        'plan',
        `the plan fills auth slot "${a.externalId}", for which user ${entry.sub} has no auth: an upgrade does not create auths; re-import the user (offboard, then import) to add it`,
      );
    }
    return { externalId: a.externalId, authId };
  });
  const configValues = plan.configValues.map((c) => {
    if (c.attribute === undefined) return { externalId: c.externalId, value: c.value };
    const value = attributes[c.attribute as keyof typeof attributes];
    if (value === undefined) {
      throw new ImportError(
        'MISSING_ATTRIBUTE',
        'plan',
        `the ledger keeps no "${c.attribute}" for user ${entry.sub}, which config slot "${c.externalId}" reads: set it in Cognito and re-import the user`,
      );
    }
    return { externalId: c.externalId, value };
  });
  return { authValues, configValues };
}
