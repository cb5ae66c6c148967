import {
  AppViewError,
  type AuthDialogLink,
  checkLinkSettings,
  createAppView,
  getImportStatus,
  type ImportStatus,
  planAuth,
  type WizardLink,
} from '../../shared/app-view.js';
import { scrub } from '../../shared/redact.js';
import { type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';
import type { MasterTokenOptions } from '../toolkit/master-token.js';
import { emit, type Io, keyValues, note } from '../toolkit/output.js';

/**
 * The CLI side of shared/app-view.ts: what the company's app sees of a user (`app-status`), and
 * the link that opens Tray's config wizard or auth dialog for them (`wizard-url`), e.g. for a
 * support call. The link holds a one-use code: it goes to stdout only, never to stderr or logs.
 */
export interface AppStatusOptions extends GlobalOptions {
  userPoolId?: string;
  table?: string;
}

export interface AppStatusResult {
  found: boolean;
  status: ImportStatus | undefined;
}

export async function runAppStatus(sub: string, options: AppStatusOptions, deps?: CliDeps): Promise<CommandResult<AppStatusResult>> {
  if (!sub) throw new CliError("app-status needs the user's sub: `app-status SUB --user-pool-id ID`");
  return withContext(options, deps, async (ctx) => {
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const ledger = await ctx.ledger(options.table);
    const status = await getImportStatus({ ledger, userPoolId }, sub);
    const data: AppStatusResult = { found: status !== undefined, status };
    emit(
      ctx.io,
      ctx.json,
      data,
      () =>
        status
          ? keyValues({
              sub: status.sub,
              status: status.status,
              enabled: status.enabled,
              trayUserId: status.trayUserId,
              authIds: Object.keys(status.authIds).length ? status.authIds : undefined,
              instanceId: status.instanceId,
              company: status.company,
              lastError: status.lastError
                ? `${status.lastError.code} at ${status.lastError.step} (${status.lastError.at}): ${status.lastError.message}`
                : undefined,
              updatedAt: status.updatedAt,
            })
          : `no ledger entry for sub ${sub} in ${userPoolId}: not imported yet (see \`status\`, \`import-user\`)`,
      status !== undefined,
    );
    return { exitCode: status ? EXIT.ok : EXIT.failures, data };
  });
}

export interface WizardUrlOptions extends GlobalOptions, MasterTokenOptions {
  userPoolId?: string;
  table?: string;
  plan?: string;
  /** An auth slot's externalId: the auth dialog of that slot instead of the config wizard. */
  slot?: string;
  embeddedId?: string;
  embeddedHost?: string;
}

export type WizardUrlResult = { sub: string } & (({ kind: 'configWizard' } & WizardLink) | ({ kind: 'authDialog' } & AuthDialogLink));

export async function runWizardUrl(sub: string, options: WizardUrlOptions, deps?: CliDeps): Promise<CommandResult<WizardUrlResult>> {
  if (!sub) throw new CliError("wizard-url needs the user's sub: `wizard-url SUB --plan FILE --embedded-id ID`");
  return withContext(options, deps, async (ctx) => {
    const embeddedId = options.embeddedId ?? ctx.env.TRAY_EMBEDDED_ID?.trim();
    if (!embeddedId)
      throw new CliError(
        "wizard-url needs your Tray Embedded ID (Tray's Embedded settings): pass --embedded-id ID or set TRAY_EMBEDDED_ID",
      );
    const plan = loadPlan(options.plan);
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const ledger = await ctx.ledger(options.table);
    let data: WizardUrlResult;
    try {
      // Checked before the master token is read: a wrong flag fails without touching secrets.
      checkLinkSettings({ plan, embeddedId, embeddedHost: options.embeddedHost });
      if (options.slot !== undefined) planAuth(plan, options.slot);
      const { tray } = await ctx.trayClient(plan, options);
      const view = createAppView({ ledger, tray, plan, userPoolId, embeddedId, embeddedHost: options.embeddedHost });
      data =
        options.slot !== undefined
          ? { sub, kind: 'authDialog', ...(await view.authDialogUrl(sub, options.slot)) }
          : { sub, kind: 'configWizard', ...(await view.configWizardUrl(sub)) };
    } catch (e) {
      throw asCliError(e);
    }
    printWithUrl(ctx.io, ctx.json, data);
    note(ctx.io, `one-use link for ${sub}, valid until ${data.expiresAt} (5 minutes): open it now; do not paste it into tickets or chats`);
    return { exitCode: EXIT.ok, data };
  });
}

/** The app view's errors as CLI errors: a user not imported is a failure (1), a wrong flag a usage error (2). */
function asCliError(e: unknown): unknown {
  if (!(e instanceof AppViewError)) return e;
  const flagged =
    e.code === 'EMBEDDED_HOST_UNKNOWN' ? e.message.replace('pass embeddedHost (CLI: --embedded-host)', 'pass --embedded-host') : e.message;
  return new CliError(flagged, e.code === 'NOT_IMPORTED' ? EXIT.failures : EXIT.usage);
}

/**
 * Like emit(), but the URL is written as is: emit() scrubs registered secrets, and the code in the
 * URL is one (so that it never reaches a log). Everything else in the document is still scrubbed.
 */
function printWithUrl(io: Io, json: boolean | undefined, data: WizardUrlResult): void {
  if (!json) {
    io.out(`${data.url}\n`);
    return;
  }
  const placeholder = '\u0000url\u0000';
  const text = scrub(JSON.stringify({ ok: true, ...data, url: placeholder }, null, 2));
  io.out(`${text.replace(JSON.stringify(placeholder), JSON.stringify(data.url))}\n`);
}
