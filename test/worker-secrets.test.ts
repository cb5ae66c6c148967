import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEMO_MASTER_TOKEN_SECRET } from '../local/demo.js';
import { demoUsers, type Harness, startHarness } from '../local/worker-harness.js';
import { DLQ_ATTRIBUTES } from '../shared/message.js';
import { expectImportedExactlyOnce } from './support/assertions.js';

const users = demoUsers(20);

/** Captures everything the process writes, and the user tokens Tray hands out. */
function capture() {
  const written: string[] = [];
  const userTokens: string[] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const realFetch = globalThis.fetch;
  // Powertools writes through the console under POWERTOOLS_DEV (vitest.config.ts).
  const consoleSpies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((method) =>
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void written.push(args.map(String).join(' '))),
  );
  process.stdout.write = (chunk: string | Uint8Array, ...rest: never[]) => {
    written.push(String(chunk));
    return out(chunk, ...rest);
  };
  process.stderr.write = (chunk: string | Uint8Array, ...rest: never[]) => {
    written.push(String(chunk));
    return err(chunk, ...rest);
  };
  globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const response = await realFetch(input, init);
    const text = await response.clone().text();
    const token = /"accessToken":"([^"]+)"/.exec(text)?.[1];
    if (token) userTokens.push(token);
    return response;
  };
  return {
    written,
    userTokens,
    restore: () => {
      process.stdout.write = out;
      process.stderr.write = err;
      globalThis.fetch = realFetch;
      for (const spy of consoleSpies) spy.mockRestore();
    },
  };
}

describe('canary secrets never appear in logs, errors, DLQ messages or the ledger', () => {
  let h: Harness;
  let cap: ReturnType<typeof capture>;
  beforeAll(async () => {
    h = await startHarness({ env: { POWERTOOLS_LOG_LEVEL: 'DEBUG' } });
    cap = capture();
  });
  afterAll(async () => {
    cap?.restore();
    await h?.close();
  });

  it('through success, retries, ambiguous creates and dead-lettering', async () => {
    const tray = h.stack.tray!;
    await h.send(h.messageFor(users[0]!));
    await h.drain();
    tray.injectFault({ operation: 'createUserAuthentication', kind: 'commitThenFail' });
    tray.injectFault({ operation: 'createSolutionInstance', kind: 'http500', times: 6 });
    await h.send(h.messageFor(users[1]!));
    await h.drain();
    tray.revokeUserTokens();
    tray.injectFault({ operation: 'updateSolutionInstance', kind: 'rateLimit', times: 2 });
    await h.send(h.messageFor(users[2]!));
    await h.drain();
    // And one that is dead-lettered: the user lacks an attribute the plan needs.
    const broken = h.messageFor(users[3]!);
    delete broken.attributes['custom:tenant_id'];
    await h.send(broken);
    await h.drain();

    for (const u of users.slice(0, 3)) await expectImportedExactlyOnce(h, u);
    const dlq = await h.dlqMessages();
    expect(dlq.map((m) => m.attributes[DLQ_ATTRIBUTES.errorCode])).toEqual(['MISSING_ATTRIBUTE']);

    const apiKey = JSON.parse(h.secrets.credentials['tray-auth-import/demo/acme-crm']!).apiKey as string;
    const canaries = [h.secrets.masterToken, apiKey, ...cap.userTokens];
    expect(cap.userTokens.length).toBeGreaterThanOrEqual(3);
    const ledgerItems = JSON.stringify((await h.stack.dynamodb.send(new ScanCommand({ TableName: h.stack.tableName }))).Items);
    const haystacks = { logs: cap.written.join(''), dlq: JSON.stringify(dlq), ledger: ledgerItems };
    expect(haystacks.logs.length).toBeGreaterThan(1000);
    for (const [where, text] of Object.entries(haystacks)) {
      for (const canary of canaries) expect(text.includes(canary), `a secret leaked into ${where}`).toBe(false);
    }
  });
});

describe('master token: cached, refetched once after a 401, permanent when still refused', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { MASTER_TOKEN_CACHE_MS: '600000' } });
  });
  afterAll(async () => h?.close());
  afterEach(() => h.stack.tray!.clearFaults());

  it('reads the secret once across invocations while it is valid', async () => {
    await h.send(h.messageFor(users[10]!));
    await h.send(h.messageFor(users[11]!));
    await h.drain();
    expect(h.stack.secretsStandIn.reads(DEMO_MASTER_TOKEN_SECRET)).toBe(1);
  });

  it('picks up a rotated token after Tray refuses the cached one', async () => {
    const rotated = `rotated-master-${Math.random().toString(36).slice(2)}`;
    h.stack.tray!.setMasterToken(rotated);
    h.stack.secretsStandIn.put(DEMO_MASTER_TOKEN_SECRET, rotated);
    await h.send(h.messageFor(users[12]!));
    await h.drain();
    await expectImportedExactlyOnce(h, users[12]!);
    expect(h.stack.secretsStandIn.reads(DEMO_MASTER_TOKEN_SECRET)).toBe(2);
    expect(await h.dlqMessages()).toEqual([]);
  });

  it('dead-letters as TRAY_UNAUTHORIZED when the refetched token is refused too', async () => {
    h.stack.tray!.setMasterToken('a-token-nobody-has');
    await h.send(h.messageFor(users[13]!));
    await h.drain();
    const dlq = await h.dlqMessages();
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.attributes).toMatchObject({
      [DLQ_ATTRIBUTES.errorCode]: 'TRAY_UNAUTHORIZED',
      [DLQ_ATTRIBUTES.step]: 'createExternalUser',
      [DLQ_ATTRIBUTES.receiveCount]: '1',
    });
    expect(h.stack.tray!.snapshot().users.filter((u) => u.externalUserId === users[13]!.sub)).toHaveLength(0);
  });
});

describe('master token cache expiry', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { MASTER_TOKEN_CACHE_MS: '300' } });
  });
  afterAll(async () => h?.close());

  it('re-reads the secret once the cache expired, so a rotation is picked up without a 401', async () => {
    await h.send(h.messageFor(users[15]!));
    await h.drain();
    expect(h.stack.secretsStandIn.reads(DEMO_MASTER_TOKEN_SECRET)).toBe(1);
    const rotated = `rotated-master-${Math.random().toString(36).slice(2)}`;
    h.stack.secretsStandIn.put(DEMO_MASTER_TOKEN_SECRET, rotated);
    h.stack.tray!.setMasterToken(rotated);
    await new Promise((r) => setTimeout(r, 400));
    const refusedBefore = h.stack.tray!.calls.filter((c) => c.tokenKind === 'invalid').length;
    await h.send(h.messageFor(users[16]!));
    await h.drain();
    await expectImportedExactlyOnce(h, users[16]!);
    expect(h.stack.secretsStandIn.reads(DEMO_MASTER_TOKEN_SECRET)).toBe(2);
    expect(h.stack.tray!.calls.filter((c) => c.tokenKind === 'invalid').length).toBe(refusedBefore);
  });

  it('leaves no timer behind that reads the secret in the background', async () => {
    const reads = h.stack.secretsStandIn.reads(DEMO_MASTER_TOKEN_SECRET);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(h.stack.secretsStandIn.reads(DEMO_MASTER_TOKEN_SECRET)).toBe(reads);
  });
});
