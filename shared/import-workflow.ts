import { randomUUID } from 'node:crypto';
import { asImportError, ImportError, type Step } from './errors.js';
import { pendingKey, type Ledger, type LedgerEntry, type UserKey } from './ledger.js';
import type { QueueMessage } from './message.js';
import type { ImportPlan } from './plan.js';
import { withRetry } from './retry.js';
import { renderImport, type RenderedAuth, type RenderedImport } from './render.js';
import type { SecretReader } from './secrets.js';
import type { TrayClient } from './tray/client.js';
import type { TrayAuthentication } from './tray/operations.js';

/**
 * Tray's documented import for one user, exactly once over any number of deliveries:
 *   createExternalUser → authorize → createUserAuthentication (per auth)
 *   → createSolutionInstance (authValues, configValues) → updateSolutionInstance(enabled: true)
 *
 * Each object's id is written to the ledger as soon as Tray returns it, and a `pending` mark is
 * written before each create. So a retry skips what is done, and where a create may have
 * happened without its id being recorded (timeout, 502 after commit, crash) it looks the object
 * up in Tray and adopts it instead of creating a duplicate. A fresh user costs exactly the
 * documented calls and no look-ups; an enabled user costs no Tray call.
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
  onEvent?: (event: ImportEvent) => void;
}

export type ImportEvent =
  | { type: 'adopted'; object: 'user' | 'auth' | 'instance'; id: string; externalId?: string }
  | { type: 'created'; object: 'user' | 'auth' | 'instance'; id: string; externalId?: string }
  | { type: 'reauthorized' };

/** A user is started only with at least this much time left (a few Tray calls' worth). */
const MIN_TIME_TO_START_MS = 3_000;

export type ImportOutcome = { outcome: 'enabled' | 'alreadyEnabled'; entry: LedgerEntry };

export async function importUser(message: QueueMessage, deps: ImportDeps): Promise<ImportOutcome> {
  // Fails before any Tray call or ledger write when the user lacks what the plan needs.
  const rendered = renderImport(deps.plan, message);
  const key: UserKey = { userPoolId: message.userPoolId, sub: message.sub };

  const existing = await deps.ledger.get(key);
  if (existing?.status === 'enabled') return { outcome: 'alreadyEnabled', entry: existing };
  if (deps.deadline !== undefined && deps.deadline - Date.now() < MIN_TIME_TO_START_MS) {
    // Too late in the invocation to import anyone: hand the message back without taking the user.
    throw new ImportError('OUT_OF_TIME', 'ledger', 'not enough time left in this invocation to start the import; it will be retried');
  }

  const owner = randomUUID();
  const lease = await deps.ledger.acquire(key, owner, deps.leaseMs, { username: message.username, email: message.attributes.email, source: message.source });
  if (lease.kind === 'done') return { outcome: 'alreadyEnabled', entry: lease.entry };

  const run = new UserImport(deps, key, owner, rendered, lease.entry);
  try {
    return { outcome: 'enabled', entry: await run.execute() };
  } catch (e) {
    const error = asImportError(e, 'ledger');
    if (error.code !== 'USER_BUSY') {
      await deps.ledger.recordFailure(key, owner, error, error.kind === 'permanent' || deps.lastAttempt === true).catch(() => {
        // The ledger is unreachable too; SQS still holds the message, so nothing is lost.
      });
    }
    throw error;
  }
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
    const enabled = await this.asUser((token) => this.deps.tray.enableSolutionInstance(token, instanceId));
    if (!enabled.enabled) {
      throw new ImportError('TRAY_REJECTED', 'enableSolutionInstance', `Tray answered the enable of instance ${instanceId} without enabling it; check the solution's required slots`);
    }
    return this.deps.ledger.recordEnabled(this.key, this.owner);
  }

  private async ensureTrayUser(): Promise<string> {
    if (this.entry.trayUserId) return this.entry.trayUserId;
    const { tray, ledger } = this.deps;
    if (this.entry.pending[pendingKey.user]) {
      const [found] = await tray.findUsersByExternalUserId(this.rendered.externalUserId);
      if (found) {
        this.entry = await ledger.recordTrayUser(this.key, this.owner, found.id);
        this.emit({ type: 'adopted', object: 'user', id: found.id });
        return found.id;
      }
    }
    this.entry = await ledger.markPending(this.key, this.owner, pendingKey.user);
    const id = await tray.createExternalUser({ name: this.rendered.userName, externalUserId: this.rendered.externalUserId, isTestUser: this.deps.plan.isTestUser });
    this.entry = await ledger.recordTrayUser(this.key, this.owner, id);
    this.emit({ type: 'created', object: 'user', id });
    return id;
  }

  private async ensureAuth(auth: RenderedAuth): Promise<void> {
    const externalId = auth.plan.externalId;
    if (this.entry.authIds[externalId]) return;
    const { tray, ledger } = this.deps;
    const pending = pendingKey.auth(externalId);
    if (this.entry.pending[pending]) {
      const auths: TrayAuthentication[] = await this.asUser((token) => tray.listAuthentications(token));
      // An auth already recorded for another slot is never adopted twice.
      const taken = new Set(Object.values(this.entry.authIds));
      const found = auths.find(
        (a) =>
          !taken.has(a.id) &&
          a.name === auth.name &&
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
    this.entry = await ledger.markPending(this.key, this.owner, pending);
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
    if (this.entry.pending[pendingKey.instance]) {
      const instances = await this.asUser((token) => tray.listSolutionInstances({ kind: 'user', token }, { solutionId: plan.solutionId }));
      const found = instances.find((i) => (i.solution?.id ?? plan.solutionId) === plan.solutionId && i.name === this.rendered.instanceName);
      if (found) {
        this.entry = await ledger.recordInstance(this.key, this.owner, found.id);
        this.emit({ type: 'adopted', object: 'instance', id: found.id });
        return found.id;
      }
    }
    this.entry = await ledger.markPending(this.key, this.owner, pendingKey.instance);
    const authValues = this.rendered.auths.map((a) => ({ externalId: a.plan.externalId, authId: this.entry.authIds[a.plan.externalId] as string }));
    const instance = await this.asUser((token) =>
      tray.createSolutionInstance(token, { solutionId: plan.solutionId, instanceName: this.rendered.instanceName, authValues, configValues: this.rendered.configValues }),
    );
    this.entry = await ledger.recordInstance(this.key, this.owner, instance.id);
    this.emit({ type: 'created', object: 'instance', id: instance.id });
    return instance.id;
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
