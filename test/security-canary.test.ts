import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deadLetterAttributes } from '../shared/dead-letter.js';
import { DLQ_ATTRIBUTES } from '../shared/message.js';
import { jsonScrubber, registerSecret, resetSecretsForTests, scrubExcerpt } from '../shared/redact.js';
import { SecretReader } from '../shared/secrets.js';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';

/**
 * Issue #11, item 1, end to end: a GraphQL server (or a gateway in front of it) echoes the request
 * in its error, in the encodings servers use. Canary credentials read from Secrets Manager must
 * not reach the error, the DLQ reason, a log line or the ledger's error text in any of them.
 */
const CANARIES = {
  quoted: 'canary"q\\uote-31337',
  unicode: 'cänäry-ünïcödé-31337',
  emoji: 'canary-🔑-key-31337',
} as const;
const MASTER = 'master-token-canary-31337';
const USER_TOKEN = 'user-token-canary-31337';

type Echo = (body: string) => string;
const ECHOES: Record<string, Echo> = {
  'the request body as text': (body) => `invalid request: ${body}`,
  'the body with non-ASCII \\u-escaped (Python json.dumps)': (body) =>
    `invalid request: ${body.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}`,
  'the body re-encoded as a JSON string (JSON in JSON)': (body) => `invalid request: ${JSON.stringify(body)}`,
  'the body as a query string (gateway access log)': (body) => `rejected POST /graphql?q=${encodeURIComponent(body)}`,
  'the body form-encoded': (body) => `rejected ${new URLSearchParams({ q: body }).toString()}`,
  'the body in base64 (WAF)': (body) => `blocked request ${Buffer.from(body).toString('base64')}`,
  'the body in base64url': (body) => `blocked request ${Buffer.from(body).toString('base64url')}`,
};

let server: Server;
let url: string;
let echo: Echo = (b) => b;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          data: null,
          errors: [{ message: `${echo(body)} (auth: ${req.headers.authorization})`, extensions: { code: 'invalid_input' } }],
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
afterEach(() => resetSecretsForTests());

/** Everything a canary may not appear in, in any recognisable form. */
const FORBIDDEN = [/31337/, /canary/i, /c%C3%A4n|c\\u00e4n|cänäry/i];

/** Base64 runs in `text`, decoded at every alignment (a run may start mid-group after a redaction). */
function decodedBase64Runs(text: string): string[] {
  return [...text.matchAll(/[A-Za-z0-9+/_-]{12,}={0,2}/g)].flatMap(([run]) =>
    [0, 1, 2, 3].flatMap((skip) => [
      Buffer.from(run.slice(skip), 'base64').toString('latin1'),
      Buffer.from(run.slice(skip), 'base64url').toString('latin1'),
    ]),
  );
}

describe.each(Object.entries(ECHOES))('Tray echoing %s', (_name, encode) => {
  it('the canaries reach neither the error nor the DLQ reason, a log line or the ledger text', async () => {
    echo = encode;
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(CANARIES) });
    const reader = new SecretReader({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
    const data = Object.fromEntries(
      await Promise.all(Object.keys(CANARIES).map(async (k) => [k, await reader.field('acme/api', k)] as const)),
    );
    const tray = new TrayClient({
      url,
      masterToken: staticMasterToken(() => MASTER),
      timeoutMs: 2_000,
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
    });
    // The user token is registered by TrayClient.authorize in real runs.
    registerSecret(USER_TOKEN);

    const error = (await tray
      .createUserAuthentication(USER_TOKEN, { name: 'Acme', serviceId: 's', serviceEnvironmentId: 'e', data })
      .catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe('TRAY_REJECTED');
    // Redaction ran (the echo was recognised), rather than the echo being dropped.
    expect(error.message).toContain('[redacted]');

    const record = { messageId: 'm', body: '{}', attributes: { ApproximateReceiveCount: '1' } } as unknown as SQSRecord;
    const reason = deadLetterAttributes(error as never, record, undefined, undefined)[DLQ_ATTRIBUTES.reason]!.StringValue!;
    const logLine = JSON.stringify({ error }, jsonScrubber);
    const ledgerText = scrubExcerpt(error.message);
    for (const text of [error.message, reason, logLine, ledgerText]) {
      for (const pattern of FORBIDDEN) expect(text).not.toMatch(pattern);
      for (const decoded of decodedBase64Runs(text)) expect(decoded).not.toMatch(/31337|canary/i);
      expect(text).not.toContain('master-token-canary');
    }
  });
});

it('a credential too short to redact is refused when it is read, before any request', async () => {
  const sm = mockClient(SecretsManagerClient);
  sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ pin: 'k9"Z' }) });
  const reader = new SecretReader({ client: new SecretsManagerClient({ region: 'us-east-1' }) });
  await expect(reader.field('acme/api', 'pin')).rejects.toMatchObject({
    code: 'SECRET_INVALID',
    message: expect.stringContaining('secret "acme/api" field "pin"'),
  });
});
