/**
 * In-memory store of the stand-in: users, authentications, solutions, instances and tokens.
 * Pure data + lookups; Tray's validation rules live in the resolvers so they read in one place.
 */
import { randomBytes, randomUUID } from 'node:crypto';

export interface SeedSolution {
  id: string;
  title: string;
  tags?: string[];
  published?: boolean; // default true
  authSlots: { externalId: string; title: string; required?: boolean /* default true */ }[];
  configSlots: {
    externalId: string;
    title: string;
    defaultValue?: unknown;
    required?: boolean /* default false */;
    /** Hidden from the end user's config wizard: only the partner's system fills it (default false). */
    hidden?: boolean;
  }[];
}

/**
 * A new version of a published solution (the stand-in's admin endpoint
 * POST /_standin/solutions/<id>/versions). Slots are only ever added. What an existing instance
 * then needs to move to it, as Tray's solutionVersionFlags say:
 * - requiresUserInputToUpdateVersion: the version adds a slot the end user sees (not hidden) that
 *   is required and has no default, or says `requiresUserInput` (e.g. a new question in the wizard);
 * - requiresSystemInputToUpdateVersion: it adds a hidden slot, or says `requiresSystemInput`
 *   (changed mappings: the partner's system must send the values again);
 * - neither: the upgrade needs no values at all.
 */
export interface NewSolutionVersion {
  addAuthSlots?: SeedSolution['authSlots'];
  addConfigSlots?: SeedSolution['configSlots'];
  requiresUserInput?: boolean;
  requiresSystemInput?: boolean;
}

export interface SolutionVersionRow {
  version: number;
  requiresUserInput: boolean;
  requiresSystemInput: boolean;
  /** Slots this version added: an upgrade to it is refused while a required one has no value. */
  addedAuthSlots: string[];
  addedConfigSlots: string[];
}

/** Every stored entity carries a creation sequence number: cursors point at it, so deleting
 *  rows between two pages neither skips nor repeats the remaining ones. */
interface Sequenced {
  seq: number;
}

export interface UserRow extends Sequenced {
  id: string;
  name: string;
  externalUserId: string;
  isTestUser: boolean;
}
export interface AuthRow extends Sequenced {
  id: string;
  userId: string;
  name: string;
  serviceId: string;
  serviceEnvironmentId: string;
  data: unknown;
  formData: unknown;
  scopes: string[] | null;
  hidden: boolean;
}
export interface SolutionRow extends Sequenced {
  id: string;
  title: string;
  tags: string[];
  published: boolean;
  authSlots: { externalId: string; title: string; required: boolean }[];
  configSlots: { externalId: string; title: string; defaultValue: unknown; required: boolean; hidden: boolean }[];
  /** The newest version (1 when seeded); `versions` lists those published since, oldest first. */
  version: number;
  versions: SolutionVersionRow[];
}
export interface InstanceRow extends Sequenced {
  id: string;
  owner: string;
  solutionId: string;
  name: string;
  enabled: boolean;
  created: string;
  authValues: { externalId: string; authId: string }[];
  configValues: { externalId: string; value: string }[];
  /** The solution version the instance runs (the newest when created; moved by upgradeSolutionInstance). */
  solutionVersion: number;
}

export interface Snapshot {
  users: { id: string; name: string; externalUserId: string; isTestUser: boolean }[];
  authentications: {
    id: string;
    userId: string;
    name: string;
    serviceId: string;
    serviceEnvironmentId: string;
    data: unknown;
    scopes: string[] | null;
    formData: unknown;
    hidden: boolean;
  }[];
  instances: {
    id: string;
    owner: string;
    solutionId: string;
    name: string;
    enabled: boolean;
    created: string;
    authValues: { externalId: string; authId: string }[];
    configValues: { externalId: string; value: string }[];
    solutionVersion: number;
  }[];
}

export type TokenIdentity = { kind: 'master' } | { kind: 'user'; userId: string };

export class TrayState {
  readonly users = new Map<string, UserRow>();
  readonly auths = new Map<string, AuthRow>();
  readonly solutions = new Map<string, SolutionRow>();
  readonly instances = new Map<string, InstanceRow>();
  private readonly userTokens = new Map<string, { userId: string; expiresAt: number }>();
  private seq = 0;

  constructor(
    private masterToken: string,
    private readonly userTokenTtlMs: number,
    seeds: SeedSolution[],
  ) {
    for (const s of seeds) {
      this.solutions.set(s.id, {
        seq: this.nextSeq(),
        id: s.id,
        title: s.title,
        tags: [...(s.tags ?? [])],
        published: s.published ?? true,
        authSlots: s.authSlots.map((a) => ({ externalId: a.externalId, title: a.title, required: a.required ?? true })),
        configSlots: s.configSlots.map(configSlotRow),
        version: 1,
        versions: [],
      });
    }
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /** Publishes a new version of a solution (see NewSolutionVersion); answers its number. */
  publishSolutionVersion(solutionId: string, spec: NewSolutionVersion): SolutionVersionRow {
    const s = this.solutions.get(solutionId);
    if (!s) throw new Error(`no solution "${solutionId}"`);
    const added = [...(spec.addAuthSlots ?? []).map((a) => a.externalId), ...(spec.addConfigSlots ?? []).map((c) => c.externalId)];
    const taken = new Set([...s.authSlots, ...s.configSlots].map((slot) => slot.externalId));
    const clash = added.find((id, i) => taken.has(id) || added.indexOf(id) !== i);
    if (clash) throw new Error(`slot "${clash}" already exists in solution "${solutionId}": a version only adds slots`);
    const configSlots = (spec.addConfigSlots ?? []).map(configSlotRow);
    const authSlots = (spec.addAuthSlots ?? []).map((a) => ({ externalId: a.externalId, title: a.title, required: a.required ?? true }));
    const userMustAnswer =
      configSlots.some((c) => !c.hidden && c.required && c.defaultValue === undefined) || authSlots.some((a) => a.required);
    const row: SolutionVersionRow = {
      version: s.version + 1,
      requiresUserInput: spec.requiresUserInput === true || userMustAnswer,
      requiresSystemInput: spec.requiresSystemInput === true || configSlots.some((c) => c.hidden),
      addedAuthSlots: authSlots.map((a) => a.externalId),
      addedConfigSlots: configSlots.map((c) => c.externalId),
    };
    s.authSlots.push(...authSlots);
    s.configSlots.push(...configSlots);
    s.versions.push(row);
    s.version = row.version;
    return row;
  }

  // --- tokens ---

  setMasterToken(token: string): void {
    this.masterToken = token;
  }

  mintUserToken(userId: string): string {
    // Opaque and unguessable, like Tray's; carries nothing about the user.
    const token = randomBytes(32).toString('base64url');
    this.userTokens.set(token, { userId, expiresAt: Date.now() + this.userTokenTtlMs });
    return token;
  }

  /** One-use codes for Tray's embedded config wizard (valid 5 minutes at Tray). */
  readonly authorizationCodes = new Map<string, string>();

  mintAuthorizationCode(userId: string): string {
    const code = randomBytes(16).toString('hex');
    this.authorizationCodes.set(code, userId);
    return code;
  }

  revokeUserTokens(): void {
    this.userTokens.clear();
  }

  /** undefined = unknown, expired, or its user was removed (all look the same to Tray's clients: 401). */
  identify(token: string): TokenIdentity | undefined {
    if (token === this.masterToken) return { kind: 'master' };
    const t = this.userTokens.get(token);
    if (!t) return undefined;
    if (Date.now() >= t.expiresAt || !this.users.has(t.userId)) {
      this.userTokens.delete(token);
      return undefined;
    }
    return { kind: 'user', userId: t.userId };
  }

  // --- mutations of the store ---

  addUser(name: string, externalUserId: string, isTestUser: boolean): UserRow {
    // No dedupe on externalUserId: Tray creates a second user, which is why retries are dangerous.
    const row: UserRow = { seq: this.nextSeq(), id: `user-${randomUUID()}`, name, externalUserId, isTestUser };
    this.users.set(row.id, row);
    return row;
  }

  addAuth(fields: Omit<AuthRow, 'seq' | 'id'>): AuthRow {
    const row: AuthRow = { seq: this.nextSeq(), id: `auth-${randomUUID()}`, ...fields };
    this.auths.set(row.id, row);
    return row;
  }

  addInstance(fields: Omit<InstanceRow, 'seq' | 'id' | 'created' | 'enabled' | 'solutionVersion'>): InstanceRow {
    const row: InstanceRow = {
      seq: this.nextSeq(),
      id: `inst-${randomUUID()}`,
      created: new Date().toISOString(),
      enabled: false,
      solutionVersion: this.solutions.get(fields.solutionId)?.version ?? 1,
      ...fields,
    };
    this.instances.set(row.id, row);
    return row;
  }

  /**
   * Removes the user and its instances (Tray's reference: removeExternalUser "also disables and
   * deletes the user's instances"); its tokens die with it (identify checks the user). Its auths
   * stay: Tray does not document that they go with the user, so the stand-in assumes the costly
   * case, and offboarding must remove them first (test/offboard.test.ts proves it does).
   */
  removeUser(userId: string): void {
    this.users.delete(userId);
    for (const [id, i] of this.instances) if (i.owner === userId) this.instances.delete(id);
  }

  snapshot(): Snapshot {
    // structuredClone: callers (tests) must not be able to mutate the store through it.
    return structuredClone({
      users: [...this.users.values()].map(({ id, name, externalUserId, isTestUser }) => ({ id, name, externalUserId, isTestUser })),
      authentications: [...this.auths.values()].map((a) => ({
        id: a.id,
        userId: a.userId,
        name: a.name,
        serviceId: a.serviceId,
        serviceEnvironmentId: a.serviceEnvironmentId,
        data: a.data,
        scopes: a.scopes,
        formData: a.formData,
        hidden: a.hidden,
      })),
      instances: [...this.instances.values()].map((i) => ({
        id: i.id,
        owner: i.owner,
        solutionId: i.solutionId,
        name: i.name,
        enabled: i.enabled,
        created: i.created,
        authValues: i.authValues,
        configValues: i.configValues,
        solutionVersion: i.solutionVersion,
      })),
    });
  }
}

function configSlotRow(c: SeedSolution['configSlots'][number]): SolutionRow['configSlots'][number] {
  return {
    externalId: c.externalId,
    title: c.title,
    defaultValue: c.defaultValue,
    required: c.required ?? false,
    hidden: c.hidden ?? false,
  };
}
