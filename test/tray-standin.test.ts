/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are untyped JSON; tests index into them freely */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SeedSolution, startTrayStandIn, type TrayStandIn } from '../local/tray-standin/index.js';

const MASTER = 'master-token-for-tests';

const SOLUTIONS: SeedSolution[] = [
  {
    id: 'sol-1',
    title: 'SQS import',
    tags: ['import'],
    authSlots: [{ externalId: 'external_sqs_authentication', title: 'SQS' }],
    configSlots: [
      { externalId: 'external_email', title: 'Email', required: true },
      { externalId: 'external_batch', title: 'Batch size', defaultValue: 10, required: true },
      { externalId: 'external_note', title: 'Note' },
    ],
  },
  { id: 'sol-hidden', title: 'Unpublished', published: false, authSlots: [], configSlots: [] },
];

interface GqlResult {
  status: number;
  body: any;
  text: string;
}

async function gql(url: string, token: string | undefined, query: string, variables?: Record<string, unknown>): Promise<GqlResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

const CREATE_USER = `mutation ($input: CreateExternalUserInput!) { createExternalUser(input: $input) { userId } }`;
const AUTHORIZE = `mutation ($input: AuthorizeInput!) { authorize(input: $input) { accessToken } }`;
const CREATE_AUTH = `mutation ($input: CreateUserAuthenticationInput!) { createUserAuthentication(input: $input) { authenticationId } }`;
const CREATE_INSTANCE = `mutation ($input: CreateSolutionInstanceInput!) {
  createSolutionInstance(input: $input) { solutionInstance { id name enabled created } } }`;
const UPDATE_INSTANCE = `mutation ($input: UpdateSolutionInstanceInput!) {
  updateSolutionInstance(input: $input) { solutionInstance { id enabled } } }`;
const USERS = `query ($criteria: UserSearchCriteria, $first: Int, $after: String) {
  users(criteria: $criteria, first: $first, after: $after) {
    edges { node { id name externalUserId } cursor } pageInfo { hasNextPage endCursor } } }`;
const INSTANCES = `query ($criteria: SolutionInstanceSearchCriteria) { viewer { solutionInstances(criteria: $criteria) {
  totalCount edges { node { id name enabled owner solution { id } authValues { externalId authId } configValues { externalId value } } }
  pageInfo { hasNextPage endCursor } } } }`;

const RATE_LIMIT_BODY =
  '{"data":null,"errors":[{"message":"Rate limit exceeded","extensions":{"name":"PreconditionError","code":"access_not_allowed"}}]}';
const UNAUTHORIZED_BODY =
  '{"data":null,"errors":[{"message":"Unauthorized","extensions":{"name":"AuthenticationError","code":"unauthenticated"}}]}';

/** createExternalUser + authorize + createUserAuthentication: what every user-side test needs. */
async function newUserWithAuth(s: TrayStandIn, externalUserId = `ext-${Math.random()}`) {
  const u = await gql(s.url, MASTER, CREATE_USER, { input: { name: 'Ada', externalUserId, isTestUser: true } });
  const userId: string = u.body.data.createExternalUser.userId;
  const a = await gql(s.url, MASTER, AUTHORIZE, { input: { userId } });
  const userToken: string = a.body.data.authorize.accessToken;
  const c = await gql(s.url, userToken, CREATE_AUTH, {
    input: { name: 'SQS', serviceId: 'svc-sqs', serviceEnvironmentId: 'env-1', data: JSON.stringify({ accessKeyId: 'AK', secret: 'S' }) },
  });
  const authId: string = c.body.data.createUserAuthentication.authenticationId;
  return { userId, userToken, authId };
}

describe('tray stand-in: operations and rules', () => {
  let s: TrayStandIn;
  beforeAll(async () => {
    s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, solutions: SOLUTIONS, rateLimit: false });
  });
  afterAll(async () => {
    await s.close();
  });

  it('runs the full happy path with variables', async () => {
    expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/graphql$/);
    const { userId, userToken, authId } = await newUserWithAuth(s, 'happy-1');
    expect(userId).toMatch(/^user-/);
    expect(authId).toMatch(/^auth-/);

    const created = await gql(s.url, userToken, CREATE_INSTANCE, {
      input: {
        solutionId: 'sol-1',
        instanceName: 'Ada import',
        authValues: [{ externalId: 'external_sqs_authentication', authId }],
        configValues: [{ externalId: 'external_email', value: JSON.stringify('ada@example.com') }],
      },
    });
    expect(created.status).toBe(200);
    const inst = created.body.data.createSolutionInstance.solutionInstance;
    expect(inst).toMatchObject({ name: 'Ada import', enabled: false });
    expect(inst.id).toMatch(/^inst-/);
    expect(Number.isNaN(Date.parse(inst.created))).toBe(false);

    const enabled = await gql(s.url, userToken, UPDATE_INSTANCE, {
      input: { solutionInstanceId: inst.id, enabled: true, errorOnEnablingWithMissingValues: true },
    });
    expect(enabled.body).toEqual({ data: { updateSolutionInstance: { solutionInstance: { id: inst.id, enabled: true } } } });

    const snap = s.snapshot();
    expect(snap.users.find((u) => u.id === userId)).toEqual({ id: userId, name: 'Ada', externalUserId: 'happy-1', isTestUser: true });
    expect(snap.authentications.find((a) => a.id === authId)).toMatchObject({
      userId,
      serviceId: 'svc-sqs',
      serviceEnvironmentId: 'env-1',
      data: { accessKeyId: 'AK', secret: 'S' },
      scopes: null,
      hidden: false,
    });
    expect(snap.instances.find((i) => i.id === inst.id)).toMatchObject({
      owner: userId,
      solutionId: 'sol-1',
      enabled: true,
      authValues: [{ externalId: 'external_sqs_authentication', authId }],
      configValues: [{ externalId: 'external_email', value: '"ada@example.com"' }],
    });

    // The user sees its instance and its auths.
    const mine = await gql(s.url, userToken, INSTANCES);
    expect(mine.body.data.viewer.solutionInstances.totalCount).toBe(1);
    expect(mine.body.data.viewer.solutionInstances.edges[0].node).toMatchObject({ id: inst.id, owner: userId, solution: { id: 'sol-1' } });
    const auths = await gql(
      s.url,
      userToken,
      `{ viewer { authentications { edges { node { id name
      service { id name version title } serviceEnvironment { id title } } } pageInfo { hasNextPage } } } }`,
    );
    expect(auths.body.data.viewer.authentications.edges[0].node).toMatchObject({
      id: authId,
      service: { id: 'svc-sqs' },
      serviceEnvironment: { id: 'env-1' },
    });
    expect(s.countsByOperation()).toMatchObject({ createExternalUser: 1, authorize: 1, createSolutionInstance: 1 });
  });

  it('lists only published solutions with Json default values, master only', async () => {
    const r = await gql(
      s.url,
      MASTER,
      `query ($c: SolutionSearchCriteria) { viewer { solutions(criteria: $c) { edges { node { id title tags
      configSlots { externalId title defaultValue } authSlots { externalId title } } cursor } pageInfo { hasNextPage endCursor } } } }`,
      { c: { tags: ['import'] } },
    );
    const edges = r.body.data.viewer.solutions.edges;
    expect(edges.map((e: any) => e.node.id)).toEqual(['sol-1']);
    expect(edges[0].node.configSlots).toContainEqual({ externalId: 'external_batch', title: 'Batch size', defaultValue: '10' });
    // Tray's schema: defaultValue is a non-null Json, so a slot without a default says "null".
    expect(edges[0].node.configSlots).toContainEqual({ externalId: 'external_note', title: 'Note', defaultValue: 'null' });
  });

  it('does not dedupe createExternalUser, and paginates users over 3 pages', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await gql(s.url, MASTER, CREATE_USER, { input: { name: `dup-${i}`, externalUserId: 'same-ext' } });
      expect(r.status).toBe(200);
    }
    const names: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const r: GqlResult = await gql(s.url, MASTER, USERS, { criteria: { externalUserId: 'same-ext' }, first: 2, after });
      const conn = r.body.data.users;
      names.push(...conn.edges.map((e: any) => e.node.name));
      pages += 1;
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(pages).toBe(3);
    expect(names).toEqual(['dup-0', 'dup-1', 'dup-2', 'dup-3', 'dup-4']);

    const tooMany = await gql(s.url, MASTER, USERS, { first: 101 });
    expect(tooMany.body.errors[0].message).toMatch(/first/);
    const badCursor = await gql(s.url, MASTER, USERS, { after: 'bm90LWEtY3Vyc29y' });
    expect(badCursor.body.errors[0].message).toMatch(/cursor/i);
  });

  it('answers 403 for a valid token of the wrong kind', async () => {
    const { userToken } = await newUserWithAuth(s);
    const asUser = await gql(s.url, userToken, USERS, {});
    expect(asUser.status).toBe(403);
    expect(asUser.body.errors[0].extensions.code).toBe('forbidden');
    expect(asUser.body.errors[0].message).toMatch(/master token/);

    const asMaster = await gql(s.url, MASTER, CREATE_INSTANCE, { input: { solutionId: 'sol-1', instanceName: 'x' } });
    expect(asMaster.status).toBe(403);
    expect(asMaster.body.errors[0].message).toMatch(/user token/);

    const solutionsAsUser = await gql(s.url, userToken, `{ viewer { solutions { edges { cursor } } } }`);
    expect(solutionsAsUser.status).toBe(403);
    expect(solutionsAsUser.body.errors[0].message).toMatch(/viewer\.solutions/);

    // Master sees the partner's own auths on viewer.authentications: none.
    const masterAuths = await gql(s.url, MASTER, `{ viewer { authentications { edges { node { id } } } } }`);
    expect(masterAuths.body).toEqual({ data: { viewer: { authentications: { edges: [] } } } });
  });

  it('answers 401 with the exact body for missing and unknown tokens', async () => {
    const before = s.calls.length;
    const missing = await gql(s.url, undefined, USERS, {});
    const unknown = await gql(s.url, 'not-a-token', USERS, {});
    for (const r of [missing, unknown]) {
      expect(r.status).toBe(401);
      expect(r.text).toBe(UNAUTHORIZED_BODY);
    }
    expect(s.calls.slice(before).map((c) => c.tokenKind)).toEqual(['none', 'invalid']);
  });

  it('rejects an auth slot externalId of the wrong case, naming it', async () => {
    const { userToken, authId } = await newUserWithAuth(s);
    const r = await gql(s.url, userToken, CREATE_INSTANCE, {
      input: { solutionId: 'sol-1', instanceName: 'x', authValues: [{ externalId: 'External_SQS_Authentication', authId }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.errors[0].message).toBe('Auth slot "External_SQS_Authentication" does not exist in solution "sol-1"');
    expect(r.body.errors[0].extensions).toEqual({ name: 'ValidationError', code: 'invalid_input' });
    expect(r.body.data).toBeNull();
  });

  it('rejects an unknown config slot, a config value that is not JSON, and non-JSON auth data', async () => {
    const { userToken, authId } = await newUserWithAuth(s);
    const count = s.snapshot().instances.length;
    const unknownSlot = await gql(s.url, userToken, CREATE_INSTANCE, {
      input: { solutionId: 'sol-1', instanceName: 'x', configValues: [{ externalId: 'External_Email', value: '"a"' }] },
    });
    expect(unknownSlot.body.errors[0].message).toBe('Config slot "External_Email" does not exist in solution "sol-1"');

    const notJson = await gql(s.url, userToken, CREATE_INSTANCE, {
      input: {
        solutionId: 'sol-1',
        instanceName: 'x',
        authValues: [{ externalId: 'external_sqs_authentication', authId }],
        configValues: [{ externalId: 'external_email', value: 'ada@example.com' }],
      },
    });
    expect(notJson.status).toBe(200);
    expect(notJson.body.errors[0].message).toMatch(/external_email.*not valid JSON/);
    expect(s.snapshot().instances.length).toBe(count);

    const badData = await gql(s.url, userToken, CREATE_AUTH, {
      input: { name: 'x', serviceId: 's', serviceEnvironmentId: 'e', data: { not: 'a string' } },
    });
    expect(badData.status).toBe(200);
    expect(badData.body.errors[0].message).toMatch(/"data"/);
    const arrayData = await gql(s.url, userToken, CREATE_AUTH, {
      input: { name: 'x', serviceId: 's', serviceEnvironmentId: 'e', data: '[1,2]' },
    });
    expect(arrayData.body.errors[0].message).toMatch(/"data".*object/);

    const unpublished = await gql(s.url, userToken, CREATE_INSTANCE, { input: { solutionId: 'sol-hidden', instanceName: 'x' } });
    expect(unpublished.body.errors[0].message).toMatch(/sol-hidden/);

    const otherUsersAuth = await newUserWithAuth(s);
    const foreign = await gql(s.url, userToken, CREATE_INSTANCE, {
      input: {
        solutionId: 'sol-1',
        instanceName: 'x',
        authValues: [{ externalId: 'external_sqs_authentication', authId: otherUsersAuth.authId }],
      },
    });
    expect(foreign.body.errors[0].message).toMatch(/does not exist/);
  });

  it('refuses to enable with missing required slots when errorOnEnablingWithMissingValues is set', async () => {
    const { userToken, authId } = await newUserWithAuth(s);
    const created = await gql(s.url, userToken, CREATE_INSTANCE, {
      input: { solutionId: 'sol-1', instanceName: 'x', authValues: [{ externalId: 'external_sqs_authentication', authId }] },
    });
    const id = created.body.data.createSolutionInstance.solutionInstance.id;

    const refused = await gql(s.url, userToken, UPDATE_INSTANCE, {
      input: { solutionInstanceId: id, enabled: true, errorOnEnablingWithMissingValues: true },
    });
    expect(refused.status).toBe(200);
    const msg: string = refused.body.errors[0].message;
    expect(msg).toContain('external_email'); // required, no default
    expect(msg).not.toContain('external_batch'); // required but has a default
    expect(msg).not.toContain('external_note'); // optional
    expect(s.snapshot().instances.find((i) => i.id === id)?.enabled).toBe(false);

    // Supplying the value in the same update makes it pass.
    const ok = await gql(s.url, userToken, UPDATE_INSTANCE, {
      input: {
        solutionInstanceId: id,
        enabled: true,
        errorOnEnablingWithMissingValues: true,
        configValues: [{ externalId: 'external_email', value: '"a@b.c"' }],
      },
    });
    expect(ok.body.data.updateSolutionInstance.solutionInstance.enabled).toBe(true);

    // Another user cannot touch it.
    const other = await newUserWithAuth(s);
    const foreign = await gql(s.url, other.userToken, UPDATE_INSTANCE, { input: { solutionInstanceId: id, enabled: false } });
    expect(foreign.body.errors[0].extensions.code).toBe('not_found');
  });

  it('filters instances by owner for master, removes users with their instances, echoes clientMutationId', async () => {
    const a = await newUserWithAuth(s);
    const b = await newUserWithAuth(s);
    for (const u of [a, b]) {
      await gql(s.url, u.userToken, CREATE_INSTANCE, { input: { solutionId: 'sol-1', instanceName: 'i' } });
    }
    const ofA = await gql(s.url, MASTER, INSTANCES, { criteria: { owner: a.userId } });
    expect(ofA.body.data.viewer.solutionInstances.totalCount).toBe(1);
    expect(ofA.body.data.viewer.solutionInstances.edges[0].node.owner).toBe(a.userId);

    const removed = await gql(
      s.url,
      MASTER,
      `mutation ($input: RemoveExternalUserInput!) { removeExternalUser(input: $input) { clientMutationId } }`,
      { input: { userId: a.userId, clientMutationId: 'cm-1' } },
    );
    expect(removed.body.data.removeExternalUser.clientMutationId).toBe('cm-1');
    expect(s.snapshot().instances.some((i) => i.owner === a.userId)).toBe(false);
    expect((await gql(s.url, a.userToken, INSTANCES)).status).toBe(401); // its token died with it

    const removeAuth = `mutation ($input: RemoveUserAuthenticationInput!) { removeAuthentication(input: $input) { clientMutationId } }`;
    const byUser = await gql(s.url, b.userToken, removeAuth, { input: { authenticationId: b.authId } });
    expect(byUser.body).toEqual({ data: { removeAuthentication: { clientMutationId: null } } });
  });

  it('exposes control endpoints with redacted auth data', async () => {
    await newUserWithAuth(s);
    const base = s.url.replace(/\/graphql$/, '');
    const state: any = await (await fetch(`${base}/_standin/state`)).json();
    expect(state.authentications.length).toBeGreaterThan(0);
    for (const a of state.authentications) expect(a.data).toBe('[redacted]');
    const calls: any = await (await fetch(`${base}/_standin/calls`)).json();
    expect(calls.length).toBe(s.calls.length);

    const bad = await fetch(`${base}/_standin/faults`, { method: 'POST', body: JSON.stringify({ operation: 'users', kind: 'explode' }) });
    expect(bad.status).toBe(400);
    const add = await fetch(`${base}/_standin/faults`, { method: 'POST', body: JSON.stringify({ operation: 'users', kind: 'http500' }) });
    expect(add.status).toBe(201);
    expect((await gql(s.url, MASTER, USERS, {})).status).toBe(500);
    await fetch(`${base}/_standin/faults`, { method: 'POST', body: JSON.stringify({ operation: 'users', kind: 'http500' }) });
    expect((await fetch(`${base}/_standin/faults`, { method: 'DELETE' })).status).toBe(200);
    expect((await gql(s.url, MASTER, USERS, {})).status).toBe(200);
  });
});

describe('tray stand-in: rate limit', () => {
  it('returns the exact rate-limit body with HTTP 200 after the burst', async () => {
    const s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, rateLimit: { perSecond: 1, burst: 3 } });
    try {
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await gql(s.url, MASTER, USERS, {}));
      expect(results.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
      expect(results[3]?.status).toBe(200);
      expect(results[3]?.text).toBe(RATE_LIMIT_BODY);
      expect(s.calls[3]).toMatchObject({ operation: 'users', outcome: 'fault', fault: 'rateLimit' });
      await new Promise((r) => setTimeout(r, 1100)); // one token refilled
      expect((await gql(s.url, MASTER, USERS, {})).body.data).not.toBeNull();
    } finally {
      await s.close();
    }
  });
});

describe('tray stand-in: faults', () => {
  let s: TrayStandIn;
  beforeAll(async () => {
    s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, solutions: SOLUTIONS, rateLimit: false });
  });
  afterAll(async () => {
    await s.close();
  });
  const usersCount = () => s.snapshot().users.length;

  it('http500: answers 500 and does not execute', async () => {
    s.clearFaults();
    s.injectFault({ operation: 'createExternalUser', kind: 'http500' });
    const n = usersCount();
    const r = await gql(s.url, MASTER, CREATE_USER, { input: { name: 'x', externalUserId: 'f-500' } });
    expect(r.status).toBe(500);
    expect(r.text).toBe('{"errors":[{"message":"Internal Server Error"}]}');
    expect(usersCount()).toBe(n);
    expect(s.calls.at(-1)).toMatchObject({ operation: 'createExternalUser', outcome: 'fault', fault: 'http500' });
  });

  it('rateLimit: answers the rate-limit body and does not execute', async () => {
    s.clearFaults();
    s.injectFault({ operation: 'createExternalUser', kind: 'rateLimit' });
    const n = usersCount();
    const r = await gql(s.url, MASTER, CREATE_USER, { input: { name: 'x', externalUserId: 'f-rl' } });
    expect(r.status).toBe(200);
    expect(r.text).toBe(RATE_LIMIT_BODY);
    expect(usersCount()).toBe(n);
  });

  it('commitThenFail: stores the effect, then answers 502 Bad Gateway', async () => {
    s.clearFaults();
    s.injectFault({ operation: 'createExternalUser', kind: 'commitThenFail' });
    const r = await gql(s.url, MASTER, CREATE_USER, { input: { name: 'x', externalUserId: 'f-ctf' } });
    expect(r.status).toBe(502);
    expect(r.text).toBe('Bad Gateway');
    expect(s.snapshot().users.filter((u) => u.externalUserId === 'f-ctf')).toHaveLength(1);
    expect(s.calls.at(-1)).toMatchObject({ outcome: 'fault', fault: 'commitThenFail' });
  });

  it('commitThenHang: stores the effect, then never answers (504 after ms)', async () => {
    s.clearFaults();
    s.injectFault({ operation: 'createExternalUser', kind: 'commitThenHang', ms: 200 });
    const r = await gql(s.url, MASTER, CREATE_USER, { input: { name: 'x', externalUserId: 'f-cth' } });
    expect(r.status).toBe(504);
    expect(s.snapshot().users.filter((u) => u.externalUserId === 'f-cth')).toHaveLength(1);
    expect(s.calls.at(-1)).toMatchObject({ outcome: 'fault', fault: 'commitThenHang' });
  });

  it('latency: delays, then answers normally', async () => {
    s.clearFaults();
    s.injectFault({ operation: 'users', kind: 'latency', ms: 150 });
    const t0 = Date.now();
    const r = await gql(s.url, MASTER, USERS, {});
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(r.status).toBe(200);
    expect(r.body.data.users).toBeDefined();
    expect(s.calls.at(-1)).toMatchObject({ operation: 'users', outcome: 'ok', fault: 'latency' });
  });

  it('hang: holds the response for ms, does not execute, and the client can time out', async () => {
    s.clearFaults();
    s.injectFault({ operation: 'createExternalUser', kind: 'hang', ms: 150, times: 2 });
    const n = usersCount();
    const t0 = Date.now();
    const r = await gql(s.url, MASTER, CREATE_USER, { input: { name: 'x', externalUserId: 'f-hang' } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(r.status).toBe(504);
    expect(usersCount()).toBe(n);

    // A client timeout aborts the request well before ms.
    await expect(
      fetch(s.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
        body: JSON.stringify({ query: CREATE_USER, variables: { input: { name: 'x', externalUserId: 'f-hang' } } }),
        signal: AbortSignal.timeout(50),
      }),
    ).rejects.toThrow();
    expect(usersCount()).toBe(n);
  });

  it('hang: ends when close() is called', async () => {
    const h = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, rateLimit: false });
    h.injectFault({ operation: '*', kind: 'hang' }); // default 60 s
    const pending = fetch(h.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ users { edges { cursor } } }' }),
    });
    const settled = pending.then(
      () => 'answered',
      () => 'failed',
    );
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    await h.close();
    expect(await settled).toBe('failed');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('onCall/times: fires on calls onCall..onCall+times-1 counted from when the rule was added', async () => {
    s.clearFaults();
    await gql(s.url, MASTER, USERS, {}); // before the rule: not counted
    s.injectFault({ operation: 'users', kind: 'http500', onCall: 2, times: 2 });
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await gql(s.url, MASTER, USERS, {})).status);
      await gql(s.url, MASTER, `{ viewer { solutions { edges { cursor } } } }`); // other operations do not count
    }
    expect(statuses).toEqual([200, 500, 500, 200]);

    s.clearFaults();
    s.injectFault({ operation: '*', kind: 'http500', onCall: 2 });
    const anyOp = [
      (await gql(s.url, MASTER, USERS, {})).status,
      (await gql(s.url, MASTER, `{ viewer { solutions { edges { cursor } } } }`)).status,
      (await gql(s.url, MASTER, USERS, {})).status,
    ];
    expect(anyOp).toEqual([200, 500, 200]);
    s.clearFaults();
  });

  it('randomTransientFaultRate uses the injected RNG', async () => {
    const rolls = [0.1, 0.0, 0.9, 0.99]; // call 1: fault, kind index 0 (http500); call 2: no fault
    const r = await startTrayStandIn({
      masterToken: MASTER,
      latencyMs: 0,
      rateLimit: false,
      randomTransientFaultRate: 0.5,
      random: () => rolls.shift() ?? 0.99,
    });
    try {
      expect((await gql(r.url, MASTER, USERS, {})).status).toBe(500);
      expect((await gql(r.url, MASTER, USERS, {})).status).toBe(200);
    } finally {
      await r.close();
    }
  });
});

describe('tray stand-in: tokens', () => {
  it('setMasterToken rotates: the old master token stops working', async () => {
    const s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, rateLimit: false });
    try {
      expect((await gql(s.url, MASTER, USERS, {})).status).toBe(200);
      s.setMasterToken('rotated-master');
      expect((await gql(s.url, MASTER, USERS, {})).status).toBe(401);
      expect((await gql(s.url, 'rotated-master', USERS, {})).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('revokeUserTokens invalidates user tokens until re-authorize', async () => {
    const s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, solutions: SOLUTIONS, rateLimit: false });
    try {
      const { userId, userToken } = await newUserWithAuth(s);
      expect((await gql(s.url, userToken, INSTANCES)).status).toBe(200);
      s.revokeUserTokens();
      const r = await gql(s.url, userToken, INSTANCES);
      expect(r.status).toBe(401);
      expect(r.text).toBe(UNAUTHORIZED_BODY);
      const again = await gql(s.url, MASTER, AUTHORIZE, { input: { userId } });
      expect((await gql(s.url, again.body.data.authorize.accessToken, INSTANCES)).status).toBe(200);

      const unknown = await gql(s.url, MASTER, AUTHORIZE, { input: { userId: 'user-nope' } });
      expect(unknown.status).toBe(200);
      expect(unknown.body.errors[0].message).toMatch(/user-nope/);
    } finally {
      await s.close();
    }
  });

  it('user tokens expire after userTokenTtlMs', async () => {
    const s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, rateLimit: false, userTokenTtlMs: 300 });
    try {
      const { userToken } = await newUserWithAuth(s);
      await new Promise((r) => setTimeout(r, 350));
      expect((await gql(s.url, userToken, INSTANCES)).status).toBe(401);
    } finally {
      await s.close();
    }
  });
});

describe("tray stand-in: Tray's timing", () => {
  it('answers after a realistic latency by default (100–400 ms per call)', async () => {
    const s = await startTrayStandIn({ masterToken: MASTER, rateLimit: false });
    try {
      const times: number[] = [];
      for (let i = 0; i < 4; i++) {
        const started = performance.now();
        expect((await gql(s.url, MASTER, USERS, {})).status).toBe(200);
        times.push(performance.now() - started);
      }
      for (const t of times) expect(t).toBeGreaterThanOrEqual(95);
    } finally {
      await s.close();
    }
  });

  it('refuses an enable sooner than 2 s after createSolutionInstance, and accepts it after', async () => {
    const s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, rateLimit: false, solutions: SOLUTIONS });
    try {
      const { userToken, authId } = await newUserWithAuth(s);
      const created = await gql(s.url, userToken, CREATE_INSTANCE, {
        input: {
          solutionId: 'sol-1',
          instanceName: 'timing',
          authValues: [{ externalId: 'external_sqs_authentication', authId }],
          configValues: [{ externalId: 'external_email', value: '"a@example.com"' }],
        },
      });
      const id: string = created.body.data.createSolutionInstance.solutionInstance.id;
      const early = await gql(s.url, userToken, UPDATE_INSTANCE, { input: { solutionInstanceId: id, enabled: true } });
      expect(early.status).toBe(200);
      expect(early.body.errors[0].extensions).toEqual({ name: 'PreconditionError', code: 'instance_not_ready' });
      expect(s.snapshot().instances.find((i) => i.id === id)?.enabled).toBe(false);
      await new Promise((r) => setTimeout(r, 2_050));
      const later = await gql(s.url, userToken, UPDATE_INSTANCE, { input: { solutionInstanceId: id, enabled: true } });
      expect(later.body).toEqual({ data: { updateSolutionInstance: { solutionInstance: { id, enabled: true } } } });
    } finally {
      await s.close();
    }
  });

  it("serves the lifecycle operations of Tray's schema", async () => {
    const s = await startTrayStandIn({ masterToken: MASTER, latencyMs: 0, enableDelayMs: 0, rateLimit: false, solutions: SOLUTIONS });
    try {
      const { userId } = await newUserWithAuth(s);
      const code = await gql(
        s.url,
        MASTER,
        `mutation ($input: GenerateAuthorizationCodeInput!) { generateAuthorizationCode(input: $input) { authorizationCode } }`,
        { input: { userId } },
      );
      expect(code.body.data.generateAuthorizationCode.authorizationCode).toMatch(/^[0-9a-f]{32}$/);
      const updated = await gql(
        s.url,
        MASTER,
        `mutation ($input: UpdateExternalUserInput!) { updateExternalUser(input: $input) { user { id isTestUser } } }`,
        { input: { userId, isTestUser: false } },
      );
      expect(updated.body.data.updateExternalUser.user).toEqual({ id: userId, isTestUser: false });
    } finally {
      await s.close();
    }
  });
});
