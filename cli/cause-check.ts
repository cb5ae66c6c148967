import { AdminGetUserCommand } from '@aws-sdk/client-cognito-identity-provider';
import type { DeadLetter } from '../shared/dead-letter.js';
import { buildQueueMessage, parseQueueMessage, type QueueMessage } from '../shared/message.js';
import { userAttributes } from './cognito-users.js';
import type { CliContext } from './context.js';

/**
 * Before a dead-lettered message goes back to the worker: does the reason it failed still hold?
 * Redriving a message whose cause holds only spends another attempt (and, for failures after the
 * first Tray call, Tray calls) and puts it back into the DLQ.
 *
 * Checked today: MISSING_ATTRIBUTE, by reading the user from Cognito. The dead-lettered body
 * carries the attributes the user had when it was enqueued, so replaying it would fail even after
 * the fix: when the attribute is set now, the message sent back is built from the user's current
 * attributes instead (the same attribute names, plus the missing ones).
 */
export interface CauseCheck {
  /** True when the failure would happen again (or could not be ruled out). */
  holds: boolean;
  /** False when the check could not be made (Cognito unreachable, no attribute named). */
  checked: boolean;
  note: string;
  /** The body to send instead of the dead-lettered one. */
  freshBody?: string | undefined;
}

/** `user alice lacks attributes "custom:a", "b" that …` → ["custom:a", "b"]. */
export function missingAttributeNames(reason: string | undefined): string[] {
  const match = /lacks attributes? ((?:"[^"]+"(?:,\s*)?)+)/.exec(reason ?? '');
  if (!match?.[1]) return [];
  return [...match[1].matchAll(/"([^"]+)"/g)].map((m) => m[1] as string);
}

export async function checkCause(ctx: CliContext, info: DeadLetter, body: string): Promise<CauseCheck | undefined> {
  if (info.errorCode !== 'MISSING_ATTRIBUTE') return undefined;
  const names = missingAttributeNames(info.reason);
  if (names.length === 0) return { holds: true, checked: false, note: 'cannot check the cause: the reason names no attribute' };
  let message: QueueMessage;
  try {
    message = parseQueueMessage(body);
  } catch (e) {
    return { holds: true, checked: false, note: `cannot check the cause: ${(e as Error).message}` };
  }
  let attributes: Record<string, string>;
  try {
    const user = await ctx.cognito.send(new AdminGetUserCommand({ UserPoolId: message.userPoolId, Username: message.username }));
    attributes = userAttributes(user.UserAttributes);
  } catch (e) {
    const name = (e as Error).name;
    if (name === 'UserNotFoundException')
      return {
        holds: true,
        checked: true,
        note: `cause still holds: user ${message.username} no longer exists in ${message.userPoolId}; delete the message (\`dlq delete --user ${message.sub}\`)`,
      };
    return {
      holds: true,
      checked: false,
      note: `cannot check the cause: reading user ${message.username} from Cognito failed (${name}); check --region, credentials and cognito-idp:AdminGetUser, or pass --force`,
    };
  }
  if (attributes.sub !== message.sub) {
    return {
      holds: true,
      checked: true,
      note: `cause still holds: username ${message.username} now belongs to sub ${attributes.sub ?? '(none)'}, not ${message.sub}`,
    };
  }
  const stillMissing = names.filter((n) => !attributes[n]);
  if (stillMissing.length > 0) {
    return {
      holds: true,
      checked: true,
      note: `cause still holds: ${message.username} still lacks ${stillMissing.map((n) => `"${n}"`).join(', ')} in Cognito; set it (AdminUpdateUserAttributes), then redrive`,
    };
  }
  const fresh = buildQueueMessage({
    userPoolId: message.userPoolId,
    username: message.username,
    userAttributes: attributes,
    attributeNames: [...new Set([...Object.keys(message.attributes), ...names])],
    source: message.source,
    now: new Date(ctx.now()),
  });
  return {
    holds: false,
    checked: true,
    note: `cause fixed: ${names.map((n) => `"${n}"`).join(', ')} now set; sent with the user's current attributes`,
    freshBody: JSON.stringify(fresh),
  };
}
