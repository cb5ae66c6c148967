/**
 * The HTTP side of the stand-in: a real node:http server on 127.0.0.1 so clients are
 * exercised over real sockets (timeouts, status codes, aborted requests), plus control
 * endpoints under /_standin/ for humans with curl. It logs nothing: requests carry tokens
 * and credentials.
 *
 * Request pipeline for POST /graphql:
 *   read body -> parse -> record call -> injected/random fault -> rate limit -> token (401)
 *   -> validate (400) -> token kind (403) -> execute (200)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  buildSchema,
  type DocumentNode,
  execute,
  GraphQLError,
  getOperationAST,
  type OperationDefinitionNode,
  OperationTypeNode,
  parse,
  validate,
} from 'graphql';
import { listenOnLoopback } from '../listen.js';
import { firstForbidden, rootFieldName } from './access.js';
import { FaultInjector, type FaultKind, type FaultRule, faultRuleSchema, RateLimiter } from './faults.js';
import { notifyExpiring } from './notify.js';
import { createRootValue } from './resolvers.js';
import { traySchemaSdl } from './schema.js';
import {
  type NewSolutionVersion,
  type SeedSolution,
  type Snapshot,
  type SolutionVersionRow,
  type TokenIdentity,
  TrayState,
} from './state.js';
import { newSolutionVersionSchema } from './versions.js';

export interface TrayStandInOptions {
  masterToken: string;
  port?: number; // default 0 (ephemeral), always bound to 127.0.0.1
  solutions?: SeedSolution[];
  rateLimit?: { perSecond: number; burst: number } | false; // default { perSecond: 30, burst: 50 }
  randomTransientFaultRate?: number; // 0..1, default 0
  random?: () => number; // default Math.random
  userTokenTtlMs?: number; // default 2 days
  /**
   * Time each answer takes, drawn uniformly from the range per call (a number: fixed). Default
   * DEFAULT_TRAY_LATENCY_MS: a real Tray call crosses the internet and runs GraphQL resolvers.
   * 0 only where a test measures something other than timing.
   */
  latencyMs?: number | { min: number; max: number };
  /** Tray's "wait at least 2 s after createSolutionInstance before enabling" rule; default 2000. */
  enableDelayMs?: number;
}

/**
 * Nobody here has measured Tray from AWS; a call crossing the internet and running GraphQL
 * resolvers takes tens to hundreds of milliseconds, so the default draws from 100–400 ms.
 */
export const DEFAULT_TRAY_LATENCY_MS = { min: 100, max: 400 } as const;
export const TRAY_ENABLE_DELAY_MS = 2_000;

export interface CallRecord {
  operation: string;
  tokenKind: 'master' | 'user' | 'none' | 'invalid';
  outcome: 'ok' | 'graphqlError' | 'fault';
  fault?: FaultKind;
  /** Refused by the stand-in's own rate limiter (Tray's 30/s, burst 50), not by an injected fault. */
  rateLimited?: boolean;
  at: number;
}

export interface TrayStandIn {
  url: string;
  port: number;
  calls: CallRecord[];
  injectFault(rule: FaultRule): void;
  clearFaults(): void;
  snapshot(): Snapshot;
  countsByOperation(): Record<string, number>;
  revokeUserTokens(): void;
  setMasterToken(token: string): void;
  /** Publishes a new version of a seeded solution (also POST /_standin/solutions/<id>/versions). */
  publishSolutionVersion(solutionId: string, spec: NewSolutionVersion): SolutionVersionRow;
  close(): Promise<void>;
}

const TWO_DAYS_MS = 2 * 24 * 60 * 60 * 1000;
const MAX_BODY_BYTES = 1024 * 1024;

// Bodies fixed by the reference / brief; kept as exact strings so clients can be tested against them.
const UNAUTHORIZED_BODY =
  '{"data":null,"errors":[{"message":"Unauthorized","extensions":{"name":"AuthenticationError","code":"unauthenticated"}}]}';
export const RATE_LIMIT_BODY =
  '{"data":null,"errors":[{"message":"Rate limit exceeded","extensions":{"name":"PreconditionError","code":"access_not_allowed"}}]}';
const HTTP500_BODY = '{"errors":[{"message":"Internal Server Error"}]}';

interface Reply {
  status: number;
  body: string;
  contentType?: string;
}

const json = (status: number, value: unknown): Reply => ({ status, body: JSON.stringify(value) });
const errorsReply = (status: number, message: string, extensions?: Record<string, string>): Reply =>
  json(status, { data: null, errors: [extensions ? { message, extensions } : { message }] });

function send(res: ServerResponse, r: Reply): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(r.status, {
    'content-type': r.contentType ?? 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(r.body),
  });
  res.end(r.body);
}

/** Resolves true when `ms` elapsed, false when the signal aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function latencyDrawer(spec: number | { min: number; max: number }, random: () => number): () => number {
  const { min, max } = typeof spec === 'number' ? { min: spec, max: spec } : spec;
  if (!(min >= 0 && max >= min)) throw new Error('startTrayStandIn: latencyMs needs 0 <= min <= max');
  return () => (max === min ? min : Math.round(min + random() * (max - min)));
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function tokenOf(req: IncomingMessage): string | null | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined; // no header
  const m = /^Bearer +(\S+)\s*$/i.exec(h);
  return m?.[1] ?? null; // null: a header that is not a bearer token
}

interface ParsedRequest {
  doc?: DocumentNode;
  op?: OperationDefinitionNode;
  syntaxError?: GraphQLError;
  variables: Record<string, unknown> | undefined;
  operationName: string | undefined;
}

function parseRequest(raw: string): ParsedRequest | Reply {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return errorsReply(400, 'Request body must be JSON: {"query", "variables", "operationName"}');
  }
  if (typeof body !== 'object' || body === null) return errorsReply(400, 'Request body must be a JSON object');
  const { query, variables, operationName } = body as Record<string, unknown>;
  if (typeof query !== 'string') return errorsReply(400, '"query" must be a string');
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) {
    return errorsReply(400, '"variables" must be an object');
  }
  if (operationName != null && typeof operationName !== 'string') return errorsReply(400, '"operationName" must be a string');
  const out: ParsedRequest = {
    variables: (variables ?? undefined) as Record<string, unknown> | undefined,
    operationName: operationName ?? undefined,
  };
  try {
    out.doc = parse(query);
    out.op = getOperationAST(out.doc, out.operationName) ?? undefined;
  } catch (e) {
    out.syntaxError = e instanceof GraphQLError ? e : new GraphQLError(String(e));
  }
  return out;
}

export async function startTrayStandIn(opts: TrayStandInOptions): Promise<TrayStandIn> {
  if (!opts.masterToken) throw new Error('startTrayStandIn: masterToken is required');
  const rate = opts.randomTransientFaultRate ?? 0;
  if (!(rate >= 0 && rate <= 1)) throw new Error('startTrayStandIn: randomTransientFaultRate must be within 0..1');

  const state = new TrayState(opts.masterToken, opts.userTokenTtlMs ?? TWO_DAYS_MS, opts.solutions ?? []);
  const faults = new FaultInjector(rate, opts.random ?? Math.random);
  const rl = opts.rateLimit ?? { perSecond: 30, burst: 50 };
  const limiter = rl === false ? undefined : new RateLimiter(rl.perSecond, rl.burst);
  const schema = buildSchema(traySchemaSdl);
  const rootValue = createRootValue(state, { enableDelayMs: opts.enableDelayMs ?? TRAY_ENABLE_DELAY_MS });
  const latency = latencyDrawer(opts.latencyMs ?? DEFAULT_TRAY_LATENCY_MS, Math.random); // not opts.random: injected fault sequences stay as they were
  const calls: CallRecord[] = [];
  // Aborted by close(): ends every latency/hang wait so nothing keeps the process alive.
  const closing = new AbortController();

  /** Everything after fault injection: what an unfaulted Tray would answer. */
  function answer(p: ParsedRequest, identity: TokenIdentity | undefined, record: CallRecord, limited: boolean): Reply {
    if (limited) {
      record.outcome = 'fault';
      record.fault = 'rateLimit';
      record.rateLimited = true;
      return { status: 200, body: RATE_LIMIT_BODY };
    }
    record.outcome = 'graphqlError'; // until execution succeeds
    if (!identity) return { status: 401, body: UNAUTHORIZED_BODY };
    if (p.syntaxError || !p.doc) return json(400, { data: null, errors: [p.syntaxError?.toJSON()] });
    if (!p.op)
      return errorsReply(
        400,
        p.operationName ? `Unknown operation "${p.operationName}"` : 'Must provide operationName when the document has several operations',
      );
    const invalid = validate(schema, p.doc);
    if (invalid.length > 0) return json(400, { data: null, errors: invalid.map((e) => e.toJSON()) });
    const denied = firstForbidden(p.doc, p.op, identity.kind);
    if (denied) {
      const needs = denied.need === 'master' ? 'a master token' : 'a user token (from authorize)';
      return errorsReply(403, `Forbidden: "${denied.field}" requires ${needs}`, { name: 'ForbiddenError', code: 'forbidden' });
    }
    // Resolvers are synchronous, so execute() returns a result, not a promise.
    const result = execute({
      schema,
      document: p.doc,
      rootValue,
      contextValue: { identity },
      variableValues: p.variables,
      operationName: p.operationName,
    });
    if (result instanceof Promise) throw new Error('unexpected async execution');
    record.outcome = result.errors?.length ? 'graphqlError' : 'ok';
    return json(200, { data: result.data ?? null, ...(result.errors ? { errors: result.errors.map((e) => e.toJSON()) } : {}) });
  }

  /** The Tray user a request is about (its externalUserId), for fault rules scoped to one user. */
  function subjectOf(p: ParsedRequest, identity: TokenIdentity | undefined): string | undefined {
    if (identity?.kind === 'user') return state.users.get(identity.userId)?.externalUserId;
    const v = p.variables ?? {};
    const nested = [v, v.input, v.criteria].filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
    for (const o of nested) if (typeof o.externalUserId === 'string') return o.externalUserId;
    for (const o of nested) if (typeof o.userId === 'string') return state.users.get(o.userId)?.externalUserId;
    return undefined;
  }

  async function handleGraphql(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return send(res, errorsReply(405, 'Only POST is supported'));
    }
    const raw = await readBody(req);
    if (raw === undefined) return send(res, errorsReply(413, 'Request body too large'));
    const parsed = parseRequest(raw);
    if ('status' in parsed) return send(res, parsed);

    const token = tokenOf(req);
    const identity = token ? state.identify(token) : undefined;
    const record: CallRecord = {
      operation: parsed.doc && parsed.op ? rootFieldName(parsed.doc, parsed.op) : '(invalid)',
      tokenKind: token === undefined ? 'none' : (identity?.kind ?? 'invalid'),
      outcome: 'ok',
      at: Date.now(),
    };
    calls.push(record); // pushed on arrival so `calls` is in request order even with delays

    // Client gave up (e.g. its timeout): stop waiting on its behalf.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    const waitSignal = AbortSignal.any([closing.signal, gone.signal]);

    const fault = faults.decide(record.operation, parsed.op?.operation === OperationTypeNode.MUTATION, subjectOf(parsed, identity));
    // Tray's limiter counts a request when it arrives, whatever becomes of it.
    const limited = limiter !== undefined && !limiter.tryTake();
    // The time the answer takes; a client that gives up meanwhile gets nothing.
    const delay = latency();
    if (delay > 0 && !(await sleep(delay, waitSignal))) return void res.destroy();
    switch (fault?.kind) {
      case 'http500':
        Object.assign(record, { outcome: 'fault', fault: 'http500' });
        return send(res, { status: 500, body: HTTP500_BODY });
      case 'rateLimit':
        Object.assign(record, { outcome: 'fault', fault: 'rateLimit' });
        return send(res, { status: 200, body: RATE_LIMIT_BODY });
      case 'hang':
        Object.assign(record, { outcome: 'fault', fault: 'hang' });
        // Never executed. If the client waits the whole `ms`, it gets what a gateway would send.
        if (await sleep(fault.ms, waitSignal)) send(res, { status: 504, body: 'Gateway Timeout', contentType: 'text/plain' });
        else res.destroy();
        return;
      case 'commitThenHang':
        // The operation takes effect, then the answer never comes: the client's timeout fires
        // on a create that did happen (the case Tray's lack of idempotency keys makes dangerous).
        answer(parsed, identity, record, limited);
        Object.assign(record, { outcome: 'fault', fault: 'commitThenHang' });
        if (await sleep(fault.ms, waitSignal)) send(res, { status: 504, body: 'Gateway Timeout', contentType: 'text/plain' });
        else res.destroy();
        return;
      case 'latency':
        if (!(await sleep(fault.ms, waitSignal))) return void res.destroy();
        send(res, answer(parsed, identity, record, limited));
        record.fault = 'latency'; // outcome stays that of the real answer
        return;
      case 'commitThenFail':
        answer(parsed, identity, record, limited); // the effect is stored; only the answer is lost
        Object.assign(record, { outcome: 'fault', fault: 'commitThenFail' });
        return send(res, { status: 502, body: 'Bad Gateway', contentType: 'text/plain' });
      case undefined:
        return send(res, answer(parsed, identity, record, limited));
    }
  }

  function redactedSnapshot(): Snapshot {
    const s = state.snapshot();
    return { ...s, authentications: s.authentications.map((a) => ({ ...a, data: '[redacted]' })) };
  }

  async function handleControl(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const route = `${req.method ?? ''} ${path}`;
    if (route === 'GET /_standin/state') return send(res, json(200, redactedSnapshot()));
    if (route === 'GET /_standin/calls') return send(res, json(200, calls));
    if (route === 'DELETE /_standin/faults') {
      faults.clear();
      return send(res, json(200, { ok: true }));
    }
    if (route === 'POST /_standin/faults') {
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(raw ?? '');
      } catch {
        return send(res, json(400, { error: 'body must be a JSON FaultRule' }));
      }
      const rule = faultRuleSchema.safeParse(body);
      if (!rule.success) return send(res, json(400, { error: 'invalid FaultRule', issues: rule.error.issues }));
      faults.add(rule.data);
      return send(res, json(201, { ok: true }));
    }
    const version = /^POST \/_standin\/solutions\/([^/]+)\/versions$/.exec(route);
    if (version) {
      const raw = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(raw || '{}');
      } catch {
        return send(
          res,
          json(400, { error: 'body must be JSON: {"addConfigSlots"?, "addAuthSlots"?, "requiresUserInput"?, "requiresSystemInput"?}' }),
        );
      }
      const spec = newSolutionVersionSchema.safeParse(body);
      if (!spec.success) return send(res, json(400, { error: 'invalid new version', issues: spec.error.issues }));
      const id = decodeURIComponent(version[1] as string);
      if (!state.solutions.has(id)) return send(res, json(404, { error: `no solution "${id}"` }));
      try {
        return send(res, json(201, state.publishSolutionVersion(id, spec.data)));
      } catch (e) {
        return send(res, json(409, { error: (e as Error).message }));
      }
    }
    if (route === 'POST /_standin/notify-expiring') {
      // Tray's expired-auth notification for one auth, sent to a webhook (notify.ts).
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req)) ?? '');
      } catch {
        return send(res, json(400, { error: 'body must be JSON: {"authId", "url"}' }));
      }
      const answer = await notifyExpiring(state, body);
      return send(res, json(answer.status, answer.body));
    }
    return send(res, json(404, { error: `no route ${route}` }));
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const handler =
      path === '/graphql'
        ? handleGraphql(req, res)
        : path.startsWith('/_standin/')
          ? handleControl(req, res, path)
          : Promise.resolve(send(res, json(404, { error: 'not found' })));
    handler.catch(() => {
      // A bug or a socket torn down mid-request: answer 500 if still possible, never crash the test run.
      if (!res.headersSent) send(res, { status: 500, body: HTTP500_BODY });
      else res.destroy();
    });
  });

  const port = await listenOnLoopback(server, opts.port ?? 0);

  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    port,
    calls,
    injectFault: (rule) => faults.add(faultRuleSchema.parse(rule)),
    clearFaults: () => faults.clear(),
    snapshot: () => state.snapshot(),
    countsByOperation: () => {
      const counts: Record<string, number> = {};
      for (const c of calls) counts[c.operation] = (counts[c.operation] ?? 0) + 1;
      return counts;
    },
    revokeUserTokens: () => state.revokeUserTokens(),
    publishSolutionVersion: (solutionId, spec) => state.publishSolutionVersion(solutionId, newSolutionVersionSchema.parse(spec)),
    setMasterToken: (token) => {
      if (!token) throw new Error('setMasterToken: token must not be empty');
      state.setMasterToken(token);
    },
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        closing.abort(); // wake every hang/latency wait
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive and hanging sockets would otherwise hold close() open
      });
      return closed;
    },
  };
}
