import * as z from 'zod';
import { buildLifecycleMessage, type LifecycleMessage } from '../../shared/lifecycle/message.js';
import { COGNITO_SUB } from '../../shared/message.js';
import type { EventRoute, LifecycleEvent } from './router.js';

/**
 * Cognito has no post-delete trigger: a deletion is seen as the CloudTrail record of the API call
 * (`AdminDeleteUser` by an admin or backend, `DeleteUser` by the user), which EventBridge delivers
 * as "AWS API Call via CloudTrail" (source `aws.cognito-idp`). This turns one into an offboard
 * message on the import queue.
 *
 * The sub is taken from the event when CloudTrail gives it (`additionalEventData.sub`), else from
 * the ledger by the username in the request (the ledger keeps each user's username; an alias
 * such as the email is matched too). CloudTrail may hide the username
 * (`HIDDEN_DUE_TO_SECURITY_REASONS`): a deletion that cannot be resolved is logged as an error and
 * counted (`OffboardUnresolved`), and `offboard --deleted` (users in the ledger whose Cognito user
 * no longer exists) catches it. Failures to read the ledger or to enqueue are thrown: EventBridge's
 * invocation is retried, and the event then goes to the function's failure queue.
 */
export const COGNITO_EVENT_SOURCE = 'aws.cognito-idp';
export const COGNITO_DELETE_EVENTS = ['AdminDeleteUser', 'DeleteUser'] as const;
/** What CloudTrail writes in place of a value it does not disclose. */
export const CLOUDTRAIL_HIDDEN = 'HIDDEN_DUE_TO_SECURITY_REASONS';

const Visible = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' || v === CLOUDTRAIL_HIDDEN ? undefined : v));

const CloudTrailDetailSchema = z.looseObject({
  eventName: z.string(),
  errorCode: z.string().nullish(),
  requestParameters: z.looseObject({ userPoolId: Visible, username: Visible }).nullish(),
  additionalEventData: z.looseObject({ sub: Visible, userPoolId: Visible }).nullish(),
});

/** The ledger look-ups the resolution needs (Query only). */
export interface DeletedUserLookup {
  /** Whether the pool's partition holds this sub. */
  hasSub(userPoolId: string, sub: string): Promise<boolean>;
  /** Subs of the pool's users not yet offboarded whose username (or email alias) is this. */
  subsByUsername(userPoolId: string, username: string): Promise<string[]>;
}

export interface CognitoDeleteDeps {
  userPoolId: string;
  lookup: DeletedUserLookup;
  enqueue: (message: LifecycleMessage) => Promise<void>;
  log: {
    info: (message: string, extra: Record<string, unknown>) => void;
    error: (message: string, extra: Record<string, unknown>) => void;
  };
  /** Counts a deletion whose user could not be found (OffboardUnresolved). */
  unresolved: () => void;
}

export type CognitoDeleteResult =
  | { kind: 'enqueued'; sub: string }
  | { kind: 'ignored'; reason: string }
  | { kind: 'unresolved'; reason: string };

export function cognitoDeleteRoute(deps: CognitoDeleteDeps): EventRoute {
  return async (event) => {
    await handleCognitoDelete(event, deps);
  };
}

export async function handleCognitoDelete(event: LifecycleEvent, deps: CognitoDeleteDeps): Promise<CognitoDeleteResult> {
  const parsed = CloudTrailDetailSchema.safeParse(event.detail);
  if (!parsed.success) {
    // Not a CloudTrail record at all: retrying cannot change it.
    deps.log.error('Cognito event is not a CloudTrail API call record: dropped', { id: event.id, detailType: event['detail-type'] });
    return { kind: 'ignored', reason: 'not a CloudTrail record' };
  }
  const detail = parsed.data;
  const ignored = (reason: string): CognitoDeleteResult => {
    deps.log.info(`Cognito ${detail.eventName} ignored: ${reason}`, { id: event.id });
    return { kind: 'ignored', reason };
  };
  if (!(COGNITO_DELETE_EVENTS as readonly string[]).includes(detail.eventName)) return ignored('not a user deletion');
  if (detail.errorCode) return ignored(`the call failed (${detail.errorCode}): nobody was deleted`);

  const eventPool = detail.requestParameters?.userPoolId ?? detail.additionalEventData?.userPoolId;
  if (eventPool !== undefined && eventPool !== deps.userPoolId) return ignored(`another user pool (${eventPool})`);
  // DeleteUser (the user's own call) names no pool: the deleted user is ours only if the ledger knows it.
  const poolKnown = eventPool !== undefined;
  const username = detail.requestParameters?.username;

  const sub = await resolveSub(deps, detail.additionalEventData?.sub, username, poolKnown);
  if (sub.kind !== 'found') {
    if (sub.kind === 'notOurs') return ignored("a user this pool's ledger does not know");
    deps.log.error('a deleted Cognito user could not be resolved to a sub: run `offboard --deleted` to catch it', {
      id: event.id,
      eventName: detail.eventName,
      reason: sub.reason,
    });
    deps.unresolved();
    return { kind: 'unresolved', reason: sub.reason };
  }
  const message = buildLifecycleMessage({
    kind: 'offboard',
    userPoolId: deps.userPoolId,
    sub: sub.sub,
    ...(username === undefined ? {} : { username }),
    source: 'cognito-delete',
    ...(event.time && !Number.isNaN(Date.parse(event.time)) ? { requestedAt: new Date(event.time).toISOString() } : {}),
  });
  await deps.enqueue(message);
  deps.log.info('deleted Cognito user enqueued for offboarding', { id: event.id, sub: sub.sub, eventName: detail.eventName });
  return { kind: 'enqueued', sub: sub.sub };
}

type Resolution = { kind: 'found'; sub: string } | { kind: 'notOurs' } | { kind: 'unresolved'; reason: string };

async function resolveSub(
  deps: CognitoDeleteDeps,
  eventSub: string | undefined,
  username: string | undefined,
  poolKnown: boolean,
): Promise<Resolution> {
  const pool = deps.userPoolId;
  if (eventSub !== undefined && COGNITO_SUB.test(eventSub)) {
    if (poolKnown || (await deps.lookup.hasSub(pool, eventSub))) return { kind: 'found', sub: eventSub };
    return { kind: 'notOurs' };
  }
  if (username === undefined) return { kind: 'unresolved', reason: 'the event carries neither the sub nor a visible username' };
  // Pools without a separate username use the sub as the username.
  if (COGNITO_SUB.test(username) && (await deps.lookup.hasSub(pool, username))) return { kind: 'found', sub: username };
  const subs = await deps.lookup.subsByUsername(pool, username);
  if (subs.length === 1) return { kind: 'found', sub: subs[0] as string };
  if (subs.length > 1) return { kind: 'unresolved', reason: `${subs.length} users of the ledger answer to this username` };
  return poolKnown ? { kind: 'unresolved', reason: 'no user of the ledger has this username' } : { kind: 'notOurs' };
}
