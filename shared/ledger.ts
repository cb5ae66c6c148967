import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { classifyAwsFailure } from './aws-errors.js';
import { type ErrorCode, ImportError, type Step } from './errors.js';
import type { MessageSource } from './message.js';
import { type OffboardPolicy, OffboardPolicySchema } from './plan.js';
import { scrubExcerpt } from './redact.js';
import { ServerClock } from './server-clock.js';

/**
 * The ledger: one DynamoDB item per user (partition key `userPoolId`, sort key `sub`), holding
 * the Tray ids the import created. Tray advises storing its ids rather than searching for them,
 * and the company's app needs the mapping later (to open the config wizard for a user).
 *
 * It also makes the import exactly-once over at-least-once delivery:
 * - a *lease* (owner + expiry, taken with a conditional write) lets one delivery at a time work
 *   on a user; a second concurrent delivery is told USER_BUSY and retried later;
 * - before each create, `pending.<object>` records that the create is being attempted; the id
 *   replaces it once Tray answered. A retry that finds a pending mark without an id knows the
 *   create may have happened (timeout, crash) and looks the object up in Tray first.
 */
/** Key attribute names; the CDK table and the local emulator table use these. */
export const LEDGER_KEY = { partitionKey: 'userPoolId', sortKey: 'sub' } as const;

/** `offboarded`: the Cognito user was deleted and the plan's offboarding policy applied; terminal (an import message for the user is then skipped). */
export const LedgerStatusSchema = z.enum(['in_progress', 'retrying', 'enabled', 'failed', 'offboarded']);

/** Defined with the plan's `offboarding` field (shared/plan.ts), re-exported for the ledger's readers. */
export { type OffboardPolicy, OffboardPolicySchema };

export const LedgerEntrySchema = z.object({
  userPoolId: z.string(),
  sub: z.string(),
  username: z.string(),
  email: z.string().optional(),
  source: z.string().optional(),
  status: LedgerStatusSchema,
  trayUserId: z.string().optional(),
  authIds: z.record(z.string(), z.string()).default({}),
  instanceId: z.string().optional(),
  enabled: z.boolean().default(false),
  attempts: z.number().default(0),
  /**
   * Creates that may have happened without their id being recorded. The value says what
   * identifies the object in Tray, exactly as it was sent (externalUserId or name), so that a
   * retry matches on it even if the user's attributes changed in between; a bare string is a
   * mark written by an older version (a timestamp), matched on the name rendered now.
   */
  pending: z.record(z.string(), z.union([z.string(), z.object({ at: z.string(), sent: z.string() })])).default({}),
  /** When createSolutionInstance completed (epoch ms): Tray wants ≥ 2 s before the enable. */
  instanceCreatedAt: z.number().optional(),
  /** Per-company plans: the company entry (`partition/sort key`) whose Tray objects this user shares. */
  company: z.string().optional(),
  lastError: z.object({ code: z.string(), step: z.string(), message: z.string(), at: z.string() }).optional(),
  leaseOwner: z.string().optional(),
  leaseUntil: z.number().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  enabledAt: z.string().optional(),
  /** Offboarding: the policy applied, and each Tray step done so far (`instance`, `auth:<slot>`, `user`, `disabled`). */
  offboard: z.object({ policy: OffboardPolicySchema, startedAt: z.string(), done: z.array(z.string()).default([]) }).optional(),
  offboardedAt: z.string().optional(),
  /**
   * Credential rotations in progress, by slot: the auth being replaced, what the new auth's
   * create sent (its name, for adoption after a crash) and its id once Tray answered, and whether
   * the instance points at it yet. Removed once the old auth is gone.
   */
  rotations: z
    .record(
      z.string(),
      z.object({
        oldAuthId: z.string(),
        sent: z.string(),
        at: z.string(),
        newAuthId: z.string().optional(),
        repointed: z.boolean().default(false),
      }),
    )
    .default({}),
  lastRotatedAt: z.string().optional(),
  /** The plan version (shared/plan-version.ts planVersion) the instance was enabled or last upgraded with. */
  planVersion: z.string().optional(),
  upgradedAt: z.string().optional(),
  /**
   * When an upgrade found that Tray's new solution version needs the end user's input
   * (`requiresUserInputToUpdateVersion`): not upgraded; the user is to be sent to the config
   * wizard. Removed by the next completed upgrade.
   */
  upgradeNeedsUser: z.string().optional(),
  /** Tray's expired-auth notifications, by auth id: when, and what was done (re-imported, or alerted for the company to act). */
  /**
   * The attributes the plan reads, as the import message carried them (ADR 0005: never
   * credentials): later steps (rotation, upgrade) render the plan from them without Cognito.
   */
  attributes: z.record(z.string(), z.string()).optional(),
  expiring: z
    .record(z.string(), z.object({ at: z.string(), service: z.string().optional(), action: z.enum(['reimport', 'alert']) }))
    .default({}),
});
export type LedgerEntry = z.infer<typeof LedgerEntrySchema>;

export const LedgerStatusSummarySchema = LedgerEntrySchema.pick({
  sub: true,
  status: true,
  updatedAt: true,
  leaseUntil: true,
  lastError: true,
});
export type LedgerStatusSummary = z.infer<typeof LedgerStatusSummarySchema>;
export type LedgerStatus = z.infer<typeof LedgerStatusSchema>;

export interface UserKey {
  userPoolId: string;
  sub: string;
}

/** Keys of `pending`: what create is in flight. */
export const pendingKey = {
  user: 'user',
  instance: 'instance',
  auth: (externalId: string) => `auth:${externalId}`,
} as const;

/**
 * The user's identifying fields, as every write that may create a user's entry sets them; their
 * values are `:username`, `:email` (only when known) and `:source`, with `#source` for `source`.
 */
const IDENTITY_SET = (info: { email?: string | undefined }) =>
  `username = :username, ${info.email === undefined ? '' : 'email = :email, '}#source = :source`;

/** A failure as the ledger keeps it: upstream text scrubbed of secrets, then cut to what explains it. */
function errorRecord(error: { code: ErrorCode; step: Step; message: string }, at: string) {
  return { code: error.code, step: error.step, message: scrubExcerpt(error.message, 1_000), at };
}

/** Longest a record waits for another delivery's lease before it is tried again. */
const MAX_BUSY_RETRY_MS = 60_000;

export type AcquireResult =
  | { kind: 'acquired'; entry: LedgerEntry }
  | { kind: 'done'; entry: LedgerEntry }
  | { kind: 'offboarded'; entry: LedgerEntry };

/** A lease on a user the ledger already knows (lifecycle steps): absent and offboarded users are said so, not leased. */
export type ExistingLeaseResult =
  | { kind: 'acquired'; entry: LedgerEntry }
  | { kind: 'missing' }
  | { kind: 'offboarded'; entry: LedgerEntry };

export class Ledger {
  readonly tableName: string;
  private readonly doc: DynamoDBDocumentClient;
  private readonly now: () => number;
  /** DynamoDB's clock: leases are decided against it, not against this machine's (see ServerClock). */
  readonly clock: ServerClock;

  /**
   * `localClock`: this machine's clock (default Date.now), corrected to DynamoDB's.
   * `now`: the time to use as it is, uncorrected (tests writing entries "as if an hour ago").
   */
  constructor(options: { tableName: string; client?: DynamoDBClient; localClock?: () => number; now?: () => number }) {
    this.tableName = options.tableName;
    const client = options.client ?? new DynamoDBClient({});
    this.doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true },
    });
    this.clock = new ServerClock(options.localClock ?? Date.now);
    this.clock.attach(client);
    const fixed = options.now;
    this.now = fixed ?? (() => this.clock.now());
  }

  async get(key: UserKey): Promise<LedgerEntry | undefined> {
    try {
      const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }));
      return out.Item ? LedgerEntrySchema.parse(out.Item) : undefined;
    } catch (e) {
      throw classifyAwsFailure(e, 'ledger', 'reading the ledger', 'INTERNAL');
    }
  }

  /** Every entry of a pool, page by page (operators' status). */
  async *entries(userPoolId: string): AsyncGenerator<LedgerEntry> {
    for await (const item of this.queryPool(userPoolId)) yield LedgerEntrySchema.parse(item);
  }

  /**
   * Where every user of a pool stands, without the rest of each item: what backfill and
   * reconcile need to decide whom to enqueue, at a fraction of the read cost on large pools.
   */
  async *statuses(userPoolId: string): AsyncGenerator<LedgerStatusSummary> {
    const projection = {
      ProjectionExpression: '#sub, #status, updatedAt, leaseUntil, lastError',
      ExpressionAttributeNames: { '#sub': 'sub', '#status': 'status' },
    };
    for await (const item of this.queryPool(userPoolId, projection)) yield LedgerStatusSummarySchema.parse(item);
  }

  private async *queryPool(
    userPoolId: string,
    projection: Pick<QueryCommandInput, 'ProjectionExpression' | 'ExpressionAttributeNames'> = {},
  ): AsyncGenerator<Record<string, unknown>> {
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'userPoolId = :p',
          ExpressionAttributeValues: { ':p': userPoolId },
          ExclusiveStartKey: start,
          ...projection,
        }),
      );
      yield* out.Items ?? [];
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /**
   * Takes the user's lease for `leaseMs`. Fails with USER_BUSY while another delivery holds an
   * unexpired lease; answers `done` for a user already enabled (no Tray call needed).
   */
  async acquire(
    key: UserKey,
    owner: string,
    leaseMs: number,
    info: { username: string; email?: string | undefined; source: MessageSource; attributes?: Record<string, string> | undefined },
  ): Promise<AcquireResult> {
    const now = this.now();
    const at = new Date(now).toISOString();
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression:
            `SET ${IDENTITY_SET(info)}, ${info.attributes === undefined ? '' : 'attributes = :attributes, '}#status = :inProgress, leaseOwner = :owner, leaseUntil = :until, ` +
            'attempts = if_not_exists(attempts, :zero) + :one, authIds = if_not_exists(authIds, :empty), pending = if_not_exists(pending, :empty), ' +
            'enabled = if_not_exists(enabled, :false), createdAt = if_not_exists(createdAt, :at), updatedAt = :at',
          ConditionExpression:
            'attribute_not_exists(#sub) OR (#status <> :enabled AND #status <> :offboarded AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseOwner = :owner))',
          ExpressionAttributeNames: { '#status': 'status', '#sub': 'sub', '#source': 'source' },
          ExpressionAttributeValues: {
            ':username': info.username,
            ':email': info.email,
            ':source': info.source,
            ...(info.attributes === undefined ? {} : { ':attributes': info.attributes }),
            ':inProgress': 'in_progress',
            ':enabled': 'enabled',
            ':offboarded': 'offboarded',
            ':owner': owner,
            ':until': now + leaseMs,
            ':now': now,
            ':zero': 0,
            ':one': 1,
            ':empty': {},
            ':false': false,
            ':at': at,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { kind: 'acquired', entry: LedgerEntrySchema.parse(out.Attributes) };
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw classifyAwsFailure(e, 'ledger', 'taking the user lease', 'INTERNAL');
      const entry = await this.get(key);
      if (entry?.status === 'enabled') return { kind: 'done', entry };
      if (entry?.status === 'offboarded') return { kind: 'offboarded', entry };
      throw new ImportError(
        'USER_BUSY',
        'ledger',
        `another delivery is importing this user (lease until ${entry?.leaseUntil ? new Date(entry.leaseUntil).toISOString() : 'unknown'}); will retry`,
      );
    }
  }

  /**
   * Takes the lease of a user the ledger knows, whatever its status but `offboarded` (lifecycle
   * steps work on enabled users). Leaves the status alone: `status` keeps saying what the user
   * is, the lease says someone is working on it.
   */
  async acquireExisting(key: UserKey, owner: string, leaseMs: number): Promise<ExistingLeaseResult> {
    const now = this.now();
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: 'SET leaseOwner = :owner, leaseUntil = :until, updatedAt = :at',
          ConditionExpression:
            'attribute_exists(#sub) AND #status <> :offboarded AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseOwner = :owner)',
          ExpressionAttributeNames: { '#status': 'status', '#sub': 'sub' },
          ExpressionAttributeValues: {
            ':owner': owner,
            ':until': now + leaseMs,
            ':now': now,
            ':offboarded': 'offboarded',
            ':at': new Date(now).toISOString(),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { kind: 'acquired', entry: LedgerEntrySchema.parse(out.Attributes) };
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException)) throw classifyAwsFailure(e, 'ledger', 'taking the user lease', 'INTERNAL');
      const entry = await this.get(key);
      if (!entry) return { kind: 'missing' };
      if (entry.status === 'offboarded') return { kind: 'offboarded', entry };
      throw new ImportError(
        'USER_BUSY',
        'ledger',
        `another delivery is working on this user (lease until ${entry.leaseUntil ? new Date(entry.leaseUntil).toISOString() : 'unknown'}); will retry`,
      );
    }
  }

  /**
   * How long a delivery told USER_BUSY should wait before trying the user again: until the
   * holder's lease ends (1 s to 60 s; 5 s when the holder cannot be read). Imports and lifecycle
   * steps hand such a record back with this delay, uncounted.
   */
  async busyRetryMs(key: UserKey): Promise<number> {
    const holder = await this.get(key).catch(() => undefined);
    const leaseLeft = holder?.leaseUntil === undefined ? 5_000 : holder.leaseUntil - this.now();
    return Math.min(MAX_BUSY_RETRY_MS, Math.max(1_000, leaseLeft));
  }

  /**
   * Offboarding a user the ledger does not know yet (deleted before their import message ran):
   * writes an `offboarded` entry, so that the import message, when it comes, is skipped and the
   * user never appears half-imported in Tray. Only where no entry exists: answers `exists` when
   * one does (an import took the user meanwhile), and the caller then offboards it normally.
   */
  async recordOffboardedTombstone(
    key: UserKey,
    info: { username?: string | undefined; policy: OffboardPolicy },
  ): Promise<{ kind: 'written'; entry: LedgerEntry } | { kind: 'exists' }> {
    const at = new Date(this.now()).toISOString();
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression:
            'SET username = :username, #status = :offboarded, enabled = :false, authIds = :empty, pending = :empty, attempts = :zero, ' +
            '#offboard = :offboard, offboardedAt = :at, createdAt = :at, updatedAt = :at',
          ConditionExpression: 'attribute_not_exists(#sub)',
          ExpressionAttributeNames: { '#status': 'status', '#sub': 'sub', '#offboard': 'offboard' },
          ExpressionAttributeValues: {
            ':username': info.username ?? key.sub,
            ':offboarded': 'offboarded',
            ':false': false,
            ':empty': {},
            ':zero': 0,
            ':offboard': { policy: info.policy, startedAt: at, done: [] },
            ':at': at,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { kind: 'written', entry: LedgerEntrySchema.parse(out.Attributes) };
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return { kind: 'exists' };
      throw classifyAwsFailure(e, 'ledger', 'writing the ledger', 'INTERNAL');
    }
  }

  /**
   * Records Tray's expired-auth notification for `authId` (functions/tray-webhook). Written
   * without the lease, and touching nothing but `expiring.<authId>`: a delivery holding the user
   * keeps its lease and its own writes. Conditional on the entry existing (a notification never
   * creates a user) and, with `unlessSince`, on no record of this auth at or after that time:
   * the claim that makes a repeated notification do nothing twice. Answers `recent` when such a
   * record exists, `missing` when the entry does not.
   */
  async recordExpiring(
    key: UserKey,
    authId: string,
    info: LedgerEntry['expiring'][string],
    options: { unlessSince?: string } = {},
  ): Promise<'recorded' | 'recent' | 'missing'> {
    // Only names and values the expression uses: DynamoDB refuses unused ones.
    const since = options.unlessSince;
    const setKey = () =>
      new UpdateCommand({
        TableName: this.tableName,
        Key: key,
        UpdateExpression: 'SET expiring.#auth = :info',
        ConditionExpression:
          'attribute_exists(#sub) AND attribute_exists(expiring)' +
          (since === undefined ? '' : ' AND (attribute_not_exists(expiring.#auth) OR expiring.#auth.#at < :since)'),
        ExpressionAttributeNames: { '#sub': 'sub', '#auth': authId, ...(since === undefined ? {} : { '#at': 'at' }) },
        ExpressionAttributeValues: { ':info': info, ...(since === undefined ? {} : { ':since': since }) },
      });
    // Entries written before `expiring` existed lack the map, and DynamoDB cannot set a key of a
    // map that is not there: the map is then created with this one key, only where it is absent.
    const createMap = () =>
      new UpdateCommand({
        TableName: this.tableName,
        Key: key,
        UpdateExpression: 'SET expiring = :map',
        ConditionExpression: 'attribute_exists(#sub) AND attribute_not_exists(expiring)',
        ExpressionAttributeNames: { '#sub': 'sub' },
        ExpressionAttributeValues: { ':map': { [authId]: info } },
      });
    // The map may appear between two attempts (a concurrent notification): then setKey decides.
    for (const command of [setKey(), createMap(), setKey()]) {
      try {
        await this.doc.send(command);
        return 'recorded';
      } catch (e) {
        if (!(e instanceof ConditionalCheckFailedException))
          throw classifyAwsFailure(e, 'ledger', 'recording an expiring auth', 'INTERNAL');
      }
    }
    return (await this.get(key)) ? 'recent' : 'missing';
  }

  /** Takes back an expiring record written at `at` (its follow-up could not be sent), so a retry of the notification acts again. */
  async forgetExpiring(key: UserKey, authId: string, at: string): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: 'REMOVE expiring.#auth',
          ConditionExpression: 'expiring.#auth.#at = :at',
          ExpressionAttributeNames: { '#auth': authId, '#at': 'at' },
          ExpressionAttributeValues: { ':at': at },
        }),
      );
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return;
      throw classifyAwsFailure(e, 'ledger', 'taking back an expiring record', 'INTERNAL');
    }
  }

  /**
   * Records that a create is about to be sent, and what identifies it (`sent`: the exact
   * externalUserId or name in the request): a retry then looks for exactly that before
   * creating again.
   */
  markPending(key: UserKey, owner: string, what: string, sent: string): Promise<LedgerEntry> {
    // Also demands an unexpired lease: past it another delivery may be working on this user,
    // and two creates must never be in flight for one object.
    const now = this.now();
    return this.writeLeased(
      key,
      owner,
      'SET pending.#what = :mark, updatedAt = :at',
      { '#what': what },
      { ':now': now, ':mark': { at: new Date(now).toISOString(), sent } },
      'leaseUntil > :now',
    );
  }

  recordTrayUser(key: UserKey, owner: string, trayUserId: string): Promise<LedgerEntry> {
    return this.writeLeased(
      key,
      owner,
      'SET trayUserId = :id, updatedAt = :at REMOVE pending.#what',
      { '#what': pendingKey.user },
      { ':id': trayUserId },
    );
  }

  recordAuth(key: UserKey, owner: string, externalId: string, authId: string): Promise<LedgerEntry> {
    return this.writeLeased(
      key,
      owner,
      'SET authIds.#slot = :id, updatedAt = :at REMOVE pending.#what',
      { '#slot': externalId, '#what': pendingKey.auth(externalId) },
      { ':id': authId },
    );
  }

  /** `createdAt`: when Tray's create completed (epoch ms), for Tray's wait-before-enabling rule. */
  recordInstance(key: UserKey, owner: string, instanceId: string, createdAt: number): Promise<LedgerEntry> {
    return this.writeLeased(
      key,
      owner,
      'SET instanceId = :id, instanceCreatedAt = :created, updatedAt = :at REMOVE pending.#what',
      { '#what': pendingKey.instance },
      { ':id': instanceId, ':created': createdAt },
    );
  }

  /**
   * A user of a per-company plan whose company is enabled: the user's own entry points at the
   * company's Tray objects. Written without a lease: only this delivery writes a member's entry
   * as enabled, and doing it twice writes the same thing.
   */
  async recordMember(
    key: UserKey,
    info: { username: string; email?: string | undefined; source: MessageSource },
    company: LedgerEntry,
  ): Promise<LedgerEntry> {
    const at = new Date(this.now()).toISOString();
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression:
            `SET ${IDENTITY_SET(info)}, #status = :enabled, enabled = :true, company = :company, ` +
            'trayUserId = :user, authIds = :auths, instanceId = :instance, pending = :empty, attempts = if_not_exists(attempts, :zero) + :one, ' +
            'createdAt = if_not_exists(createdAt, :at), updatedAt = :at, enabledAt = if_not_exists(enabledAt, :at) REMOVE lastError',
          // A member offboarded while the company's import was in flight stays offboarded.
          ConditionExpression: 'attribute_not_exists(#sub) OR #status <> :offboarded',
          ExpressionAttributeNames: { '#status': 'status', '#source': 'source', '#sub': 'sub' },
          ExpressionAttributeValues: {
            ':offboarded': 'offboarded',
            ':username': info.username,
            ':email': info.email,
            ':source': info.source,
            ':enabled': 'enabled',
            ':true': true,
            ':company': `${company.userPoolId}/${company.sub}`,
            ':user': company.trayUserId,
            ':auths': company.authIds,
            ':instance': company.instanceId,
            ':empty': {},
            ':zero': 0,
            ':one': 1,
            ':at': at,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return LedgerEntrySchema.parse(out.Attributes);
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) {
        const entry = await this.get(key);
        if (entry) return entry;
      }
      throw classifyAwsFailure(e, 'ledger', 'writing the ledger', 'INTERNAL');
    }
  }

  /**
   * Records a failure found before the user's lease was taken (an invalid message, a missing
   * attribute), so that every dead-lettered user has an entry with its reason: reconcile then
   * skips it unless asked, and status shows why. Never overwrites an enabled user or a delivery
   * that holds the lease.
   */
  async recordRejected(
    key: UserKey,
    info: { username?: string | undefined; email?: string | undefined; source?: MessageSource | undefined },
    error: { code: ErrorCode; step: Step; message: string },
  ): Promise<void> {
    const now = this.now();
    const at = new Date(now).toISOString();
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression:
            'SET username = if_not_exists(username, :username), #status = :failed, lastError = :error, attempts = if_not_exists(attempts, :zero) + :one, ' +
            'authIds = if_not_exists(authIds, :empty), pending = if_not_exists(pending, :empty), enabled = if_not_exists(enabled, :false), ' +
            `${info.email === undefined ? '' : 'email = :email, '}${info.source === undefined ? '' : '#source = :source, '}createdAt = if_not_exists(createdAt, :at), updatedAt = :at`,
          ConditionExpression:
            'attribute_not_exists(#sub) OR (#status <> :enabled AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now))',
          ExpressionAttributeNames: { '#status': 'status', '#sub': 'sub', ...(info.source === undefined ? {} : { '#source': 'source' }) },
          ExpressionAttributeValues: {
            ':username': info.username ?? key.sub,
            ':failed': 'failed',
            ':enabled': 'enabled',
            ':error': errorRecord(error, at),
            ':zero': 0,
            ':one': 1,
            ':empty': {},
            ':false': false,
            ':at': at,
            ':now': now,
            ...(info.email === undefined ? {} : { ':email': info.email }),
            ...(info.source === undefined ? {} : { ':source': info.source }),
          },
        }),
      );
    } catch (e) {
      // Enabled meanwhile, or another delivery holds the user: its own outcome is the truth.
      if (e instanceof ConditionalCheckFailedException) return;
      throw classifyAwsFailure(e, 'ledger', 'writing the ledger', 'INTERNAL');
    }
  }

  /**
   * `planVersion` (shared/plan-version.ts): the plan the instance was enabled with, for `upgrade`.
   * Optional only so that tests seeding entries need not invent one; the import always passes it.
   */
  recordEnabled(key: UserKey, owner: string, planVersion?: string): Promise<LedgerEntry> {
    return this.writeLeased(
      key,
      owner,
      `SET #status = :enabled, enabled = :true, enabledAt = :at, updatedAt = :at${planVersion === undefined ? '' : ', planVersion = :planVersion'} REMOVE leaseOwner, leaseUntil, lastError`,
      { '#status': 'status' },
      { ':enabled': 'enabled', ':true': true, ...(planVersion === undefined ? {} : { ':planVersion': planVersion }) },
    );
  }

  /** Records the failure and releases the lease so that the retry (or a redrive) can take it at once. */
  async recordFailure(key: UserKey, owner: string, error: { code: ErrorCode; step: Step; message: string }, final: boolean): Promise<void> {
    await this.writeLeased(
      key,
      owner,
      'SET #status = :status, lastError = :error, updatedAt = :at REMOVE leaseOwner, leaseUntil',
      { '#status': 'status' },
      { ':status': final ? 'failed' : 'retrying', ':error': errorRecord(error, new Date(this.now()).toISOString()) },
    );
  }

  /**
   * Takes one of the hour's slots for a new Tray user (a sign-up flood must not silently create
   * thousands of billable users): an atomic counter per pool and hour, in a partition of its
   * own. Refused once `maxPerHour` were taken; the caller then leaves the user for later.
   */
  async takeImportSlot(userPoolId: string, maxPerHour: number): Promise<{ taken: true } | { taken: false; retryInMs: number }> {
    const now = this.now();
    const hour = new Date(now).toISOString().slice(0, 13);
    const nextHour = Date.parse(`${hour}:00:00.000Z`) + 3_600_000;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { userPoolId: `${userPoolId}#volume`, sub: hour },
          UpdateExpression: 'ADD imports :one SET updatedAt = :at',
          ConditionExpression: 'attribute_not_exists(imports) OR imports < :max',
          ExpressionAttributeValues: { ':one': 1, ':max': maxPerHour, ':at': new Date(now).toISOString() },
        }),
      );
      return { taken: true };
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) return { taken: false, retryInMs: nextHour - now };
      throw classifyAwsFailure(e, 'ledger', "counting the hour's imports", 'INTERNAL');
    }
  }

  /** Lets go of the lease without changing anything else (e.g. an invocation ending early). */
  async release(key: UserKey, owner: string): Promise<void> {
    await this.writeLeased(key, owner, 'SET updatedAt = :at REMOVE leaseOwner, leaseUntil', {}, {});
  }

  /**
   * One write by the lease holder (the import's and the lifecycle steps' progress): fails with
   * USER_BUSY if the lease was lost. `:at` (now) and `:owner` are provided.
   */
  async writeLeased(
    key: UserKey,
    owner: string,
    expression: string,
    names: Record<string, string>,
    values: Record<string, unknown>,
    extraCondition?: string,
  ): Promise<LedgerEntry> {
    const input: UpdateCommandInput = {
      TableName: this.tableName,
      Key: key,
      UpdateExpression: expression,
      // Only the lease holder writes: a delivery whose lease expired must not overwrite its successor.
      ConditionExpression: extraCondition ? `leaseOwner = :owner AND ${extraCondition}` : 'leaseOwner = :owner',
      ExpressionAttributeNames: Object.keys(names).length > 0 ? names : undefined,
      ExpressionAttributeValues: { ...values, ':owner': owner, ':at': new Date(this.now()).toISOString() },
      ReturnValues: 'ALL_NEW',
    };
    try {
      const out = await this.doc.send(new UpdateCommand(input));
      return LedgerEntrySchema.parse(out.Attributes);
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException) {
        throw new ImportError('USER_BUSY', 'ledger', 'lost the user lease to another delivery (this one ran past its lease); will retry');
      }
      throw classifyAwsFailure(e, 'ledger', 'writing the ledger', 'INTERNAL');
    }
  }
}
