import { ImportError } from '../errors.js';
import type { LedgerEntry } from '../ledger.js';
import type { ImportPlan } from '../plan.js';

/**
 * The slot values an upgrade sends, rendered from the CURRENT plan. An upgrade message carries no
 * user attributes (it is sent by an operator's scan or an event, not by Cognito), so config values
 * are rendered from what the ledger keeps of the user: `sub`, `username`, `email`, and the
 * attributes the import message carried (ledger `attributes`). An attribute the ledger does not
 * hold for a user (a plan that reads a new one, an entry from before attributes were kept) is
 * said, naming the value and the fix, rather than sending a guess. Auth values are the auths the import created
 * (ledger `authIds`): an upgrade never creates an auth, so a plan slot without one is refused too.
 */
export interface UpgradeValues {
  authValues: { externalId: string; authId: string }[];
  configValues: { externalId: string; value: unknown }[];
}

export function renderUpgradeValues(plan: ImportPlan, entry: LedgerEntry): UpgradeValues {
  const attributes: Record<string, string | undefined> = {
    ...entry.attributes,
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
    const value = Object.hasOwn(attributes, c.attribute) ? attributes[c.attribute] : undefined;
    if (value === undefined) {
      throw new ImportError(
        'MISSING_ATTRIBUTE',
        'plan',
        `the ledger keeps no "${c.attribute}" for user ${entry.sub}, which config slot "${c.externalId}" reads (it keeps the attributes the import message carried): set it in Cognito and re-import the user, or give the slot a literal "value"`,
      );
    }
    return { externalId: c.externalId, value };
  });
  return { authValues, configValues };
}
