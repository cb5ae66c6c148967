import {
  type AttributeType,
  type CognitoIdentityProviderClient,
  ListUsersCommand,
  type UserType,
} from '@aws-sdk/client-cognito-identity-provider';
import { buildQueueMessage, type MessageSource, type QueueMessage } from '../shared/message.js';
import { CliError, EXIT } from './toolkit/errors.js';

/**
 * The pool's users, page by page (Cognito's ListUsers, at most 60 a page). Imported: CONFIRMED
 * users (a confirmed sign-up — the trigger's case — or an administrator-created user once they
 * set their password), RESET_REQUIRED users (confirmed earlier, e.g. migrated, and only asked to
 * choose a new password) and, unless `federated: false`, EXTERNAL_PROVIDER users (signed in
 * through a SAML/OIDC/social provider; backfill and reconcile are how they reach Tray when no
 * sign-up confirmation ever ran for them). UNCONFIRMED / FORCE_CHANGE_PASSWORD users are not
 * users of the app yet; ARCHIVED, COMPROMISED and UNKNOWN ones are not imported.
 */
export const LIST_USERS_PAGE_SIZE = 60;

export interface UserPage {
  users: UserType[];
  /** Token for the page after this one; undefined on the last page. */
  nextToken: string | undefined;
}

export async function listUsersPage(
  cognito: CognitoIdentityProviderClient,
  userPoolId: string,
  filter: string | undefined,
  token: string | undefined,
): Promise<UserPage> {
  try {
    const out = await cognito.send(
      new ListUsersCommand({ UserPoolId: userPoolId, Limit: LIST_USERS_PAGE_SIZE, Filter: filter, PaginationToken: token }),
    );
    return { users: out.Users ?? [], nextToken: out.PaginationToken || undefined };
  } catch (e) {
    const error = e as Error;
    if (error.name === 'ResourceNotFoundException') {
      throw new CliError(`--user-pool-id ${userPoolId}: no such user pool (${error.message}); check the id and --region`);
    }
    if (error.name === 'InvalidParameterException' && token && /token/i.test(error.message)) {
      throw new CliError(
        `Cognito no longer accepts the saved pagination token (${error.message}); rerun with --restart (users already imported are skipped through the ledger)`,
        EXIT.failures,
      );
    }
    if (error.name === 'InvalidParameterException' && filter && /filter/i.test(error.message)) {
      throw new CliError(
        `--filter ${JSON.stringify(filter)} is not a valid Cognito filter (${error.message}); e.g. --filter 'email ^= "ops"'`,
      );
    }
    throw e;
  }
}

export function userAttributes(attributes: readonly AttributeType[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of attributes ?? []) if (a.Name && a.Value !== undefined) out[a.Name] = a.Value;
  return out;
}

export const isConfirmed = (user: Pick<UserType, 'UserStatus'>): boolean => user.UserStatus === 'CONFIRMED';

/** Whether backfill and reconcile import this user (see above); `federated: false` skips IdP users. */
export function isImportable(user: Pick<UserType, 'UserStatus'>, options: { federated?: boolean | undefined } = {}): boolean {
  if (user.UserStatus === 'CONFIRMED' || user.UserStatus === 'RESET_REQUIRED') return true;
  return user.UserStatus === 'EXTERNAL_PROVIDER' && options.federated !== false;
}

/** The queue message for a listed user, or why none can be built (no `sub`). */
export function messageForUser(
  userPoolId: string,
  user: UserType,
  attributeNames: readonly string[],
  source: MessageSource,
  now: Date,
): { message: QueueMessage } | { problem: string } {
  const attributes = userAttributes(user.Attributes);
  if (!attributes.sub) return { problem: `user ${user.Username ?? '?'} has no "sub" attribute` };
  try {
    return {
      message: buildQueueMessage({
        userPoolId,
        username: user.Username ?? attributes.sub,
        userAttributes: attributes,
        attributeNames,
        source,
        now,
      }),
    };
  } catch (e) {
    return { problem: `user ${user.Username ?? attributes.sub}: ${(e as Error).message}` };
  }
}
