import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { asImportError, ImportError, type Step } from './errors.js';
import { type Ledger, type LedgerEntry, pendingKey, type UserKey } from './ledger.js';
import type { QueueMessage } from './message.js';
import type { ImportPlan } from './plan.js';
import { planVersion } from './plan-version.js';
import { type RenderedAuth, type RenderedImport, renderImport } from './render.js';
import { isFinal, withRetry } from './retry.js';
import type { SecretReader } from './secrets.js';
import type { TrayClient } from './tray/client.js';

/**
 * Tray's documented import for one user, exactly once over any number of deliveries:
 *   createExternalUser → authorize → createUserAuthentication (per auth)
 *   → createSolutionInstance (authValues, configValues) → wait ≥ 2 s → updateSolutionInstance(enabled: true)
 *
 * Each object's id is written to the ledger as soon as Tray returns it, and a `pending` mark —
 * holding exactly what identifies the object in the request (externalUserId or name) — is
 * written before each create. So a retry skips what is done, and where a create may have
 * happened without its id being recorded (timeout, 502 after commit, crash) it looks for
 * exactly what was sent and adopts it instead of creating a duplicate, even if the user's
 * attributes changed between the deliveries. A fresh user costs exactly the documented calls
 * and no look-ups; an enabled user costs no Tray call.
 */
export interface ImportDeps {
  plan: ImportPlan;
  tray: TrayClient;
  ledger: Ledger;
  secrets: SecretReader;
  /** How long this delivery may hold the user (the invocation's remaining time). */
  leaseMs: number;
  /** True on the last delivery SQS will make: a failure then is final. */
  lastAttempt?: boolean;
  /** Epoch ms by which this delivery must be done (Lambda deadline less a margin). */
  deadline?: number;
  /** Longest one Tray call may take (its timeout), to decide whether another attempt fits. */
  callTimeoutMs?: number;
  /** Tray's wait between createSolutionInstance and the enable (default TRAY_ENABLE_DELAY_MS). */
  enableDelayMs?: number;
  /** Ceiling of new Tray users per hour and pool; beyond it, users wait in the queue. */
  maxImportsPerHour?: number | undefined;
  onEvent?: (event: ImportEvent) => void;
}

export type ImportEvent =
  | { type: 'adopted'; object: 'user' | 'auth' | 'instance'; id: string; externalId?: string }
  | { type: 'created'; object: 'user' | 'auth' | 'instance'; id: string; externalId?: string }
  | { type: 'reauthorized' }
  | { type: 'waitedBeforeEnable'; ms: number }
  | { type: 'notReadyYet'; attempt: number };

/**
 * Tray's updateSolutionInstance reference: "If you are auto enabling the instances … delay this
 * enable mutation by at least 2 seconds after createSolutionInstance is complete."
 */
export const TRAY_ENABLE_DELAY_MS = 2_000;
/**
 * An enable refused (or answered not enabled) this soon after the create is Tray not being
 * ready yet, not a verdict on the instance: it is retried. Later, it is final.
 */
export const ENABLE_SETTLE_WINDOW_MS = 20_000;
const NOT_READY_RETRY_MS = 1_000;
const NOT_READY_ATTEMPTS = 4;
/** A user is started only with at least this much time left (a few Tray calls' worth). */
const MIN_TIME_TO_START_MS = 3_000;

export type ImportOutcome =
  | { outcome: 'enabled' | 'alreadyEnabled'; entry: LedgerEntry }
  /** The user was deleted and offboarded before this message ran: nothing to import. */
  | { outcome: 'offboarded'; entry: LedgerEntry }
  /**
   * Not started: the user was left untouched (no lease, no Tray call), so this delivery is not
   * an attempt. The worker puts the message back for `retryInMs` without counting it.
   */
  | { outcome: 'deferred'; error: ImportError; retryInMs: number };

export async function importUser(message: QueueMessage, deps: ImportDeps): Promise<ImportOutcome> {
  const key: UserKey = { userPoolId: message.userPoolId, sub: message.sub };
  const info = { username: message.username, email: message.attributes.email, source: message.source, attributes: message.attributes };

  // A stale message of a user already done costs nothing, whatever its content says: the
  // ledger is read before anything that can fail on the message.
  const existing = await deps.ledger.get(key);
  if (existing?.status === 'enabled') return { outcome: 'alreadyEnabled', entry: existing };
  if (existing?.status === 'offboarded') return { outcome: 'offboarded', entry: existing };

  let rendered: RenderedImport;
  try {
    rendered = renderImport(deps.plan, message);
  } catch (e) {
    const error = asImportError(e, 'plan');
    // The user gets an entry with the reason: status shows it and reconcile skips it unless asked.
    await deps.ledger.recordRejected(key, info, error).catch(() => undefined);
    throw error;
  }

  if (deps.plan.trayUserPer === 'user') return importInto(key, info, rendered, deps);

  // One Tray user per company: the company's entry holds the Tray objects and its lease makes
  // the company's sign-ups take turns; each member's own entry then points at them.
  const companyKey = companyLedgerKey(key.userPoolId, rendered.externalUserId);
  try {
    const company = await importInto(companyKey, { username: rendered.externalUserId, source: message.source }, rendered, deps);
    if (company.outcome === 'deferred') return company;
    const member = await deps.ledger.recordMember(key, info, company.entry);
    // Offboarded while the company's import ran: the member stays offboarded.
    return member.status === 'offboarded' ? { outcome: 'offboarded', entry: member } : { outcome: company.outcome, entry: member };
  } catch (e) {
    const error = asImportError(e, 'ledger');
    if (isFinal(error, deps.lastAttempt === true)) await deps.ledger.recordRejected(key, info, error).catch(() => undefined);
    throw error;
  }
}

/**
 * The ledger key of a company's shared Tray objects (per-company plans): a partition of its own,
 * so that listing a pool's users (status, backfill, reconcile) never mistakes a company for a user.
 */
export function companyLedgerKey(userPoolId: string, externalUserId: string): UserKey {
  return { userPoolId: `${userPoolId}#company`, sub: externalUserId };
}

async function importInto(
  key: UserKey,
  info: Parameters<Ledger['acquire']>[3],
  rendered: RenderedImport,
  deps: ImportDeps,
): Promise<ImportOutcome> {
  if (deps.deadline !== undefined && deps.deadline - Date.now() < MIN_TIME_TO_START_MS) {
    // Too late in the invocation to import anyone: hand the message back without taking the user.
    const error = new ImportError(
      'OUT_OF_TIME',
      'ledger',
      'not enough time left in this invocation to start the import; it will be retried',
    );
    return { outcome: 'deferred', error, retryInMs: 0 };
  }

  const owner = randomUUID();
  let lease: Awaited<ReturnType<Ledger['acquire']>>;
  try {
    lease = await deps.ledger.acquire(key, owner, deps.leaseMs, info);
  } catch (e) {
    const error = asImportError(e, 'ledger');
    if (error.code !== 'USER_BUSY') throw error;
    // Another delivery (a duplicate, or a company's other sign-up) is working on it: try again
    // once its lease is over. This delivery did nothing, so it is not an attempt.
    return { outcome: 'deferred', error, retryInMs: await deps.ledger.busyRetryMs(key) };
  }
  if (lease.kind === 'done') return { outcome: 'alreadyEnabled', entry: lease.entry };
  if (lease.kind === 'offboarded') return { outcome: 'offboarded', entry: lease.entry };

  // A user not yet begun in Tray takes one of the hour's slots first; beyond the ceiling it waits
  // in the queue (deferred, not an attempt), so a sign-up flood cannot mint billable users unseen.
  const fresh = !lease.entry.trayUserId && !lease.entry.pending[pendingKey.user];
  if (fresh && deps.maxImportsPerHour !== undefined) {
    const slot = await deps.ledger.takeImportSlot(key.userPoolId.split('#')[0] as string, deps.maxImportsPerHour);
    if (!slot.taken) {
      await deps.ledger.release(key, owner).catch(() => undefined);
      const error = new ImportError(
        'IMPORT_CEILING',
        'ledger',
        `this hour's ceiling of ${deps.maxImportsPerHour} new Tray users (MAX_IMPORTS_PER_HOUR) is reached; the user waits in the queue`,
      );
      return { outcome: 'deferred', error, retryInMs: slot.retryInMs };
    }
  }

  const run = new UserImport(deps, key, owner, rendered, lease.entry);
  try {
    return { outcome: 'enabled', entry: await run.execute() };
  } catch (e) {
    const error = asImportError(e, 'ledger');
    if (error.code !== 'USER_BUSY') {
      await deps.ledger.recordFailure(key, owner, error, isFinal(error, deps.lastAttempt === true)).catch(() => {
        // The ledger is unreachable too; SQS still holds the message, so nothing is lost.
      });
    }
    throw error;
  }
}

/** What a pending mark says was sent; a mark of an older version (a timestamp) says nothing. */
function sentIn(mark: LedgerEntry['pending'][string] | undefined, renderedNow: string): string {
  return typeof mark === 'object' ? mark.sent : renderedNow;
}

class UserImport {
  private userToken: string | undefined;

  constructor(
    private readonly deps: ImportDeps,
    private readonly key: UserKey,
    private readonly owner: string,
    private readonly rendered: RenderedImport,
    private entry: LedgerEntry,
  ) {}

  async execute(): Promise<LedgerEntry> {
    const trayUserId = await this.again('createExternalUser', () => this.ensureTrayUser());
    this.userToken = await this.deps.tray.authorize(trayUserId);
    for (const auth of this.rendered.auths) await this.again('createUserAuthentication', () => this.ensureAuth(auth));
    const instanceId = await this.again('createSolutionInstance', () => this.ensureInstance());
    await this.enable(instanceId);
    return this.deps.ledger.recordEnabled(this.key, this.owner, planVersion(this.deps.plan));
  }

  private async ensureTrayUser(): Promise<string> {
    if (this.entry.trayUserId) return this.entry.trayUserId;
    const { tray, ledger } = this.deps;
    const mark = this.entry.pending[pendingKey.user];
    if (mark) {
      const sent = sentIn(mark, this.rendered.externalUserId);
      // Tray's search need not be exact: adopt only a user whose externalUserId is exactly the
      // one this user's create sent, or one user's retry could adopt another user's account.
      const found = (await tray.findUsersByExternalUserId(sent)).find((u) => u.externalUserId === sent);
      if (found) {
        this.entry = await ledger.recordTrayUser(this.key, this.owner, found.id);
        this.emit({ type: 'adopted', object: 'user', id: found.id });
        return found.id;
      }
    }
    const externalUserId = this.rendered.externalUserId;
    this.entry = await ledger.markPending(this.key, this.owner, pendingKey.user, externalUserId);
    const id = await tray.createExternalUser({ name: this.rendered.userName, externalUserId, isTestUser: this.deps.plan.isTestUser });
    this.entry = await ledger.recordTrayUser(this.key, this.owner, id);
    this.emit({ type: 'created', object: 'user', id });
    return id;
  }

  private async ensureAuth(auth: RenderedAuth): Promise<void> {
    const externalId = auth.plan.externalId;
    if (this.entry.authIds[externalId]) return;
    const { tray, ledger } = this.deps;
    const pending = pendingKey.auth(externalId);
    const mark = this.entry.pending[pending];
    if (mark) {
      const sent = sentIn(mark, auth.name);
      const auths = await this.asUser((token) => tray.listAuthentications(token));
      // An auth already recorded for another slot is never adopted twice.
      const taken = new Set(Object.values(this.entry.authIds));
      const found = auths.find(
        (a) =>
          !taken.has(a.id) &&
          a.name === sent &&
          (a.service?.id === undefined || a.service.id === auth.plan.serviceId) &&
          (a.serviceEnvironment?.id === undefined || a.serviceEnvironment.id === auth.plan.serviceEnvironmentId),
      );
      if (found) {
        this.entry = await ledger.recordAuth(this.key, this.owner, externalId, found.id);
        this.emit({ type: 'adopted', object: 'auth', id: found.id, externalId });
        return;
      }
    }
    const data = await this.credentials(auth);
    this.entry = await ledger.markPending(this.key, this.owner, pending, auth.name);
    const id = await this.asUser((token) =>
      tray.createUserAuthentication(token, {
        name: auth.name,
        serviceId: auth.plan.serviceId,
        serviceEnvironmentId: auth.plan.serviceEnvironmentId,
        data,
        formData: auth.plan.formData,
        scopes: auth.plan.scopes,
        hidden: auth.plan.hidden,
      }),
    );
    this.entry = await ledger.recordAuth(this.key, this.owner, externalId, id);
    this.emit({ type: 'created', object: 'auth', id, externalId });
  }

  private async ensureInstance(): Promise<string> {
    if (this.entry.instanceId) return this.entry.instanceId;
    const { tray, ledger, plan } = this.deps;
    const mark = this.entry.pending[pendingKey.instance];
    if (mark) {
      const sent = sentIn(mark, this.rendered.instanceName);
      const instances = await this.asUser((token) => tray.listSolutionInstances({ kind: 'user', token }, { solutionId: plan.solutionId }));
      const found = instances.find((i) => (i.solution?.id ?? plan.solutionId) === plan.solutionId && i.name === sent);
      if (found) {
        // Tray's own creation time, when it gives one, so that the wait before enabling is not paid twice.
        const created = found.created ? Date.parse(found.created) : Number.NaN;
        this.entry = await ledger.recordInstance(
          this.key,
          this.owner,
          found.id,
          Number.isFinite(created) ? Math.min(created, Date.now()) : Date.now(),
        );
        this.emit({ type: 'adopted', object: 'instance', id: found.id });
        return found.id;
      }
    }
    const instanceName = this.rendered.instanceName;
    this.entry = await ledger.markPending(this.key, this.owner, pendingKey.instance, instanceName);
    const instance = await this.asUser((token) =>
      tray.createSolutionInstance(token, {
        solutionId: plan.solutionId,
        instanceName,
        authValues: this.authValues(),
        configValues: this.rendered.configValues,
      }),
    );
    this.entry = await ledger.recordInstance(this.key, this.owner, instance.id, Date.now());
    this.emit({ type: 'created', object: 'instance', id: instance.id });
    return instance.id;
  }

  /**
   * Enables the instance with the plan's current values (an instance that could not be enabled
   * heals once the plan is fixed and the user redriven), no sooner than Tray's delay after the
   * create completed. The wait is counted from the create recorded in the ledger, so a retry
   * after a crash does not wait again once the time has passed. Other records of the batch use
   * the wait: only this user's turn waits, never the worker.
   */
  private async enable(instanceId: string): Promise<void> {
    const values = { authValues: this.authValues(), configValues: this.rendered.configValues };
    for (let attempt = 1; ; attempt++) {
      await this.waitUntilEnableAllowed();
      let failure: ImportError;
      try {
        const answer = await this.asUser((token) => this.deps.tray.enableSolutionInstance(token, instanceId, values));
        if (answer.enabled) return;
        failure = new ImportError(
          'TRAY_REJECTED',
          'enableSolutionInstance',
          `Tray answered the enable of instance ${instanceId} without enabling it; check the solution's required slots`,
        );
      } catch (e) {
        failure = asImportError(e, 'enableSolutionInstance');
      }
      const settling =
        failure.code === 'TRAY_NOT_READY' || (failure.code === 'TRAY_REJECTED' && this.sinceCreateMs() < ENABLE_SETTLE_WINDOW_MS);
      if (!settling) throw failure;
      const notReady =
        failure.code === 'TRAY_NOT_READY'
          ? failure
          : new ImportError(
              'TRAY_NOT_READY',
              'enableSolutionInstance',
              `Tray did not enable instance ${instanceId} yet, ${Math.round(this.sinceCreateMs() / 100) / 10} s after its creation: ${failure.message}`,
            );
      const deadline = this.deps.deadline ?? Number.POSITIVE_INFINITY;
      if (attempt >= NOT_READY_ATTEMPTS || Date.now() + NOT_READY_RETRY_MS + (this.deps.callTimeoutMs ?? 10_000) > deadline) throw notReady;
      this.emit({ type: 'notReadyYet', attempt });
      await sleep(NOT_READY_RETRY_MS);
    }
  }

  private sinceCreateMs(): number {
    return Date.now() - (this.entry.instanceCreatedAt ?? 0);
  }

  private async waitUntilEnableAllowed(): Promise<void> {
    const wait = (this.deps.enableDelayMs ?? TRAY_ENABLE_DELAY_MS) - this.sinceCreateMs();
    if (wait <= 0) return;
    if (Date.now() + wait + 1_000 > (this.deps.deadline ?? Number.POSITIVE_INFINITY)) {
      throw new ImportError(
        'OUT_OF_TIME',
        'enableSolutionInstance',
        `not enough time left in this invocation to wait ${wait} ms before enabling (Tray's rule); it will be retried`,
      );
    }
    this.emit({ type: 'waitedBeforeEnable', ms: wait });
    await sleep(wait);
  }

  private authValues(): { externalId: string; authId: string }[] {
    return this.rendered.auths.map((a) => ({ externalId: a.plan.externalId, authId: this.entry.authIds[a.plan.externalId] as string }));
  }

  /**
   * Credential fields: literals, attributes, or read from Secrets Manager (the reader registers
   * those values as secrets; literals and attributes are not secret: they sit in the plan and
   * in queue messages).
   */
  private async credentials(auth: RenderedAuth): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const [field, source] of Object.entries(auth.data)) {
      out[field] = 'value' in source ? source.value : await this.deps.secrets.field(source.secretId, source.field);
    }
    return out;
  }

  /**
   * Runs an ensure-step again after an *ambiguous* create failure (timeout, 5xx): the pending
   * mark is in the ledger, so the next attempt looks the object up before creating it again.
   * Other transient failures were already retried by the client; they go back to SQS.
   */
  private again<T>(step: Step, ensure: () => Promise<T>): Promise<T> {
    return withRetry(
      step,
      {
        maxAttempts: 4,
        baseDelayMs: 200,
        maxDelayMs: 2_000,
        deadline: this.deps.deadline ?? Number.POSITIVE_INFINITY,
        attemptBudgetMs: (this.deps.callTimeoutMs ?? 10_000) * 2,
        shouldRetry: (error) => error.ambiguous,
      },
      ensure,
    );
  }

  /** Runs a user-token call; a user token refused (expired, revoked) is minted again, once. */
  private async asUser<T>(call: (token: string) => Promise<T>): Promise<T> {
    try {
      return await call(this.userToken as string);
    } catch (e) {
      if (!(e instanceof ImportError) || e.code !== 'TRAY_UNAUTHORIZED') throw e;
      this.userToken = await this.deps.tray.authorize(this.entry.trayUserId as string);
      this.emit({ type: 'reauthorized' });
      return call(this.userToken);
    }
  }

  private emit(event: ImportEvent): void {
    this.deps.onEvent?.(event);
  }
}
