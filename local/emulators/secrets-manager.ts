import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small Secrets Manager stand-in speaking the JSON protocol (`X-Amz-Target:
 * secretsmanager.<Action>`), enough for the real SDK client and Powertools' SecretsProvider:
 * GetSecretValue, CreateSecret, PutSecretValue, DescribeSecret. No npm package emulates it.
 */
export interface SecretsManagerStandIn {
  endpoint: string;
  /** Creates or replaces a secret (as a rotation would). */
  put(name: string, value: string): void;
  /** GetSecretValue calls per secret name, to prove caching. */
  reads(name: string): number;
  /** GetSecretValue calls in all. */
  totalReads(): number;
  close(): Promise<void>;
}

interface StoredSecret {
  arn: string;
  name: string;
  value: string;
  versionId: string;
  created: number;
  /** Last PutSecretValue (epoch seconds): DescribeSecret's LastChangedDate, which tells a rotated secret. */
  changed: number;
}

export async function startSecretsManagerStandIn(initial: Record<string, string> = {}, port = 0): Promise<SecretsManagerStandIn> {
  const secrets = new Map<string, StoredSecret>();
  const readCounts = new Map<string, number>();
  const put = (name: string, value: string) => {
    const existing = secrets.get(name);
    secrets.set(name, {
      arn: existing?.arn ?? `arn:aws:secretsmanager:us-east-1:000000000000:secret:${name}-${randomUUID().slice(0, 6)}`,
      name,
      value,
      versionId: randomUUID(),
      created: existing?.created ?? Date.now() / 1000,
      changed: Date.now() / 1000,
    });
  };
  for (const [name, value] of Object.entries(initial)) put(name, value);

  const find = (id: string) => secrets.get(id) ?? [...secrets.values()].find((s) => s.arn === id);

  // The fields it reads (SecretId, Name, SecretString) are strings in the SDK's requests.
  const handle = (action: string, body: Record<string, string | undefined>, res: ServerResponse) => {
    const reply = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(payload));
    };
    const notFound = () => reply(400, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." });
    const id = String(body.SecretId ?? body.Name ?? '');
    switch (action) {
      case 'GetSecretValue': {
        const secret = find(id);
        if (!secret) return notFound();
        readCounts.set(secret.name, (readCounts.get(secret.name) ?? 0) + 1);
        return reply(200, {
          ARN: secret.arn,
          Name: secret.name,
          SecretString: secret.value,
          VersionId: secret.versionId,
          VersionStages: ['AWSCURRENT'],
          CreatedDate: secret.created,
        });
      }
      case 'CreateSecret':
      case 'PutSecretValue': {
        if (action === 'PutSecretValue' && !find(id)) return notFound();
        const name = find(id)?.name ?? id;
        put(name, String(body.SecretString ?? ''));
        const secret = secrets.get(name)!;
        return reply(200, { ARN: secret.arn, Name: secret.name, VersionId: secret.versionId });
      }
      case 'DescribeSecret': {
        const secret = find(id);
        if (!secret) return notFound();
        return reply(200, { ARN: secret.arn, Name: secret.name, LastChangedDate: secret.changed });
      }
      default:
        return reply(400, { __type: 'InvalidRequestException', message: `${action} is not supported by the local stand-in` });
    }
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const action = target.replace(/^secretsmanager\./, '');
      let body: Record<string, string | undefined> = {};
      try {
        body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string | undefined>) : {};
      } catch {
        res.writeHead(400).end();
        return;
      }
      handle(action, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const address = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    put,
    reads: (name) => readCounts.get(name) ?? 0,
    totalReads: () => [...readCounts.values()].reduce((a, b) => a + b, 0),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
