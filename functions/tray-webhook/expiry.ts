import * as z from 'zod';
import { companyLedgerKey } from '../../shared/import-workflow.js';
import type { Ledger, LedgerEntry, UserKey } from '../../shared/ledger.js';
import { buildLifecycleMessage, type LifecycleMessage } from '../../shared/lifecycle/message.js';
import { COGNITO_SUB } from '../../shared/message.js';
import type { ImportPlan } from '../../shared/plan.js';
import { renderTemplate } from '../../shared/template.js';

/**
 * What the webhook does with one of Tray's expired-auth notifications, once its token is checked:
 * 1. find the user: Tray names it by the externalUserId the import gave it (the Cognito sub in the
 *    plan's externalUserId template, or the company key of a per-company plan), and the auth by id;
 * 2. decide: when a secret the auth's slot reads changed after the auth was created (the import,
 *    or the last rotation), a rotation re-imports the newer value (`reimport`); otherwise nobody
 *    but the company can renew it (`alert`: metric AuthExpiring, alarmed);
 * 3. record it in the ledger (`expiring.<authId>`) with a conditional write that is also the claim
 *    against a repeated notification: within the repeat window, the second one does nothing;
 * 4. for `reimport`, enqueue a `rotate` lifecycle message for that user and slot. If the send
 *    fails the record is taken back and the caller answers 500, so that a retry acts again.
 */

/** Tray's body (extra fields are ignored); the two fields it is acted on are required. */
const id = (what: string) =>
  z
    .string({ error: `${what} (a string)` })
    .min(1, { error: `${what} must not be empty` })
    .max(512);
export const ExpiredAuthNotificationSchema = z.object({
  authentication_name: z.string().max(1024).optional(),
  service_name: z.string().max(256).optional(),
  user_id: z.string().max(512).optional(),
  authId: id("the expiring auth's id"),
  external_user_id: id("the Tray user's externalUserId"),
});
export type ExpiredAuthNotification = z.infer<typeof ExpiredAuthNotificationSchema>;

export type ExpiryOutcome =
  /** Rotation enqueued: the secret has a newer value than the auth. */
  | { outcome: 'reimport'; key: UserKey; slot: string; secretId: string }
  /** The company must renew the auth (AuthExpiring). */
  | { outcome: 'alert'; key: UserKey; slot: string; reason: string }
  /** Handled already within the repeat window: nothing done again. */
  | { outcome: 'repeated'; key: UserKey; action: 'reimport' | 'alert' }
  /** No such user or auth in the ledger (ExpiringUnknown); nothing recorded. */
  | { outcome: 'unknown'; reason: string };

export interface ExpiryDeps {
  plan: ImportPlan;
  userPoolId: string;
  ledger: Ledger;
  /** When a secret last changed (DescribeSecret's LastChangedDate). */
  lastChanged(secretId: string): Promise<Date | undefined>;
  enqueue(message: LifecycleMessage): Promise<void>;
  repeatWindowMs: number;
  now?: () => number;
}

export async function handleExpiring(notification: ExpiredAuthNotification, deps: ExpiryDeps): Promise<ExpiryOutcome> {
  const now = deps.now?.() ?? Date.now();
  const key = ledgerKeyOf(deps.plan, deps.userPoolId, notification.external_user_id);
  if (!key) return { outcome: 'unknown', reason: "external_user_id does not match the plan's externalUserId template" };
  const entry = await deps.ledger.get(key);
  if (!entry) return { outcome: 'unknown', reason: 'no ledger entry for this user' };
  if (entry.status === 'offboarded') return { outcome: 'unknown', reason: 'the user was offboarded' };
  const slot = Object.entries(entry.authIds).find(([, authId]) => authId === notification.authId)?.[0];
  // An auth rotated away or removed since: the one in the slot now is not the one expiring.
  if (slot === undefined) return { outcome: 'unknown', reason: "the auth is in none of the user's slots (rotated or removed since)" };

  const windowStart = new Date(now - deps.repeatWindowMs).toISOString();
  const earlier = entry.expiring[notification.authId];
  if (earlier && earlier.at >= windowStart) return { outcome: 'repeated', key, action: earlier.action };

  const decision = await decide(entry, key, slot, deps);
  const at = new Date(now).toISOString();
  const info = { at, service: notification.service_name, action: decision.action };
  const claim = await deps.ledger.recordExpiring(key, notification.authId, info, { unlessSince: windowStart });
  if (claim === 'missing') return { outcome: 'unknown', reason: 'no ledger entry for this user' };
  if (claim === 'recent') {
    const current = await deps.ledger.get(key);
    return { outcome: 'repeated', key, action: current?.expiring[notification.authId]?.action ?? decision.action };
  }
  if (decision.action === 'alert') return { outcome: 'alert', key, slot, reason: decision.reason };

  try {
    await deps.enqueue(
      buildLifecycleMessage({
        kind: 'rotate',
        userPoolId: key.userPoolId,
        sub: key.sub,
        source: 'tray-expiry',
        slots: [slot],
        secretId: decision.secretId,
        requestedAt: at,
      }),
    );
  } catch (e) {
    await deps.ledger.forgetExpiring(key, notification.authId, at).catch(() => undefined);
    throw e;
  }
  return { outcome: 'reimport', key, slot, secretId: decision.secretId };
}

/**
 * The ledger entry Tray's externalUserId stands for: per-user plans render it from `sub` (with an
 * optional fixed prefix or suffix), so the sub is read back out of it; per-company plans keep the
 * company's Tray objects under the company key itself.
 */
export function ledgerKeyOf(plan: ImportPlan, userPoolId: string, externalUserId: string): UserKey | undefined {
  if (plan.trayUserPer === 'company') return companyLedgerKey(userPoolId, externalUserId);
  const pattern = plan.externalUserId
    .split(/\{\{\s*sub\s*\}\}/)
    .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('([0-9a-fA-F-]{36})');
  const sub = new RegExp(`^${pattern}$`).exec(externalUserId)?.[1];
  if (sub === undefined || !COGNITO_SUB.test(sub)) return undefined;
  // Every occurrence must be the same sub: render it back and compare.
  const rendered = renderTemplate(plan.externalUserId, { sub });
  return rendered.ok && rendered.value === externalUserId ? { userPoolId, sub } : undefined;
}

type Decision = { action: 'reimport'; secretId: string } | { action: 'alert'; reason: string };

async function decide(entry: LedgerEntry, key: UserKey, slot: string, deps: ExpiryDeps): Promise<Decision> {
  // A rotate message names a Cognito user: a company's shared auth has none to name.
  if (deps.plan.trayUserPer === 'company') {
    return { action: 'alert', reason: 'per-company plan: renew the shared auth (or `rotate --secret ID` after updating the secret)' };
  }
  const auth = deps.plan.auths.find((a) => a.externalId === slot);
  if (!auth) return { action: 'alert', reason: `slot "${slot}" is no longer in the plan` };
  const secretIds = new Set<string>();
  for (const source of Object.values(auth.data)) {
    if (source.secret?.secretId) secretIds.add(source.secret.secretId);
    if (source.secret?.secretIdTemplate) {
      const rendered = renderTemplate(source.secret.secretIdTemplate, { sub: key.sub });
      if (rendered.ok) secretIds.add(rendered.value);
    }
  }
  if (secretIds.size === 0) return { action: 'alert', reason: 'the slot reads no Secrets Manager secret: nothing newer to import' };
  // The auth holds what the secret said when it was created: at the import, or at the last rotation.
  const since = entry.lastRotatedAt ?? entry.enabledAt ?? entry.createdAt;
  const problems: string[] = [];
  for (const secretId of [...secretIds].sort()) {
    let changed: Date | undefined;
    try {
      changed = await deps.lastChanged(secretId);
    } catch (e) {
      // Not knowing is not a reason to rotate: the alarm asks a human instead.
      problems.push(`secret "${secretId}" could not be described (${(e as Error).name})`);
      continue;
    }
    if (changed && changed.getTime() > Date.parse(since)) return { action: 'reimport', secretId };
  }
  return {
    action: 'alert',
    reason: problems.length > 0 ? problems.join('; ') : `no secret of the slot changed since the auth was created (${since})`,
  };
}
