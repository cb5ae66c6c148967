import type { Ledger, LedgerEntry } from './ledger.js';
import type { ImportPlan } from './plan.js';
import type { TrayClient } from './tray/client.js';

/**
 * The company's app's view of each user (issue #13, item 4): what the import recorded for a
 * user, and links that let the user open Tray's embedded UI for their own integration — the
 * config wizard of their solution instance, or the auth dialog of one auth slot.
 *
 * Pure functions over a Ledger, a TrayClient and the plan: no middy, no logger, no globals, so
 * the company's backend can call them from any handler:
 *
 *   import { createAppView } from 'tray-auth-import/app';   // package.json "exports"
 *   const app = createAppView({ ledger, tray, plan, userPoolId, embeddedId: 'acme' });
 *   res.redirect(303, (await app.configWizardUrl(sub)).url);
 *
 * The URLs carry a one-use authorization code (valid 5 minutes at Tray) that lets whoever holds
 * it act as the user in Tray's embedded UI: mint one per click, redirect at once, never store or
 * log it. The Tray client registers every code for redaction before returning it.
 */

/** Tray's embedded UI host per region (Tray's "Lifecycle operations" reference). */
export const TRAY_EMBEDDED_HOSTS = {
  us: 'embedded.tray.io',
  eu: 'embedded.eu1.tray.io',
  apac: 'embedded.ap1.tray.io',
} as const;

/** What the ledger says about one user: no Tray call. */
export type ImportStatus = Pick<
  LedgerEntry,
  | 'userPoolId'
  | 'sub'
  | 'status'
  | 'enabled'
  | 'trayUserId'
  | 'authIds'
  | 'instanceId'
  | 'company'
  | 'lastError'
  | 'createdAt'
  | 'updatedAt'
  | 'enabledAt'
>;

export type AppViewErrorCode = 'NOT_IMPORTED' | 'UNKNOWN_SLOT' | 'EMBEDDED_HOST_UNKNOWN' | 'INVALID_SETTING';

/** A failure of the app view; the message names what is missing and how to fix it (never a secret). */
export class AppViewError extends Error {
  constructor(
    readonly code: AppViewErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AppViewError';
  }
}

export interface AppViewOptions {
  ledger: Ledger;
  tray: TrayClient;
  plan: ImportPlan;
  /** The Cognito user pool whose users the ledger holds. */
  userPoolId: string;
  /** The partner's "Embedded ID" from Tray's Embedded settings (not part of the import plan). */
  embeddedId: string;
  /**
   * Host of Tray's embedded UI, e.g. "embedded.eu1.tray.io" or a white-labelled domain. Default:
   * from the plan's `tray.region`. Required when the plan sets `tray.graphqlUrl` instead, since
   * the GraphQL endpoint does not say which embedded host belongs to it.
   */
  embeddedHost?: string | undefined;
}

export interface WizardLink {
  /** Contains the one-use code: redirect the user to it at once; never log or store it. */
  url: string;
  /** When the code stops working (Tray: 5 minutes after minting). */
  expiresAt: string;
  trayUserId: string;
  solutionInstanceId: string;
}

export interface AuthDialogLink {
  url: string;
  expiresAt: string;
  trayUserId: string;
  slot: string;
}

/** Tray: "The code returned by this endpoint is single-use and expires after 5 minutes." */
export const AUTHORIZATION_CODE_TTL_MS = 5 * 60_000;

export interface AppView {
  getImportStatus(sub: string): Promise<ImportStatus | undefined>;
  configWizardUrl(sub: string): Promise<WizardLink>;
  authDialogUrl(sub: string, slot: string): Promise<AuthDialogLink>;
}

// The embedded id and host become parts of a URL: refuse anything that could change its shape.
const EMBEDDED_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:\d{1,5})?$/;

/**
 * Checks the settings the links are built from and answers the embedded host; createAppView
 * calls it, so a backend fails at start-up rather than on a user's click.
 */
export function checkLinkSettings(options: Pick<AppViewOptions, 'plan' | 'embeddedId' | 'embeddedHost'>): { host: string } {
  if (!EMBEDDED_ID.test(options.embeddedId)) {
    throw new AppViewError(
      'INVALID_SETTING',
      `embeddedId ${JSON.stringify(options.embeddedId)} is not a Tray Embedded ID: copy the "Embedded ID" from Tray's Embedded settings (letters, digits, "_", "-", ".")`,
    );
  }
  return { host: embeddedHost(options.plan, options.embeddedHost) };
}

export function createAppView(options: AppViewOptions): AppView {
  const { host } = checkLinkSettings(options);
  const now = () => Date.now();

  async function entryOf(sub: string): Promise<LedgerEntry | undefined> {
    return options.ledger.get({ userPoolId: options.userPoolId, sub });
  }

  /** The Tray user the code is minted for; fails naming the fix when the import has not got that far. */
  function requireTrayUser(sub: string, entry: LedgerEntry | undefined): string {
    if (!entry) {
      throw new AppViewError(
        'NOT_IMPORTED',
        `user ${sub} is not imported yet (no ledger entry in ${options.userPoolId}): wait for the import worker, or import now with \`npm run cli -- import-user ${sub} --plan FILE\``,
      );
    }
    if (!entry.trayUserId) {
      throw new AppViewError(
        'NOT_IMPORTED',
        `user ${sub} has no Tray user yet (import ${entry.status}${entry.lastError ? `, last error ${entry.lastError.code}` : ''}): see \`npm run cli -- status ${sub}\`, then \`import-user\` or \`redrive --user ${sub}\``,
      );
    }
    return entry.trayUserId;
  }

  return {
    getImportStatus: (sub) => getImportStatus(options, sub),

    async configWizardUrl(sub) {
      const entry = await entryOf(sub);
      const trayUserId = requireTrayUser(sub, entry);
      const solutionInstanceId = entry?.instanceId;
      if (!solutionInstanceId) {
        throw new AppViewError(
          'NOT_IMPORTED',
          `user ${sub} has no solution instance yet (import ${entry?.status ?? 'unknown'}): the config wizard opens an instance; see \`npm run cli -- status ${sub}\`, then \`import-user\` or \`redrive --user ${sub}\``,
        );
      }
      // Timed from before the request: Tray's 5 minutes start when it mints, which is no earlier.
      const expiresAt = new Date(now() + AUTHORIZATION_CODE_TTL_MS).toISOString();
      const code = await options.tray.generateAuthorizationCode(trayUserId);
      return { url: configWizardLink(host, options.embeddedId, solutionInstanceId, code), expiresAt, trayUserId, solutionInstanceId };
    },

    async authDialogUrl(sub, slot) {
      // The slot is checked first: a typo costs neither a ledger read nor a code.
      const auth = planAuth(options.plan, slot);
      const trayUserId = requireTrayUser(sub, await entryOf(sub));
      // Timed from before the request: Tray's 5 minutes start when it mints, which is no earlier.
      const expiresAt = new Date(now() + AUTHORIZATION_CODE_TTL_MS).toISOString();
      const code = await options.tray.generateAuthorizationCode(trayUserId);
      const url = authDialogLink(
        host,
        options.embeddedId,
        { serviceId: auth.serviceId, serviceEnvironmentId: auth.serviceEnvironmentId, scopes: auth.scopes ?? [] },
        code,
      );
      return { url, expiresAt, trayUserId, slot };
    },
  };
}

/** The plan's auth whose `externalId` is `slot` (exact: Tray's slot ids are case-sensitive); UNKNOWN_SLOT naming the valid ones otherwise. */
export function planAuth(plan: ImportPlan, slot: string): ImportPlan['auths'][number] {
  const auth = plan.auths.find((a) => a.externalId === slot);
  if (!auth) {
    const valid = plan.auths.map((a) => JSON.stringify(a.externalId)).join(', ');
    throw new AppViewError(
      'UNKNOWN_SLOT',
      `auth slot ${JSON.stringify(slot)} is not in the plan (ids are case-sensitive); valid slots: ${valid}`,
    );
  }
  return auth;
}

/** A user's import as the ledger records it, or undefined when the ledger has no entry (never enqueued, or not processed yet). No Tray call, no token needed. */
export async function getImportStatus(
  options: Pick<AppViewOptions, 'ledger' | 'userPoolId'>,
  sub: string,
): Promise<ImportStatus | undefined> {
  const entry = await options.ledger.get({ userPoolId: options.userPoolId, sub });
  return entry && importStatus(entry);
}

/** The ledger entry as the app needs it: leases, pending marks and attempt counts are the import's business. */
export function importStatus(entry: LedgerEntry): ImportStatus {
  const { userPoolId, sub, status, enabled, trayUserId, authIds, instanceId, company, lastError, createdAt, updatedAt, enabledAt } = entry;
  return { userPoolId, sub, status, enabled, trayUserId, authIds, instanceId, company, lastError, createdAt, updatedAt, enabledAt };
}

/** The embedded UI's host for a plan: the region's, or the one given (required with `tray.graphqlUrl`). */
export function embeddedHost(plan: ImportPlan, explicit?: string): string {
  if (explicit !== undefined) {
    if (!HOSTNAME.test(explicit)) {
      throw new AppViewError(
        'INVALID_SETTING',
        `embeddedHost ${JSON.stringify(explicit)} is not a host name: give only the host, e.g. "embedded.eu1.tray.io" (no "https://", no path)`,
      );
    }
    return explicit;
  }
  if (plan.tray.graphqlUrl !== undefined) {
    throw new AppViewError(
      'EMBEDDED_HOST_UNKNOWN',
      `the plan sets tray.graphqlUrl (${plan.tray.graphqlUrl}), which does not say which embedded UI host to use: pass embeddedHost (CLI: --embedded-host), e.g. "embedded.tray.io" (US), "embedded.eu1.tray.io" (EU) or "embedded.ap1.tray.io" (APAC)`,
    );
  }
  return TRAY_EMBEDDED_HOSTS[plan.tray.region ?? 'us'];
}

/** Tray's documented config wizard URL (Tray's "Lifecycle operations" reference). */
export function configWizardLink(host: string, embeddedId: string, solutionInstanceId: string, code: string): string {
  const url = new URL(
    `https://${host}/external/solutions/${encodeURIComponent(embeddedId)}/configure/${encodeURIComponent(solutionInstanceId)}`,
  );
  url.searchParams.set('code', code);
  return url.toString();
}

/**
 * Tray's auth-only dialog. Follows the shape in Tray's Embedded documentation ("Auth option 1:
 * … auth-only dialog", step 2a "Assemble the auth collection url"):
 *   https://embedded.tray.io/external/auth/create/{embeddedId}?code=…&serviceId=…&serviceEnvironmentId=…&scopes[]=…
 * with one `scopes[]` parameter per OAuth scope; public sample code builds it the same way. The
 * ids travel as query parameters, not path segments (/create/{embeddedId}/{serviceId}/… is not
 * in the docs). UNVERIFIED against a live Tray account, as is the regional host for this dialog
 * (assumed to be the config wizard's). Keep any change to the shape in this function.
 */
export function authDialogLink(
  host: string,
  embeddedId: string,
  auth: { serviceId: string; serviceEnvironmentId: string; scopes: readonly string[] },
  code: string,
): string {
  const url = new URL(`https://${host}/external/auth/create/${encodeURIComponent(embeddedId)}`);
  url.searchParams.set('code', code);
  url.searchParams.set('serviceId', auth.serviceId);
  url.searchParams.set('serviceEnvironmentId', auth.serviceEnvironmentId);
  for (const scope of auth.scopes) url.searchParams.append('scopes[]', scope);
  return url.toString();
}
