import { GraphQLClient } from 'graphql-request';
import type * as z from 'zod';
import { ImportError, type Step } from '../errors.js';
import { registerSecret } from '../redact.js';
import { RETRY_POLICY, type RetryOptions, withRetry } from '../retry.js';
import { classifyTrayFailure, isSafeToResend } from './classify.js';
import * as op from './operations.js';
import { CLI_RATE_PER_SECOND, Pacer } from './pacer.js';

/**
 * Tray Embedded client: one method per operation the import uses, the right token kind for
 * each (reference table), a timeout on every call, transient failures retried with backoff
 * inside the caller's deadline, answers validated with zod. A 401/403 on a master-token call
 * triggers one refetch of the master token (it may have been rotated) before giving up.
 */
export interface MasterTokenSource {
  get(): Promise<string>;
  /** Drops any cached value and reads the secret again. */
  refresh(): Promise<string>;
}

export interface TrayClientOptions {
  url: string;
  masterToken: MasterTokenSource;
  /** Per-call timeout. */
  timeoutMs?: number;
  /** Epoch ms: no retry starts if it could not finish by then. */
  deadline?: number;
  retry?: Partial<Pick<RetryOptions, 'maxAttempts' | 'baseDelayMs' | 'maxDelayMs' | 'random'>>;
  fetch?: typeof fetch;
  /**
   * Paces every call to this process's share of the Tray rate budget. Default: the operators'
   * reserve (CLI_RATE_PER_SECOND), shared by every client of the process.
   */
  pacer?: Pacer;
  /** Told of every call Tray answered or failed, with its duration (the worker's TrayCallMs metric). */
  onCall?: (call: { operation: string; ms: number; code: string | undefined }) => void;
}

let cliPacer: Pacer | undefined;
/** The CLI's share of the budget, one per process: every command's clients draw on it. */
function defaultPacer(): Pacer {
  return (cliPacer ??= new Pacer({ ratePerSecond: CLI_RATE_PER_SECOND, burst: 5 }));
}

type Token = { kind: 'master' } | { kind: 'user'; token: string };
const MASTER: Token = { kind: 'master' };
const user = (token: string): Token => ({ kind: 'user', token });
const ops = op.TRAY_OPERATIONS;

/** A call is started only with at least this much time left before the deadline. */
const MIN_CALL_MS = 1_000;

const PAGE_SIZE = 100;
/** Look-ups page through at most this many items: a user with thousands of instances is a bug elsewhere. */
const MAX_PAGES = 50;

export class TrayClient {
  private readonly gql: GraphQLClient;
  private readonly options: Required<Pick<TrayClientOptions, 'timeoutMs' | 'deadline' | 'pacer'>> & TrayClientOptions;

  constructor(options: TrayClientOptions) {
    this.options = { timeoutMs: 10_000, deadline: Number.POSITIVE_INFINITY, ...options, pacer: options.pacer ?? defaultPacer() };
    this.gql = new GraphQLClient(options.url, options.fetch ? { fetch: options.fetch } : {});
  }

  /** The same client with another deadline (one per Lambda invocation). */
  withDeadline(deadline: number): TrayClient {
    return new TrayClient({ ...this.options, deadline });
  }

  async createExternalUser(input: { name: string; externalUserId: string; isTestUser: boolean }): Promise<string> {
    const data = await this.call(ops.createExternalUser, input, MASTER);
    return data.createExternalUser.userId;
  }

  /** Mints a user token (valid 2 days). The token is registered as a secret before anyone can log it. */
  async authorize(userId: string): Promise<string> {
    const data = await this.call(ops.authorize, { userId }, MASTER);
    registerSecret(data.authorize.accessToken);
    return data.authorize.accessToken;
  }

  /**
   * Mints a one-use authorization code (valid 5 minutes) for the user's config wizard or auth
   * dialog. Registered as a secret before anyone can log it: whoever holds it can act as the user
   * in Tray's embedded UI. Not a create, so transient failures are simply retried.
   */
  async generateAuthorizationCode(userId: string): Promise<string> {
    const data = await this.call(ops.generateAuthorizationCode, { userId }, MASTER);
    registerSecret(data.generateAuthorizationCode.authorizationCode);
    return data.generateAuthorizationCode.authorizationCode;
  }

  async findUsersByExternalUserId(externalUserId: string): Promise<op.TrayUser[]> {
    return this.paginate(async (after) => {
      const data = await this.call(ops.findUsers, { externalUserId, first: PAGE_SIZE, after }, MASTER);
      return data.users;
    });
  }

  async createUserAuthentication(
    userToken: string,
    input: {
      name: string;
      serviceId: string;
      serviceEnvironmentId: string;
      data: Record<string, unknown>;
      formData?: Record<string, unknown> | undefined;
      scopes?: string[] | undefined;
      hidden?: boolean | undefined;
    },
  ): Promise<string> {
    const variables = {
      ...input,
      // Tray's Json scalar is a JSON-encoded string.
      data: JSON.stringify(input.data),
      formData: input.formData === undefined ? undefined : JSON.stringify(input.formData),
    };
    const data = await this.call(ops.createUserAuthentication, variables, user(userToken));
    return data.createUserAuthentication.authenticationId;
  }

  /** Every auth of the user: Tray's `viewer.authentications` takes no arguments and is not paged. */
  async listAuthentications(userToken: string): Promise<op.TrayAuthentication[]> {
    const data = await this.call(ops.listAuthentications, {}, user(userToken));
    const { edges, pageInfo } = data.viewer.authentications;
    if (pageInfo.hasNextPage) {
      // Tray documents the list as complete; a short one would make a look-up miss an auth and create it again.
      throw new ImportError(
        'TRAY_BAD_RESPONSE',
        'lookup',
        'Tray answered viewer.authentications with more pages, which its schema gives no way to read: refusing to guess from a partial list',
      );
    }
    return edges.map((e) => e.node);
  }

  async createSolutionInstance(
    userToken: string,
    input: {
      solutionId: string;
      instanceName: string;
      authValues: { externalId: string; authId: string }[];
      configValues: { externalId: string; value: unknown }[];
    },
  ): Promise<{ id: string; enabled: boolean }> {
    const variables = { ...input, configValues: encodeConfigValues(input.configValues) };
    const data = await this.call(ops.createSolutionInstance, variables, user(userToken));
    return data.createSolutionInstance.solutionInstance;
  }

  /**
   * Enables an instance, sending the plan's current values with it: an instance that could not be
   * enabled before (a required value was missing) heals once the plan is fixed and the user
   * redriven. Tray refuses, instead of enabling a broken instance, when a required slot is empty.
   */
  async enableSolutionInstance(
    userToken: string,
    solutionInstanceId: string,
    values: { authValues: { externalId: string; authId: string }[]; configValues: { externalId: string; value: unknown }[] },
  ): Promise<{ id: string; enabled: boolean }> {
    const variables = {
      solutionInstanceId,
      enabled: true,
      errorOnEnablingWithMissingValues: true,
      authValues: values.authValues,
      configValues: encodeConfigValues(values.configValues),
    };
    const data = await this.call(ops.enableSolutionInstance, variables, user(userToken));
    return data.updateSolutionInstance.solutionInstance;
  }

  /** Points the instance's slots at these auths (credential rotation): the instance is never left without one. */
  async repointSolutionInstance(
    userToken: string,
    solutionInstanceId: string,
    authValues: { externalId: string; authId: string }[],
  ): Promise<{ id: string; enabled: boolean }> {
    const data = await this.call(ops.updateSolutionInstanceValues, { solutionInstanceId, authValues }, user(userToken));
    return data.updateSolutionInstance.solutionInstance;
  }

  /** Disables the instance, keeping it and its auths (offboarding policy `disable`). */
  async disableSolutionInstance(userToken: string, solutionInstanceId: string): Promise<{ id: string; enabled: boolean }> {
    const data = await this.call(ops.updateSolutionInstanceValues, { solutionInstanceId, enabled: false }, user(userToken));
    return data.updateSolutionInstance.solutionInstance;
  }

  /** Moves the instance to its solution's newest version with the given values. */
  async upgradeSolutionInstance(
    userToken: string,
    solutionInstanceId: string,
    values: { authValues: { externalId: string; authId: string }[]; configValues: { externalId: string; value: unknown }[] },
  ): Promise<{ id: string; enabled: boolean }> {
    const variables = { solutionInstanceId, authValues: values.authValues, configValues: encodeConfigValues(values.configValues) };
    const data = await this.call(ops.upgradeSolutionInstance, variables, user(userToken));
    return data.upgradeSolutionInstance.solutionInstance;
  }

  /** Removals answer `'gone'` when Tray says the object does not exist: removing it again is done, not a failure. */
  async removeSolutionInstance(userToken: string, solutionInstanceId: string): Promise<'removed' | 'gone'> {
    return gone(this.call(ops.removeSolutionInstance, { solutionInstanceId }, user(userToken)));
  }

  async removeAuthentication(userToken: string, authenticationId: string): Promise<'removed' | 'gone'> {
    return gone(this.call(ops.removeAuthentication, { authenticationId }, user(userToken)));
  }

  async removeExternalUser(userId: string): Promise<'removed' | 'gone'> {
    return gone(this.call(ops.removeExternalUser, { userId }, MASTER));
  }

  /** With a user token: that user's instances. With the master token, `owner` filters by Tray user id. */
  async listSolutionInstances(
    token: Token,
    criteria: { solutionId?: string; owner?: string; id?: string },
  ): Promise<op.TraySolutionInstance[]> {
    return this.paginate(async (after) => {
      const data = await this.call(ops.listSolutionInstances, { ...criteria, first: PAGE_SIZE, after }, token);
      return data.viewer.solutionInstances;
    });
  }

  async listSolutions(): Promise<op.TraySolution[]> {
    return this.paginate(async (after) => {
      const data = await this.call(ops.listSolutions, { first: PAGE_SIZE, after }, MASTER);
      return data.viewer.solutions;
    });
  }

  private async paginate<T>(
    page: (
      after: string | undefined,
    ) => Promise<{ edges: { node: T }[]; pageInfo: { hasNextPage: boolean; endCursor?: string | null | undefined } }>,
  ): Promise<T[]> {
    const out: T[] = [];
    let after: string | undefined;
    // A short list would make a look-up miss an object and create it again: fail instead.
    for (let i = 0; i < MAX_PAGES; i++) {
      const connection = await page(after);
      out.push(...connection.edges.map((e) => e.node));
      if (!connection.pageInfo.hasNextPage) return out;
      if (!connection.pageInfo.endCursor) {
        throw new ImportError(
          'TRAY_BAD_RESPONSE',
          'lookup',
          'Tray said there are more pages but gave no endCursor: cannot list everything',
        );
      }
      after = connection.pageInfo.endCursor;
    }
    throw new ImportError(
      'TRAY_BAD_RESPONSE',
      'lookup',
      `more than ${MAX_PAGES * PAGE_SIZE} items to look through: refusing to guess from a partial list`,
    );
  }

  /**
   * One Tray operation, retried on transient failures while the deadline allows. A create that
   * failed ambiguously (it may have happened) is not re-sent here: it surfaces as `ambiguous`
   * so that the caller looks it up first. A 401/403 on a master-token call triggers one
   * refetch of the token; the re-send after it goes through the same guard.
   */
  private async call<S extends z.ZodType>(
    operation: op.TrayOperation<S>,
    variables: Record<string, unknown>,
    token: Token,
  ): Promise<z.infer<S>> {
    if (operation.token !== 'either' && operation.token !== token.kind)
      throw new Error(`${operation.name} takes the ${operation.token} token`);
    const options: RetryOptions = {
      ...RETRY_POLICY.trayCall,
      ...this.options.retry,
      // A failed master-token read is not Tray's fault, and retrying the same read here won't help.
      shouldRetry: (error) => error.kind === 'transient' && !error.ambiguous && error.step !== 'secrets',
      deadline: this.options.deadline,
      attemptBudgetMs: MIN_CALL_MS,
    };
    const attempt = async (): Promise<z.infer<S>> => {
      try {
        return await this.send(operation, variables, token);
      } catch (e) {
        const error = e as ImportError;
        if (!operation.resendSafe && error.kind === 'transient' && !isSafeToResend(error)) {
          // May have been created: surface it so the caller looks it up before creating again.
          throw new ImportError(error.code, error.step, error.message, { httpStatus: error.httpStatus, cause: error, ambiguous: true });
        }
        throw error;
      }
    };
    let refreshedMaster = false;
    return withRetry(operation.step, options, async () => {
      try {
        return await attempt();
      } catch (e) {
        const error = e as ImportError;
        if (token.kind === 'master' && error.code === 'TRAY_UNAUTHORIZED' && !refreshedMaster) {
          // The token may have been rotated since it was cached: read it again, once. A refused
          // request was not executed, so sending it again cannot duplicate anything.
          refreshedMaster = true;
          await this.options.masterToken.refresh();
          return attempt();
        }
        throw error;
      }
    });
  }

  /** No call may outlive the invocation: its timeout is cut to the time left before the deadline. */
  private callTimeoutMs(step: Step, operation: string): number {
    const left = this.options.deadline - Date.now();
    if (left < MIN_CALL_MS) {
      throw new ImportError('OUT_OF_TIME', step, `not enough time left in this invocation to call ${operation}; it will be retried`);
    }
    return Math.min(this.options.timeoutMs, left);
  }

  private async send<S extends z.ZodType>(
    operation: op.TrayOperation<S>,
    variables: Record<string, unknown>,
    token: Token,
  ): Promise<z.infer<S>> {
    const { name, document, step } = operation;
    const bearer = token.kind === 'master' ? await this.options.masterToken.get() : token.token;
    // The slot must leave room for the call itself: a call that cannot finish is not started.
    await this.options.pacer.take(step, this.options.deadline - MIN_CALL_MS);
    const signal = AbortSignal.timeout(this.callTimeoutMs(step, name));
    const started = performance.now();
    let data: unknown;
    try {
      data = await this.gql.request({
        document,
        variables: dropUndefined(variables),
        requestHeaders: { authorization: `Bearer ${bearer}` },
        signal,
      });
    } catch (e) {
      const error = classifyTrayFailure(e, step, name);
      this.options.onCall?.({ operation: name, ms: performance.now() - started, code: error.code });
      if (error.code === 'TRAY_RATE_LIMITED') this.options.pacer.onRateLimited();
      throw error;
    }
    this.options.onCall?.({ operation: name, ms: performance.now() - started, code: undefined });
    const parsed = operation.result.safeParse(data);
    if (!parsed.success) {
      throw new ImportError(
        'TRAY_BAD_RESPONSE',
        step,
        `Tray's answer to ${name} does not have the documented shape: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    }
    return parsed.data;
  }
}

async function gone(call: Promise<unknown>): Promise<'removed' | 'gone'> {
  try {
    await call;
    return 'removed';
  } catch (e) {
    if (e instanceof ImportError && e.notFound) return 'gone';
    throw e;
  }
}

function encodeConfigValues(values: { externalId: string; value: unknown }[]): { externalId: string; value: string }[] {
  return values.map((v) => ({ externalId: v.externalId, value: JSON.stringify(v.value) }));
}

function dropUndefined(variables: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(variables).filter(([, v]) => v !== undefined));
}

/** A fixed master token (CLI, tests): refresh re-reads through the given function. */
export function staticMasterToken(read: () => string | Promise<string>): MasterTokenSource {
  let cached: Promise<string> | undefined;
  const load = async () => {
    const value = await read();
    registerSecret(value);
    return value;
  };
  return {
    get: () => (cached ??= load()),
    refresh: () => (cached = load()),
  };
}
