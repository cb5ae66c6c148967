import { afterEach, describe, expect, it } from 'vitest';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';
import { Pacer } from '../shared/tray/pacer.js';
import { type ScriptedServer, startScriptedServer } from './support/scripted-server.js';

let server: ScriptedServer | undefined;
/** Pacing is tested on its own (pacer.test.ts); here it would only slow the calls down. */
const fastPacer = () => new Pacer({ ratePerSecond: 1_000, burst: 100 });
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const created = { status: 200, body: { data: { createExternalUser: { userId: 'user-1' } } } };
const unauthorized = { status: 401, body: { data: null, errors: [{ message: 'Unauthorized', extensions: { code: 'unauthenticated' } }] } };
const badGateway = { status: 502, body: 'Bad Gateway' };

function client(url: string, tokens = ['old-master-token', 'new-master-token'], deadline?: number) {
  let reads = 0;
  const master = staticMasterToken(() => tokens[Math.min(reads++, tokens.length - 1)]!);
  return new TrayClient({
    url,
    masterToken: master,
    timeoutMs: 2_000,
    retry: { baseDelayMs: 1, maxDelayMs: 2 },
    pacer: fastPacer(),
    ...(deadline ? { deadline } : {}),
  });
}

describe('TrayClient', () => {
  it('re-sends a create after a 401 with the refetched master token, but never after an ambiguous 502', async () => {
    server = await startScriptedServer([unauthorized, badGateway, created]);
    const error = await client(server.url)
      .createExternalUser({ name: 'a', externalUserId: 'sub-1', isTestUser: false })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TRAY_UNAVAILABLE', ambiguous: true, step: 'createExternalUser' });
    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer old-master-token', 'Bearer new-master-token']);
  });

  it('refetches the master token once, then gives up permanently', async () => {
    server = await startScriptedServer([unauthorized, unauthorized, created]);
    const error = await client(server.url, ['a-master-token', 'b-master-token', 'c-master-token'])
      .createExternalUser({ name: 'a', externalUserId: 'sub-1', isTestUser: false })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TRAY_UNAUTHORIZED', kind: 'permanent' });
    expect(server.requests).toHaveLength(2);
  });

  it('re-sends a create that the rate limiter refused (it was not executed)', async () => {
    const rateLimited = {
      status: 200,
      body: {
        data: null,
        errors: [{ message: 'Rate limit exceeded', extensions: { name: 'PreconditionError', code: 'access_not_allowed' } }],
      },
    };
    server = await startScriptedServer([rateLimited, rateLimited, created]);
    await expect(client(server.url).createExternalUser({ name: 'a', externalUserId: 'sub-1', isTestUser: false })).resolves.toBe('user-1');
    expect(server.requests).toHaveLength(3);
  });

  it('retries idempotent calls after a 5xx', async () => {
    server = await startScriptedServer([badGateway, { status: 200, body: { data: { authorize: { accessToken: 'user-token-123456' } } } }]);
    await expect(client(server.url).authorize('user-1')).resolves.toBe('user-token-123456');
  });

  it('refuses a partial list rather than letting a look-up miss (more pages, no cursor)', async () => {
    server = await startScriptedServer([
      {
        status: 200,
        body: {
          data: {
            users: {
              edges: [{ node: { id: 'u1', name: 'a', externalUserId: 's' }, cursor: 'c1' }],
              pageInfo: { hasNextPage: true, endCursor: null },
            },
          },
        },
      },
    ]);
    await expect(client(server.url).findUsersByExternalUserId('s')).rejects.toMatchObject({ code: 'TRAY_BAD_RESPONSE', step: 'lookup' });
  });

  it("reads a user's auths with Tray's one unpaged query, and refuses a list that says it is partial", async () => {
    const node = (id: string) => ({ node: { id, name: id, service: { id: 'svc' }, serviceEnvironment: { id: 'env' } } });
    server = await startScriptedServer([
      {
        status: 200,
        body: { data: { viewer: { authentications: { edges: [node('a1'), node('a2')], pageInfo: { hasNextPage: false } } } } },
      },
      { status: 200, body: { data: { viewer: { authentications: { edges: [node('a1')], pageInfo: { hasNextPage: true } } } } } },
    ]);
    const auths = await client(server.url).listAuthentications('user-token-abcdef');
    expect(auths.map((a) => a.id)).toEqual(['a1', 'a2']);
    // A short list would make a retry miss an auth and create it again.
    await expect(client(server.url).listAuthentications('user-token-abcdef')).rejects.toMatchObject({
      code: 'TRAY_BAD_RESPONSE',
      step: 'lookup',
    });
    expect(server.requests.map((r) => r.operationName)).toEqual(['ListAuthentications', 'ListAuthentications']);
    expect(server.requests.map((r) => r.variables ?? {})).toEqual([{}, {}]);
  });

  it('starts no call without time left before the deadline', async () => {
    server = await startScriptedServer([created]);
    const late = client(server.url, undefined, Date.now() + 500);
    await expect(late.createExternalUser({ name: 'a', externalUserId: 's', isTestUser: false })).rejects.toMatchObject({
      code: 'OUT_OF_TIME',
      ambiguous: false,
    });
    expect(server.requests).toHaveLength(0);
  });

  it('cuts a call to the time left before the deadline', async () => {
    server = await startScriptedServer([{ status: 0, body: '' }]);
    const started = Date.now();
    const soon = new TrayClient({
      url: server.url,
      masterToken: staticMasterToken(() => 'master-token-x'),
      timeoutMs: 10_000,
      deadline: Date.now() + 1_500,
      pacer: fastPacer(),
    });
    await expect(soon.createExternalUser({ name: 'a', externalUserId: 's', isTestUser: false })).rejects.toMatchObject({
      code: 'TRAY_TIMEOUT',
      ambiguous: true,
    });
    expect(Date.now() - started).toBeLessThan(5_000); // the call timeout alone would be 10 s
  });
});
