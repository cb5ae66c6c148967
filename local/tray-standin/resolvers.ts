/**
 * Resolvers (graphql-js root value) implementing Tray's rules on top of TrayState.
 * Errors mimic Tray's shape: `extensions { name, code }`, delivered with HTTP 200.
 */
import { GraphQLError } from 'graphql';
import type { AuthRow, InstanceRow, SolutionRow, TokenIdentity, TrayState, UserRow } from './state.js';

export interface ResolverContext {
  identity: TokenIdentity;
}

const DEFAULT_FIRST = 50;
const MAX_FIRST = 100;

function invalidInput(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { name: 'ValidationError', code: 'invalid_input' } });
}
function notFound(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { name: 'NotFoundError', code: 'not_found' } });
}
/**
 * Tray's reference asks integrators to wait at least 2 s after createSolutionInstance before
 * enabling, without saying what happens otherwise. The stand-in refuses such an enable with
 * this error (HTTP 200, Tray's usual error shape) and leaves the instance disabled.
 */
export const NOT_READY_CODE = 'instance_not_ready';
function notReady(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { name: 'PreconditionError', code: NOT_READY_CODE } });
}
function forbidden(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { name: 'ForbiddenError', code: 'forbidden' } });
}

// The HTTP layer already refused wrong token kinds with 403; these guards only narrow types
// and keep a resolver safe if it is ever reached another way.
function requireMaster(ctx: ResolverContext): void {
  if (ctx.identity.kind !== 'master') throw forbidden('This operation requires a master token');
}
function requireUser(ctx: ResolverContext): string {
  if (ctx.identity.kind !== 'user') throw forbidden('This operation requires a user token');
  return ctx.identity.userId;
}

// --- Relay pagination: cursors are opaque base64 of the row's creation sequence number ---

function encodeCursor(seq: number): string {
  return Buffer.from(`standin:${seq}`, 'utf8').toString('base64');
}
function decodeCursor(cursor: string): number {
  const m = /^standin:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
  if (!m?.[1]) throw invalidInput(`Invalid cursor "${cursor}"`);
  return Number(m[1]);
}

interface PageArgs {
  first?: number | null;
  after?: string | null;
}

function paginate<R extends { seq: number }, N>(rows: R[], args: PageArgs, toNode: (r: R) => N) {
  const first = args.first ?? DEFAULT_FIRST;
  if (first < 0 || first > MAX_FIRST) throw invalidInput(`"first" must be between 0 and ${MAX_FIRST}`);
  const afterSeq = args.after != null ? decodeCursor(args.after) : undefined;
  const sorted = [...rows].sort((a, b) => a.seq - b.seq);
  const rest = afterSeq === undefined ? sorted : sorted.filter((r) => r.seq > afterSeq);
  const page = rest.slice(0, first);
  const edges = page.map((r) => ({ node: toNode(r), cursor: encodeCursor(r.seq) }));
  return {
    edges,
    pageInfo: {
      hasNextPage: rest.length > page.length,
      hasPreviousPage: afterSeq !== undefined && sorted.some((r) => r.seq <= afterSeq),
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
  };
}

// --- Json scalar: a JSON-encoded string, checked here (see schema.ts) ---

function parseJsonArg(field: string, value: unknown, mustBeObject: boolean): unknown {
  if (typeof value !== 'string') {
    throw invalidInput(`Invalid value for "${field}": expected a JSON-encoded string (JSON.stringify(...))`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    // The value itself is not echoed: for "data" it holds credentials.
    throw invalidInput(`Invalid value for "${field}": not valid JSON`);
  }
  if (mustBeObject && (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))) {
    throw invalidInput(`Invalid value for "${field}": must encode a JSON object`);
  }
  return parsed;
}

function requireNonBlank(field: string, value: string): void {
  if (value.trim() === '') throw invalidInput(`"${field}" must not be empty`);
}

// --- node shapes ---

function solutionNode(s: SolutionRow) {
  return {
    id: s.id,
    title: s.title,
    description: null,
    tags: s.tags,
    customFields: [],
    authSlots: s.authSlots.map(({ externalId, title }) => ({ externalId, title })),
    // Tray's schema makes defaultValue a non-null Json: a slot without a default says "null".
    configSlots: s.configSlots.map(({ externalId, title, defaultValue }) => ({
      externalId,
      title,
      defaultValue: JSON.stringify(defaultValue ?? null),
    })),
  };
}

function instanceNode(state: TrayState, i: InstanceRow) {
  const s = state.solutions.get(i.solutionId);
  return {
    id: i.id,
    name: i.name,
    enabled: i.enabled,
    created: i.created,
    owner: i.owner,
    solution: s
      ? solutionNode(s)
      : { id: i.solutionId, title: '', description: null, tags: [], customFields: [], authSlots: [], configSlots: [] },
    authValues: i.authValues.map((a) => ({ ...a })),
    configValues: i.configValues.map((c) => ({ ...c })),
    // The stand-in's solutions have no workflows of their own.
    workflows: { edges: [] },
    solutionVersionFlags: versionFlags(s, i),
  };
}

/** What moving the instance to its solution's newest version needs (see NewSolutionVersion in state.ts). */
function versionFlags(s: SolutionRow | undefined, i: InstanceRow) {
  const newer = s?.versions.filter((v) => v.version > i.solutionVersion) ?? [];
  return {
    hasNewerVersion: newer.length > 0,
    requiresUserInputToUpdateVersion: newer.some((v) => v.requiresUserInput),
    requiresSystemInputToUpdateVersion: newer.some((v) => v.requiresSystemInput),
  };
}

function authNode(a: AuthRow) {
  // Tray's service metadata is invented: only the ids are meaningful to clients.
  return {
    id: a.id,
    name: a.name,
    customFields: null,
    service: { id: a.serviceId, name: a.serviceId, version: '1', title: `Service ${a.serviceId}`, icon: '' },
    serviceEnvironment: { id: a.serviceEnvironmentId, name: a.serviceEnvironmentId, title: `Environment ${a.serviceEnvironmentId}` },
  };
}

function userNode(u: UserRow) {
  return { id: u.id, name: u.name, externalUserId: u.externalUserId, isTestUser: u.isTestUser };
}

// --- slot values ---

type AuthValue = { externalId: string; authId: string };
type ConfigValue = { externalId: string; value?: string | null };

/** Validates slot values against the solution and returns them merged over `current`
 *  (values for the same externalId are replaced; a null config value unsets it). */
function applySlotValues(
  state: TrayState,
  userId: string,
  s: SolutionRow,
  current: Pick<InstanceRow, 'authValues' | 'configValues'>,
  authValues: AuthValue[] | null | undefined,
  configValues: ConfigValue[] | null | undefined,
): Pick<InstanceRow, 'authValues' | 'configValues'> {
  const auths = new Map(current.authValues.map((a) => [a.externalId, a.authId]));
  for (const av of authValues ?? []) {
    // Case-sensitive on purpose: Tray rejects External_X for a slot external_x.
    if (!s.authSlots.some((slot) => slot.externalId === av.externalId)) {
      throw invalidInput(`Auth slot "${av.externalId}" does not exist in solution "${s.id}"`);
    }
    const auth = state.auths.get(av.authId);
    if (!auth || auth.userId !== userId) {
      throw invalidInput(`Authentication "${av.authId}" for auth slot "${av.externalId}" does not exist`);
    }
    auths.set(av.externalId, av.authId);
  }
  const configs = new Map(current.configValues.map((c) => [c.externalId, c.value]));
  for (const cv of configValues ?? []) {
    if (!s.configSlots.some((slot) => slot.externalId === cv.externalId)) {
      throw invalidInput(`Config slot "${cv.externalId}" does not exist in solution "${s.id}"`);
    }
    if (cv.value == null) {
      configs.delete(cv.externalId);
      continue;
    }
    parseJsonArg(`configValues[${cv.externalId}].value`, cv.value, false);
    configs.set(cv.externalId, cv.value);
  }
  return {
    authValues: [...auths].map(([externalId, authId]) => ({ externalId, authId })),
    configValues: [...configs].map(([externalId, value]) => ({ externalId, value })),
  };
}

/** Required slots without a value; `only`: look at these slots alone (those a new version added). */
function missingSlots(state: TrayState, s: SolutionRow, v: Pick<InstanceRow, 'authValues' | 'configValues'>, only?: Set<string>): string[] {
  const missing: string[] = [];
  const looked = (slot: { externalId: string }) => only === undefined || only.has(slot.externalId);
  for (const slot of s.authSlots.filter(looked)) {
    const authId = v.authValues.find((a) => a.externalId === slot.externalId)?.authId;
    // An auth deleted since it was set leaves the slot as empty as never setting it.
    if (slot.required && (!authId || !state.auths.has(authId))) missing.push(`auth slot "${slot.externalId}"`);
  }
  for (const slot of s.configSlots.filter(looked)) {
    const has = v.configValues.some((c) => c.externalId === slot.externalId);
    if (slot.required && slot.defaultValue === undefined && !has) missing.push(`config slot "${slot.externalId}"`);
  }
  return missing;
}

function ownedInstance(state: TrayState, userId: string, id: string): InstanceRow {
  const inst = state.instances.get(id);
  // Another user's instance looks exactly like a missing one: no existence leak.
  if (!inst || inst.owner !== userId) throw notFound(`Solution instance "${id}" does not exist`);
  return inst;
}

type Args<T> = { input: T & { clientMutationId?: string | null } };

export interface RuleOptions {
  /** Tray's "wait before enabling" rule: an enable sooner than this after the create is refused. */
  enableDelayMs: number;
}

export function createRootValue(state: TrayState, rules: RuleOptions) {
  const viewer = {
    solutions(args: PageArgs & { criteria?: { tags?: string[] | null } | null }, ctx: ResolverContext) {
      requireMaster(ctx);
      const tags = args.criteria?.tags ?? [];
      const rows = [...state.solutions.values()].filter((s) => s.published && tags.every((t) => s.tags.includes(t)));
      return paginate(rows, args, solutionNode);
    },
    solutionInstances(
      args: PageArgs & {
        criteria?: { id?: string | null; name?: string | null; owner?: string | null; solutionId?: string | null } | null;
      },
      ctx: ResolverContext,
    ) {
      const c = args.criteria ?? {};
      const me = ctx.identity.kind === 'user' ? ctx.identity.userId : undefined;
      const rows = [...state.instances.values()].filter(
        (i) =>
          (me === undefined || i.owner === me) &&
          (c.id == null || i.id === c.id) &&
          (c.name == null || i.name === c.name) &&
          (c.owner == null || i.owner === c.owner) &&
          (c.solutionId == null || i.solutionId === c.solutionId),
      );
      return { totalCount: rows.length, ...paginate(rows, args, (i) => instanceNode(state, i)) };
    },
    authentications(_args: unknown, ctx: ResolverContext) {
      // Tray's field takes no arguments and its edges have no cursor: every auth of the user at
      // once. Master: the partner's own auths, of which the stand-in has none.
      const me = ctx.identity.kind === 'user' ? ctx.identity.userId : undefined;
      const rows = me === undefined ? [] : [...state.auths.values()].filter((a) => a.userId === me).sort((a, b) => a.seq - b.seq);
      return {
        edges: rows.map((a) => ({ node: authNode(a) })),
        pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null },
      };
    },
    details(_args: unknown, ctx: ResolverContext) {
      if (ctx.identity.kind === 'master') return { username: 'partner', email: 'partner@example.com', name: 'Stand-in partner' };
      const u = state.users.get(ctx.identity.userId);
      return { username: u?.externalUserId ?? '', email: '', name: u?.name ?? '' };
    },
  };

  return {
    viewer: () => viewer,

    users(
      args: PageArgs & { criteria?: { externalUserId?: string | null; name?: string | null; userId?: string | null } | null },
      ctx: ResolverContext,
    ) {
      requireMaster(ctx);
      const c = args.criteria ?? {};
      const rows = [...state.users.values()].filter(
        (u) =>
          (c.externalUserId == null || u.externalUserId === c.externalUserId) &&
          (c.name == null || u.name === c.name) &&
          (c.userId == null || u.id === c.userId),
      );
      return paginate(rows, args, userNode);
    },

    createExternalUser({ input }: Args<{ name: string; externalUserId: string; isTestUser?: boolean | null }>, ctx: ResolverContext) {
      requireMaster(ctx);
      requireNonBlank('externalUserId', input.externalUserId);
      const u = state.addUser(input.name, input.externalUserId, input.isTestUser ?? false);
      return { userId: u.id, clientMutationId: input.clientMutationId ?? null };
    },

    authorize({ input }: Args<{ userId: string }>, ctx: ResolverContext) {
      requireMaster(ctx);
      if (!state.users.has(input.userId)) throw notFound(`User "${input.userId}" does not exist`);
      return { accessToken: state.mintUserToken(input.userId), clientMutationId: input.clientMutationId ?? null };
    },

    createUserAuthentication(
      {
        input,
      }: Args<{
        name: string;
        serviceId: string;
        serviceEnvironmentId: string;
        data: unknown;
        formData?: unknown;
        scopes?: string[] | null;
        hidden?: boolean | null;
      }>,
      ctx: ResolverContext,
    ) {
      const userId = requireUser(ctx);
      requireNonBlank('serviceId', input.serviceId);
      requireNonBlank('serviceEnvironmentId', input.serviceEnvironmentId);
      const data = parseJsonArg('data', input.data, true);
      const formData = input.formData == null ? null : parseJsonArg('formData', input.formData, true);
      const a = state.addAuth({
        userId,
        name: input.name,
        serviceId: input.serviceId,
        serviceEnvironmentId: input.serviceEnvironmentId,
        data,
        formData,
        scopes: input.scopes ? [...input.scopes] : null,
        hidden: input.hidden ?? false,
      });
      return { authenticationId: a.id, clientMutationId: input.clientMutationId ?? null };
    },

    createSolutionInstance(
      { input }: Args<{ solutionId: string; instanceName: string; authValues?: AuthValue[] | null; configValues?: ConfigValue[] | null }>,
      ctx: ResolverContext,
    ) {
      const userId = requireUser(ctx);
      const s = state.solutions.get(input.solutionId);
      if (!s || !s.published) throw notFound(`Solution "${input.solutionId}" does not exist`);
      requireNonBlank('instanceName', input.instanceName);
      const values = applySlotValues(state, userId, s, { authValues: [], configValues: [] }, input.authValues, input.configValues);
      const inst = state.addInstance({ owner: userId, solutionId: s.id, name: input.instanceName, ...values });
      return { solutionInstance: instanceNode(state, inst), clientMutationId: input.clientMutationId ?? null };
    },

    updateSolutionInstance(
      {
        input,
      }: Args<{
        solutionInstanceId: string;
        instanceName?: string | null;
        enabled?: boolean | null;
        authValues?: AuthValue[] | null;
        configValues?: ConfigValue[] | null;
        errorOnEnablingWithMissingValues?: boolean | null;
      }>,
      ctx: ResolverContext,
    ) {
      const userId = requireUser(ctx);
      const inst = ownedInstance(state, userId, input.solutionInstanceId);
      const s = state.solutions.get(inst.solutionId);
      if (!s) throw notFound(`Solution "${inst.solutionId}" does not exist`);
      if (input.instanceName != null) requireNonBlank('instanceName', input.instanceName);
      // Validate everything first, then apply: a refused update changes nothing.
      const values = applySlotValues(state, userId, s, inst, input.authValues, input.configValues);
      if (input.enabled === true && !inst.enabled) {
        const age = Date.now() - Date.parse(inst.created);
        if (age < rules.enableDelayMs) {
          throw notReady(
            `Solution instance "${inst.id}" cannot be enabled yet: it was created ${age} ms ago; wait at least ${rules.enableDelayMs} ms after createSolutionInstance`,
          );
        }
      }
      if (input.enabled === true && input.errorOnEnablingWithMissingValues === true) {
        const missing = missingSlots(state, s, values);
        if (missing.length > 0) {
          throw invalidInput(`Cannot enable solution instance "${inst.id}": missing values for required ${missing.join(', ')}`);
        }
      }
      inst.authValues = values.authValues;
      inst.configValues = values.configValues;
      if (input.instanceName != null) inst.name = input.instanceName;
      if (input.enabled != null) inst.enabled = input.enabled;
      return { solutionInstance: instanceNode(state, inst), clientMutationId: input.clientMutationId ?? null };
    },

    upgradeSolutionInstance(
      { input }: Args<{ solutionInstanceId: string; authValues?: AuthValue[] | null; configValues?: ConfigValue[] | null }>,
      ctx: ResolverContext,
    ) {
      // Moves the instance to the newest version with the values given (merged over its own).
      // Like Tray, it refuses while a required slot added since the instance's version has no
      // value: a refused upgrade changes nothing. Upgrading an instance already on the newest
      // version only applies the values, so sending the same upgrade twice is harmless.
      const userId = requireUser(ctx);
      const inst = ownedInstance(state, userId, input.solutionInstanceId);
      const s = state.solutions.get(inst.solutionId);
      if (!s) throw notFound(`Solution "${inst.solutionId}" does not exist`);
      const values = applySlotValues(state, userId, s, inst, input.authValues, input.configValues);
      const added = new Set(
        s.versions.filter((v) => v.version > inst.solutionVersion).flatMap((v) => [...v.addedAuthSlots, ...v.addedConfigSlots]),
      );
      const missing = missingSlots(state, s, values, added);
      if (missing.length > 0) {
        throw invalidInput(
          `Cannot upgrade solution instance "${inst.id}" to version ${s.version}: missing values for required ${missing.join(', ')}`,
        );
      }
      inst.authValues = values.authValues;
      inst.configValues = values.configValues;
      inst.solutionVersion = s.version;
      return { solutionInstance: instanceNode(state, inst), clientMutationId: input.clientMutationId ?? null };
    },

    updateExternalUser({ input }: Args<{ userId: string; isTestUser?: boolean | null }>, ctx: ResolverContext) {
      requireMaster(ctx);
      const u = state.users.get(input.userId);
      if (!u) throw notFound(`User "${input.userId}" does not exist`);
      if (input.isTestUser != null) u.isTestUser = input.isTestUser;
      return { user: userNode(u), clientMutationId: input.clientMutationId ?? null };
    },

    generateAuthorizationCode({ input }: Args<{ userId: string }>, ctx: ResolverContext) {
      requireMaster(ctx);
      if (!state.users.has(input.userId)) throw notFound(`User "${input.userId}" does not exist`);
      return { authorizationCode: state.mintAuthorizationCode(input.userId), clientMutationId: input.clientMutationId ?? null };
    },

    callConnector() {
      throw invalidInput('callConnector is not implemented by the stand-in');
    },

    removeSolutionInstance({ input }: Args<{ solutionInstanceId: string }>, ctx: ResolverContext) {
      const userId = requireUser(ctx);
      ownedInstance(state, userId, input.solutionInstanceId);
      state.instances.delete(input.solutionInstanceId);
      return { clientMutationId: input.clientMutationId ?? null };
    },

    removeExternalUser({ input }: Args<{ userId: string }>, ctx: ResolverContext) {
      requireMaster(ctx);
      if (!state.users.has(input.userId)) throw notFound(`User "${input.userId}" does not exist`);
      state.removeUser(input.userId);
      return { clientMutationId: input.clientMutationId ?? null };
    },

    removeAuthentication({ input }: Args<{ authenticationId: string }>, ctx: ResolverContext) {
      const a = state.auths.get(input.authenticationId);
      // Master may remove any end user's auth; a user only its own.
      const allowed = a && (ctx.identity.kind === 'master' || a.userId === ctx.identity.userId);
      if (!allowed) throw notFound(`Authentication "${input.authenticationId}" does not exist`);
      state.auths.delete(input.authenticationId);
      return { clientMutationId: input.clientMutationId ?? null };
    },
  };
}
