import { AdminGetUserCommand } from '@aws-sdk/client-cognito-identity-provider';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { ImportError } from '../../shared/errors.js';
import type { Ledger, LedgerEntry } from '../../shared/ledger.js';
import { buildLifecycleMessage, type LifecycleMessage } from '../../shared/lifecycle/message.js';
import { offboardUser } from '../../shared/lifecycle/offboard.js';
import { COGNITO_SUB } from '../../shared/message.js';
import type { ImportPlan, OffboardPolicy } from '../../shared/plan.js';
import { SecretReader } from '../../shared/secrets.js';
import { userAttributes } from '../cognito-users.js';
import { type CliContext, type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { CliError, EXIT, UsageError } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';
import type { MasterTokenOptions } from '../toolkit/master-token.js';
import { emit, note, table } from '../toolkit/output.js';
import { progress } from '../toolkit/progress.js';

/**
 * `offboard SUB…`: the users' Tray footprint handled per the plan's offboarding policy, as the
 * worker does when Cognito reports a deletion. By default an offboard message per user goes on
 * the import queue (the worker takes turns with any import in flight); `--now` runs the worker's
 * own workflow in this process; `--dry-run` shows what the policy would remove, from the ledger.
 *
 * `offboard --deleted`: the catch-all for deletions the events missed (CloudTrail not delivered,
 * username hidden, function failure): every user of the ledger not offboarded yet whose Cognito
 * user no longer exists (AdminGetUser: UserNotFoundException, or the username now belongs to
 * someone else) gets an offboard message. AdminGetUser calls are paced (--rate).
 */
export interface OffboardOptions extends GlobalOptions, MasterTokenOptions {
  userPoolId?: string;
  plan?: string;
  table?: string;
  queueUrl?: string;
  now?: boolean;
  deleted?: boolean;
  /** AdminGetUser calls per second for --deleted. */
  rate?: number;
  dryRun?: boolean;
}

export interface OffboardRow {
  sub: string;
  username?: string | undefined;
  outcome: 'enqueued' | 'offboarded' | 'skipped' | 'failed' | 'wouldOffboard' | 'alreadyOffboarded' | 'notInLedger';
  policy?: OffboardPolicy | undefined;
  /** --dry-run: the Tray objects the policy would remove (remove) or disable (disable). */
  wouldRemove?: { instanceId?: string | undefined; authIds: Record<string, string>; trayUserId?: string | undefined } | undefined;
  wouldDisable?: string | undefined;
  detail?: string | undefined;
  error?: ReturnType<ImportError['toJSON']> | undefined;
}

export interface OffboardResult {
  mode: 'enqueue' | 'now';
  dryRun: boolean;
  deleted: boolean;
  /** --deleted: users checked in Cognito. */
  checked?: number | undefined;
  users: OffboardRow[];
}

const LEASE_MS = 5 * 60_000;
const RUN_MARGIN_MS = 60_000;
/** AdminGetUser is in Cognito's UserRead category: a modest default leaves room for the app's own calls. */
const DEFAULT_RATE = 10;

export async function runOffboard(subs: string[], options: OffboardOptions, deps?: CliDeps): Promise<CommandResult<OffboardResult>> {
  if (options.deleted && subs.length > 0) throw new UsageError('pass either SUB… or --deleted, not both');
  if (!options.deleted && subs.length === 0)
    throw new UsageError("offboard needs the users' subs (`offboard SUB [SUB…]`) or --deleted (users deleted from Cognito)");
  const bad = subs.filter((s) => !COGNITO_SUB.test(s));
  if (bad.length > 0) throw new UsageError(`not a Cognito sub (a UUID): ${bad.join(', ')}; pass each user's sub, as \`status\` shows it`);
  if (options.now && options.dryRun) throw new UsageError('--now and --dry-run exclude each other');
  if (options.rate !== undefined && !(options.rate > 0))
    throw new UsageError('--rate must be a positive number of AdminGetUser calls per second');

  return withContext(options, deps, async (ctx) => {
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const ledger = await ctx.ledger(options.table);
    const needsPlan = options.now || options.dryRun;
    const plan = needsPlan ? loadPlan(options.plan) : undefined;
    const result: OffboardResult = {
      mode: options.now ? 'now' : 'enqueue',
      dryRun: options.dryRun === true,
      deleted: options.deleted === true,
      users: [],
    };

    let targets: { sub: string; username?: string | undefined; entry?: LedgerEntry | undefined }[];
    if (options.deleted) {
      const found = await deletedUsers(ctx, ledger, userPoolId, options.rate ?? DEFAULT_RATE);
      result.checked = found.checked;
      targets = found.deleted.map((entry) => ({ sub: entry.sub, username: entry.username, entry }));
    } else {
      targets = [];
      for (const sub of [...new Set(subs)]) {
        const entry = await ledger.get({ userPoolId, sub });
        targets.push({ sub, username: entry?.username, entry });
      }
    }

    const bar = progress(ctx.io, options.dryRun ? 'checking' : options.now ? 'offboarding' : 'enqueueing', targets.length);
    try {
      for (const target of targets) {
        if (ctx.aborted) break;
        result.users.push(await offboardOne(ctx, options, userPoolId, ledger, plan, target));
        bar.increment();
      }
    } finally {
      bar.stop();
    }

    const failed = result.users.filter((u) => u.outcome === 'failed');
    emit(
      ctx.io,
      ctx.json,
      result,
      () => {
        const lines: string[] = [];
        if (options.deleted) lines.push(`${result.checked ?? 0} ledger users checked in Cognito; ${targets.length} no longer exist there`);
        if (result.users.length > 0) {
          lines.push(
            table(result.users, [
              ['sub', (u) => u.sub],
              ['username', (u) => u.username ?? ''],
              ['outcome', (u) => u.outcome],
              ['policy', (u) => u.policy ?? ''],
              ['detail', (u) => (u.error ? `${u.error.code}: ${u.error.message}` : (u.detail ?? describeWould(u)))],
            ]),
          );
        }
        if (options.dryRun) lines.push('dry run: nothing was sent and nothing changed');
        return lines;
      },
      failed.length === 0,
    );
    return { exitCode: failed.length > 0 ? EXIT.failures : EXIT.ok, data: result };
  });
}

async function offboardOne(
  ctx: CliContext,
  options: OffboardOptions,
  userPoolId: string,
  ledger: Ledger,
  plan: ImportPlan | undefined,
  target: { sub: string; username?: string | undefined; entry?: LedgerEntry | undefined },
): Promise<OffboardRow> {
  const { sub, username, entry } = target;
  if (entry?.status === 'offboarded') {
    return {
      sub,
      username,
      outcome: 'alreadyOffboarded',
      policy: entry.offboard?.policy,
      detail: `offboarded at ${entry.offboardedAt ?? '?'}`,
    };
  }
  if (options.dryRun) return wouldDo(sub, username, entry, plan as ImportPlan);
  const message = buildLifecycleMessage({ kind: 'offboard', userPoolId, sub, ...(username ? { username } : {}), source: 'operator' });
  if (!options.now) {
    const queueUrl = await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
    await ctx.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(message) }));
    return { sub, username, outcome: 'enqueued' };
  }
  return runNow(ctx, options, ledger, plan as ImportPlan, message);
}

/** The worker's workflow in this process (like `import-user`): same ledger, same lease, same steps. */
async function runNow(
  ctx: CliContext,
  options: OffboardOptions,
  ledger: Ledger,
  plan: ImportPlan,
  message: LifecycleMessage,
): Promise<OffboardRow> {
  const { tray: untimed } = await ctx.trayClient(plan, options);
  const deadline = Date.now() + LEASE_MS - RUN_MARGIN_MS;
  const row: OffboardRow = { sub: message.sub, username: message.username, outcome: 'failed' };
  try {
    const out = await offboardUser(message, {
      plan,
      tray: untimed.withDeadline(deadline),
      ledger,
      secrets: new SecretReader({ client: ctx.secretsManager }),
      leaseMs: LEASE_MS,
      deadline,
      onEvent: (event) => {
        if (!ctx.json) note(ctx.io, `  ${message.sub}: ${JSON.stringify(event)}`);
      },
    });
    if (out.outcome === 'deferred') throw out.error;
    row.outcome = out.outcome === 'done' ? 'offboarded' : 'skipped';
    row.policy = out.entry?.offboard?.policy;
    row.detail = out.outcome === 'done' ? out.detail : out.reason;
  } catch (e) {
    if (!(e instanceof ImportError)) throw e;
    row.error = e.toJSON();
  }
  return row;
}

function wouldDo(sub: string, username: string | undefined, entry: LedgerEntry | undefined, plan: ImportPlan): OffboardRow {
  if (!entry)
    return {
      sub,
      username,
      outcome: 'notInLedger',
      detail: 'not imported: an offboarded entry would be recorded, so that its import is skipped',
    };
  const member = plan.trayUserPer === 'company' || entry.company !== undefined;
  const policy: OffboardPolicy = member ? 'keep' : (entry.offboard?.policy ?? plan.offboarding.policy);
  const row: OffboardRow = { sub, username: username ?? entry.username, outcome: 'wouldOffboard', policy };
  if (member) row.detail = "company member: the company's shared Tray objects stay";
  if (policy === 'remove') row.wouldRemove = { instanceId: entry.instanceId, authIds: entry.authIds, trayUserId: entry.trayUserId };
  if (policy === 'disable') row.wouldDisable = entry.instanceId;
  const pending = Object.keys(entry.pending);
  if (pending.length > 0 && policy !== 'keep') row.detail = `also looks up what a crashed import may have created (${pending.join(', ')})`;
  return row;
}

function describeWould(u: OffboardRow): string {
  if (u.wouldRemove) {
    const parts = [
      u.wouldRemove.instanceId ? `instance ${u.wouldRemove.instanceId}` : undefined,
      ...Object.entries(u.wouldRemove.authIds).map(([slot, id]) => `auth ${id} (${slot})`),
      u.wouldRemove.trayUserId ? `Tray user ${u.wouldRemove.trayUserId}` : undefined,
    ].filter(Boolean);
    return parts.length > 0 ? `would remove ${parts.join(', ')}` : 'nothing in Tray';
  }
  if (u.wouldDisable) return `would disable instance ${u.wouldDisable}`;
  return u.outcome === 'wouldOffboard' ? 'no change in Tray' : '';
}

/** Ledger users (not offboarded) whose Cognito user is gone, or whose username now names someone else. */
async function deletedUsers(
  ctx: CliContext,
  ledger: Ledger,
  userPoolId: string,
  rate: number,
): Promise<{ checked: number; deleted: LedgerEntry[] }> {
  const deleted: LedgerEntry[] = [];
  let checked = 0;
  const bar = progress(ctx.io, 'checking Cognito');
  try {
    for await (const entry of ledger.entries(userPoolId)) {
      if (ctx.aborted) break;
      if (entry.status === 'offboarded') continue;
      if (checked > 0) await ctx.sleep(1_000 / rate);
      checked++;
      bar.increment();
      try {
        const user = await ctx.cognito.send(new AdminGetUserCommand({ UserPoolId: userPoolId, Username: entry.username }));
        const sub = userAttributes(user.UserAttributes).sub;
        if (sub !== undefined && sub !== entry.sub) deleted.push(entry);
      } catch (e) {
        if ((e as Error).name === 'UserNotFoundException') deleted.push(entry);
        else throw e;
      }
    }
  } finally {
    bar.stop();
  }
  if (ctx.aborted) throw new CliError('interrupted: nothing was enqueued; run it again', EXIT.failures);
  return { checked, deleted };
}
