import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildApp } from 'fauxqs';

/**
 * SQS-protocol emulator (fauxqs 1.9.2, in-process). Started through `buildApp` and bound to
 * 127.0.0.1: its own CLI and `startFauxqs` bind 0.0.0.0. Redrive to a DLQ after
 * maxReceiveCount works; StartMessageMoveTask does not (the CLI tests mock that call).
 *
 * fauxqs names queues `http://sqs.<region>.<host>:<port>/…` unless its store's host is empty,
 * and `buildApp` cannot empty it. With host 127.0.0.1 that URL is not even valid, and the SDK
 * sends each call to its QueueUrl's host. So the stores are built here with an empty host:
 * queue URLs then use the request's own Host header, the emulator's 127.0.0.1 address.
 */
export interface SqsEmulator {
  endpoint: string;
  close(): Promise<void>;
}

type StoreClass = new () => { host?: string };

async function loadStores(): Promise<{ sqsStore: unknown; snsStore: unknown; s3Store: unknown }> {
  const require = createRequire(import.meta.url);
  const root = (require.resolve.paths('fauxqs') ?? []).map((p) => join(p, 'fauxqs')).find((p) => existsSync(join(p, 'dist', 'app.js')));
  if (!root) throw new Error('fauxqs is not installed: run npm ci');
  const load = async (path: string, name: string) =>
    ((await import(pathToFileURL(join(root, 'dist', path)).href)) as Record<string, StoreClass>)[name] as StoreClass;
  const [SqsStore, SnsStore, S3Store] = await Promise.all([
    load('sqs/sqsStore.js', 'SqsStore'),
    load('sns/snsStore.js', 'SnsStore'),
    load('s3/s3Store.js', 'S3Store'),
  ]);
  const sqsStore = new SqsStore();
  sqsStore.host = '';
  return { sqsStore, snsStore: new SnsStore(), s3Store: new S3Store() };
}

export async function startSqsEmulator(port = 0): Promise<SqsEmulator> {
  const stores = await loadStores();
  const app = buildApp({ logger: false, stores: stores as never });
  await app.listen({ port, host: '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    close: async () => {
      await app.close();
    },
  };
}
