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
  configSlots: { externalId: string; title: string; defaultValue?: unknown; required?: boolean /* default false */ }[];
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
  configSlots: { externalId: string; title: string; defaultValue: unknown; required: boolean }[];
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
        configSlots: s.configSlots.map((c) => ({
          externalId: c.externalId,
          title: c.title,
          defaultValue: c.defaultValue,
          required: c.required ?? false,
        })),
      });
    }
  }

  nextSeq(): number {
    return ++this.seq;
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

  addInstance(fields: Omit<InstanceRow, 'seq' | 'id' | 'created' | 'enabled'>): InstanceRow {
    const row: InstanceRow = {
      seq: this.nextSeq(),
      id: `inst-${randomUUID()}`,
      created: new Date().toISOString(),
      enabled: false,
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
      })),
    });
  }
}
