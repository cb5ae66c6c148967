import { AdminGetUserCommand, type AdminGetUserCommandOutput, ListUsersCommand } from '@aws-sdk/client-cognito-identity-provider';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { ImportError } from '../../shared/errors.js';
import { type ImportEvent, importUser } from '../../shared/import-workflow.js';
import type { LedgerEntry } from '../../shared/ledger.js';
import { buildQueueMessage, type QueueMessage } from '../../shared/message.js';
import { requiredAttributes } from '../../shared/plan.js';
import { SecretReader } from '../../shared/secrets.js';
import { userAttributes } from '../cognito-users.js';
import { type CliContext, type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';
import type { MasterTokenOptions } from '../toolkit/master-token.js';
import { emit, keyValues, note } from '../toolkit/output.js';

/**
 * Imports one user from the terminal, with the worker's own workflow (same ledger, same
 * exactly-once rules): useful to retry someone at once, or to see each step of a failing import.
 * `--enqueue` only puts the user's message on the queue for the worker instead.
 */
export interface ImportUserOptions extends GlobalOptions, MasterTokenOptions {
  userPoolId?: string;
  plan?: string;
  table?: string;
  queueUrl?: string;
  enqueue?: boolean;
  /** Import a user who is not CONFIRMED. */
  force?: boolean;
  dryRun?: boolean;
}

export interface ImportUserResult {
  sub: string;
  username: string;
  mode: 'import' | 'enqueue';
  dryRun: boolean;
  message: QueueMessage;
  outcome?: 'enabled' | 'alreadyEnabled' | 'offboarded' | 'enqueued' | 'failed';
  entry?: LedgerEntry | undefined;
  error?: ReturnType<ImportError['toJSON']> | undefined;
  events: ImportEvent[];
}

/** Time this run may hold the user's lease in the ledger. */
const LEASE_MS = 5 * 60_000;
/** The run stops starting calls this long before its lease ends. */
const RUN_MARGIN_MS = 60_000;
/** Beyond this, the host's clock is too far off to be trusted with leases at all. */
const MAX_CLOCK_OFFSET_MS = 60_000;

export async function runImportUser(sub: string, options: ImportUserOptions, deps?: CliDeps): Promise<CommandResult<ImportUserResult>> {
  if (!sub) throw new CliError("import-user needs the user's sub: `import-user SUB --user-pool-id ID --plan FILE`");
  return withContext(options, deps, async (ctx) => {
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const plan = loadPlan(options.plan);
    const user = await getUser(ctx, userPoolId, sub);
    const attributes = userAttributes(user.UserAttributes);
    if (attributes.sub !== sub)
      throw new CliError(
        `Cognito answered with user ${user.Username} whose sub is ${attributes.sub ?? '(none)'}, not ${sub}; pass the user's sub`,
        EXIT.failures,
      );
    if (user.UserStatus !== 'CONFIRMED' && !options.force) {
      throw new CliError(
        `user ${user.Username} is ${user.UserStatus ?? 'not confirmed'}, not CONFIRMED; pass --force to import anyway`,
        EXIT.failures,
      );
    }
    const message = buildQueueMessage({
      userPoolId,
      username: user.Username ?? sub,
      userAttributes: attributes,
      attributeNames: requiredAttributes(plan),
      source: 'manual',
      now: new Date(ctx.now()),
    });
    const result: ImportUserResult = {
      sub,
      username: message.username,
      mode: options.enqueue ? 'enqueue' : 'import',
      dryRun: options.dryRun === true,
      message,
      events: [],
    };

    if (options.dryRun) {
      // Nothing is sent anywhere: show what would be.
    } else if (options.enqueue) {
      const queueUrl = await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
      await ctx.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
      result.outcome = 'enqueued';
    } else {
      const ledger = await ctx.ledger(options.table);
      // Leases are compared on DynamoDB's clock; a host whose own clock is far off is refused
      // outright rather than trusted to a correction (reading the user's entry measures it).
      await ledger.get({ userPoolId, sub });
      if (Math.abs(ledger.clock.offsetMs) > MAX_CLOCK_OFFSET_MS) {
        throw new CliError(
          `this machine's clock is ${Math.round(ledger.clock.offsetMs / 1000)} s off AWS's: fix it (NTP) before importing, or enqueue instead (--enqueue)`,
          EXIT.failures,
        );
      }
      const { tray: untimed } = await ctx.trayClient(plan, options);
      // The run ends well before its lease does, so that no call of it outlives the lease.
      const deadline = Date.now() + LEASE_MS - RUN_MARGIN_MS;
      const tray = untimed.withDeadline(deadline);
      try {
        const out = await importUser(message, {
          plan,
          tray,
          ledger,
          secrets: new SecretReader({ client: ctx.secretsManager }),
          leaseMs: LEASE_MS,
          deadline,
          onEvent: (event) => {
            result.events.push(event);
            if (!ctx.json)
              note(
                ctx.io,
                `  ${event.type}${'object' in event ? ` ${event.object} ${event.id}${event.externalId ? ` (${event.externalId})` : ''}` : ''}`,
              );
          },
        });
        // Deferred: another delivery holds the user right now; nothing was done.
        if (out.outcome === 'deferred') throw out.error;
        result.outcome = out.outcome;
        result.entry = out.entry;
      } catch (e) {
        if (!(e instanceof ImportError)) throw e;
        result.outcome = 'failed';
        result.error = e.toJSON();
      }
    }

    emit(
      ctx.io,
      ctx.json,
      result,
      () => {
        if (options.dryRun)
          return [`dry run: would ${options.enqueue ? 'enqueue' : 'import'} this message`, JSON.stringify(message, null, 2)];
        if (result.outcome === 'enqueued') return `enqueued ${sub} (${message.username}) for import`;
        if (result.outcome === 'failed' && result.error) {
          return [
            `import of ${sub} FAILED: ${result.error.code} at ${result.error.step} (${result.error.kind}): ${result.error.message}`,
            result.error.kind === 'transient' ? 'transient: run it again later' : 'permanent: fix the cause, then run it again',
          ];
        }
        return [
          result.outcome === 'alreadyEnabled' ? `${sub} was already imported` : `imported ${sub}`,
          keyValues({
            trayUserId: result.entry?.trayUserId,
            authIds: result.entry?.authIds,
            instanceId: result.entry?.instanceId,
            status: result.entry?.status,
          }),
        ];
      },
      result.outcome !== 'failed',
    );
    return { exitCode: result.outcome === 'failed' ? EXIT.failures : EXIT.ok, data: result };
  });
}

/** AdminGetUser by sub; pools whose usernames are not the sub are searched by `sub = "…"` first. */
async function getUser(ctx: CliContext, userPoolId: string, sub: string): Promise<AdminGetUserCommandOutput> {
  try {
    return await ctx.cognito.send(new AdminGetUserCommand({ UserPoolId: userPoolId, Username: sub }));
  } catch (e) {
    if ((e as Error).name !== 'UserNotFoundException') throw e;
  }
  const found = await ctx.cognito.send(
    new ListUsersCommand({ UserPoolId: userPoolId, Filter: `sub = "${sub.replace(/["\\]/g, '')}"`, Limit: 1 }),
  );
  const username = found.Users?.[0]?.Username;
  if (!username) throw new CliError(`no user with sub ${sub} in ${userPoolId}; check SUB and --user-pool-id`, EXIT.failures);
  return ctx.cognito.send(new AdminGetUserCommand({ UserPoolId: userPoolId, Username: username }));
}
